"""AdaGrad (Duchi, Hazan & Singer, 2011), diagonal form, with PyTorch's learning-rate decay.

Reference:
    Duchi, Hazan & Singer, "Adaptive Subgradient Methods for Online Learning and Stochastic
    Optimization", JMLR 12, 2011.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, NamedTuple

from .base import (
    NONFINITE,
    NONNEG,
    Hyper,
    Hypers,
    NonFinitePolicy,
    Optimizer,
    Params,
    choice,
    flag,
    hyper,
    number,
    signed_and_decayed,
)


class AdagradState(NamedTuple):
    """``t`` steps taken; ``G`` the running sum of squared gradients (Duchi et al.'s Gₜ)."""

    t: int
    G: Params


@dataclasses.dataclass(frozen=True, eq=False)
class Adagrad(Optimizer):
    r"""AdaGrad: per-coordinate steps shrinking with the accumulated squared gradient.

    Update, for step t ≥ 1 (α = ``lr``, η = ``lr_decay``)::

        αₜ = α / (1 + (t − 1)·η)
        Gₜ = Gₜ₋₁ + gₜ²                  G₀ = ``initial_accumulator_value``
        θₜ = θₜ₋₁ − αₜ·gₜ / (√Gₜ + ε)

    Args:
        lr: α ≥ 0 (float, schedule or array). lr_decay: η ≥ 0. weight_decay: λ ≥ 0 (L2).
        initial_accumulator_value: G₀ ≥ 0. eps: ε ≥ 0 (PyTorch's default 1e-10).
        maximize: ascend. nonfinite: "raise", "skip" or "propagate" (see :class:`Adam`).
    """

    name: ClassVar[str] = "adagrad"
    State: ClassVar[type] = AdagradState
    slots: ClassVar[tuple[str, ...]] = ("G",)

    lr: Hyper = hyper(1e-2, NONNEG)
    lr_decay: float = number(0.0, NONNEG)
    weight_decay: Hyper = hyper(0.0, NONNEG)
    initial_accumulator_value: float = number(0.0, NONNEG)
    eps: Hyper = hyper(1e-10, NONNEG)
    _: dataclasses.KW_ONLY
    maximize: bool = flag(False)
    nonfinite: NonFinitePolicy = choice("raise", NONFINITE)

    def init_leaf(self, xp: Any, x: Any) -> dict[str, Any]:
        return {"G": xp.full_like(x, self.initial_accumulator_value)}

    def _lr_t(self, t: int, h: Hypers) -> Any:
        return h.lr / (1 + (t - 1) * self.lr_decay)

    def update_leaf(self, xp: Any, x: Any, g: Any, s: Hypers, t: int, h: Hypers):
        x, g = signed_and_decayed(x, g, h)
        G = s.G + g * g
        return x - self._lr_t(t, h) * g / (xp.sqrt(G) + h.eps), {"G": G}

    def diagnostics_leaf(self, xp: Any, s: Hypers, t: int, h: Hypers) -> dict[str, Any]:
        return {"effective_lr": self._lr_t(t, h) / (xp.sqrt(s.G) + h.eps)}
