"""Fused numba kernels for vectorised sweeps: Adam on Rosenbrock, the whole run in one call.

A NumPy sweep takes one pass over K configurations per step, a dozen temporary (K, dim)
arrays each time. Here each configuration's run lives in registers: one thread takes a
configuration and does all its steps — Rosenbrock's analytic gradient, Algorithm 1, the loss
and the metrics — before moving to the next; ``prange`` spreads configurations over cores.

The arithmetic is the reference's, operation for operation, so results agree with
``adamlab.Adam`` stepping (K, 2) arrays to the last bit (tested):

* gradient as :class:`adamlab.problems.analytic.Rosenbrock` writes it:
  r = y − x·x; ∂x = (−4b)·x·r − 2(a − x); ∂y = (2b)·r;  loss = b·(r·r) + (a − x)²;
* m ← β₁m + (1 − β₁)g;  v ← β₂v + ((1 − β₂)g)g;  (no fused multiply-add: numba does
  not contract without ``fastmath``);
* βᵗ correctly rounded, with the core's double-double product and rounding rule
  (:mod:`adamlab.optim.powers`); where that rule cannot decide (about t·2⁻⁴² of the cases) the
  configuration is flagged (``exact`` False) and rerun on the reference path;
* x ← x − (α·m̂)/(√v̂ + ε) with m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ) (or /1 without correction).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..optim import powers

try:
    import numba
except ImportError:  # pragma: no cover - numba is the "fast" extra
    numba = None

__all__ = ["adam_rosenbrock", "available", "run_columns", "supports"]


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


def _chunk(x0, lr, b1, b2, eps, steps, bc1, bc2, a, bb, target, f_star, track, scale, out,
           stats, sure):  # fmt: skip
    """All steps for one block of configurations; the inner loops over the block vectorise."""
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
    m4b = -4.0 * bb
    two_b = 2.0 * bb
    for i in range(n):
        sure[i] = True
        O1[i] = 1.0 - b1[i]
        O2[i] = 1.0 - b2[i]
        r = Y[i] - X[i] * X[i]
        best[i] = bb * (r * r) + (a - X[i]) * (a - X[i])
        if track and best[i] - f_star <= target:
            hit[i] = 0.0
    for t in range(1, steps + 1):
        if bc1:
            _corrections(C1, P1h, P1l, b1, t, scale, U, sure)
        if bc2:
            _corrections(C2, P2h, P2l, b2, t, scale, U, sure)
        if track and t > 1:
            # track the loss at x_{t-1} here: it shares r = y − x² and a − x with the
            # gradient (selects, no branches: the loop still vectorises)
            tp = float(t - 1)
            for i in range(n):
                x = X[i]
                y = Y[i]
                r = y - x * x
                d = a - x
                f = bb * (r * r) + d * d
                ok = f - f == 0.0  # finite
                best[i] = f if ok and f < best[i] else best[i]
                live = dead[i] != dead[i]  # no non-finite loss yet
                reach = ok and live and f - f_star <= target and hit[i] != hit[i]
                hit[i] = tp if reach else hit[i]
                dead[i] = tp if live and not ok else dead[i]
                g0 = m4b * x * r - 2.0 * d
                g1 = two_b * r
                m0 = b1[i] * M0[i] + O1[i] * g0
                m1 = b1[i] * M1[i] + O1[i] * g1
                v0 = b2[i] * V0[i] + O2[i] * g0 * g0
                v1 = b2[i] * V1[i] + O2[i] * g1 * g1
                M0[i] = m0
                M1[i] = m1
                V0[i] = v0
                V1[i] = v1
                X[i] = x - lr[i] * (m0 / C1[i]) / (math.sqrt(v0 / C2[i]) + eps[i])
                Y[i] = y - lr[i] * (m1 / C1[i]) / (math.sqrt(v1 / C2[i]) + eps[i])
        else:
            for i in range(n):
                x = X[i]
                y = Y[i]
                r = y - x * x
                g0 = m4b * x * r - 2.0 * (a - x)
                g1 = two_b * r
                m0 = b1[i] * M0[i] + O1[i] * g0
                m1 = b1[i] * M1[i] + O1[i] * g1
                v0 = b2[i] * V0[i] + O2[i] * g0 * g0
                v1 = b2[i] * V1[i] + O2[i] * g1 * g1
                M0[i] = m0
                M1[i] = m1
                V0[i] = v0
                V1[i] = v1
                X[i] = x - lr[i] * (m0 / C1[i]) / (math.sqrt(v0 / C2[i]) + eps[i])
                Y[i] = y - lr[i] * (m1 / C1[i]) / (math.sqrt(v1 / C2[i]) + eps[i])
    tp = float(steps)
    for i in range(n):
        x = X[i]
        r = Y[i] - x * x
        f = bb * (r * r) + (a - x) * (a - x)
        if track:
            if f - f == 0.0:  # finite
                if f < best[i]:
                    best[i] = f
                if f - f_star <= target and hit[i] != hit[i] and dead[i] != dead[i]:
                    hit[i] = tp
            elif dead[i] != dead[i]:
                dead[i] = tp
        out[i, 0] = x
        out[i, 1] = Y[i]
        stats[i, 0] = f
        stats[i, 1] = best[i]
        stats[i, 2] = hit[i]
        stats[i, 3] = dead[i]


_BLOCK = 256  # configurations per block: ~20 arrays of 2 KiB stay in L1


def _adam_rosenbrock(x0, lr, b1, b2, eps, steps, bc1, bc2, a, bb, target, f_star, track, scale):
    K = lr.shape[0]
    out = np.empty((K, 2))
    stats = np.empty((K, 4))
    sure = np.empty(K, dtype=np.bool_)
    nblocks = (K + _BLOCK - 1) // _BLOCK
    for j in numba.prange(nblocks):
        s = j * _BLOCK
        e = min(K, s + _BLOCK)
        _chunk(
            x0, lr[s:e], b1[s:e], b2[s:e], eps[s:e], steps, bc1, bc2, a, bb, target, f_star,
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
    _margin = _jit(powers.margin)
    _corrections = numba.njit(cache=True, error_model="numpy")(_corrections)
    _chunk = numba.njit(cache=True, error_model="numpy")(_chunk)
    _kernel = numba.njit(parallel=True, cache=True, error_model="numpy")(_adam_rosenbrock)
    _bias_factors = numba.njit(parallel=True, cache=True, error_model="numpy")(_bias_factors)
else:  # pragma: no cover
    _kernel = None


def adam_rosenbrock(
    lr: Any,
    beta1: Any,
    beta2: Any,
    eps: Any = 1e-8,
    *,
    steps: int,
    x0: Sequence[float] = (-1.2, 1.0),
    bias_correction: tuple[bool, bool] | bool = True,
    a: float = 1.0,
    b: float = 100.0,
    target: float | None = None,
    f_star: float = 0.0,
    track: bool = True,
    _margin_scale: float = 1.0,
) -> dict[str, np.ndarray]:
    """Run K Adam configurations on 2-D Rosenbrock for ``steps`` steps in one fused kernel.

    ``lr``, ``beta1``, ``beta2``, ``eps``: arrays of shape (K,) (or scalars, broadcast).
    Returns ``x`` (K, 2) and, with ``track``, per configuration ``final_loss``, ``best_loss``,
    ``steps_to_target`` (first t with loss − f* ≤ target, NaN if never) and ``diverged_at``
    (first t with a non-finite loss). ``track=False`` skips the per-step loss (pure speed).
    ``exact`` (K,) is False for a configuration whose βᵗ the kernel could not round with
    certainty at some step (about t·2⁻⁴² of the cases): its results are not the reference's, and
    the caller must rerun it on the reference path. ``_margin_scale`` widens the error bound
    (tests use it to force that path).
    """
    if _kernel is None:  # pragma: no cover
        raise ImportError("adamlab.kernels.sweep needs numba (pip install 'adamlab[fast]')")
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
    tgt = -math.inf if target is None else float(target)
    x, stats, sure = _kernel(
        x0, lr, beta1, beta2, eps, int(steps), bias_correction[0], bias_correction[1],
        float(a), float(b), tgt, float(f_star), bool(track), float(_margin_scale),
    )  # fmt: skip
    out = {"x": x, "final_loss": stats[:, 0], "exact": sure}
    if track:
        out.update(best_loss=stats[:, 1], steps_to_target=stats[:, 2], diverged_at=stats[:, 3])
    return out


# --------------------------------------------------------------------------------------------
# Sweep integration
# --------------------------------------------------------------------------------------------


def supports(opt: Any) -> bool:
    """True when ``opt`` (constant hyperparameters: floats or (K, 1) arrays) is what the
    kernel computes: plain Adam — no AMSGrad, weight decay, maximize, eps_root, §2 ε
    placement or schedules. (Whether the *problem* is the deterministic 2-D Rosenbrock the
    kernel differentiates is the caller's check: ``adamlab.lab.sweep``.)"""
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
    )


def run_columns(
    opt: Any, problem: Any, *, steps: int, target: float | None, start: Any = None
) -> dict[str, np.ndarray]:
    """The sweep engine's metrics for one group of K configurations, as columns: ``opt``
    holds each hyperparameter as a float or a (K, 1) array (see :func:`supports`).

    ``final_loss``, ``best_loss``, ``gap``, ``steps_to_target``, ``diverged_at``, ``loss0``
    (float64, shape (K,)), ``diverged`` (bool), ``final_x`` (K, 2) and ``exact`` (bool: False
    where the caller must rerun the configuration on the reference path)."""
    hyper = [np.ravel(np.asarray(v, dtype=np.float64)) for v in (opt.lr, *opt.betas, opt.eps)]
    K = max(h.size for h in hyper)
    lr, b1, b2, eps = (np.broadcast_to(h, (K,)) for h in hyper)
    x0 = problem.check_start(problem.x0 if start is None else start)
    res = adam_rosenbrock(
        lr, b1, b2, eps, steps=steps, x0=x0, bias_correction=opt.bias_correction,
        a=problem.a, b=problem.b, target=target,
        f_star=0.0 if problem.f_star is None else problem.f_star,
    )  # fmt: skip
    f0 = float(problem.loss(x0[None, :])[0])
    f_star = problem.f_star
    final = res["final_loss"]
    gap = final - f_star if f_star is not None else np.full(K, math.nan)
    with np.errstate(invalid="ignore"):
        diverged = ~np.isfinite(final) | (final > f0)
    return {
        "final_loss": final, "best_loss": res["best_loss"], "gap": gap,
        "steps_to_target": res["steps_to_target"], "diverged_at": res["diverged_at"],
        "diverged": diverged, "loss0": np.full(K, f0), "final_x": res["x"],
        "exact": res["exact"],
    }  # fmt: skip
