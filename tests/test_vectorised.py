"""K configurations in one vectorised pass equal K runs of one configuration each."""

import math

import numpy as np
import pytest

import adamlab

pytestmark = pytest.mark.exact

K, D, STEPS = 5, 3, 60


def grads_for(x, t):
    return np.cos(x + t) * (1 + x * x)  # a deterministic gradient field, different per step


def run(opt, x, steps=STEPS):
    state = opt.init(x)
    for t in range(1, steps + 1):
        x, state = opt.step(x, grads_for(x, t), state)
    return x, state


lrs = np.array([1e-3, 1e-2, 0.05, 0.1, 0.3])
b1s = np.array([0.0, 0.5, 0.8, 0.9, 0.95])
b2s = np.array([0.9, 0.99, 0.999, 0.9999, 0.95])
moms = np.array([0.0, 0.5, 0.9, 0.95, 0.99])

CASES = [
    (adamlab.Adam, dict(lr=lrs, betas=(b1s, b2s), eps=np.geomspace(1e-8, 1e-4, K))),
    (adamlab.Adam, dict(lr=lrs, betas=(0.9, b2s), amsgrad=True, weight_decay=np.full(K, 0.01))),
    (
        adamlab.Adam,
        dict(lr=lrs, betas=(b1s, b2s), bias_correction=False, eps_placement="before_correction"),
    ),
    (adamlab.AdamW, dict(lr=lrs, weight_decay=np.linspace(0, 0.1, K))),
    (adamlab.SGD, dict(lr=lrs / 10, momentum=moms, weight_decay=np.full(K, 0.01))),
    (
        adamlab.RMSprop,
        dict(lr=lrs / 10, alpha=np.array([0.9, 0.95, 0.99, 0.999, 0.5]), centered=True),
    ),
    (adamlab.Adagrad, dict(lr=lrs, eps=np.geomspace(1e-10, 1e-6, K))),
    (adamlab.Adamax, dict(lr=lrs, betas=(b1s, b2s))),
    (adamlab.NAdam, dict(lr=lrs, betas=(b1s, b2s))),
    (adamlab.RAdam, dict(lr=lrs, betas=(b1s, np.array([0.9, 0.99, 0.999, 0.5, 0.8])))),
]


def column(v):
    return v[:, None] if isinstance(v, np.ndarray) else v


def row(v, k):
    return float(v[k]) if isinstance(v, np.ndarray) else v


@pytest.mark.parametrize(("cls", "kwargs"), CASES, ids=[c.__name__ for c, _ in CASES])
def test_one_pass_over_k_configurations_equals_k_separate_runs(cls, kwargs):
    x0 = np.random.default_rng(3).normal(size=(K, D))
    vec_kwargs = {
        k: tuple(column(b) for b in v) if k == "betas" else column(v) for k, v in kwargs.items()
    }
    together, _ = run(cls(**vec_kwargs), x0)
    for k in range(K):
        one_kwargs = {
            key: tuple(row(b, k) for b in v) if key == "betas" else row(v, k)
            for key, v in kwargs.items()
        }
        alone, _ = run(cls(**one_kwargs), x0[k])
        np.testing.assert_array_equal(together[k], alone)


def test_vectorised_float32_keeps_float32():
    x = np.ones((K, D), dtype=np.float32)
    x1, state = run(adamlab.Adam(lr=lrs[:, None], betas=(b1s[:, None], 0.999)), x, steps=3)
    assert x1.dtype == np.float32 and state.v.dtype == np.float32


def test_schedules_drive_the_step_size():
    sched = adamlab.schedules.exponential_decay(0.1, gamma=0.5)
    x = np.array([1.0])
    opt = adamlab.SGD(lr=sched)
    state = opt.init(x)
    for t in range(1, 5):
        x1, state = opt.step(x, np.array([1.0]), state)
        assert math.isclose(x[0] - x1[0], 0.1 * 0.5 ** (t - 1))
        x = x1


def test_betas_schedule_uses_the_current_beta_in_the_bias_correction_like_pytorch():
    opt = adamlab.Adam(lr=0.1, betas=(lambda t: 0.9 if t == 1 else 0.5, 0.999))
    x = np.array([0.0])
    state = opt.init(x)
    x, state = opt.step(x, np.array([1.0]), state)
    x, state = opt.step(x, np.array([1.0]), state)
    m = 0.5 * 0.1 + 0.5 * 1.0  # m₁ = 0.1 (β₁ = 0.9), then β₁ = 0.5
    assert math.isclose(float(state.m[0]), m)
    assert math.isclose(opt.diagnostics(state)["bias1"], 1 - 0.5**2)


def test_betas_whose_square_rounds_differently_under_pow_still_match_bit_for_bit():
    """Python's float ** 2 is libm pow; NumPy's array ** 2 is a product. The core squares on
    both sides, so a β where the two differ in the last bit still gives identical rows."""
    beta2 = 0.9932237927262006  # here (glibc), beta2 * beta2 != beta2 ** 2 in the last bit
    x0 = np.random.default_rng(4).normal(size=(2, D))
    together, _ = run(adamlab.Adam(lr=0.05, betas=(0.9, np.array([[beta2], [0.999]]))), x0)
    alone, _ = run(adamlab.Adam(lr=0.05, betas=(0.9, beta2)), x0[0])
    np.testing.assert_array_equal(together[0], alone)
