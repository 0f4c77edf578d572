"""``adamlab compare``: run optimizers from the same start on the same noise; print, draw, save."""

from __future__ import annotations

import argparse

import numpy as np

from ..lab import SEED_OPTIMIZERS, compare, optimizer_from_spec, problem_from_spec
from ..lab.specs import parse_problem_spec
from ..problems import from_expression
from ..problems.registry import DATA_FACTORIES
from ._common import (
    OUTPUT_FORMATS,
    RESULT_FORMATS,
    UsageError,
    check_output,
    figure_writer,
    missing_extras,
    nonneg_int,
    parse_start,
    positive_float,
    positive_int,
    user_input,
)

#: the seed demo's optimizers, used when ``compare`` gets no ``--opt``
DEFAULT_OPTS = SEED_OPTIMIZERS
DEFAULT_OUT = "adamlab-compare.png"


def add_parser(sub: argparse._SubParsersAction) -> None:
    c = sub.add_parser(
        "compare",
        help="run optimizers from the same start on the same noise; print a table, draw it",
        description="Run optimizers from the same start on the same noise, print a table "
        "(final x, final loss, steps to tolerance) and write a figure. With no options: the "
        "seed demo, SGD and Adam (lr=0.1, betas=0.9/0.999, eps=1e-8) on f(x) = (x - 2)^2 "
        "from x = 8 for 50 steps.",
    )
    what = c.add_mutually_exclusive_group()
    what.add_argument(
        "--problem",
        default="quadratic",
        metavar="NAME[:K=V,...]",
        help="a problem from `adamlab problems`, optionally with parameters "
        "(e.g. ill-conditioned:kappa=100); default: quadratic",
    )
    what.add_argument(
        "--function",
        metavar="EXPR",
        help="your own function of x (1-D), x,y (2-D) or x1..xn, e.g. '(x-2)**2 + 3*sin(x)'",
    )
    c.add_argument(
        "--data",
        metavar="DIR",
        help="the folder of MNIST-format files for the fashion-mnist-* problems (default: "
        "Debian's dataset-fashion-mnist, /usr/share/datasets/fashion-mnist)",
    )
    c.add_argument(
        "--start", metavar="X[,Y,...]", help="start point, comma-separated (e.g. --start=-1.2,1)"
    )
    c.add_argument(
        "--opt",
        action="append",
        metavar="NAME[:K=V,...]",
        help="an optimizer with hyperparameters, e.g. adam:lr=0.1,betas=0.9/0.999 or "
        "adam:lr=inverse_sqrt(0.5) (repeat for several; values: numbers, true/false, a/b "
        f"pairs, schedules); default: the seed pair {' and '.join(DEFAULT_OPTS)}",
    )
    c.add_argument("--steps", type=positive_int, default=50, help="steps per run (default 50)")
    c.add_argument("--seed", type=nonneg_int, default=0, help="noise seed (default 0)")
    c.add_argument(
        "--repeats",
        type=positive_int,
        default=1,
        metavar="N",
        help="run every optimizer on seeds SEED..SEED+N-1 (progress drawn as median and band)",
    )
    c.add_argument(
        "--tol",
        type=positive_float,
        default=1e-3,
        help="tolerance for 'steps to' (the step from which the run stayed within it): "
        "|x - x*| < TOL where x* is known, else f - f* < TOL where f* is, else "
        "|grad f| < TOL (default 1e-3)",
    )
    c.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help=f"figure file: {', '.join(OUTPUT_FORMATS)} (.gif/.html animate the runs); "
        f"default {DEFAULT_OUT}",
    )
    c.add_argument("--no-figure", action="store_true", help="write no figure")
    c.add_argument(
        "--json",
        metavar="FILE",
        help="save the result (manifest + every step) as .json, .csv or .parquet, "
        "for `adamlab plot`",
    )
    c.add_argument(
        "--diagnostics",
        action="store_true",
        help="print what each optimizer did inside (m, m̂, v, v̂, bias factors, effective "
        "step) and add the diagnostics panel to the figure",
    )
    c.set_defaults(func=run)


def problem_from_args(args: argparse.Namespace):
    data = getattr(args, "data", None)
    if args.function is None:
        with user_input("--problem"):
            name, _ = parse_problem_spec(args.problem)
        reads_data = name in DATA_FACTORIES
        if data is not None and not reads_data:
            raise UsageError(
                f"--data is for the problems that read a data folder "
                f"({', '.join(DATA_FACTORIES)}), not {name!r}"
            )
        with user_input("--problem"):
            problem = problem_from_spec(
                args.problem, **({} if data is None else {"data_dir": data})
            )
        if reads_data:  # read and check the files now: a bad folder is one line, nothing written
            with user_input():
                problem.data  # noqa: B018
        return problem
    if data is not None:
        raise UsageError("--data is for the problems that read a data folder, not --function")
    with user_input("--function"):
        return from_expression(args.function)


def run(args: argparse.Namespace) -> int:
    """Run, print the table, write the figure and the result."""
    if args.no_figure and args.out is not None:
        raise UsageError("--out and --no-figure contradict each other: give one of them")
    out = None if args.no_figure else (DEFAULT_OUT if args.out is None else args.out)
    if out is not None:
        check_output(out, OUTPUT_FORMATS, "--out")
    if args.json is not None:
        check_output(args.json, RESULT_FORMATS, "--json")

    problem = problem_from_args(args)
    optimizers = []
    for spec in args.opt or DEFAULT_OPTS:
        with user_input(f"--opt {spec!r}"):
            optimizers.append(optimizer_from_spec(spec))
    start = None
    if args.start is not None:
        start = parse_start(args.start)
        with user_input("--start"):
            problem.check_start(start)
    for spec, opt in zip(args.opt or DEFAULT_OPTS, optimizers, strict=True):
        with user_input(f"--opt {spec!r}"):  # hyperparameters of the problem's shape
            opt.init(np.asarray(problem.x0 if start is None else start, dtype=float))
    if not 0 <= args.seed <= 2**63 - args.repeats:
        raise UsageError(f"--seed: {args.seed} must lie in [0, 2**63 - repeats]")
    seeds = list(range(args.seed, args.seed + args.repeats))
    with missing_extras():
        result = compare(
            problem,
            optimizers,
            steps=args.steps,
            start=start,
            seed=seeds[0] if len(seeds) == 1 else seeds,
            progress=True,
            meta={"command": args.command_line, "tol": args.tol},
        )
        # draw before writing anything; files before printing: a closed stdout (`| head`)
        # must not cost the user the figure
        save_figure = None if out is None else figure_writer(result, out, args.diagnostics)
        if args.json is not None:
            result.save(args.json)
        if save_figure is not None:
            save_figure()
    print(result.table(tol=args.tol))
    if args.diagnostics:
        print()
        print(result.diagnostics_table())
    for path in (args.json, out):
        if path is not None:
            print(f"wrote {path}")
    return 0
