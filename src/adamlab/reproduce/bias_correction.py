"""``bias-correction``: Kingma & Ba (2015) §6.4 in miniature, on the digits MLP.

The paper trains a VAE with β₁ ∈ {0, 0.9}, β₂ ∈ {0.99, 0.999, 0.9999} and log10 α from −5
to −1, with and without the bias-correction terms, and plots the loss after 10 and 100
epochs: without correction, β₂ close to 1 (needed for sparse or noisy gradients) makes
training unstable, most at large α and early on. Here the same grid (α from 1e−4 to 0.3)
trains ``mlp-digits`` (64 → 32 tanh → 10, minibatches of 32, 25 % held out) for a few
epochs, several minibatch-order seeds per point, all configurations of a seed in one
vectorised pass (:func:`adamlab.lab.sweep.sweep`). The loss is the exact full training
loss after the last step.

Why: without correction vₜ ≈ (1 − β₂ᵗ)·E[g²] is far too small early on when β₂ is close to 1
(1 − 0.9999ᵗ ≈ t·10⁻⁴), so the step α·mₜ/√vₜ is up to (1 − β₁)/√(1 − β₂) = 10× (β₁ = 0.9)
or 100× (β₁ = 0) too large for hundreds of steps.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .. import _exact as ex
from ._common import Reproduction, finish


def reproduce(out: Path, *, quick: bool = False) -> Reproduction:
    from matplotlib.figure import Figure

    from adamlab.lab import get_problem
    from adamlab.lab.sweep import grid, sweep
    from adamlab.plot.sweep import plot_sensitivity

    t0 = time.perf_counter()
    problem = get_problem("mlp-digits")
    epochs = 1 if quick else 3
    steps = epochs * int(np.ceil(problem.n_train / problem.batch_size))
    lrs = ex.logspace(-4, -0.5, 4 if quick else 8)
    seeds = [0] if quick else [0, 1, 2]
    beta1s, beta2s = [0.0, 0.9], [0.99, 0.999, 0.9999]
    configs = grid(
        lr=[float(v) for v in lrs], beta1=beta1s, beta2=beta2s, bias_correction=[True, False]
    )
    table = sweep(
        "adam", configs, problem, steps=steps, seeds=seeds, eval_every=steps, progress=False
    )
    table["correction"] = np.where(table["bias_correction"], "with correction", "without")

    fig = Figure(figsize=(13, 7.5), layout="constrained")
    axes = fig.subplots(2, 3, sharex=True, sharey=True)
    f0 = float(table["loss0"].iloc[0])
    styles = {"with correction": {"marker": "o", "ms": 4}, "without": {"marker": "s", "ms": 4}}
    colors = {"with correction": "C2", "without": "C3"}
    numbers: dict = {
        "problem": problem.name, "epochs": epochs, "steps": steps, "seeds": seeds,
        "learning_rates": lrs.tolist(), "initial_loss": f0, "cells": {},
    }  # fmt: skip
    for i, b1 in enumerate(beta1s):
        for j, b2 in enumerate(beta2s):
            ax = axes[i, j]
            sub = table[(table.beta1 == b1) & (table.beta2 == b2)]
            plot_sensitivity(ax, sub, "lr", "final_loss", by="correction", colors=colors,
                             styles=styles, ceiling=10 * f0)  # fmt: skip
            ax.axhline(f0, color="0.5", lw=0.8, ls="--")
            ax.set_title(f"β₁ = {b1:g}, β₂ = {b2:g}", loc="left", fontsize=10)
            if i == 0:
                ax.set_xlabel("")
            if j:
                ax.set_ylabel("")
            else:
                ax.set_ylabel(f"training loss after {epochs} epoch{'s' * (epochs > 1)}")
            med = sub.groupby(["bias_correction", "lr"]).final_loss.median()
            cell = {
                "with": {f"{lr:.3g}": float(med.loc[(True, lr)]) for lr in lrs},
                "without": {f"{lr:.3g}": float(med.loc[(False, lr)]) for lr in lrs},
            }
            numbers["cells"][f"beta1={b1:g},beta2={b2:g}"] = cell
    from matplotlib.lines import Line2D

    handles, _ = axes[0, 0].get_legend_handles_labels()
    handles.append(Line2D([], [], color="#c0392b", marker="x", ls="none",
                          label="some seeds ended above the initial loss"))  # fmt: skip
    axes[0, 0].legend(handles=handles, fontsize=8, loc="upper left")
    axes[0, 0].text(lrs[0], f0, " initial loss", va="bottom", fontsize=7, color="0.4")
    fig.suptitle(
        f"Adam with and without bias correction on the digits MLP ({epochs} epoch"
        f"{'s' * (epochs > 1)}, median and range over {len(seeds)} seed{'s' * (len(seeds) > 1)})",
        x=0.01, ha="left",
    )  # fmt: skip

    # the headline numbers: at the largest learning rate, β₂ = 0.9999 vs 0.99
    big = lrs[-1]
    rows = []
    for b1 in beta1s:
        for b2 in beta2s:
            c = numbers["cells"][f"beta1={b1:g},beta2={b2:g}"]
            w, wo = c["with"][f"{big:.3g}"], c["without"][f"{big:.3g}"]
            best_w, best_wo = min(c["with"].values()), min(c["without"].values())
            rows.append(
                f"  beta1={b1:<3g} beta2={b2:<7g} loss at lr={big:.3g}: with {w:8.4f}   "
                f"without {wo:10.4f}   | best over lr: with {best_w:.4f}  without {best_wo:.4f}"
            )
    unstable = table[(~table.bias_correction) & (table.beta2 == 0.9999)]
    stable = table[(table.bias_correction) & (table.beta2 == 0.9999)]
    numbers["diverged_without_b2_9999"] = int(unstable.diverged.sum())
    numbers["diverged_with_b2_9999"] = int(stable.diverged.sum())
    numbers["runs_per_variant"] = len(unstable)
    numbers["largest_lr"] = float(big)
    summary = (
        f"bias-correction: Kingma & Ba section 6.4 in miniature, {problem.name}, {epochs} "
        f"epoch(s) = {steps} steps of batch {problem.batch_size}, {len(seeds)} seed(s), "
        f"{len(table)} runs\n(median final training loss over seeds; initial loss {f0:.4f})\n\n"
        + "\n".join(rows)
        + f"\n\nWith beta2 = 0.9999, runs that ended above the initial loss or non-finite: "
        f"{numbers['diverged_without_b2_9999']} of {len(unstable)} without correction, "
        f"{numbers['diverged_with_b2_9999']} of {len(stable)} with it.\n"
        "Without correction, beta2 close to 1 makes the early steps far too large\n"
        "(alpha (1 - beta1)/sqrt(1 - beta2) = 10 alpha at beta1 = 0.9, beta2 = 0.9999), so at\n"
        "large learning rates training is unstable and ends worse; with correction the three\n"
        "beta2 values behave alike. At small learning rates the difference fades, as in the\n"
        "paper; there the uncorrected run can even end lower, because its too-large early\n"
        "steps act like a larger learning rate: the correction buys stability across alpha,\n"
        "not a better optimum.\n"
    )
    return finish("bias-correction", out, {"": fig}, summary, numbers, t0)
