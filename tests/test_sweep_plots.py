"""Sweep figures render headless and draw what the table says."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import math
import statistics

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from adamlab.lab.sweep import grid, grid_summary, performance_profile, sweep
from adamlab.plot.sweep import fmt_value, plot_heatmap, plot_performance_profile, plot_sensitivity


@pytest.fixture(scope="module")
def sgd_table():
    """SGD on a noisy Rosenbrock over 3 seeds: the seeds disagree, so a median over them is
    not their mean (with 2 seeds, or a deterministic problem, it would be)."""
    cf = grid(lr=list(np.logspace(-5, -1, 9)), momentum=[0.0, 0.9])
    problem = "rosenbrock:noise=gaussian,sigma=0.5"
    return sweep("sgd", cf, problem, steps=300, target=1e-3, seeds=3)


def by_hand(table, value):
    """The README's heatmap, computed row by row without the library: per (momentum, lr)
    cell, the median over seeds of the finite values, and the fraction of runs diverged."""
    cells: dict = {}
    for row in table.itertuples():
        cells.setdefault((row.momentum, row.lr), []).append(row)
    med, frac = {}, {}
    for key, rows in cells.items():
        finite = [getattr(r, value) for r in rows if math.isfinite(getattr(r, value))]
        med[key] = statistics.median(finite) if finite else math.nan
        frac[key] = sum(bool(r.diverged) for r in rows) / len(rows)
    return med, frac


def test_heatmap_values_are_medians_over_seeds(sgd_table):
    fig = Figure()
    d = plot_heatmap(fig.subplots(), sgd_table, "lr", "momentum", "final_loss")
    med, frac = by_hand(sgd_table, "final_loss")
    xs, ys = list(d["xs"]), list(d["ys"])
    assert len(med) == len(xs) * len(ys) == 18
    differs = 0
    for (mom, lr), want in med.items():
        got = d["values"][ys.index(mom), xs.index(lr)]
        assert got == want or (math.isnan(got) and math.isnan(want)), (mom, lr)
        rows = sgd_table[(sgd_table.lr == lr) & (sgd_table.momentum == mom)].final_loss
        finite = rows[np.isfinite(rows)]
        differs += len(finite) == 3 and want != finite.mean()
    assert differs >= 5  # where median and mean differ, the median was drawn
    _, _, vals, div = grid_summary(sgd_table, "lr", "momentum", "final_loss")  # its default too
    np.testing.assert_array_equal(vals, d["values"])
    for (mom, lr), want in frac.items():
        assert div[ys.index(mom), xs.index(lr)] == want
    assert d["colorbar"].ax.get_ylabel() == "final loss (median over seeds)"


def test_heatmap_hatches_exactly_the_diverged_cells(sgd_table, tmp_path):
    fig = Figure(figsize=(6, 4), layout="constrained")
    ax = fig.subplots()
    d = plot_heatmap(ax, sgd_table, "lr", "momentum", "final_loss")
    _xs, _ys, vals, div = grid_summary(sgd_table, "lr", "momentum", "final_loss")
    assert vals.shape == (2, 9) and d["values"].shape == (2, 9)
    assert len(d["diverged"]) == int((div >= 0.5).sum()) > 0  # the edge is there and drawn
    assert (div == 0).any()  # and so is the stable side
    for r in d["diverged"]:
        assert r.get_hatch() == "xxx"
    assert d["mesh"].get_array().mask.sum() == int((div >= 0.5).sum())
    assert [t.get_text() for t in ax.get_xticklabels()][:2] == ["1e-5", "3.2e-5"]
    assert d["legend"] is not None and "diverged" in d["legend"].get_texts()[0].get_text()
    fig.savefig(tmp_path / "heat.png")
    assert (tmp_path / "heat.png").stat().st_size > 5000


def test_heatmap_marks_cells_that_never_reach_the_target(sgd_table):
    fig = Figure()
    ax = fig.subplots()
    d = plot_heatmap(ax, sgd_table, "lr", "momentum", "steps_to_target", log=False)
    _, _, vals, div = grid_summary(sgd_table, "lr", "momentum", "steps_to_target")
    assert len(d["missing"]) == int((np.isnan(vals) & (div < 0.5)).sum()) > 0
    assert d["legend"].get_texts()[-1].get_text() == "target never reached"


def test_sensitivity_draws_a_median_and_a_band_per_group(sgd_table):
    fig = Figure()
    ax = fig.subplots()
    d = plot_sensitivity(ax, sgd_table, "lr", "final_loss", by="momentum")
    names = {"momentum μ = 0.0", "momentum μ = 0.9"}  # the axes' symbol, not "momentum"
    assert set(d["lines"]) == names
    for _name, line in d["lines"].items():
        assert len(line.get_xdata()) == 9
        assert np.all(line.get_ydata() <= d["ceiling"])
    assert set(d["bands"]) == names
    for mom, name in ((0.0, "momentum μ = 0.0"), (0.9, "momentum μ = 0.9")):  # medians, by hand
        rows = sgd_table[sgd_table.momentum == mom]
        want = [
            min(statistics.median(v if math.isfinite(v) else math.inf for v in g.final_loss),
                d["ceiling"])
            for _, g in rows.groupby("lr")
        ]  # fmt: skip
        assert d["lines"][name].get_ydata().tolist() == want
    ceiling = [ln for ln in ax.get_lines() if ln.get_label().startswith("diverged runs")]
    assert ceiling and ceiling[0].get_ydata()[0] == d["ceiling"]  # the red line says what it is
    assert ceiling[0].get_label() == "diverged runs (×), drawn at 10 × the initial loss"
    assert d["diverged"]  # the unstable learning rates are marked at the ceiling
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="band"):
        plot_sensitivity(ax, sgd_table, band="std")


def test_performance_profile_math_on_a_known_table():
    t = pd.DataFrame(
        {
            "problem": ["a", "a", "b", "b", "c", "c"],
            "seed": 0,
            "optimizer": ["x", "y"] * 3,
            "steps_to_target": [10, 20, 40, 10, np.nan, 30],
        }
    )
    _taus, rho = performance_profile(t, taus=np.array([1, 2, 4, 8]))
    # x: best on a (r=1), 4x on b, fails on c; y: 2x on a, best on b and c
    assert rho["x"].tolist() == [1 / 3, 1 / 3, 2 / 3, 2 / 3]
    assert rho["y"].tolist() == [2 / 3, 1.0, 1.0, 1.0]
    fig = Figure()
    d = plot_performance_profile(fig.subplots(), t)
    assert set(d["lines"]) == {"x", "y"}
    assert np.all(np.diff(d["rho"]["x"]) >= 0)


def test_tick_labels_are_short_and_exact_enough():
    assert fmt_value(0.9999) == "0.9999"
    assert fmt_value(0.0177827941) == "0.0178"
    assert fmt_value(1e-4) == "1e-4"
    assert fmt_value(True) == "on"
