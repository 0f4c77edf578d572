"""Reproductions run end to end at reduced size and show what the papers show."""

from __future__ import annotations

import json
import math

import matplotlib

matplotlib.use("Agg")

import pytest
from oracles import UNCORRECTED_FIRST_STEP

from adamlab.reproduce import REPRODUCTIONS, run


def files_ok(r, tmp_path, name):
    assert {p.name for p in r.files} == {
        f"repro-{name}.png",
        f"repro-{name}.txt",
        f"repro-{name}.json",
    }
    for p in r.files:
        assert p.parent == tmp_path and p.stat().st_size > 100
    assert (tmp_path / f"repro-{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((tmp_path / f"repro-{name}.json").read_text()) == json.loads(
        json.dumps(r.numbers)
    )
    assert (tmp_path / f"repro-{name}.txt").read_text().strip() == r.summary.strip()


def test_seed_sgd_wins_at_alpha_01_and_adam_where_sgd_oscillates(tmp_path):
    r = run("seed", tmp_path, quick=True)
    files_ok(r, tmp_path, "seed")
    n = r.numbers
    assert abs(n["sgd_final_x"] - 2) < 1e-3  # SGD's contraction 0.8 per step
    assert 3.0 < n["adam_final_x"] < 4.5  # Adam moves ≈ α per step: about 50 · 0.1 short of 6
    assert n["adam_first_step"] == pytest.approx(0.1, rel=1e-6)
    assert 0.08 < n["adam_median_step_first_40"] <= 0.1
    # Adam is closer exactly where SGD's |1 − 2α| is near or above 1 (α ≳ 1)
    assert n["adam_wins_intervals"] and all(lo > 0.8 for lo, _ in n["adam_wins_intervals"])
    assert "Adam at x = " in r.summary


def test_first_steps_shows_the_316_alpha_step(tmp_path):
    r = run("first-steps", tmp_path, quick=True)
    files_ok(r, tmp_path, "first-steps")
    n = r.numbers
    assert n["first_step_ratio_with"] == pytest.approx(1.0, abs=1e-6)
    assert n["first_step_ratio_without"] == pytest.approx(0.1 / math.sqrt(0.001), rel=1e-6)
    assert n["first_step_ratio_without"] == pytest.approx(UNCORRECTED_FIRST_STEP, abs=1e-4)
    # scale-free: both coordinates of the badly scaled problem take the same first step
    assert n["scaled_first_steps_with"] == pytest.approx([0.1, 0.1], rel=1e-6)
    assert n["scaled_first_steps_without"] == pytest.approx([0.31623, 0.31623], rel=1e-4)
    assert n["steps_without_above_alpha"] > 5
    assert n["diagnostic_panels"] == ["bias", "m", "step", "v"]


def test_amsgrad_adam_ends_at_plus_one_amsgrad_at_minus_one(tmp_path):
    r = run("amsgrad", tmp_path, quick=True)
    files_ok(r, tmp_path, "amsgrad")
    n = r.numbers
    assert n["thm1_adam_final_x"] > 0.95
    assert n["thm1_amsgrad_final_x"] < -0.95
    assert n["sec5_adam_final_x"] > 0.9
    assert n["sec5_amsgrad_final_x"] < -0.6
    assert n["thm1_adam_final_regret_per_step"] > 5 * n["thm1_amsgrad_final_regret_per_step"] > 0
    assert n["sec5_adam_final_regret_per_step"] > n["sec5_amsgrad_final_regret_per_step"]


def test_bias_correction_without_it_beta2_near_one_is_unstable_at_large_lr(tmp_path):
    r = run("bias-correction", tmp_path, quick=True)
    files_ok(r, tmp_path, "bias-correction")
    n = r.numbers
    big = f"{n['largest_lr']:.3g}"
    for b1 in ("0", "0.9"):
        c = n["cells"][f"beta1={b1},beta2=0.9999"]
        # at the largest α the uncorrected run ends far worse, above the initial loss
        assert c["without"][big] > 5 * c["with"][big]
        assert c["without"][big] > n["initial_loss"] > c["with"][big]
        # and β₂ = 0.99 without correction is much milder than β₂ = 0.9999 without it
        mild = n["cells"][f"beta1={b1},beta2=0.99"]["without"][big]
        assert mild < c["without"][big] / 3
    assert n["diverged_without_b2_9999"] > n["diverged_with_b2_9999"] == 0


def test_unknown_reproduction_and_unwritable_output_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown reproduction 'vae'"):
        run("vae", tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OSError, match=r"cannot create directory .*/file/out.: .*file. is a file"):
        run("seed", blocker / "out", quick=True)
    assert set(REPRODUCTIONS) == {"seed", "first-steps", "amsgrad", "bias-correction", "low-memory",
                                  "kingma-ba-logreg", "kingma-ba-mlp"}  # fmt: skip


# -- the CLI hook ---------------------------------------------------------------------------------


def cli(argv, capsys):
    from adamlab.cli import main

    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_reproduce_writes_files_and_prints_the_summary(tmp_path, capsys):
    rc, out, err = cli(["reproduce", "first-steps", "--quick", "--out", str(tmp_path)], capsys)
    assert rc == 0, err
    assert "3.1623 alpha" in out and "wrote" in out
    assert (tmp_path / "repro-first-steps.png").exists()
    rc, out, _ = cli(["reproduce", "--list"], capsys)
    assert rc == 0 and "bias-correction" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["reproduce", "vae"], "unknown reproduction 'vae'"),
        (["sweep", "adam", "--problem", "quadratic", "--grid", "lr=0.1:1"], "malformed --grid"),
        (["sweep", "adam", "--problem", "quadratic", "--grid", "lr"], "malformed --grid"),
        (
            ["sweep", "adam", "--problem", "quadratic", "--grid", "lr=fast"],
            "lr must be a number, a schedule or an array, got str 'fast'",
        ),
        (["sweep", "adam", "--problem", "quadratic", "--sample", "lr=1e-3:1:log"], "needs --n"),
        (
            ["sweep", "adam", "--problem", "quadratic", "--grid", "gamma=1,2"],
            "no hyperparameter 'gamma'",
        ),
        (["sweep", "adam", "--problem", "quadratic", "--grid", "lr=-1"], "Invalid lr"),
        (["sweep", "adamz", "--problem", "quadratic", "--grid", "lr=0.1"], "unknown optimizer"),
        (["sweep", "adam", "--problem", "nope", "--grid", "lr=0.1"], "unknown problem"),
        (["sweep", "adam", "--problem", "quadratic"], "at least one --grid"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(argv, message, capsys):
    rc, _, err = cli(argv, capsys)
    assert rc == 2
    assert err.startswith("adamlab: error: ") and message in err and err.count("\n") == 1


def test_cli_sweep_prints_best_configurations_writes_table_and_figures(tmp_path, capsys):
    argv = [
        "sweep", "adam", "--problem", "quadratic", "--grid", "lr=1e-3:1:5:log",
        "--grid", "bias_correction=true,false", "--seeds", "2", "--steps", "50",
        "--out", str(tmp_path),
    ]  # fmt: skip
    rc, out, err = cli(argv, capsys)
    assert rc == 0, err
    assert "10 configurations x 2 seed(s)" in out and "20 runs computed" in out
    assert "best on quadratic" in out
    for f in (
        "records.jsonl",
        "sweep.parquet",
        "heatmap-quadratic.png",
        "sensitivity-quadratic.png",
    ):
        assert (tmp_path / f).exists(), f
    rc, out, _ = cli(argv, capsys)  # resumes: nothing recomputed
    assert rc == 0 and "0 runs computed, 20 resumed" in out


def test_cli_sweep_refuses_an_unknown_value_before_running_or_writing(tmp_path, capsys):
    out = tmp_path / "o"
    argv = ["sweep", "adam", "--problem", "quadratic", "--grid", "lr=0.1", "--value", "nope"]
    rc, _, err = cli([*argv, "--out", str(out)], capsys)
    assert rc == 2 and "argument --value: invalid choice: 'nope'" in err and err.count("\n") == 1
    assert not out.exists()
