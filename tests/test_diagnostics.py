"""What an optimizer reports about itself: m̂, v̂, bias factors, effective step."""

import math

import numpy as np
import pytest
from oracles import UNCORRECTED_FIRST_STEP, nadam_torch

import adamlab


def adam_by_hand(grads, lr, b1, b2, eps, correct=True):
    m = v = 0.0
    for g in grads:
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
    t = len(grads)
    c1, c2 = (1 - b1**t, 1 - b2**t) if correct else (1.0, 1.0)
    return {
        "m_hat": m / c1,
        "v_hat": v / c2,
        "bias1": 1 - b1**t,
        "bias2": 1 - b2**t,
        "effective_lr": lr / (math.sqrt(v / c2) + eps),
    }


@pytest.mark.parametrize("correct", [True, False])
def test_adam_diagnostics_match_the_equations(correct):
    grads = [3.0, -1.0, 2.5, 0.5, 4.0]
    opt = adamlab.Adam(lr=0.1, betas=(0.8, 0.99), eps=1e-3, bias_correction=correct)
    x = np.array([0.0])
    state = opt.init(x)
    for g in grads:
        x, state = opt.step(x, np.array([g]), state)
    d = opt.diagnostics(state)
    ref = adam_by_hand(grads, 0.1, 0.8, 0.99, 1e-3, correct)
    for key, value in ref.items():
        got = d[key] if isinstance(d[key], float) else float(d[key][0])
        assert math.isclose(got, value, rel_tol=1e-13), key


def test_the_effective_step_times_m_hat_is_the_step_taken():
    rng = np.random.default_rng(5)
    for opt in (
        adamlab.Adam(lr=0.05),
        adamlab.Adam(lr=0.05, eps_placement="before_correction", eps=1e-2),
        adamlab.Adam(lr=0.05, amsgrad=True),
        adamlab.Adam(lr=0.05, amsgrad=True, amsgrad_variant="corrected", eps_root=1e-6),
        adamlab.Adamax(lr=0.05),
        adamlab.NAdam(lr=0.05, momentum_decay=math.inf),
        adamlab.RAdam(lr=0.05),
    ):
        x = rng.normal(size=4)
        state = opt.init(x)
        for _ in range(8):
            g = rng.normal(size=4)
            x1, state = opt.step(x, g, state)
            d = opt.diagnostics(state)
            if isinstance(opt, adamlab.NAdam):  # its step also has a gradient term
                t, b1 = state.t, opt.betas[0]
                mu, mu_next, prod = d["mu"], opt.mu(t + 1, opt.hypers(t + 1)), state.mu_product
                m = d["m_hat"] * (1 - b1**t)
                step = (1 - mu) / (1 - prod) * g + mu_next / (1 - prod * mu_next) * m
                np.testing.assert_allclose(x - x1, d["effective_lr"] * step, rtol=1e-10)
            else:
                np.testing.assert_allclose(x - x1, d["effective_lr"] * d["m_hat"], rtol=1e-10)
            x = x1


@pytest.mark.parametrize("psi", [4e-3, 0.1, math.inf])
def test_nadam_diagnostics_match_the_equations(psi):
    """μₜ, m̂ₜ = mₜ/(1 − β₁ᵗ), v̂ₜ, the bias factors and α/(√v̂ₜ + ε), step by step, against
    NAdam written out by hand (tests/oracles.py), and the iterate itself."""
    grads = [3.0, -1.0, 2.5, 0.5, 4.0, -2.0]
    opt = adamlab.NAdam(lr=0.1, betas=(0.8, 0.99), eps=1e-3, momentum_decay=psi)
    want = nadam_torch(grads, x0=0.0, lr=0.1, beta1=0.8, beta2=0.99, eps=1e-3, psi=psi)
    x = np.array([0.0])
    state = opt.init(x)
    for g, ref in zip(grads, want, strict=True):
        x, state = opt.step(x, np.array([g]), state)
        d = opt.diagnostics(state)
        assert float(x[0]) == pytest.approx(ref["x"], rel=1e-13)
        for key in ("mu", "m_hat", "v_hat", "effective_lr", "bias1", "bias2"):
            got = d[key] if isinstance(d[key], float) else float(d[key][0])
            assert math.isclose(got, ref[key], rel_tol=1e-13), (key, state.t)


def test_the_uncorrected_first_step_is_visible_in_the_diagnostics():
    opt = adamlab.Adam(lr=1e-3, bias_correction=False)
    x = np.array([1.0])
    x1, state = opt.step(x, np.array([2.0]), opt.init(x))
    d = opt.diagnostics(state)
    assert d["bias1"] == pytest.approx(0.1) and d["bias2"] == pytest.approx(1e-3)
    assert d["m_hat"][0] == pytest.approx(0.2)  # uncorrected: m̂ = m = 0.1·g
    assert d["effective_lr"][0] == pytest.approx(1e-3 / math.sqrt(1e-3 * 4), rel=1e-6)
    # ε shifts it by ε/(√(1 − β₂)·|g|) ≈ 1.6e-7 relative
    assert (x - x1)[0] / 1e-3 == pytest.approx(UNCORRECTED_FIRST_STEP, rel=1e-6)


def test_sgd_rmsprop_adagrad_report_their_effective_step():
    x, g = np.array([1.0, 2.0]), np.array([3.0, -4.0])
    sgd = adamlab.SGD(lr=0.1, momentum=0.9)
    _, s = sgd.step(x, g, sgd.init(x))
    assert sgd.diagnostics(s) == {"effective_lr": 0.1}
    rms = adamlab.RMSprop(lr=0.1, alpha=0.9)
    _, s = rms.step(x, g, rms.init(x))
    np.testing.assert_allclose(
        rms.diagnostics(s)["effective_lr"], 0.1 / (np.sqrt(0.1 * g * g) + 1e-8)
    )
    ada = adamlab.Adagrad(lr=0.1, lr_decay=0.5)
    _, s = ada.step(x, g, ada.init(x))
    _, s = ada.step(x, g, s)
    np.testing.assert_allclose(
        ada.diagnostics(s)["effective_lr"], (0.1 / 1.5) / (np.sqrt(2 * g * g) + 1e-10)
    )


def test_diagnostics_have_the_structure_of_the_parameters():
    opt = adamlab.Adam()
    params = {"w": np.ones((2, 3)), "b": np.ones(3)}
    _, state = opt.step(params, params, opt.init(params))
    d = opt.diagnostics(state)
    assert set(d["m_hat"]) == {"w", "b"} and d["v_hat"]["w"].shape == (2, 3)
    assert isinstance(d["bias1"], float)


def test_diagnostics_before_any_step_are_refused():
    opt = adamlab.Adam()
    with pytest.raises(ValueError, match="call step"):
        opt.diagnostics(opt.init(np.ones(2)))
