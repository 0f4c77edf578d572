"""What every reproduction shares: the result record and atomic output files."""

from __future__ import annotations

import dataclasses
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..lab._io import atomic_path, dumps, write_atomic


@dataclasses.dataclass
class Reproduction:
    """What a reproduction wrote and found.

    Attributes:
        name: the reproduction's name (``"amsgrad"``, …).
        figures: the PNG files written.
        summary: the text summary (also written to ``repro-NAME.txt``).
        numbers: the key numbers behind the summary (also ``repro-NAME.json``).
        seconds: wall time.
    """

    name: str
    figures: list[Path]
    summary: str
    numbers: dict[str, Any]
    seconds: float = 0.0
    files: list[Path] = dataclasses.field(default_factory=list)


def prepare_out(out: str | os.PathLike) -> Path:
    """Create the output directory, or raise OSError with a one-line reason."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=path, prefix=".adamlab-probe-", delete=True)  # noqa: SIM115
        probe.close()
    except OSError as e:
        raise OSError(f"cannot write to output directory {str(out)!r}: {e.strerror or e}") from None
    return path


def write_text(path: Path, text: str) -> Path:
    write_atomic(path, lambda f: f.write(text))
    return path


def save_png(fig: Any, path: Path, dpi: int = 110) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def finish(
    name: str, out: Path, figures: dict[str, Any], summary: str, numbers: dict[str, Any], t0: float
) -> Reproduction:
    """Write ``repro-NAME[-suffix].png`` for each figure, the summary and the numbers."""
    pngs = []
    for suffix, fig in figures.items():
        stem = f"repro-{name}" + (f"-{suffix}" if suffix else "")
        pngs.append(save_png(fig, out / f"{stem}.png"))
    txt = write_text(out / f"repro-{name}.txt", summary.rstrip() + "\n")
    js = write_text(out / f"repro-{name}.json", dumps(numbers, indent=2, default=_plain) + "\n")
    return Reproduction(name, pngs, summary, numbers, time.perf_counter() - t0, [*pngs, txt, js])


def _plain(v: Any) -> Any:
    try:
        import numpy as np

        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, np.ndarray):
            return v.tolist()
    except ImportError:  # pragma: no cover
        pass
    return repr(v)


def run(name: str, out: str | os.PathLike = ".", *, quick: bool = False) -> Reproduction:
    """Run the reproduction ``name``, writing its files into ``out``."""
    from .registry import REPRODUCTIONS

    fn: Callable[..., Reproduction] | None = REPRODUCTIONS.get(name)
    if fn is None:
        raise ValueError(f"unknown reproduction {name!r}; choose one of {', '.join(REPRODUCTIONS)}")
    return fn(prepare_out(out), quick=quick)
