"""Equal to optax where the definitions coincide (float64, jax x64, 500 steps).

Where optax defines a variant differently, the test names the difference and the adamlab
switch that reproduces optax:

* ``optax.amsgrad`` takes the maximum of the *bias-corrected* v̂ₜ; PyTorch (adamlab's default)
  the maximum of the raw vₜ, divided by the current 1 − β₂ᵗ → ``amsgrad_variant="corrected"``.
* ``optax.radam`` adds ε to √v̂ₜ; PyTorch (adamlab's default) to the uncorrected √vₜ →
  ``eps_placement="after_correction"``.
* ``optax.nadam`` uses a constant μ = β₁; PyTorch's NAdam (adamlab's default) Dozat's schedule
  μₜ = β₁(1 − ½·0.96^(tψ)) → ``momentum_decay=math.inf``.
* ``optax.adamw`` writes θ − α(u + λθ); adamlab (like PyTorch) θ(1 − αλ) − αu: equal in exact
  arithmetic, so equal here to rounding.
"""

import math

import jax
import numpy as np
import optax
import pytest

import adamlab

jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

STEPS = 500
LR = 1e-2

CASES = {
    "adam": (
        lambda: optax.adam(LR, b1=0.9, b2=0.99, eps=1e-8),
        adamlab.Adam(LR, betas=(0.9, 0.99), eps=1e-8),
    ),
    "adam-eps_root": (
        lambda: optax.adam(LR, b1=0.8, b2=0.999, eps=1e-6, eps_root=1e-4),
        adamlab.Adam(LR, betas=(0.8, 0.999), eps=1e-6, eps_root=1e-4),
    ),
    "adamw": (
        lambda: optax.adamw(LR, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.1),
        adamlab.AdamW(LR, weight_decay=0.1),
    ),
    "amsgrad": (
        lambda: optax.amsgrad(LR, b1=0.9, b2=0.999, eps=1e-8),
        adamlab.Adam(LR, amsgrad=True, amsgrad_variant="corrected"),
    ),
    "adamax": (
        lambda: optax.adamax(LR, b1=0.9, b2=0.999, eps=1e-8),
        adamlab.Adamax(LR),
    ),
    "radam": (
        lambda: optax.radam(LR, b1=0.9, b2=0.999, eps=1e-8),
        adamlab.RAdam(LR, eps_placement="after_correction"),
    ),
    "nadam": (
        lambda: optax.nadam(LR, b1=0.9, b2=0.999, eps=1e-8),
        adamlab.NAdam(LR, momentum_decay=math.inf),
    ),
}


def run_both(make_optax, ours, rng, steps=STEPS, log_scale=(-2, 1)):
    shapes = {"w": (4, 3), "b": (3,)}
    params = {k: rng.normal(size=s) for k, s in shapes.items()}
    jparams = {k: jnp.asarray(v) for k, v in params.items()}
    tx = make_optax()
    jstate = tx.init(jparams)
    state = ours.init(params)
    update = jax.jit(tx.update)
    for _ in range(steps):
        scale = 10.0 ** rng.uniform(*log_scale)
        grads = {k: scale * rng.normal(size=s) for k, s in shapes.items()}
        jgrads = {k: jnp.asarray(v) for k, v in grads.items()}
        updates, jstate = update(jgrads, jstate, jparams)
        jparams = optax.apply_updates(jparams, updates)
        params, state = ours.step(params, grads, state)
    return params, jparams


@pytest.mark.parametrize("name", CASES)
def test_equal_to_optax(name, rng):
    make_optax, ours = CASES[name]
    params, jparams = run_both(make_optax, ours, rng)
    for k in params:
        np.testing.assert_allclose(params[k], np.asarray(jparams[k]), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "pytorch_default"),
    [
        ("amsgrad", adamlab.Adam(LR, amsgrad=True)),
        ("radam", adamlab.RAdam(LR)),
        ("nadam", adamlab.NAdam(LR)),
    ],
)
def test_the_stated_differences_are_real(name, pytorch_default, rng):
    """Without the switch, the PyTorch-default variant really does differ from optax.

    (ε's placement matters where √v is comparable to ε: gradients of size ~1e-8.)"""
    make_optax, _ = CASES[name]
    log_scale = (-9, -7) if name == "radam" else (-2, 1)
    params, jparams = run_both(make_optax, pytorch_default, rng, steps=200, log_scale=log_scale)
    gap = max(np.max(np.abs(params[k] - np.asarray(jparams[k]))) for k in params)
    assert gap > 1e-6
