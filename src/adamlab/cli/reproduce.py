"""``adamlab reproduce NAME``: a figure from the Adam papers, its summary and its numbers."""

from __future__ import annotations

import argparse

from .._files import check_dir
from ..reproduce import run as run_reproduction
from ..reproduce.registry import DESCRIPTIONS, REPRODUCTIONS
from ._common import UsageError, missing_extras, user_input


def add_parser(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser(
        "reproduce",
        help="reproduce a figure from the Adam papers (" + ", ".join(REPRODUCTIONS) + ")",
        description="Run a reproduction, write its figure (PNG), a text summary and its "
        "numbers (JSON) into --out, and print the summary.\n\n"
        + "\n".join(f"  {k:<16} {v}" for k, v in DESCRIPTIONS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("name", nargs="?", help="which reproduction, or 'all'")
    r.add_argument("--out", default=".", help="output directory (default: here)")
    r.add_argument("--quick", action="store_true", help="reduced size (seconds)")
    r.add_argument("--list", action="store_true", help="list the reproductions")
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.list or not args.name:
        for k, v in DESCRIPTIONS.items():
            print(f"{k:<16} {v}")
        return 0
    names = list(REPRODUCTIONS) if args.name == "all" else [args.name]
    for name in names:
        if name not in REPRODUCTIONS:
            raise UsageError(
                f"unknown reproduction {name!r}; choose one of {', '.join(REPRODUCTIONS)} or all"
            )
    with user_input():
        check_dir(args.out)
    for name in names:
        with missing_extras():
            r = run_reproduction(name, args.out, quick=args.quick)
        print(r.summary.rstrip())
        for f in r.files:
            print(f"wrote {f}")
        print(f"({r.seconds:.1f} s)\n")
    return 0
