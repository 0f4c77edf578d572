"""The runner: several optimizers, one start, the same noise, everything recorded."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .. import _exact as ex
from ..optim import NonFiniteGradientError, Optimizer
from ..problems import Problem
from .result import Result, Surface, Trajectory, now_utc
from .specs import label_for, optimizer_from_spec, parse_value

#: problems with more coordinates than this store only the tracked ones (default: two, see compare)
FULL_RECORD_MAX_DIM = 50

#: recorded diagnostics come in this order (then any others, as the optimizer reports them)
DIAGNOSTICS_ORDER = ("m", "m_hat", "v", "v_hat", "bias1", "bias2", "effective_lr")

#: evaluated on the last iterate when the problem has them (the ML tasks)
FINAL_EVALUATIONS = ("train_accuracy", "test_accuracy", "test_loss")

OptimizerArg = Sequence[Optimizer | str] | Mapping[str, Optimizer | str]


def get_problem(spec: str | Problem, **kwargs: Any) -> Problem:
    """A problem by name (``"rosenbrock"``), by ``"name:key=value,..."`` spec, or as given.

    Unknown names, unknown parameters and non-numeric values for numeric parameters raise
    ``ValueError`` (from :func:`adamlab.problems.get_problem`).
    """
    if isinstance(spec, Problem):
        if kwargs:
            raise TypeError("keyword arguments apply to a problem given by name only")
        return spec
    from .. import problems

    name, _, rest = spec.strip().partition(":")
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ValueError(f"malformed {item!r} in problem {spec!r}; write KEY=VALUE")
        kwargs[key.strip()] = parse_value(value)
    return problems.get_problem(name, **kwargs)


def _labelled(optimizers: OptimizerArg) -> list[tuple[str, Optimizer]]:
    """(label, optimizer) pairs; default labels from the name and key hyperparameters."""
    if isinstance(optimizers, Mapping):
        items = [(str(k), v) for k, v in optimizers.items()]
    else:
        items = [(None, v) for v in optimizers]
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
    return out


class _Progress:
    """Calls ``tick()`` once per step; shows a tqdm bar on stderr only once the run has
    taken longer than ``delay`` seconds, so quick runs print nothing and import nothing."""

    def __init__(self, total: int, delay: float = 0.5) -> None:
        self.total, self.delay, self.done = total, delay, 0
        self.start = time.perf_counter()
        self.bar = None

    def tick(self) -> None:
        self.done += 1
        if self.bar is None and time.perf_counter() - self.start > self.delay:
            import sys

            from tqdm import tqdm

            # disable=None: no bar when stderr is not a terminal (logs, pipes, tests)
            self.bar = tqdm(total=self.total, initial=self.done, file=sys.stderr, unit="step",
                            leave=False, desc="adamlab", disable=None)  # fmt: skip
        elif self.bar is not None:
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


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
    """One optimizer on one seed's oracle: x₀ = ``start``, then ``steps`` steps, each followed
    by ``problem.project``. Stops (and records ``diverged_at``) when the loss or an iterate
    goes non-finite, or when the optimizer refuses a non-finite gradient."""
    oracle = problem.oracle(seed)
    x = np.array(start, dtype=np.float64)
    cols = slice(None) if tracked is None else np.asarray(tracked)
    x_star = None if problem.x_star is None else np.asarray(problem.x_star, dtype=np.float64)
    state = opt.init(x)
    slots = opt.active_slots()

    xs, losses, gnorms, dists = [x[cols]], [], [], []
    step_rows, step_norms = [np.full(xs[0].shape, np.nan)], [np.nan]
    diag: dict[str, list[np.ndarray]] = {}
    diverged_at = reason = None
    # ‖∇f(xₜ)‖: a deterministic oracle's gradient at xₜ *is* the exact one (free, next step);
    # a stochastic problem needs problem.grad, a full-batch pass that large ML problems pay
    # dearly for: there it is sampled at about 50 evenly spaced steps (NaN in between).
    exact_oracle = not problem.stochastic
    every = 1 if problem.dim <= FULL_RECORD_MAX_DIM else max(1, steps // 50)

    def exact_grad_norm(x: np.ndarray) -> float:
        return float(ex.norm(problem.grad(x)))

    def observe(x: np.ndarray, t: int) -> float:
        loss = float(problem.loss(x))
        losses.append(loss)
        if exact_oracle:
            gnorms.append(np.nan)  # filled in from the next oracle call
        else:
            gnorms.append(exact_grad_norm(x) if t % every == 0 or t == steps else np.nan)
        if x_star is not None:
            dists.append(float(ex.norm(x - x_star)))
        return loss

    with np.errstate(all="ignore"):  # divergence is recorded below, not warned about
        observe(x, 0)
        for t in range(1, steps + 1):
            _, g = oracle(x, t)
            if exact_oracle:
                gnorms[-1] = float(ex.norm(g))
            try:
                x_new, state = opt.step(x, g, state)
            except NonFiniteGradientError as e:
                diverged_at, reason = t, str(e)
                break
            x_new = np.asarray(problem.project(x_new), dtype=np.float64)
            xs.append(x_new[cols])
            step_rows.append((x_new - x)[cols])
            step_norms.append(float(ex.norm(x_new - x)))
            d = opt.diagnostics(state)
            for s in slots:
                d[s] = getattr(state, s)
            for k, v in d.items():
                v = np.asarray(v, dtype=np.float64)
                diag.setdefault(k, []).append(v if v.ndim == 0 else v.reshape(-1)[cols])
            x = x_new
            loss = observe(x, t)
            if tick is not None:
                tick()
            if not (np.isfinite(loss) and np.all(np.isfinite(x))):
                what = "the loss" if not np.isfinite(loss) else "an iterate"
                value = loss if not np.isfinite(loss) else "non-finite"
                diverged_at, reason = t, f"{what} became {value} at step {t}"
                break
        if np.isnan(gnorms[-1]):  # the last iterate has had no oracle call
            gnorms[-1] = exact_grad_norm(x)

    final = {}
    if diverged_at is None:  # held-out numbers, for the problems that have them (ML tasks)
        for name in FINAL_EVALUATIONS:
            fn = getattr(problem, name, None)
            if callable(fn):
                final[name] = float(fn(x))

    def with_nan_row(rows: list[np.ndarray]) -> np.ndarray:
        first = np.full(np.shape(rows[0]), np.nan) if rows else np.full(0, np.nan)
        return np.array([first, *rows], dtype=np.float64)

    order = {k: i for i, k in enumerate(DIAGNOSTICS_ORDER)}
    keys = sorted(diag, key=lambda k: (order.get(k, len(order)), list(diag).index(k)))
    return Trajectory(
        label=label,
        optimizer=opt.describe(),
        seed=int(seed),
        x=np.array(xs, dtype=np.float64),
        loss=np.array(losses),
        grad_norm=np.array(gnorms),
        distance=np.array(dists) if x_star is not None else None,
        step=np.array(step_rows, dtype=np.float64),
        step_norm=np.array(step_norms),
        diagnostics={k: with_nan_row(diag[k]) for k in keys},
        diverged_at=diverged_at,
        diverged_reason=reason,
        final=final,
    )


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
    seeds = [int(seed)] if isinstance(seed, (int, np.integer)) else [int(s) for s in seed]
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
