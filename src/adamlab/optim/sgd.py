"""Stochastic gradient descent with heavy-ball or Nesterov momentum (PyTorch's formulation).

References:
    Polyak, "Some methods of speeding up the convergence of iteration methods", 1964.
    Sutskever, Martens, Dahl & Hinton, "On the importance of initialization and momentum in
    deep learning", ICML 2013 (the Nesterov form used here and by PyTorch).
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
    number,
    signed_and_decayed,
)


class SGDState(NamedTuple):
    """``t`` steps taken; ``b`` the momentum buffer (None without momentum)."""

    t: int
    b: Params | None = None


@dataclasses.dataclass(frozen=True, eq=False)
class SGD(Optimizer):
    r"""SGD, optionally with momentum μ, dampening τ and Nesterov's correction.

    Update, for step t ≥ 1 (α = ``lr``)::

        bₜ = gₜ                              if t = 1
        bₜ = μ·bₜ₋₁ + (1 − τ)·gₜ              otherwise
        θₜ = θₜ₋₁ − α·(gₜ + μ·bₜ)             Nesterov
        θₜ = θₜ₋₁ − α·bₜ                      heavy ball (plain SGD when μ = 0: θₜ = θₜ₋₁ − α·gₜ)

    Args:
        lr: step size α ≥ 0 (float, schedule or array).
        momentum: μ ≥ 0 (float, schedule or array); 0 is plain gradient descent.
        dampening: τ in [0, 1].
        weight_decay: λ ≥ 0, added to the gradient: g ← g + λθ.
        nesterov: Nesterov momentum (needs μ > 0 and τ = 0).
        maximize: ascend instead of descend.
        nonfinite: "raise", "skip" or "propagate" a NaN/Inf gradient (see :class:`Adam`).

    Example:
        >>> import numpy as np, adamlab
        >>> opt = adamlab.SGD(lr=0.1)
        >>> x = np.array(8.0); state = opt.init(x)
        >>> x, state = opt.step(x, 2 * (x - 2), state)
        >>> float(x)
        6.8
    """

    name: ClassVar[str] = "sgd"
    State: ClassVar[type] = SGDState
    slots: ClassVar[tuple[str, ...]] = ("b",)

    lr: Hyper = hyper(1e-3, NONNEG)
    momentum: Hyper = hyper(0.0, NONNEG)
    dampening: float = number(0.0, UNIT_CLOSED)
    weight_decay: Hyper = hyper(0.0, NONNEG)
    nesterov: bool = flag(False)
    _: dataclasses.KW_ONLY
    maximize: bool = flag(False)
    nonfinite: NonFinitePolicy = choice("raise", NONFINITE)

    def check(self) -> None:
        if self.nesterov and (is_zero(self.momentum) or self.dampening != 0):
            raise ValueError(
                f"Invalid nesterov=True with momentum={self.momentum!r} and dampening="
                f"{self.dampening!r}: Nesterov momentum needs momentum > 0 and dampening = 0"
            )

    def active_slots(self) -> tuple[str, ...]:
        return () if is_zero(self.momentum) else self.slots

    def update_leaf(self, xp: Any, x: Any, g: Any, s: Hypers, t: int, h: Hypers):
        x, g = signed_and_decayed(x, g, h)
        if not self.active_slots():
            return x - h.lr * g, {}
        mu = h.momentum
        # b₁ = g₁: a copy, so the state never shares memory with the caller's gradient
        b = xp.asarray(g, copy=True) if t == 1 else mu * s.b + (1 - self.dampening) * g
        d = g + mu * b if self.nesterov else b
        return x - h.lr * d, {"b": b}

    def diagnostics_shared(self, t: int, h: Hypers) -> dict[str, Any]:
        return {"effective_lr": h.lr}
