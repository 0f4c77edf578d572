"""``adamlab serve``: the web playground on this machine (:mod:`adamlab.serve`)."""

from __future__ import annotations

import argparse

from ..serve.command import add_arguments
from ..serve.command import run as run_server


def add_parser(sub: argparse._SubParsersAction) -> None:
    s = sub.add_parser(
        "serve",
        help="start the web playground (http://127.0.0.1:8765/)",
        description="Start the adamlab playground: a local web page whose numbers are "
        "adamlab's own (pip install 'adamlab[serve]').",
    )
    add_arguments(s)  # --host (127.0.0.1), --port (8765; 0 = a free one), --open
    s.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    return run_server(args.host, args.port, args.open)
