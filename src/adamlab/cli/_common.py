"""What every ``adamlab`` subcommand shares: the parser, argument types, output checks, and the
one boundary where a user's mistake becomes one line ``adamlab: error: …`` and exit status 2."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

from .._files import check_suffix, check_writable


class UsageError(Exception):
    """A user's mistake: printed as one line ``adamlab: error: …``, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse, but every usage error is the one line ``adamlab: error: ...``."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        """argparse's, but an unknown option is named before missing required arguments
        (``adamlab sweep --nosuchflag`` is about the flag, not the arguments it displaced)."""
        args = list(sys.argv[1:] if args is None else args)  # (read twice)
        try:
            return super().parse_known_args(args, namespace)
        except UsageError as missing:
            required = [a for a in self._actions if a.required]
            if not required or not str(missing).startswith("the following arguments are required"):
                raise  # (a subcommand's own parser has raised it, or another mistake)
            for action in required:  # again, with nothing required, for the extras
                action.required = False
            try:
                copy = None if namespace is None else argparse.Namespace(**vars(namespace))
                _, extras = super().parse_known_args(args, copy)
            except UsageError:
                raise missing from None
            finally:
                for action in required:
                    action.required = True
            unknown = [
                x
                for x in extras
                if x.startswith("-") and not re.match(r"-$|-\.?\d", x)  # (not "-", not -5)
            ]
            if unknown:
                raise UsageError(f"unrecognized arguments: {' '.join(unknown)}") from None
            raise


class Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Examples kept as written, and every option's default shown in ``--help``."""


@contextlib.contextmanager
def user_input(what: str = "") -> Iterator[None]:
    """Where the command hands the user's text and files to the library: a ValueError or
    TypeError there is the user's (a bad spec, value or range), an OSError a path that cannot
    be used, an ImportError a missing optional package. Each becomes a :class:`UsageError`;
    anything raised elsewhere is a bug and keeps its traceback."""
    try:
        yield
    except (ValueError, TypeError, OSError, ImportError) as e:
        text = str(e) or type(e).__name__
        raise UsageError(f"{what}: {text}" if what else text) from e


@contextlib.contextmanager
def missing_extras() -> Iterator[None]:
    """Around a run: an optional package found missing only then (scikit-learn's data for an
    ML task, pyarrow for Parquet) and a file that cannot be written are the user's to fix."""
    try:
        yield
    except ImportError as e:
        if "pip install" not in str(e):
            raise
        raise UsageError(str(e)) from e
    except OSError as e:
        raise UsageError(str(e)) from e


# ---------------------------------------------------------------------------------------------
# argument types
# ---------------------------------------------------------------------------------------------


def int_at_least(lo: int) -> Callable[[str], int]:
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


positive_int = int_at_least(1)
nonneg_int = int_at_least(0)


def positive_float(text: str) -> float:
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
            raise UsageError(
                f"--start {text!r}: {part.strip()!r} is not a number "
                "(give comma-separated coordinates, e.g. --start=-1.2,1)"
            ) from None
    return values


def join_negative_values(argv: list[str]) -> list[str]:
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
# outputs
# ---------------------------------------------------------------------------------------------

OUTPUT_FORMATS = (".png", ".svg", ".pdf", ".gif", ".html")
RESULT_FORMATS = (".json", ".csv", ".parquet")


def check_output(path: str, allowed: tuple[str, ...], what: str) -> None:
    """Before any work: the extension is known and the file can be created."""
    with user_input():
        check_suffix(path, allowed, what)
        check_writable(path)


def figure_writer(result: Any, path: str, diagnostics: bool) -> Callable[[], Any]:
    """Draw the figure now (where drawing can fail) and return the function that saves it,
    so that a figure that cannot be drawn leaves no file behind, not even the result's."""
    from .. import plot  # plain Figure objects, rendered by Agg: no pyplot, no backend switch

    if Path(path).suffix.lower() in plot.ANIMATION_FORMATS:
        anim = plot.animate(result)
        return lambda: plot.save_animation(anim, path)
    fig = plot.figure_for(result, diagnostics=diagnostics)
    return lambda: plot.save_figure(fig, path)


def fail(message: str) -> None:
    """Print the one-line error."""
    line = " ".join(str(message).split())  # one line, whatever the message held
    sys.stderr.write(f"adamlab: error: {line}\n")
