"""The ``adamlab sweep`` and ``adamlab reproduce`` subcommands (registered into the CLI).

``register(subparsers)`` adds both; each command is ``func(args) -> int`` and raises
``ValueError``/``TypeError``/``OSError`` with a one-line message on bad input (the CLI prints
``adamlab: error: …`` and exits 2).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

from .. import _exact as ex

SWEEP_HELP = """\
examples:
  adamlab sweep adam --problem rosenbrock --grid lr=1e-4:1:9:log --grid beta2=0.9,0.99,0.999 \\
      --steps 1000 --target 1e-6 --out runs/adam-rosenbrock
  adamlab sweep sgd --problem noisy-quadratic --sample lr=1e-4:1:log --sample momentum=0,0.9 \\
      --n 64 --method halton --seeds 5 --out runs/sgd

grid values:   NAME=v1,v2,...   or   NAME=lo:hi:n   (linear)   or   NAME=lo:hi:n:log
sample ranges: NAME=lo:hi (uniform), NAME=lo:hi:log (log-uniform), NAME=lo:hi:log1m
               (1 - value log-uniform, for betas), or NAME=v1,v2,... (choose among values)
values: numbers, true/false (e.g. bias_correction=true,false or amsgrad=false)
A rerun with the same --out resumes: finished runs are read back, not recomputed.
"""


def register(subparsers: Any) -> None:
    """Add ``sweep`` and ``reproduce`` to the ``adamlab`` command's subparsers."""
    from .registry import DESCRIPTIONS

    s = subparsers.add_parser(
        "sweep",
        help="run an optimizer over a grid or sample of hyperparameters x seeds x problems",
        description="Run an optimizer over hyperparameter configurations x seeds x problems "
        "(vectorised; resumable with --out); print the best configurations and write a "
        "table (Parquet), a heatmap and a learning-rate sensitivity figure.",
        epilog=SWEEP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    s.add_argument("optimizer", help="optimizer name: adam, sgd, rmsprop, ... (adamlab optimizers)")
    s.add_argument("--problem", action="append", required=True, metavar="NAME",
                   help="problem name (repeatable)")  # fmt: skip
    s.add_argument("--grid", action="append", default=[], metavar="NAME=VALUES",
                   help="a grid axis (repeatable)")  # fmt: skip
    s.add_argument("--sample", action="append", default=[], metavar="NAME=RANGE",
                   help="a sampled dimension (repeatable; needs --n)")  # fmt: skip
    s.add_argument("--n", type=int, default=None, help="number of sampled configurations")
    s.add_argument("--method", default="halton", choices=["random", "halton", "sobol"],
                   help="sampling method for --sample (default halton)")  # fmt: skip
    s.add_argument("--fixed", action="append", default=[], metavar="NAME=VALUE",
                   help="a hyperparameter shared by every configuration (repeatable)")  # fmt: skip
    s.add_argument("--seeds", default="1", help="a count (3 = seeds 0,1,2) or a list 0,4,7")
    s.add_argument("--steps", type=int, default=200)
    s.add_argument("--target", type=float, default=None, help="tolerance on loss - f*")
    s.add_argument("--engine", default="auto",
                   choices=["auto", "vectorized", "numba", "process", "loop"])  # fmt: skip
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--out", default=None, help="directory for records, table and figures")
    s.add_argument("--value", default="final_loss",
                   help="the metric to rank and draw (final_loss, steps_to_target, ...)")  # fmt: skip
    s.add_argument("--top", type=int, default=10, help="how many configurations to print")
    s.set_defaults(func=cmd_sweep)

    r = subparsers.add_parser(
        "reproduce",
        help="reproduce a figure from the Adam papers (seed, first-steps, amsgrad, bias-correction)",
        description="Run a reproduction, write its figure (PNG), a text summary and its "
        "numbers (JSON) into --out, and print the summary.\n\n"
        + "\n".join(f"  {k:<16} {v}" for k, v in DESCRIPTIONS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("name", nargs="?", help="which reproduction, or 'all'")
    r.add_argument("--out", default=".", help="output directory (default: here)")
    r.add_argument("--quick", action="store_true", help="reduced size (seconds)")
    r.add_argument("--list", action="store_true", help="list the reproductions")
    r.set_defaults(func=cmd_reproduce)


# -- parsing ------------------------------------------------------------------------------------


def parse_value(text: str) -> Any:
    t = text.strip()
    low = t.lower()
    if low in ("true", "on", "yes"):
        return True
    if low in ("false", "off", "no"):
        return False
    try:
        v = float(t)
    except ValueError:
        raise ValueError(f"not a number or true/false: {text!r}") from None
    if not math.isfinite(v):
        raise ValueError(f"values must be finite, got {text!r}")
    return v


def _split(spec: str, flag: str) -> tuple[str, str]:
    name, sep, rest = spec.partition("=")
    if not sep or not name.strip() or not rest.strip():
        raise ValueError(f"malformed {flag} {spec!r}: expected NAME=VALUES")
    return name.strip(), rest.strip()


def parse_grid(spec: str) -> tuple[str, list[Any]]:
    """``lr=0.1,0.01`` → list; ``lr=1e-4:1:9:log`` → 9 log-spaced values; ``lo:hi:n`` linear."""
    import numpy as np

    name, rest = _split(spec, "--grid")
    if ":" in rest:
        parts = rest.split(":")
        if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "log"):
            raise ValueError(
                f"malformed --grid {spec!r}: expected NAME=lo:hi:n or NAME=lo:hi:n:log"
            )
        lo, hi = parse_value(parts[0]), parse_value(parts[1])
        try:
            n = int(parts[2])
        except ValueError:
            raise ValueError(f"malformed --grid {spec!r}: n must be a whole number") from None
        if n < 1 or isinstance(lo, bool) or isinstance(hi, bool):
            raise ValueError(f"malformed --grid {spec!r}: need numbers lo, hi and n >= 1")
        if len(parts) == 4:
            if lo <= 0 or hi <= 0:
                raise ValueError(f"malformed --grid {spec!r}: a log grid needs lo, hi > 0")
            vals = ex.geomspace(lo, hi, n)
        else:
            vals = np.linspace(lo, hi, n)
        return name, [float(v) for v in vals]
    return name, [parse_value(v) for v in rest.split(",")]


def parse_sample(spec: str) -> tuple[str, Any]:
    from adamlab.lab.sweep import LogUniform, OneMinusLogUniform, Uniform

    name, rest = _split(spec, "--sample")
    if ":" not in rest:
        return name, [parse_value(v) for v in rest.split(",")]
    parts = rest.split(":")
    kinds = {None: Uniform, "log": LogUniform, "log1m": OneMinusLogUniform}
    kind = parts[2] if len(parts) == 3 else None
    if len(parts) not in (2, 3) or kind not in kinds:
        raise ValueError(
            f"malformed --sample {spec!r}: expected NAME=lo:hi, NAME=lo:hi:log or NAME=lo:hi:log1m"
        )
    return name, kinds[kind](parse_value(parts[0]), parse_value(parts[1]))


def parse_seeds(text: str) -> list[int]:
    try:
        if "," in text:
            return [int(s) for s in text.split(",")]
        n = int(text)
    except ValueError:
        raise ValueError(f"--seeds must be a count or a list like 0,1,2, got {text!r}") from None
    if n < 1:
        raise ValueError(f"--seeds must be at least 1, got {n}")
    return list(range(n))


# -- commands -------------------------------------------------------------------------------------


#: the sweep table's metric columns that --value may rank and draw
VALUES = (
    "final_loss", "best_loss", "gap", "steps_to_target", "diverged_at", "loss0",
    "heldout_loss", "heldout_accuracy",
)  # fmt: skip


def cmd_sweep(args: argparse.Namespace) -> int:
    from adamlab.lab.sweep import grid, sample, sweep

    if args.value not in VALUES:  # checked before any work is done or file written
        raise ValueError(
            f"--value {args.value!r} is not a metric; choose one of {', '.join(VALUES)}"
        )
    if not args.grid and not args.sample:
        raise ValueError("give at least one --grid or --sample hyperparameter")
    axes = dict(parse_grid(g) for g in args.grid)
    space = dict(parse_sample(s) for s in args.sample)
    fixed = {}
    for f in args.fixed:
        k, v = _split(f, "--fixed")
        fixed[k] = parse_value(v)
    configs = grid(**axes) if axes else [{}]
    if space:
        if args.n is None:
            raise ValueError("--sample needs --n, the number of configurations to draw")
        drawn = sample(space, args.n, method=args.method)
        configs = [{**c, **d} for c in configs for d in drawn]
    out = Path(args.out) if args.out else None
    t0 = time.perf_counter()
    table = sweep(
        args.optimizer, configs, args.problem, steps=args.steps, seeds=parse_seeds(args.seeds),
        fixed=fixed or None, target=args.target, out=out, engine=args.engine,
        workers=args.workers, progress=None,
    )  # fmt: skip
    secs = time.perf_counter() - t0
    if args.value not in table:
        raise ValueError(
            f"--value {args.value!r} is not a column; choose one of {', '.join(table.columns)}"
        )
    names = list(dict.fromkeys(k for c in configs for k in c)) + list(fixed)
    _print_summary(table, names, args.value, args.top, secs)
    for path, note in table.attrs.get("written", {}).items():
        print(f"wrote {path}" + (f" ({note})" if note else ""))
    if out is not None:
        for path in _sweep_figures(
            table, names, [k for k in axes if len(axes[k]) > 1], args.value, out
        ):
            print(f"wrote {path}")
    return 0


def _print_summary(table: Any, names: list[str], value: str, top: int, secs: float) -> None:
    a = table.attrs
    print(
        f"{a['optimizer']}: {a['n_configs']} configurations x {len(a['seeds'])} seed(s) x "
        f"{table.problem.nunique()} problem(s), {a['steps']} steps: {a['computed']} runs "
        f"computed, {a['resumed']} resumed, {secs:.2f} s ({', '.join(f'{k}: {v}' for k, v in a['engines'].items())})"
    )
    for pid, note in a.get("engine_notes", {}).items():
        print(f"{pid}: {note}")
    print(f"diverged: {int(table.diverged.sum())} of {len(table)} runs")
    g = table.groupby(["problem", "config_id"])
    summ = g[value].median().rename(f"median {value}").to_frame()
    summ["diverged"] = g["diverged"].sum()
    first = g.first()
    for n in names:
        if n in first:
            summ[n] = first[n]
    for problem, sub in summ.groupby(level=0):
        print(f"\nbest on {problem} (median over seeds):")
        print(sub.sort_values(f"median {value}").head(top).droplevel(0).to_string())


def _sweep_figures(
    table: Any, names: list[str], axes: list[str], value: str, out: Path
) -> list[Path]:
    from matplotlib.figure import Figure

    from adamlab.plot.sweep import plot_heatmap, plot_sensitivity

    from ._common import save_png

    paths = []
    for problem, sub in table.groupby("problem"):
        if len(axes) >= 2:
            fig = Figure(figsize=(7.5, 4.8), layout="constrained")
            ax = fig.subplots()
            plot_heatmap(ax, sub, axes[0], axes[1], value, log=value != "steps_to_target")
            ax.set_title(f"{table.attrs['optimizer']} on {problem}", loc="left")
            paths.append(save_png(fig, out / f"heatmap-{problem}.png"))
        if "lr" in names and sub["lr"].nunique() > 1:
            other = next((n for n in axes if n != "lr"), None)
            fig = Figure(figsize=(7, 4.5), layout="constrained")
            ax = fig.subplots()
            plot_sensitivity(ax, sub, "lr", value, by=other or "optimizer",
                             logy=value != "steps_to_target")  # fmt: skip
            ax.legend(title=other, fontsize=8)
            ax.set_title(f"{table.attrs['optimizer']} on {problem}: sensitivity to lr", loc="left")
            paths.append(save_png(fig, out / f"sensitivity-{problem}.png"))
    return paths


def cmd_reproduce(args: argparse.Namespace) -> int:
    from . import run
    from .registry import DESCRIPTIONS, REPRODUCTIONS

    if args.list or not args.name:
        for k, v in DESCRIPTIONS.items():
            print(f"{k:<16} {v}")
        return 0
    names = list(REPRODUCTIONS) if args.name == "all" else [args.name]
    for name in names:
        if name not in REPRODUCTIONS:
            raise ValueError(
                f"unknown reproduction {name!r}; choose one of {', '.join(REPRODUCTIONS)} or all"
            )
    for name in names:
        r = run(name, args.out, quick=args.quick)
        print(r.summary.rstrip())
        for f in r.files:
            print(f"wrote {f}")
        print(f"({r.seconds:.1f} s)\n")
    return 0
