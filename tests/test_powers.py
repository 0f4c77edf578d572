"""βᵗ is correctly rounded (the one definition), for floats and arrays, on every path."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import adamlab
from adamlab.optim import powers
from adamlab.optim.powers import power

pytestmark = pytest.mark.exact


def exact(b: float, t: int) -> float:
    """The double nearest to βᵗ: exact rational arithmetic, CPython's correctly rounded int/int."""
    return float(Fraction(b) ** t)


RNG = np.random.default_rng(2024)
BETAS = np.concatenate(
    [
        RNG.uniform(0, 1, 150),
        1 - 10 ** RNG.uniform(-9, 0, 150),  # β near 1: every β₂ in practice
        [0.0, 1.0, 0.5, 0.25, 0.75, 0.9, 0.99, 0.999, 0.9999, np.nextafter(1.0, 0.0)],
        [1e-300, 1e-160, 5e-324, 2.0**-1022],  # results in and below the subnormal range
    ]
)
TS = [0, 1, 2, 3, 4, 5, 7, 10, 34, 50, 99, 100, 1000, 1001, 4097]


@pytest.mark.parametrize("t", TS)
def test_power_is_correctly_rounded_for_floats_and_arrays(t):
    want = np.array([exact(float(b), t) for b in BETAS])
    floats = np.array([power(float(b), t) for b in BETAS])
    assert np.array_equal(floats, want)
    assert np.array_equal(power(BETAS, t), want)
    assert np.array_equal(power(BETAS.reshape(-1, 1), t), want.reshape(-1, 1))


def test_long_runs():
    """t in the hundreds of thousands: binary powering, and subnormal or zero results."""
    for b in (0.9, 0.9999, 1 - 1e-7, 0.5 + 2.0**-40):
        for t in (12_345, 123_457):
            assert power(b, t) == exact(b, t), (b, t)


def test_steps_in_order_use_the_cache_and_agree():
    """A run asks for t = 1, 2, 3, …: each call advances the cached double-double by one
    product; a fresh computation (binary powering) must give the same bits."""
    betas = np.concatenate([1 - 10 ** RNG.uniform(-6, -0.5, 40), [0.9, 0.999]])
    powers._SCALAR_CACHE.clear()
    powers._ARRAY_CACHE.clear()
    for t in range(1, 1500):
        arr = power(betas[:, None], t)[:, 0]
        for b, a in zip(betas[-3:], arr[-3:], strict=True):
            assert power(float(b), t) == a == exact(float(b), t), (b, t)
        if t % 97 == 0:
            assert np.array_equal(arr, [exact(float(b), t) for b in betas]), t


def test_exact_ties_are_decided_by_the_integers():
    """0.75³⁴ = 3³⁴/2⁶⁸ and 3³⁴ has 54 bits: exactly halfway between two doubles. Rounding
    to even decides it; a double-double cannot know the value is exact, so the rule falls
    back to Python's integers."""
    n = 3**34
    assert n.bit_length() == 54 and n % 2 == 1
    even = next(m for m in ((n - 1) // 2, (n + 1) // 2) if m % 2 == 0)  # 53-bit neighbours
    assert power(0.75, 34) == exact(0.75, 34) == math.ldexp(2 * even, -68)
    assert power(np.array([0.75]), 34)[0] == exact(0.75, 34)


def test_the_fallback_is_right_where_the_bound_is_forced(monkeypatch):
    """With the error bound widened past half an ulp every case takes the exact path."""
    monkeypatch.setattr(powers, "margin", lambda t: 2.0**-52)
    powers._SCALAR_CACHE.clear()
    powers._ARRAY_CACHE.clear()
    for t in (3, 17, 200):
        want = [exact(float(b), t) for b in BETAS[:60]]
        assert [power(float(b), t) for b in BETAS[:60]] == want
        assert np.array_equal(power(BETAS[:60], t), want)
    powers._SCALAR_CACHE.clear()
    powers._ARRAY_CACHE.clear()


def test_glibc_pow_agrees_on_the_seed_betas():
    """Why the seed demo still equals the lesson's loop (which calls libm's ``pow``): on the
    seed's β and steps, glibc's pow is correctly rounded too. If this fails on some libm, the
    lesson's loop itself is what changed, not adamlab."""
    for b in (0.9, 0.999):
        for t in range(1, 1001):
            assert power(b, t) == b**t, (b, t)


def test_other_dtypes_and_namespaces(optional_module):
    b32 = np.array([0.9, 0.999], dtype=np.float32)
    got = power(b32, 7)
    assert got.dtype == np.float32
    assert np.array_equal(got, np.array([exact(float(v), 7) for v in b32], dtype=np.float32))
    torch = optional_module("torch")  # the exactness matrix runs this file without torch
    bt = torch.tensor([0.9, 0.999], dtype=torch.float64)
    assert [float(v) for v in power(bt, 50)] == [exact(0.9, 50), exact(0.999, 50)]
    with pytest.raises(ValueError, match="t must be >= 0"):
        power(0.9, -1)


def test_optimizers_use_it():
    """The bias corrections the core divides by are 1 − power(β, t), for floats and arrays."""
    opt = adamlab.Adam(lr=0.1, betas=(0.9, 0.999))
    h = opt.hypers(37)
    assert opt.corrections(37, h) == (1 - exact(0.9, 37), 1 - exact(0.999, 37))
    b2 = np.array([[0.99], [0.999]])
    arr = adamlab.Adam(betas=(0.9, b2))
    c2 = arr.corrections(37, arr.hypers(37))[1]
    assert np.array_equal(c2, 1 - np.array([[exact(0.99, 37)], [exact(0.999, 37)]]))
