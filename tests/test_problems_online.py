"""The Reddi–Kale–Kumar (2018) counterexamples: Adam drifts to +1, AMSGrad reaches −1."""

import numpy as np
import pytest

import adamlab
from adamlab import schedules
from adamlab.problems import PROBLEMS, OnlineLinear, get_problem, reddi_section5, reddi_theorem1


def run(problem, opt, steps, seed=0):
    """Project after every step, as online learning on [−1, 1] requires; return all iterates."""
    oracle = problem.oracle(seed)
    x = problem.x0
    state = opt.init(x)
    xs = []
    for t in range(1, steps + 1):
        _, g = oracle(x, t)
        x, state = opt.step(x, g, state)
        x = problem.project(x)
        xs.append(float(x[0]))
    return np.array(xs)


def test_theorem1_gradient_schedule_and_reported_loss():
    p = PROBLEMS["reddi-thm1"]
    oracle = p.oracle(0)
    x = np.array([0.4])
    slopes = [float(oracle(x, t)[1][0]) for t in range(1, 8)]
    assert slopes == [3.0, -1.0, -1.0, 3.0, -1.0, -1.0, 3.0]
    losses = [float(oracle(x, t)[0]) for t in range(1, 4)]
    assert float(p.loss(x)) == pytest.approx(np.mean(losses))  # average over one period
    assert p.x_star.tolist() == [-1.0] and p.f_star == pytest.approx(-1 / 3)
    assert p.project(np.array([[1.7], [-3.0], [0.2]])).ravel().tolist() == [1.0, -1.0, 0.2]
    assert p.stochastic and p.domain.tolist() == [[-1.0, 1.0]]


def test_section5_gradient_schedule():
    p = PROBLEMS["reddi-sec5"]
    oracle = p.oracle(0)
    slopes = np.array([float(oracle(np.zeros(1), t)[1][0]) for t in range(1, 204)])
    assert np.flatnonzero(slopes == 1010.0).tolist() == [0, 101, 202]
    assert np.all(slopes[(slopes != 1010.0)] == -10.0)
    assert p.f_star == pytest.approx(-10 / 101)


C = 3.0
THM1_BETAS = (0.0, 1 / (1 + C * C))


@pytest.mark.parametrize("lr", [0.1, schedules.inverse_sqrt(0.5)], ids=["constant", "1/sqrt(t)"])
def test_theorem1_adam_drifts_to_plus_one_amsgrad_reaches_minus_one(lr):
    p = reddi_theorem1(C)
    adam = run(p, adamlab.Adam(lr=lr, betas=THM1_BETAS), 600)
    ams = run(p, adamlab.Adam(lr=lr, betas=THM1_BETAS, amsgrad=True), 600)
    assert adam[-3:].mean() > 0.9  # the worst point: f's average slope is +1/3
    assert ams[-3:].mean() < -0.9  # the minimiser
    avg = lambda xs: float(np.mean(p.loss(xs[-3:, None])))  # noqa: E731
    assert avg(adam) > 0.3 and avg(ams) < -0.3


def test_section5_adam_drifts_to_plus_one_amsgrad_towards_minus_one():
    p = reddi_section5()
    lr = schedules.inverse_sqrt(1.0)
    adam = run(p, adamlab.Adam(lr=lr, betas=(0.9, 0.99)), 3030)
    ams = run(p, adamlab.Adam(lr=lr, betas=(0.9, 0.99), amsgrad=True), 3030)
    period = slice(-101, None)
    assert adam[period].mean() > 0.9
    assert ams[period].mean() < -0.7


def test_stochastic_section5_is_seeded_and_has_the_right_frequency():
    p = PROBLEMS["reddi-stochastic"]
    assert p.probability == 0.01 and p.name == "reddi-stochastic"
    slopes = lambda seed: np.array([p.oracle(seed)(np.zeros(1), t)[1][0] for t in range(1, 5001)])  # noqa: E731
    a, b = slopes(1), slopes(2)
    np.testing.assert_array_equal(a, slopes(1))
    assert not np.array_equal(a, b)
    assert set(np.unique(a)) == {1010.0, -10.0}
    assert np.mean(a == 1010.0) == pytest.approx(0.01, abs=0.004)
    assert p.f_star == pytest.approx(-(0.01 * 1010 - 0.99 * 10))


def test_online_problem_arguments_are_checked():
    with pytest.raises(ValueError, match="C > 2"):
        reddi_theorem1(2.0)
    with pytest.raises(ValueError, match="period"):
        OnlineLinear(1.0, -1.0, 0)
    assert get_problem("reddi-thm1", C=5.0).description.startswith(
        "Reddi et al. Theorem 1: f_t = 5x"
    )
