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

Batched oracles: for ``x`` of shape ``(K, dim)`` (or any ``(..., dim)``) every row gets the
*same* noise / minibatch at step t, exactly the noise a single ``(dim,)`` run gets. Rows are
therefore paired with each other as well (K configurations of a sweep see identical samples);
for independent repetitions use different seeds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

Oracle = Callable[[np.ndarray, int], tuple[np.ndarray, np.ndarray]]

# Independent random streams, one per source of randomness, so that e.g. a noise wrapper on
# a minibatch problem does not reuse the minibatch's numbers.
STREAM_NOISE = 1
STREAM_MINIBATCH = 2
STREAM_ONLINE = 3


def resolve_seed(seed: int | None) -> int:
    """A non-negative integer seed; ``None`` draws a fresh one (an unrepeatable run)."""
    if seed is None:
        return int(np.random.SeedSequence().entropy % (2**63))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"Invalid seed: {seed!r}; it must be a whole number >= 0 or None")
    return int(seed)


def step_rng(seed: int, t: int, stream: int) -> np.random.Generator:
    """The generator for step ``t`` of a seeded oracle: a function of (seed, t, stream) only.

    Nothing about the optimizer or the iterate enters, which is what makes runs paired.
    """
    if t < 0:
        raise ValueError(f"Invalid step t={t}; steps are counted from 1")
    return np.random.default_rng([stream, seed, int(t)])


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

    def __post_init__(self) -> None:
        """Coerce the array fields to float64 and check their shapes against ``dim``."""
        d = self.dim
        if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
            raise ValueError(f"Invalid dim: {d!r}; it must be a whole number >= 1")
        x0 = np.array(self.x0, dtype=np.float64).reshape(-1)
        if x0.shape != (d,) or not np.all(np.isfinite(x0)):
            got = x0.tolist() if x0.size <= 10 else f"{x0.size} numbers"
            raise ValueError(f"{self.name}: x0 must be {d} finite number(s), got {got}")
        domain = np.array(self.domain, dtype=np.float64)
        if domain.size % 2 or domain.reshape(-1, 2).shape != (d, 2):
            raise ValueError(f"{self.name}: domain must be {d} (low, high) pair(s)")
        domain = domain.reshape(d, 2)
        if not np.all(domain[:, 0] < domain[:, 1]):
            raise ValueError(f"{self.name}: every domain pair needs low < high")
        object.__setattr__(self, "x0", x0)
        object.__setattr__(self, "domain", domain)
        if self.x_star is not None:
            x_star = np.array(self.x_star, dtype=np.float64).reshape(-1)
            if x_star.shape != (d,):
                raise ValueError(f"{self.name}: x_star must have {d} coordinate(s)")
            object.__setattr__(self, "x_star", x_star)
        if self.f_star is not None:
            object.__setattr__(self, "f_star", float(self.f_star))

    def loss(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def grad(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def loss_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(loss(x), grad(x))``; subclasses that share work between the two override it."""
        return self.loss(x), self.grad(x)

    #: the problem's loss and gradient follow the contract (vectorised over leading
    #: dimensions), so sweeps run many configurations in one pass; False: one at a time
    vectorizable: ClassVar[bool] = True

    @property
    def formula(self) -> str | None:
        """f written out for titles and legends (``(x − 2)²``), where it is short."""
        return None

    def surface(self) -> tuple[str, tuple[float, ...]] | None:
        """A 2-D formula of :mod:`adamlab._surfaces` (name, parameters) that this problem's
        loss and gradient compute, for the fused sweep kernel; None when there is none."""
        return None

    def evaluate(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Held-out metrics at ``x`` (shape ``(..., dim)``), each of shape ``(...)``: what the
        lab reports at the end of a run beside the loss. None by default; the ML tasks give
        ``test_loss``, ``test_accuracy`` and ``train_accuracy``."""
        return {}

    def params_to_plot(self, x: np.ndarray) -> np.ndarray:
        """The coordinates worth recording for a picture: ``x`` itself when ``dim <= 2``,
        otherwise its first two coordinates (shape ``(..., min(dim, 2))``)."""
        x = np.asarray(x, dtype=np.float64)
        return x if self.dim <= 2 else x[..., :2]

    def summary(self) -> dict[str, Any]:
        """Plain data for ``adamlab problems`` and result manifests (long vectors elided)."""

        def plain(a: np.ndarray | None, what: str) -> Any:
            if a is None:
                return None
            return a.tolist() if self.dim <= 10 else f"<{self.dim} {what}>"

        return {
            "name": self.name,
            "description": self.description,
            "dim": int(self.dim),
            "x0": plain(self.x0, "numbers"),
            "x_star": plain(self.x_star, "numbers"),
            "f_star": self.f_star,
            "stochastic": bool(self.stochastic),
            "domain": plain(self.domain, "pairs"),
        }

    def oracle(self, seed: int | None = 0) -> Oracle:
        """What the optimizer sees at step t: exact here, sampled in stochastic subclasses."""

        def exact(x: np.ndarray, t: int) -> tuple[np.ndarray, np.ndarray]:
            return self.loss_and_grad(x)

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "x_star", np.array([float(self.center)]))  # x* is the centre
        super().__post_init__()

    @property
    def formula(self) -> str:
        c = self.center
        return "x²" if c == 0 else f"(x {'−' if c > 0 else '+'} {abs(c):g})²"

    def loss(self, x: np.ndarray) -> np.ndarray:
        return (x[..., 0] - self.center) ** 2

    def grad(self, x: np.ndarray) -> np.ndarray:
        return 2 * (x - self.center)


def seed_quadratic(center: float = 2.0, x0: Any = None, domain: Any = None) -> Quadratic1D:
    """The seed problem f(x) = (x − c)² with x* = c; the default c = 2 is ``Quadratic1D()``.

    Start and plotting box move with the centre: x0 = c + 6, domain [c − 4, c + 6], as the
    seed's 8 and [−2, 8] for c = 2 (``x0``/``domain`` override them).
    """
    c = float(center)
    if not math.isfinite(c):
        raise ValueError(f"Invalid center: {center!r}; it must be finite")
    if c == 2.0 and x0 is None and domain is None:
        return Quadratic1D()
    start = np.array([c + 6.0]) if x0 is None else np.asarray(x0, dtype=np.float64).reshape(-1)
    if domain is None:  # the seed's box around c, widened to hold the start
        lo, hi = c - 4.0, c + 6.0
        s = float(start[0]) if start.size == 1 else c
        if not lo <= s <= hi:
            lo, hi = min(lo, s - 1.0), max(hi, s + 1.0)
        domain = np.array([[lo, hi]])
    return Quadratic1D(
        description=f"f(x) = (x - {c:g})^2, from x = {float(start[0]):g}",
        x0=start,
        domain=domain,
        x_star=np.array([c]),
        center=c,
    )


@dataclasses.dataclass(frozen=True, eq=False)
class ParametricProblem(Problem):
    """A problem whose fields follow from its parameters (κ, θ, dim, σ, ...).

    Every contract field defaults to ``None`` (or ``""``) and is filled from ``defaults()``
    after construction, so ``Sphere(dim=5)`` gets a 5-D start and domain, while
    ``Sphere(dim=5, x0=[...])`` keeps the given start. The contract fields are keyword-only,
    so a subclass's own parameters come first: ``IllConditioned(100.0, theta=0.5)``.
    """

    name: str = dataclasses.field(default="", kw_only=True)
    description: str = dataclasses.field(default="", kw_only=True)
    dim: int = dataclasses.field(default=2, kw_only=True)
    x0: np.ndarray = dataclasses.field(default=None, kw_only=True)  # type: ignore[assignment]
    domain: np.ndarray = dataclasses.field(default=None, kw_only=True)  # type: ignore[assignment]
    x_star: np.ndarray | None = dataclasses.field(default=None, kw_only=True)
    f_star: float | None = dataclasses.field(default=None, kw_only=True)
    stochastic: bool = dataclasses.field(default=False, kw_only=True)

    def defaults(self) -> dict[str, Any]:
        """Values for the fields left at ``None`` / ``""`` (computed from the parameters)."""
        return {}

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):  # a scalar parameter (a, b, c, A, tilt, ...): finite
            value = getattr(self, f.name)
            if isinstance(value, (float, np.floating)) and not math.isfinite(value):
                raise ValueError(f"Invalid {f.name}: {value!r}; it must be finite")
        for key, value in self.defaults().items():
            current = getattr(self, key)
            if current is None or (isinstance(current, str) and current == ""):
                object.__setattr__(self, key, value)
        super().__post_init__()


def box(dim: int, low: float, high: float) -> np.ndarray:
    """A plotting domain: the same (low, high) for every coordinate, shape ``(dim, 2)``."""
    return np.tile(np.array([low, high], dtype=np.float64), (dim, 1))
