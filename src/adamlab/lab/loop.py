"""The one run loop: an optimizer steps through a problem; observers record what they need.

``compare`` (one run, parameters of shape ``(dim,)``) and every sweep engine (K configurations,
``(K, dim)``) step through this loop, so they share one rule for everything that decides a
number:

* **the oracle**: step t asks ``problem.oracle(seed)(x, t)`` for the gradient (the same noise
  for every optimizer and every row: paired runs), then ``problem.project`` follows the step;
* **the evaluation schedule** (:func:`eval_every`): the exact loss at every step on problems of
  up to :data:`SMALL` parameters, else every ``steps // 25`` steps (a full-data loss costs far
  more than a minibatch step), and always at the last step;
* **divergence**: a run diverges at the first step whose iterate or evaluated loss is
  non-finite, or whose gradient the optimizer refuses (``nonfinite="raise"``); a single run
  stops there, a row of a batch is left to run on (NaN stays NaN) with its step recorded.
  :func:`diverged` adds the one other sign that a run failed: it ended above where it started
  (Adam's bounded steps rarely overflow: they oscillate instead);
* **held-out metrics**: ``problem.evaluate(x)`` at the end (the ML tasks' test loss and
  accuracies), for the runs that did not diverge.

Observers get ``start``, then ``stepped`` after every step and ``evaluated`` at evaluation
steps, then ``finish``; :class:`MetricTracker` (the sweep's metrics) lives here, the
trajectory recorder of ``compare`` in :mod:`adamlab.lab.runner`.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..optim import NonFiniteGradientError, Optimizer
from ..problems import Problem

#: problems with at most this many parameters are evaluated (and recorded in full) every step
SMALL = 64


def eval_every(problem: Problem, steps: int, every: int | None = None) -> int:
    """Steps between exact-loss evaluations: ``every`` if given, else 1 on problems of up to
    :data:`SMALL` parameters and ``steps // 25`` (at least 1) above."""
    if every is not None:
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"eval_every must be a positive integer, got {every!r}")
        return int(every)
    return 1 if problem.dim <= SMALL else max(1, steps // 25)


def diverged(final_loss: Any, loss0: Any, diverged_at: Any) -> Any:
    """The one divergence rule: the run went non-finite (``diverged_at`` set), or its final
    loss is not finite, or it ended above its starting loss. Element-wise on arrays."""
    final = np.asarray(final_loss, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        out = ~np.isnan(np.asarray(diverged_at, dtype=np.float64)) | ~np.isfinite(final)
        out |= final > np.asarray(loss0, dtype=np.float64)
    return bool(out) if out.ndim == 0 else out


def exact_loss(problem: Problem, x: np.ndarray) -> np.ndarray:
    """The exact loss at x, as float64 of shape ``x.shape[:-1]``."""
    return np.asarray(problem.loss(x), dtype=np.float64).reshape(x.shape[:-1])


class Observer:
    """What a run loop tells its observers (every hook optional)."""

    def start(self, x: np.ndarray, f: np.ndarray) -> None:
        """Before the first step: the start point and its exact loss."""

    def stepped(self, t: int, x_prev: np.ndarray, x: np.ndarray, g: Any, state: Any) -> None:
        """After step t: x_prev → x with gradient g (before projection's result is x)."""

    def evaluated(self, t: int, x: np.ndarray, f: np.ndarray, dead: np.ndarray) -> None:
        """At an evaluation step: the exact loss f; ``dead`` holds each row's diverged_at."""

    def finish(self, outcome: Outcome) -> None:
        """After the last step (or the step where a single run diverged)."""


@dataclasses.dataclass
class Outcome:
    """How a run (or a batch of rows) ended."""

    x: np.ndarray  #: the last iterate
    loss: np.ndarray  #: its exact loss (shape ``x.shape[:-1]``)
    loss0: np.ndarray  #: the starting loss
    t: int  #: the last step taken
    diverged_at: np.ndarray  #: first non-finite step per row, NaN where none
    reason: str | None = None  #: why a single run stopped early
    evaluation: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    @property
    def diverged(self) -> Any:
        return diverged(self.loss, self.loss0, self.diverged_at)


def run_loop(
    problem: Problem,
    opt: Optimizer,
    x0: np.ndarray,
    *,
    steps: int,
    seed: int,
    every: int | None = None,
    observers: Sequence[Observer] = (),
    tick: Callable[[], None] | None = None,
) -> Outcome:
    """Step ``opt`` through ``problem`` from ``x0`` (``(dim,)``: one run; ``(K, dim)``: K rows).

    A single run stops at the step where it diverges; a batch runs every row to the end.
    """
    oracle = problem.oracle(seed)
    x = np.array(x0, dtype=np.float64)
    single = x.ndim == 1
    every = eval_every(problem, steps, every)
    state = opt.init(x)
    dead = np.full(x.shape[:-1], np.nan)
    reason = None
    t = 0
    with np.errstate(all="ignore"):  # divergence is recorded, not warned about
        f = exact_loss(problem, x)
        f0 = f.copy()
        for obs in observers:
            obs.start(x, f)
        for t in range(1, steps + 1):
            _, g = oracle(x, t)
            try:
                x_new, state = opt.step(x, g, state)
            except NonFiniteGradientError as e:  # only with nonfinite="raise": one run
                dead[...] = t
                reason = str(e)
                break
            x_new = np.asarray(problem.project(x_new), dtype=np.float64)
            for obs in observers:
                obs.stepped(t, x, x_new, g, state)
            x = x_new
            bad = ~np.isfinite(x).all(axis=-1)
            if t % every == 0 or t == steps or (single and bad):
                f = exact_loss(problem, x)
                bad = bad | ~np.isfinite(f)
                dead = np.where(bad & np.isnan(dead), float(t), dead)
                for obs in observers:
                    obs.evaluated(t, x, f, dead)
            else:
                dead = np.where(bad & np.isnan(dead), float(t), dead)
            if tick is not None:
                tick()
            if single and bad:
                value = f"{float(f)}" if not np.isfinite(f) else "non-finite"
                what = "the loss" if not np.isfinite(f) else "an iterate"
                reason = f"{what} became {value} at step {t}"
                break
        if single and not np.isnan(dead).all():
            evaluation = {}  # a diverged run has no held-out numbers
        else:
            evaluation = {
                k: np.asarray(v, dtype=np.float64) for k, v in problem.evaluate(x).items()
            }
    outcome = Outcome(
        x=x, loss=f, loss0=f0, t=t, diverged_at=dead, reason=reason, evaluation=evaluation
    )
    for obs in observers:
        obs.finish(outcome)
    return outcome


@dataclasses.dataclass
class MetricTracker(Observer):
    """Per-row metrics accumulated at evaluation steps (rows = configurations): the best loss,
    and the first step with loss − f* ≤ ``target`` before any divergence."""

    f_star: float | None
    target: float | None
    curve: bool = False
    best: np.ndarray = dataclasses.field(init=False, default=None)  # type: ignore[assignment]
    hit: np.ndarray = dataclasses.field(init=False, default=None)  # type: ignore[assignment]
    curves: list[np.ndarray] = dataclasses.field(init=False, default_factory=list)

    def _reached(self, f: np.ndarray) -> np.ndarray:
        ref = 0.0 if self.f_star is None else self.f_star
        return f - ref <= self.target

    def start(self, x: np.ndarray, f: np.ndarray) -> None:
        self.best = f.copy()
        self.hit = np.full(f.shape, np.nan)
        if self.target is not None:
            self.hit[self._reached(f)] = 0
        if self.curve:
            self.curves.append(f.copy())

    def evaluated(self, t: int, x: np.ndarray, f: np.ndarray, dead: np.ndarray) -> None:
        finite = np.isfinite(f)
        self.best = np.where(finite & (f < self.best), f, self.best)
        if self.target is not None:
            self.hit[self._reached(f) & np.isnan(self.hit) & np.isnan(dead)] = t
        if self.curve:
            self.curves.append(f.copy())

    def records(self, outcome: Outcome, f_star: float | None) -> list[dict[str, Any]]:
        """One dict of metrics per row, as the sweep table holds them."""
        x = np.atleast_2d(outcome.x)
        final = np.atleast_1d(outcome.loss)
        f0 = np.atleast_1d(outcome.loss0)
        dead = np.atleast_1d(outcome.diverged_at)
        div = np.atleast_1d(diverged(final, f0, dead))
        best, hit = np.atleast_1d(self.best), np.atleast_1d(self.hit)
        out = []
        for k in range(len(final)):
            rec: dict[str, Any] = {
                "final_loss": float(final[k]),
                "best_loss": float(best[k]),
                "gap": float(final[k] - f_star) if f_star is not None else math.nan,
                "steps_to_target": float(hit[k]),
                "diverged_at": float(dead[k]),
                "diverged": bool(div[k]),
                "loss0": float(f0[k]),
            }
            if x.shape[1] <= 8:
                rec["final_x"] = [float(v) for v in x[k]]
            for col, arr in outcome.evaluation.items():
                rec[col] = float(np.atleast_1d(arr)[k])
            if self.curve:
                rec["curve"] = [float(np.atleast_1d(c)[k]) for c in self.curves]
            out.append(rec)
        return out
