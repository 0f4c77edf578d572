"""The ``adamlab`` command: run optimizers side by side, list what exists, redraw results.

    adamlab compare                      # the seed demo: SGD and Adam on (x - 2)^2 from 8
    adamlab compare --problem rosenbrock --opt adam:lr=0.05 --opt sgd:lr=1e-3,momentum=0.9
    adamlab problems | adamlab optimizers
    adamlab plot result.json --out again.png

The command only parses, calls :mod:`adamlab.lab` and :mod:`adamlab.plot`, prints and writes
files. Bad input ends with one line ``adamlab: error: ...`` on stderr and exit status 2.
Imports are lazy so that the default run starts fast.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from . import __version__

#: the seed demo's optimizers, used when ``compare`` gets no ``--opt``
DEFAULT_OPTS = ("sgd:lr=0.1", "adam:lr=0.1,betas=0.9/0.999,eps=1e-8")
DEFAULT_OUT = "adamlab-compare.png"
OUTPUT_FORMATS = (".png", ".svg", ".pdf", ".gif", ".html")
RESULT_FORMATS = (".json", ".csv", ".parquet")


class CommandError(Exception):
    """A user error found by the command itself (printed as one line, exit 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but every usage error is the one line ``adamlab: error: ...``."""

    def error(self, message: str) -> NoReturn:
        _fail(message)


def _fail(message: str) -> NoReturn:
    line = " ".join(str(message).split())  # one line, whatever the message held
    sys.stderr.write(f"adamlab: error: {line}\n")
    raise SystemExit(2)


# ---------------------------------------------------------------------------------------------
# argument types
# ---------------------------------------------------------------------------------------------


def _int_at_least(lo: int) -> Callable[[str], int]:
    """An argparse type: a whole number ≥ ``lo``, else a one-line error."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"must be at least {lo}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)
_nonneg_int = _int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def parse_start(text: str) -> list[float]:
    """``"-1.2,1"`` → ``[-1.2, 1.0]`` (finiteness is checked by the problem)."""
    values = []
    for part in text.split(","):
        try:
            values.append(float(part))
        except ValueError:
            raise CommandError(
                f"--start {text!r}: {part.strip()!r} is not a number "
                "(give comma-separated coordinates, e.g. --start=-1.2,1)"
            ) from None
    return values


def _join_negative_values(argv: list[str]) -> list[str]:
    """Let ``--start -1.2,1`` through: argparse would read ``-1.2,1`` as an option."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        tok = argv[i]
        if tok == "--start" and i + 1 < len(argv) and re.match(r"^-[\d.]", argv[i + 1]):
            out.append(f"--start={argv[i + 1]}")
            i += 2
            continue
        out.append(tok)
        i += 1
    return out


# ---------------------------------------------------------------------------------------------
# the parser
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The full ``adamlab`` parser (including subcommands registered by other packages)."""
    parser = _Parser(
        prog="adamlab",
        description="A lab for the Adam optimizer family: run optimizers side by side, "
        "see what they did.",
    )
    parser.add_argument("--version", action="version", version=f"adamlab {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")

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
        "--start", metavar="X[,Y,...]", help="start point, comma-separated (e.g. --start=-1.2,1)"
    )
    c.add_argument(
        "--opt",
        action="append",
        metavar="NAME[:K=V,...]",
        help="an optimizer with hyperparameters, e.g. adam:lr=0.1,betas=0.9/0.999 (repeat "
        "for several; values: numbers, true/false, a/b for pairs); default: the seed pair "
        f"{' and '.join(DEFAULT_OPTS)}",
    )
    c.add_argument("--steps", type=_positive_int, default=50, help="steps per run (default 50)")
    c.add_argument("--seed", type=_nonneg_int, default=0, help="noise seed (default 0)")
    c.add_argument(
        "--repeats",
        type=_positive_int,
        default=1,
        metavar="N",
        help="run every optimizer on seeds SEED..SEED+N-1 (progress drawn as median and band)",
    )
    c.add_argument(
        "--tol",
        type=_positive_float,
        default=1e-3,
        help="tolerance for 'steps to': |x - x*| < TOL where x* is known, else f - f* < TOL "
        "where f* is, else |grad f| < TOL (default 1e-3)",
    )
    c.add_argument(
        "--out",
        default=DEFAULT_OUT,
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
    c.set_defaults(func=cmd_compare)

    p = sub.add_parser("problems", help="list the test problems", description="List the problems.")
    p.set_defaults(func=cmd_problems)
    o = sub.add_parser(
        "optimizers", help="list the optimizers and their defaults", description="List optimizers."
    )
    o.set_defaults(func=cmd_optimizers)

    pl = sub.add_parser(
        "plot",
        help="redraw a saved result without re-running it",
        description="Redraw a result saved with `adamlab compare --json`.",
    )
    pl.add_argument("result", metavar="RESULT", help="a .json, .csv or .parquet result")
    pl.add_argument(
        "--out", metavar="FILE", help="figure file (default: RESULT with the extension .png)"
    )
    pl.add_argument("--diagnostics", action="store_true", help="add the diagnostics panel")
    pl.add_argument("--tol", type=_positive_float, default=1e-3, help="tolerance for the table")
    pl.set_defaults(func=cmd_plot)

    register = _external_register()
    if register is not None:
        register(sub)
    return parser


def _external_register() -> Callable[[Any], None] | None:
    """``adamlab.reproduce.commands.register`` (sweep, reproduce) when that package exists."""
    try:
        from .reproduce.commands import register
    except ImportError:
        return None
    return register


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------


def _check_output(path: str, allowed: tuple[str, ...], what: str) -> None:
    """Before any work: the extension is known and the file can be created."""
    from pathlib import Path

    from .lab._io import check_writable

    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise CommandError(
            f"{what} {path!r}: unknown extension {suffix or '(none)'!r}; use one of "
            f"{', '.join(allowed)}"
        )
    check_writable(path)


def _problem_from_args(args: argparse.Namespace) -> Any:
    from .lab import get_problem

    if args.function is None:
        return get_problem(args.problem)
    from .problems import from_expression

    return from_expression(args.function)


def _figure_writer(result: Any, path: str, diagnostics: bool) -> Any:
    """Draw the figure now (where drawing can fail) and return the function that saves it,
    so that a figure that cannot be drawn leaves no file behind, not even the result's."""
    from pathlib import Path

    from . import plot  # plain Figure objects, rendered by Agg: no pyplot, no backend switch

    if Path(path).suffix.lower() in plot.ANIMATION_FORMATS:
        anim = plot.animate(result)
        return lambda: plot.save_animation(anim, path)
    fig = plot.figure_for(result, diagnostics=diagnostics)
    return lambda: plot.save_figure(fig, path)


def cmd_compare(args: argparse.Namespace) -> int:
    """``adamlab compare``: run, print the table, write the figure and the result."""
    out = None if args.no_figure else args.out
    if out is not None:
        _check_output(out, OUTPUT_FORMATS, "--out")
    if args.json is not None:
        _check_output(args.json, RESULT_FORMATS, "--json")

    from .lab import compare, optimizer_from_spec

    problem = _problem_from_args(args)
    optimizers = []
    for spec in args.opt or DEFAULT_OPTS:
        try:
            optimizers.append(optimizer_from_spec(spec))
        except (ValueError, TypeError) as e:
            raise CommandError(f"--opt {spec!r}: {e}") from None
    start = None if args.start is None else parse_start(args.start)
    seeds = list(range(args.seed, args.seed + args.repeats))
    result = compare(
        problem,
        optimizers,
        steps=args.steps,
        start=start,
        seed=seeds[0] if len(seeds) == 1 else seeds,
        progress=True,
        meta={"command": args.command_line},
    )
    # draw before writing anything; files before printing: a closed stdout (`| head`) must
    # not cost the user the figure
    save_figure = None if out is None else _figure_writer(result, out, args.diagnostics)
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


def cmd_plot(args: argparse.Namespace) -> int:
    """``adamlab plot RESULT``: load a saved result, print its table, draw it again."""
    from pathlib import Path

    from .lab import Result

    out = args.out or str(Path(args.result).with_suffix(".png"))
    _check_output(out, OUTPUT_FORMATS, "--out")
    result = Result.load(args.result)
    _figure_writer(result, out, args.diagnostics)()
    print(result.table(tol=args.tol))
    print(f"wrote {out}")
    return 0


def cmd_problems(args: argparse.Namespace) -> int:
    """``adamlab problems``: one line per problem: name, dimension, start, description."""
    from . import problems
    from .lab.specs import fmt_value

    registry = problems.PROBLEMS
    width = max(map(len, registry))
    for name, p in registry.items():
        start = ",".join(fmt_value(float(v)) for v in p.x0) if p.dim <= 4 else f"{p.dim} values"
        params = _problem_parameters(p)
        extra = f" [{params}]" if params else ""
        print(f"{name:<{width}}  dim {p.dim:<3} start {start:<12} {p.description}{extra}")
    return 0


def _problem_parameters(problem: Any) -> str:
    """``kappa=10, theta=0``: a problem's own dataclass fields beyond the base contract."""
    import dataclasses

    from .lab.specs import fmt_value
    from .problems import Problem

    base = {f.name for f in dataclasses.fields(Problem)}
    parts = []
    for f in dataclasses.fields(problem):
        if f.name in base or f.name.startswith("_") or not f.repr:
            continue
        value = getattr(problem, f.name)
        if isinstance(value, (bool, int, float, str)):
            parts.append(f"{f.name}={fmt_value(value)}")
    return ", ".join(parts)


def cmd_optimizers(args: argparse.Namespace) -> int:
    """``adamlab optimizers``: one line per optimizer with its default hyperparameters."""
    from .lab.specs import fmt_value
    from .optim import OPTIMIZERS

    width = max(map(len, OPTIMIZERS))
    for name, cls in OPTIMIZERS.items():
        d = cls().describe()
        d.pop("name")
        d.pop("nonfinite", None)
        hypers = " ".join(f"{k}={fmt_value(v, sep='/')}" for k, v in d.items())
        print(f"{name:<{width}}  {hypers}")
    return 0


# ---------------------------------------------------------------------------------------------
# entry point
# ---------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status (0 ok, 2 bad input, 130 interrupted)."""
    raw = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(_join_negative_values(raw))
        if not hasattr(args, "func"):
            parser.print_help()
            return 0
        args.command_line = ["adamlab", *raw]  # recorded in result manifests
        return int(args.func(args) or 0)
    except SystemExit as e:  # argparse (--help, --version, usage errors) and _fail
        return e.code if isinstance(e.code, int) else 0
    except BrokenPipeError:  # `adamlab compare | head`: stop quietly, like other tools
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (CommandError, ValueError, TypeError, OSError, ImportError) as e:
        try:
            _fail(str(e) or type(e).__name__)
        except SystemExit:
            return 2
    except KeyboardInterrupt:
        sys.stderr.write("adamlab: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
