"""What the benchmarks share: the machine and environment a run records, the re-run under
``OMP_WAIT_POLICY=PASSIVE``, quartiles of paired ratios, and the JSON report written
atomically (a run cut off while writing leaves the previous report whole, never half of a
new one). The scripts import it as ``_common`` (their own folder is on ``sys.path`` when
they run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adamlab._files import write_atomic

#: variables that change how the kernels' threads behave: every report records them
ENV_KEYS = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "ADAMLAB_CPU_KERNEL", "GOMP_SPINCOUNT")


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine(**more: Any) -> dict[str, Any]:
    """The machine and software of a run: CPU, cores, platform, Python, adamlab, and torch
    and numba where the run imported them; ``more`` adds entries (peers' versions)."""
    import adamlab

    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "adamlab": adamlab.__version__,
    }
    for name in ("torch", "numba"):
        if name in sys.modules:
            info[name] = sys.modules[name].__version__
    return {**info, **more}


def dist_version(dist: str) -> str | None:
    """The installed version of the distribution ``dist`` (``"scikit-learn"``), else None."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def environment() -> dict[str, str | None]:
    """The thread-related variables the run was started with (None: not set)."""
    return {k: os.environ.get(k) for k in ENV_KEYS}


def command(script: str, argv: Sequence[str] | None) -> str:
    """The command line that reruns this measurement, e.g. ``python benchmarks/x.py --quick``."""
    args = list(argv) if argv is not None else sys.argv[1:]
    return " ".join(["python", Path(script).as_posix(), *args])


def rerun_passive(script: str, argv: Sequence[str] | None, flag: str | None = "--passive") -> None:
    """Replace this process with the same script under ``OMP_WAIT_POLICY=PASSIVE``, without
    ``flag`` among its arguments; nothing happens where the variable is already set so."""
    if os.environ.get("OMP_WAIT_POLICY") == "PASSIVE":
        return
    args = [a for a in (argv if argv is not None else sys.argv[1:]) if a != flag]
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    if Path(sys.argv[0]).resolve() == Path(script).resolve():
        script = sys.argv[0]  # as it was typed, so that the report's command reads the same
    os.execve(sys.executable, [sys.executable, script, *args], env)


def add_run_options(
    ap: argparse.ArgumentParser, out: str, *, rounds: int = 30, warmup: bool = True
) -> None:
    """The options of an interleaved timing benchmark: ``--rounds``, ``--warmup`` and
    ``--quick`` (8 rounds, 2 warm-up; with ``warmup``), ``--threads``, ``--passive`` and
    ``--out`` (default ``benchmarks/results/<out>``); :func:`start_run` acts on them."""
    ap.add_argument("--rounds", type=int, default=rounds)
    if warmup:
        ap.add_argument("--warmup", type=int, default=3)
        ap.add_argument(
            "--quick", action="store_true", help="8 rounds, 2 warm-up (a first look; noisier)"
        )
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    ap.add_argument("--passive", action="store_true", help="re-run with OMP_WAIT_POLICY=PASSIVE")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / out)


def start_run(args: argparse.Namespace, script: str, argv: Sequence[str] | None) -> None:
    """Act on :func:`add_run_options`' options: ``--quick``'s rounds, ``--passive``'s re-run
    (:func:`rerun_passive`; this process ends there), ``--threads``."""
    if getattr(args, "quick", False):
        args.rounds, args.warmup = 8, 2
    if args.passive:
        rerun_passive(script, argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)


def quartiles(xs: Sequence[float]) -> tuple[float, float, float]:
    """(25th percentile, median, 75th percentile), inclusive method; one value gives itself
    three times."""
    if len(xs) == 1:
        return xs[0], xs[0], xs[0]
    q = statistics.quantiles(xs, n=4, method="inclusive")
    return q[0], q[1], q[2]


def write_report(path: str | os.PathLike[str], report: dict[str, Any], indent: int = 2) -> None:
    """Write ``report`` as JSON to ``path`` (its folder made if missing), atomically: the text
    is made first, so an unserialisable report raises and writes nothing."""
    text = json.dumps(report, indent=indent) + "\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, lambda f: f.write(text))
