"""The runner: the seed demo bit for bit, paired noise, divergence, metrics, files."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from oracles import seed_lesson

import adamlab
from adamlab.lab import (
    Result,
    auc_log_suboptimality,
    compare,
    label_for,
    optimizer_from_spec,
    parse_optimizer_spec,
    steps_to_tolerance,
)
from adamlab.problems import Problem, Quadratic1D


def seed_result() -> Result:
    return compare(
        Quadratic1D(),
        [adamlab.SGD(lr=0.1), adamlab.Adam(lr=0.1, betas=(0.9, 0.999), eps=1e-8)],
        steps=50,
    )


def test_seed_demo_is_bit_identical_to_the_seed_lesson():
    sgd_ref, adam_ref = seed_lesson()
    r = seed_result()
    sgd, adam = r.trajectories
    assert sgd.x.shape == adam.x.shape == (51, 1)
    assert sgd.x[:, 0].tolist() == [float(v) for v in sgd_ref]  # float64 ==, every iterate
    assert adam.x[:, 0].tolist() == [float(v) for v in adam_ref]
    assert sgd.diverged_at is None and adam.diverged_at is None
    # the exact loss of every iterate, as the lesson's figure computes it
    assert adam.loss.tolist() == [(v - 2) ** 2 for v in adam_ref]


def test_seed_demo_metrics_and_table():
    r = seed_result()
    sgd, adam = r.metrics(tol=1e-3)
    assert sgd.steps_to_tol == 39 and adam.steps_to_tol is None
    assert abs(sgd.final_x[0] - 2.000085634861562) == 0
    table = r.table()
    lines = table.splitlines()
    assert lines[0].split() == ["optimizer", "final", "x", "final", "loss", "steps", "to",
                                "|x", "-", "2|", "<", "0.001"]  # fmt: skip
    assert lines[2].startswith("SGD(lr=0.1)") and lines[2].split()[-1] == "39"
    assert lines[3].startswith("Adam(lr=0.1, betas=(0.9, 0.999))")
    assert lines[3].split()[-1] == "never"
    assert "3.703843" in lines[3]


def test_diagnostics_are_recorded_per_step():
    r = seed_result()
    adam = r.trajectories[1]
    d = adam.diagnostics
    assert {"m", "v", "m_hat", "v_hat", "bias1", "bias2", "effective_lr"} <= set(d)
    assert np.isnan(d["m"][0]).all() and d["m"].shape == (51, 1)
    t = np.arange(1, 51)
    np.testing.assert_allclose(d["bias1"][1:], 1 - 0.9**t)
    np.testing.assert_allclose(d["m_hat"][1:, 0], d["m"][1:, 0] / (1 - 0.9**t))
    # the step taken is x_t - x_{t-1}, and equals -effective_lr * m_hat
    np.testing.assert_allclose(adam.step[1:, 0], np.diff(adam.x[:, 0]))
    np.testing.assert_allclose(
        adam.step[1:, 0], -d["effective_lr"][1:, 0] * d["m_hat"][1:, 0], rtol=1e-12
    )


def test_divergence_is_recorded_and_the_run_stops():
    r = compare("quadratic", ["sgd:lr=1.5", "sgd:lr=0.1"], steps=800)
    bad, good = r.trajectories
    assert bad.diverged_at is not None and bad.steps_taken == bad.diverged_at < 800
    assert not np.isfinite(bad.loss[-1]) and np.isfinite(bad.loss[:-1]).all()
    assert "step" in bad.diverged_reason
    assert good.diverged_at is None and good.steps_taken == 800
    m = r.metrics()[0]
    assert m.diverged_at == bad.diverged_at and m.auc_log_subopt is None
    assert f"diverged at step {bad.diverged_at}" in r.table()


@dataclasses.dataclass(frozen=True, eq=False)
class NoisyBowl(Problem):
    """f(x) = ½‖x‖² observed with seeded Gaussian gradient noise (a local test double)."""

    name: str = "noisy-bowl"
    description: str = "test double"
    dim: int = 2
    x0: np.ndarray = dataclasses.field(default_factory=lambda: np.array([1.0, -1.0]))
    domain: np.ndarray = dataclasses.field(default_factory=lambda: np.array([[-2.0, 2], [-2, 2]]))
    x_star: np.ndarray | None = dataclasses.field(default_factory=lambda: np.zeros(2))
    f_star: float | None = 0.0
    stochastic: bool = True

    def loss(self, x):
        return 0.5 * np.sum(x**2, axis=-1)

    def grad(self, x):
        return x

    def oracle(self, seed=0):
        def sample(x, t):
            rng = np.random.default_rng([seed or 0, t])
            return self.loss(x), x + rng.normal(size=x.shape)

        return sample


class InfGrad(NoisyBowl):
    def oracle(self, seed=0):
        return lambda x, t: (self.loss(x), x * (np.inf if t == 3 else 1.0))


def test_paired_noise_identical_configs_identical_trajectories():
    r = compare(NoisyBowl(), [adamlab.SGD(lr=0.1), adamlab.SGD(lr=0.1)], steps=30, seed=7)
    a, b = r.trajectories
    assert a.label == "SGD(lr=0.1)" and b.label == "SGD(lr=0.1) #2"
    assert np.array_equal(a.x, b.x)
    other = compare(NoisyBowl(), [adamlab.SGD(lr=0.1)], steps=30, seed=8).trajectories[0]
    assert not np.array_equal(a.x, other.x)  # the noise is really there


def test_several_seeds_give_one_trajectory_per_optimizer_and_seed():
    r = compare(NoisyBowl(), {"a": "adam:lr=0.1", "s": "sgd:lr=0.1"}, steps=10, seed=[1, 2, 3])
    assert [(t.label, t.seed) for t in r.trajectories][:3] == [("a", 1), ("s", 1), ("a", 2)]
    assert "3 seeds" in r.table() and "medians over 3 seeds" in r.table()


def test_nonfinite_gradient_is_recorded_not_masked():
    t = compare(InfGrad(), ["adam:lr=0.1"], steps=10).trajectories[0]
    assert t.diverged_at == 3 and t.steps_taken == 2
    assert "NaN or Inf" in t.diverged_reason


def test_projection_is_applied_after_each_step():
    @dataclasses.dataclass(frozen=True, eq=False)
    class Boxed(NoisyBowl):
        stochastic: bool = False

        def grad(self, x):
            return np.full_like(x, -1.0)  # always pushes up

        def oracle(self, seed=0):
            return lambda x, t: (self.loss(x), self.grad(x))

        def project(self, x):
            return np.clip(x, -1.0, 1.0)

    t = compare(Boxed(), ["sgd:lr=0.5"], steps=5, start=[0.0, 0.0]).trajectories[0]
    assert t.x.max() == 1.0 and t.x[-1].tolist() == [1.0, 1.0]


def test_large_problems_track_two_coordinates():
    @dataclasses.dataclass(frozen=True, eq=False)
    class Big(NoisyBowl):
        dim: int = 70  # above lab.loop.SMALL = 64
        x0: np.ndarray = dataclasses.field(default_factory=lambda: np.linspace(1, 2, 70))
        domain: np.ndarray = dataclasses.field(default_factory=lambda: np.tile([-1.0, 1], (70, 1)))
        x_star: np.ndarray | None = dataclasses.field(default_factory=lambda: np.zeros(70))

    r = compare(Big(), ["adam:lr=0.1"], steps=4)
    t = r.trajectories[0]
    assert r.tracked == [68, 69] and t.x.shape == (5, 2) and t.diagnostics["m_hat"].shape == (5, 2)
    assert t.distance[0] == pytest.approx(np.linalg.norm(np.linspace(1, 2, 70)))
    assert r.surface is None


def test_metrics_by_hand():
    left_again = np.array([5.0, 1.0, 0.5, 0.01, 2.0])
    assert steps_to_tolerance(left_again, 0.1, stay=False) == 3  # the first hit
    assert steps_to_tolerance(left_again, 0.1) is None  # it did not stay
    assert steps_to_tolerance(np.array([5.0, 0.01, 0.5, 0.05, 0.02]), 0.1) == 3  # reached, stayed
    assert steps_to_tolerance(np.array([5.0, np.nan, 0.05, np.nan, 0.02]), 0.1) == 2  # NaN: skipped
    assert steps_to_tolerance(np.array([5.0, 1.0]), 0.1) is None
    # log10 gaps 2, 1, 0 -> trapezoid (2+1)/2 + (1+0)/2 = 2
    assert auc_log_suboptimality(np.array([101.0, 11.0, 2.0]), f_star=1.0) == pytest.approx(2.0)
    assert auc_log_suboptimality(np.array([1.0, 1.0]), f_star=1.0) == pytest.approx(-16.0)
    assert auc_log_suboptimality(np.array([-1.0, 1.0]), f_star=None) is None


def test_specs_and_labels():
    assert parse_optimizer_spec("adam:lr=0.1,betas=0.9/0.999,amsgrad=true") == (
        "adam",
        {"lr": 0.1, "betas": (0.9, 0.999), "amsgrad": True},
    )
    assert optimizer_from_spec("sgd:lr=1,momentum=0.9").momentum == 0.9
    with pytest.raises(ValueError, match=r"unknown hyperparameter 'beta'.*valid: lr, betas"):
        parse_optimizer_spec("adam:beta=0.9")
    with pytest.raises(ValueError, match="unknown optimizer 'adma'"):
        parse_optimizer_spec("adma:lr=1")
    with pytest.raises(ValueError, match="malformed"):
        parse_optimizer_spec("adam:lr")
    with pytest.raises(ValueError, match="Invalid lr"):
        optimizer_from_spec("adam:lr=-1")
    assert label_for(adamlab.Adam(lr=0.1, amsgrad=True)) == (
        "Adam(lr=0.1, betas=(0.9, 0.999), amsgrad=True)"
    )


def test_bad_arguments():
    with pytest.raises(ValueError, match="finite"):
        compare("quadratic", ["sgd"], start=[np.nan])
    with pytest.raises(ValueError, match=r"unknown problem|nope"):
        compare("nope", ["sgd"])
    with pytest.raises(ValueError, match="at least one optimizer"):
        compare("quadratic", [])


@pytest.mark.parametrize("suffix", [".json", ".csv", ".parquet"])
def test_result_round_trip(tmp_path, suffix):
    r = compare(NoisyBowl(), ["adam:lr=0.1", "sgd:lr=1.5"], steps=20, seed=[0, 1])
    path = r.save(tmp_path / f"run{suffix}")
    assert sorted(p.name for p in tmp_path.iterdir()) == (
        ["run.csv", "run.csv.manifest.json"] if suffix == ".csv" else [f"run{suffix}"]
    )
    back = Result.load(path)
    assert back.labels == r.labels and back.seeds == r.seeds and back.tracked == r.tracked
    assert back.problem == r.problem and back.start.tolist() == r.start.tolist()
    for a, b in zip(r.trajectories, back.trajectories, strict=True):
        assert (a.label, a.seed, a.diverged_at, a.optimizer) == (
            b.label,
            b.seed,
            b.diverged_at,
            b.optimizer,
        )
        for name in ("x", "loss", "grad_norm", "distance", "step", "step_norm"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert set(a.diagnostics) == set(b.diagnostics)
        for k in a.diagnostics:
            np.testing.assert_array_equal(a.diagnostics[k], b.diagnostics[k])
    np.testing.assert_array_equal(back.surface.loss, r.surface.loss)
    assert back.table() == r.table()


def test_manifest_and_tidy_frame(tmp_path):
    r = seed_result()
    m = r.manifest()
    assert m["seeds"] == [0] and m["steps"] == 50 and m["problem"]["name"] == "quadratic"
    assert m["optimizers"][1]["hyperparameters"]["betas"] == [0.9, 0.999]
    assert {"adamlab", "numpy", "python"} <= set(m["meta"]["versions"])
    json.dumps(m)
    df = r.to_frame()
    assert len(df) == 2 * 51
    assert {"label", "step", "loss", "x[0]", "dx[0]", "m_hat[0]", "bias1"} <= set(df.columns)
    assert df[df.label == "SGD(lr=0.1)"]["bias1"].isna().all()


def test_failed_save_leaves_no_file(tmp_path):
    r = seed_result()
    with pytest.raises(ValueError):
        r.save(tmp_path / "x.txt")
    r.trajectories[0].optimizer["bad"] = object()  # not JSON-serialisable
    with pytest.raises(TypeError):
        r.save(tmp_path / "x.json")
    assert list(tmp_path.iterdir()) == []


def test_gradient_norm_is_exact_at_every_iterate():
    r = seed_result()
    for t in r.trajectories:
        np.testing.assert_array_equal(t.grad_norm, np.abs(2 * (t.x[:, 0] - 2)))
    noisy = compare(NoisyBowl(), ["adam:lr=0.1"], steps=10).trajectories[0]
    np.testing.assert_allclose(noisy.grad_norm, np.linalg.norm(noisy.x, axis=1))  # not the noise


def test_pandas_is_optional_with_a_clear_error(monkeypatch, tmp_path):
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)  # import pandas -> ImportError
    r = seed_result()
    with pytest.raises(ImportError, match=r"pip install 'adamlab\[data\]'"):
        r.to_frame()
    with pytest.raises(ImportError, match="pandas"):
        r.save(tmp_path / "r.csv")
    assert list(tmp_path.iterdir()) == []
    r.save(tmp_path / "r.json")  # JSON needs nothing extra
    assert Result.load(tmp_path / "r.json").labels == r.labels


def test_paired_noise_on_a_registered_noisy_problem():
    r = compare("noisy-quadratic", ["sgd:lr=0.05", "sgd:lr=0.05", "adam:lr=0.1"], steps=40, seed=3)
    a, b, _ = r.trajectories
    assert np.array_equal(a.x, b.x) and np.array_equal(a.loss, b.loss)
    assert not np.array_equal(
        a.x, compare("noisy-quadratic", ["sgd:lr=0.05"], steps=40, seed=4).trajectories[0].x
    )


def test_ml_tasks_report_held_out_numbers(tmp_path):
    r = compare("logreg-cancer", ["adam:lr=0.05"], steps=30)
    t = r.trajectories[0]
    assert set(t.final) == {"train_accuracy", "test_accuracy", "test_loss"}
    assert 0.5 < t.final["test_accuracy"] <= 1
    head = r.table().splitlines()[0]
    assert "test acc" in head and "train acc" in head
    assert Result.load(r.save(tmp_path / "r.json")).trajectories[0].final == t.final


@pytest.mark.parametrize(
    "missing", ["problem", "steps", "seeds", "start", "tracked", "trajectories"]
)
def test_a_result_file_with_a_missing_field_is_refused_with_a_value_error(tmp_path, missing):
    path = tmp_path / "r.json"
    compare("quadratic", ["sgd:lr=0.1"], steps=3).save(path)
    data = json.loads(path.read_text())
    del data[missing]
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"is not a valid adamlab result \(missing field"):
        Result.load(path)


def test_a_result_file_with_malformed_trajectories_is_refused(tmp_path):
    path = tmp_path / "r.json"
    compare("quadratic", ["sgd:lr=0.1"], steps=3).save(path)
    data = json.loads(path.read_text())
    data["trajectories"] = "oops"
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match="is not a valid adamlab result"):
        Result.load(path)


def test_compare_takes_one_spec_and_refuses_seeds_that_are_not_whole_numbers():
    """From a bug bash: ``compare(p, "adam")`` ran the spec's characters as optimizers, and
    ``seed="12"`` ran seeds 1 and 2."""
    r = compare("quadratic", "adam:lr=0.1", steps=3)
    assert r.labels == ["Adam(lr=0.1, betas=(0.9, 0.999))"]
    assert len(compare("quadratic", ["adam"], steps=3, seed=range(3)).trajectories) == 3
    assert len(compare("quadratic", ["adam"], steps=3, seed=(s for s in (4, 5))).trajectories) == 2
    for bad in ("12", 1.5, True, None):
        with pytest.raises(TypeError, match="seed must be a whole number or a list of them"):
            compare("quadratic", ["adam"], steps=3, seed=bad)
    for bad in (None, 3):
        with pytest.raises(TypeError, match="optimizers must be a list"):
            compare("quadratic", bad, steps=3)


def _damage(e, how):
    tr = e["trajectories"][0]
    if how == "no trajectories":
        e["trajectories"] = []
    elif how == "short x":
        tr["x"] = tr["x"][:2]
    elif how == "short diagnostics":
        tr["diagnostics"]["m"] = tr["diagnostics"]["m"][:1]
    elif how == "diverged_at text":
        tr["diverged_at"] = "soon"
    elif how == "loss text":
        tr["loss"][1] = "oops"


@pytest.mark.parametrize(
    ("how", "says"),
    [
        ("no trajectories", "it holds no trajectories"),
        ("short x", "x has 2 rows, loss 4"),
        ("short diagnostics", "m has 1 rows, loss 4"),
        ("diverged_at text", "diverged_at 'soon' is not a step"),
        ("loss text", "oops"),
    ],
)
def test_a_result_file_damaged_by_hand_is_refused_at_load(tmp_path, how, says):
    """What the table and figures need (from a bug bash: each of these was a traceback from
    inside NumPy or matplotlib at plot time, one after the figure file was written)."""
    path = tmp_path / "r.json"
    compare("quadratic", ["adam:lr=0.1"], steps=3).save(path)
    data = json.loads(path.read_text())
    _damage(data, how)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"is not a valid adamlab result \(.*" + re.escape(says)):
        Result.load(path)


def test_a_file_that_is_not_a_result_keeps_its_own_message(tmp_path):
    """read()'s own refusals (another extension, another format) are not wrapped again in
    "is not a valid adamlab result (...)", as a first version of the row check did."""
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(ValueError) as err:
        Result.load(other)
    assert str(err.value) == f"cannot load {str(other)!r}: expected .json, .csv or .parquet"
    fake = tmp_path / "fake.json"
    fake.write_text('{"hello": 1}')
    with pytest.raises(ValueError) as err:
        Result.load(fake)
    assert str(err.value).startswith(f"{str(fake)!r} is not a saved adamlab result (format")


def test_a_csv_result_with_its_header_only_is_refused(tmp_path):
    path = tmp_path / "r.csv"
    compare("quadratic", ["adam:lr=0.1"], steps=3).save(path)
    path.write_text(path.read_text().splitlines()[0] + "\n")
    with pytest.raises(ValueError, match="is not a valid adamlab result"):
        Result.load(path)


def test_saved_json_is_strict_json_even_for_a_diverged_run(tmp_path):
    """No bare NaN/Infinity tokens (JavaScript's JSON.parse refuses them); they load back."""
    result = compare("quadratic", ["sgd:lr=5"], steps=800)  # diverges to inf
    assert result.trajectories[0].diverged_at is not None
    path = result.save(tmp_path / "r.json")

    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    json.loads(path.read_text(), parse_constant=refuse)
    back = Result.load(path)
    t0, t1 = result.trajectories[0], back.trajectories[0]
    np.testing.assert_array_equal(t1.loss, t0.loss)
    np.testing.assert_array_equal(t1.step, t0.step)  # row 0 is NaN on both sides
    assert back.table() == result.table()


def test_progress_summarises_the_seeds_step_by_step():
    result = compare("noisy-quadratic", ["sgd:lr=0.1", "sgd:lr=1.2"], steps=30, seed=[0, 1, 2])
    p = result.progress(result.labels[0])
    losses = np.array([t.loss for t in result.trajectories if t.label == result.labels[0]])
    assert p.seeds == 3 and p.steps.tolist() == list(range(31))
    np.testing.assert_array_equal(p.median, np.median(losses, axis=0))  # f* = 0
    np.testing.assert_array_equal(p.low, losses.min(axis=0))
    np.testing.assert_array_equal(p.high, losses.max(axis=0))
    iqr = result.progress(result.labels[0], band="iqr")
    np.testing.assert_allclose(iqr.low, np.percentile(losses, 25, axis=0))
    assert p.diverged == [] and p.diverged_at is None and p.all_positive
    with pytest.raises(ValueError, match="no trajectory labelled 'nope'"):
        result.progress("nope")


def test_progress_marks_where_diverged_runs_left_the_picture():
    result = compare("quadratic", ["sgd:lr=5"], steps=800)
    p = result.progress(result.labels[0], what="loss")
    t = result.trajectories[0]
    ((step, value),) = p.diverged
    finite = np.flatnonzero(np.isfinite(t.loss))
    assert t.diverged_at is not None and p.diverged_at == t.diverged_at
    assert step == finite[-1] and value == t.loss[finite[-1]]
