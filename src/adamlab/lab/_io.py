"""Atomic file writes: a temp file in the target's directory, then ``os.replace``.

A reader never sees a half-written file, and a failed write leaves nothing behind.
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
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


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


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Raise ``OSError`` (with a readable message) unless a file can be created at ``path``.

    Creates and removes a probe file in the target directory, so that permission bits,
    read-only file systems and missing directories are all caught *before* any work is done.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write {str(path)!r}: it is a directory")
    parent = target.parent
    if not parent.is_dir():
        raise FileNotFoundError(
            f"cannot write {str(path)!r}: directory {str(parent)!r} does not exist"
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".probe", dir=parent)
    except OSError as e:
        raise PermissionError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(probe)
    return target


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
