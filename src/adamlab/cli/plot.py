"""``adamlab plot RESULT``: load a saved result, print its table, draw it again."""

from __future__ import annotations

import argparse
from pathlib import Path

from .._files import check_readable
from ..lab import Result
from ._common import (
    OUTPUT_FORMATS,
    UsageError,
    check_output,
    figure_writer,
    missing_extras,
    positive_float,
    user_input,
)


def add_parser(sub: argparse._SubParsersAction) -> None:
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
    pl.add_argument("--tol", type=positive_float, default=1e-3, help="tolerance for the table")
    pl.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.result:
        raise UsageError("the result's path is empty")
    out = args.out if args.out is not None else str(Path(args.result).with_suffix(".png"))
    check_output(out, OUTPUT_FORMATS, "--out")
    with user_input():
        check_readable(args.result, "result")
        result = Result.load(args.result)
    with missing_extras():
        figure_writer(result, out, args.diagnostics)()
    print(result.table(tol=args.tol))
    print(f"wrote {out}")
    return 0
