"""``low-memory``: Adam with 8-bit and bfloat16 state against full precision.

Dettmers et al. (ICLR 2022) store Adam's m and v block-wise in 8 bits (a dynamic map, one
absmax per block of 256) and report that training matches 32-bit Adam. This reproduction
runs :class:`adamlab.optim.Adam` with ``state_precision`` full, ``"8bit"``, ``"bf16"`` and
``"bf16"`` with stochastic rounding on logistic regression (breast cancer) and the digits MLP,
same minibatches for all four, and draws (a) the training loss per step divided by full
precision's and (b, c) the
relative quantization error of the bias-corrected moments m̂ and v̂ at each step,
‖m̂ₛₜₒᵣₑ𝒹 − m̂‖/‖m̂‖ from the optimizer's diagnostics (``m_hat_error``, ``v_hat_error``).
(That error is the rounding of one step, against the moment computed from the stored one;
drift accumulated over steps shows in the loss.) ``min_8bit_size=0``: the models are small (31 and 2,410 parameters), below bitsandbytes'
default of 4,096.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ._common import Reproduction, finish

VARIANTS = {
    "full": {},
    "8bit": {"state_precision": "8bit", "min_8bit_size": 0},
    "bf16": {"state_precision": "bf16"},
    "bf16, stochastic rounding": {"state_precision": "bf16", "bf16_stochastic_round": True},
}
PROBLEMS = ("logreg-cancer", "mlp-digits")
COLORS = {"full": "k", "8bit": "C0", "bf16": "C3", "bf16, stochastic rounding": "C2"}


def _relative(err: np.ndarray, ref: np.ndarray) -> float:
    norm = float(np.linalg.norm(ref))
    return float(np.linalg.norm(err)) / norm if norm > 0 else 0.0


def run(problem, variant: dict, steps: int, lr: float, every: int) -> dict[str, np.ndarray]:
    """Adam on ``problem`` (minibatch order 0): the full-batch training loss every ``every``
    steps and the relative quantization error of m̂ and v̂ after every step."""
    import adamlab

    opt = adamlab.optim.Adam(lr=lr, **variant)
    oracle = problem.oracle(0)
    x = problem.x0.copy()
    s = opt.init(x)
    at, losses, m_err, v_err = [0], [float(problem.loss(x))], [], []
    for t in range(steps):
        _, g = oracle(x, t)
        x, s = opt.step(x, g, s)
        if variant:
            d = opt.diagnostics(s)
            m_err.append(_relative(d["m_hat_error"], d["m_hat"]))
            v_err.append(_relative(d["v_hat_error"], d["v_hat"]))
        if (t + 1) % every == 0 or t + 1 == steps:
            at.append(t + 1)
            losses.append(float(problem.loss(x)))
    return {
        "steps": np.array(at),
        "loss": np.array(losses),
        "m_hat_error": np.array(m_err),
        "v_hat_error": np.array(v_err),
        "test_accuracy": float(problem.test_accuracy(x)),
    }


def reproduce(out: Path, *, quick: bool = False) -> Reproduction:
    from matplotlib.figure import Figure

    from adamlab import problems

    t0 = time.perf_counter()
    steps, lr, every = (300, 1e-2, 5) if quick else (2000, 1e-2, 10)
    results = {
        name: {label: run(problems.PROBLEMS[name], v, steps, lr, every) for label, v in VARIANTS.items()}
        for name in PROBLEMS
    }  # fmt: skip

    fig = Figure(figsize=(14, 4.2 * len(PROBLEMS)), layout="constrained")
    axes = fig.subplots(len(PROBLEMS), 3, squeeze=False)
    for row, name in enumerate(PROBLEMS):
        ax_loss, ax_m, ax_v = axes[row]
        full = results[name]["full"]["loss"]
        for label, r in results[name].items():
            c = COLORS[label]
            ax_loss.plot(r["steps"], r["loss"] / full, color=c, lw=1.4, label=label)
            if r["m_hat_error"].size:
                t = np.arange(1, steps + 1)
                ax_m.plot(t, r["m_hat_error"], color=c, lw=0.8, label=label)
                ax_v.plot(t, r["v_hat_error"], color=c, lw=0.8, label=label)
        ax_loss.set_xlabel("step t")
        ax_loss.set_ylabel("training loss (full batch) / full precision's")
        ax_loss.set_title(f"(a) {name}: loss against full precision, lr = {lr}", loc="left")
        ax_loss.grid(True, alpha=0.3)
        ax_loss.legend(fontsize=8)
        for ax, sym in ((ax_m, "m̂"), (ax_v, "v̂")):
            ax.set_yscale("log")
            ax.set_xlabel("step t")
            ax.set_ylabel(f"‖{sym} stored − {sym}‖ / ‖{sym}‖")
            ax.set_title(f"({'b' if sym == 'm̂' else 'c'}) {name}: quantization error of {sym}",
                         loc="left")  # fmt: skip
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)

    numbers: dict = {"steps": steps, "lr": lr, "problems": {}}
    lines = []
    for name in PROBLEMS:
        base = float(results[name]["full"]["loss"][-1])
        rows = {}
        for label, r in results[name].items():
            final = float(r["loss"][-1])
            rows[label] = {
                "final_loss": final,
                "ratio_to_full": final / base,
                "test_accuracy": r["test_accuracy"],
                "median_m_hat_error": float(np.median(r["m_hat_error"])) if r["m_hat_error"].size else 0.0,
                "median_v_hat_error": float(np.median(r["v_hat_error"])) if r["v_hat_error"].size else 0.0,
            }  # fmt: skip
            lines.append(
                f"  {name:<14} {label:<26} loss {final:.6f}  x full {final / base:.4f}  "
                f"test acc {r['test_accuracy']:.4f}  median rel. error m_hat "
                f"{rows[label]['median_m_hat_error']:.2e}, v_hat {rows[label]['median_v_hat_error']:.2e}"
            )
        numbers["problems"][name] = rows
    summary = (
        f"low-memory: Adam with 8-bit and bfloat16 state vs full precision ({steps} steps, "
        f"lr {lr}, minibatches of 32, the same for every run)\n\n" + "\n".join(lines) + "\n\n"
        "8-bit: block-wise, block 256, dynamic map (Dettmers et al. 2022). bf16 rounded to\n"
        "nearest loses v's updates once 0.001*(g^2 - v) is under half a bfloat16 ulp of v;\n"
        "stochastic rounding keeps them in expectation.\n"
    )
    return finish("low-memory", out, {"": fig}, summary, numbers, t0)
