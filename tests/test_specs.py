"""One grammar for text specs: compare, sweep and reproduce read the same values the same way."""

from __future__ import annotations

import math

import numpy as np
import pytest

import adamlab
from adamlab.cli import main
from adamlab.lab import compare
from adamlab.lab.specs import (
    parse_fixed,
    parse_grid_axis,
    parse_optimizer_spec,
    parse_sample_axis,
    parse_seeds,
    parse_value,
    problem_from_spec,
)
from adamlab.lab.sweep import LogUniform, OneMinusLogUniform, sweep


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("true", True), ("Yes", True), ("on", True), ("false", False), ("no", False),
        ("OFF", False), ("3", 3), ("-2", -2), ("0.1", 0.1), ("1e-3", 1e-3), ("inf", math.inf),
        ("0.9/0.999", (0.9, 0.999)), ("false/true", (False, True)),
        ("before_correction", "before_correction"), ("student-t", "student-t"),
        ("8bit", "8bit"), ("bf16", "bf16"),
    ],
)  # fmt: skip
def test_values(text, value):
    assert parse_value(text) == value


def test_schedules_are_values():
    s = parse_value("inverse_sqrt(0.5)")
    assert s == adamlab.schedules.inverse_sqrt(0.5) and s(4) == 0.25
    c = parse_value("cosine(0.1, total_steps=100, warmup_steps=10)")
    assert c == adamlab.schedules.cosine(0.1, total_steps=100, warmup_steps=10)
    assert parse_value("step_decay(1, 10, gamma=0.5)")(11) == 0.5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty value"),
        ("nan", "NaN is refused"),
        ("0.9.9", "is not a number, true/false, a/b pair, schedule or name"),
        ("12-3", "is not a number, true/false, a/b pair, schedule or name"),
        ("-bit", "is not a number, true/false, a/b pair, schedule or name"),
        ("foo(1)", "unknown schedule 'foo'; choose one of constant, step_decay"),
        ("cosine(0.1)", "missing 1 required positional argument: 'total_steps'"),
        ("inverse_sqrt(x)", "schedule arguments are numbers, got 'x'"),
        ("cosine(total_steps=5, 0.1)", "a positional argument after a keyword argument"),
    ],
)
def test_bad_values_say_what_is_wrong(text, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_value(text)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("adam:lr=0.1,", "empty item .* trailing comma"),
        ("adam:,lr=0.1", "empty item"),
        ("adam:", "nothing after ':'"),
        ("adam:lr", "malformed 'lr'"),
        ("adam:lr=0.1,lr=0.2", "'lr' given twice"),
        ("adam:lr=cosine(0.1,5", r"unbalanced '\('"),
        ("adma:lr=0.1", "unknown optimizer 'adma'"),
        ("adam:beta=0.9", "unknown hyperparameter 'beta' for adam; valid: lr, betas"),
    ],
)
def test_bad_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_optimizer_spec(spec)


def test_commas_inside_a_schedule_do_not_split_items():
    name, kw = parse_optimizer_spec("adam:lr=cosine(0.1,100),betas=0.9/0.99")
    assert name == "adam" and kw["lr"] == adamlab.schedules.cosine(0.1, 100)
    assert kw["betas"] == (0.9, 0.99)


def test_every_state_precision_is_a_spec_value(capsys):
    """``8bit`` starts with a digit and is still a name (it was refused as 'not a number')."""
    for precision in ("fp32", "bf16", "8bit"):
        _, kw = parse_optimizer_spec(f"adam:state_precision={precision},min_8bit_size=0")
        assert adamlab.Adam(**kw).state_precision == precision
    opt = "adam:lr=0.1,state_precision=8bit,min_8bit_size=0"
    assert main(["compare", "--opt", opt, "--steps", "5", "--no-figure"]) == 0
    assert "state_precision=8bit" in capsys.readouterr().out


def test_the_same_value_in_compare_and_in_sweep(capsys, tmp_path):
    """``yes`` is True for --opt as for --fixed (it used to be refused by compare)."""
    assert main(["compare", "--opt", "adam:lr=0.1,amsgrad=yes", "--steps", "5", "--no-figure"]) == 0
    assert "amsgrad=True" in capsys.readouterr().out
    argv = ["sweep", "adam", "--problem", "quadratic", "--grid", "lr=0.1,0.2", "--steps", "5",
            "--fixed", "amsgrad=yes", "--fixed", "betas=0.9/0.99", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    import pandas as pd

    parquet = tmp_path / "sweep.parquet"
    table = pd.read_parquet(parquet) if parquet.exists() else pd.read_csv(tmp_path / "sweep.csv")
    assert table.amsgrad.all() and len(table) == 2


def test_sweep_axes_and_seeds():
    name, vals = parse_grid_axis("lr=1e-4:1:5:log")
    assert name == "lr" and vals[0] == 1e-4 and vals[-1] == 1.0 and len(vals) == 5
    assert parse_grid_axis("amsgrad=yes,no") == ("amsgrad", [True, False])
    assert parse_grid_axis("betas=0.9/0.99,0.9/0.999") == ("betas", [(0.9, 0.99), (0.9, 0.999)])
    assert parse_sample_axis("lr=1e-4:1:log")[1] == LogUniform(1e-4, 1.0)
    assert parse_sample_axis("beta2=0.9:0.9999:log1m")[1] == OneMinusLogUniform(0.9, 0.9999)
    assert parse_fixed("lr=inverse_sqrt(1)")[1] == adamlab.schedules.inverse_sqrt(1)
    assert parse_seeds("3") == [0, 1, 2] and parse_seeds("0,4,7") == [0, 4, 7]
    for bad, msg in [("lr=1:2:0", "n must be a whole number >= 1"), ("lr=0:1:5:log", "lo, hi > 0"),
                     ("lr=0.1,", "empty item"), ("lr=a:1:3", "'a' is not a finite number")]:  # fmt: skip
        with pytest.raises(ValueError, match=msg):
            parse_grid_axis(bad)
    with pytest.raises(ValueError, match="--seeds must be a count or a list"):
        parse_seeds("0,1,")


def test_problem_specs_keep_their_name():
    p = problem_from_spec("ill-conditioned:kappa=1000,theta=0.3")
    assert p.name == "ill-conditioned:kappa=1000,theta=0.3" and p.kappa == 1000
    assert problem_from_spec("rosenbrock").name == "rosenbrock"
    with pytest.raises(ValueError, match="empty item"):
        problem_from_spec("rosenbrock:a=2,")


def test_reddi_section_5_with_alpha_over_sqrt_t_from_the_command_line(capsys):
    """Reddi et al. §5 runs α/√t; the spec grammar expresses it, and the CLI's run is the
    Python API's with the schedule object."""
    argv = ["compare", "--problem", "reddi-sec5", "--steps", "300", "--no-figure",
            "--opt", "adam:lr=inverse_sqrt(1),betas=0.9/0.99",
            "--opt", "adam:lr=inverse_sqrt(1),betas=0.9/0.99,amsgrad=true"]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr().out
    s = adamlab.schedules.inverse_sqrt(1.0)
    r = compare("reddi-sec5", [adamlab.Adam(lr=s, betas=(0.9, 0.99)),
                               adamlab.Adam(lr=s, betas=(0.9, 0.99), amsgrad=True)], steps=300)  # fmt: skip
    for t in r.trajectories:
        assert f"{t.x[-1, 0]:.7g}" in printed
    assert r.trajectories[0].x[-1, 0] > r.trajectories[1].x[-1, 0]  # AMSGrad moves towards -1


def test_a_schedule_sweeps_like_any_value(tmp_path):
    t = sweep("adam", [{"lr": parse_value("inverse_sqrt(0.5)")}, {"lr": 0.1}], "reddi-thm1",
              steps=50, fixed={"betas": (0.0, 0.1)})  # fmt: skip
    assert len(t) == 2 and np.isfinite(t.final_loss).all()


def test_a_number_too_large_for_a_float_is_refused_by_name():
    """A whole number beyond float range is refused naming the argument (not an
    OverflowError from inside float())."""
    with pytest.raises(ValueError, match=r"Invalid lr: a number of 401 digits; it must lie in"):
        adamlab.SGD(lr=10**400)
    with pytest.raises(ValueError, match="Invalid lr: a number of 401 digits"):
        adamlab.Adam(**parse_optimizer_spec(f"adam:lr={10**400}")[1])
