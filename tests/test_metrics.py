"""The numbers that summarise a run (adamlab.lab.metrics), each rule checked at its edges.

Written against the mutants that survived a mutmut run on ``lab/metrics.py`` (see
docs/mutation-testing.md): each test below names the rule a surviving mutant broke.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from adamlab.lab import Trajectory, compare
from adamlab.lab.metrics import (
    auc_log_suboptimality,
    compute_metrics,
    fmt_number,
    steps_to_tolerance,
    suboptimality,
)
from adamlab.problems import from_expression

NAN = math.nan


def traj(loss, *, distance=None, grad_norm=None, t=None, diverged_at=None, seed=0, x=None):
    """A recorded run, built by hand (one coordinate)."""
    loss = np.asarray(loss, float)
    n = len(loss)
    return Trajectory(
        label="hand", optimizer={}, seed=seed,
        x=np.zeros((n, 1)) if x is None else np.asarray(x, float).reshape(n, 1),
        loss=loss, grad_norm=np.ones(n) if grad_norm is None else np.asarray(grad_norm, float),
        distance=None if distance is None else np.asarray(distance, float),
        step=np.full((n, 1), NAN), step_norm=np.full(n, NAN), diagnostics={},
        diverged_at=diverged_at, t=np.arange(n) if t is None else np.asarray(t),
    )  # fmt: skip


# -- steps to tolerance -----------------------------------------------------------------------


def test_within_tolerance_is_strictly_below_it():
    """ "‖x − x*‖ < TOL": a value equal to the tolerance is not within it."""
    assert steps_to_tolerance(np.array([1.0, 0.1, 0.1]), 0.1) is None
    assert steps_to_tolerance(np.array([1.0, 0.1, 0.1]), 0.1, stay=False) is None
    assert steps_to_tolerance(np.array([1.0, 0.1, 0.0999]), 0.1) == 2


def test_a_run_inside_from_the_start_counts_from_its_first_evaluated_row():
    assert steps_to_tolerance(np.array([0.01, 0.02]), 0.1) == 0
    assert steps_to_tolerance(np.array([NAN, 0.05, 0.02]), 0.1) == 1  # row 0 not evaluated
    assert steps_to_tolerance(np.array([0.01, NAN, 0.02]), 0.1) == 0


def test_first_hitting_is_none_when_never_inside():
    assert steps_to_tolerance(np.array([5.0, 1.0]), 0.1, stay=False) is None
    assert steps_to_tolerance(np.array([5.0, 0.05, 1.0]), 0.1, stay=False) == 1


# -- suboptimality and its area -----------------------------------------------------------------


def test_suboptimality_subtracts_f_star_when_known():
    np.testing.assert_array_equal(suboptimality(np.array([3.0, 1.5]), 1.0), [2.0, 0.5])
    np.testing.assert_array_equal(suboptimality(np.array([3.0, 1.5]), None), [3.0, 1.5])


def test_the_area_uses_the_evaluated_steps_spacing():
    """Evaluated at t = 0, 10, 20 (a thinned or sparsely evaluated run): each trapezoid is
    10 steps wide, so log10 gaps 2, 1, 0 give 10·(2+1)/2 + 10·(1+0)/2 = 20."""
    loss = np.array([101.0, 11.0, 2.0])
    assert auc_log_suboptimality(loss, 1.0, t=np.array([0, 10, 20])) == pytest.approx(20.0)
    assert auc_log_suboptimality(loss, 1.0) == pytest.approx(2.0)  # unit spacing


def test_the_area_needs_a_positive_loss_without_f_star():
    assert auc_log_suboptimality(np.array([1.0, 0.0]), None) is None  # log10 0 = −∞
    assert auc_log_suboptimality(np.array([1.0, 0.0]), 0.0) == pytest.approx((0 - 16) / 2)


def test_a_single_point_has_no_area():
    assert auc_log_suboptimality(np.array([5.0]), 1.0) == 0.0


# -- compute_metrics ----------------------------------------------------------------------------


def test_best_loss_and_step_are_the_lowest_evaluated_loss():
    m = compute_metrics(traj([4.0, 1.0, 0.5, 2.0], t=[0, 5, 10, 15]), f_star=0.0, tol=0.1,
                        on="loss")  # fmt: skip
    assert (m.best_loss, m.best_step, m.final_loss) == (0.5, 10, 2.0)
    seed = compare("quadratic", ["sgd:lr=0.1"], steps=50, seed=7).metrics()[0]
    assert seed.best_step == 50 and seed.best_loss == seed.final_loss and seed.seed == 7


def test_steps_on_x_without_x_star_is_refused_with_the_reason():
    with pytest.raises(
        ValueError, match=r"^steps to tolerance on x needs x\*; use on='loss' or 'grad'$"
    ):
        compute_metrics(traj([1.0, 0.5]), f_star=None, tol=0.1, on="x")


def test_on_loss_counts_the_gap_to_f_star():
    """f* = −1: the loss must come within tol of −1, not of 0."""
    t = traj([3.0, -0.5, -0.95, -0.999])
    assert compute_metrics(t, f_star=-1.0, tol=0.1, on="loss").steps_to_tol == 2
    assert compute_metrics(t, f_star=None, tol=0.1, on="loss").steps_to_tol == 1  # f itself


def test_the_area_of_a_run_is_over_its_evaluated_steps():
    t = traj([101.0, NAN, 11.0, NAN, 2.0], t=[0, 10, 20, 30, 40])
    m = compute_metrics(t, f_star=1.0, tol=0.1, on="loss")
    assert m.auc_log_subopt == pytest.approx(20 * 1.5 + 20 * 0.5)  # widths of 20 steps
    assert compute_metrics(traj([11.0, 2.0]), f_star=1.0, tol=0.1, on="loss").auc_log_subopt == (
        pytest.approx(0.5)
    )


def test_a_diverged_run_has_no_steps_to_tolerance_and_no_area():
    """Diverged at step 2 (e.g. a refused NaN gradient: the losses stay finite): "never",
    no AUC, and it counts as diverged although it ended below its start."""
    t = traj([1.0, 0.01, 0.001], distance=[1.0, 0.01, 0.001], diverged_at=2)
    m = compute_metrics(t, f_star=0.0, tol=0.1, on="x")
    assert m.steps_to_tol is None and m.auc_log_subopt is None and m.diverged
    ok = compute_metrics(traj([1.0, 0.01, 0.001], distance=[1.0, 0.01, 0.001]), f_star=0.0,
                         tol=0.1, on="x")  # fmt: skip
    assert ok.steps_to_tol == 1 and ok.auc_log_subopt is not None and not ok.diverged


def test_ending_above_the_start_is_judged_on_the_last_evaluated_loss_and_row_0():
    assert compute_metrics(traj([10.0, 1.0, 5.0]), f_star=0.0, tol=0.1, on="loss").diverged is False
    assert compute_metrics(traj([10.0, 1.0, 11.0]), f_star=0.0, tol=0.1, on="loss").diverged
    assert (
        compute_metrics(traj([10.0, 11.0, 9.0]), f_star=0.0, tol=0.1, on="loss").diverged is False
    )
    assert compute_metrics(traj([10.0, 11.0, NAN]), f_star=0.0, tol=0.1, on="loss").diverged


def test_a_run_that_starts_outside_the_domain_has_metrics():
    """log(x) from x = −1: every loss NaN. The metrics say so instead of failing."""
    r = compare(from_expression("log(x)", x0=[-1.0]), ["sgd:lr=0.1"], steps=3)
    (m,) = r.metrics()
    assert math.isnan(m.final_loss) and m.diverged and m.steps_to_tol is None
    assert "never (diverged at step 1)" in r.table()


# -- the table's numbers ------------------------------------------------------------------------


def test_fmt_number():
    assert fmt_number(None) == "-"
    assert (fmt_number(math.inf), fmt_number(-math.inf), fmt_number(NAN)) == ("inf", "-inf", "nan")
    assert fmt_number(2.000085634861562) == "2.000086" and fmt_number(7.333e-09) == "7.333e-09"
    assert (
        fmt_number(0.0) == "0"
        and fmt_number(1e-4) == "0.0001"
        and fmt_number(12345678.9) == "1.235e+07"
    )
