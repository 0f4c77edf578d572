"""Regenerate the figures in docs/img/ (used by the README).

    python docs/make_figures.py

Every figure comes from the public command or API, so what you see is what users get.
"""

from __future__ import annotations

import contextlib
import io
import sys
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


if __name__ == "__main__":
    main_figures()
    sys.exit(0)
