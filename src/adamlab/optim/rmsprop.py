"""RMSProp (Tieleman & Hinton, 2012), centred (Graves, 2013), with momentum (PyTorch's form).

References:
    Tieleman & Hinton, Lecture 6.5 of "Neural Networks for Machine Learning", Coursera, 2012.
    Graves, "Generating Sequences With Recurrent Neural Networks", arXiv:1308.0850 (centred).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

from .base import (
    NONFINITE,
    NONNEG,
    UNIT_CLOSED,
    Hyper,
    Hypers,
    NonFinitePolicy,
    Optimizer,
    Params,
    choice,
    flag,
    hyper,
    is_zero,
    signed_and_decayed,
)


class RMSpropState(NamedTuple):
    """``t`` steps; ``v`` mean square; ``g_avg`` mean gradient (centred); ``b`` momentum buffer."""

    t: int
    v: Params
    g_avg: Params | None = None
    b: Params | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class RMSprop(Optimizer):
    r"""RMSProp: divide the gradient by a running root mean square.

    Update, for step t ≥ 1 (α = ``lr``, ρ = ``alpha``)::

        vₜ = ρ·vₜ₋₁ + (1 − ρ)·gₜ²
        ḡₜ = ρ·ḡₜ₋₁ + (1 − ρ)·gₜ                (centred only)
        dₜ = √(vₜ − ḡₜ²) + ε   if centred, else √vₜ + ε
        bₜ = μ·bₜ₋₁ + gₜ/dₜ,  θₜ = θₜ₋₁ − α·bₜ     with momentum μ > 0
        θₜ = θₜ₋₁ − α·gₜ/dₜ                       otherwise

    There is no bias correction: v₀ = 0 makes the first steps larger than α, by
    1/√(1 − ρ) = 10 at ρ = 0.99. Adam's correction is exactly the fix for this.

    Args:
        lr: α ≥ 0 (float, schedule or array). alpha: ρ in [0, 1]. eps: ε ≥ 0.
        weight_decay: λ ≥ 0 (g ← g + λθ). momentum: μ ≥ 0. centered: subtract ḡₜ².
        maximize: ascend. nonfinite: "raise", "skip" or "propagate" (see :class:`Adam`).
    """

    name: ClassVar[str] = "rmsprop"
    State: ClassVar[type] = RMSpropState
    slots: ClassVar[tuple[str, ...]] = ("v", "g_avg", "b")

    lr: Hyper = hyper(1e-2, NONNEG)
    alpha: Hyper = hyper(0.99, UNIT_CLOSED)
    eps: Hyper = hyper(1e-8, NONNEG)
    weight_decay: Hyper = hyper(0.0, NONNEG)
    momentum: Hyper = hyper(0.0, NONNEG)
    centered: bool = flag(False)
    _: dataclasses.KW_ONLY
    maximize: bool = flag(False)
    nonfinite: NonFinitePolicy = choice("raise", NONFINITE)

    def active_slots(self) -> tuple[str, ...]:
        return (
            ("v",)
            + (("g_avg",) if self.centered else ())
            + (() if is_zero(self.momentum) else ("b",))
        )

    def _denominator(self, xp: Any, v: Any, g_avg: Any, h: Hypers) -> Any:
        return xp.sqrt(v - g_avg * g_avg if self.centered else v) + h.eps

    def update_leaf(self, xp: Any, x: Any, g: Any, s: Hypers, t: int, h: Hypers):
        rho = h.alpha
        x, g = signed_and_decayed(x, g, h)
        v = rho * s.v + (1 - rho) * g * g
        new = {"v": v}
        g_avg = None
        if self.centered:
            g_avg = new["g_avg"] = rho * s.g_avg + (1 - rho) * g
        d = self._denominator(xp, v, g_avg, h)
        if "b" in s:
            b = new["b"] = h.momentum * s.b + g / d
            return x - h.lr * b, new
        return x - h.lr * g / d, new

    def diagnostics_leaf(self, xp: Any, s: Hypers, t: int, h: Hypers) -> dict[str, Any]:
        return {"effective_lr": h.lr / self._denominator(xp, s.v, s.get("g_avg"), h)}
