"""The sweep directory: resumable records, and a manifest that says what sweep they belong to.

``records.jsonl`` holds every finished (problem, configuration, seed) record, one JSON line
each, flushed and fsynced: a killed sweep loses at most a torn last line, which the next open
drops, and a rerun computes only what is missing. ``sweep.json`` says what the directory is
(optimizer, problems, run settings, adamlab's version): a different sweep pointed at the same
directory is refused with one line, unless ``force=True``, which first removes what an
earlier sweep wrote there (and nothing else).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ... import __version__
from ..._files import check_dir, dumps, fsync_dir, write_atomic
from .plan import Plan, problem_id

__all__ = ["RecordStore", "SweepDirectory", "SweepDirectoryError"]


class SweepDirectoryError(ValueError):
    """The output directory holds a different sweep (and ``force`` was not given)."""


#: the files a sweep writes into its directory (what force=True may remove)
OWN_FILES = ("records.jsonl", "sweep.json", "sweep.parquet", "sweep.csv")
OWN_PATTERNS = ("heatmap-*.png", "sensitivity-*.png")


class RecordStore:
    """Append-only JSON-lines file of finished records, deduplicated by key on load.

    Each record is one line written with a single ``write`` then flushed and fsynced, so a
    killed process leaves at most one torn last line, which the next open drops.
    """

    def __init__(self, directory: str | os.PathLike) -> None:
        self.dir = Path(directory)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            self.path = self.dir / "records.jsonl"
            new = not self.path.exists()
            self._repair()
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
            if new:
                fsync_dir(self.dir)  # the new file's name survives a crash too
        except OSError as e:
            raise OSError(
                f"cannot write sweep records to {str(directory)!r}: {e.strerror}"
            ) from None
        self.records: dict[str, dict] = {}
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self.records.setdefault(rec["key"], rec)

    def _repair(self) -> None:
        """Cut a torn last line (a write interrupted by a kill)."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as fh:
                fh.truncate(data.rfind(b"\n") + 1)
                os.fsync(fh.fileno())

    def __contains__(self, key: str) -> bool:
        return key in self.records

    def add(self, recs: Iterable[dict], *, sync: bool = True) -> None:
        lines = []
        for rec in recs:
            if rec["key"] in self.records:
                continue
            self.records[rec["key"]] = rec
            lines.append(json.dumps(rec, default=_jsonable) + "\n")
        for line in lines:
            self._fh.write(line)
        self._fh.flush()
        if sync and lines:
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return repr(v)


def identity(plan: Plan) -> dict[str, Any]:
    """What makes two sweeps the same sweep (more configurations or seeds extend it)."""
    return {
        "optimizer": plan.cls.name,
        "label": plan.label,
        "problems": [problem_id(p) for p in plan.problems],
        "run": plan.run_settings,
    }


class SweepDirectory:
    """A sweep's output directory: its manifest, its record store, its table and figures."""

    def __init__(self, directory: str | os.PathLike, plan: Plan, *, force: bool = False) -> None:
        self.dir = check_dir(directory)
        self.manifest = self.dir / "sweep.json"
        want = identity(plan)
        if self.manifest.exists() and not force:
            try:
                have = json.loads(self.manifest.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                have = None
            if have is None or {k: have.get(k) for k in want} != json.loads(dumps(want)):
                raise SweepDirectoryError(
                    f"{str(directory)!r} holds a different sweep "
                    f"({_describe(have)}; this one: {_describe(want)}); choose another "
                    "directory, or pass force=True (--force) to replace it"
                )
        elif not self.manifest.exists() and (self.dir / "records.jsonl").exists() and not force:
            raise SweepDirectoryError(
                f"{str(directory)!r} holds sweep records without a manifest (from an older "
                "adamlab?); choose another directory, or pass force=True (--force) to replace it"
            )
        if force:
            for name in OWN_FILES:
                (self.dir / name).unlink(missing_ok=True)
            for pattern in OWN_PATTERNS:
                for path in self.dir.glob(pattern):
                    path.unlink()
        text = dumps({**want, "adamlab": __version__}, indent=1)
        write_atomic(self.manifest, lambda f: f.write(text + "\n"))
        self.store = RecordStore(self.dir)


def _describe(m: Any) -> str:
    if not isinstance(m, dict):
        return "an unreadable manifest"
    run = m.get("run") or {}
    return f"{m.get('label')} on {', '.join(m.get('problems') or [])}, {run.get('steps')} steps"
