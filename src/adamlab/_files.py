"""Files, on the ground floor (every layer may use it): atomic writes, output checks, strict JSON.

* Writes go to a temporary file in the target's directory, which is fsynced, then
  ``os.replace``d over the target, then the directory is fsynced: a reader (or a machine
  that lost power) never sees a half-written file, and a failed write leaves nothing behind.
* Outputs are checked before any work: the extension (:func:`check_suffix`) and that the
  file can be created (:func:`check_writable`, :func:`check_dir`), each failure one readable
  line.
* JSON is strict: non-finite floats are written as "NaN"/"Infinity"/"-Infinity".
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success it replaces ``path`` atomically.

    On any exception the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent or "."
    )
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _mode_for(target))  # mkstemp makes 0600; give the usual permissions
        fsync_path(tmp)  # the data on disk before the name points at it
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(target.parent)  # and the rename itself


def fsync_path(path: str | os.PathLike[str]) -> None:
    """Flush a written file's data to disk (what a crash or power cut cannot undo)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Flush a directory's entries (a rename or a new file in it) to disk, where the platform
    and file system allow it (Windows cannot open a directory; some file systems refuse)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _mode_for(target: Path) -> int:
    """The existing file's mode, else 0666 less the process umask (what ``open`` would give)."""
    try:
        return target.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_atomic(
    path: str | os.PathLike[str], write: Callable[[IO], None], mode: str = "w"
) -> None:
    """Call ``write(file)`` on a temporary file, then move it to ``path`` atomically."""
    with atomic_path(path) as tmp, open(tmp, mode, encoding=None if "b" in mode else "utf-8") as f:
        write(f)


def check_suffix(
    path: str | os.PathLike[str], allowed: tuple[str, ...], what: str = "output"
) -> str:
    """The lower-case extension of ``path``; ``ValueError`` naming the allowed ones otherwise."""
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise ValueError(
            f"{what} {str(path)!r}: unknown extension {suffix or '(none)'!r}; use one of "
            f"{', '.join(allowed)}"
        )
    return suffix


def _why(e: OSError) -> str:
    return (e.strerror or str(e)).lower()


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Raise ``OSError`` with a one-line reason unless a file can be created at ``path``.

    Creates and removes a probe file in the target directory, so that permission bits,
    read-only and pseudo file systems and missing directories are all caught *before* any
    work is done.
    """
    if not str(path):
        raise FileNotFoundError("cannot write '': the path is empty")
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {str(path)!r}: it is a directory")
    parent = target.parent
    if not parent.exists():
        # the nearest ancestor that exists says why: a file in the way, or a missing folder
        up = parent
        while not up.exists() and up != up.parent:
            up = up.parent
        if up.exists() and not up.is_dir():
            raise NotADirectoryError(
                f"cannot write {str(path)!r}: {str(up)!r} is a file, not a directory"
            )
        raise FileNotFoundError(
            f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist"
        )
    if not parent.is_dir():
        raise NotADirectoryError(
            f"cannot write {str(path)!r}: {str(parent)!r} is a file, not a directory"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=parent)
    except OSError as e:
        raise PermissionError(
            f"cannot write {str(path)!r}: no new files can be created in {str(parent)!r} "
            f"({_why(e)})"
        ) from None
    os.close(fd)
    os.unlink(probe)
    return target


def check_dir(path: str | os.PathLike[str]) -> Path:
    """Create the directory ``path`` (and its parents) and check a file can be written there;
    ``OSError`` with a one-line reason otherwise."""
    out = Path(path)
    up = out
    while not up.exists() and up != up.parent:
        up = up.parent
    if up.exists() and not up.is_dir():
        what = "it is a file" if up == out else f"{str(up)!r} is a file, not a directory"
        raise NotADirectoryError(f"cannot create directory {str(path)!r}: {what}")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"cannot create directory {str(path)!r} ({_why(e)})") from None
    check_writable(out / ".adamlab-probe")
    return out


def check_readable(path: str | os.PathLike[str], what: str = "file") -> Path:
    """``path`` as a Path if it is a readable file; ``OSError`` with a one-line reason."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"cannot read {what} {str(path)!r}: no such file")
    if p.is_dir():
        raise IsADirectoryError(f"cannot read {what} {str(path)!r}: it is a directory")
    if not os.access(p, os.R_OK):
        raise PermissionError(f"cannot read {what} {str(path)!r}: permission denied")
    return p


FIGURE_FORMATS = (".png", ".svg", ".pdf")


def save_figure(fig: Any, path: str | os.PathLike[str], dpi: float | None = None) -> Path:
    """Write a matplotlib figure as PNG, SVG or PDF (by extension), atomically."""
    fmt = check_suffix(path, FIGURE_FORMATS, "figure")[1:]
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, **({} if dpi is None else {"dpi": dpi}))
    return Path(path)


_NONFINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float as the string "NaN", "Infinity" or "-Infinity".

    Python writes bare ``NaN`` tokens, which are not JSON: strict parsers (JavaScript's
    ``JSON.parse``, jq) refuse them. NumPy reads the strings back as floats
    (``np.asarray(["NaN", 1.0], dtype=float)``), so loaders need no special case.
    """
    if isinstance(obj, (np.generic, np.ndarray)):
        obj = obj.tolist()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else ("NaN" if obj != obj else _NONFINITE[obj])
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def dumps(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` that writes valid JSON whatever floats ``obj`` holds."""
    return json.dumps(strict_json(obj), allow_nan=False, **kwargs)
