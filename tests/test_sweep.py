"""The sweep engine: vectorised sweeps equal individual runs; sampling; resume; fair tuning."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from adamlab.lab.sweep import (
    LogUniform,
    OneMinusLogUniform,
    Uniform,
    grid,
    halton,
    make_plan,
    record_key,
    run_config,
    sample,
    sweep,
    tune,
)
from adamlab.problems.base import Problem, Quadratic1D

METRICS = ["final_loss", "best_loss", "steps_to_target", "diverged_at"]


def same(a, b) -> bool:
    """Exact equality, NaN equal to NaN."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


class Valley(Problem):
    """A 2-D badly scaled valley with a cubic term (exercises non-trivial arithmetic)."""

    def __init__(self) -> None:
        super().__init__(
            name="valley",
            description="test valley",
            dim=2,
            x0=np.array([-1.5, 2.0]),
            domain=np.array([[-2.0, 2.0], [-1.0, 3.0]]),
            x_star=np.array([1.0, 1.0]),
            f_star=0.0,
        )

    def loss(self, x):
        a, b = x[..., 0], x[..., 1]
        return (1 - a) ** 2 + 50 * (b - a**2) ** 2

    def grad(self, x):
        a, b = x[..., 0], x[..., 1]
        return np.stack([-2 * (1 - a) - 200 * a * (b - a**2), 100 * (b - a**2)], axis=-1)


# -- sweep = individual runs -----------------------------------------------------------------


@pytest.mark.exact
@pytest.mark.parametrize("problem", [Quadratic1D(), Valley(), "noisy-quadratic"])
def test_vectorised_adam_sweep_equals_each_configuration_alone(problem):
    if isinstance(problem, str):
        from adamlab.problems import get_problem

        problem = get_problem(problem)  # paired noise: every row sees the same stream
    configs = grid(
        lr=list(np.logspace(-3, 0.5, 5)),
        beta1=[0.0, 0.9],
        beta2=[0.99, 0.9999],
        bias_correction=[True, False],
        amsgrad=[False, True],
    )
    df = sweep("adam", configs, problem, steps=60, target=1e-4, seeds=[3])
    assert len(df) == len(configs) == 80
    assert df.attrs["computed"] == 80
    for cid in range(0, 80, 3):
        alone = run_config("adam", configs[cid], problem, steps=60, target=1e-4, seed=3)
        row = df[df.config_id == cid].iloc[0]
        for m in METRICS:
            assert same(row[m], alone[m]), (cid, m, row[m], alone[m])
        assert row["final_x"] == alone["final_x"]


@pytest.mark.exact
def test_every_engine_agrees_exactly_with_the_reference_loop():
    configs = grid(lr=[0.01, 0.3, 3.0], momentum=[0.0, 0.9], nesterov=[False, True])
    configs = [c for c in configs if not (c["nesterov"] and c["momentum"] == 0)]
    ref = sweep("sgd", configs, Valley(), steps=40, engine="loop")
    vec = sweep("sgd", configs, Valley(), steps=40, engine="vectorized")
    for m in METRICS:
        assert same(ref[m], vec[m]), m
    # lr = 3 on this valley overflows: the NaN is recorded, not raised
    assert ref["diverged"].any() and np.isfinite(ref["diverged_at"]).any()


@pytest.mark.exact
def test_process_engine_matches_vectorised(tmp_path):
    configs = grid(lr=[0.05, 0.2], beta2=[0.9, 0.999])
    vec = sweep("adam", configs, Quadratic1D(), steps=30, seeds=2)
    proc = sweep(
        "adam", configs, Quadratic1D(), steps=30, seeds=2, engine="process", workers=2,
        out=tmp_path, progress=False,
    )  # fmt: skip
    key = ["config_id", "seed"]
    vec, proc = vec.sort_values(key), proc.sort_values(key)
    for m in METRICS:
        assert same(vec[m], proc[m]), m
    has_pyarrow = importlib.util.find_spec("pyarrow") is not None
    assert (tmp_path / ("sweep.parquet" if has_pyarrow else "sweep.csv")).exists()


def test_table_is_tidy_and_metrics_mean_what_they_say():
    df = sweep("adam", grid(lr=[0.5, 1e-4]), Quadratic1D(), steps=200, seeds=[3, 4], target=1e-3)
    assert list(df[["config_id", "seed"]].itertuples(index=False, name=None)) == [
        (0, 3), (0, 4), (1, 3), (1, 4),
    ]  # fmt: skip
    assert {"problem", "optimizer", "lr", "final_loss", "gap", "diverged", "key"} <= set(df)
    fast, slow = df.iloc[0], df.iloc[2]
    assert fast.steps_to_target == 36 and np.isnan(slow.steps_to_target)
    assert slow.final_loss < 36.0 and not slow.diverged
    assert df.key.is_unique and (df.problem == "quadratic").all() and (df.optimizer == "adam").all()


def test_space_with_method_and_fixed_hyperparameters():
    df = sweep(
        "adam", {"lr": LogUniform(1e-3, 1.0)}, Quadratic1D(), n=16, method="halton",
        fixed={"betas": (0.5, 0.9)}, steps=5,
    )  # fmt: skip
    assert len(df) == 16 and df.lr.between(1e-3, 1.0).all()
    assert all(tuple(b) == (0.5, 0.9) for b in df.betas)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"optimizer": "adamx"}, "unknown optimizer"),
        ({"configs": [{"learning_rate": 0.1}]}, "no hyperparameter 'learning_rate'"),
        ({"configs": [{"lr": -1.0}]}, "Invalid lr"),
        ({"configs": [{"beta2": 1.0}]}, "beta2"),
        ({"configs": [{"lr": 0.1}, {"eps": 1e-8}]}, "same keys"),
        ({"engine": "gpu"}, "Invalid engine"),
        ({"steps": 0}, "steps"),
        ({"configs": {"lr": LogUniform(1e-3, 1)}, "method": "random"}, "needs n"),
    ],
)
def test_bad_input_is_a_clear_error(kwargs, match):
    args = {"optimizer": "adam", "configs": [{"lr": 0.1}], "problems": Quadratic1D()}
    args.update(kwargs)
    with pytest.raises((ValueError, TypeError), match=match):
        sweep(args.pop("optimizer"), args.pop("configs"), args.pop("problems"), **args)


# -- sampling ----------------------------------------------------------------------------------


def test_grid_is_the_cartesian_product_last_axis_fastest():
    g = grid(lr=[1, 2, 3], beta1=[0.0, 0.9], bias_correction=[True, False])
    assert len(g) == 12
    assert g[0] == {"lr": 1, "beta1": 0.0, "bias_correction": True}
    assert g[1] == {"lr": 1, "beta1": 0.0, "bias_correction": False}
    assert g[-1] == {"lr": 3, "beta1": 0.9, "bias_correction": False}
    with pytest.raises(ValueError, match="list of values"):
        grid(lr=LogUniform(1e-3, 1))


@pytest.mark.parametrize("method", ["random", "halton", "sobol"])
def test_sample_shapes_ranges_and_reproducibility(method):
    space = {
        "lr": LogUniform(1e-4, 1.0),
        "beta2": OneMinusLogUniform(0.9, 0.9999),
        "eps": Uniform(1e-8, 1e-6),
        "bias_correction": [True, False],
    }
    a = sample(space, 64, method=method, seed=1)
    b = sample(space, 64, method=method, seed=1)
    c = sample(space, 64, method=method, seed=2)
    assert a == b and a != c
    assert len(a) == 64 and all(set(x) == set(space) for x in a)
    lr = np.array([x["lr"] for x in a])
    b2 = np.array([x["beta2"] for x in a])
    assert lr.min() >= 1e-4 and lr.max() <= 1.0
    assert b2.min() >= 0.9 and b2.max() <= 0.9999
    # log-uniform: about half the learning rates below the geometric midpoint 1e-2
    assert 20 <= (lr < 1e-2).sum() <= 44
    assert {x["bias_correction"] for x in a} == {True, False}


def test_quasi_random_fills_the_space_more_evenly_than_random():
    def worst_gap(u):  # largest empty interval in the first coordinate
        s = np.sort(np.concatenate([[0.0], u[:, 0], [1.0]]))
        return np.diff(s).max()

    h = halton(128, 3, seed=None)
    r = np.random.default_rng(0).random((128, 3))
    assert worst_gap(h) < worst_gap(r)
    assert np.allclose(halton(4, 2, seed=None)[:, 0], [0.5, 0.25, 0.75, 0.125])
    assert np.allclose(halton(3, 2, seed=None)[:, 1], [1 / 3, 2 / 3, 1 / 9])


def test_bad_spaces_are_refused():
    with pytest.raises(ValueError, match="lo > 0"):
        LogUniform(0.0, 1.0)
    with pytest.raises(ValueError, match="lo < hi"):
        Uniform(1.0, 1.0)
    with pytest.raises(ValueError, match="method"):
        sample({"lr": [0.1]}, 3, method="lhs")
    with pytest.raises(ValueError, match="positive integer"):
        sample({"lr": [0.1]}, 0)


# -- resume --------------------------------------------------------------------------------------


def records(out) -> list[dict]:
    with open(out / "records.jsonl") as fh:
        return [json.loads(line) for line in fh]


def test_resume_computes_only_what_is_missing(tmp_path):
    configs = grid(lr=list(np.logspace(-3, 0, 6)), beta2=[0.99, 0.999])
    first = sweep("adam", configs[:5], Valley(), steps=50, seeds=2, out=tmp_path)
    assert first.attrs["computed"] == 10 and first.attrs["resumed"] == 0
    full = sweep("adam", configs, Valley(), steps=50, seeds=2, out=tmp_path)
    assert full.attrs["resumed"] == 10 and full.attrs["computed"] == 14
    again = sweep("adam", configs, Valley(), steps=50, seeds=2, out=tmp_path)
    assert again.attrs["computed"] == 0 and again.attrs["resumed"] == 24
    recs = records(tmp_path)
    assert len(recs) == 24 and len({r["key"] for r in recs}) == 24
    fresh = sweep("adam", configs, Valley(), steps=50, seeds=2)
    for m in METRICS:
        assert same(full[m], fresh[m]) and same(again[m], fresh[m])
    # a different budget is a different sweep: refused in this directory, and, forced, it
    # makes new records instead of reusing the old ones
    with pytest.raises(
        ValueError,
        match=r"holds a different sweep \(adam on valley, 50 steps; this one: adam on valley, 51 steps\)",
    ):
        sweep("adam", configs[:2], Valley(), steps=51, seeds=1, out=tmp_path)
    assert len(records(tmp_path)) == 24  # nothing written by the refused sweep
    other = sweep("adam", configs[:2], Valley(), steps=51, seeds=1, out=tmp_path, force=True)
    assert other.attrs["computed"] == 2 and other.attrs["resumed"] == 0
    assert len(records(tmp_path)) == 2  # the old sweep's records went with force


def test_a_torn_last_line_is_dropped_and_recomputed(tmp_path):
    configs = grid(lr=[0.01, 0.1, 1.0])
    sweep("adam", configs, Quadratic1D(), steps=20, out=tmp_path)
    path = tmp_path / "records.jsonl"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 40])  # a kill in the middle of the last write
    df = sweep("adam", configs, Quadratic1D(), steps=20, out=tmp_path)
    assert df.attrs["resumed"] == 2 and df.attrs["computed"] == 1
    assert len(records(tmp_path)) == 3


def test_a_killed_process_sweep_resumes_without_loss_or_duplicates(tmp_path):
    script = textwrap.dedent(
        f"""
        import numpy as np
        from adamlab.lab.sweep import grid, sweep
        from adamlab.problems.base import Quadratic1D
        configs = grid(lr=list(np.logspace(-3, 0, 10)))
        sweep("adam", configs, Quadratic1D(), steps=800, seeds=2, engine="process",
              workers=2, out={str(tmp_path)!r}, progress=False)
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    path = tmp_path / "records.jsonl"
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            if path.exists() and path.read_bytes().count(b"\n") >= 4:
                break
            if proc.poll() is not None:
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    before = {r["key"] for r in records(tmp_path)}
    assert 4 <= len(before) < 20, "the sweep should have been killed part-way"
    configs = grid(lr=list(np.logspace(-3, 0, 10)))
    df = sweep(
        "adam", configs, Quadratic1D(), steps=800, seeds=2, engine="process", workers=2,
        out=tmp_path, progress=False,
    )  # fmt: skip
    assert df.attrs["resumed"] == len(before)
    assert df.attrs["computed"] == 20 - len(before)
    recs = records(tmp_path)
    assert len(recs) == 20 and len({r["key"] for r in recs}) == 20
    assert set(df.key) == {r["key"] for r in recs}


def test_unwritable_output_is_an_oserror(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(
        OSError, match=r"cannot create directory .*/file/sub.: .*/file. is a file, not a directory"
    ):
        sweep("adam", [{"lr": 0.1}], Quadratic1D(), steps=2, out=blocker / "sub")


# -- fair tuning ---------------------------------------------------------------------------------


def test_tune_gives_equal_budgets_and_reruns_winners_on_fresh_seeds():
    cands = {
        "adam": ("adam", {"lr": LogUniform(1e-3, 1.0)}),
        "sgd": ("sgd", {"lr": LogUniform(1e-4, 0.5)}),
    }
    summary, trials = tune(cands, Valley(), budget=12, steps=100, tune_seeds=[0], eval_seeds=[1, 2])
    assert list(summary.optimizer) == ["adam", "sgd"]
    assert trials.groupby(["phase", "optimizer"]).size().to_dict() == {
        ("eval", "adam"): 2, ("eval", "sgd"): 2, ("tune", "adam"): 12, ("tune", "sgd"): 12,
    }  # fmt: skip
    assert summary.attrs["budget"] == 12 and summary.attrs["space_dims"] == {"adam": 1, "sgd": 1}
    for _, row in summary.iterrows():
        t = trials[(trials.optimizer == row.optimizer) & (trials.phase == "tune")]
        assert row.tune_score == t.final_loss[~t.diverged].min()
        assert row.best_config["lr"] in set(t.lr)


def test_tune_refuses_unequal_search_spaces():
    cands = {
        "adam": ("adam", {"lr": LogUniform(1e-3, 1.0), "beta2": [0.99, 0.999]}),
        "sgd": ("sgd", {"lr": LogUniform(1e-4, 0.5)}),
    }
    with pytest.raises(ValueError, match="unfair"):
        tune(cands, Valley(), budget=4, steps=5)
    grids = {"adam": ("adam", {"lr": [0.1, 0.01]}), "sgd": ("sgd", {"lr": [0.1, 0.01, 0.001]})}
    with pytest.raises(ValueError, match="unfair"):
        tune(grids, Valley(), budget=2, steps=5, method="grid")


@pytest.mark.exact
def test_the_digits_mlp_sweep_is_vectorised_and_equals_runs_alone():
    from adamlab.problems import get_problem

    p = get_problem("mlp-digits")
    configs = grid(lr=[1e-3, 0.1], bias_correction=[True, False])
    df = sweep("adam", configs, p, steps=12, seeds=[0, 1], eval_every=6)
    assert df.attrs["engines"] == {"mlp-digits": "vectorized"}
    assert {"test_loss", "test_accuracy", "train_accuracy"} <= set(df)
    for _, row in df.iloc[::3].iterrows():
        alone = run_config("adam", configs[row.config_id], p, steps=12, seed=row.seed, eval_every=6)
        for m in [*METRICS, "test_loss", "test_accuracy", "train_accuracy"]:
            assert same(row[m], alone[m]), m
    # minibatch seeds differ, so the same configuration ends differently across seeds
    assert df[df.config_id == 0].final_loss.nunique() == 2


def test_progress_bar_counts_every_run(capsys):
    sweep("adam", grid(lr=[0.1, 0.2, 0.3]), Quadratic1D(), steps=5, seeds=2, progress=True)
    err = capsys.readouterr().err
    assert "6/6" in err


@pytest.mark.exact
# A core rounding issue this suite found: for a float β, Python's ``β**2`` calls libm pow,
# while NumPy's ``array**2`` multiplies; they round differently for ~0.07 % of β. The core now
# computes βᵗ with ``adamlab.optim.base.power`` (β·β at t = 2 on both sides), so a run alone
# and its row of a vectorised sweep agree bit for bit even for such β.
def test_rare_betas_whose_square_rounds_differently_still_match():
    beta2 = 0.9932237927262006  # (β·β) != pow(β, 2) in the last bit
    assert beta2 * beta2 != beta2**2
    configs = [{"lr": 0.05, "beta2": beta2}, {"lr": 0.05, "beta2": 0.999}]
    vec = sweep("adam", configs, Valley(), steps=50, engine="vectorized")
    alone = run_config("adam", configs[0], Valley(), steps=50)
    assert vec.final_x[0] == alone["final_x"]


def test_schedules_sweep_alongside_numbers_and_resume(tmp_path):
    from adamlab.optim.schedules import inverse_sqrt

    configs = grid(beta2=[0.99, 0.999], lr=[0.1, inverse_sqrt(0.5)])
    df = sweep("adam", configs, Valley(), steps=30, out=tmp_path)
    for cid in range(4):
        alone = run_config("adam", configs[cid], Valley(), steps=30)
        assert same(df.final_loss[cid], alone["final_loss"])
    again = sweep("adam", configs, Valley(), steps=30, out=tmp_path)
    assert again.attrs["resumed"] == 4 and again.attrs["computed"] == 0
    stored = pd.read_parquet(tmp_path / "sweep.parquet")
    assert list(stored.lr) == ["0.1", "inverse_sqrt(init=0.5)"] * 2


def test_problems_take_the_same_specs_as_compare_and_keep_them_apart():
    from adamlab.problems import get_problem

    configs = [{"lr": 0.05}]
    df = sweep("adam", configs, ["rosenbrock", "rosenbrock:a=2"], steps=40, engine="vectorized")
    assert list(df.problem) == ["rosenbrock", "rosenbrock:a=2"]
    alone = run_config("adam", configs[0], get_problem("rosenbrock", a=2.0), steps=40)
    assert df.final_loss.iloc[1] == alone["final_loss"]
    assert df.final_loss.iloc[0] != df.final_loss.iloc[1]


def test_an_out_directory_is_one_sweep(tmp_path, capsys):
    """The directory records what sweep it holds: a different one is refused with one line
    (exit 2, nothing written); --force replaces it, old figures and records included."""
    from adamlab.cli import main

    out = tmp_path / "runs"
    first = ["sweep", "adam", "--problem", "rosenbrock", "--grid", "lr=0.01,0.1",
             "--grid", "beta2=0.99,0.999", "--steps", "20", "--out", str(out)]  # fmt: skip
    assert main(first) == 0
    assert (out / "heatmap-rosenbrock.png").exists() and (out / "sweep.json").exists()
    capsys.readouterr()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    other = ["sweep", "sgd", "--problem", "booth", "--grid", "lr=0.01,0.1", "--steps", "20",
             "--out", str(out)]  # fmt: skip
    assert main(other) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "holds a different sweep (adam on rosenbrock, 20 steps" in err
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert main([*other, "--force"]) == 0
    names = {p.name for p in out.iterdir()}
    assert "heatmap-rosenbrock.png" not in names and "sensitivity-booth.png" in names
    assert len(records(out)) == 2  # only the new sweep's runs
    assert main(first) == 2  # and now the first one is the stranger


# -- record keys ----------------------------------------------------------------------------------


def keys_of(**changes) -> list[str]:
    """The record keys of a small plan, with one argument changed."""
    args = {"optimizer": "adam", "configs": [{"lr": 0.1}, {"lr": 0.2}], "problems": Quadratic1D(),
            "steps": 20, "seeds": [0, 1], "target": 1e-3, "start": None}  # fmt: skip
    args.update(changes)
    plan = make_plan(args.pop("optimizer"), args.pop("configs"), args.pop("problems"), **args)
    return plan.row_keys(0)


def test_a_record_key_is_the_problem_optimizer_configuration_seed_and_run_settings():
    """README: records are "keyed by a hash of the problem, optimizer, configuration, seed and
    run settings (steps, target, start)": change any one and no key survives; change nothing
    that decides a number (the label) and every key does."""
    base = keys_of()
    assert len(set(base)) == 4
    for change in [
        {"target": 1e-6},  # a new budget makes new records
        {"target": None},
        {"steps": 21},
        {"start": [7.0]},
        {"eval_every": 2},
        {"optimizer": "adamw"},
        {"problems": "quadratic:center=3"},
        {"configs": [{"lr": 0.1, "eps": 1e-8}, {"lr": 0.2, "eps": 1e-8}]},
    ]:
        assert not set(keys_of(**change)) & set(base), change
    assert keys_of(label="mine") == base
    assert keys_of(seeds=[1, 0]) == [base[1], base[0], base[3], base[2]]  # the seed, not the order
    assert keys_of(configs=[{"lr": 0.2}, {"lr": 0.1}]) == [base[2], base[3], base[0], base[1]]


def test_plan_keys_are_record_key_of_each_row():
    """The plan's fast key path (one format string) equals :func:`record_key` row by row."""
    configs = grid(lr=[0.1, 1e-3], bias_correction=[True, False], eps=[1e-8])
    plan = make_plan("adam", configs, Quadratic1D(), steps=5, seeds=[3], target=1e-4)
    for cid, config in enumerate(configs):
        want = record_key("quadratic", "adam", config, 3, plan.run_settings)
        assert plan.keys[0][(cid, 3)] == want


def test_a_new_target_in_the_same_directory_reuses_no_record(tmp_path):
    """A finished sweep's records are never reused under another target (forced into the
    same directory, every run is computed again, and its steps_to_target is the new one's)."""
    configs = grid(lr=[0.05, 0.5])
    first = sweep("adam", configs, Quadratic1D(), steps=200, target=1e-2, out=tmp_path)
    second = sweep("adam", configs, Quadratic1D(), steps=200, target=1e-6, out=tmp_path, force=True)
    assert second.attrs["resumed"] == 0 and second.attrs["computed"] == 2
    assert not set(first.key) & set(second.key)
    fresh = sweep("adam", configs, Quadratic1D(), steps=200, target=1e-6)
    assert same(second.steps_to_target, fresh.steps_to_target)
    assert not same(second.steps_to_target, first.steps_to_target)


# -- tuning: ties ---------------------------------------------------------------------------------


def test_tune_breaks_ties_by_the_lowest_loss():
    """No configuration reaches an unreachable target (every score +inf): the winner is the one
    with the lowest loss, and its score says it never got there."""
    cands = {"sgd": ("sgd", {"lr": LogUniform(1e-4, 0.9)})}
    summary, runs = tune(cands, Valley(), budget=8, steps=50, target=1e-300,
                         metric="steps_to_target", tune_seeds=[0], eval_seeds=[1])  # fmt: skip
    tuned = runs[runs.phase == "tune"]
    assert tuned.steps_to_target.isna().all() and summary.tune_score[0] == np.inf
    finite = tuned[np.isfinite(tuned.final_loss) & ~tuned.diverged]
    best = finite.loc[finite.final_loss.idxmin()]
    assert summary.best_config[0] == {"lr": best.lr}
    worst = finite.loc[finite.final_loss.idxmax()]
    assert worst.lr != best.lr  # a reversed tie-break would be seen


def test_tune_selects_on_the_mean_over_tuning_seeds():
    """The winner minimises the mean metric over the tuning seeds (a noisy problem: the seeds
    disagree), from every configuration tried."""
    cands = {"adam": ("adam", {"lr": LogUniform(1e-3, 1.0)})}
    summary, runs = tune(cands, "noisy-quadratic", budget=6, steps=30, tune_seeds=[0, 1, 2],
                         eval_seeds=[5])  # fmt: skip
    tuned = runs[runs.phase == "tune"]
    means = tuned.groupby("config_id").final_loss.mean()
    assert tuned.groupby("config_id").final_loss.std().min() > 0  # the seeds disagree
    assert summary.tune_score[0] == means.min()
    assert summary.best_config[0]["lr"] == tuned[tuned.config_id == means.idxmin()].lr.iloc[0]
    ev = runs[runs.phase == "eval"]
    assert list(ev.seed) == [5] and summary.eval_mean[0] == ev.final_loss.mean()


# -- the evaluation schedule of a sweep -------------------------------------------------------------


def test_a_sweep_on_a_large_problem_evaluates_every_steps_over_25():
    """README: above 64 parameters the exact loss is evaluated every steps // 25 steps (and at
    the last), as in compare; the curve has one value per evaluation."""
    df = sweep("adam", [{"lr": 0.1}], "sphere:dim=70", steps=100, curve=True, target=1e-300)
    (curve,) = df.curve
    assert len(curve) == 1 + 25  # the start, then steps 4, 8, …, 100
    small = sweep("adam", [{"lr": 0.1}], "sphere:dim=64", steps=100, curve=True)
    assert len(small.curve[0]) == 101
    odd = sweep("adam", [{"lr": 0.1}], "sphere:dim=70", steps=110, curve=True)
    assert len(odd.curve[0]) == 1 + 27 + 1  # every 4 steps to 108, and the last step, 110


def test_tune_passes_its_settings_to_every_sweep_and_reports_them(tmp_path):
    """Written against the mutants of ``lab/sweep/tune.py`` that survived (see
    docs/mutation-testing.md): a grid search under names that are not the optimizers', with a
    target, a fixed hyperparameter for one candidate and an output directory, on a problem
    with a held-out split (so the metric is the held-out loss)."""
    cands = {"mine": ("adam", {"lr": [0.3, 0.03]}), "other": ("sgd", {"lr": [0.1, 0.01]})}
    summary, runs = tune(cands, "logreg-cancer", budget=2, steps=10, method="grid", target=0.5,
                         fixed={"mine": {"eps": 1e-3}}, out=tmp_path, tune_seeds=[0, 1],
                         eval_seeds=[3, 4])  # fmt: skip
    assert summary.attrs == {
        "budget": 2, "method": "grid", "sample_seed": 0, "steps": 10, "tune_seeds": [0, 1],
        "eval_seeds": [3, 4], "space_dims": {"mine": 1, "other": 1}, "problem": "logreg-cancer",
    }  # fmt: skip
    assert list(summary.columns) == ["optimizer", "metric", "best_config", "tune_score",
                                     "eval_mean", "eval_std", "eval_min", "eval_max",
                                     "eval_diverged"]  # fmt: skip
    assert list(runs.index) == list(range(len(runs))) == list(range(12))
    for row in summary.itertuples():
        mine = runs[runs.optimizer == row.optimizer]  # the candidate's name labels its runs
        tuned, ev = mine[mine.phase == "tune"], mine[mine.phase == "eval"]
        assert len(tuned) == 4 and list(ev.seed) == [3, 4]
        assert row.metric == "test_loss"  # the held-out loss, by default, where there is one
        means = tuned.groupby("lr").test_loss.mean()
        assert row.tune_score == means.min() and row.best_config == {"lr": means.idxmin()}
        assert (ev.lr == means.idxmin()).all()
        values = ev.test_loss.to_numpy()
        assert (row.eval_mean, row.eval_std) == (values.mean(), values.std(ddof=0))
        assert (row.eval_min, row.eval_max, row.eval_diverged) == (values.min(), values.max(), 0)
        assert mine.steps_to_target.notna().any()  # the target reached both sweeps
        assert (mine.eps == 1e-3).all() if row.optimizer == "mine" else mine.eps.isna().all()
        for sub in (tmp_path / row.optimizer, tmp_path / row.optimizer / "eval"):
            assert (sub / "records.jsonl").exists() and (sub / "sweep.parquet").exists()
    assert summary.eval_std[0] > 0  # two evaluation seeds that differ: ddof matters
    # the same runs as sweeps called by hand (record keys hold steps, target and start)
    by_hand = sweep("adam", [{"lr": 0.3}, {"lr": 0.03}], "logreg-cancer", steps=10, target=0.5,
                    seeds=[0, 1], fixed={"eps": 1e-3})  # fmt: skip
    assert list(runs.key[:4]) == list(by_hand.key)
    by_hand = sweep("adam", [{"lr": 0.3}], "logreg-cancer", steps=10, target=0.5, seeds=[3, 4],
                    fixed={"eps": 1e-3})  # fmt: skip
    assert list(runs.key[4:6]) == list(by_hand.key)
    with pytest.raises(ValueError, match=r"^mine: the grid has 2 points but budget is 3$"):
        tune(cands, "logreg-cancer", budget=3, steps=1, method="grid")


def test_tune_draws_each_candidates_configurations_by_its_method_and_seed():
    """The same ``budget`` configurations for every candidate, drawn by ``method`` (Halton by
    default) with ``sample_seed`` (0 by default); spaces of equal dimension but unequal
    lists are fine unless the method is a grid; the refusals name every candidate."""
    from adamlab.lab.sweep import sample

    space = {"lr": LogUniform(1e-3, 1.0)}
    for kwargs, method, seed in (({}, "halton", 0), ({"method": "random", "sample_seed": 7},
                                                     "random", 7)):  # fmt: skip
        _, runs = tune({"a": ("adam", space)}, Valley(), budget=3, steps=2, eval_seeds=[0],
                       **kwargs)  # fmt: skip
        tuned = runs[runs.phase == "tune"]
        assert list(tuned.lr) == [c["lr"] for c in sample(space, 3, method=method, seed=seed)]
    lists = {"a": ("adam", {"lr": [0.1, 0.01]}), "b": ("sgd", {"lr": [0.1, 0.01, 0.001]})}
    summary, _ = tune(lists, Valley(), budget=2, steps=2, eval_seeds=[0])
    assert list(summary.optimizer) == ["a", "b"]
    with pytest.raises(ValueError, match=r"^unfair tuning: grids differ in size a: 2, b: 3$"):
        tune(lists, Valley(), budget=2, steps=2, method="grid")
    dims = {"a": ("adam", {"lr": [0.1], "eps": [1e-8]}), "b": ("sgd", {"lr": [0.1]})}
    with pytest.raises(ValueError, match=r"^unfair tuning: search spaces differ in dimension a: 2, b: 1$"):  # fmt: skip
        tune(dims, Valley(), budget=1, steps=2)


def test_tune_ties_put_diverged_runs_last_and_one_configuration_is_a_budget(capsys):
    """Nothing reaches the target: the diverged configuration (listed first) must not win the
    tie; a budget of one configuration works; ``progress=True`` shows both sweeps' bars."""
    cands = {"q": ("sgd", {"lr": [100.0, 0.01]})}
    summary, runs = tune(cands, "quadratic", budget=2, steps=20, method="grid",
                         metric="steps_to_target", target=1e-300, eval_seeds=[0])  # fmt: skip
    tuned = runs[runs.phase == "tune"]
    assert list(tuned.diverged) == [True, False] and summary.best_config[0] == {"lr": 0.01}
    # with a held-out split the tie goes to the held-out loss: here lr 0.3 has the lower test
    # loss (0.047 against 0.052), lr 0.1 the lower training loss (0.063 against 0.065)
    cands = {"a": ("adam", {"lr": [0.1, 0.3]})}
    summary, runs = tune(cands, "logreg-cancer", budget=2, steps=100, method="grid",
                         metric="steps_to_target", target=1e-300, eval_seeds=[1])  # fmt: skip
    tuned = runs[runs.phase == "tune"]
    assert tuned.final_loss.idxmin() == 0 and tuned.test_loss.idxmin() == 1
    assert summary.best_config[0] == {"lr": 0.3}
    capsys.readouterr()
    summary, runs = tune({"one": ("adam", {"lr": [0.1]})}, "quadratic", budget=1, steps=5,
                         method="grid", eval_seeds=[0], progress=True)  # fmt: skip
    assert summary.best_config[0] == {"lr": 0.1} and len(runs) == 2
    assert capsys.readouterr().err.count("sweep one on quadratic: 100%") == 2
