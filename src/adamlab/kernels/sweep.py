"""Fused numba kernel for vectorised sweeps: Adam on a 2-D surface, the whole run in one call.

A NumPy sweep takes one pass over K configurations per step, a dozen temporary (K, dim)
arrays each time. Here each configuration's run lives in registers: one thread takes a block
of configurations and does all their steps — the surface's gradient, Algorithm 1, the value
and its bookkeeping — before moving on; ``prange`` spreads blocks over cores.

The arithmetic is the reference's, operation for operation, so results agree with
``adamlab.Adam`` stepping (K, 2) arrays to the last bit (tested):

* the surface is the function of :mod:`adamlab._surfaces` that the problem itself calls,
  compiled here (e.g. Rosenbrock: r = y − x·x; ∂x = (−4b)·x·r − 2(a − x); ∂y = (2b)·r;
  f = b·(r·r) + (a − x)²), never a second copy of the formula;
* m ← β₁m + (1 − β₁)g;  v ← β₂v + ((1 − β₂)g)g;  (no fused multiply-add: numba does
  not contract without ``fastmath``);
* βᵗ correctly rounded, with the core's double-double product and rounding rule
  (:mod:`adamlab.optim.powers`); where that rule cannot decide (about t·2⁻⁴² of the cases) the
  configuration is flagged (``exact`` False) and rerun on the reference path;
* x ← x − (α·m̂)/(√v̂ + ε) with m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ) (or /1 without correction).

The kernel returns raw arrays (iterates, values, first steps); what they mean for a sweep
(gap, divergence, the table) is decided in :mod:`adamlab.lab.sweep`. It imports no problem.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .. import _surfaces
from ..optim import powers

try:
    import numba
except ImportError:  # pragma: no cover - numba is the "fast" extra
    numba = None

__all__ = ["adam_rosenbrock", "adam_surface", "available", "hyperparameters", "supports"]


def available() -> bool:
    """True when numba is installed."""
    return numba is not None


_EXP_FIELD = np.uint64(0x7FF << 52)
_MANT = np.uint64((1 << 52) - 1)
_ULP_BITS = np.uint64(52 << 52)  # biased exponent of ulp(ph) is that of ph minus 52
_TINY = 2.0**-55  # below, 1 − βᵗ rounds to 1.0 whatever the last bits of βᵗ


def _corrections(C, Ph, Pl, b, t, scale, U, sure):
    """C ← 1 − βᵗ for a block, with βᵗ correctly rounded as :func:`adamlab.optim.powers.power`
    gives it; Ph + Pl (a double-double βᵗ⁻¹) advances by one step.

    The same product (``powers.dd_mul``) and the same rule as the core: Ph is the correctly
    rounded βᵗ unless Pl puts βᵗ within the error bound of a rounding midpoint (half an ulp,
    a quarter below a power of two). There ``sure`` is cleared and the caller reruns that
    configuration on the reference path (about t·2⁻⁴² of the cases). Below 2⁻⁵⁵ the last bits
    of βᵗ no longer matter: 1 − βᵗ is 1.0. Written so that the loops vectorise (the ULP comes
    from the exponent bits, through the scratch array ``U``).
    """
    n = C.shape[0]
    for i in range(n):
        Ph[i], Pl[i] = _dd_mul(Ph[i], Pl[i], b[i], 0.0)
    err = _margin(t) * scale
    bits = Ph.view(np.uint64)
    ubits = U.view(np.uint64)
    for i in range(n):  # ulp(ph) = 2^(E − 52); garbage below 2^-969, where it is not used
        ubits[i] = (bits[i] & _EXP_FIELD) - _ULP_BITS
    for i in range(n):
        ph = Ph[i]
        pl = Pl[i]
        C[i] = 1.0 - ph
        u = U[i]
        below = 0.25 * u if (bits[i] & _MANT) == 0 else 0.5 * u
        e = err * ph
        ok = (ph < _TINY) | ((pl < 0.5 * u - e) & (pl > e - below))
        sure[i] = sure[i] & ok


def _value_grad(kind, x, y, p0, p1):
    """The surface ``kind`` of :data:`adamlab._surfaces.SURFACES` at (x, y)."""
    return _rosenbrock_2d(x, y, p0, p1)  # kind 0, the only one so far


def _chunk(x0, lr, b1, b2, eps, steps, bc1, bc2, kind, p0, p1, ref, tol, track, scale, out,
           stats, sure):  # fmt: skip
    """All steps for one block of configurations; the inner loops over the block vectorise.

    Raw results only: per configuration the last iterate and its f, the lowest finite f seen,
    the first step t with f − ref ≤ tol (before any non-finite f) and the first step with a
    non-finite f (NaN where none). What they mean for a sweep is the lab's business."""
    n = lr.shape[0]
    X = np.full(n, x0[0])
    Y = np.full(n, x0[1])
    M0 = np.zeros(n)
    M1 = np.zeros(n)
    V0 = np.zeros(n)
    V1 = np.zeros(n)
    P1h = np.ones(n)
    P1l = np.zeros(n)
    P2h = np.ones(n)
    P2l = np.zeros(n)
    C1 = np.ones(n)
    C2 = np.ones(n)
    O1 = np.empty(n)
    O2 = np.empty(n)
    U = np.empty(n)
    best = np.empty(n)
    hit = np.full(n, np.nan)
    dead = np.full(n, np.nan)
    f0 = _value_grad(kind, x0[0], x0[1], p0, p1)[0]
    for i in range(n):
        sure[i] = True
        O1[i] = 1.0 - b1[i]
        O2[i] = 1.0 - b2[i]
        best[i] = f0
        if track and f0 - ref <= tol:
            hit[i] = 0.0
    for t in range(1, steps + 1):
        if bc1:
            _corrections(C1, P1h, P1l, b1, t, scale, U, sure)
        if bc2:
            _corrections(C2, P2h, P2l, b2, t, scale, U, sure)
        tp = float(t - 1)  # f at x_{t-1} comes with the gradient there: tracked at no cost
        for i in range(n):  # selects, no branches: the loop vectorises
            f, g0, g1 = _value_grad(kind, X[i], Y[i], p0, p1)
            if track and t > 1:
                ok = f - f == 0.0  # finite
                best[i] = f if ok and f < best[i] else best[i]
                live = dead[i] != dead[i]  # no non-finite f yet
                reach = ok and live and f - ref <= tol and hit[i] != hit[i]
                hit[i] = tp if reach else hit[i]
                dead[i] = tp if live and not ok else dead[i]
            m0 = b1[i] * M0[i] + O1[i] * g0
            m1 = b1[i] * M1[i] + O1[i] * g1
            v0 = b2[i] * V0[i] + O2[i] * g0 * g0
            v1 = b2[i] * V1[i] + O2[i] * g1 * g1
            M0[i] = m0
            M1[i] = m1
            V0[i] = v0
            V1[i] = v1
            X[i] = X[i] - lr[i] * (m0 / C1[i]) / (math.sqrt(v0 / C2[i]) + eps[i])
            Y[i] = Y[i] - lr[i] * (m1 / C1[i]) / (math.sqrt(v1 / C2[i]) + eps[i])
    tp = float(steps)
    for i in range(n):
        f = _value_grad(kind, X[i], Y[i], p0, p1)[0]
        if track:
            if f - f == 0.0:  # finite
                if f < best[i]:
                    best[i] = f
                if f - ref <= tol and hit[i] != hit[i] and dead[i] != dead[i]:
                    hit[i] = tp
            elif dead[i] != dead[i]:
                dead[i] = tp
        out[i, 0] = X[i]
        out[i, 1] = Y[i]
        stats[i, 0] = f
        stats[i, 1] = best[i]
        stats[i, 2] = hit[i]
        stats[i, 3] = dead[i]


_BLOCK = 256  # configurations per block: ~20 arrays of 2 KiB stay in L1


def _adam_surface(x0, lr, b1, b2, eps, steps, bc1, bc2, kind, p0, p1, ref, tol, track, scale):
    K = lr.shape[0]
    out = np.empty((K, 2))
    stats = np.empty((K, 4))
    sure = np.empty(K, dtype=np.bool_)
    nblocks = (K + _BLOCK - 1) // _BLOCK
    for j in numba.prange(nblocks):
        s = j * _BLOCK
        e = min(K, s + _BLOCK)
        _chunk(
            x0, lr[s:e], b1[s:e], b2[s:e], eps[s:e], steps, bc1, bc2, kind, p0, p1, ref, tol,
            track, scale, out[s:e], stats[s:e], sure[s:e],
        )  # fmt: skip
    return out, stats, sure


def _bias_factors(b, steps, scale):
    """1 − βᵗ for t = 1..steps as the kernel computes it, and whether each was certain (for
    the tests): shapes (len(b), steps)."""
    K = b.shape[0]
    C = np.empty((K, steps))
    certain = np.empty((K, steps), dtype=np.bool_)
    for k in numba.prange(K):
        c = np.ones(1)
        ph = np.ones(1)
        pl = np.zeros(1)
        u = np.empty(1)
        ok = np.ones(1, dtype=np.bool_)
        bk = b[k : k + 1]
        for t in range(1, steps + 1):
            ok[0] = True
            _corrections(c, ph, pl, bk, t, scale, u, ok)
            C[k, t - 1] = c[0]
            certain[k, t - 1] = ok[0]
    return C, certain


if numba is not None:
    _jit = numba.njit(inline="always", cache=True, error_model="numpy")
    _dd_mul = _jit(powers.dd_mul)
    _rosenbrock_2d = _jit(_surfaces.rosenbrock_2d)
    _value_grad = _jit(_value_grad)
    _margin = _jit(powers.margin)
    _corrections = numba.njit(cache=True, error_model="numpy")(_corrections)
    _chunk = numba.njit(cache=True, error_model="numpy")(_chunk)
    _kernel = numba.njit(parallel=True, cache=True, error_model="numpy")(_adam_surface)
    _bias_factors = numba.njit(parallel=True, cache=True, error_model="numpy")(_bias_factors)
else:  # pragma: no cover
    _kernel = None


def adam_surface(
    surface: str,
    params: Sequence[float],
    lr: Any,
    beta1: Any,
    beta2: Any,
    eps: Any = 1e-8,
    *,
    steps: int,
    x0: Sequence[float],
    bias_correction: tuple[bool, bool] | bool = True,
    ref: float = 0.0,
    tol: float | None = None,
    track: bool = True,
    _margin_scale: float = 1.0,
) -> dict[str, np.ndarray]:
    """K Adam configurations on a 2-D surface of :mod:`adamlab._surfaces`, in one fused kernel.

    ``lr``, ``beta1``, ``beta2``, ``eps``: arrays of shape (K,) (or scalars, broadcast).
    Returns raw arrays: ``x`` (K, 2), the last iterate; ``f`` its value; with ``track``,
    ``best`` (the lowest finite f, from the start on), ``first_within`` (the first step with
    f − ref ≤ tol before any non-finite f; NaN if never) and ``first_nonfinite``. ``exact``
    (K,) is False for a configuration whose βᵗ the kernel could not round with certainty at
    some step (about t·2⁻⁴² of the cases): its results are not the reference's and the caller
    must rerun it on the reference path. ``_margin_scale`` widens the error bound (tests use
    it to force that path). ``track=False`` skips the per-step bookkeeping (pure speed).
    """
    if _kernel is None:  # pragma: no cover
        raise ImportError("adamlab.kernels.sweep needs numba (pip install 'adamlab[fast]')")
    if surface not in _surfaces.SURFACES:
        raise ValueError(f"unknown surface {surface!r}; the kernel has {list(_surfaces.SURFACES)}")
    kind = _surfaces.SURFACES[surface][0]
    p = [float(v) for v in params] + [0.0] * (2 - len(params))
    lr, beta1, beta2, eps = np.broadcast_arrays(
        *(
            np.ascontiguousarray(np.atleast_1d(np.asarray(v, dtype=np.float64)))
            for v in (lr, beta1, beta2, eps)
        )
    )
    # fresh writable copies: one compiled specialisation (a read-only view is another type)
    lr, beta1, beta2, eps = (np.array(v, dtype=np.float64) for v in (lr, beta1, beta2, eps))
    if isinstance(bias_correction, (bool, np.bool_)):
        bias_correction = (bool(bias_correction), bool(bias_correction))
    x0 = np.asarray(x0, dtype=np.float64)
    if x0.shape != (2,):
        raise ValueError(f"x0 must have shape (2,), got {x0.shape}")
    x, stats, sure = _kernel(
        x0, lr, beta1, beta2, eps, int(steps), bias_correction[0], bias_correction[1], kind,
        p[0], p[1], float(ref), -math.inf if tol is None else float(tol), bool(track),
        float(_margin_scale),
    )  # fmt: skip
    out = {"x": x, "f": stats[:, 0], "exact": sure}
    if track:
        out.update(best=stats[:, 1], first_within=stats[:, 2], first_nonfinite=stats[:, 3])
    return out


def adam_rosenbrock(
    lr: Any, beta1: Any, beta2: Any, eps: Any = 1e-8, *, steps: int,
    x0: Sequence[float] = (-1.2, 1.0), a: float = 1.0, b: float = 100.0, **kw: Any,
) -> dict[str, np.ndarray]:  # fmt: skip
    """:func:`adam_surface` on Rosenbrock's valley (a, b)."""
    return adam_surface("rosenbrock", (a, b), lr, beta1, beta2, eps, steps=steps, x0=x0, **kw)


def supports(opt: Any) -> bool:
    """True when ``opt`` (constant hyperparameters: floats or (K, 1) arrays) is what the
    kernel computes: plain Adam — no AMSGrad, weight decay, maximize, eps_root, §2 ε
    placement, low-precision state or schedules. (Whether the *problem* has a surface the kernel compiles is the
    problem's to say: ``Problem.surface()``.)"""
    from ..optim import Adam

    if type(opt) is not Adam:
        return False
    if any(callable(v) for v in (opt.lr, *opt.betas, opt.eps)):
        return False
    return not (
        opt.amsgrad
        or opt.maximize
        or not (isinstance(opt.weight_decay, float) and opt.weight_decay == 0.0)
        or opt.eps_root != 0.0
        or opt.eps_placement != "after_correction"
        or opt.state_precision != "fp32"
    )


def hyperparameters(opt: Any) -> tuple[np.ndarray, ...]:
    """(lr, β₁, β₂, ε) of a supported optimizer as arrays of shape (K,)."""
    hyper = [np.ravel(np.asarray(v, dtype=np.float64)) for v in (opt.lr, *opt.betas, opt.eps)]
    K = max(h.size for h in hyper)
    return tuple(np.broadcast_to(h, (K,)) for h in hyper)
