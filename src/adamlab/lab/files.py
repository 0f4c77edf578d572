"""Saving and loading a :class:`~adamlab.lab.Result` (written atomically).

* ``.json``: everything — manifest, trajectories and loss surface — in one file, loadable
  with :meth:`Result.load` and ``adamlab plot`` (no pandas needed);
* ``.csv``: the tidy table (one row per optimizer × seed × step), plus the manifest next to
  it as ``<file>.manifest.json`` (pandas needed);
* ``.parquet``: the tidy table with the manifest in the file's metadata (pandas + pyarrow).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from .._files import atomic_path, dumps, write_atomic
from .trajectory import Trajectory

FORMAT = "adamlab.result/1"


def to_frame(result: Any) -> Any:
    """A tidy pandas DataFrame: one row per optimizer × seed × step.

    Columns: label, optimizer, seed, step, loss, grad_norm, distance, step_norm,
    ``x[i]`` and ``dx[i]`` per tracked coordinate i, and one column per diagnostic
    (``bias1``) or per diagnostic and coordinate (``m_hat[0]``). Needs pandas
    (``pip install 'adamlab[data]'``).
    """
    pd = _pandas()
    frames = [pd.DataFrame(_frame_columns(t, result.tracked)) for t in result.trajectories]
    return pd.concat(frames, ignore_index=True)


def save(result: Any, path: str | os.PathLike[str]) -> Path:
    """Write ``.json`` (everything), ``.csv`` (+ ``.manifest.json``) or ``.parquet``,
    atomically. Returns the path."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".json":
        text = dumps(result.to_dict(), separators=(",", ":"))
        write_atomic(path, lambda f: f.write(text))
    elif suffix == ".csv":
        frame = to_frame(result)
        manifest = dumps(result.manifest(), separators=(",", ":"))
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, float_format="%.17g")
            write_atomic(_sidecar(path), lambda f: f.write(manifest))
    elif suffix == ".parquet":
        frame = to_frame(result)
        pa, pq = _pyarrow()
        table = pa.Table.from_pandas(frame, preserve_index=False)
        meta = dict(table.schema.metadata or {})
        meta[b"adamlab"] = dumps(result.manifest()).encode()
        with atomic_path(path) as tmp:
            pq.write_table(table.replace_schema_metadata(meta), tmp)
    else:
        raise ValueError(f"cannot save a result as {path.name!r}: use .json, .csv or .parquet")
    return path


class NotAResultError(ValueError):
    """A file :func:`read` cannot take as a saved result, said in its own words (a wrong
    extension, no manifest, another format, not JSON)."""


def read(path: Path) -> tuple[dict[str, Any], list[Trajectory]]:
    """The manifest and the trajectories of a saved result."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise NotAResultError(f"{str(path)!r} is not a saved result: {e}") from None
        _check_format(data, path)
        trajs = [Trajectory.from_dict(d) for d in data["trajectories"]]
        return data, trajs
    if suffix == ".csv":
        pd = _pandas()
        with open(_sidecar(path), encoding="utf-8") as f:
            manifest = json.load(f)
        _check_format(manifest, path)
        return manifest, _trajectories_from_frame(pd.read_csv(path), manifest)
    if suffix == ".parquet":
        _pandas()
        _, pq = _pyarrow()
        table = pq.read_table(path)
        raw = (table.schema.metadata or {}).get(b"adamlab")
        if raw is None:
            raise NotAResultError(f"{str(path)!r} holds no adamlab manifest")
        manifest = json.loads(raw)
        _check_format(manifest, path)
        return manifest, _trajectories_from_frame(table.to_pandas(), manifest)
    raise NotAResultError(f"cannot load {str(path)!r}: expected .json, .csv or .parquet")


def _frame_columns(t: Trajectory, tracked: list[int]) -> dict[str, np.ndarray]:
    n = len(t.loss)
    cols: dict[str, Any] = {
        "label": [t.label] * n,
        "optimizer": [t.optimizer.get("name", "")] * n,
        "seed": np.full(n, t.seed),
        "step": t.t,
        "loss": t.loss,
        "grad_norm": t.grad_norm,
        "distance": t.distance if t.distance is not None else np.full(n, np.nan),
        "step_norm": t.step_norm,
    }
    for j, i in enumerate(tracked):
        cols[f"x[{i}]"] = t.x[:, j]
    for j, i in enumerate(tracked):
        cols[f"dx[{i}]"] = t.step[:, j]
    for k, v in t.diagnostics.items():
        if v.ndim == 1:
            cols[k] = v
        else:
            for j, i in enumerate(tracked):
                cols[f"{k}[{i}]"] = v[:, j]
    return cols


def _check_format(data: Any, path: Path) -> None:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise NotAResultError(f"{str(path)!r} is not a saved adamlab result (format {FORMAT})")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".manifest.json")


def _trajectories_from_frame(frame, manifest: dict[str, Any]) -> list[Trajectory]:
    tracked = manifest["tracked"]
    hyper = {o["label"]: o["hyperparameters"] for o in manifest["optimizers"]}
    out = []
    for run in manifest["runs"]:
        rows = frame[(frame["label"] == run["label"]) & (frame["seed"] == run["seed"])]
        rows = rows.sort_values("step")
        diag = {}
        for k, kind in run["diagnostics"].items():
            if kind == "shared":
                diag[k] = rows[k].to_numpy(np.float64)
            else:
                diag[k] = np.stack([rows[f"{k}[{i}]"].to_numpy(np.float64) for i in tracked], 1)
        distance = rows["distance"].to_numpy(np.float64)
        out.append(
            Trajectory(
                label=run["label"],
                optimizer=hyper[run["label"]],
                seed=int(run["seed"]),
                x=np.stack([rows[f"x[{i}]"].to_numpy(np.float64) for i in tracked], axis=1),
                loss=rows["loss"].to_numpy(np.float64),
                grad_norm=rows["grad_norm"].to_numpy(np.float64),
                distance=None if manifest["problem"].get("x_star") is None else distance,
                step=np.stack([rows[f"dx[{i}]"].to_numpy(np.float64) for i in tracked], axis=1),
                step_norm=rows["step_norm"].to_numpy(np.float64),
                diagnostics=diag,
                diverged_at=run["diverged_at"],
                diverged_reason=run["diverged_reason"],
                final=dict(run.get("final") or {}),
                t=rows["step"].to_numpy(np.int64),
            )
        )
    return out


def _pandas():
    try:
        import pandas
    except ImportError:
        raise ImportError(
            "tables and CSV/Parquet files need pandas: pip install 'adamlab[data]' "
            "(the .json format needs nothing extra)"
        ) from None
    return pandas


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ImportError("Parquet files need pyarrow: pip install 'adamlab[data]'") from None
    return pa, pq
