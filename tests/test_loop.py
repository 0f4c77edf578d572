"""The one run loop: compare and the sweeps share its schedule, divergence rule and held-out
metrics; recording takes bounded memory at any length; long piped runs report progress."""

from __future__ import annotations

import io
import math
import sys

import numpy as np
import pytest

import adamlab
from adamlab.cli import main
from adamlab.lab import compare, diverged, eval_every, run_config
from adamlab.lab import runner as runner_module
from adamlab.problems import get_problem


def test_one_evaluation_schedule():
    assert eval_every(get_problem("rosenbrock"), 1000) == 1
    assert eval_every(get_problem("mlp-digits"), 1000) == 40  # above 64 parameters: steps // 25
    assert eval_every(get_problem("mlp-digits"), 10) == 1
    with pytest.raises(ValueError, match="eval_every must be a positive integer"):
        eval_every(get_problem("rosenbrock"), 10, 0)


def test_one_divergence_rule():
    assert diverged(1.0, 2.0, math.nan) is False
    assert diverged(3.0, 2.0, math.nan) is True  # ended above its start
    assert diverged(math.inf, 2.0, math.nan) is True
    assert diverged(1.0, 2.0, 5) is True  # went non-finite on the way
    np.testing.assert_array_equal(
        diverged([1.0, 3.0], [2.0, 2.0], [math.nan, math.nan]), [False, True]
    )


@pytest.mark.parametrize(
    ("problem", "config", "steps"),
    [("noisy-quadratic", {"lr": 0.3}, 40), ("mlp-digits", {"lr": 0.01}, 30),
     ("reddi-thm1", {"lr": 0.1, "beta1": 0.0, "beta2": 0.1}, 60)],
)  # fmt: skip
def test_compare_and_a_sweep_run_the_same_loop(problem, config, steps):
    """A configuration in compare (shape (dim,)) and alone in a sweep (shape (1, dim)): the
    same final and best loss, held-out metrics and divergence verdict, bit for bit."""
    rec = run_config("adam", config, problem, steps=steps, seed=3)
    kw = dict(config)
    betas = (kw.pop("beta1", 0.9), kw.pop("beta2", 0.999))
    opt = adamlab.Adam(**kw, betas=betas, nonfinite="propagate")
    r = compare(problem, [opt], steps=steps, seed=3)
    t = r.trajectories[0]
    m = r.metrics()[0]
    assert m.final_loss == rec["final_loss"]
    assert np.nanmin(t.loss) == rec["best_loss"] or t.loss[0] == rec["best_loss"]
    assert m.diverged == rec["diverged"]
    for k, v in t.final.items():  # the ML task's test loss and accuracies
        assert rec[k] == v
    if problem == "mlp-digits":
        assert set(t.final) == {"test_loss", "test_accuracy", "train_accuracy"}
        evaluated = np.flatnonzero(~np.isnan(t.loss))
        assert evaluated.tolist() == [0, *range(1, steps + 1)]  # 30 steps: every step


def test_sparse_evaluation_on_large_problems():
    r = compare("mlp-digits", ["adam:lr=0.01"], steps=100)
    t = r.trajectories[0]
    evaluated = np.flatnonzero(~np.isnan(t.loss)).tolist()
    assert evaluated == [0, *range(4, 101, 4)]  # every steps // 25 = 4 steps, and the last
    assert r.metrics()[0].auc_log_subopt is not None  # over the evaluated steps


def test_recording_takes_bounded_memory_at_any_length(monkeypatch):
    """Past FULL_ROWS rows the record is thinned evenly; the last step is always kept."""
    monkeypatch.setattr(runner_module, "FULL_ROWS", 50)
    r = compare("quadratic", ["sgd:lr=0.001"], steps=1001)
    t = r.trajectories[0]
    assert len(t.t) <= 2 * 50 + 2
    assert t.t[0] == 0 and t.t[-1] == 1001 and np.all(np.diff(t.t) > 0)
    stride = int(t.t[2] - t.t[1])
    assert stride > 1 and np.all(t.t[:-1] % stride == 0)
    monkeypatch.setattr(runner_module, "FULL_ROWS", 10_000)
    full = compare("quadratic", ["sgd:lr=0.001"], steps=1001).trajectories[0]
    assert len(full.t) == 1002
    np.testing.assert_array_equal(t.x, full.x[t.t])  # the kept rows are the full record's
    np.testing.assert_array_equal(t.loss, full.loss[t.t])
    assert r.metrics()[0].final_loss == float(full.loss[-1])


def test_long_piped_runs_say_how_far_they_are(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)  # not a terminal
    bar = runner_module._Progress(total=1000, every=0.0)
    for _ in range(256):
        bar.tick()
    bar.close()
    lines = err.getvalue().splitlines()
    assert lines and lines[-1].startswith("adamlab: step 256 of 1,000 (26%)")
    assert "s left" in lines[-1]


def test_repeats_on_a_1d_problem_draw_the_median_and_band(tmp_path, capsys):
    assert main(["compare", "--problem", "noisy-quadratic", "--repeats", "3",
                 "--out", str(tmp_path / "r.png")]) == 0  # fmt: skip
    from adamlab import plot

    r = compare("noisy-quadratic", ["sgd:lr=0.1", "adam:lr=0.1"], seed=[0, 1, 2])
    fig = plot.figure_for(r)
    assert set(fig.adamlab_artists) == {"paths", "loss"}
    entry = next(iter(fig.adamlab_artists["loss"].values()))
    assert "median of 3 seeds" in entry["line"].get_label()


def test_small_reprs_and_a_clean_namespace():
    r = compare("quadratic", ["adam:lr=0.1"], steps=500)
    text = repr(r.progress(r.labels[0]))
    assert len(text) < 200 and "steps 0…500" in text
    assert len(repr(r.trajectories[0])) < 200
    assert {"Any", "importlib"}.isdisjoint(dir(adamlab))


def test_sweep_help_shows_every_default(capsys):
    assert main(["sweep", "--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    for opt, default in [("--steps", "200"), ("--engine", "auto"), ("--workers", "2"),
                         ("--top", "10"), ("--value", "final_loss")]:  # fmt: skip
        assert f"{opt} " in out and f"(default: {default})" in out, opt
