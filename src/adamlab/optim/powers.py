"""βᵗ, correctly rounded: the one definition that every path of adamlab uses.

Adam divides by 1 − β₁ᵗ and 1 − β₂ᵗ. How βᵗ is computed decides the last bit of every step, and
the usual ways disagree: Python's ``b ** t`` calls libm's ``pow``, NumPy's ``array ** t`` calls its
own SIMD ``pow`` on AVX-512 machines (not libm's), and CUDA has a third. None promises the
correctly rounded result. adamlab computes βᵗ itself and returns the double nearest to the exact
βᵗ (ties to even), so a float β, an array of β, the numba kernels and the GPU all get the same bits
on every machine:

1. βᵗ in double-double arithmetic (about 106 bits) by binary powering, with the exponent kept
   apart (the mantissa stays in [½, 1), so nothing underflows): relative error below
   (t + 1)·2⁻⁹⁶, a generous bound (the analysis gives 4t·2⁻¹⁰² for Dekker's products);
2. rounding to float64 (or to the subnormal grid), which is correct unless the double-double
   value lies within that error of a rounding midpoint;
3. in that rare case (probability about t·2⁻⁴²), the exact rational βᵗ = (m/2ᵏ)ᵗ with Python's
   integers and its correctly rounded ``int / int``.

Correctly rounded powers equal glibc's ``pow`` for β ∈ {0.9, 0.999} and t ≤ 1000 (a test checks
it), so the seed demo still equals the lesson's hand-written loop bit for bit.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np

_SPLIT = 134217729.0  # 2²⁷ + 1: Dekker's splitting constant
_HALF_ULP = 2.0**-54  # half the spacing of doubles in [½, 1)
_MAX_T = 1 << 40  # beyond, the error bound below is not small enough: exact integers only


def margin(t: int) -> float:
    """Bound on the relative error of the double-double βᵗ (see the module docstring)."""
    return (t + 1) * 2.0**-96


# --- scalar double-double, also compiled by numba in adamlab.kernels --------------------------


def dd_mul(h1: float, l1: float, h2: float, l2: float) -> tuple[float, float]:
    """(h1 + l1)·(h2 + l2) as a normalised double-double (Dekker's exact product of h1·h2)."""
    p = h1 * h2
    c = _SPLIT * h1
    a_hi = c - (c - h1)
    a_lo = h1 - a_hi
    c = _SPLIT * h2
    b_hi = c - (c - h2)
    b_lo = h2 - b_hi
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    e = e + (h1 * l2 + l1 * h2)
    s = p + e
    return s, e - (s - p)


def round_dd(h: float, l: float, e: int, t: int) -> tuple[float, bool]:
    """The double nearest to (h + l)·2ᵉ (h ∈ [½, 1)), and whether that is certain.

    ``False`` means the value lies within the error bound of a rounding midpoint: the caller
    must decide it exactly.
    """
    err = margin(t)
    if e >= -1021:  # a normal result: h is the candidate, its neighbours are h ± 2⁻⁵³
        below = _HALF_ULP / 2 if h == 0.5 else _HALF_ULP  # [¼, ½) is twice as dense
        return math.ldexp(h, e), (l < _HALF_ULP - err) and (l > -below + err)
    s = e + 1074  # subnormal: round (h + l)·2ˢ to a whole number of 2⁻¹⁰⁷⁴
    if s < 0:  # below 2⁻¹⁰⁷⁵: rounds to 0
        return 0.0, True
    y = math.ldexp(h, s)
    n = math.floor(y)
    frac = (y - n) + math.ldexp(l, s)
    sure = abs(frac - 0.5) > math.ldexp(err, s) + 2.0**-52
    return math.ldexp(float(n + (frac > 0.5)), -1074), sure


def _normalise(h: float, l: float, e: int) -> tuple[float, float, int]:
    if h < 0.5:
        return 2.0 * h, 2.0 * l, e - 1
    return h, l, e


def _dd_pow(m: float, t: int) -> tuple[float, float, int]:
    """mᵗ for m ∈ [½, 1) as (h, l, e): h + l ∈ [½, 1), by left-to-right binary powering."""
    h, l, e = m, 0.0, 0
    for bit in bin(t)[3:]:
        h, l = dd_mul(h, l, h, l)
        h, l, e = _normalise(h, l, 2 * e)
        if bit == "1":
            h, l = dd_mul(h, l, m, 0.0)
            h, l, e = _normalise(h, l, e)
    return h, l, e


def _exact(b: float, t: int) -> float:
    return float(Fraction(b) ** t)  # int / int is correctly rounded in CPython


#: β → (t, h, l, e) of the last power asked for: a run asks for t = 1, 2, 3, … in turn
_SCALAR_CACHE: dict[float, tuple[int, float, float, int]] = {}
#: the same for arrays of β (keyed by their bytes), with their mantissas and exponents
_ARRAY_CACHE: dict[tuple, tuple] = {}
_CACHE_SIZE = 256


def _scalar_power(b: float, t: int) -> float:
    if t == 0:
        return 1.0
    if b == 0.0 or b == 1.0 or t == 1:
        return b
    if not 0.0 < b < 1.0 or t >= _MAX_T:
        return _exact(b, t) if b > 0.0 else b**t
    m, eb = math.frexp(b)
    hit = _SCALAR_CACHE.get(b)
    if hit is not None and hit[0] == t:
        h, l, e = hit[1], hit[2], hit[3]
    elif hit is not None and hit[0] == t - 1:
        h, l = dd_mul(hit[1], hit[2], m, 0.0)
        h, l, e = _normalise(h, l, hit[3])
    else:
        h, l, e = _dd_pow(m, t)
    if len(_SCALAR_CACHE) >= _CACHE_SIZE:
        _SCALAR_CACHE.clear()
    _SCALAR_CACHE[b] = (t, h, l, e)
    value, sure = round_dd(h, l, e + eb * t, t)
    return value if sure else _exact(b, t)


# --- the same, vectorised over an array of β ------------------------------------------------


def _dd_mul_arrays(h1, l1, h2, l2):
    p = h1 * h2
    c = _SPLIT * h1
    a_hi = c - (c - h1)
    a_lo = h1 - a_hi
    c = _SPLIT * h2
    b_hi = c - (c - h2)
    b_lo = h2 - b_hi
    e = ((a_hi * b_hi - p) + a_hi * b_lo + a_lo * b_hi) + a_lo * b_lo
    e = e + (h1 * l2 + l1 * h2)
    s = p + e
    return s, e - (s - p)


def _normalise_arrays(h, l, e):
    low = h < 0.5
    return np.where(low, 2.0 * h, h), np.where(low, 2.0 * l, l), e - low


def _array_power(b: np.ndarray, t: int) -> np.ndarray:
    key = (b.shape, b.tobytes())
    hit = _ARRAY_CACHE.get(key)
    if hit is not None:
        tc, h, l, e, m, eb, inside = hit
    else:
        tc, inside = 0, (b > 0.0) & (b < 1.0)
        m, eb = np.frexp(np.where(inside, b, 0.75))
        eb = eb.astype(np.int64)
    if tc == t:
        pass
    elif tc == t - 1:
        h, l = _dd_mul_arrays(h, l, m, 0.0)
        h, l, e = _normalise_arrays(h, l, e)
    else:
        h, l, e = m, np.zeros_like(m), np.zeros(m.shape, dtype=np.int64)
        for bit in bin(t)[3:]:
            h, l = _dd_mul_arrays(h, l, h, l)
            h, l, e = _normalise_arrays(h, l, 2 * e)
            if bit == "1":
                h, l = _dd_mul_arrays(h, l, m, 0.0)
                h, l, e = _normalise_arrays(h, l, e)
    if len(_ARRAY_CACHE) >= 16:
        _ARRAY_CACHE.clear()
    _ARRAY_CACHE[key] = (t, h, l, e, m, eb, inside)

    err = margin(t)
    E = e + eb * t
    out = np.ldexp(h, E)
    below = _HALF_ULP - (h == 0.5) * (_HALF_ULP / 2)  # [¼, ½) is twice as dense
    sure = (l < _HALF_ULP - err) & (l > err - below)
    normal = E >= -1021
    if not normal.all():  # the subnormal grid, as in round_dd
        s = np.clip(E + 1074, 0, 60)
        y = np.ldexp(h, s)
        n = np.floor(y)
        frac = (y - n) + np.ldexp(l, s)
        sub = np.ldexp(n + (frac > 0.5), -1074)
        sub_sure = np.abs(frac - 0.5) > np.ldexp(err, s) + 2.0**-52
        out = np.where(normal, out, np.where(E + 1074 < 0, 0.0, sub))
        sure = np.where(normal, sure, (E + 1074 < 0) | sub_sure)
    if not inside.all():  # β = 0 gives 0, β = 1 gives 1 (and any other β its exact power)
        sure = sure | ~inside
        for i in np.flatnonzero(~inside):
            out.flat[i] = _scalar_power(float(b.flat[i]), t)
    if not sure.all():
        for i in np.flatnonzero(~sure):
            out.flat[i] = _exact(float(b.flat[i]), t)
    return out


def power(b: Any, t: int) -> Any:
    """βᵗ correctly rounded, for a float β or an array of them (t ≥ 0 a whole number).

    The same bits for a float and for an array, on every machine. Arrays of another dtype or
    namespace are computed from their float64 values and returned in their own dtype.
    """
    t = int(t)
    if t < 0:
        raise ValueError(f"power: t must be >= 0, got {t}")
    if isinstance(b, (float, int)) and not isinstance(b, bool):
        return _scalar_power(float(b), t)
    if isinstance(b, np.generic):
        return _scalar_power(float(b), t)
    if isinstance(b, np.ndarray):
        if b.dtype == np.float64:
            return _array_power(b, t) if t > 1 else (np.ones_like(b) if t == 0 else b)
        return power(b.astype(np.float64), t).astype(b.dtype)
    import array_api_compat  # another namespace (torch, array_api_strict): through NumPy

    xp = array_api_compat.array_namespace(b)
    value = power(np.asarray(b, dtype=np.float64), t)
    return xp.asarray(value, dtype=b.dtype, device=array_api_compat.device(b))
