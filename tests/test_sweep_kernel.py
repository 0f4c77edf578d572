"""The fused numba sweep kernel equals the reference vectorised path, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba")

import adamlab
from adamlab.kernels import sweep as ks
from adamlab.lab.sweep import LogUniform, OneMinusLogUniform, grid, sample, sweep
from adamlab.problems.analytic import Rosenbrock


def reference(lr, b1, b2, eps, steps, bias_correction=True, x0=(-1.2, 1.0)):
    """adamlab.Adam stepping (K, 2) parameters with (K, 1) hyperparameter arrays."""
    p = Rosenbrock()
    opt = adamlab.Adam(
        lr=lr[:, None], betas=(b1[:, None], b2[:, None]), eps=eps[:, None],
        bias_correction=bias_correction, nonfinite="propagate",
    )  # fmt: skip
    x = np.tile(np.asarray(x0, float), (len(lr), 1))
    s = opt.init(x)
    losses = []
    with np.errstate(all="ignore"):
        for _ in range(steps):
            x, s = opt.step(x, p.grad(x), s)
            losses.append(p.loss(x))
    return x, np.array(losses)


def hypers(K, seed=0):
    rng = np.random.default_rng(seed)
    lr = 10 ** rng.uniform(-4, 0.5, K)
    b1 = 1 - 10 ** rng.uniform(-3, 0, K)
    b2 = 1 - 10 ** rng.uniform(-6, -0.3, K)
    eps = 10 ** rng.uniform(-10, -2, K)
    b1[:4] = [0.0, 0.5, 0.9, 1e-300]  # β = 0, a power of two, the default, a denormal-ish
    return lr, b1, b2, eps


def test_bias_powers_are_numpys_bit_for_bit():
    rng = np.random.default_rng(7)
    b = np.concatenate(
        [1 - 10 ** rng.uniform(-7, 0, 3000), [0.0, 0.5, 0.25, 0.9, 0.99, 0.999, 0.9999, 1e-200]]
    )
    T = 600
    got = ks._powers(b, T)
    want = np.stack([b**t for t in range(1, T + 1)], axis=1)
    assert np.array_equal(1 - got, 1 - want)  # what the update uses: 1 − βᵗ


@pytest.mark.parametrize("bias_correction", [True, False, (False, True), (True, False)])
def test_kernel_equals_reference_vectorised_adam(bias_correction):
    lr, b1, b2, eps = hypers(300)
    steps = 400
    x_ref, losses = reference(lr, b1, b2, eps, steps, bias_correction)
    out = ks.adam_rosenbrock(lr, b1, b2, eps, steps=steps, bias_correction=bias_correction,
                             target=1e-3)  # fmt: skip
    assert np.array_equal(out["x"], x_ref, equal_nan=True)
    assert np.array_equal(out["final_loss"], losses[-1], equal_nan=True)
    finite = np.where(np.isfinite(losses), losses, np.inf)
    f0 = Rosenbrock().loss(np.array([[-1.2, 1.0]]))[0]
    assert np.array_equal(out["best_loss"], np.minimum(finite.min(axis=0), f0))
    hit = np.array([np.argmax(c <= 1e-3) + 1 if (c <= 1e-3).any() else np.nan for c in losses.T])
    assert np.array_equal(out["steps_to_target"], hit, equal_nan=True)
    # some of these configurations oscillate, some converge: the test covers both regimes
    assert (losses[-1] < 1e-2).any() and (losses[-1] > 1).any()


def test_the_sweep_uses_the_kernel_and_gets_the_same_table():
    space = {
        "lr": LogUniform(1e-3, 1.0),
        "beta1": OneMinusLogUniform(0.0, 0.99),
        "beta2": OneMinusLogUniform(0.9, 0.9999),
        "bias_correction": [True, False],
    }
    cs = sample(space, 128, method="sobol", seed=3)
    fast = sweep("adam", cs, "rosenbrock", steps=300, target=1e-4)
    ref = sweep("adam", cs, "rosenbrock", steps=300, target=1e-4, engine="vectorized")
    assert fast.attrs["engines"] == {"rosenbrock": "numba"}
    assert ref.attrs["engines"] == {"rosenbrock": "vectorized"}
    for col in ["final_loss", "best_loss", "steps_to_target", "diverged_at", "diverged", "loss0"]:
        assert np.array_equal(fast[col].to_numpy(float), ref[col].to_numpy(float), equal_nan=True)
    assert list(fast.final_x) == list(ref.final_x)


def test_numba_engine_refuses_what_it_cannot_fuse():
    with pytest.raises(ValueError, match="engine='numba'"):
        sweep("adam", grid(lr=[0.1], amsgrad=[True]), "rosenbrock", steps=3, engine="numba")
    with pytest.raises(ValueError, match="engine='numba'"):
        sweep("sgd", grid(lr=[0.1]), "rosenbrock", steps=3, engine="numba")
    auto = sweep("adam", grid(lr=[0.1], amsgrad=[True]), "rosenbrock", steps=3)
    assert auto.attrs["engines"] == {"rosenbrock": "vectorized"}
