"""What every reproduction shares: the result record and atomic output files."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .._files import check_dir, dumps, save_figure, write_atomic


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


def write_text(path: Path, text: str) -> Path:
    write_atomic(path, lambda f: f.write(text))
    return path


def finish(
    name: str, out: Path, figures: dict[str, Any], summary: str, numbers: dict[str, Any], t0: float
) -> Reproduction:
    """Write ``repro-NAME[-suffix].png`` for each figure, the summary and the numbers."""
    pngs = []
    for suffix, fig in figures.items():
        stem = f"repro-{name}" + (f"-{suffix}" if suffix else "")
        pngs.append(save_figure(fig, out / f"{stem}.png", dpi=110))
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
    return fn(check_dir(out), quick=quick)
