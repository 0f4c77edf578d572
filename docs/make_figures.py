"""Regenerate the lab's and the sweeps' figures in docs/img/ (used by the README).

    python docs/make_figures.py

Every figure comes from the public command or API, so what you see is what users get: the
sweep figures are what the ``adamlab sweep`` commands quoted in the README write, renamed.
(The reproductions' figures come from ``adamlab reproduce all --out docs/img``.)
"""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from adamlab import plot
from adamlab.cli import main
from adamlab.lab import compare

IMG = Path(__file__).resolve().parent / "img"


def run_cli(*argv: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    if code != 0:
        raise SystemExit(f"adamlab {' '.join(argv)} failed with status {code}")
    return out.getvalue()


def main_figures() -> None:
    IMG.mkdir(exist_ok=True)
    # 1. the main job: `adamlab compare` with no options (only the output path differs)
    print(run_cli("compare", "--out", str(IMG / "compare-seed.png")))

    # 2. Rosenbrock: three optimizers from the usual start (-1.2, 1); learning rates are
    #    reasonable hand-picked values, not tuned per optimizer
    r = compare(
        "rosenbrock",
        ["sgd:lr=1e-3,momentum=0.9", "adam:lr=0.05", "rmsprop:lr=0.01"],
        steps=1000,
    )
    print(r.table())
    plot.save_figure(plot.figure_for(r), IMG / "compare-rosenbrock.png")

    # 3. bias correction made visible: Adam's internals on the seed problem
    print(run_cli("compare", "--diagnostics", "--out", str(IMG / "diagnostics-seed.png")))

    # 4. Reddi, Kale & Kumar (2018), Theorem 1: Adam drifts to +1, AMSGrad reaches -1
    print(
        run_cli(
            "compare",
            "--problem",
            "reddi-thm1",
            "--steps",
            "600",
            "--opt",
            "adam:lr=0.1,betas=0/0.1",
            "--opt",
            "adam:lr=0.1,betas=0/0.1,amsgrad=true",
            "--out",
            str(IMG / "reddi-amsgrad.png"),
        )
    )


def sweep_figures() -> None:
    """The four sweep figures of the README's Sweeps section, from its commands."""
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        for name, argv, written in [
            (
                "repro-sweep-adam-rosenbrock.png",
                ["sweep", "adam", "--problem", "rosenbrock", "--grid", "lr=1e-4:3:19:log",
                 "--grid", "beta2=0.9,0.95,0.99,0.995,0.999,0.9995,0.9999", "--steps", "1000",
                 "--target", "1e-6"],
                "heatmap-rosenbrock.png",
            ),
            (
                "repro-sweep-sgd-rosenbrock.png",
                ["sweep", "sgd", "--problem", "rosenbrock", "--grid", "lr=1e-5:0.1:17:log",
                 "--grid", "momentum=0,0.5,0.8,0.9,0.95,0.99", "--steps", "1000",
                 "--target", "1e-6"],
                "heatmap-rosenbrock.png",
            ),
            (
                "repro-sweep-sensitivity.png",
                ["sweep", "adam", "--problem", "noisy-quadratic", "--grid", "lr=1e-3:3:19:log",
                 "--grid", "beta1=0,0.9", "--seeds", "8", "--steps", "200"],
                "sensitivity-noisy-quadratic.png",
            ),
        ]:  # fmt: skip
            out = runs / name
            print(run_cli(*argv, "--out", str(out)))
            shutil.copyfile(out / written, IMG / name)

    # the performance profile: tune() on ten problems, as the README's snippet
    import pandas as pd
    from matplotlib.figure import Figure

    from adamlab.lab.sweep import LogUniform, tune
    from adamlab.plot.sweep import plot_performance_profile

    candidates = {
        name: (opt, {"lr": LogUniform(1e-5, 1.0)})
        for name, opt in [("sgd", "sgd"), ("momentum", "sgd"), ("rmsprop", "rmsprop"),
                          ("adam", "adam")]
    }  # fmt: skip
    problems = ["sphere", "ill-conditioned", "ill-conditioned-rotated", "rosenbrock", "beale",
                "booth", "himmelblau", "styblinski-tang", "saddle", "two-well"]  # fmt: skip
    evals = []
    for p in problems:
        _, runs = tune(candidates, p, budget=16, steps=1000, target=1e-4,
                       metric="steps_to_target", fixed={"momentum": {"momentum": 0.9}},
                       tune_seeds=[0], eval_seeds=[1])  # fmt: skip
        evals.append(runs[runs.phase == "eval"])
    fig = Figure(figsize=(6.5, 4.2), layout="constrained")
    ax = fig.subplots()
    plot_performance_profile(ax, pd.concat(evals), "steps_to_target", instance="problem")
    ax.set_title(
        f"tuned optimizers on {len(problems)} analytic problems (steps to loss − f* ≤ 1e-4)"
    )
    fig.savefig(IMG / "repro-sweep-profile.png", dpi=110)


if __name__ == "__main__":
    main_figures()
    sweep_figures()
    sys.exit(0)
