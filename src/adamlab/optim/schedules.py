"""Learning-rate (and momentum) schedules: callables of the step number t, starting at 1.

Each schedule is a small frozen dataclass, so it prints, compares and serialises to a manifest.
Pass one wherever a hyperparameter accepts a schedule::

    adamlab.Adam(lr=adamlab.schedules.cosine(1e-3, total_steps=1000, warmup_steps=100))
"""

from __future__ import annotations

import dataclasses
import math

from .. import _exact
from .base import NONNEG, Range, check_value
from .powers import power

__all__ = ["constant", "cosine", "exponential_decay", "inverse_sqrt", "linear_warmup", "step_decay"]

_POS_INT = "a whole number ≥ 1"


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Invalid {name}: {value!r}; it must be {_POS_INT}")
    return value


class Schedule:
    """Base: a schedule is called with the step t = 1, 2, … and returns a float."""

    def __call__(self, t: int) -> float:  # pragma: no cover - abstract
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class constant(Schedule):  # noqa: N801 - lowercase like optax.constant_schedule
    """value, at every step."""

    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", check_value("value", self.value, NONNEG))

    def __call__(self, t: int) -> float:
        return self.value


@dataclasses.dataclass(frozen=True)
class step_decay(Schedule):  # noqa: N801
    """init·γ^⌊(t − 1)/step_size⌋ (PyTorch's StepLR with one step per optimizer step)."""

    init: float
    step_size: int
    gamma: float = 0.1

    def __post_init__(self) -> None:
        object.__setattr__(self, "init", check_value("init", self.init, NONNEG))
        _positive_int("step_size", self.step_size)
        object.__setattr__(self, "gamma", check_value("gamma", self.gamma, Range(0.0, 1.0)))

    def __call__(self, t: int) -> float:
        return self.init * power(self.gamma, (t - 1) // self.step_size)


@dataclasses.dataclass(frozen=True)
class exponential_decay(Schedule):  # noqa: N801
    """init·γ^(t − 1) (PyTorch's ExponentialLR)."""

    init: float
    gamma: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "init", check_value("init", self.init, NONNEG))
        object.__setattr__(self, "gamma", check_value("gamma", self.gamma, Range(0.0, 1.0)))

    def __call__(self, t: int) -> float:
        return self.init * power(self.gamma, t - 1)


@dataclasses.dataclass(frozen=True)
class linear_warmup(Schedule):  # noqa: N801
    """init·min(1, t/warmup_steps): a linear ramp to ``init`` over the first steps."""

    init: float
    warmup_steps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "init", check_value("init", self.init, NONNEG))
        _positive_int("warmup_steps", self.warmup_steps)

    def __call__(self, t: int) -> float:
        return self.init * min(1.0, t / self.warmup_steps)


@dataclasses.dataclass(frozen=True)
class cosine(Schedule):  # noqa: N801
    """Linear warm-up to ``init`` over ``warmup_steps``, then a half cosine down to ``final``
    at ``total_steps`` (Loshchilov & Hutter's SGDR without restarts); ``final`` after that."""

    init: float
    total_steps: int
    warmup_steps: int = 0
    final: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "init", check_value("init", self.init, NONNEG))
        object.__setattr__(self, "final", check_value("final", self.final, NONNEG))
        _positive_int("total_steps", self.total_steps)
        if (
            isinstance(self.warmup_steps, bool)
            or not isinstance(self.warmup_steps, int)
            or not (0 <= self.warmup_steps < self.total_steps)
        ):
            raise ValueError(
                f"Invalid warmup_steps: {self.warmup_steps!r}; it must be a whole number in "
                f"[0, total_steps={self.total_steps})"
            )

    def __call__(self, t: int) -> float:
        if t <= self.warmup_steps:
            return self.init * t / self.warmup_steps
        progress = min(1.0, (t - self.warmup_steps) / (self.total_steps - self.warmup_steps))
        return self.final + 0.5 * (self.init - self.final) * (
            1 + float(_exact.cos(math.pi * progress))
        )


@dataclasses.dataclass(frozen=True)
class inverse_sqrt(Schedule):  # noqa: N801
    """init/√t: the α/√t of the convergence analyses (Kingma & Ba §4, Reddi et al.)."""

    init: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "init", check_value("init", self.init, NONNEG))

    def __call__(self, t: int) -> float:
        return self.init / math.sqrt(t)
