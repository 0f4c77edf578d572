"""What Adam did inside: m vs m̂, v vs v̂, the bias factors 1 − β₁ᵗ and 1 − β₂ᵗ, and the
effective step — the four panels that make bias correction visible."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure, SubFigure

from ..lab import Result, Trajectory


def pick_trajectory(result: Result, label: str | None = None) -> Trajectory:
    """``label``'s trajectory, or the first one with bias-correction diagnostics (m̂)."""
    if label is not None:
        return result[label]
    for t in result.trajectories:
        if "m_hat" in t.diagnostics:
            return t
    for t in result.trajectories:  # no step taken: still prefer an Adam-family optimizer
        if "betas" in t.optimizer:
            return t
    return result.trajectories[0]


def _positive(*ys: np.ndarray) -> bool:
    vals = np.concatenate([np.ravel(y) for y in ys])
    vals = vals[np.isfinite(vals)]
    return vals.size > 0 and bool(np.all(vals > 0))


def plot_diagnostics(
    fig: Figure | SubFigure,
    result: Result,
    *,
    label: str | None = None,
    coord: int | None = None,
) -> dict[str, Any]:
    """Four panels for one optimizer (default: the first with m̂) and one recorded coordinate
    (default: the first recorded):

    1. first moment: mₜ (biased towards its zero start) and m̂ₜ = mₜ/(1 − β₁ᵗ);
    2. second moment: vₜ and v̂ₜ = vₜ/(1 − β₂ᵗ) (log scale);
    3. the bias factors 1 − β₁ᵗ and 1 − β₂ᵗ (log scale): far below 1 early, which is why
       the raw moments are too small and the correction divides by them;
    4. the effective step size α/(√v̂ₜ + ε) and the step actually taken |xₜ − xₜ₋₁|.

    Panels whose quantities this optimizer does not have say so. Returns
    ``{"trajectory": Trajectory, "axes": {panel: Axes}, "lines": {name: Line2D}}`` with panel
    names ``"m"``, ``"v"``, ``"bias"``, ``"step"``.
    """
    t = pick_trajectory(result, label)
    coord = result.tracked[0] if coord is None else coord
    if coord not in result.tracked:
        raise ValueError(f"coordinate {coord} was not recorded; recorded: {result.tracked}")
    j = result.tracked.index(coord)
    d = t.diagnostics
    steps = np.arange(len(t.loss))
    axs = fig.subplots(2, 2, sharex=True)
    axes = {"m": axs[0, 0], "v": axs[0, 1], "bias": axs[1, 0], "step": axs[1, 1]}
    lines: dict[str, Any] = {}
    sub = f"[{coord}]" if result.problem["dim"] > 1 else ""

    def col(name: str) -> np.ndarray:
        v = d[name]
        return v if v.ndim == 1 else v[:, j]

    def missing(ax: Any, what: str) -> None:
        why = (
            "no step taken"
            if t.steps_taken == 0
            else f"{t.optimizer.get('name', '?')} has no {what}"
        )
        ax.text(0.5, 0.5, why, ha="center",
                va="center", transform=ax.transAxes, color="0.4")  # fmt: skip
        ax.set_yticks([])

    ax = axes["m"]
    if "m" in d and "m_hat" in d:
        (lines["m"],) = ax.plot(steps, col("m"), "--", color="C0", label=f"m{sub} (raw)")
        (lines["m_hat"],) = ax.plot(
            steps, col("m_hat"), "-", color="C3", label=f"m̂{sub} = m/(1−β₁ᵗ)"
        )
        ax.axhline(0, color="0.6", lw=0.8)
        ax.legend(fontsize="small")
    else:
        missing(ax, "first moment")
    ax.set_title("first moment: m vs m̂")

    ax = axes["v"]
    if "v" in d and "v_hat" in d:
        (lines["v"],) = ax.plot(steps, col("v"), "--", color="C0", label=f"v{sub} (raw)")
        (lines["v_hat"],) = ax.plot(
            steps, col("v_hat"), "-", color="C3", label=f"v̂{sub} = v/(1−β₂ᵗ)"
        )
        if _positive(col("v"), col("v_hat")):
            ax.set_yscale("log")
        ax.legend(fontsize="small")
    else:
        missing(ax, "second moment")
    ax.set_title("second moment: v vs v̂")

    ax = axes["bias"]
    if "bias1" in d or "bias2" in d:
        if "bias1" in d:
            (lines["bias1"],) = ax.plot(steps, d["bias1"], color="C2", label="1 − β₁ᵗ")
        if "bias2" in d:
            (lines["bias2"],) = ax.plot(steps, d["bias2"], color="C4", label="1 − β₂ᵗ")
        ax.axhline(1, color="0.6", lw=0.8, ls=":")
        if _positive(*(d[k] for k in ("bias1", "bias2") if k in d)):
            ax.set_yscale("log")
        ax.legend(fontsize="small")
    else:
        missing(ax, "bias correction")
    ax.set_title("bias-correction factors")
    ax.set_xlabel("step t")

    ax = axes["step"]
    taken = np.abs(t.step[:, j])
    if "effective_lr" in d:
        (lines["effective_lr"],) = ax.plot(
            steps, col("effective_lr"), color="C1", label=f"α/(√v̂+ε){sub} (multiplies m̂)"
            if "v_hat" in d else f"effective lr{sub}",
        )  # fmt: skip
    (lines["step_taken"],) = ax.plot(steps, taken, ".-", ms=3, color="C0", label=f"|Δx{sub}| taken")
    if _positive(taken, *([col("effective_lr")] if "effective_lr" in d else [])):
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    ax.set_title("effective step")
    ax.set_xlabel("step t")
    for a in axes.values():
        a.grid(True, alpha=0.4)
    fig.suptitle(
        f"Inside {t.label}" + (f", coordinate {coord}" if result.problem["dim"] > 1 else "")
    )
    return {"trajectory": t, "axes": axes, "lines": lines}
