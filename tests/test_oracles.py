"""The switches no other library has, against the papers' equations written out by hand.

``eps_placement="before_correction"`` (§2 of Kingma & Ba), ``bias_correction=(True, False)``
and ``(False, True)``, and AdaMax without correction are checked here against
:mod:`oracles`, a transcription of the equations in plain Python floats — not against another
path of adamlab. Tolerance: 1e-13 relative per iterate, because the transcription rounds
differently (``**`` is libm's ``pow``, adamlab's βᵗ is correctly rounded; the operations are
grouped as the paper writes them). Each case is chosen so that the switch moves the iterates
by far more than that (checked: the switch's alternative is at least 1e-6 away).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from oracles import adam_paper, adamax_paper

import adamlab

RTOL = 1e-13


def gradients(seed: int, n: int = 60) -> list[float]:
    """Small gradients of mixed sign and size: where ε and the corrections matter most."""
    rng = np.random.default_rng(seed)
    return [float(v) for v in rng.normal(size=n) * 10.0 ** rng.uniform(-4, 0, size=n)]


def run(opt, grads, x0=1.0) -> list[float]:
    x = np.array([x0])
    state = opt.init(x)
    path = [x0]
    for g in grads:
        x, state = opt.step(x, np.array([g]), state)
        path.append(float(x[0]))
    return path


def close(a, b, rtol=RTOL) -> bool:
    return all(math.isclose(p, q, rel_tol=rtol, abs_tol=1e-300) for p, q in zip(a, b, strict=True))


def far(a, b) -> bool:
    return max(abs(p - q) for p, q in zip(a, b, strict=True)) > 1e-6


HYPERS = [
    dict(lr=0.01, beta1=0.9, beta2=0.999, eps=1e-3),
    dict(lr=0.1, beta1=0.5, beta2=0.99, eps=1e-4),
    dict(lr=0.003, beta1=0.0, beta2=0.9, eps=1e-2),
]


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("h", HYPERS, ids=["defaults-ish", "short-memory", "no-momentum"])
def test_eps_before_correction_is_section_2_of_the_paper(h, seed):
    grads = gradients(seed)
    opt = adamlab.Adam(lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"],
                       eps_placement="before_correction")  # fmt: skip
    want = adam_paper(grads, x0=1.0, section2=True, **h)
    assert close(run(opt, grads), want)
    assert far(want, adam_paper(grads, x0=1.0, **h))  # ε̂ placement really matters here


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("h", HYPERS, ids=["defaults-ish", "short-memory", "no-momentum"])
@pytest.mark.parametrize("correct", [(True, False), (False, True), (False, False)])
def test_each_bias_correction_switch_is_algorithm_1_without_that_division(h, seed, correct):
    grads = gradients(seed)
    opt = adamlab.Adam(lr=h["lr"], betas=(h["beta1"], h["beta2"]), eps=h["eps"],
                       bias_correction=correct)  # fmt: skip
    want = adam_paper(grads, x0=1.0, correct=correct, **h)
    assert close(run(opt, grads), want)
    if h["beta1"] > 0 or not correct[1]:  # with β₁ = 0 there is no first-moment bias
        assert far(want, adam_paper(grads, x0=1.0, **h))


@pytest.mark.parametrize("eps", [0.0, 1e-3])
@pytest.mark.parametrize("correct", [True, False])
def test_adamax_is_algorithm_2_with_and_without_correction(eps, correct):
    grads = [g + math.copysign(1e-3, g) for g in gradients(3)]  # never 0: u > 0 with ε = 0
    opt = adamlab.Adamax(lr=0.01, betas=(0.9, 0.999), eps=eps, bias_correction=correct)
    want = adamax_paper(grads, x0=1.0, lr=0.01, beta1=0.9, beta2=0.999, eps=eps, correct=correct)
    assert close(run(opt, grads), want)
    other = adamax_paper(grads, x0=1.0, lr=0.01, beta1=0.9, beta2=0.999, eps=eps,
                         correct=not correct)  # fmt: skip
    assert far(want, other)


def test_adamax_without_correction_first_step_is_alpha_times_one_minus_beta1():
    """Algorithm 2 by hand at t = 1: m₁ = (1 − β₁)g, u₁ = |g|, so the step is α(1 − β₁)·sign g
    without correction and α·sign g with it."""
    for correct, factor in ((False, 0.1), (True, 1.0)):
        opt = adamlab.Adamax(lr=0.5, eps=0.0, bias_correction=correct)
        x1, _ = opt.step(np.array([2.0]), np.array([-4.0]), opt.init(np.array([2.0])))
        assert x1[0] == pytest.approx(2.0 + 0.5 * factor, rel=1e-15)
