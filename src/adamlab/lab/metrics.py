"""Numbers that summarise a run: final and best loss, steps to a tolerance, area under the
log-suboptimality curve. Pure functions of recorded arrays, easy to check by hand."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

import numpy as np

from .. import _exact as ex

#: suboptimality below this counts as this (log10 of an exact 0 would be −∞)
FLOOR = 1e-16


def steps_to_tolerance(values: np.ndarray, tol: float, *, stay: bool = True) -> int | None:
    """The row from which ``values < tol`` holds to the end ("reached and stayed"), or None
    when the last value is not within tolerance. ``stay=False``: the first row within
    tolerance (first hitting). Rows with NaN (not evaluated) are skipped."""
    v = np.asarray(values, dtype=np.float64)
    rows = np.flatnonzero(~np.isnan(v))
    inside = v[rows] < tol
    if not stay:
        return int(rows[np.argmax(inside)]) if inside.any() else None
    if not inside.size or not inside[-1]:
        return None
    outside = np.flatnonzero(~inside)
    return int(rows[outside[-1] + 1]) if outside.size else int(rows[0])


def suboptimality(loss: np.ndarray, f_star: float | None) -> np.ndarray:
    """``loss − f*`` where f* is known, else the loss itself."""
    loss = np.asarray(loss, dtype=np.float64)
    return loss - f_star if f_star is not None else loss


def auc_log_suboptimality(
    loss: np.ndarray, f_star: float | None, floor: float = FLOOR, t: np.ndarray | None = None
) -> float | None:
    """Area under log10(max(f(x_t) − f*, floor)) over steps t = 0…T (trapezoid rule, unit
    spacing, or the spacing of ``t`` where the loss was evaluated at those steps only; NaN
    entries, not evaluated, are skipped).

    Lower is better: it rewards getting close early as well as finishing close. Without
    f* the loss itself is used, which needs a positive loss (None otherwise). A single
    point has area 0.
    """
    loss = np.asarray(loss, dtype=np.float64)
    steps = np.arange(len(loss)) if t is None else np.asarray(t)
    keep = ~np.isnan(loss)
    gap = suboptimality(loss[keep], f_star)
    if not np.all(np.isfinite(gap)) or (f_star is None and np.any(gap <= 0)):
        return None
    logs = ex.log10(np.maximum(gap, floor))
    if len(logs) < 2:
        return 0.0
    widths = np.diff(steps[keep]).astype(np.float64)
    return float(ex.sum_((logs[1:] + logs[:-1]) / 2 * widths))


@dataclasses.dataclass(frozen=True)
class Metrics:
    """What one run achieved (None where a number does not apply)."""

    label: str
    seed: int
    final_loss: float
    best_loss: float
    best_step: int
    steps_to_tol: int | None  #: the step from which it stayed within tolerance
    auc_log_subopt: float | None
    diverged_at: int | None
    final_x: tuple[float, ...]
    diverged: bool = False  #: non-finite, or ended above its starting loss (one rule: lab.loop)


def compute_metrics(traj, *, f_star: float | None, tol: float, on: Literal["x", "loss"]) -> Metrics:
    """Metrics of one :class:`~adamlab.lab.Trajectory`.

    ``on="x"`` counts steps until ``‖x_t − x*‖ < tol`` (needs the distances recorded when x*
    is known); ``on="loss"`` until ``f(x_t) − f* < tol`` (``f(x_t) < tol`` without f*);
    ``on="grad"`` until ``‖∇f(x_t)‖ < tol``. A diverged run has no AUC.
    """
    from .loop import diverged

    loss = traj.loss
    finite = np.isfinite(loss)
    best = int(np.argmin(np.where(finite, loss, np.inf))) if finite.any() else 0
    if on == "x":
        if traj.distance is None:
            raise ValueError("steps to tolerance on x needs x*; use on='loss' or 'grad'")
        values = traj.distance
    elif on == "grad":
        values = traj.grad_norm
    else:
        values = suboptimality(loss, f_star)
    last_f = loss[~np.isnan(loss)][-1] if (~np.isnan(loss)).any() else np.nan
    failed = diverged(last_f, loss[0], np.nan if traj.diverged_at is None else traj.diverged_at)
    row = None if traj.diverged_at is not None else steps_to_tolerance(values, tol)
    evaluated = loss[~np.isnan(loss)]
    auc = None if traj.diverged_at is not None else auc_log_suboptimality(loss, f_star, t=traj.t)
    last = evaluated[-1] if evaluated.size else np.nan
    return Metrics(
        label=traj.label,
        seed=traj.seed,
        final_loss=float(last),
        best_loss=float(loss[best]),
        best_step=int(traj.t[best]),
        steps_to_tol=None if row is None else int(traj.t[row]),
        auc_log_subopt=auc,
        diverged_at=traj.diverged_at,
        final_x=tuple(float(v) for v in traj.x[-1]),
        diverged=bool(failed),
    )


def fmt_number(v: float | None) -> str:
    """Compact, readable: 2.000086, 7.333e-09, nan, inf."""
    if v is None:
        return "-"
    if not math.isfinite(v):
        return str(v)
    return f"{v:.7g}" if v == 0 or 1e-4 <= abs(v) < 1e7 else f"{v:.4g}"
