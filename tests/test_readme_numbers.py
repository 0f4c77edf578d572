"""README numbers outside its console blocks, checked against the code that makes them true.

``tests/test_readme.py`` runs every ``$ adamlab …`` example and compares the output digit for
digit; this file reads the README's prose where it states a count, a bound or a schedule, and
checks it against the constant or the computation behind it, so that neither can drift alone.
(The small real tasks' accuracies are read and checked in ``tests/test_problems_ml.py``.)
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from adamlab.lab import eval_every, loop, runner
from adamlab.problems import get_problem

README = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())


def stated(pattern: str) -> tuple[str, ...]:
    m = re.search(pattern, README)
    assert m, f"the README no longer says {pattern!r}"
    return m.groups()


def test_the_parity_table_size_and_settings():
    from test_parity_torch import CASES, STEPS

    (cases,) = stated(r"every flag combination `torch\.optim` also has \((\d+) cases\)")
    assert int(cases) == len(CASES)
    (steps,) = stated(r"also has \(\d+ cases\), (\d+) steps on random shapes")
    assert int(steps) == STEPS


def test_the_step_bound_counterexample():
    """README: gradients growing like (β2/β1)ᵗ "take steps of 2.3α at β = (0.9, 0.99)": the
    exact bound's limit (test_properties.py drives Adam there)."""
    alpha, b1, b2 = stated(r"take steps of ([\d.]+)α at β = \(([\d.]+), ([\d.]+)\)")
    b1, b2 = float(b1), float(b2)
    limit = (1 - b1) / math.sqrt(1 - b2) / math.sqrt(1 - b1 * b1 / b2)
    assert round(limit, 1) == float(alpha)


def test_the_evaluation_schedule():
    """README: "every step up to 64 parameters, else every `steps // 25` steps and the last"."""
    small, every = stated(r"every step up to (\d+) parameters, else every `steps // (\d+)` steps")
    assert int(small) == loop.SMALL
    assert eval_every(get_problem("sphere", dim=int(small)), 1000) == 1
    big = get_problem("sphere", dim=int(small) + 1)
    assert eval_every(big, 1000) == 1000 // int(every) and eval_every(big, 10) == 1


def test_the_recording_bound():
    """README: "every step up to 20,000 steps, then thinned evenly": the recorder thins once it
    holds twice its FULL_ROWS."""
    (rows,) = stated(r"recorded in bounded memory: every step up to ([\d,]+) steps, then thinned")
    assert int(rows.replace(",", "")) == 2 * runner.FULL_ROWS


@pytest.mark.parametrize(
    ("pattern", "value"),
    [
        (r"first step is α\(1−β1\)/√\(1−β2\)·sign\(g\) ≈ ([\d.]+)α at the defaults", 0.1 / math.sqrt(0.001)),
        (r"Adam's first step is α\(1 − β₁\)/√\(1 − β₂\) = ([\d.]+)α", 0.1 / math.sqrt(0.001)),
    ],
)  # fmt: skip
def test_the_uncorrected_first_step(pattern, value):
    (text,) = stated(pattern)
    decimals = len(text.split(".")[1])
    assert round(value, decimals) == float(text)


def test_the_ill_conditioned_pair():
    """README: axis-aligned, "Adam with lr 0.1 reaches a loss of about 10⁻⁸ in 200 steps"
    (1.15e-8: "about" is the order of magnitude); rotated by π/4 "the same Adam is still
    above 1"."""
    import adamlab

    (lr, steps) = stated(r"\(Adam with lr ([\d.]+) reaches a loss of about 10⁻⁸ in (\d+) steps\)")
    (above,) = stated(r"\(the same Adam is still above (\d+)\)")

    def final_loss(name: str) -> float:
        p = get_problem(name)
        opt = adamlab.Adam(lr=float(lr))
        x, state = p.x0, opt.init(p.x0)
        for _ in range(int(steps)):
            x, state = opt.step(x, p.grad(x), state)
        return float(p.loss(x))

    assert round(math.log10(final_loss("ill-conditioned"))) == -8
    assert final_loss("ill-conditioned-rotated") > float(above)


def minus(text: str) -> float:
    return float(text.replace("−", "-").replace("+", ""))


@pytest.fixture(scope="module")
def reproductions(tmp_path_factory):
    """The full reproductions the README quotes (seed, amsgrad), and amsgrad's quick one."""
    from adamlab.reproduce import run

    out = tmp_path_factory.mktemp("repro")
    return {
        "seed": run("seed", out / "seed").numbers,
        "amsgrad": run("amsgrad", out / "amsgrad").numbers,
        "amsgrad-quick": run("amsgrad", out / "quick", quick=True).numbers,
    }


def test_the_seed_reproduction(reproductions):
    """README, "seed": "SGD ends at 2.000086, Adam at 3.70", "first step exactly 0.1, median of
    the first 40 steps 0.093", "it walks 4.3 of the 6 units", Adam closer only for
    "α ∈ [0.97, 3]" — each to the digits printed."""
    n = reproductions["seed"]
    sgd, adam = stated(r"steps — SGD ends at ([\d.]+), Adam at ([\d.]+)\.")
    assert f"{n['sgd_final_x']:.6f}" == sgd and f"{n['adam_final_x']:.2f}" == adam
    first, median = stated(
        r"\(first step exactly ([\d.]+), median of the first 40 steps ([\d.]+)\)"
    )
    assert abs(n["adam_first_step"] - float(first)) < 1e-9  # "exactly" up to ε's 1e-10
    assert f"{n['adam_median_step_first_40']:.3f}" == median
    (walked,) = stated(r"so it walks ([\d.]+) of the 6 units in 50 steps")
    assert f"{8 - n['adam_final_x']:.1f}" == walked
    lo, hi = stated(r"α ∈ \[([\d.]+), ([\d.]+)\], where SGD oscillates")
    ((a, b),) = n["adam_wins_intervals"]
    assert f"{a:.2f}" == lo and b == float(hi)


def test_the_amsgrad_reproduction(reproductions):
    """README, "amsgrad": Theorem 1 after 3,000 steps, §5 after 20,000, each number to the
    digits printed; and the problems table's "Adam at +1 after ~3000 steps; AMSGrad … past
    −0.7 by then" (the quick reproduction's 3,000 steps of §5)."""
    n, quick = reproductions["amsgrad"], reproductions["amsgrad-quick"]
    steps, ax, ar, mx, mr = stated(
        r"after ([\d,]+) steps Adam is at ([+−\d.]+) with average regret Rₜ/t = ([\d.]+), flat;"
        r" AMSGrad at ([+−\d.]+) with Rₜ/t = ([\d.]+) and falling"
    )
    assert n["thm1_steps"] == int(steps.replace(",", ""))
    assert f"{n['thm1_adam_final_x']:+.4f}" == ax.replace("−", "-")
    assert f"{n['thm1_adam_final_regret_per_step']:.2f}" == ar
    assert f"{n['thm1_amsgrad_final_x']:.3f}" == mx.replace("−", "-")
    assert f"{n['thm1_amsgrad_final_regret_per_step']:.3f}" == mr
    steps, ax, mx = stated(r"after ([\d,]+) steps Adam is at ([+−\d.]+) and AMSGrad at ([+−\d.]+),")
    assert n["sec5_steps"] == int(steps.replace(",", ""))
    assert f"{n['sec5_adam_final_x']:+.2f}" == ax and f"{n['sec5_amsgrad_final_x']:.2f}" == (
        mx.replace("−", "-")
    )
    (past,) = stated(r"AMSGrad moves slowly towards −1 \(past ([−\d.]+) by then\)")
    assert quick["sec5_steps"] == 3000 and round(quick["sec5_adam_final_x"]) == 1
    assert quick["sec5_amsgrad_final_x"] < minus(past)
