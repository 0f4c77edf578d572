"""The seed demonstration, iterate by iterate, against the paper's equations written out."""

import itertools
import math

import numpy as np
import pytest
from oracles import seed_lesson

import adamlab

pytestmark = pytest.mark.exact


def run(opt, steps=50):
    x = np.array(8.0)
    state = opt.init(x)
    path = [float(x)]
    for _ in range(steps):
        x, state = opt.step(x, 2 * (x - 2), state)
        path.append(float(x))
    return path


def test_every_iterate_equals_the_hand_written_equations_in_float64():
    sgd, adam = seed_lesson()
    assert run(adamlab.SGD(lr=0.1)) == sgd
    assert run(adamlab.Adam(lr=0.1, betas=(0.9, 0.999), eps=1e-8)) == adam


def test_first_adam_step_is_alpha_in_the_direction_of_minus_the_gradient():
    """adamlab's first step from 8, bit for bit: m̂₁ = g, v̂₁ = g², so x₁ = 8 − 0.1·12/(12 + ε)."""
    x1 = run(adamlab.Adam(lr=0.1, betas=(0.9, 0.999), eps=1e-8), steps=1)[1]
    assert x1 == 8.0 - 0.1 * 12 / (12 + 1e-8)
    assert x1 == seed_lesson(steps=1)[1][1]


def test_the_seed_story_sgd_converges_geometrically_adam_walks_at_about_alpha():
    sgd = run(adamlab.SGD(lr=0.1))
    adam = run(adamlab.Adam(lr=0.1))
    # SGD on (x-2)^2 with lr 0.1 contracts the error by 0.8 per step (up to the rounding of
    # x - 2 near 2, where the error is ~1e-4 and x carries ~4e-16 absolute)
    assert all(math.isclose(b - 2, 0.8 * (a - 2), rel_tol=1e-9) for a, b in itertools.pairwise(sgd))
    # within 1e-3 from step 39 on (the README's number), not before
    assert next(t for t, x in enumerate(sgd) if abs(x - 2) < 1e-3) == 39
    # Adam moves at most ~alpha per step while the gradient keeps its sign
    steps = np.abs(np.diff(adam))
    assert steps.max() <= 0.1 + 1e-12 and steps[0] == pytest.approx(0.1, abs=1e-9)
    assert adam[-1] > 2  # 50 steps of about 0.1 do not cover the distance 6
    assert round(8 - adam[-1], 1) == 4.3  # "it walks about 4.3 of the 6 units"
