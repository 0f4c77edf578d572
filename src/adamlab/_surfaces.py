"""2-D test surfaces as plain arithmetic, written once for two readers.

Each function takes the coordinates (floats, or NumPy arrays of any shape) and the surface's
parameters, and returns ``(f, ∂f/∂x, ∂f/∂y)`` using only + − × (IEEE operations, in this
order). The problems in :mod:`adamlab.problems.analytic` call them on arrays; the fused sweep
kernel in :mod:`adamlab.kernels.sweep` compiles the very same functions with numba. So a
configuration computes the same bits in either, by construction, not by a second copy of the
formula that has to agree. Adding a surface to the kernel is one function here (and its
number in :data:`SURFACES`).
"""

from __future__ import annotations

from typing import Any


def rosenbrock_2d(x: Any, y: Any, a: float, b: float) -> tuple[Any, Any, Any]:
    """f = b·(y − x²)² + (a − x)²; ∂x = −4b·x·(y − x²) − 2(a − x); ∂y = 2b·(y − x²)."""
    r = y - x * x
    d = a - x
    f = b * (r * r) + d * d
    return f, (-4.0 * b) * x * r - 2.0 * d, (2.0 * b) * r


#: the surfaces the fused kernel knows, by number (the kernel switches on it)
SURFACES = {"rosenbrock": (0, rosenbrock_2d)}
