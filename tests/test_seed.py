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
    _, adam = seed_lesson(steps=1)
    assert math.isclose(adam[1], 8.0 - 0.1 * 12 / (12 + 1e-8), rel_tol=0, abs_tol=1e-15)


def test_the_seed_story_sgd_converges_geometrically_adam_walks_at_about_alpha():
    sgd, adam = seed_lesson()
    # SGD on (x-2)^2 with lr 0.1 contracts the error by 0.8 per step (up to the rounding of
    # x - 2 near 2, where the error is ~1e-4 and x carries ~4e-16 absolute)
    assert all(math.isclose(b - 2, 0.8 * (a - 2), rel_tol=1e-9) for a, b in itertools.pairwise(sgd))
    # Adam moves at most ~alpha per step while the gradient keeps its sign
    steps = np.abs(np.diff(adam))
    assert steps.max() <= 0.1 + 1e-12
    assert adam[-1] > 2  # 50 steps of about 0.1 do not cover the distance 6
