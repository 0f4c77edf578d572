"""Noisy variants of any problem: what the optimizer sees is noisy, what is reported is exact.

``Noisy(problem, kind, sigma)`` keeps ``loss``/``grad`` (the exact objective, used for every
reported number) and replaces the oracle. At step t the noise ``z_t`` is a vector of shape
``(dim,)`` drawn from a generator fixed by ``(seed, t)`` alone (see
:func:`adamlab.problems.base.step_rng`), so every optimizer run with the same seed sees the
same noise sequence: comparisons are paired. In a batched call (``x`` of shape ``(K, dim)``)
every row gets the same ``z_t``.

Kinds:

* ``"gaussian"``: additive gradient noise, g̃ = ∇f(x) + σz, z ~ N(0, I). The oracle's loss
  is the exact f(x) (the noise is in the gradient only).
* ``"linear"``: DeepOBS-style noisy objective (Schneider, Balles & Hennig, "DeepOBS", ICLR
  2019, its 2-D test problems): the optimizer trains on f̃ₜ(x) = f(x) + σ·zₜ·x, an unbiased
  random linear perturbation, so the oracle's loss and gradient (∇f + σzₜ) are consistent;
  the exact f is reported.
* ``"student-t"``: heavy-tailed additive gradient noise, g̃ = ∇f(x) + σ·T, T ~ Student-t
  with ``df`` degrees of freedom per coordinate (df = 1 is Cauchy; the variance is infinite
  for df ≤ 2, the mean undefined for df ≤ 1). Heavy-tailed gradient noise is the regime of
  Zhang et al., "Why are adaptive methods good for attention models?", NeurIPS 2020.

Noise is added on top of the wrapped problem's own oracle, so a minibatch problem can be
made noisier still; the streams are independent.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .. import _exact as ex
from .base import STREAM_NOISE, Oracle, ParametricProblem, Problem, resolve_seed, step_rng

#: the kinds of noise (``with_noise(problem, kind)``)
NOISE_KINDS = ("gaussian", "linear", "student-t")
KINDS = NOISE_KINDS
DEFAULT_DF = 1.5  # Student-t degrees of freedom: finite mean, infinite variance
_PREFIX = {"gaussian": "noisy", "linear": "linear-noisy", "student-t": "heavy-tailed"}


@dataclasses.dataclass(frozen=True, eq=False)
class Noisy(ParametricProblem):
    """``problem`` seen through noise of the given ``kind`` and scale ``sigma`` (see module)."""

    base: Problem = None  # type: ignore[assignment]
    kind: str = "gaussian"
    sigma: float = 1.0
    df: float | None = None
    stochastic: bool = dataclasses.field(default=True, init=False, kw_only=True)
    dim: int = dataclasses.field(default=0, init=False, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.base, Problem):
            raise TypeError(f"Noisy needs a Problem to wrap, got {type(self.base).__name__}")
        if self.kind not in KINDS:
            raise ValueError(
                f"unknown noise kind {self.kind!r}; choose one of {', '.join(map(repr, KINDS))}"
            )
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise ValueError(f"Invalid sigma: {self.sigma!r}; it must be a finite number >= 0")
        if self.kind == "student-t" and self.df is None:
            object.__setattr__(self, "df", DEFAULT_DF)
        if self.df is not None and not (math.isfinite(self.df) and self.df > 0):
            raise ValueError(f"Invalid df: {self.df!r}; it must be a finite number > 0")
        object.__setattr__(self, "dim", self.base.dim)
        super().__post_init__()

    def defaults(self) -> dict[str, Any]:
        b = self.base
        if self.kind == "gaussian":
            what = f"Gaussian gradient noise sigma={self.sigma:g}"
        elif self.kind == "linear":
            what = f"DeepOBS-style linear noise sigma={self.sigma:g}"
        else:
            what = f"Student-t gradient noise sigma={self.sigma:g}, df={self.df:g}"
        return {
            "name": f"{_PREFIX[self.kind]}-{b.name}",
            "description": f"{b.name} with {what}",
            "x0": b.x0,
            "domain": b.domain,
            "x_star": b.x_star,
            "f_star": b.f_star,
        }

    # the exact objective, for reporting
    def loss(self, x: np.ndarray) -> np.ndarray:
        return self.base.loss(x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.base.grad(x)

    def project(self, x: np.ndarray) -> np.ndarray:
        return self.base.project(x)

    def params_to_plot(self, x: np.ndarray) -> np.ndarray:
        return self.base.params_to_plot(x)

    @property
    def formula(self) -> str | None:
        return self.base.formula  # the exact objective; the noise is in what the oracle says

    def noise(self, seed: int, t: int) -> np.ndarray:
        """The unit-scale noise vector z_t of shape ``(dim,)`` for step t (before σ)."""
        rng = step_rng(seed, t, STREAM_NOISE)
        if self.kind == "student-t":
            return rng.standard_t(self.df, size=self.dim)
        return rng.standard_normal(self.dim)

    def oracle(self, seed: int | None = 0) -> Oracle:
        seed = resolve_seed(seed)
        inner = self.base.oracle(seed)

        def noisy(x: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
            x = np.asarray(x, dtype=np.float64)
            loss, grad = inner(x, t)
            z = self.sigma * self.noise(seed, t)
            if self.kind == "linear":
                loss = loss + ex.dot(x, z)
            return loss, grad + z

        return noisy


def with_noise(problem: Problem, kind: str = "gaussian", sigma: float = 1.0, **kw: Any) -> Noisy:
    """``problem`` with noise of ``kind`` ("gaussian", "linear", "student-t") and scale σ.

    ``df=`` sets the Student-t degrees of freedom (default 1.5; 1 is Cauchy).
    """
    return Noisy(base=problem, kind=kind, sigma=sigma, **kw)
