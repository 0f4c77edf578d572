"""The sweep table: built from records or straight from the kernel's columns, saved, summarised.

One row per (problem, configuration, seed): ``problem``, ``optimizer``, ``config_id``,
``seed``, one column per hyperparameter, the metrics (``final_loss``, ``best_loss``, ``gap``,
``steps_to_target``, ``diverged_at``, ``diverged``, ``loss0``, ``final_x`` up to 8
coordinates, and the problem's held-out metrics, e.g. ``test_loss``), and ``key``.
:func:`grid_summary`, :func:`curve_summary` and :func:`performance_profile` aggregate it over
seeds (what :mod:`adamlab.plot.sweep` draws).
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ... import _exact as ex
from ..._files import atomic_path
from .plan import Block, Plan, problem_id

__all__ = ["curve_summary", "grid_summary", "performance_profile", "save_table"]

NO_PYARROW = "pyarrow not installed: pip install 'adamlab[data]' for Parquet"


def _storable(v: Any) -> Any:
    """Table cells Parquet can hold: tuples become lists, schedules their repr."""
    if isinstance(v, tuple):
        return [_storable(e) for e in v]
    if v is None or isinstance(v, (str, int, float, bool, list)):
        return v
    return repr(v)


#: what a sweep says when an optional package would have changed how (never what) it ran
NO_PYARROW = "pyarrow not installed: pip install 'adamlab[data]' for Parquet"
NO_NUMBA = "numba not installed: pip install 'adamlab[fast]' runs it fused, with the same results"


def _table_column(values: list[Any], name: str) -> Any:
    """A config column for the table, typed as pandas types it from the rows' dicts."""
    kinds = set(map(type, values))
    if kinds == {float}:
        return np.array(values, dtype=np.float64)
    if kinds == {bool}:
        return np.array(values, dtype=bool)
    import pandas as pd

    return pd.DataFrame([{name: v} for v in values])[name].to_numpy()


def save_table(table: Any, out: Path) -> tuple[Path, str | None]:
    """Write the table atomically: Parquet if pyarrow is there, else CSV (and say why)."""
    note = None
    try:
        import pyarrow  # noqa: F401

        path, writer = out / "sweep.parquet", "to_parquet"
    except ImportError:
        path, writer = out / "sweep.csv", "to_csv"
        note = NO_PYARROW
    frame = table.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(_storable)
            kinds = {type(v) for v in frame[col] if v is not None}
            if str in kinds and len(kinds) > 1:  # e.g. numbers and schedules: all as text
                frame[col] = frame[col].map(lambda v: v if isinstance(v, str) else repr(v))
    with atomic_path(path) as tmp:
        getattr(frame, writer)(tmp, index=False)
    return path, note


def from_records(plan: Plan, done: dict[str, dict]) -> Any:
    """The table, rows in plan order (per problem, configuration-major, seed-minor)."""
    import pandas as pd

    return pd.DataFrame([done[k] for i in range(len(plan.problems)) for k in plan.row_keys(i)])


def from_kernel(plan: Plan, engine: Any, bar: Any) -> Any:
    """The table built column by column from the fused kernel (no per-run dicts): the same
    rows, values and dtypes as :func:`from_records`. The kernel is deterministic and the
    problem not stochastic, so each group runs once and its results fill every seed's rows."""
    import pandas as pd

    K, S = len(plan.configs), len(plan.unique_seeds)
    n = K * S
    metrics: dict[str, list[np.ndarray]] = {}
    for i, p in enumerate(plan.problems):
        cols: dict[str, np.ndarray] = {}
        for sig, cids in plan.groups.items():
            block = Block(p, i, plan.unique_seeds[0], sig, tuple(cids))
            res = engine.columns(plan, block)
            if not cols:
                cols = {k: np.empty((n, *v.shape[1:]), v.dtype) for k, v in res.items()}
            rows = np.asarray(cids) * S
            for j in range(S):
                for k, v in res.items():
                    cols[k][rows + j] = v
                bar.update(len(cids))
        for k, v in cols.items():
            metrics.setdefault(k, []).append(v)
    P = len(plan.problems)
    cid = np.repeat(np.arange(K, dtype=np.int64), S)
    table: dict[str, Any] = {
        "problem": [pid for p in plan.problems for pid in [problem_id(p)] * n],
        "optimizer": [plan.label] * (n * P),
        "config_id": np.tile(cid, P),
        "seed": np.tile(np.array(plan.unique_seeds, dtype=np.int64), K * P),
    }
    for name in plan.names:
        col = _table_column(list(map(operator.itemgetter(name), plan.configs)), name)
        table[name] = np.tile(np.repeat(col, S), P)
    for k, parts in metrics.items():
        v = np.concatenate(parts)
        if k == "final_x":  # a list of coordinates per row, as in a record
            v = np.fromiter(v.tolist(), dtype=object, count=len(v))
        table[k] = v
    table["key"] = list(itertools.chain.from_iterable(plan.row_keys(i) for i in range(P)))
    return pd.DataFrame(table)


# --------------------------------------------------------------------------------------------
# Summaries over seeds (what the plots draw)
# --------------------------------------------------------------------------------------------


def grid_summary(table, x: str, y: str, value: str = "final_loss", *, agg: str = "median"):
    """Aggregate a sweep table over seeds onto the (x, y) grid.

    Returns ``(xs, ys, values, diverged_frac)``: the sorted distinct x and y values, and two
    arrays of shape (len(ys), len(xs)) — ``agg`` ("median", "mean", "min", "max") of
    ``value`` over the rows of each cell (non-finite values ignored; NaN when none), and the
    fraction of the cell's runs that diverged. Cells with no runs are NaN in both.
    """
    for col in (x, y, value):
        if col not in table:
            raise ValueError(f"the table has no column {col!r}; it has {', '.join(table.columns)}")
    if agg not in ("median", "mean", "min", "max"):
        raise ValueError(f"Invalid agg: {agg!r}; choose median, mean, min or max")
    xs = np.array(sorted(table[x].unique()))
    ys = np.array(sorted(table[y].unique()))
    vals = np.full((len(ys), len(xs)), np.nan)
    div = np.full((len(ys), len(xs)), np.nan)
    v = table[value].to_numpy(float)
    d = table["diverged"].to_numpy(bool) if "diverged" in table else np.zeros(len(table), bool)
    xi = np.searchsorted(xs, table[x].to_numpy())
    yi = np.searchsorted(ys, table[y].to_numpy())
    fn = getattr(np, agg)
    cells: dict[tuple[int, int], list[int]] = {}
    for r, key in enumerate(zip(yi, xi, strict=True)):
        cells.setdefault(key, []).append(r)
    for (i, j), rows in cells.items():
        vv = v[rows]
        vv = vv[np.isfinite(vv)]
        vals[i, j] = fn(vv) if vv.size else np.nan
        div[i, j] = d[rows].mean()
    return xs, ys, vals, div


def curve_summary(
    table, x: str = "lr", value: str = "final_loss", *, by: str | Sequence[str] = "optimizer"
):
    """Per group (``by``) and x value: median, quartiles, min and max of ``value`` over the
    group's rows (the seeds), and the fraction that diverged. Non-finite values count as
    +inf (they sort above every finite one). Returns a DataFrame."""
    import pandas as pd

    by = [by] if isinstance(by, str) else list(by)
    for col in [*by, x, value]:
        if col not in table:
            raise ValueError(f"the table has no column {col!r}; it has {', '.join(table.columns)}")
    t = table.copy()
    t["_v"] = t[value].where(np.isfinite(t[value].astype(float)), np.inf).astype(float)
    if "diverged" not in t:
        t["diverged"] = False
    g = t.groupby([*by, x], sort=True)
    out = pd.DataFrame(
        {
            "median": g["_v"].median(),
            "q25": g["_v"].quantile(0.25),
            "q75": g["_v"].quantile(0.75),
            "min": g["_v"].min(),
            "max": g["_v"].max(),
            "diverged": g["diverged"].mean(),
            "n": g["_v"].size(),
        }
    ).reset_index()
    return out


def performance_profile(
    table,
    cost: str = "steps_to_target",
    *,
    solver: str = "optimizer",
    instance: str | Sequence[str] = ("problem", "seed"),
    taus: np.ndarray | None = None,
):
    """Dolan–Moré performance profiles (Math. Programming 91, 2002).

    For each instance p (default: problem × seed) and solver s, the cost t_{p,s} is the
    lowest ``cost`` over the solver's rows for that instance (so pass a tuned table — one
    configuration per solver — to profile tuned optimizers; NaN or ±inf, e.g. a target never
    reached, is a failure). With r_{p,s} = t_{p,s} / min_s t_{p,s}, the profile is
    ρ_s(τ) = fraction of instances with r_{p,s} ≤ τ: ρ_s(1) is how often s is the best,
    ρ_s(∞) how often it succeeds at all.

    Returns ``(taus, rho)``: τ values (≥ 1) and ``{solver: ρ_s(τ)}``.
    """
    inst = [instance] if isinstance(instance, str) else list(instance)
    for col in [*inst, solver, cost]:
        if col not in table:
            raise ValueError(f"the table has no column {col!r}; it has {', '.join(table.columns)}")
    t = table[[*inst, solver, cost]].copy()
    c = t[cost].astype(float)
    t[cost] = c.where(np.isfinite(c), np.inf)
    if (t[cost] < 0).any():
        raise ValueError(f"performance profiles need costs >= 0; {cost!r} has negative values")
    best = t.groupby([*inst, solver])[cost].min().unstack(solver)
    floor = best.min(axis=1)
    floor = floor.where(floor > 0, np.nan)
    ratios = best.div(floor, axis=0)
    # an instance where every solver failed (or the best cost is 0) is kept as a failure
    ratios = ratios.where(np.isfinite(ratios), np.inf)
    ratios[best.eq(0).any(axis=1).to_numpy()] = (
        best[best.eq(0).any(axis=1)].eq(0).map(lambda z: 1.0 if z else np.inf)
    )
    if taus is None:
        finite = ratios.to_numpy()[np.isfinite(ratios.to_numpy())]
        hi = max(2.0, float(finite.max()) * 1.5) if finite.size else 2.0
        taus = np.unique(np.concatenate([ex.geomspace(1, hi, 200), finite]))
    rho = {s: np.array([(ratios[s] <= tau).mean() for tau in taus]) for s in ratios.columns}
    return np.asarray(taus), rho
