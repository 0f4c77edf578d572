"""The fused numba sweep kernel equals the reference vectorised path, bit for bit."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import adamlab
from adamlab.kernels import sweep as ks
from adamlab.lab.sweep import LogUniform, OneMinusLogUniform, grid, sample, sweep
from adamlab.optim.powers import power
from adamlab.problems.analytic import Rosenbrock

pytestmark = pytest.mark.exact


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


def test_bias_factors_are_the_cores_correctly_rounded_ones():
    """The kernel's 1 − βᵗ is 1 − ``adamlab.optim.powers.power(β, t)`` (βᵗ correctly rounded).
    Its rounding rule gives up only on a real tie: 0.75³⁴ = 3³⁴/4³⁴ and 3³⁴ has 54 bits, so it
    lies exactly halfway between two doubles (the core resolves it with exact integers)."""
    rng = np.random.default_rng(7)
    b = np.concatenate(
        [
            1 - 10 ** rng.uniform(-7, 0, 1500),  # β near 1 (the common case for β2)
            10 ** rng.uniform(-3, 0, 300),  # small β: βᵗ tiny after a few steps
            [0.0, 0.5, 0.25, 0.125, 0.75, 0.9, 0.99, 0.999, 0.9999, 1e-200, 2.0**-30],
        ]
    )
    T = 600
    got, certain = ks._bias_factors(b, T, 1.0)
    unsure = {(float(b[i]), int(t) + 1) for i, t in zip(*np.nonzero(~certain), strict=True)}
    assert unsure == {(0.75, 34)}
    want = np.stack([1 - power(b, t) for t in range(1, T + 1)], axis=1)
    assert np.array_equal(got[certain], want[certain])


def test_the_kernel_flags_what_it_cannot_round_and_is_right_elsewhere():
    """With the error bound widened 2³⁶-fold most cases become "unsure": the kernel says so
    (never a wrong value claimed certain), and the sweep reruns those configurations on the
    reference path, so its table is still the vectorised one."""
    rng = np.random.default_rng(3)
    b = 1 - 10 ** rng.uniform(-6, 0, 400)
    got, certain = ks._bias_factors(b, 200, 2.0**36)
    assert 0.2 < certain.mean() < 0.9
    want = np.stack([1 - power(b, t) for t in range(1, 201)], axis=1)
    assert np.array_equal(got[certain], want[certain])


def test_unsure_configurations_are_rerun_on_the_reference_path(monkeypatch):
    import functools

    cs = sample({"lr": LogUniform(1e-3, 1.0), "beta2": OneMinusLogUniform(0.9, 0.9999)}, 64,
                method="halton", seed=1)  # fmt: skip
    ref = sweep("adam", cs, "rosenbrock", steps=120, target=1e-4, engine="vectorized")
    wide = functools.partial(ks.adam_surface, _margin_scale=2.0**24)
    monkeypatch.setattr(ks, "adam_surface", wide)
    exact = wide("rosenbrock", (1.0, 100.0), [c["lr"] for c in cs], 0.9,
                 [c["beta2"] for c in cs], steps=120, x0=(-1.2, 1.0))["exact"]  # fmt: skip
    assert 0 < exact.sum() < len(cs)  # some rows come from the kernel, some are rerun
    fast = sweep("adam", cs, "rosenbrock", steps=120, target=1e-4, engine="numba")
    for col in ["final_loss", "best_loss", "steps_to_target", "diverged_at", "diverged"]:
        assert np.array_equal(fast[col].to_numpy(float), ref[col].to_numpy(float), equal_nan=True)
    assert list(fast.final_x) == list(ref.final_x)


@pytest.mark.parametrize("bias_correction", [True, False, (False, True), (True, False)])
def test_kernel_equals_reference_vectorised_adam(bias_correction):
    lr, b1, b2, eps = hypers(300)
    steps = 400
    x_ref, losses = reference(lr, b1, b2, eps, steps, bias_correction)
    out = ks.adam_rosenbrock(lr, b1, b2, eps, steps=steps, bias_correction=bias_correction,
                             tol=1e-3)  # fmt: skip
    assert np.array_equal(out["x"], x_ref, equal_nan=True)
    assert np.array_equal(out["f"], losses[-1], equal_nan=True)
    finite = np.where(np.isfinite(losses), losses, np.inf)
    f0 = Rosenbrock().loss(np.array([[-1.2, 1.0]]))[0]
    assert np.array_equal(out["best"], np.minimum(finite.min(axis=0), f0))
    hit = np.array([np.argmax(c <= 1e-3) + 1 if (c <= 1e-3).any() else np.nan for c in losses.T])
    assert np.array_equal(out["first_within"], hit, equal_nan=True)
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


def test_tracking_records_the_first_non_finite_loss():
    """A start whose loss overflows: diverged_at, best loss and hits as the reference."""
    lr0, b1, b2, eps = hypers(64, seed=5)
    huge = 10 ** np.random.default_rng(6).uniform(70, 80, 64)  # x⁴ overflows after step 1, or not
    for lr, x0 in [(lr0, (1e200, 1e200)), (lr0, (0.999, 0.998)), (huge, (-1.2, 1.0))]:
        x_ref, losses = reference(lr, b1, b2, eps, 30, x0=x0)
        out = ks.adam_rosenbrock(lr, b1, b2, eps, steps=30, x0=x0, tol=1e-3)
        assert np.array_equal(out["x"], x_ref, equal_nan=True)
        dead = np.array(
            [
                np.argmax(~np.isfinite(c)) + 1 if (~np.isfinite(c)).any() else np.nan
                for c in losses.T
            ]
        )
        assert np.array_equal(out["first_nonfinite"], dead, equal_nan=True), x0
        with np.errstate(all="ignore"):
            f0 = Rosenbrock().loss(np.array([x0], float))[0]
        finite = np.where(np.isfinite(losses), losses, np.inf)
        assert np.array_equal(out["best"], np.minimum(finite.min(axis=0), f0))
        ok = np.isfinite(losses) & (losses <= 1e-3) & (np.cumsum(~np.isfinite(losses), 0) == 0)
        hit = np.array([np.argmax(c) + 1 if c.any() else np.nan for c in ok.T])
        if f0 <= 1e-3:
            hit[:] = 0
        assert np.array_equal(out["first_within"], hit, equal_nan=True), x0
        if lr is huge:
            assert 0 < np.isnan(out["first_nonfinite"]).sum() < len(lr)


def test_the_columnar_table_equals_the_per_record_one(tmp_path):
    """Without ``out`` the numba sweep builds its table from the kernel's columns; with
    ``out`` (records to store) from one dict per run. Same rows, values, dtypes, attrs."""
    cases = [
        dict(configs=grid(lr=[0.1, 1e-3, 1], beta2=[0.9, 0.999]), seeds=[2, 0, 2]),
        dict(configs=grid(lr=[0.1, 0.01], bias_correction=[True, False], beta1=[0.0, 0.9])),
        dict(configs=[{"lr": 0.1}, {"lr": 2}], fixed={"betas": (0.5, 0.9)}, target=1e-4),
        dict(configs=grid(lr=[0.3, 0.03]), problems=["rosenbrock", Rosenbrock(a=2.0)]),
        dict(configs=grid(lr=[0.1, 0.1, 0.3])),  # a repeated configuration: one key
    ]
    for i, kw in enumerate(cases):
        problems = kw.pop("problems", "rosenbrock")
        configs = kw.pop("configs")
        fast = sweep("adam", configs, problems, steps=40, engine="numba", **kw)
        slow = sweep(
            "adam", configs, problems, steps=40, engine="numba", out=tmp_path / str(i), **kw
        )
        pd.testing.assert_frame_equal(fast, slow, check_exact=True)
        written = slow.attrs.pop("written")
        assert list(written) == [str(tmp_path / str(i) / "sweep.parquet")]
        assert {**fast.attrs, "seconds": 0} == {**slow.attrs, "seconds": 0}
