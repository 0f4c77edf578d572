"""Hyperparameter sweeps: thousands of configurations at once, and fair tuning.

A sweep runs one optimizer over a set of hyperparameter *configurations* × seeds × problems
and returns a tidy table, one row per (problem, configuration, seed)::

    from adamlab.lab.sweep import LogUniform, grid, sample, sweep

    configs = grid(lr=np.logspace(-4, 0, 9), beta2=[0.99, 0.999, 0.9999])
    table = sweep("adam", configs, "rosenbrock", steps=1000, seeds=[0])

    configs = sample({"lr": LogUniform(1e-4, 1), "beta1": [0.0, 0.9]}, 64, method="halton")

How a sweep runs:

* **vectorised** (analytic problems): the configurations of one group run in one NumPy pass.
  Each dynamic hyperparameter (``lr``, ``beta1``, ``beta2``, ``eps``, ``momentum``,
  ``weight_decay``, …) becomes a ``(K, 1)`` array against parameters of shape ``(K, dim)``,
  which the core broadcasts row by row: row k is bit-for-bit the run of configuration k alone.
  Flags that change the math (``bias_correction``, ``amsgrad``, ``nesterov``, …) split the
  configurations into groups, one pass per group and seed.
* **numba** (Adam on Rosenbrock): the whole step loop, gradient and update fused, in a
  parallel kernel (:mod:`adamlab.kernels.sweep`); same arithmetic, same results.
* **process** (problems that do not vectorise, e.g. the ML tasks): one task per
  configuration × seed in a pool of worker processes, with a progress bar.

With ``out=DIR`` every finished (problem, configuration, seed) record is appended to
``DIR/records.jsonl`` (one JSON line, flushed and fsynced). A killed sweep, run again with the
same ``out``, loads those records, drops a torn last line, and computes only what is missing:
nothing finished is lost or computed twice. The final table is also written to
``DIR/sweep.parquet`` (or ``.csv`` without pyarrow).

What a row holds: the configuration, ``final_loss`` (the exact loss ``problem.loss`` at the
last iterate, never a noisy sample), ``best_loss``, ``gap`` (final − f*, where f* is known),
``steps_to_target`` (first step t with loss − f* ≤ ``target``; NaN if never), ``diverged_at``
(first step whose loss is NaN/±Inf; NaN if none) and ``diverged`` (the loss went non-finite,
or ended above the starting loss — Adam's bounded steps rarely overflow, they oscillate).
ML problems that have a held-out split add ``heldout_loss`` (and accuracies where given).

Fair tuning (:func:`tune`) gives every optimizer the same budget: the same number of
configurations drawn by the same method from a space of the same dimension, the same steps and
seeds; it selects on the exact (or held-out) loss and reruns the winner on fresh seeds.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import itertools
import json
import math
import operator
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import _exact as ex
from ..optim import OPTIMIZERS, Optimizer
from ..problems.base import Problem

__all__ = [
    "LogUniform",
    "OneMinusLogUniform",
    "RecordStore",
    "Uniform",
    "curve_summary",
    "grid",
    "grid_summary",
    "halton",
    "performance_profile",
    "record_key",
    "run_config",
    "sample",
    "space_size",
    "sweep",
    "tune",
]

# --------------------------------------------------------------------------------------------
# Search spaces
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Uniform:
    """A real interval [lo, hi], sampled uniformly."""

    lo: float
    hi: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lo) and math.isfinite(self.hi) and self.lo < self.hi):
            raise ValueError(
                f"{type(self).__name__} needs finite lo < hi, got {self.lo}, {self.hi}"
            )

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        return self.lo + (self.hi - self.lo) * u


@dataclasses.dataclass(frozen=True)
class LogUniform(Uniform):
    """A positive interval [lo, hi] sampled uniformly in log10 (learning rates, ε)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.lo <= 0:
            raise ValueError(f"LogUniform needs lo > 0, got {self.lo}")

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        return ex.geom_interp(self.lo, self.hi, u)  # lo·(hi/lo)ᵘ, the same bits everywhere


@dataclasses.dataclass(frozen=True)
class OneMinusLogUniform(Uniform):
    """β in [lo, hi] ⊂ [0, 1) with 1 − β log-uniform: 0.9, 0.99, 0.999 are equally likely."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.lo >= 0 and self.hi < 1):
            raise ValueError(f"OneMinusLogUniform needs 0 <= lo < hi < 1, got {self.lo}, {self.hi}")

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        return 1 - ex.geom_interp(1 - self.lo, 1 - self.hi, u)


Dist = Uniform | LogUniform | OneMinusLogUniform
Space = Mapping[str, "Dist | Sequence[Any]"]

_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71)


def halton(n: int, d: int, *, seed: int | None = 0, skip: int = 0) -> np.ndarray:
    """The first ``n`` points of the ``d``-dimensional Halton sequence in [0, 1)^d.

    Radical inverses in the first d primes. ``seed`` applies a random shift modulo 1
    (Cranley–Patterson rotation; ``None`` for the plain sequence); ``skip`` drops leading points.
    """
    if d > len(_PRIMES):
        raise ValueError(f"halton supports up to {len(_PRIMES)} dimensions, got {d}")
    idx = np.arange(skip + 1, skip + n + 1)
    out = np.empty((n, d))
    for j, base in enumerate(_PRIMES[:d]):
        i = idx.copy()
        f, r = 1.0, np.zeros(n)
        while i.any():
            f /= base
            r += f * (i % base)
            i //= base
        out[:, j] = r
    if seed is not None:
        out = (out + np.random.default_rng(seed).random(d)) % 1.0
    return out


def _check_space(space: Space) -> dict[str, Any]:
    if not isinstance(space, Mapping) or not space:
        raise ValueError("a search space is a non-empty mapping of hyperparameter -> values")
    out = {}
    for name, spec in space.items():
        if isinstance(spec, Uniform):
            out[name] = spec
        elif isinstance(spec, (str, bytes)) or not isinstance(spec, Iterable):
            raise ValueError(
                f"{name}: expected a list of values or a distribution (Uniform, LogUniform, "
                f"OneMinusLogUniform), got {spec!r}"
            )
        else:
            values = [_plain(v) for v in spec]
            if not values:
                raise ValueError(f"{name}: the list of values is empty")
            out[name] = values
    return out


def _plain(v: Any) -> Any:
    """NumPy scalars become Python scalars (JSON, hashing, equality)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list):
        return tuple(_plain(e) for e in v)
    return v


def grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    """Every combination of the given values (the last axis varies fastest).

    >>> grid(lr=[0.1, 0.01], beta1=[0.0, 0.9])[:2]
    [{'lr': 0.1, 'beta1': 0.0}, {'lr': 0.1, 'beta1': 0.9}]
    """
    space = _check_space(axes)
    for name, spec in space.items():
        if isinstance(spec, Uniform):
            raise ValueError(f"{name}: a grid needs a list of values, not {spec!r}")
    names = list(space)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*space.values())]


def sample(space: Space, n: int, *, method: str = "random", seed: int = 0) -> list[dict[str, Any]]:
    """``n`` configurations drawn from ``space``.

    ``space`` maps names to distributions (:class:`Uniform`, :class:`LogUniform`,
    :class:`OneMinusLogUniform`) or to lists of values (chosen uniformly). ``method`` is
    ``"random"`` (NumPy's PCG64 with ``seed``), ``"halton"`` (randomly shifted Halton) or
    ``"sobol"`` (scrambled Sobol from SciPy). The same (space, n, method, seed) always gives
    the same configurations.
    """
    space = _check_space(space)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    d = len(space)
    if method == "random":
        u = np.random.default_rng(seed).random((n, d))
    elif method == "halton":
        u = halton(n, d, seed=seed)
    elif method == "sobol":
        try:
            from scipy.stats import qmc
        except ImportError:  # pragma: no cover - scipy ships with scikit-learn
            raise ValueError("method='sobol' needs scipy; use method='halton'") from None
        u = qmc.Sobol(d, scramble=True, seed=seed).random(n)
    else:
        raise ValueError(
            f"Invalid method: {method!r}; choose 'grid', 'random', 'halton' or 'sobol'"
        )
    configs: list[dict[str, Any]] = [{} for _ in range(n)]
    for j, (name, spec) in enumerate(space.items()):
        if isinstance(spec, Uniform):
            col = [float(v) for v in spec.from_unit(u[:, j])]
        else:
            idx = np.minimum((u[:, j] * len(spec)).astype(int), len(spec) - 1)
            col = [spec[i] for i in idx]
        for c, v in zip(configs, col, strict=True):
            c[name] = v
    return configs


def space_size(space: Space) -> tuple[int, int | None]:
    """(dimension, number of grid points or None when a dimension is continuous)."""
    space = _check_space(space)
    sizes = [None if isinstance(s, Uniform) else len(s) for s in space.values()]
    return len(space), (None if None in sizes else int(np.prod(sizes)))


# --------------------------------------------------------------------------------------------
# Configurations -> optimizers
# --------------------------------------------------------------------------------------------


def _opt_class(optimizer: str | type[Optimizer]) -> type[Optimizer]:
    if isinstance(optimizer, str):
        try:
            return OPTIMIZERS[optimizer.lower()]
        except KeyError:
            raise ValueError(
                f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
            ) from None
    if isinstance(optimizer, type) and issubclass(optimizer, Optimizer):
        return optimizer
    raise TypeError(f"optimizer must be a name or an Optimizer class, got {optimizer!r}")


@functools.cache
def _fields(cls: type[Optimizer]) -> dict[str, dataclasses.Field]:
    return {f.name: f for f in dataclasses.fields(cls) if f.name != "_"}  # type: ignore[arg-type]


def _check_config_names(cls: type[Optimizer], names: Iterable[str]) -> None:
    fields = _fields(cls)
    allowed = set(fields) - {"nonfinite"}
    if "betas" in fields:
        allowed |= {"beta1", "beta2"}
    for name in names:
        if name not in allowed:
            raise ValueError(
                f"{cls.__name__} has no hyperparameter {name!r}; it takes "
                f"{', '.join(sorted(allowed))}"
            )


def _dynamic(cls: type[Optimizer]) -> set[str]:
    return set(cls.dynamic)


def _build(cls: type[Optimizer], values: Mapping[str, Any], *, nonfinite: str) -> Optimizer:
    """An optimizer from per-name values (floats or (K, 1) arrays); beta1/beta2 -> betas."""
    kw = dict(values)
    if "beta1" in kw or "beta2" in kw:
        default = _fields(cls)["betas"].default
        kw["betas"] = (kw.pop("beta1", default[0]), kw.pop("beta2", default[1]))
    if "nonfinite" in _fields(cls):
        kw["nonfinite"] = nonfinite
    return cls(**kw)


def _group_optimizer(cls: type[Optimizer], configs: Sequence[Mapping[str, Any]]) -> Optimizer:
    """One optimizer for configurations that share their static flags: each dynamic
    hyperparameter a (K, 1) array, validated in one go (``nonfinite="propagate"``)."""
    dyn = _dynamic(cls)
    values = {k: v for k, v in configs[0].items() if k not in dyn or not _is_number(v)}
    for k in configs[0]:
        if k not in values:
            col = list(map(operator.itemgetter(k), configs))
            if set(map(type, col)) != {float}:
                col = [float(v) for v in col]
            values[k] = np.array(col, dtype=float)[:, None]
    return _build(cls, values, nonfinite="propagate")


def _is_number(v: Any) -> bool:
    """A value that vectorises as a (K, 1) array (schedules and flags do not)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _static_signature(cls: type[Optimizer], config: Mapping[str, Any]) -> str:
    """What must be equal within a vectorised group: flags, and dynamic hyperparameters
    given as something other than a number (a schedule)."""
    dyn = _dynamic(cls)
    return repr(sorted((k, v) for k, v in config.items() if k not in dyn or not _is_number(v)))


def _normalise(config: Mapping[str, Any]) -> dict[str, Any]:
    if all(type(v) in (float, int, bool, str) for v in config.values()):
        return dict(config)  # already plain (the common case)
    out = {}
    for k, v in config.items():
        v = _plain(v)
        if isinstance(v, tuple) and k == "bias_correction":
            v = tuple(bool(e) for e in v)
        out[k] = v
    return out


_PLAIN = frozenset((float, int, bool, str))


def _all_plain(configs: Sequence[Mapping[str, Any]]) -> bool:
    """True when every value is a plain float, int, bool or str (nothing to normalise)."""
    types = set(map(type, itertools.chain.from_iterable(c.values() for c in configs)))
    return types <= _PLAIN


def _numbers(configs: Sequence[Mapping[str, Any]], name: str) -> bool:
    """True when every configuration's ``name`` is a number (:func:`_is_number`)."""
    col = list(map(operator.itemgetter(name), configs))
    if set(map(type, col)) <= {float, int}:
        return True
    return all(_is_number(v) for v in col)


def _config_ids(configs: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """:func:`_config_id` of every configuration (all with exactly the keys ``names``): the
    same text, ``repr(sorted(config.items()))``, from one format string."""
    order = sorted(names)
    pairs = ("(" + repr(name).replace("%", "%%") + ", %r)" for name in order)
    fmt = "[" + ", ".join(pairs) + "]"
    if len(order) == 1:
        (name,) = order
        return [fmt % (c[name],) for c in configs]
    get = operator.itemgetter(*order)
    return [fmt % get(c) for c in configs]


def _keys(prefix: Any, config_json: Sequence[str], seeds: Sequence[int]) -> list[str]:
    """:func:`_key` for every (configuration, seed), configuration-major."""
    copy = prefix.copy
    out = []
    for cj in config_json:
        for seed in seeds:
            h = copy()
            h.update(f"|{cj}|{seed}".encode())
            out.append(h.hexdigest()[:20])
    return out


# --------------------------------------------------------------------------------------------
# Running configurations
# --------------------------------------------------------------------------------------------


def _problem(p: Problem | str) -> Problem:
    """A problem, or one named like ``compare``'s: ``"rosenbrock"`` or ``"rosenbrock:a=2"``.

    A problem built from a spec with parameters is named by the spec, so its records, resume
    keys and table rows never mix with the default problem's.
    """
    if isinstance(p, Problem):
        return p
    if not isinstance(p, str):
        raise TypeError(f"problem must be a Problem or a name, got {p!r}")
    from .runner import get_problem

    problem = get_problem(p)
    spec = p.strip()
    return problem if ":" not in spec else dataclasses.replace(problem, name=spec)


def _problem_id(p: Problem) -> str:
    return getattr(p, "name", type(p).__name__)


@dataclasses.dataclass
class _Tracker:
    """Per-row metrics accumulated step by step (rows = configurations)."""

    f_star: float | None
    target: float | None
    f0: np.ndarray
    best: np.ndarray = dataclasses.field(init=False)
    hit: np.ndarray = dataclasses.field(init=False)
    dead: np.ndarray = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.best = self.f0.copy()
        self.hit = np.full(self.f0.shape, np.nan)
        self.dead = np.full(self.f0.shape, np.nan)
        if self.target is not None:
            self.hit[self._reached(self.f0)] = 0

    def _reached(self, f: np.ndarray) -> np.ndarray:
        ref = 0.0 if self.f_star is None else self.f_star
        return f - ref <= self.target

    def mark_nonfinite(self, t: int, bad: np.ndarray) -> None:
        self.dead[bad & np.isnan(self.dead)] = t

    def update(self, t: int, f: np.ndarray) -> None:
        finite = np.isfinite(f)
        self.dead[~finite & np.isnan(self.dead)] = t
        self.best = np.where(finite & (f < self.best), f, self.best)
        if self.target is not None:
            self.hit[self._reached(f) & np.isnan(self.hit) & np.isnan(self.dead)] = t


def _heldout(problem: Problem, x: np.ndarray) -> dict[str, np.ndarray]:
    """Held-out metrics where the problem provides them (ML tasks)."""
    out = {}
    for attr, col in (
        ("test_loss", "heldout_loss"),
        ("test_accuracy", "heldout_accuracy"),
        ("accuracy", "accuracy"),
    ):
        fn = getattr(problem, attr, None)
        if callable(fn):  # a problem whose metric fails should fail loudly, not vanish
            out[col] = np.asarray(fn(x), dtype=float)
    return out


def _eval_every(problem: Problem, steps: int, eval_every: int | None) -> int:
    """Evaluate the exact loss every step on cheap problems; ~25 times a run on large ones
    (an ML task's full training loss costs far more than its minibatch step)."""
    if eval_every is not None:
        if not isinstance(eval_every, (int, np.integer)) or eval_every < 1:
            raise ValueError(f"eval_every must be a positive integer, got {eval_every!r}")
        return int(eval_every)
    return 1 if problem.dim <= 64 else max(1, steps // 25)


def _loss(problem: Problem, x: np.ndarray) -> np.ndarray:
    """The exact loss of each row of x (K, dim), as a float array of shape (K,)."""
    return np.asarray(problem.loss(x), dtype=float).reshape(-1)


def run_config(
    optimizer: str | type[Optimizer],
    config: Mapping[str, Any],
    problem: Problem | str,
    *,
    steps: int,
    seed: int = 0,
    target: float | None = None,
    start: Any = None,
    curve: bool = False,
    eval_every: int | None = None,
) -> dict[str, Any]:
    """Run ONE configuration alone: float hyperparameters, parameters of shape (1, dim).

    (A batch of one, not shape (dim,): NumPy's 0-d scalar arithmetic inside a problem's
    ``loss``/``grad`` can round differently from its array loops, e.g. ``s ** 2``.)

    This is the reference a vectorised sweep must reproduce bit for bit; it is also what a
    worker process runs for problems that do not vectorise. Returns the record's metrics.
    """
    return _run_batch(
        _opt_class(optimizer), [dict(config)], _problem(problem), steps=steps, seed=seed,
        target=target, start=start, vectorise=False, curve=curve, eval_every=eval_every,
    )[0]  # fmt: skip


def _run_batch(
    cls: type[Optimizer],
    configs: Sequence[Mapping[str, Any]],
    problem: Problem,
    *,
    steps: int,
    seed: int,
    target: float | None,
    start: Any = None,
    vectorise: bool = True,
    curve: bool = False,
    eval_every: int | None = None,
) -> list[dict[str, Any]]:
    """Run configurations sharing their static flags: one pass, hyperparameters as (K, 1)."""
    K = len(configs)
    dyn = _dynamic(cls)
    x0 = problem.check_start(problem.x0 if start is None else start)
    if x0.ndim != 1:
        raise ValueError(f"start must be one point of shape ({problem.dim},)")
    if vectorise:
        opt = _group_optimizer(cls, configs)
        x = np.repeat(x0[None, :], K, axis=0)
    else:
        assert K == 1
        values = {k: (float(v) if k in dyn and _is_number(v) else v) for k, v in configs[0].items()}
        opt = _build(cls, values, nonfinite="propagate")
        x = x0[None, :].copy()  # a batch of one: the problem's array code paths, as in a sweep
    oracle = problem.oracle(seed)
    state = opt.init(x)
    with np.errstate(all="ignore"):
        f = _loss(problem, x)
        track = _Tracker(problem.f_star, target, f.copy())
        curves = [f] if curve else None
        every = _eval_every(problem, steps, eval_every)
        for t in range(1, steps + 1):
            _, g = oracle(x, t)
            x, state = opt.step(x, g, state)
            x = problem.project(x)
            if t % every == 0 or t == steps:
                f = _loss(problem, x)
                track.update(t, f)
                if curve:
                    curves.append(f)
            else:  # between evaluations, a non-finite parameter still marks divergence
                track.mark_nonfinite(t, ~np.isfinite(x).all(axis=-1))
        extra = _heldout(problem, x)
    x = np.atleast_2d(x)
    records = []
    for k in range(K):
        final = float(f[k])
        rec: dict[str, Any] = {
            "final_loss": final,
            "best_loss": float(track.best[k]),
            "gap": (final - problem.f_star) if problem.f_star is not None else math.nan,
            "steps_to_target": float(track.hit[k]),
            "diverged_at": float(track.dead[k]),
            "diverged": bool(not math.isfinite(final) or final > track.f0[k]),
            "loss0": float(track.f0[k]),
        }
        if x.shape[1] <= 8:
            rec["final_x"] = [float(v) for v in x[k]]
        for col, arr in extra.items():
            rec[col] = float(np.atleast_1d(arr)[k])
        if curve:
            rec["curve"] = [float(c[k]) for c in curves]
        records.append(rec)
    return records


# --------------------------------------------------------------------------------------------
# The record store (resume)
# --------------------------------------------------------------------------------------------


def record_key(
    problem: str, optimizer: str, config: Mapping[str, Any], seed: int, run: Mapping
) -> str:
    """A stable id for one (problem, optimizer, configuration, seed, run settings)."""
    prefix = hashlib.sha1(
        json.dumps({"p": problem, "o": optimizer, "r": dict(run)}, sort_keys=True).encode()
    )
    return _key(prefix, _config_id(_normalise(config)), seed)


def _config_id(config: Mapping[str, Any]) -> str:
    """A canonical text of a (normalised) configuration: sorted (name, repr(value)) pairs."""
    return repr(sorted(config.items()))


def _key(prefix: Any, config_json: str, seed: int) -> str:
    h = prefix.copy()
    h.update(f"|{config_json}|{seed}".encode())
    return h.hexdigest()[:20]


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
            self._repair()
            self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
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


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------


#: parameters per vectorised batch (K × dim): 100,000 configurations of a 2-D problem, 82 of
#: the 2,410-parameter digits MLP (whose batched forward pass holds K × n × hidden values)
_VECTOR_BUDGET = 200_000


def _can_vectorise(problem: Problem) -> bool:
    """Problems follow the contract (loss/grad vectorised over leading dimensions) unless
    they say otherwise with ``vectorizable = False``; those run in worker processes."""
    return bool(getattr(problem, "vectorizable", True))


def _task(args: tuple) -> list[dict[str, Any]]:
    """Worker entry point: one configuration × seed (picklable, top level)."""
    cls, config, problem, steps, seed, target, start, curve, eval_every = args
    return _run_batch(
        cls, [config], problem, steps=steps, seed=seed, target=target, start=start,
        vectorise=False, curve=curve, eval_every=eval_every,
    )  # fmt: skip


def sweep(
    optimizer: str | type[Optimizer],
    configs: Sequence[Mapping[str, Any]] | Space,
    problems: Problem | str | Sequence[Problem | str],
    *,
    steps: int = 100,
    seeds: int | Sequence[int] = (0,),
    n: int | None = None,
    method: str = "grid",
    sample_seed: int = 0,
    fixed: Mapping[str, Any] | None = None,
    target: float | None = None,
    start: Any = None,
    out: str | os.PathLike | None = None,
    engine: str = "auto",
    workers: int = 2,
    progress: bool | None = None,
    curve: bool = False,
    eval_every: int | None = None,
    label: str | None = None,
):
    """Run ``optimizer`` over configurations × seeds × problems; return a tidy DataFrame.

    Args:
        optimizer: a name from ``adamlab.optim.OPTIMIZERS`` ("adam", "sgd", …) or a class.
        configs: a list of dicts (from :func:`grid` / :func:`sample`), or a search space
            (a dict of value lists / distributions) expanded by ``method`` and ``n``.
        problems: a Problem, a registered name, or a list of them.
        steps: optimizer steps per run (the same budget for every configuration).
        seeds: seeds (or a count: ``3`` means 0, 1, 2); each selects the oracle's sample
            stream, so stochastic problems give paired runs across configurations.
        n, method, sample_seed: when ``configs`` is a space: ``method`` "grid" (every
            combination), "random", "halton" or "sobol" with ``n`` points.
        fixed: hyperparameters shared by every configuration (e.g. ``{"eps": 1e-8}``).
        target: tolerance on loss − f* for ``steps_to_target``.
        start: a start point instead of ``problem.x0``.
        out: a directory for ``records.jsonl`` (resumable) and ``sweep.parquet``.
        engine: "auto", "vectorized", "numba", "process" or "loop" (one run at a time,
            in this process: the reference).
        workers: processes for the "process" engine.
        progress: show a tqdm bar (None: only on a terminal).
        curve: keep each run's loss at every evaluation (column ``curve``).
        eval_every: evaluate the exact loss (for ``best_loss``, ``steps_to_target``, the
            curve) every this many steps and at the last; default 1 on problems of dimension
            ≤ 64, else ``steps // 25`` (an ML task's full training loss costs far more than a
            minibatch step). Non-finite parameters are checked at every step regardless.
        label: the ``optimizer`` column's value (default: the optimizer's name).

    Returns:
        A pandas DataFrame, one row per (problem, configuration, seed): ``problem``,
        ``optimizer``, ``config_id``, ``seed``, one column per hyperparameter, the metrics
        described in the module docstring, and ``key`` (the record id). ``df.attrs`` holds
        ``computed`` (runs done now), ``resumed`` (loaded from ``out``), ``seconds`` and the
        settings.
    """
    import pandas as pd

    cls = _opt_class(optimizer)
    if isinstance(configs, Mapping):
        if method == "grid":
            configs = grid(**configs)
        else:
            if n is None:
                raise ValueError(f"method={method!r} needs n, the number of configurations")
            configs = sample(configs, n, method=method, seed=sample_seed)
    configs = list(configs)
    if fixed or not all(type(c) is dict for c in configs):
        base = dict(fixed or {})
        configs = [{**base, **c} for c in configs]  # fixed values first
    # (the caller's dicts are only read, never changed: no copy needed)
    if not _all_plain(configs):
        configs = [_normalise(c) for c in configs]
    if not configs:
        raise ValueError("no configurations to run")
    names = list(dict.fromkeys(itertools.chain.from_iterable(configs)))
    _check_config_names(cls, names)
    for c in configs:
        if len(c) != len(names):  # every key of c is in names: c lacks some
            missing = [k for k in names if k not in c]
            raise ValueError(
                f"configuration {c} lacks {missing}: give every configuration the same keys"
            )
    # validate every configuration before any work starts: one optimizer per group of
    # configurations sharing their static flags, dynamic hyperparameters as (K, 1) arrays
    all_groups: dict[str, list[int]] = {}
    dyn = _dynamic(cls)
    if all(k in dyn and _numbers(configs, k) for k in names):
        # nothing static: one group
        all_groups[""] = list(range(len(configs)))
    else:
        for cid, c in enumerate(configs):
            all_groups.setdefault(_static_signature(cls, c), []).append(cid)
    group_opts: dict[str, Optimizer] = {}
    for sig, cids in all_groups.items():
        try:
            group_opts[sig] = _group_optimizer(cls, [configs[cid] for cid in cids])
        except (TypeError, ValueError) as e:
            for cid in cids:  # name the first offending configuration
                try:
                    _build(cls, configs[cid], nonfinite="propagate")
                except (TypeError, ValueError) as e1:
                    raise type(e1)(f"configuration {configs[cid]}: {e1}") from None
            raise type(e)(str(e)) from None
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        seeds = list(range(int(seeds)))
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds is empty")
    useeds = list(dict.fromkeys(seeds))  # a repeated seed is one run
    if not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if engine not in ("auto", "vectorized", "numba", "process", "loop"):
        raise ValueError(
            f"Invalid engine: {engine!r}; choose 'auto', 'vectorized', 'numba', 'process' or 'loop'"
        )
    plist = [problems] if isinstance(problems, (Problem, str)) else list(problems)
    plist = [_problem(p) for p in plist]
    opt_name = label or cls.name
    run_settings = {
        "steps": int(steps),
        "target": target,
        "start": None if start is None else np.asarray(start, float).tolist(),
    }
    if eval_every is not None:
        run_settings["eval_every"] = int(eval_every)

    config_json = _config_ids(configs, names)
    store = RecordStore(out) if out is not None else None
    t_start = time.perf_counter()
    # every row's key, in table order: per problem, configuration-major, seed-minor
    row_keys: list[list[str]] = []
    for p in plist:
        prefix = hashlib.sha1(
            json.dumps(
                {"p": _problem_id(p), "o": cls.name, "r": run_settings}, sort_keys=True
            ).encode()
        )
        row_keys.append(_keys(prefix, config_json, useeds))

    if store is None and _fused(engine, plist, group_opts):
        # Adam on Rosenbrock without a record store: the kernel's columns go straight into
        # the table (no per-run dicts); the same rows, values and dtypes as the general path
        n_keys = sum(len(k) for k in row_keys)
        if len(set(itertools.chain.from_iterable(row_keys))) == n_keys:
            columns = _numba_columns(
                cls, configs, names, all_groups, group_opts, plist, useeds, row_keys, opt_name,
                steps=steps, target=target, start=start, progress=progress,
            )  # fmt: skip
            table = pd.DataFrame(columns)
            table.attrs.update(
                computed=n_keys,
                resumed=0,
                seconds=time.perf_counter() - t_start,
                optimizer=opt_name,
                steps=int(steps),
                seeds=seeds,
                target=target,
                n_configs=len(configs),
                engines={_problem_id(p): "numba" for p in plist},
                engine_notes={},
            )
            return table

    done: dict[str, dict] = dict(store.records) if store else {}
    computed = 0
    resumed_keys: set[str] = set()
    rows: list[dict] = []

    def meta(p: Problem, cid: int, seed: int) -> dict[str, Any]:
        return {"problem": _problem_id(p), "optimizer": opt_name, "config_id": cid, "seed": seed}

    def finish(p: Problem, cid: int, seed: int, key: str, rec: dict) -> dict:
        return {**meta(p, cid, seed), **configs[cid], **rec, "key": key}

    todo_proc: list[tuple] = []
    engines: dict[str, str] = {}
    notes: dict[str, str] = {}
    for p, key_list in zip(plist, row_keys, strict=True):
        pid = _problem_id(p)
        keys = dict(zip(itertools.product(range(len(configs)), useeds), key_list, strict=True))
        eng = _pick_engine(engine, p, group_opts)
        engines[pid] = eng
        if (
            engine == "auto"
            and eng == "vectorized"
            and all(_numba_supports(o, p, installed=False) for o in group_opts.values())
        ):
            notes[pid] = NO_NUMBA
        resumed_keys.update(k for k in keys.values() if k in done)
        pending = [(cid, s) for (cid, s), key in keys.items() if key not in done]
        bar = (
            _bar(len(pending), f"sweep {opt_name} on {pid}", progress) if eng != "process" else None
        )
        if eng in ("vectorized", "numba"):
            for s in useeds:
                for sig, cids in all_groups.items():
                    todo = [cid for cid in cids if keys[(cid, s)] not in done]
                    if not todo:
                        continue
                    if eng == "numba":
                        o = group_opts[sig] if len(todo) == len(cids) else None
                        batch = [configs[cid] for cid in todo]
                        recs = _run_numba(
                            cls, o or _group_optimizer(cls, batch), batch, p, steps=steps,
                            seed=s, target=target, start=start,
                        )  # fmt: skip
                    else:  # in chunks that keep (K, dim) arrays small; rows are independent
                        size = max(1, _VECTOR_BUDGET // p.dim)
                        recs = []
                        for i in range(0, len(todo), size):
                            recs += _run_batch(
                                cls, [configs[cid] for cid in todo[i : i + size]], p,
                                steps=steps, seed=s, target=target, start=start, curve=curve,
                                eval_every=eval_every,
                            )  # fmt: skip
                    new = [
                        finish(p, cid, s, keys[(cid, s)], r)
                        for cid, r in zip(todo, recs, strict=True)
                    ]
                    computed += len(new)
                    for r in new:
                        done[r["key"]] = r
                    if store:
                        store.add(new)
                    bar.update(len(new))
        elif eng == "loop":
            for cid, s in pending:
                rec = _run_batch(
                    cls,
                    [configs[cid]],
                    p,
                    steps=steps,
                    seed=s,
                    target=target,
                    start=start,
                    vectorise=False,
                    curve=curve,
                    eval_every=eval_every,
                )[0]
                r = finish(p, cid, s, keys[(cid, s)], rec)
                computed += 1
                done[r["key"]] = r
                if store:
                    store.add([r])
                bar.update()
        else:
            for cid, s in pending:
                todo_proc.append((p, cid, s, keys[(cid, s)]))
        if bar is not None:
            bar.close()
        rows.extend(keys.values())

    if todo_proc:
        computed += _run_processes(
            cls,
            configs,
            todo_proc,
            steps,
            target,
            start,
            curve,
            workers,
            progress,
            done,
            store,
            finish,
            eval_every,
        )
    if store:
        store.close()

    table = pd.DataFrame([done[k] for k in rows])
    table.attrs.update(
        computed=computed,
        resumed=len(resumed_keys),
        seconds=time.perf_counter() - t_start,
        optimizer=opt_name,
        steps=int(steps),
        seeds=seeds,
        target=target,
        n_configs=len(configs),
        engines=engines,
        engine_notes=notes,
    )
    if out is not None:
        path, note = _save_table(table, Path(out))
        table.attrs["written"] = {str(path): note}
    return table


def _bar(total: int, desc: str, progress: bool | None) -> Any:
    """A tqdm bar (shown on a terminal when ``progress`` is None)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, desc=desc, unit="run", disable=None if progress is None else not progress
    )


def _run_processes(
    cls,
    configs,
    todo,
    steps,
    target,
    start,
    curve,
    workers,
    progress,
    done,
    store,
    finish,
    eval_every=None,
) -> int:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    computed = 0
    bar = _bar(len(todo), f"sweep {cls.name}", progress)
    try:
        if workers <= 1:
            for p, cid, s, key in todo:
                rec = _task((cls, configs[cid], p, steps, s, target, start, curve, eval_every))[0]
                r = finish(p, cid, s, key, rec)
                done[key] = r
                if store:
                    store.add([r])
                computed += 1
                bar.update()
            return computed
        ctx = mp.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futs = {
                pool.submit(
                    _task, (cls, configs[cid], p, steps, s, target, start, curve, eval_every)
                ): (
                    p,
                    cid,
                    s,
                    key,
                )
                for p, cid, s, key in todo
            }
            for fut in as_completed(futs):
                p, cid, s, key = futs[fut]
                r = finish(p, cid, s, key, fut.result()[0])
                done[key] = r
                if store:
                    store.add([r])
                computed += 1
                bar.update()
    finally:
        bar.close()
    return computed


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


def _save_table(table, out: Path) -> tuple[Path, str | None]:
    """Write the table atomically: Parquet if pyarrow is there, else CSV (and say why)."""
    note = None
    try:
        import pyarrow  # noqa: F401

        path, writer = out / "sweep.parquet", "to_parquet"
    except ImportError:
        path, writer = out / "sweep.csv", "to_csv"
        note = NO_PYARROW
    tmp = path.with_suffix(path.suffix + ".tmp")
    frame = table.copy()
    for col in frame.columns:
        if frame[col].dtype == object:
            frame[col] = frame[col].map(_storable)
            kinds = {type(v) for v in frame[col] if v is not None}
            if str in kinds and len(kinds) > 1:  # e.g. numbers and schedules: all as text
                frame[col] = frame[col].map(lambda v: v if isinstance(v, str) else repr(v))
    getattr(frame, writer)(tmp, index=False)
    os.replace(tmp, path)
    return path, note


# --------------------------------------------------------------------------------------------
# The numba path
# --------------------------------------------------------------------------------------------


def _numba_supports(opt: Optimizer, problem: Problem, *, installed: bool = True) -> bool:
    """The fused kernel computes plain Adam on the deterministic, unprojected 2-D Rosenbrock
    (with the problem's own a, b); anything else takes the vectorised NumPy path.
    ``installed=False`` asks whether it would, were numba installed."""
    from ..optim import Adam
    from ..problems.analytic import Rosenbrock

    if type(opt) is not Adam or type(problem) is not Rosenbrock:
        return False  # decided without importing numba (which costs ~0.5 s)
    if problem.dim != 2 or problem.stochastic or type(problem).project is not Problem.project:
        return False
    from ..kernels import sweep as ks

    return ks.supports(opt) and (ks.available() or not installed)


def _kernel_columns(
    cls: type[Optimizer], opt: Optimizer, configs: Sequence[Mapping[str, Any]], problem: Problem,
    *, steps: int, seed: int, target: float | None, start: Any,
) -> dict[str, np.ndarray]:  # fmt: skip
    """The kernel's columns for one group; the rare configurations whose βᵗ the kernel could
    not round with certainty (``exact`` False) are rerun here on the reference path."""
    from ..kernels import sweep as ks

    res = ks.run_columns(opt, problem, steps=steps, target=target, start=start)
    exact = res.pop("exact")
    redo = np.flatnonzero(~exact)
    if redo.size:
        recs = _run_batch(
            cls, [configs[i] for i in redo], problem, steps=steps, seed=seed, target=target,
            start=start,
        )  # fmt: skip
        for i, rec in zip(redo, recs, strict=True):
            for k, col in res.items():
                col[i] = rec[k]
    return res


def _run_numba(cls, opt, configs, problem, *, steps, seed, target, start) -> list[dict[str, Any]]:
    """The kernel's results for one group as records (dicts), as ``_run_batch`` returns them."""
    cols = _kernel_columns(
        cls, opt, configs, problem, steps=steps, seed=seed, target=target, start=start
    )
    names = ("final_loss", "best_loss", "gap", "steps_to_target", "diverged_at", "diverged")
    values = zip(*(cols[k].tolist() for k in names), strict=True)
    out = []
    for vals, f0, xk in zip(values, cols["loss0"].tolist(), cols["final_x"].tolist(), strict=True):
        rec = dict(zip(names, vals, strict=True))
        rec["loss0"] = f0
        rec["final_x"] = xk
        out.append(rec)
    return out


def _pick_engine(engine: str, p: Problem, group_opts: Mapping[str, Optimizer]) -> str:
    """The engine that runs problem ``p`` ("auto" resolved); a ValueError if "numba" was
    asked for and the kernel cannot run every group."""
    if engine == "auto":
        eng = "vectorized" if _can_vectorise(p) else "process"
        if eng == "vectorized" and all(_numba_supports(o, p) for o in group_opts.values()):
            eng = "numba"
        return eng
    if engine == "numba":
        for o in group_opts.values():
            if not _numba_supports(o, p):
                raise ValueError(
                    f"engine='numba' has a fused kernel for plain Adam on the 2-D "
                    f"Rosenbrock only, not {type(o).__name__} on {_problem_id(p)!r}; use "
                    "engine='vectorized'"
                )
    return engine


def _fused(engine: str, plist: Sequence[Problem], group_opts: Mapping[str, Optimizer]) -> bool:
    """True when every problem runs on the numba kernel."""
    if engine not in ("auto", "numba"):
        return False
    try:
        return all(_pick_engine(engine, p, group_opts) == "numba" for p in plist)
    except ValueError:
        return False  # the general path raises it, at the same point as always


def _table_column(values: list[Any], name: str) -> Any:
    """A config column for the table, typed as pandas types it from the rows' dicts."""
    kinds = set(map(type, values))
    if kinds == {float}:
        return np.array(values, dtype=np.float64)
    if kinds == {bool}:
        return np.array(values, dtype=bool)
    import pandas as pd

    return pd.DataFrame([{name: v} for v in values])[name].to_numpy()


def _numba_columns(
    cls, configs, names, all_groups, group_opts, plist, seeds, row_keys, opt_name,
    *, steps, target, start, progress,
) -> dict[str, Any]:  # fmt: skip
    """The sweep table's columns, every problem on the numba kernel (no record store).

    The same rows, in the same order (per problem, configuration-major, seed-minor), as the
    per-record path builds from its dicts. The kernel is deterministic and the problem not
    stochastic, so each group runs once and its results fill the rows of every seed.
    """
    K, S = len(configs), len(seeds)
    n = K * S
    metrics: dict[str, list[np.ndarray]] = {}
    for p in plist:
        cols: dict[str, np.ndarray] = {}
        bar = _bar(n, f"sweep {opt_name} on {_problem_id(p)}", progress)
        try:
            for sig, cids in all_groups.items():
                res = _kernel_columns(
                    cls, group_opts[sig], [configs[c] for c in cids], p, steps=steps,
                    seed=seeds[0], target=target, start=start,
                )  # fmt: skip
                if not cols:
                    cols = {k: np.empty((n, *v.shape[1:]), v.dtype) for k, v in res.items()}
                rows = np.asarray(cids) * S
                for j in range(S):
                    for k, v in res.items():
                        cols[k][rows + j] = v
                    bar.update(len(cids))
        finally:
            bar.close()
        for k, v in cols.items():
            metrics.setdefault(k, []).append(v)
    P = len(plist)
    cid = np.repeat(np.arange(K, dtype=np.int64), S)
    table: dict[str, Any] = {
        "problem": [pid for p in plist for pid in [_problem_id(p)] * n],
        "optimizer": [opt_name] * (n * P),
        "config_id": np.tile(cid, P),
        "seed": np.tile(np.array(seeds, dtype=np.int64), K * P),
    }
    for name in names:
        col = _table_column(list(map(operator.itemgetter(name), configs)), name)
        table[name] = np.tile(np.repeat(col, S), P)
    for k, parts in metrics.items():
        v = np.concatenate(parts)
        if k == "final_x":  # a list of coordinates per row, as in a record
            v = np.fromiter(v.tolist(), dtype=object, count=len(v))
        table[k] = v
    table["key"] = list(itertools.chain.from_iterable(row_keys))
    return table


# --------------------------------------------------------------------------------------------
# Fair tuning
# --------------------------------------------------------------------------------------------


def tune(
    candidates: Mapping[str, tuple[str | type[Optimizer], Space]],
    problem: Problem | str,
    *,
    budget: int,
    steps: int,
    method: str = "halton",
    sample_seed: int = 0,
    tune_seeds: Sequence[int] = (0,),
    eval_seeds: Sequence[int] = (100, 101, 102),
    metric: str | None = None,
    target: float | None = None,
    fixed: Mapping[str, Mapping[str, Any]] | None = None,
    out: str | os.PathLike | None = None,
    engine: str = "auto",
    workers: int = 2,
    progress: bool | None = None,
):
    """Tune several optimizers under one declared, equal budget, then rerun the winners.

    Every candidate ``name -> (optimizer, space)`` gets ``budget`` configurations drawn by the
    same ``method`` and ``sample_seed`` from its space (spaces must have the same number of
    dimensions; with ``method="grid"`` the same number of grid points), the same ``steps``
    and ``tune_seeds``. The winner is the configuration with the lowest mean ``metric`` over
    the tuning seeds — by default ``heldout_loss`` where the problem has a held-out split,
    else ``final_loss`` (the exact loss, not the noisy samples the optimizer saw); or e.g.
    ``"steps_to_target"`` with a ``target``. Diverged runs (and NaN: a target never reached)
    count as +inf; ties are broken by the (held-out) loss. Each winner is rerun on ``eval_seeds`` (fresh seeds, never used for
    selection). Returns ``(summary, runs)``: one summary row per optimizer (best config,
    tuning score, evaluation mean/std/min/max) and every run's row, with ``phase`` "tune"
    (the search) or "eval" (the winner on the fresh seeds); the fairness terms are
    in ``summary.attrs``.
    """
    import pandas as pd

    p = _problem(problem)
    dims = {}
    for name, (_, space) in candidates.items():
        d, size = space_size(space)
        dims[name] = (d, size)
    if len({d for d, _ in dims.values()}) > 1:
        raise ValueError(
            "unfair tuning: search spaces differ in dimension "
            + ", ".join(f"{k}: {d}" for k, (d, _) in dims.items())
        )
    if method == "grid" and len({s for _, s in dims.values()}) > 1:
        raise ValueError(
            "unfair tuning: grids differ in size "
            + ", ".join(f"{k}: {s}" for k, (_, s) in dims.items())
        )
    trials, rows = [], []
    for name, (opt, space) in candidates.items():
        configs = (
            grid(**space)
            if method == "grid"
            else sample(space, budget, method=method, seed=sample_seed)
        )
        if method == "grid" and len(configs) != budget:
            raise ValueError(f"{name}: the grid has {len(configs)} points but budget is {budget}")
        sub = None if out is None else Path(out) / name
        df = sweep(
            opt,
            configs,
            p,
            steps=steps,
            target=target,
            seeds=list(tune_seeds),
            fixed=(fixed or {}).get(name),
            out=sub,
            engine=engine,
            workers=workers,
            progress=progress,
            label=name,
        )
        col = metric or ("heldout_loss" if "heldout_loss" in df else "final_loss")
        score = df[col].where(~df["diverged"] & np.isfinite(df[col]), np.inf)
        mean = score.groupby(df["config_id"]).mean()
        # ties (e.g. no configuration reached the target) are broken by the loss
        loss_col = "heldout_loss" if "heldout_loss" in df else "final_loss"
        loss = df[loss_col].where(~df["diverged"] & np.isfinite(df[loss_col]), np.inf)
        tie = loss.groupby(df["config_id"]).mean()
        best = int(min(mean.index, key=lambda c: (mean[c], tie[c])))
        best_cfg = {k: df.loc[df.config_id == best, k].iloc[0] for k in configs[0]}
        ev = sweep(
            opt,
            [best_cfg],
            p,
            steps=steps,
            target=target,
            seeds=list(eval_seeds),
            fixed=(fixed or {}).get(name),
            out=None if sub is None else sub / "eval",
            engine=engine,
            workers=workers,
            progress=progress,
            label=name,
        )
        trials.append(df.assign(phase="tune"))
        trials.append(ev.assign(phase="eval"))
        rows.append({
            "optimizer": name, "metric": col, "best_config": best_cfg,
            "tune_score": float(mean.loc[best]),
            "eval_mean": float(ev[col].mean()), "eval_std": float(ev[col].std(ddof=0)),
            "eval_min": float(ev[col].min()), "eval_max": float(ev[col].max()),
            "eval_diverged": int(ev["diverged"].sum()),
        })  # fmt: skip
    summary = pd.DataFrame(rows)
    summary.attrs.update(
        budget=budget, method=method, sample_seed=sample_seed, steps=steps,
        tune_seeds=list(tune_seeds), eval_seeds=list(eval_seeds),
        space_dims={k: d for k, (d, _) in dims.items()}, problem=_problem_id(p),
    )  # fmt: skip
    return summary, pd.concat(trials, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Summaries of a sweep table (what the plots draw)
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
