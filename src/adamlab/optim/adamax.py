"""AdaMax (Kingma & Ba, 2015, §7.1): Adam with the infinity norm in place of the L2 norm."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

from .base import (
    NONFINITE,
    NONNEG,
    UNIT,
    Hyper,
    Hypers,
    NonFinitePolicy,
    Optimizer,
    Params,
    choice,
    flag,
    hyper,
    hyper_pair,
    power,
    signed_and_decayed,
)


class AdamaxState(NamedTuple):
    """``t`` steps taken; first moment ``m``; exponentially weighted infinity norm ``u``."""

    t: int
    m: Params
    u: Params


@dataclasses.dataclass(frozen=True, eq=False)
class Adamax(Optimizer):
    r"""AdaMax, Algorithm 2 of Kingma & Ba (2015), with ε as PyTorch and optax place it.

    Update, for step t ≥ 1 (α = ``lr``)::

        mₜ = β₁·mₜ₋₁ + (1 − β₁)·gₜ
        uₜ = max(β₂·uₜ₋₁, |gₜ| + ε)
        θₜ = θₜ₋₁ − (α / (1 − β₁ᵗ))·mₜ / uₜ

    uₜ needs no bias correction (it is a maximum, not an average); ``bias_correction=False``
    drops the first moment's. Args as :class:`Adam` (defaults lr = 2e-3, ε = 1e-8, L2 decay).
    Reference: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, §7.1.
    """

    name: ClassVar[str] = "adamax"
    State: ClassVar[type] = AdamaxState
    slots: ClassVar[tuple[str, ...]] = ("m", "u")

    lr: Hyper = hyper(2e-3, NONNEG)
    betas: tuple[Hyper, Hyper] = hyper_pair((0.9, 0.999), UNIT, ("beta1", "beta2"))
    eps: Hyper = hyper(1e-8, NONNEG)
    weight_decay: Hyper = hyper(0.0, NONNEG)
    _: dataclasses.KW_ONLY
    maximize: bool = flag(False)
    bias_correction: bool = flag(True)
    nonfinite: NonFinitePolicy = choice("raise", NONFINITE)

    def _c1(self, t: int, h: Hypers) -> Any:
        return 1 - power(h.beta1, t) if self.bias_correction else 1.0

    def update_leaf(self, xp: Any, x: Any, g: Any, s: Hypers, t: int, h: Hypers):
        x, g = signed_and_decayed(x, g, h)
        m = h.beta1 * s.m + (1 - h.beta1) * g
        u = xp.maximum(h.beta2 * s.u, xp.abs(g) + h.eps)
        return x - (h.lr / self._c1(t, h)) * m / u, {"m": m, "u": u}

    def diagnostics_shared(self, t: int, h: Hypers) -> dict[str, Any]:
        return {"bias1": 1 - power(h.beta1, t)}

    def diagnostics_leaf(self, xp: Any, s: Hypers, t: int, h: Hypers) -> dict[str, Any]:
        return {"m_hat": s.m / self._c1(t, h), "effective_lr": h.lr / s.u}
