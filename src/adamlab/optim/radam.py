"""RAdam (Liu et al., 2020): Adam with the variance of the adaptive step rectified.

Reference:
    Liu, Jiang, He, Chen, Liu, Gao & Han, "On the Variance of the Adaptive Learning Rate and
    Beyond", ICLR 2020.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

from .adam import EPS_PLACEMENTS, EpsPlacement
from .base import (
    NONFINITE,
    NONNEG,
    UNIT,
    Hyper,
    Hypers,
    NonFinitePolicy,
    Optimizer,
    Params,
    bias_factors,
    choice,
    flag,
    hyper,
    hyper_pair,
    power,
    signed_and_decayed,
    sqrt,
)


class RAdamState(NamedTuple):
    """``t`` steps taken; first moment ``m``; second moment ``v``."""

    t: int
    m: Params
    v: Params


@dataclasses.dataclass(frozen=True, eq=False)
class RAdam(Optimizer):
    r"""RAdam: plain momentum SGD while v̂ₜ is too noisy, rectified Adam after.

    Update, for step t ≥ 1 (α = ``lr``)::

        mₜ, vₜ as in Adam;   m̂ₜ = mₜ/(1 − β₁ᵗ)
        ρ∞ = 2/(1 − β₂) − 1,   ρₜ = ρ∞ − 2t·β₂ᵗ/(1 − β₂ᵗ)
        if ρₜ > 5:  rₜ = √((ρₜ − 4)(ρₜ − 2)ρ∞ / ((ρ∞ − 4)(ρ∞ − 2)ρₜ))
                    θₜ = θₜ₋₁ − α·rₜ·m̂ₜ·√(1 − β₂ᵗ)/(√vₜ + ε)      (PyTorch)
        else:       θₜ = θₜ₋₁ − α·m̂ₜ

    PyTorch adds ε to the uncorrected √vₜ (``eps_placement="before_correction"``, the
    default here); optax adds it to √v̂ₜ (``"after_correction"``) and switches at ρₜ ≥ 5
    rather than ρₜ > 5, which differs only when ρₜ is exactly 5.

    Args as :class:`Adam` (defaults lr = 1e-3), plus ``decoupled_weight_decay`` and
    ``eps_placement``.
    """

    name: ClassVar[str] = "radam"
    State: ClassVar[type] = RAdamState
    slots: ClassVar[tuple[str, ...]] = ("m", "v")

    lr: Hyper = hyper(1e-3, NONNEG)
    betas: tuple[Hyper, Hyper] = hyper_pair((0.9, 0.999), UNIT, ("beta1", "beta2"))
    eps: Hyper = hyper(1e-8, NONNEG)
    weight_decay: Hyper = hyper(0.0, NONNEG)
    decoupled_weight_decay: bool = flag(False)
    _: dataclasses.KW_ONLY
    maximize: bool = flag(False)
    eps_placement: EpsPlacement = choice("before_correction", EPS_PLACEMENTS)
    nonfinite: NonFinitePolicy = choice("raise", NONFINITE)

    def rectification(self, xp: Any, t: int, h: Hypers) -> tuple[Any, Any]:
        """(whether ρₜ > 5, rₜ) — arrays when β₂ is an array of configurations."""
        b2 = h.beta2
        rho_inf = 2 / (1 - b2) - 1
        rho_t = rho_inf - 2 * t * power(b2, t) / (1 - power(b2, t))
        tractable = rho_t > 5
        if isinstance(tractable, bool):
            if not tractable:
                return False, 1.0
        else:  # keep the unselected entries finite: r = 1 where ρₜ ≤ 5
            rho_t = xp.where(tractable, rho_t, rho_inf)
        r = sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
        return tractable, r

    def _adaptive_lr(self, xp: Any, v: Any, t: int, h: Hypers) -> Any:
        c2 = 1 - power(h.beta2, t)
        if self.eps_placement == "before_correction":
            return sqrt(c2) / (xp.sqrt(v) + h.eps)
        return 1 / (xp.sqrt(v / c2) + h.eps)

    def update_leaf(self, xp: Any, x: Any, g: Any, s: Hypers, t: int, h: Hypers):
        x, g = signed_and_decayed(x, g, h, decoupled=self.decoupled_weight_decay)
        m = h.beta1 * s.m + (1 - h.beta1) * g
        v = h.beta2 * s.v + (1 - h.beta2) * g * g
        m_hat = m / (1 - power(h.beta1, t))
        tractable, r = self.rectification(xp, t, h)
        if tractable is False:
            return x - h.lr * m_hat, {"m": m, "v": v}
        step = h.lr * r * m_hat * self._adaptive_lr(xp, v, t, h)
        if tractable is not True:
            step = xp.where(tractable, step, h.lr * m_hat)
        return x - step, {"m": m, "v": v}

    def diagnostics_shared(self, t: int, h: Hypers) -> dict[str, Any]:
        return bias_factors(t, h)

    def diagnostics_leaf(self, xp: Any, s: Hypers, t: int, h: Hypers) -> dict[str, Any]:
        tractable, r = self.rectification(xp, t, h)
        adaptive = h.lr * r * self._adaptive_lr(xp, s.v, t, h)
        if tractable is False:
            effective_lr = h.lr + 0 * s.v
        elif tractable is True:
            effective_lr = adaptive
        else:
            effective_lr = xp.where(tractable, adaptive, h.lr + 0 * s.v)
        return {
            "m_hat": s.m / (1 - power(h.beta1, t)),
            "v_hat": s.v / (1 - power(h.beta2, t)),
            "effective_lr": effective_lr,
            "rectification": r,
        }
