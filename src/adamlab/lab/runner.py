"""The runner: several optimizers, one start, the same noise, everything recorded.

``compare`` runs each optimizer through the one run loop (:mod:`adamlab.lab.loop`) with a
:class:`TrajectoryRecorder` watching: the iterates, steps, losses, gradient norms, distances
and the optimizer's diagnostics, in bounded memory at any number of steps.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _exact as ex
from ..optim import Optimizer
from ..problems import Problem
from .loop import SMALL, Observer, Outcome, eval_every, run_loop
from .result import Result, Surface, Trajectory, now_utc
from .specs import label_for, optimizer_from_spec, problem_from_spec

#: problems with more coordinates than this store only the tracked ones (default: two)
FULL_RECORD_MAX_DIM = SMALL

#: a run keeps every step up to this many rows; longer runs are thinned evenly (bounded memory)
FULL_ROWS = 10_000

#: recorded diagnostics come in this order (then any others, as the optimizer reports them)
#: the seed demo's optimizers: gradient descent and Adam with the lesson's hyperparameters,
#: what ``adamlab compare`` and the playground run when no optimizer is named
SEED_OPTIMIZERS = ("sgd:lr=0.1", "adam:lr=0.1,betas=0.9/0.999,eps=1e-8")

DIAGNOSTICS_ORDER = ("m", "m_hat", "v", "v_hat", "bias1", "bias2", "effective_lr")

OptimizerArg = Sequence[Optimizer | str] | Mapping[str, Optimizer | str]


def get_problem(spec: str | Problem, **kwargs: Any) -> Problem:
    """A problem by name (``"rosenbrock"``), by ``"name:key=value,..."`` spec, or as given
    (:func:`adamlab.lab.specs.problem_from_spec`)."""
    return problem_from_spec(spec, **kwargs)


def _labelled(optimizers: OptimizerArg) -> list[tuple[str, Optimizer]]:
    """(label, optimizer) pairs; default labels from the name and key hyperparameters."""
    if isinstance(optimizers, (str, Optimizer)):  # one optimizer (a string is not a list)
        optimizers = [optimizers]
    if isinstance(optimizers, Mapping):
        items = [(str(k), v) for k, v in optimizers.items()]
    elif isinstance(optimizers, Iterable):
        items = [(None, v) for v in optimizers]
    else:
        raise TypeError(
            f"optimizers must be a list (or dict) of adamlab optimizers or specs like "
            f"'adam:lr=0.1', got {type(optimizers).__name__}"
        )
    out: list[tuple[str, Optimizer]] = []
    for label, opt in items:
        if isinstance(opt, str):
            opt = optimizer_from_spec(opt)
        if not isinstance(opt, Optimizer):
            raise TypeError(
                f"optimizers must be adamlab optimizers or specs like 'adam:lr=0.1', got "
                f"{type(opt).__name__}"
            )
        out.append((label or label_for(opt), opt))
    if not out:
        raise ValueError("compare needs at least one optimizer")
    seen: dict[str, int] = {}
    unique = []
    for label, opt in out:  # two identical configurations stay distinguishable
        seen[label] = seen.get(label, 0) + 1
        unique.append((label if seen[label] == 1 else f"{label} #{seen[label]}", opt))
    return unique


def problem_record(problem: Problem) -> dict[str, Any]:
    """The problem as plain data, for the manifest."""

    def tolist(v: Any) -> Any:
        return None if v is None else np.asarray(v, dtype=np.float64).tolist()

    out = {
        "name": problem.name,
        "description": problem.description,
        "dim": int(problem.dim),
        "x0": tolist(problem.x0),
        "domain": tolist(problem.domain),
        "x_star": tolist(problem.x_star),
        "f_star": None if problem.f_star is None else float(problem.f_star),
        "stochastic": bool(problem.stochastic),
    }
    expression = getattr(problem, "text", None)  # a user's formula (problems.Expression)
    if isinstance(expression, str) and expression:
        out["expression"] = expression
    if problem.formula:
        out["formula"] = problem.formula
    return out


class _Progress:
    """Calls ``tick()`` once per step. After ``delay`` seconds: a tqdm bar on a terminal, or,
    when stderr is a pipe or a file, one plain line every ``every`` seconds (so a long piped
    run says how far it is). Quick runs print nothing and import nothing."""

    def __init__(self, total: int, delay: float = 0.5, every: float = 5.0) -> None:
        self.total, self.delay, self.every, self.done = total, delay, every, 0
        self.start = self.last = time.perf_counter()
        self.bar: Any = None
        self.tty = sys.stderr.isatty()

    def tick(self) -> None:
        self.done += 1
        if self.done % 64 and self.bar is None:  # look at the clock now and then only
            return
        now = time.perf_counter()
        if self.bar is not None:
            self.bar.update(self.done - self.bar.n)
        elif self.tty and now - self.start > self.delay:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, initial=self.done, file=sys.stderr, unit="step",
                            leave=False, desc="adamlab")  # fmt: skip
        elif not self.tty and now - self.last > self.every:
            self.last = now
            elapsed = now - self.start
            left = elapsed * (self.total - self.done) / self.done
            sys.stderr.write(
                f"adamlab: step {self.done:,} of {self.total:,} "
                f"({100 * self.done / self.total:.0f}%), {elapsed:.0f} s so far, "
                f"about {left:.0f} s left\n"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class TrajectoryRecorder(Observer):
    """Records one run for a :class:`Trajectory`, in memory bounded at any run length.

    Row 0 is the start; each step becomes a row. Past :data:`FULL_ROWS` rows the record is
    thinned: it keeps every ``stride``-th step (the stride doubles each time the record
    fills) and always the last step. ``loss`` is the exact loss at the steps the loop
    evaluates (:func:`adamlab.lab.loop.eval_every`; NaN between); ``grad_norm`` is ‖∇f‖ of
    the exact gradient: free for a deterministic oracle (its gradient at xₜ arrives with step
    t + 1), else computed at the evaluated steps.
    """

    def __init__(self, problem: Problem, opt: Optimizer, cols: Any, full_rows: int | None = None):
        self.problem, self.opt, self.cols = problem, opt, cols
        self.full_rows = FULL_ROWS if full_rows is None else full_rows
        self.exact_oracle = not problem.stochastic
        self.x_star = (
            None if problem.x_star is None else np.asarray(problem.x_star, dtype=np.float64)
        )
        self.slots = opt.active_slots()
        self.stride = 1
        self.rows: list[dict[str, Any]] = []
        self.tail: dict[str, Any] | None = None

    def _row(self, t: int, x: np.ndarray, step: np.ndarray | None, state: Any) -> dict[str, Any]:
        row: dict[str, Any] = {
            "t": t,
            "x": x[self.cols],
            "step": np.full(x[self.cols].shape, np.nan) if step is None else step[self.cols],
            "step_norm": np.nan if step is None else float(ex.norm(step)),
            "loss": np.nan,
            "grad_norm": np.nan,
            "distance": None if self.x_star is None else float(ex.norm(x - self.x_star)),
            "diag": None,
        }
        if state is not None:
            d = self.opt.diagnostics(state)
            for s in self.slots:
                d[s] = getattr(state, s)
            diag = {}
            for k, v in d.items():
                v = np.asarray(v, dtype=np.float64)
                diag[k] = v if v.ndim == 0 else v.reshape(-1)[self.cols]
            row["diag"] = diag
        return row

    def _commit(self, force: bool = False) -> None:
        tail, self.tail = self.tail, None
        if tail is None or not (force or tail["t"] % self.stride == 0):
            return
        self.rows.append(tail)
        if len(self.rows) > 2 * self.full_rows:  # thin out: keep every other stride
            self.stride *= 2
            self.rows = [r for r in self.rows if r["t"] % self.stride == 0]

    def start(self, x: np.ndarray, f: np.ndarray) -> None:
        self.tail = self._row(0, x, None, None)
        self.tail["loss"] = float(f)
        if not self.exact_oracle:
            self.tail["grad_norm"] = float(ex.norm(self.problem.grad(x)))

    def stepped(self, t: int, x_prev: np.ndarray, x: np.ndarray, g: Any, state: Any) -> None:
        if self.exact_oracle and self.tail is not None:  # the gradient at x_{t-1}
            self.tail["grad_norm"] = float(ex.norm(np.asarray(g, dtype=np.float64)))
        self._commit()
        self.tail = self._row(t, x, x - x_prev, state)

    def evaluated(self, t: int, x: np.ndarray, f: np.ndarray, dead: np.ndarray) -> None:
        if self.tail is not None and self.tail["t"] == t:
            self.tail["loss"] = float(f)
            if not self.exact_oracle:
                self.tail["grad_norm"] = float(ex.norm(self.problem.grad(x)))

    def finish(self, outcome: Outcome) -> None:
        if self.tail is not None and np.isnan(self.tail["grad_norm"]):
            with np.errstate(all="ignore"):  # the last iterate has had no oracle call
                self.tail["grad_norm"] = float(ex.norm(self.problem.grad(outcome.x)))
        self._commit(force=True)

    def trajectory(self, *, label: str, seed: int, outcome: Outcome) -> Trajectory:
        rows = self.rows
        diag_rows = [r["diag"] for r in rows[1:]]
        order = {k: i for i, k in enumerate(DIAGNOSTICS_ORDER)}
        first = diag_rows[0] if diag_rows else {}
        keys = sorted(first, key=lambda k: (order.get(k, len(order)), list(first).index(k)))
        diagnostics = {}
        for k in keys:
            vals = [d[k] for d in diag_rows]
            nan_row = np.full(np.shape(vals[0]), np.nan)
            diagnostics[k] = np.array([nan_row, *vals], dtype=np.float64)
        dead = outcome.diverged_at
        diverged_at = None if np.isnan(dead).all() else int(np.nanmin(dead))
        return Trajectory(
            label=label,
            optimizer=self.opt.describe(),
            seed=int(seed),
            x=np.array([r["x"] for r in rows], dtype=np.float64),
            loss=np.array([r["loss"] for r in rows]),
            grad_norm=np.array([r["grad_norm"] for r in rows]),
            distance=None if self.x_star is None else np.array([r["distance"] for r in rows]),
            step=np.array([r["step"] for r in rows], dtype=np.float64),
            step_norm=np.array([r["step_norm"] for r in rows]),
            diagnostics=diagnostics,
            diverged_at=diverged_at,
            diverged_reason=outcome.reason if diverged_at is not None else None,
            final={k: float(v) for k, v in outcome.evaluation.items()},
            t=np.array([r["t"] for r in rows], dtype=np.int64),
        )


def run(
    problem: Problem,
    opt: Optimizer,
    *,
    label: str,
    start: np.ndarray,
    steps: int,
    seed: int,
    tracked: list[int] | None = None,
    tick: Callable[[], None] | None = None,
) -> Trajectory:
    """One optimizer on one seed's oracle: x₀ = ``start``, then ``steps`` steps of the one run
    loop (each followed by ``problem.project``), recorded. Stops (and records
    ``diverged_at``) when the loss or an iterate goes non-finite, or when the optimizer
    refuses a non-finite gradient."""
    cols = slice(None) if tracked is None else np.asarray(tracked)
    recorder = TrajectoryRecorder(problem, opt, cols)
    outcome = run_loop(
        problem, opt, np.asarray(start, dtype=np.float64), steps=steps, seed=seed,
        every=eval_every(problem, steps), observers=[recorder], tick=tick,
    )  # fmt: skip
    return recorder.trajectory(label=label, seed=seed, outcome=outcome)


def loss_surface(
    problem: Problem, trajectories: Sequence[Trajectory] = (), n: int | None = None
) -> Surface | None:
    """The exact loss on a grid over the problem's plotting box (1-D: 100 points, like the
    seed figure; 2-D: 160 × 160), widened to take in the iterates, but never to more than
    three times the box. None above two dimensions."""
    if problem.dim > 2:
        return None
    box = np.array(problem.domain, dtype=np.float64).reshape(problem.dim, 2)
    lo, hi = box[:, 0].copy(), box[:, 1].copy()
    width = hi - lo
    for t in trajectories:
        if t.x.shape[1] != problem.dim:
            continue
        pts = t.x[np.all(np.isfinite(t.x), axis=1)]
        if len(pts):
            lo = np.maximum(np.minimum(lo, pts.min(axis=0)), box[:, 0] - width)
            hi = np.minimum(np.maximum(hi, pts.max(axis=0)), box[:, 1] + width)
    grown = (lo < box[:, 0]) | (hi > box[:, 1])
    pad = np.where(grown, 0.05 * (hi - lo), 0.0)
    lo, hi = lo - pad, hi + pad
    with np.errstate(all="ignore"):
        if problem.dim == 1:
            xs = np.linspace(lo[0], hi[0], n or 100)
            return Surface([xs], np.asarray(problem.loss(xs[:, None]), dtype=np.float64))
        k = n or 160
        xs, ys = np.linspace(lo[0], hi[0], k), np.linspace(lo[1], hi[1], k)
        X, Y = np.meshgrid(xs, ys)
        Z = np.asarray(problem.loss(np.stack([X, Y], axis=-1)), dtype=np.float64)
    return Surface([xs, ys], Z)


def compare(
    problem: Problem | str,
    optimizers: OptimizerArg,
    steps: int = 50,
    start: Any = None,
    seed: int | Sequence[int] = 0,
    *,
    track: Sequence[int] | None = None,
    progress: bool = False,
    meta: Mapping[str, Any] | None = None,
) -> Result:
    """Run several optimizers from the same start on the same (paired) noise.

    Args:
        problem: a :class:`~adamlab.problems.Problem`, or its name / ``"name:key=value"`` spec.
        optimizers: a list of optimizers (or specs such as ``"adam:lr=0.1"``), or a dict
            label → optimizer. Default labels are the class name and key hyperparameters,
            e.g. ``Adam(lr=0.1, betas=(0.9, 0.999))``.
        steps: steps per run (T).
        start: x₀, a sequence of ``problem.dim`` finite floats; default ``problem.x0``.
        seed: the noise seed, or several (each optimizer runs once per seed; the
            trajectories of one seed all see the same noise sequence).
        track: coordinates to store in ``x``, ``step`` and the per-coordinate diagnostics;
            default all of them up to dimension 50, else the two with the largest
            |∂f/∂xᵢ| at the start (losses, norms and distances always use every coordinate;
            on such large problems the exact gradient norm is computed at about 50 evenly
            spaced steps only, NaN in between, unless the oracle is exact).
        progress: show a progress bar on stderr when the runs take longer than half a second.
        meta: extra data for the manifest (e.g. the command line).

    Returns:
        A :class:`Result` with one :class:`Trajectory` per optimizer × seed.

    Example:
        >>> import adamlab
        >>> from adamlab.lab import compare
        >>> r = compare("quadratic", [adamlab.SGD(lr=0.1), adamlab.Adam(lr=0.1)], steps=50)
        >>> r.labels
        ['SGD(lr=0.1)', 'Adam(lr=0.1, betas=(0.9, 0.999))']
    """
    problem = get_problem(problem)
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer, got {steps!r}")
    listed = isinstance(seed, Iterable) and not isinstance(seed, (str, bytes))
    values = list(seed) if listed else [seed]
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in values):
        raise TypeError(f"seed must be a whole number or a list of them, got {seed!r}")
    seeds = [int(s) for s in values]
    if not seeds:
        raise ValueError("compare needs at least one seed")
    x0 = problem.check_start(problem.x0 if start is None else start)
    if x0.ndim != 1:
        raise ValueError(
            f"start must be one point of {problem.dim} coordinates, got shape {x0.shape}"
        )
    if track is None and problem.dim <= FULL_RECORD_MAX_DIM:
        tracked = list(range(problem.dim))
    elif track is None:  # the two coordinates the start's gradient moves most (never dead ones)
        with np.errstate(all="ignore"):
            g0 = np.abs(np.nan_to_num(np.asarray(problem.grad(x0), dtype=np.float64)))
        tracked = sorted(int(i) for i in np.argsort(-g0, kind="stable")[:2])
    else:
        tracked = [int(i) for i in track]
        bad = [i for i in tracked if not 0 <= i < problem.dim]
        if bad or not tracked:
            raise ValueError(
                f"track must list coordinates in [0, {problem.dim}), got {list(track)}"
            )
    cols = None if tracked == list(range(problem.dim)) else tracked
    pairs = _labelled(optimizers)

    bar = _Progress(len(pairs) * len(seeds) * int(steps)) if progress else None
    try:
        trajectories = [
            run(
                problem,
                opt,
                label=label,
                start=x0,
                steps=int(steps),
                seed=s,
                tracked=cols,
                tick=bar.tick if bar else None,
            )
            for s in seeds
            for label, opt in pairs
        ]
    finally:
        if bar is not None:
            bar.close()
    return Result(
        problem=problem_record(problem),
        trajectories=trajectories,
        steps=int(steps),
        seeds=seeds,
        start=x0,
        tracked=tracked,
        surface=loss_surface(problem, trajectories) if cols is None else None,
        meta={"created": now_utc(), **(meta or {})},
    )
