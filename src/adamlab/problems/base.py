"""The problem contract every test problem follows, and the oracle that feeds optimizers.

A problem is a function to minimise with an exact gradient, vectorised over leading batch
dimensions: ``x`` has shape ``(..., dim)``, ``loss(x)`` shape ``(...)``, ``grad(x)`` shape
``(..., dim)``. That lets the lab run many starting points or K hyperparameter
configurations in one NumPy pass.

What an optimizer *sees* comes from ``problem.oracle(seed)``: a callable ``oracle(x, t) ->
(loss, grad)`` for step t = 1, 2, …. For a deterministic problem it is the exact loss and
gradient. For a stochastic or online problem it is the noisy / minibatch / step-dependent
sample, drawn from a stream fixed by ``(seed, t)`` alone, so every optimizer in a comparison
gets the same noise (paired runs). ``loss(x)`` stays the exact objective used for reporting.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

Oracle = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]


@dataclasses.dataclass(frozen=True, eq=False)
class Problem:
    """Base class. Subclasses set the fields and implement ``loss`` and ``grad``.

    Attributes:
        name: the command-line name (``"quadratic"``, ``"rosenbrock"``, ...).
        description: one line for ``adamlab problems``.
        dim: number of coordinates.
        x0: the usual starting point, shape ``(dim,)``.
        domain: plotting box, shape ``(dim, 2)`` of (low, high) per coordinate.
        x_star: a minimiser, shape ``(dim,)``, or None where unknown.
        f_star: the minimum value, or None where unknown.
        stochastic: True when ``oracle`` differs from the exact loss/gradient.
    """

    name: str
    description: str
    dim: int
    x0: np.ndarray
    domain: np.ndarray
    x_star: np.ndarray | None = None
    f_star: float | None = None
    stochastic: bool = False

    def loss(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def grad(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def oracle(self, seed: int | None = 0) -> Oracle:
        """What the optimizer sees at step t: exact here, sampled in stochastic subclasses."""

        def exact(x: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
            return self.loss(x), self.grad(x)

        return exact

    def project(self, x: np.ndarray) -> np.ndarray:
        """Map an iterate back to the feasible set (identity; online problems project)."""
        return x

    def check_start(self, x: Any) -> np.ndarray:
        """A start point as a float64 array of shape ``(..., dim)``; ValueError otherwise."""
        arr = np.asarray(x, dtype=np.float64)
        if arr.ndim == 0:
            arr = arr[None]
        if arr.shape[-1] != self.dim:
            raise ValueError(
                f"start has {arr.shape[-1]} coordinate(s) but problem {self.name!r} has {self.dim}"
            )
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"start must be finite, got {arr.tolist()}")
        return arr


@dataclasses.dataclass(frozen=True, eq=False)
class Quadratic1D(Problem):
    """The seed problem: f(x) = (x − c)², f'(x) = 2(x − c), from x = 8 with c = 2."""

    name: str = "quadratic"
    description: str = "the seed demo: f(x) = (x - 2)^2, from x = 8"
    dim: int = 1
    x0: np.ndarray = dataclasses.field(default_factory=lambda: np.array([8.0]))
    domain: np.ndarray = dataclasses.field(default_factory=lambda: np.array([[-2.0, 8.0]]))
    x_star: np.ndarray | None = dataclasses.field(default_factory=lambda: np.array([2.0]))
    f_star: float | None = 0.0
    center: float = 2.0

    def loss(self, x: np.ndarray) -> np.ndarray:
        return (x[..., 0] - self.center) ** 2

    def grad(self, x: np.ndarray) -> np.ndarray:
        return 2 * (x - self.center)
