"""The Reddi–Kale–Kumar (2018) counterexamples: online linear problems on [−1, 1].

Reddi, Kale & Kumar, "On the Convergence of Adam and Beyond", ICLR 2018, §3 and §5. At step
t the optimizer sees the linear loss

    fₜ(x) = big·x    if t mod period = 1,
    fₜ(x) = small·x  otherwise,

on the feasible set [−1, 1] (``project`` clips, and a runner must project after every step).
The big gradient comes rarely, the small one of opposite sign often; on average the slope
(big + (period − 1)·small)/period is positive, so the best fixed point is x* = −1.

Adam's second moment vₜ forgets the rare big gradient within a few steps (β₂ small relative to
the period), so the frequent small gradients get large steps 1/√v̂ₜ and the rare big one a
small step: Adam drifts to the *wrong* end, +1. AMSGrad keeps v_max = max vₜ, so the big
gradient keeps dominating the scale and it reaches −1.

* Theorem 1: big = C, small = −1, period 3, with C = 3, β₁ = 0, β₂ = 1/(1 + C²) = 0.1.
* §5 (synthetic experiment): big = 1010, small = −10, period 101 (β₁ = 0.9, β₂ = 0.99 there).
* §5's stochastic version: big with probability p = 0.01, small otherwise (``probability``).

What makes the phenomenon appear with ``adamlab.Adam`` (checked in the tests, start x = 0,
projection after every step): Theorem 1 with ``betas=(0, 0.1)`` and either a constant
``lr`` (0.01 … 0.5) or ``lr=schedules.inverse_sqrt(0.5)`` (the paper's αₜ = α/√t): Adam sits at
+1 within a few hundred steps, AMSGrad at −1. Bias correction and ε make no difference here.
§5 with ``betas=(0.9, 0.99)`` and ``lr=inverse_sqrt(1.0)``: Adam is near +1 after ~3000 steps,
AMSGrad past −0.7 (it moves slowly: the average slope 10/101 is small next to its scale √v_max).

``loss(x)`` (for reporting) is the average loss per step over one period (the expected loss in
the stochastic version); ``grad`` its gradient. The oracle gives fₜ's gradient at step t.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from .base import STREAM_ONLINE, Oracle, ParametricProblem, resolve_seed, step_rng


@dataclasses.dataclass(frozen=True, eq=False)
class OnlineLinear(ParametricProblem):
    """fₜ(x) = big·x when t mod period = 1 (or with ``probability``), else small·x, on [−1, 1]."""

    name: str = dataclasses.field(default="online-linear", kw_only=True)
    big: float = 3.0
    small: float = -1.0
    period: int = 3
    probability: float | None = None
    dim: int = dataclasses.field(default=1, init=False, kw_only=True)
    stochastic: bool = dataclasses.field(default=True, init=False, kw_only=True)

    def __post_init__(self) -> None:
        if isinstance(self.period, bool) or not isinstance(self.period, int) or self.period < 1:
            raise ValueError(f"Invalid period: {self.period!r}; it must be a whole number >= 1")
        if self.probability is not None and not 0 <= self.probability <= 1:
            raise ValueError(f"Invalid probability: {self.probability!r}; it must lie in [0, 1]")
        if not (math.isfinite(self.big) and math.isfinite(self.small)):
            raise ValueError("big and small must be finite")
        super().__post_init__()

    @property
    def mean_slope(self) -> float:
        """The average gradient per step (over a period, or in expectation)."""
        if self.probability is None:
            return (self.big + (self.period - 1) * self.small) / self.period
        return self.probability * self.big + (1.0 - self.probability) * self.small

    def defaults(self) -> dict[str, Any]:
        s = self.mean_slope
        when = (
            f"t mod {self.period} = 1"
            if self.probability is None
            else f"with probability {self.probability:g}"
        )
        x_star = -1.0 if s > 0 else 1.0 if s < 0 else 0.0
        return {
            "description": f"online f_t(x) = {self.big:g}x if {when}, else {self.small:g}x, "
            "on [-1, 1]",
            "x0": [0.0],
            "domain": [[-1.0, 1.0]],
            "x_star": [x_star],
            "f_star": -abs(s),
        }

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return self.mean_slope * x[..., 0]

    def grad(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        return np.full_like(x, self.mean_slope)

    def project(self, x: np.ndarray) -> np.ndarray:
        """Euclidean projection onto the feasible set [−1, 1]."""
        return np.clip(x, -1.0, 1.0)

    def slope(self, t: int, seed: int = 0) -> float:
        """The gradient of fₜ (the same for every x)."""
        if self.probability is None:
            return self.big if t % self.period == 1 % self.period else self.small
        u = step_rng(seed, t, STREAM_ONLINE).random()
        return self.big if u < self.probability else self.small

    def oracle(self, seed: int | None = 0) -> Oracle:
        seed = resolve_seed(seed)

        def online(x: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
            x = np.asarray(x, dtype=np.float64)
            s = self.slope(t, seed)
            return s * x[..., 0], np.full_like(x, s)

        return online


def reddi_theorem1(C: float = 3.0) -> OnlineLinear:
    """Reddi et al. (2018), Theorem 1: fₜ = C·x when t mod 3 = 1, else −x (C > 2).

    Adam with β₁ = 0, β₂ = 1/(1 + C²) converges to +1 although x* = −1.
    """
    if not C > 2:
        raise ValueError(f"Invalid C: {C!r}; Theorem 1 needs C > 2")
    return OnlineLinear(
        C,
        -1.0,
        3,
        name="reddi-thm1",
        description=f"Reddi et al. Theorem 1: f_t = {C:g}x if t mod 3 = 1 else -x, on [-1, 1]"
        f" (Adam: betas=(0, {1 / (1 + C * C):.4g}))",
    )


def reddi_section5(probability: float | None = None) -> OnlineLinear:
    """Reddi et al. (2018), §5: fₜ = 1010x when t mod 101 = 1, else −10x, on [−1, 1].

    With ``probability`` (the paper's stochastic version uses 0.01) the big gradient comes at
    random with that probability, drawn from the oracle's seeded stream.
    """
    if probability is None:
        return OnlineLinear(
            1010.0,
            -10.0,
            101,
            name="reddi-sec5",
            description="Reddi et al. section 5: f_t = 1010x if t mod 101 = 1 else -10x, "
            "on [-1, 1]",
        )
    return OnlineLinear(
        1010.0,
        -10.0,
        101,
        probability=probability,
        name="reddi-stochastic",
        description=f"Reddi et al. section 5, stochastic: f_t = 1010x with probability "
        f"{probability:g}, else -10x, on [-1, 1]",
    )
