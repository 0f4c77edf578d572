"""The ``adamlab`` command: run optimizers side by side, sweep them, reproduce the papers.

    adamlab compare                      # the seed demo: SGD and Adam on (x - 2)^2 from 8
    adamlab compare --problem rosenbrock --opt adam:lr=0.05 --opt sgd:lr=1e-3,momentum=0.9
    adamlab problems | adamlab optimizers
    adamlab plot result.json --out again.png
    adamlab sweep adam --problem rosenbrock --grid lr=1e-4:1:9:log --grid beta2=0.9,0.999
    adamlab reproduce bias-correction
    adamlab serve                        # the web playground on http://127.0.0.1:8765/

One module per subcommand: each parses, calls the library, prints and writes files. A user's
mistake (a bad spec, value or path, a missing optional package) ends with one line
``adamlab: error: …`` on stderr and exit status 2, before any work where it can be found
before; anything else is a bug and shows its traceback. ``ADAMLAB_DEBUG=1`` shows the
traceback of a user error too.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .. import __version__
from . import compare, listing, plot, reproduce, serve, sweep
from ._common import Parser, UsageError, fail, join_negative_values

__all__ = ["UsageError", "build_parser", "main"]


def build_parser() -> Parser:
    """The full ``adamlab`` parser."""
    parser = Parser(
        prog="adamlab",
        description="A lab for the Adam optimizer family: run optimizers side by side, "
        "see what they did.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"adamlab {__version__}")
    sub = parser.add_subparsers(title="commands", metavar="COMMAND", parser_class=Parser)
    compare.add_parser(sub)
    listing.add_parsers(sub)
    plot.add_parser(sub)
    sweep.add_parser(sub)
    reproduce.add_parser(sub)
    serve.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return its exit status (0 ok, 2 bad input, 130 interrupted)."""
    raw = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(join_negative_values(raw))
        if not hasattr(args, "func"):
            parser.print_help()
            return 0
        args.command_line = ["adamlab", *raw]  # recorded in result manifests
        return int(args.func(args) or 0)
    except SystemExit as e:  # argparse's --help and --version
        return e.code if isinstance(e.code, int) else 0
    except UsageError as e:
        if os.environ.get("ADAMLAB_DEBUG"):
            raise
        fail(str(e))
        return 2
    except MemoryError:  # a run asked for more than the machine has (steps, seeds, dim, ...)
        if os.environ.get("ADAMLAB_DEBUG"):
            raise
        fail(
            "not enough memory for this run: ask for fewer steps, repeats, seeds, "
            "configurations or dimensions"
        )
        return 2
    except BrokenPipeError:  # `adamlab compare | head`: stop quietly, like other tools
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        sys.stderr.write("adamlab: interrupted\n")
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
