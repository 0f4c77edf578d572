"""``adamlab sweep``: one optimizer over a grid or sample of hyperparameters × seeds × problems."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from .._files import save_figure
from ..lab.specs import parse_fixed, parse_grid_axis, parse_sample_axis, parse_seeds
from ..lab.sweep import ENGINES, grid, make_plan, pick_engine, sample, sweep
from ..lab.sweep.distributed import BlocksFailedError
from ..lab.sweep.store import SweepDirectoryError
from ._common import Formatter, UsageError, int_at_least, missing_extras, positive_int, user_input

EXAMPLES = """\
examples:
  adamlab sweep adam --problem rosenbrock --grid lr=1e-4:1:9:log --grid beta2=0.9,0.99,0.999 \\
      --steps 1000 --target 1e-6 --out runs/adam-rosenbrock
  adamlab sweep sgd --problem noisy-quadratic --sample lr=1e-4:1:log --sample momentum=0,0.9 \\
      --n 64 --method halton --seeds 5 --out runs/sgd
  adamlab sweep adam --problem reddi-thm1 --grid beta2=0.1,0.9 --fixed lr=inverse_sqrt(0.5)

grid values:   NAME=v1,v2,...   or   NAME=lo:hi:n   (linear)   or   NAME=lo:hi:n:log
sample ranges: NAME=lo:hi (uniform), NAME=lo:hi:log (log-uniform), NAME=lo:hi:log1m
               (1 - value log-uniform, for betas), or NAME=v1,v2,... (choose among values)
values: numbers, true/false (yes/no, on/off), a/b pairs, schedules such as inverse_sqrt(0.5)
A rerun with the same --out resumes: finished runs are read back, not recomputed. A different
sweep in the same --out is refused (--force replaces it).

on a cluster (pip install 'adamlab[dask]' or 'adamlab[ray]'; the same table as --engine auto):
  adamlab sweep adam --problem mlp-digits --grid lr=1e-4:1e-1:30:log --seeds 5 --steps 2000 \\
      --engine dask --address tcp://scheduler:8786 --out runs/adam-digits
  adamlab sweep adam --problem rosenbrock --grid lr=1e-4:1:30:log --engine ray --address auto
"""

#: the sweep table's metric columns that --value may rank and draw
VALUES = (
    "final_loss", "best_loss", "gap", "steps_to_target", "diverged_at", "loss0",
    "test_loss", "test_accuracy", "train_accuracy",
)  # fmt: skip


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "sweep",
        help="run an optimizer over a grid or sample of hyperparameters x seeds x problems",
        description="Run an optimizer over hyperparameter configurations x seeds x problems "
        "(vectorised; resumable with --out); print the best configurations and write a "
        "table (Parquet), a heatmap and a learning-rate sensitivity figure.",
        epilog=EXAMPLES,
        formatter_class=Formatter,
    )
    s.add_argument("optimizer", help="optimizer name: adam, sgd, rmsprop, ... (adamlab optimizers)")
    s.add_argument("--problem", action="append", required=True, metavar="NAME[:K=V,...]",
                   help="a problem (repeatable), as in compare --problem")  # fmt: skip
    s.add_argument("--grid", action="append", default=[], metavar="NAME=VALUES",
                   help="a grid axis (repeatable)")  # fmt: skip
    s.add_argument("--sample", action="append", default=[], metavar="NAME=RANGE",
                   help="a sampled dimension (repeatable; needs --n)")  # fmt: skip
    s.add_argument("--n", type=positive_int, default=None,
                   help="number of sampled configurations")  # fmt: skip
    s.add_argument("--method", default="halton", choices=["random", "halton", "sobol"],
                   help="sampling method for --sample")  # fmt: skip
    s.add_argument("--fixed", action="append", default=[], metavar="NAME=VALUE",
                   help="a hyperparameter shared by every configuration (repeatable)")  # fmt: skip
    s.add_argument("--seeds", default="1", help="a count (3 = seeds 0,1,2) or a list 0,4,7")
    s.add_argument("--steps", type=positive_int, default=200, help="optimizer steps per run")
    s.add_argument("--target", type=float, default=None,
                   help="tolerance on loss - f* for the steps_to_target column")  # fmt: skip
    s.add_argument("--engine", default="auto", choices=ENGINES,
                   help="how to run: auto picks the fused kernel where it applies, else one "
                   "vectorised pass per group; loop and process run each configuration "
                   "alone (the same table, slower); dask and ray run blocks of the "
                   "vectorised plan on a cluster (the same table)")  # fmt: skip
    s.add_argument("--address", default=None, metavar="ADDR",
                   help="the cluster for --engine dask (tcp://host:8786) or ray (auto, "
                   "ray://host:10001, host:6379); default: start a local one of --workers "
                   "processes")  # fmt: skip
    s.add_argument("--workers", type=int_at_least(1), default=2,
                   help="worker processes for --engine process, and of the local cluster "
                   "that --engine dask or ray starts without --address")  # fmt: skip
    s.add_argument("--block-size", type=int_at_least(1), default=None, metavar="K",
                   help="configurations per block (default: the vectorised budget; dask and "
                   "ray cut about four blocks per worker, none under 16,384 parameters); the "
                   "table does not depend on it")  # fmt: skip
    s.add_argument("--out", default=None, metavar="DIR",
                   help="directory for records (resumable), the table and the figures")  # fmt: skip
    s.add_argument("--force", action="store_true",
                   help="replace a different sweep's files in --out")  # fmt: skip
    s.add_argument("--value", default="final_loss", choices=VALUES,
                   help="the metric to rank and draw")  # fmt: skip
    s.add_argument("--top", type=positive_int, default=10,
                   help="how many configurations to print")  # fmt: skip
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.grid and not args.sample:
        raise UsageError("give at least one --grid or --sample hyperparameter")
    with user_input():
        given = {
            "--grid": [parse_grid_axis(g) for g in args.grid],
            "--sample": [parse_sample_axis(s) for s in args.sample],
            "--fixed": [parse_fixed(f) for f in args.fixed],
        }
        seen: dict[str, str] = {}
        for flag, items in given.items():
            for name, _ in items:
                if name in seen:
                    raise UsageError(
                        f"{name} is given twice ({seen[name]} and {flag}): give each "
                        "hyperparameter once"
                    )
                seen[name] = flag
        axes, space, fixed = (dict(given[f]) for f in ("--grid", "--sample", "--fixed"))
        seeds = parse_seeds(args.seeds)
        configs = grid(**axes) if axes else [{}]
        if space:
            if args.n is None:
                raise UsageError("--sample needs --n, the number of configurations to draw")
            drawn = sample(space, args.n, method=args.method)
            configs = [{**c, **d} for c in configs for d in drawn]
        settings = dict(steps=args.steps, seeds=seeds, fixed=fixed or None, target=args.target)
        plan = make_plan(args.optimizer, configs, args.problem, **settings)  # refusals up front
        where = dict(workers=args.workers, address=args.address, block_size=args.block_size)
        for p in plan.problems:  # a missing extra or an address that does not answer: here
            pick_engine(args.engine, p, plan, **where)
    out = Path(args.out) if args.out else None
    t0 = time.perf_counter()
    with missing_extras():
        try:
            table = sweep(
                args.optimizer, configs, args.problem, out=out, force=args.force,
                engine=args.engine, progress=None, **where, **settings,
            )  # fmt: skip
        except (SweepDirectoryError, BlocksFailedError) as e:  # each failed block: a line above
            raise UsageError(str(e)) from e
    secs = time.perf_counter() - t0
    if args.value not in table:
        raise UsageError(
            f"--value {args.value!r}: the table has no such column (this problem has no "
            f"held-out split?); choose one of {', '.join(c for c in VALUES if c in table)}"
        )
    names = list(dict.fromkeys(k for c in configs for k in c)) + list(fixed)
    print_summary(table, names, args.value, args.top, secs)
    for path, note in table.attrs.get("written", {}).items():
        print(f"wrote {path}" + (f" ({note})" if note else ""))
    if out is not None:
        with missing_extras():
            paths = figures(table, names, [k for k in axes if len(axes[k]) > 1], args.value, out)
        for path in paths:
            print(f"wrote {path}")
    return 0


def print_summary(table: Any, names: list[str], value: str, top: int, secs: float) -> None:
    a = table.attrs
    engines = ", ".join(f"{k}: {v}" for k, v in a["engines"].items())
    print(
        f"{a['optimizer']}: {a['n_configs']} configurations x {len(a['seeds'])} seed(s) x "
        f"{table.problem.nunique()} problem(s), {a['steps']} steps: {a['computed']} runs "
        f"computed, {a['resumed']} resumed, {secs:.2f} s ({engines})"
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


def figures(table: Any, names: list[str], axes: list[str], value: str, out: Path) -> list[Path]:
    """A heatmap of the first two swept axes and a learning-rate sensitivity figure, per
    problem."""
    from matplotlib.figure import Figure

    from ..plot.sweep import plot_heatmap, plot_sensitivity

    paths = []
    for problem, sub in table.groupby("problem"):
        if len(axes) >= 2:
            fig = Figure(figsize=(7.5, 4.8), layout="constrained")
            ax = fig.subplots()
            plot_heatmap(ax, sub, axes[0], axes[1], value, log=value != "steps_to_target")
            ax.set_title(f"{table.attrs['optimizer']} on {problem}", loc="left")
            paths.append(save_figure(fig, out / f"heatmap-{problem}.png", dpi=110))
        if "lr" in names and sub["lr"].nunique() > 1:
            other = next((n for n in axes if n != "lr"), None)
            fig = Figure(figsize=(7, 4.5), layout="constrained")
            ax = fig.subplots()
            plot_sensitivity(ax, sub, "lr", value, by=other or "optimizer",
                             logy=value != "steps_to_target")  # fmt: skip
            ax.legend(fontsize=8)
            ax.set_title(f"{table.attrs['optimizer']} on {problem}: sensitivity to lr", loc="left")
            paths.append(save_figure(fig, out / f"sensitivity-{problem}.png", dpi=110))
    return paths
