"""Analytic test surfaces with exact gradients, vectorised over leading batch dimensions.

Every function takes ``x`` of shape ``(..., dim)``; ``loss`` returns shape ``(...)`` and
``grad`` shape ``(..., dim)``. Formulas follow the usual references (Jamil & Yang, "A
literature survey of benchmark functions for global optimization problems", 2013; the
Virtual Library of Simulation Experiments, sfu.ca/~ssurjano), with the start points that
the optimizer-visualisation literature uses where there is one.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import numpy as np

from .. import _exact as ex
from .._surfaces import rosenbrock_2d
from .base import ParametricProblem, Problem, box


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _fixed_2d() -> Any:
    return dataclasses.field(default=2, init=False, kw_only=True)


# --------------------------------------------------------------------------------------------
# Convex quadratics
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Sphere(ParametricProblem):
    """Sphere: f(x) = Σᵢ xᵢ², ∇f = 2x; x* = 0, f* = 0. Start (3, −2, 3, −2, …)."""

    name: str = dataclasses.field(default="sphere", kw_only=True)

    def defaults(self) -> dict[str, Any]:
        d = self.dim
        return {
            "description": f"sphere in {d}-D: f(x) = sum x_i^2 (the easiest bowl)",
            "x0": np.where(np.arange(d) % 2 == 0, 3.0, -2.0),
            "domain": box(d, -4.0, 4.0),
            "x_star": np.zeros(d),
            "f_star": 0.0,
        }

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        return ex.sum_(x * x, axis=-1)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * _f64(x)


def rotation(dim: int, theta: float) -> np.ndarray:
    """Q = G₀₁(θ)·G₁₂(θ)·…: Givens rotations by θ in the planes of consecutive coordinates.

    In 2-D this is the ordinary rotation by θ; θ = 0 gives the identity.
    """
    Q = np.eye(dim)
    c, s = float(ex.cos(theta)), float(ex.sin(theta))
    G = np.array([[c, -s], [s, c]])
    for i in range(dim - 1):  # Q ← Q·Gᵢ touches columns i and i+1 only
        Q[:, i : i + 2] = ex.matmul(Q[:, i : i + 2], G)
    return Q


@dataclasses.dataclass(frozen=True, eq=False)
class IllConditioned(ParametricProblem):
    """Ill-conditioned quadratic: f(x) = ½ xᵀAx, A = Q·diag(λ)·Qᵀ, ∇f = Ax; x* = 0, f* = 0.

    The eigenvalues λᵢ = κ^(i/(dim−1)) run geometrically from 1 to κ (the condition number);
    Q = :func:`rotation` (dim, θ). With θ = 0 the valley is axis-aligned and Adam's per-
    coordinate scaling 1/√v̂ undoes the conditioning (every coordinate moves at about α per
    step); rotated by θ = π/4 the curvature mixes coordinates and diagonal scaling cannot
    help. Start (4, 1, 4, 1, …).
    """

    name: str = dataclasses.field(default="ill-conditioned", kw_only=True)
    kappa: float = 100.0
    theta: float = 0.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.kappa) and self.kappa >= 1):
            raise ValueError(f"Invalid kappa: {self.kappa!r}; it must be a finite number >= 1")
        if not math.isfinite(self.theta):
            raise ValueError(f"Invalid theta: {self.theta!r}; it must be finite (radians)")
        super().__post_init__()

    @functools.cached_property
    def eigenvalues(self) -> np.ndarray:
        d = self.dim
        if d == 1:
            return np.ones(1)
        log_k = float(ex.log(self.kappa))  # κ^(i/(d−1)), the ends exactly 1 and κ
        inner = [float(ex.exp(log_k * i / (d - 1))) for i in range(1, d - 1)]
        return np.array([1.0, *inner, float(self.kappa)])

    @functools.cached_property
    def hessian(self) -> np.ndarray:
        """The matrix A (symmetric positive definite), computed once."""
        Q = rotation(self.dim, self.theta)
        A = ex.matmul(Q * self.eigenvalues, Q.T)
        return 0.5 * (A + A.T)

    def defaults(self) -> dict[str, Any]:
        d = self.dim
        how = "axis-aligned" if self.theta == 0 else f"rotated by {self.theta:.4g} rad"
        return {
            "description": f"quadratic 1/2 x'Ax with condition number {self.kappa:g}, {how}",
            "x0": np.where(np.arange(d) % 2 == 0, 4.0, 1.0),
            "domain": box(d, -5.0, 5.0),
            "x_star": np.zeros(d),
            "f_star": 0.0,
        }

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        return 0.5 * ex.dot(x, self.grad(x))

    def grad(self, x: np.ndarray) -> np.ndarray:
        return ex.matmul(_f64(x), self.hessian)  # A is symmetric


# --------------------------------------------------------------------------------------------
# Classic 2-D (and n-D) test functions
# --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class Rosenbrock(ParametricProblem):
    """Rosenbrock (1960): f(x) = Σᵢ [b(xᵢ₊₁ − xᵢ²)² + (a − xᵢ)²], a = 1, b = 100.

    ∂f/∂xᵢ = −4b·xᵢ(xᵢ₊₁ − xᵢ²) − 2(a − xᵢ) + 2b(xᵢ − xᵢ₋₁²) (terms that exist).
    x* = (a, a², …) = (1, 1, …), f* = 0; the classic start (−1.2, 1) (repeated in n-D).
    """

    name: str = dataclasses.field(default="rosenbrock", kw_only=True)
    a: float = 1.0
    b: float = 100.0

    def __post_init__(self) -> None:
        if self.dim < 2:
            raise ValueError(f"Invalid dim: {self.dim!r}; Rosenbrock needs dim >= 2")
        super().__post_init__()

    def defaults(self) -> dict[str, Any]:
        d = self.dim
        # In 2-D x* = (a, a²). In n-D every term vanishes only if xᵢ = a and xᵢ₊₁ = xᵢ² for
        # all i, i.e. a ∈ {0, 1}; otherwise the minimiser is not in closed form.
        if d == 2:
            x_star = np.array([self.a, self.a**2])
        else:
            x_star = np.full(d, self.a) if self.a in (0.0, 1.0) else None
        x0 = np.where(np.arange(d) % 2 == 0, -1.2, 1.0)
        if d == 2 and self.a == 1.0:
            domain = np.array([[-2.0, 2.0], [-1.0, 3.0]])  # the usual picture of the valley
        else:
            pts = np.stack([x0] if x_star is None else [x0, x_star])
            domain = box(d, min(-2.0, pts.min() - 1.0), max(3.0, pts.max() + 1.0))
        return {
            "description": f"Rosenbrock's banana valley (a={self.a:g}, b={self.b:g}) in {d}-D",
            "x0": x0,
            "domain": domain,
            "x_star": x_star,
            "f_star": 0.0 if x_star is not None else None,
        }

    def surface(self) -> tuple[str, tuple[float, ...]] | None:
        """In 2-D, deterministic and unprojected: the formula the fused kernel compiles (the
        same function these loss and gradient call)."""
        if self.dim == 2 and type(self).project is Problem.project and not self.stochastic:
            return "rosenbrock", (self.a, self.b)
        return None

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        if self.dim == 2:
            return rosenbrock_2d(x[..., 0], x[..., 1], self.a, self.b)[0]
        u, w = x[..., :-1], x[..., 1:]
        return ex.sum_(self.b * (w - u * u) ** 2 + (self.a - u) ** 2, axis=-1)

    def grad(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        if self.dim == 2:
            _, gx, gy = rosenbrock_2d(x[..., 0], x[..., 1], self.a, self.b)
            return np.stack([gx, gy], axis=-1)
        u, w = x[..., :-1], x[..., 1:]
        r = w - u * u
        g = np.zeros_like(x)
        g[..., :-1] += -4.0 * self.b * u * r - 2.0 * (self.a - u)
        g[..., 1:] += 2.0 * self.b * r
        return g


@dataclasses.dataclass(frozen=True, eq=False)
class Beale(ParametricProblem):
    """Beale: f = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)².

    x* = (3, 0.5), f* = 0; flat valleys and steep walls. Start (1, 1.5); domain [−4.5, 4.5]².
    """

    name: str = dataclasses.field(default="beale", kw_only=True)
    dim: int = _fixed_2d()

    def defaults(self) -> dict[str, Any]:
        return {
            "description": "Beale's function: flat valleys, steep walls, x* = (3, 0.5)",
            "x0": [1.0, 1.5],
            "domain": box(2, -4.5, 4.5),
            "x_star": [3.0, 0.5],
            "f_star": 0.0,
        }

    _C = (1.5, 2.25, 2.625)

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        u, v = x[..., 0], x[..., 1]
        v2 = v * v
        return sum((c - u + u * vp) ** 2 for c, vp in zip(self._C, (v, v2, v2 * v), strict=True))

    def grad(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        u, v = x[..., 0], x[..., 1]
        gu = np.zeros_like(u)
        gv = np.zeros_like(v)
        v2 = v * v
        powers = (np.ones_like(v), v, v2, v2 * v)  # vᵖ by products (v ** 3 is the CPU's pow)
        for p, c in enumerate(self._C, start=1):
            r = c - u + u * powers[p]
            gu = gu + 2.0 * r * (powers[p] - 1.0)
            gv = gv + 2.0 * r * (p * u * powers[p - 1])
        return np.stack([gu, gv], axis=-1)


@dataclasses.dataclass(frozen=True, eq=False)
class Booth(ParametricProblem):
    """Booth: f = (x + 2y − 7)² + (2x + y − 5)², a convex quadratic; x* = (1, 3), f* = 0.

    Start (−5, −5); domain [−10, 10]².
    """

    name: str = dataclasses.field(default="booth", kw_only=True)
    dim: int = _fixed_2d()

    def defaults(self) -> dict[str, Any]:
        return {
            "description": "Booth's function: a tilted convex quadratic, x* = (1, 3)",
            "x0": [-5.0, -5.0],
            "domain": box(2, -10.0, 10.0),
            "x_star": [1.0, 3.0],
            "f_star": 0.0,
        }

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        u, v = x[..., 0], x[..., 1]
        return (u + 2 * v - 7) ** 2 + (2 * u + v - 5) ** 2

    def grad(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        u, v = x[..., 0], x[..., 1]
        r1, r2 = u + 2 * v - 7, 2 * u + v - 5
        return np.stack([2 * r1 + 4 * r2, 4 * r1 + 2 * r2], axis=-1)


@dataclasses.dataclass(frozen=True, eq=False)
class Himmelblau(ParametricProblem):
    """Himmelblau (1972): f = (x² + y − 11)² + (x + y² − 7)², four minima with f* = 0.

    Minima: (3, 2), (−2.805118, 3.131312), (−3.779310, −3.283186), (3.584428, −1.848126);
    ``x_star`` is (3, 2). Start (0, 0); domain [−5, 5]².
    """

    name: str = dataclasses.field(default="himmelblau", kw_only=True)
    dim: int = _fixed_2d()

    #: all four minimisers
    minima = np.array(
        [
            [3.0, 2.0],
            [-2.805118086952745, 3.131312518250573],
            [-3.779310253377747, -3.283185991286170],
            [3.584428340330492, -1.848126526964404],
        ]
    )

    def defaults(self) -> dict[str, Any]:
        return {
            "description": "Himmelblau's function: four equal minima, x* = (3, 2) is one",
            "x0": [0.0, 0.0],
            "domain": box(2, -5.0, 5.0),
            "x_star": [3.0, 2.0],
            "f_star": 0.0,
        }

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        u, v = x[..., 0], x[..., 1]
        return (u * u + v - 11) ** 2 + (u + v * v - 7) ** 2

    def grad(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        u, v = x[..., 0], x[..., 1]
        r1, r2 = u * u + v - 11, u + v * v - 7
        return np.stack([4 * u * r1 + 2 * r2, 2 * r1 + 4 * v * r2], axis=-1)


@dataclasses.dataclass(frozen=True, eq=False)
class Rastrigin(ParametricProblem):
    """Rastrigin: f(x) = A·n + Σᵢ [xᵢ² − A·cos(2πxᵢ)], A = 10; x* = 0, f* = 0.

    ∇f = 2x + 2πA·sin(2πx). A regular lattice of local minima near the integers.
    Start (2.8, −3.2, …) (no canonical start; chosen off the lattice); domain [−5.12, 5.12]ⁿ.
    """

    name: str = dataclasses.field(default="rastrigin", kw_only=True)
    A: float = 10.0

    def defaults(self) -> dict[str, Any]:
        d = self.dim
        return {
            "description": f"Rastrigin's function in {d}-D: a lattice of local minima, x* = 0",
            "x0": np.where(np.arange(d) % 2 == 0, 2.8, -3.2),
            "domain": box(d, -5.12, 5.12),
            "x_star": np.zeros(d),
            "f_star": 0.0,
        }

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        return self.A * x.shape[-1] + ex.sum_(x * x - self.A * ex.cos(2 * np.pi * x), axis=-1)

    def grad(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        return 2 * x + 2 * np.pi * self.A * ex.sin(2 * np.pi * x)


@dataclasses.dataclass(frozen=True, eq=False)
class Ackley(ParametricProblem):
    """Ackley (1987): f(x) = −a·exp(−b·r) − exp(mean cos(cxᵢ)) + a + e, r = √(mean xᵢ²).

    a = 20, b = 0.2, c = 2π; x* = 0, f* = 0. The first term is a cone at the origin:
    ∂r/∂xᵢ = xᵢ/(n·r) has no limit at r = 0. ``grad`` returns the subgradient 0 there (the
    cone's subdifferential at its tip contains 0, and cos's term has zero gradient at 0),
    so the gradient is finite everywhere and exactly zero at the optimum.
    Start (3, 2, …); domain [−5, 5]ⁿ (the literature's box is [−32.768, 32.768]ⁿ).
    """

    name: str = dataclasses.field(default="ackley", kw_only=True)
    a: float = 20.0
    b: float = 0.2
    c: float = 2 * math.pi

    def defaults(self) -> dict[str, Any]:
        d = self.dim
        return {
            "description": f"Ackley's function in {d}-D: a bumpy funnel with a cone at x* = 0",
            "x0": np.where(np.arange(d) % 2 == 0, 3.0, 2.0),
            "domain": box(d, -5.0, 5.0),
            "x_star": np.zeros(d),
            "f_star": 0.0,
        }

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        n = x.shape[-1]
        r = np.sqrt(ex.sum_(x * x, axis=-1) / n)
        s = ex.sum_(ex.cos(self.c * x), axis=-1) / n
        return -self.a * ex.exp(-self.b * r) - ex.exp(s) + self.a + math.e

    def grad(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        n = x.shape[-1]
        r = np.sqrt(ex.sum_(x * x, axis=-1, keepdims=True) / n)
        s = ex.sum_(ex.cos(self.c * x), axis=-1, keepdims=True) / n
        safe_r = np.where(r > 0, r, 1.0)
        # d/dx [−a·exp(−b r)] = a·b·exp(−b r)·x/(n r); 0 at the tip of the cone (r = 0)
        cone = np.where(r > 0, self.a * self.b * ex.exp(-self.b * r) * x / (n * safe_r), 0.0)
        wave = ex.exp(s) * self.c * ex.sin(self.c * x) / n
        return cone + wave


def _cubic_root(c3: float, c1: float, c0: float, start: float) -> float:
    """A root of c3·t³ + c1·t + c0 by Newton's method from ``start``: IEEE operations only, so
    x* and f* are the same on every machine (``np.roots`` asks LAPACK for eigenvalues)."""
    t = start
    for _ in range(200):
        step = ((c3 * t * t + c1) * t + c0) / (3.0 * c3 * t * t + c1)
        if t - step == t:
            break
        t = t - step
    return t


def _styblinski_tang_argmin() -> float:
    """The global minimiser of ½(t⁴ − 16t² + 5t): the smallest root of 4t³ − 32t + 5."""
    return _cubic_root(4.0, -32.0, 5.0, -4.0)


_ST_T = _styblinski_tang_argmin()  # −2.903534…


@dataclasses.dataclass(frozen=True, eq=False)
class StyblinskiTang(ParametricProblem):
    """Styblinski–Tang: f(x) = ½ Σᵢ (xᵢ⁴ − 16xᵢ² + 5xᵢ), ∇f = 2x³ − 16x + 2.5.

    x* = (−2.903534, …), f* = −39.16617·n; a local minimum near +2.7468 in every coordinate.
    Start (0.5, 4, …) (one coordinate starts in the shallow well); domain [−5, 5]ⁿ.
    """

    name: str = dataclasses.field(default="styblinski-tang", kw_only=True)

    def defaults(self) -> dict[str, Any]:
        d = self.dim
        t = _ST_T
        return {
            "description": f"Styblinski-Tang in {d}-D: a deep and a shallow well per coordinate",
            "x0": np.where(np.arange(d) % 2 == 0, 0.5, 4.0),
            "domain": box(d, -5.0, 5.0),
            "x_star": np.full(d, t),
            "f_star": 0.5 * d * ((t * t) * (t * t) - 16 * (t * t) + 5 * t),
        }

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        x2 = x * x
        return 0.5 * ex.sum_(x2 * x2 - 16 * x2 + 5 * x, axis=-1)

    def grad(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        return 2 * (x * x * x) - 16 * x + 2.5


@dataclasses.dataclass(frozen=True, eq=False)
class Saddle(ParametricProblem):
    """A bounded saddle: f(x, y) = x² − y² + y⁴/4, ∇f = (2x, −2y + y³).

    The textbook saddle x² − y² plus a quartic wall in y so it is bounded below: a saddle
    point at the origin and two minima at (0, ±√2) with f* = −1. From the default start
    (1, 10⁻³), just off the saddle's stable manifold y = 0, plain gradient descent crawls
    into the saddle before it escapes; Adam's 1/√v̂ scaling magnifies the tiny y-gradient.
    Domain [−2, 2]².
    """

    name: str = dataclasses.field(default="saddle", kw_only=True)
    dim: int = _fixed_2d()

    def defaults(self) -> dict[str, Any]:
        return {
            "description": "bounded saddle x^2 - y^2 + y^4/4: saddle at 0, minima (0, ±√2)",
            "x0": [1.0, 1e-3],
            "domain": box(2, -2.0, 2.0),
            "x_star": [0.0, math.sqrt(2.0)],
            "f_star": -1.0,
        }

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        u, v = x[..., 0], x[..., 1]
        v2 = v * v
        return u * u - v2 + 0.25 * (v2 * v2)

    def grad(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        u, v = x[..., 0], x[..., 1]
        return np.stack([2 * u, -2 * v + v * v * v], axis=-1)


@dataclasses.dataclass(frozen=True, eq=False)
class TwoWell(ParametricProblem):
    """Two-well bowl: f(x, y) = (x² − 1)² + tilt·x + y², ∇f = (4x(x² − 1) + tilt, 2y).

    Two wells near x = ±1 separated by a ridge at x ≈ 0; the tilt (0.3) makes the left well
    the deeper one (x* ≈ (−1.0367, 0)). From the default start (1.5, 1), in the right
    (shallow) well's basin, plain descent settles in the shallow well; momentum may carry an
    optimizer over the ridge. Domain [−2, 2] × [−1.5, 1.5].
    """

    name: str = dataclasses.field(default="two-well", kw_only=True)
    dim: int = _fixed_2d()
    tilt: float = 0.3

    def _argmin(self) -> float:
        """The deeper well's x: the stationary points from either side, the lower one
        (the left on a tie)."""
        left, right = (_cubic_root(4.0, -4.0, self.tilt, s) for s in (-1.5, 1.5))
        value = lambda t: (t * t - 1) ** 2 + self.tilt * t  # noqa: E731
        return right if value(right) < value(left) else left

    def defaults(self) -> dict[str, Any]:
        t = self._argmin()
        return {
            "description": f"two-well bowl (x^2-1)^2 + {self.tilt:g}x + y^2: deep and shallow wells",
            "x0": [1.5, 1.0],
            "domain": [[-2.0, 2.0], [-1.5, 1.5]],
            "x_star": [t, 0.0],
            "f_star": (t * t - 1) ** 2 + self.tilt * t,
        }

    def loss(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        u, v = x[..., 0], x[..., 1]
        return (u * u - 1) ** 2 + self.tilt * u + v * v

    def grad(self, x: np.ndarray) -> np.ndarray:
        x = _f64(x)
        u, v = x[..., 0], x[..., 1]
        return np.stack([4 * u * (u * u - 1) + self.tilt, 2 * v], axis=-1)
