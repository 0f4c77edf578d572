"""``adamlab reproduce NAME``: a figure from the Adam papers, its summary and its numbers."""

from __future__ import annotations

import argparse
import sys

from .._files import check_dir
from ..reproduce import run as run_reproduction
from ..reproduce.registry import DATA_REPRODUCTIONS, DESCRIPTIONS, REPRODUCTIONS
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
    r.add_argument(
        "name",
        nargs="?",
        help="which reproduction, or 'all' (without --data, all but "
        + " and ".join(DATA_REPRODUCTIONS)
        + ")",
    )
    r.add_argument("--out", default=".", help="output directory (default: here)")
    r.add_argument("--quick", action="store_true", help="reduced size (seconds)")
    r.add_argument("--list", action="store_true", help="list the reproductions")
    r.add_argument(
        "--data",
        metavar="DIR",
        help="for " + ", ".join(DATA_REPRODUCTIONS) + ": a folder of MNIST-format files, or "
        "'digits' (default: Fashion-MNIST from Debian's dataset-fashion-mnist; digits with "
        "--quick)",
    )
    r.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.list and args.name is not None:
        raise UsageError(f"--list takes no name (got {args.name!r}): 'adamlab reproduce --list'")
    if args.name == "":
        raise UsageError("the reproduction's name is empty; 'adamlab reproduce --list' lists them")
    if args.list or not args.name:
        for k, v in DESCRIPTIONS.items():
            print(f"{k:<16} {v}")
        return 0
    data = getattr(args, "data", None)
    names = list(REPRODUCTIONS) if args.name == "all" else [args.name]
    if args.name == "all" and data is None:
        # the Kingma & Ba runs read a data set and take tens of minutes: by name, or with --data
        names = [n for n in names if n not in DATA_REPRODUCTIONS]
    for name in names:
        if name not in REPRODUCTIONS:
            raise UsageError(
                f"unknown reproduction {name!r}; choose one of {', '.join(REPRODUCTIONS)} or all"
            )
    readers = [n for n in names if n in DATA_REPRODUCTIONS]
    if data is not None and not readers:
        raise UsageError(f"--data is for {', '.join(DATA_REPRODUCTIONS)}, not {args.name}")
    if readers:  # read and check the data before anything runs or is written
        from ..reproduce.kingma_ba import load_data

        with user_input("--data" if data is not None else ""):
            load_data(data, quick=args.quick)
    with user_input():
        check_dir(args.out)
    for name in names:
        with missing_extras():
            if name in DATA_REPRODUCTIONS:
                r = REPRODUCTIONS[name](check_dir(args.out), quick=args.quick, data=data,
                                        progress=_progress)  # fmt: skip
            else:
                r = run_reproduction(name, args.out, quick=args.quick)
        print(r.summary.rstrip())
        for f in r.files:
            print(f"wrote {f}")
        print(f"({r.seconds:.1f} s)\n")
    return 0


def _progress(text: str) -> None:
    """What a long reproduction is doing, on stderr (one line per training run)."""
    sys.stderr.write(f"adamlab: {text}\n")
    sys.stderr.flush()
