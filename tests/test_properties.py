"""The paper's analytic facts, as hypothesis properties."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import adamlab

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)
nonzero = st.floats(1e-3, 1e3).flatmap(lambda a: st.sampled_from([a, -a]))
beta = st.floats(0.0, 0.9999)
lr = st.floats(1e-4, 1.0)

ALL = [cls() for cls in adamlab.OPTIMIZERS.values()]
ALL += [
    adamlab.SGD(lr=0.1, momentum=0.9, nesterov=True),
    adamlab.RMSprop(centered=True, momentum=0.5),
    adamlab.Adam(amsgrad=True),
    adamlab.Adam(bias_correction=False, eps_placement="before_correction"),
]


def first_step(opt, g, x0=0.0):
    x = np.array([x0])
    x1, _ = opt.step(x, np.array([g]), opt.init(x))
    return float(x1[0] - x0)


@given(g=nonzero, alpha=lr, b1=beta, b2=beta, eps=st.floats(0, 1e-3))
def test_first_adam_step_is_minus_alpha_g_over_abs_g_plus_eps(g, alpha, b1, b2, eps):
    step = first_step(adamlab.Adam(alpha, betas=(b1, b2), eps=eps), g)
    assert math.isclose(step, -alpha * g / (abs(g) + eps), rel_tol=1e-12)


@given(g=nonzero, alpha=lr, b1=beta, b2=st.floats(1e-3, 0.9999))
def test_first_step_without_bias_correction(g, alpha, b1, b2):
    opt = adamlab.Adam(alpha, betas=(b1, b2), eps=0.0, bias_correction=False)
    expected = -alpha * (1 - b1) / math.sqrt(1 - b2) * math.copysign(1, g)
    assert math.isclose(first_step(opt, g), expected, rel_tol=1e-12)


def test_first_uncorrected_step_is_about_3_16_alpha_at_the_defaults():
    alpha = 1e-3
    step = first_step(adamlab.Adam(alpha, bias_correction=False), g=-5.0)
    assert math.isclose(step / alpha, 0.1 / math.sqrt(0.001), rel_tol=1e-6)
    assert 3.16 < step / alpha < 3.17


@given(g=nonzero, alpha=lr, b1=beta, b2=st.floats(1e-3, 0.9999))
def test_adamd_corrects_only_the_second_moment(g, alpha, b1, b2):
    opt = adamlab.Adam(alpha, betas=(b1, b2), eps=0.0, bias_correction=(False, True))
    expected = -alpha * (1 - b1) * math.copysign(1, g)
    assert math.isclose(first_step(opt, g), expected, rel_tol=1e-12)


def cauchy_schwarz_bound(alpha, b1, b2, t):
    """max |Δθₜ| over all gradient sequences, ε = 0: tight (attained by gₜ₋ₖ ∝ (β₁/β₂)ᵏ)."""
    s = sum((b1 * b1 / b2) ** k for k in range(t))
    return alpha * (1 - b1) / math.sqrt(1 - b2) * math.sqrt(1 - b2**t) / (1 - b1**t) * math.sqrt(s)


@settings(max_examples=60)
@given(
    grads=st.lists(nonzero, min_size=1, max_size=40),
    alpha=lr,
    b1=st.floats(0.0, 0.99),
    b2=st.floats(0.01, 0.999),
)
def test_every_step_obeys_the_exact_bound(grads, alpha, b1, b2):
    """Kingma & Ba §2.1 bound the step by α (or α(1−β₁)/√(1−β₂)) "in the common case". The
    exact statement, for ε = 0 and any gradients, is Cauchy–Schwarz on mₜ against vₜ."""
    opt = adamlab.Adam(alpha, betas=(b1, b2), eps=0.0)
    x = np.zeros(1)
    state = opt.init(x)
    for t, g in enumerate(grads, start=1):
        x1, state = opt.step(x, np.array([g]), state)
        assert abs(x1[0] - x[0]) <= cauchy_schwarz_bound(alpha, b1, b2, t) * (1 + 1e-9)
        x = x1


@given(
    magnitude=st.floats(1e-3, 1e3),
    signs=st.lists(st.booleans(), min_size=1, max_size=40),
    alpha=lr,
    b1=beta,
    b2=beta,
)
def test_steps_are_at_most_alpha_for_gradients_of_constant_size(magnitude, signs, alpha, b1, b2):
    """With |gₜ| constant, |m̂ₜ| ≤ |g| = √v̂ₜ: the step never exceeds α, whatever the signs."""
    opt = adamlab.Adam(alpha, betas=(b1, b2), eps=0.0)
    x = np.zeros(1)
    state = opt.init(x)
    for s in signs:
        x1, state = opt.step(x, np.array([magnitude if s else -magnitude]), state)
        assert abs(x1[0] - x[0]) <= alpha * (1 + 1e-9)
        x = x1


@given(spike=nonzero, at=st.integers(1, 30), alpha=lr, b1=st.floats(0.5, 0.99))
def test_a_single_spike_moves_at_most_alpha_when_1_minus_b1_le_sqrt_1_minus_b2(
    spike, at, alpha, b1
):
    """The paper's sparse case: a gradient of size G at one step and tiny ones elsewhere."""
    b2 = 1 - (1 - b1) ** 2 / 0.9  # 1 − β₂ > (1 − β₁)², i.e. (1 − β₁) < √(1 − β₂)
    opt = adamlab.Adam(alpha, betas=(b1, b2), eps=0.0)
    x = np.zeros(1)
    state = opt.init(x)
    for t in range(1, at + 5):
        g = spike if t == at else 1e-9 * spike
        x1, state = opt.step(x, np.array([g]), state)
        assert abs(x1[0] - x[0]) <= alpha * (1 + 1e-6)
        x = x1


def test_the_paper_bound_alpha_is_not_universal():
    """Stated, not hidden: growing gradients (gₜ₋ₖ = (β₁/β₂)ᵏ) exceed α even when
    (1 − β₁) ≤ √(1 − β₂); the exact bound above is what holds. The README's number: steps of
    2.3α at β = (0.9, 0.99) — the bound's limit α(1 − β₁)/√(1 − β₂)/√(1 − β₁²/β₂) = 2.345α,
    reached once β₂ᵗ is negligible (at t = 200 it is still 2.18α)."""
    alpha, b1, b2, T = 1.0, 0.9, 0.99, 1000
    assert 1 - b1 <= math.sqrt(1 - b2) + 1e-12
    opt = adamlab.Adam(alpha, betas=(b1, b2), eps=0.0)
    x = np.zeros(1)
    state = opt.init(x)
    for t in range(1, T + 1):
        x1, state = opt.step(x, np.array([(b2 / b1) ** t]), state)
        step = abs(x1[0] - x[0])
        x = x1
    limit = alpha * (1 - b1) / math.sqrt(1 - b2) / math.sqrt(1 - b1 * b1 / b2)
    assert round(limit / alpha, 1) == round(step / alpha, 1) == 2.3
    assert 2.3 * alpha < step <= limit
    assert math.isclose(step, cauchy_schwarz_bound(alpha, b1, b2, T), rel_tol=1e-6)


@settings(max_examples=40)
@given(
    opt=st.sampled_from(ALL),
    values=st.lists(finite, min_size=6, max_size=6),
    steps=st.integers(1, 4),
)
def test_inputs_are_never_mutated(opt, values, steps):
    params = {"w": np.array(values[:4]).reshape(2, 2), "b": np.array(values[4:])}
    grads = {"w": np.array(values[::-1][:4]).reshape(2, 2) + 1, "b": np.array(values[:2]) - 1}
    state = opt.init(params)
    for _ in range(steps):
        p_copy = {k: v.copy() for k, v in params.items()}
        g_copy = {k: v.copy() for k, v in grads.items()}
        s_copy = [{k: v.copy() for k, v in f.items()} if isinstance(f, dict) else f for f in state]
        new_params, new_state = opt.step(params, grads, state)
        for k in params:
            np.testing.assert_array_equal(params[k], p_copy[k])
            np.testing.assert_array_equal(grads[k], g_copy[k])
        for f, f_copy in zip(state, s_copy, strict=True):
            if isinstance(f, dict):
                for k in f:
                    np.testing.assert_array_equal(f[k], f_copy[k])
        assert new_params["w"] is not params["w"]
        params, state = new_params, new_state


@settings(max_examples=30)
@given(opt=st.sampled_from(ALL), values=st.lists(finite, min_size=3, max_size=3))
def test_float32_in_float32_out(opt, values):
    x = np.array(values, dtype=np.float32)
    g = np.array(values[::-1], dtype=np.float32) + np.float32(0.5)
    state = opt.init(x)
    for _ in range(3):
        x, state = opt.step(x, g, state)
    assert x.dtype == np.float32
    for f in state[1:]:
        if isinstance(f, np.ndarray):
            assert f.dtype == np.float32
