"""Where the optimizers went: the seed's 1-D figure (paths over the loss curve) and 2-D
contour plots (paths over log-spaced level sets). Drawn from a Result's recorded iterates and
its precomputed loss surface; nothing here evaluates the problem."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes

from .. import _exact as ex
from ..lab import Result
from ._common import colors, first_seed, formula_for, markers, short_name, title_for


def plot_path_1d(ax: Axes, result: Result, *, title: str | None = None) -> dict[str, Any]:
    """The seed lesson's figure: the loss curve f(x) and each optimizer's iterates
    (xₜ, f(xₜ)) joined in order, with x* marked.

    Returns ``{"surface": Line2D, "paths": {label: Line2D}, "x_star": Line2D | None}``.
    """
    if result.problem["dim"] != 1 or result.surface is None:
        raise ValueError("plot_path_1d needs a 1-D problem with its loss surface recorded")
    xs, fx = result.surface.axes[0], result.surface.loss
    out: dict[str, Any] = {"paths": {}, "ends": {}}
    curve = formula_for(result) or "f(x)"
    (out["surface"],) = ax.plot(xs, fx, color="0.35", lw=1.5, label=curve)
    col, mk = colors(result), markers(result)
    runs = first_seed(result)
    for i, t in enumerate(runs):  # hollow markers: where paths overlap, both stay visible
        z = 3 + 0.1 * (len(runs) - i)
        (out["paths"][t.label],) = ax.plot(
            t.x[:, 0], t.loss, "-", zorder=z, marker=mk[t.label], ms=5, mfc="none", mew=1,
            lw=1, color=col[t.label], label=f"{t.label} path",
            markevery=max(1, len(t.x) // 60),
        )  # fmt: skip
        ok = np.flatnonzero(np.isfinite(t.x[:, 0]) & np.isfinite(t.loss))
        if ok.size:
            j = ok[-1]
            (out["ends"][t.label],) = ax.plot(
                t.x[j, 0], t.loss[j], marker=mk[t.label], ms=9, color=col[t.label], mec="k",
                zorder=z + 1, linestyle="none",
                label=f"{short_name(t.label)} after {t.t[j]} steps: x = {t.x[j, 0]:.6g}",
            )  # fmt: skip
    t0 = runs[0]
    (out["start"],) = ax.plot(
        t0.x[0, 0], t0.loss[0], "o", ms=13, mfc="none", mec="k", mew=1.5, zorder=6,
        linestyle="none", label=f"start x₀ = {t0.x[0, 0]:g}",
    )  # fmt: skip
    out["x_star"] = None
    if result.x_star is not None and result.f_star is not None:
        (out["x_star"],) = ax.plot(
            result.x_star[0], result.f_star, "*", ms=13, color="gold", mec="k", zorder=2.5,
            label=f"minimum x* = {result.x_star[0]:g}", linestyle="none",
        )  # fmt: skip
    # a diverged path leaves the picture; the recorded surface spans every sane iterate
    finite = fx[np.isfinite(fx)]  # a pole on the surface (1/x) must not set the limits
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    ax.set_xlim(xs[0] - 0.02 * (xs[-1] - xs[0]), xs[-1] + 0.02 * (xs[-1] - xs[0]))
    ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("x")
    ax.set_ylabel("Loss")
    ax.set_title(title if title is not None else title_for(result))
    ax.legend(fontsize="small")
    ax.grid(True, alpha=0.4)
    return out


def log_levels(Z: np.ndarray, n: int = 20) -> np.ndarray:
    """``n`` contour levels spaced evenly in log(f − min f) between a low quantile and the
    maximum: dense near the minimum, where the paths end, and sparse on the walls."""
    finite = Z[np.isfinite(Z)]
    base = float(finite.min())
    gap = finite - base
    top = float(gap.max())
    if top <= 0:
        return np.array([base])
    low = max(float(np.quantile(gap[gap > 0], 0.002)), top * 1e-7)
    return base + ex.geomspace(low, top, n)


def plot_contour(
    ax: Axes, result: Result, *, levels: int | np.ndarray = 20, title: str | None = None
) -> dict[str, Any]:
    """A 2-D problem: log-spaced contours of the loss, each optimizer's path (its label, with
    the hyperparameters, in the legend), the shared start, each end point and x*.

    Returns ``{"contour": QuadContourSet, "levels": array, "paths": {label: Line2D},
    "ends": {label: Line2D}, "start": Line2D, "x_star": Line2D | None}``.
    """
    if result.problem["dim"] != 2 or result.surface is None:
        raise ValueError("plot_contour needs a 2-D problem with its loss surface recorded")
    xs, ys = result.surface.axes
    Z = result.surface.loss
    lv = log_levels(Z, levels) if np.ndim(levels) == 0 else np.asarray(levels)
    out: dict[str, Any] = {"paths": {}, "ends": {}, "levels": lv}
    out["contour"] = ax.contour(xs, ys, Z, levels=lv, cmap="viridis", linewidths=0.7, alpha=0.8)
    col, mk = colors(result), markers(result)
    for t in first_seed(result):
        c = col[t.label]
        (out["paths"][t.label],) = ax.plot(
            t.x[:, 0], t.x[:, 1], "-", marker=mk[t.label], ms=3, lw=1.2, color=c, label=t.label,
            markevery=max(1, len(t.x) // 40),
        )  # fmt: skip
        end = t.x[np.all(np.isfinite(t.x), axis=1)][-1]
        (out["ends"][t.label],) = ax.plot(
            end[0], end[1], marker=mk[t.label], ms=9, color=c, mec="k", linestyle="none"
        )
    (out["start"],) = ax.plot(
        *result.start[:2], "o", ms=8, mfc="white", mec="k", mew=1.5, linestyle="none", label="start"
    )
    out["x_star"] = None
    if result.x_star is not None:
        (out["x_star"],) = ax.plot(
            *result.x_star[:2], "*", ms=15, color="gold", mec="k", linestyle="none", label="x*"
        )
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(title if title is not None else title_for(result))
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=2)
    return out
