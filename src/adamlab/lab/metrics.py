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


def steps_to_tolerance(values: np.ndarray, tol: float) -> int | None:
    """The first step t with ``values[t] < tol`` (row t is the state after t steps), or None."""
    hits = np.flatnonzero(np.asarray(values) < tol)
    return int(hits[0]) if hits.size else None


def suboptimality(loss: np.ndarray, f_star: float | None) -> np.ndarray:
    """``loss − f*`` where f* is known, else the loss itself."""
    loss = np.asarray(loss, dtype=np.float64)
    return loss - f_star if f_star is not None else loss


def auc_log_suboptimality(
    loss: np.ndarray, f_star: float | None, floor: float = FLOOR
) -> float | None:
    """Area under log10(max(f(x_t) − f*, floor)) over steps t = 0…T (trapezoid rule, unit spacing).

    Lower is better: it rewards getting close early as well as finishing close. Without
    f* the loss itself is used, which needs a positive loss (None otherwise). A single
    point has area 0.
    """
    gap = suboptimality(loss, f_star)
    if not np.all(np.isfinite(gap)) or (f_star is None and np.any(gap <= 0)):
        return None
    logs = ex.log10(np.maximum(gap, floor))
    return float(ex.sum_((logs[1:] + logs[:-1]) / 2)) if len(logs) > 1 else 0.0


@dataclasses.dataclass(frozen=True)
class Metrics:
    """What one run achieved (None where a number does not apply)."""

    label: str
    seed: int
    final_loss: float
    best_loss: float
    best_step: int
    steps_to_tol: int | None
    auc_log_subopt: float | None
    diverged_at: int | None
    final_x: tuple[float, ...]


def compute_metrics(traj, *, f_star: float | None, tol: float, on: Literal["x", "loss"]) -> Metrics:
    """Metrics of one :class:`~adamlab.lab.Trajectory`.

    ``on="x"`` counts steps until ``‖x_t − x*‖ < tol`` (needs the distances recorded when x*
    is known); ``on="loss"`` until ``f(x_t) − f* < tol`` (``f(x_t) < tol`` without f*);
    ``on="grad"`` until ``‖∇f(x_t)‖ < tol``. A diverged run has no AUC.
    """
    loss = traj.loss
    finite = np.isfinite(loss)
    best = int(np.argmin(np.where(finite, loss, np.inf))) if finite.any() else 0
    if on == "x":
        if traj.distance is None:
            raise ValueError("steps to tolerance on x needs x*; use on='loss' or 'grad'")
        to_tol = steps_to_tolerance(traj.distance, tol)
    elif on == "grad":
        to_tol = steps_to_tolerance(traj.grad_norm, tol)
    else:
        to_tol = steps_to_tolerance(suboptimality(loss, f_star), tol)
    auc = None if traj.diverged_at is not None else auc_log_suboptimality(loss, f_star)
    return Metrics(
        label=traj.label,
        seed=traj.seed,
        final_loss=float(loss[-1]),
        best_loss=float(loss[best]),
        best_step=best,
        steps_to_tol=to_tol,
        auc_log_subopt=auc,
        diverged_at=traj.diverged_at,
        final_x=tuple(float(v) for v in traj.x[-1]),
    )


def fmt_number(v: float | None) -> str:
    """Compact, readable: 2.000086, 7.333e-09, nan, inf."""
    if v is None:
        return "-"
    if not math.isfinite(v):
        return str(v)
    return f"{v:.7g}" if v == 0 or 1e-4 <= abs(v) < 1e7 else f"{v:.4g}"
