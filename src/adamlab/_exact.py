"""Numerics with the same bits on every machine: IEEE + − × ÷ √ in a fixed order, nothing else.

NumPy's ``exp``, ``log``, ``tanh``, ``sin``, ``cos`` and ``power`` dispatch on the CPU (AVX2 and
AVX-512 have their own implementations, libm has another), and a matrix product goes to BLAS,
whose kernel, and so its summation order, depends on the CPU too. Each is within an ulp or so
of the truth, but not the *same* ulp everywhere, and an optimizer amplifies one ulp into a
different run. So the built-in problems compute with the functions below instead:

* elementary functions written from IEEE operations only (range reduction by exact products,
  polynomials evaluated by Horner's rule): accurate to about one ulp, identical everywhere;
* sums and matrix products accumulated in index order (``np.add.accumulate``, or a loop of
  multiply-then-add), never reassociated;
* :func:`geomspace` / :func:`logspace` for log-spaced grids and :func:`geom_interp` for
  log-uniform samples, computed in decimal arithmetic (software, 40 digits) and rounded once.

Element by element these are pure functions of the input's bits, so a configuration alone
(shape ``(D,)``) and its row in a sweep (``(K, D)``) agree bit for bit, whatever the array
layout. The constants are derived at import from decimal arithmetic, not typed in.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

import numpy as np

__all__ = [
    "cos",
    "dot",
    "exp",
    "expm1",
    "geom_interp",
    "geomspace",
    "log",
    "log1p",
    "log10",
    "logspace",
    "matmul",
    "norm",
    "sin",
    "softplus",
    "sum_",
    "tanh",
]  # fmt: skip

_PREC = 60  # decimal digits for the constants (far beyond float64's 17)


def _split(value: Decimal, bits: int) -> tuple[float, Decimal]:
    """The leading ``bits`` significant bits of ``value`` as a float (so that ``k·hi`` is exact
    for |k| < 2^(53 − bits)), and the exact remainder."""
    hi = float(value)
    m, e = math.frexp(hi)
    hi = math.ldexp(math.floor(math.ldexp(m, bits)), e - bits)
    return hi, value - Decimal(hi)


with localcontext() as _ctx:
    _ctx.prec = _PREC
    _LN2 = Decimal(2).ln()
    _LN2_HI, _rest = _split(_LN2, 32)
    _LN2_LO = float(_rest)
    _INV_LN2 = float(1 / _LN2)
    _INV_LN10 = float(1 / Decimal(10).ln())
    # π/2 in three 33-bit pieces (Cody & Waite): k·P1 and k·P2 exact for |k| < 2^20
    _PI = Decimal(
        "3.14159265358979323846264338327950288419716939937510582097494459230781640628620899"
    )
    _PIO2_1, _rest = _split(_PI / 2, 33)
    _PIO2_2, _rest = _split(_rest, 33)
    _PIO2_3 = float(_rest)
    _TWO_OVER_PI = float(2 / _PI)
    _SQRT_HALF = float(Decimal("0.5").sqrt())


def _inv_factorials(n: int, start: int = 0) -> list[float]:
    """1/k! for k = start … n, each correctly rounded."""
    return [float(Fraction(1, math.factorial(k))) for k in range(start, n + 1)]


_EXP_C = _inv_factorials(14, start=1)  # e^r − 1 = Σ_{k≥1} r^k/k!, |r| ≤ ln2/2: r^15/15! < 2^-70
_LOG_C = [float(Fraction(2, 2 * k + 1)) for k in range(1, 12)]  # 2/3, 2/5, …, 2/23
_SIN_C = [float(Fraction((-1) ** k, math.factorial(2 * k + 1))) for k in range(11)]
_COS_C = [float(Fraction((-1) ** k, math.factorial(2 * k))) for k in range(11)]

_EXP_MAX = 709.782712893384  # the largest x with a finite e^x
_EXP_MIN = -745.2  # below, e^x rounds to 0


def _f64(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _out(y: np.ndarray) -> Any:
    """0-d results come back as NumPy scalars, like NumPy's own functions."""
    return y[()] if y.ndim == 0 else y


def _horner(coeffs: list[float], r: np.ndarray) -> np.ndarray:
    """c₀ + r·(c₁ + r·(c₂ + …)) with the coefficients in increasing degree."""
    p = np.full_like(r, coeffs[-1])
    for c in reversed(coeffs[:-1]):
        p = p * r + c
    return p


def _reduce_ln2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x = k·ln2 + r with |r| ≤ ln2/2; returns (k as int64, e^r − 1 by its Taylor series)."""
    k = np.rint(x * _INV_LN2)
    r = (x - k * _LN2_HI) - k * _LN2_LO  # k·ln2_hi is exact: ln2_hi has 32 bits
    return np.nan_to_num(k).astype(np.int64), r * _horner(_EXP_C, r)


def exp(x: Any) -> Any:
    """eˣ = 2ᵏ·(1 + (e^r − 1)) with x = k·ln2 + r."""
    x = _f64(x)
    k, em = _reduce_ln2(np.clip(x, _EXP_MIN, _EXP_MAX))  # NaN stays NaN
    y = np.ldexp(1.0 + em, k)
    y = np.where(x > _EXP_MAX, np.inf, y)
    return _out(np.where(x < _EXP_MIN, 0.0, y))


def expm1(x: Any) -> Any:
    """eˣ − 1 = 2ᵏ·(e^r − 1) + (2ᵏ − 1), accurate near 0 (k = 0 there)."""
    x = _f64(x)
    k, em = _reduce_ln2(np.clip(x, -40.0, _EXP_MAX))  # e^-40 − 1 rounds to −1
    scale = np.ldexp(1.0, k)
    y = scale * em + (scale - 1.0)
    return _out(np.where(x > _EXP_MAX, np.inf, y))


def log(x: Any) -> Any:
    """ln x: x = m·2ᵉ with m ∈ [√½, √2), ln m = 2·atanh(s), s = (m − 1)/(m + 1) (fdlibm's form:
    f − (f²/2 − s·(f²/2 + R)) with f = m − 1 exact)."""
    x = _f64(x)
    m, e = np.frexp(np.where((x > 0) & (x < np.inf), x, 1.0))  # subnormals too; m ∈ [0.5, 1)
    low = m < _SQRT_HALF
    m = np.where(low, 2.0 * m, m)
    k = (e - low).astype(np.float64)
    f = m - 1.0
    s = f / (2.0 + f)
    z = s * s
    R = z * _horner(_LOG_C, z)
    hfsq = 0.5 * f * f
    y = k * _LN2_HI - ((hfsq - (s * (hfsq + R) + k * _LN2_LO)) - f)
    y = np.where(x == np.inf, np.inf, y)
    y = np.where(x == 0.0, -np.inf, y)
    return _out(np.where((x < 0) | np.isnan(x), np.nan, y))


def log10(x: Any) -> Any:
    """log₁₀ x = ln x · (1/ln 10)."""
    return _out(_f64(log(x)) * _INV_LN10)


def log1p(x: Any) -> Any:
    """ln(1 + x), accurate near 0 (Goldberg: ln(w)·x/(w − 1) with w = 1 + x)."""
    x = _f64(x)
    w = 1.0 + x
    d = w - 1.0
    ratio = np.divide(x, d, out=np.ones_like(x), where=d != 0.0)
    return _out(np.where(d == 0.0, x, log(w) * ratio))


def softplus(x: Any) -> Any:
    """ln(1 + eˣ) = max(x, 0) + ln(1 + e^−|x|) (NumPy's ``logaddexp(0, x)``)."""
    x = _f64(x)
    return _out(np.maximum(x, 0.0) + log1p(exp(-np.abs(x))))


def tanh(x: Any) -> Any:
    """tanh x = sign(x)·E/(E + 2) with E = e^{2|x|} − 1 (no cancellation at any size)."""
    x = _f64(x)
    em = expm1(2.0 * np.minimum(np.abs(x), 22.0))  # tanh(22) rounds to 1
    return _out(np.where(np.isnan(x), x, np.copysign(em / (em + 2.0), x)))


def _reduce_pio2(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x = k·π/2 + r, |r| ≤ π/4 (accurate for |x| < 2^20·π/2; deterministic beyond)."""
    k = np.rint(x * _TWO_OVER_PI)
    r = ((x - k * _PIO2_1) - k * _PIO2_2) - k * _PIO2_3
    q = np.nan_to_num(np.fmod(k, 4.0)).astype(np.int64) % 4
    return r, q


def _sin_cos_r(r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    z = r * r
    return r * _horner(_SIN_C, z), _horner(_COS_C, z)


def sin(x: Any) -> Any:
    """sin x by reduction to [−π/4, π/4] and Taylor series."""
    x = _f64(x)
    r, q = _reduce_pio2(np.where(np.isfinite(x), x, 0.0))
    s, c = _sin_cos_r(r)
    y = np.choose(q, [s, c, -s, -c])
    return _out(np.where(np.isfinite(x), y, np.nan))


def cos(x: Any) -> Any:
    """cos x by reduction to [−π/4, π/4] and Taylor series."""
    x = _f64(x)
    r, q = _reduce_pio2(np.where(np.isfinite(x), x, 0.0))
    s, c = _sin_cos_r(r)
    y = np.choose(q, [c, -s, -c, s])
    return _out(np.where(np.isfinite(x), y, np.nan))


# --------------------------------------------------------------------------------------------
# Sums and products in index order
# --------------------------------------------------------------------------------------------


def sum_(x: Any, axis: int | tuple[int, ...] = -1, keepdims: bool = False) -> Any:
    """Σ along ``axis``, added left to right (((x₀ + x₁) + x₂) + …), whatever the layout.

    NumPy's ``sum`` adds pairwise in blocks whose shape depends on the memory layout; this
    never reassociates. A tuple of axes is summed one axis after the other, last first.
    """
    x = _f64(x)
    if isinstance(axis, tuple):
        axes = sorted((a % x.ndim for a in axis), reverse=True)
        for a in axes:
            x = sum_(x, a, keepdims=True)
        return _out(x if keepdims else np.squeeze(x, axis=tuple(axes)))
    if x.shape[axis] == 0:
        return _out(np.zeros(np.delete(x.shape, axis % x.ndim)))
    acc = np.add.accumulate(x, axis=axis)
    y = np.take(acc, [-1], axis=axis)
    return _out(y if keepdims else np.squeeze(y, axis=axis))


def dot(a: Any, b: Any) -> Any:
    """Σᵢ aᵢbᵢ over the last axis (broadcasting the others), in index order."""
    return sum_(_f64(a) * _f64(b), axis=-1)


def norm(x: Any, axis: int = -1) -> Any:
    """The Euclidean norm √(Σ xᵢ²) over ``axis``, in index order (no BLAS)."""
    x = _f64(x)
    return _out(np.sqrt(sum_(x * x, axis=axis)))


#: above this many products a matrix product accumulates with a loop instead of materialising
#: them (same order, same bits; only memory differs)
_MATERIALISE = 1 << 18
#: from this many products on, numba's compiled loop (same order, same bits) when installed
_COMPILED = 1 << 15


@functools.cache
def _compiled_matmul() -> Any:
    """The same loop as :func:`matmul`, compiled by numba (None without numba).

    No ``fastmath``: LLVM then neither reassociates the sum nor fuses a·b + c into one FMA, so
    each entry is the same sequence of IEEE operations as the NumPy path (tests compare them).
    """
    try:
        import numba
    except ImportError:
        return None

    @numba.njit(cache=True, error_model="numpy")
    def mm(a, b, out):  # a (Ba, n, k), b (Bb, k, m), out (B, n, m); Ba, Bb ∈ {1, B}
        n, k = a.shape[1], a.shape[2]
        m = b.shape[2]
        for z in range(out.shape[0]):
            za = z if a.shape[0] > 1 else 0
            zb = z if b.shape[0] > 1 else 0
            for i in range(n):
                a0 = a[za, i, 0]
                for j in range(m):
                    out[z, i, j] = a0 * b[zb, 0, j]
                for q in range(1, k):
                    aq = a[za, i, q]
                    for j in range(m):
                        out[z, i, j] += aq * b[zb, q, j]

    return mm


def _batch3(x: np.ndarray, lead: tuple[int, ...]) -> np.ndarray:
    """x (..., r, c) as a C-contiguous (B, r, c) over the broadcast lead shape, or (1, r, c)."""
    if math.prod(x.shape[:-2]) == 1:
        return np.ascontiguousarray(x.reshape(1, *x.shape[-2:]))
    x = np.broadcast_to(x, (*lead, *x.shape[-2:]))
    return np.ascontiguousarray(x).reshape(-1, *x.shape[-2:])


def matmul(a: Any, b: Any) -> Any:
    """``a @ b`` with every entry Σₖ a[i,k]·b[k,j] accumulated in order k = 0, 1, …

    Same broadcasting rules as ``np.matmul`` (1-D operands are promoted and squeezed), but
    never BLAS: the result's bits do not depend on the CPU, the BLAS build, the batch shape or
    the thread count. Large products run in a numba loop of the same order when numba is
    installed.
    """
    a, b = _f64(a), _f64(b)
    va, vb = a.ndim == 1, b.ndim == 1
    if va:
        a = a[None, :]
    if vb:
        b = b[:, None]
    if a.shape[-1] != b.shape[-2]:
        raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align")
    n = a.shape[-1]
    lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    size = math.prod(lead) * a.shape[-2] * n * b.shape[-1]
    compiled = _compiled_matmul() if size >= _COMPILED and n > 0 else None
    if n == 0:
        out = np.zeros((*lead, a.shape[-2], b.shape[-1]))
    elif compiled is not None:
        out = np.empty((math.prod(lead), a.shape[-2], b.shape[-1]))
        compiled(_batch3(a, lead), _batch3(b, lead), out)
        out = out.reshape(*lead, a.shape[-2], b.shape[-1])
    elif size <= _MATERIALISE:  # one product array, one sequential accumulate over k
        prods = a[..., :, :, None] * b[..., None, :, :]
        out = np.add.accumulate(prods, axis=-2)[..., -1, :]
    else:
        out = a[..., :, 0:1] * b[..., 0:1, :]
        for k in range(1, n):
            out += a[..., :, k : k + 1] * b[..., k : k + 1, :]
    if va:
        out = out[..., 0, :]
    if vb:
        out = out[..., 0]
    return _out(out)


# --------------------------------------------------------------------------------------------
# Decimal helpers for grids and samples (cold paths)
# --------------------------------------------------------------------------------------------


def _dec(v: float) -> Decimal:
    return Decimal(repr(float(v)))  # the shortest decimal: 1e-4 is 0.0001, not its binary value


def geom_interp(lo: float, hi: float, u: Any) -> np.ndarray:
    """lo·(hi/lo)ᵘ element by element (u = 0 gives lo, u = 1 gives hi, exactly): log-uniform
    samples and log-spaced grids. In 40-digit decimal arithmetic, rounded once to float64: the
    same values on every machine (``np.logspace``, ``np.geomspace`` and ``10.0 ** u`` use the
    CPU's ``pow``)."""
    if not (lo > 0 and hi > 0):
        raise ValueError(f"a log scale needs positive ends, got {lo!r} and {hi!r}")
    u = _f64(u)
    with localcontext() as ctx:
        ctx.prec = 40
        a, b = _dec(lo), _dec(hi)
        ratio = (b / a).ln()
        flat = [
            float(a) if w == 0 else float(b) if w == 1 else float(a * (ratio * Decimal(w)).exp())
            for w in u.ravel().tolist()
        ]
    return np.array(flat).reshape(u.shape)


def geomspace(lo: float, hi: float, n: int) -> np.ndarray:
    """n points from lo to hi equally spaced in log, the ends exact (:func:`geom_interp`)."""
    if n == 1:
        return np.array([float(lo)])
    return geom_interp(lo, hi, np.arange(n) / (n - 1))


def logspace(a: float, b: float, n: int) -> np.ndarray:
    """10ᵃ … 10ᵇ, n points (``np.logspace``), from :func:`geom_interp` on 40-digit powers."""
    with localcontext() as ctx:
        ctx.prec = 40
        lo, hi = (float(Decimal(10) ** _dec(v)) for v in (a, b))
    return geomspace(lo, hi, n)
