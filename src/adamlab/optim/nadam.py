"""NAdam (Dozat, 2016): Adam with Nesterov momentum, in PyTorch's scheduled-μ form.

Reference:
    Dozat, "Incorporating Nesterov Momentum into Adam", ICLR 2016 workshop.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any, ClassVar, NamedTuple

from .. import _exact
from .base import (
    NONFINITE,
    NONNEG,
    UNIT,
    Hyper,
    Hypers,
    NonFinitePolicy,
    Optimizer,
    Params,
    Range,
    bias_factors,
    choice,
    flag,
    hyper,
    hyper_pair,
    number,
    power,
    signed_and_decayed,
)

_LN_096 = float(_exact.log(0.96))


@functools.lru_cache(maxsize=4096)
def _decay_096(x: float) -> float:
    """0.96ˣ for x ≥ 0 (x = ∞ gives 0: optax's constant-μ NAdam)."""
    return float(_exact.exp(x * _LN_096)) if x != math.inf else 0.0


class NAdamState(NamedTuple):
    """``t`` steps; moments ``m``, ``v``; ``mu_product`` = μ₁·μ₂·…·μₜ (one value for all)."""

    t: int
    m: Params
    v: Params
    mu_product: Any = 1.0


@dataclasses.dataclass(frozen=True, eq=False)
class NAdam(Optimizer):
    r"""NAdam: Adam whose step looks one momentum step ahead.

    Update, for step t ≥ 1 (α = ``lr``, ψ = ``momentum_decay``)::

        μₜ = β₁·(1 − ½·0.96^(t·ψ))                 Dozat's momentum schedule
        mₜ = β₁·mₜ₋₁ + (1 − β₁)·gₜ,   vₜ = β₂·vₜ₋₁ + (1 − β₂)·gₜ²
        dₜ = √(vₜ / (1 − β₂ᵗ)) + ε
        θₜ = θₜ₋₁ − α·(1 − μₜ)/(1 − ∏ᵢ≤ₜ μᵢ)·gₜ/dₜ − α·μₜ₊₁/(1 − ∏ᵢ≤ₜ₊₁ μᵢ)·mₜ/dₜ

    ``momentum_decay=math.inf`` makes μₜ = β₁ for all t, which is Dozat's constant-μ NAdam as
    optax (``optax.nadam``) and Keras write it:
    θₜ = θₜ₋₁ − α·(β₁·mₜ/(1 − β₁ᵗ⁺¹) + (1 − β₁)·gₜ/(1 − β₁ᵗ)) / (√v̂ₜ + ε).

    Args as :class:`Adam` (defaults lr = 2e-3), plus ``momentum_decay`` ψ ≥ 0 (4e-3) and
    ``decoupled_weight_decay`` (NAdamW).
    """

    name: ClassVar[str] = "nadam"
    State: ClassVar[type] = NAdamState
    slots: ClassVar[tuple[str, ...]] = ("m", "v")

    lr: Hyper = hyper(2e-3, NONNEG)
    betas: tuple[Hyper, Hyper] = hyper_pair((0.9, 0.999), UNIT, ("beta1", "beta2"))
    eps: Hyper = hyper(1e-8, NONNEG)
    weight_decay: Hyper = hyper(0.0, NONNEG)
    momentum_decay: float = number(4e-3, Range(0.0, math.inf, hi_open=False))  # ∞: optax's NAdam
    decoupled_weight_decay: bool = flag(False)
    _: dataclasses.KW_ONLY
    maximize: bool = flag(False)
    nonfinite: NonFinitePolicy = choice("raise", NONFINITE)

    def mu(self, t: int, h: Hypers) -> Any:
        """Dozat's momentum schedule μₜ = β₁·(1 − ½·0.96^(t·ψ)).

        0.96^(tψ) = exp(tψ·ln 0.96) with adamlab's own ``exp`` (the same bits on every
        machine; libm's ``pow`` need not be), cached per step.
        """
        return h.beta1 * (1 - 0.5 * _decay_096(t * self.momentum_decay))

    def scalars_init(self) -> dict[str, Any]:
        return {"mu_product": 1.0}

    def scalars_update(self, sc: dict[str, Any], t: int, h: Hypers) -> dict[str, Any]:
        return {"mu_product": sc["mu_product"] * self.mu(t, h)}

    def update_leaf(self, xp: Any, x: Any, g: Any, s: Hypers, t: int, h: Hypers):
        x, g = signed_and_decayed(x, g, h, decoupled=self.decoupled_weight_decay)
        mu, mu_next, prod = self.mu(t, h), self.mu(t + 1, h), h.mu_product
        m = h.beta1 * s.m + (1 - h.beta1) * g
        v = h.beta2 * s.v + (1 - h.beta2) * g * g
        d = xp.sqrt(v / (1 - power(h.beta2, t))) + h.eps
        x = x - h.lr * (1 - mu) / (1 - prod) * g / d - h.lr * mu_next / (1 - prod * mu_next) * m / d
        return x, {"m": m, "v": v}

    def diagnostics_shared(self, t: int, h: Hypers) -> dict[str, Any]:
        return {**bias_factors(t, h), "mu": self.mu(t, h)}

    def diagnostics_leaf(self, xp: Any, s: Hypers, t: int, h: Hypers) -> dict[str, Any]:
        v_hat = s.v / (1 - power(h.beta2, t))
        return {
            "m_hat": s.m / (1 - power(h.beta1, t)),
            "v_hat": v_hat,
            "effective_lr": h.lr / (xp.sqrt(v_hat) + h.eps),
        }
