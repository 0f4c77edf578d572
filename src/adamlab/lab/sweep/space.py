"""Search spaces: distributions, grids, and samples (random, Halton, Sobol)."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ... import _exact as ex

__all__ = [
    "Dist", "LogUniform", "OneMinusLogUniform", "Space", "Uniform", "grid", "halton", "plain",
    "sample", "space_size",
]  # fmt: skip


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


def check_space(space: Space) -> dict[str, Any]:
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
            values = [plain(v) for v in spec]
            if not values:
                raise ValueError(f"{name}: the list of values is empty")
            out[name] = values
    return out


def plain(v: Any) -> Any:
    """NumPy scalars become Python scalars (JSON, hashing, equality)."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list):
        return tuple(plain(e) for e in v)
    return v


def grid(**axes: Sequence[Any]) -> list[dict[str, Any]]:
    """Every combination of the given values (the last axis varies fastest).

    >>> grid(lr=[0.1, 0.01], beta1=[0.0, 0.9])[:2]
    [{'lr': 0.1, 'beta1': 0.0}, {'lr': 0.1, 'beta1': 0.9}]
    """
    space = check_space(axes)
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
    space = check_space(space)
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
    space = check_space(space)
    sizes = [None if isinstance(s, Uniform) else len(s) for s in space.values()]
    return len(space), (None if None in sizes else int(np.prod(sizes)))
