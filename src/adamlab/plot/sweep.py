"""Figures from a sweep table: heatmaps, learning-rate sensitivity, performance profiles.

Each helper draws on the ``ax`` it is given and returns what it drew. The aggregation over
seeds is done by :mod:`adamlab.lab.sweep` (``grid_summary``, ``curve_summary``,
``performance_profile``); nothing here runs an optimizer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.colors import LogNorm, Normalize
from matplotlib.patches import Patch, Rectangle

from ..lab.sweep import curve_summary, grid_summary, performance_profile

__all__ = ["fmt_value", "plot_heatmap", "plot_performance_profile", "plot_sensitivity"]

LABELS = {
    "lr": "learning rate α",
    "beta1": "β₁",
    "beta2": "β₂",
    "eps": "ε",
    "momentum": "momentum μ",
    "weight_decay": "weight decay λ",
    "final_loss": "final loss",
    "best_loss": "best loss",
    "gap": "final loss − f*",
    "steps_to_target": "steps to target",
    "test_loss": "test loss",
    "test_accuracy": "test accuracy",
    "train_accuracy": "training accuracy",
}


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " "))


def fmt_value(v: Any) -> str:
    """Short tick labels: 0.001 → 1e-3, 0.999 → .999, 0.9 → 0.9."""
    if isinstance(v, (bool, np.bool_)):
        return "on" if v else "off"
    if isinstance(v, (int, float, np.integer, np.floating)):
        v = float(v)
        if v != 0 and (abs(v) < 1e-2 or abs(v) >= 1e4):
            m, e = f"{v:.1e}".split("e")
            m = m.rstrip("0").rstrip(".")
            return f"{m}e{int(e)}"
        short = repr(v)
        return short if len(short) <= 7 else f"{v:.3g}"
    return str(v)


def plot_heatmap(
    ax: Any,
    table: Any,
    x: str = "lr",
    y: str = "beta2",
    value: str = "final_loss",
    *,
    agg: str = "median",
    log: bool = True,
    diverged_at: float = 0.5,
    cmap: str = "viridis_r",
    colorbar: bool = True,
    annotate: bool = False,
    vmin: float | None = None,
    vmax: float | None = None,
) -> dict[str, Any]:
    """A grid of ``agg(value)`` over seeds, x across and y up (one cell per grid point).

    The divergence edge is drawn explicitly: a cell where at least ``diverged_at`` of the
    runs diverged is hatched in red ("diverged"), whatever its value; a cell with no finite
    value (e.g. ``steps_to_target`` never reached) is light grey and dotted. Lower is
    better: the default colour map is bright where the value is low. The legend for those
    two kinds of cells sits above the axes on the right; put a title on the left
    (``ax.set_title(..., loc="left")``).

    Returns ``{"mesh", "colorbar", "diverged": [Rectangle], "missing": [Rectangle],
    "legend", "values", "xs", "ys"}``.
    """
    xs, ys, vals, div = grid_summary(table, x, y, value, agg=agg)
    shown = np.where(div >= diverged_at, np.nan, vals)
    finite = shown[np.isfinite(shown)]
    if log:
        pos = finite[finite > 0]
        lo = vmin if vmin is not None else (pos.min() if pos.size else 1e-16)
        hi = vmax if vmax is not None else (pos.max() if pos.size else 1.0)
        norm = LogNorm(vmin=lo, vmax=max(hi, lo * 10))
        shown = np.where(shown > 0, shown, np.where(np.isfinite(shown), lo, np.nan))
    else:
        lo = vmin if vmin is not None else (finite.min() if finite.size else 0.0)
        hi = vmax if vmax is not None else (finite.max() if finite.size else 1.0)
        norm = Normalize(vmin=lo, vmax=hi if hi > lo else lo + 1)
    masked = np.ma.masked_invalid(shown)
    ex = np.arange(len(xs) + 1) - 0.5
    ey = np.arange(len(ys) + 1) - 0.5
    mesh = ax.pcolormesh(ex, ey, masked, cmap=cmap, norm=norm, shading="flat")
    diverged, missing = [], []
    for i in range(len(ys)):
        for j in range(len(xs)):
            if np.isnan(div[i, j]):
                continue
            if div[i, j] >= diverged_at:
                r = Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#f4c7c3", edgecolor="#c0392b",
                              hatch="xxx", linewidth=0.0)  # fmt: skip
                ax.add_patch(r)
                diverged.append(r)
            elif not np.isfinite(shown[i, j]):
                r = Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#dddddd", edgecolor="#999999",
                              hatch="..", linewidth=0.0)  # fmt: skip
                ax.add_patch(r)
                missing.append(r)
            elif annotate:
                ax.text(j, i, fmt_value(vals[i, j]), ha="center", va="center", fontsize=6,
                        color="white" if norm(shown[i, j]) > 0.5 else "black")  # fmt: skip
    step_x = max(1, len(xs) // 10)
    step_y = max(1, len(ys) // 10)
    ax.set_xticks(np.arange(len(xs))[::step_x], [fmt_value(v) for v in xs[::step_x]])
    ax.set_yticks(np.arange(len(ys))[::step_y], [fmt_value(v) for v in ys[::step_y]])
    ax.set_xlim(-0.5, len(xs) - 0.5)
    ax.set_ylim(-0.5, len(ys) - 0.5)
    if len(xs) > 6:
        ax.tick_params(axis="x", labelrotation=45)
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(y))
    cb = None
    if colorbar:
        cb = ax.figure.colorbar(mesh, ax=ax)
        cb.set_label(f"{label(value)} ({agg} over seeds)")
    handles = []
    if diverged:
        handles.append(Patch(facecolor="#f4c7c3", edgecolor="#c0392b", hatch="xxx",
                             label=f"diverged (≥{diverged_at:.0%} of runs)"))  # fmt: skip
    if missing:
        handles.append(Patch(facecolor="#dddddd", edgecolor="#999999", hatch="..",
                             label="target never reached" if value == "steps_to_target"
                             else "no finite value"))  # fmt: skip
    legend = None
    if handles:
        # above the plot, right-aligned (titles of these panels go on the left)
        legend = ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0),
                           ncol=len(handles), fontsize=8, frameon=False, borderaxespad=0.2)  # fmt: skip
    return {
        "mesh": mesh, "colorbar": cb, "diverged": diverged, "missing": missing,
        "legend": legend, "values": vals, "xs": xs, "ys": ys,
    }  # fmt: skip


def plot_sensitivity(
    ax: Any,
    table: Any,
    x: str = "lr",
    value: str = "final_loss",
    *,
    by: str | Sequence[str] = "optimizer",
    band: str = "minmax",
    logx: bool = True,
    logy: bool = True,
    ceiling: float | None = None,
    colors: dict[str, str] | None = None,
    styles: dict[str, dict] | None = None,
) -> dict[str, Any]:
    """Median ``value`` against ``x`` per group, with a band over seeds.

    ``band`` is "minmax" (the whole seed range) or "iqr" (quartiles). Runs that diverged or
    ended non-finite are marked with a red × at the ``ceiling`` (default: 10 × the initial
    loss), and every value is clipped there, so the unstable side of the curve stays visible
    instead of vanishing from a log plot.

    Returns ``{"lines": {group: Line2D}, "bands": {group: PolyCollection},
    "diverged": {group: PathCollection}, "summary": DataFrame, "ceiling": float}``.
    """
    if band not in ("minmax", "iqr"):
        raise ValueError(f"Invalid band: {band!r}; choose 'minmax' or 'iqr'")
    s = curve_summary(table, x, value, by=by)
    bycols = [by] if isinstance(by, str) else list(by)
    fin = s[["median", "q25", "q75", "min", "max"]].to_numpy()
    fin = fin[np.isfinite(fin)]
    if ceiling is None:
        if "loss0" in table and np.isfinite(table["loss0"]).any():
            top = float(np.nanmax(np.abs(table["loss0"].to_numpy(float))))
        else:
            top = float(np.max(np.abs(fin))) if fin.size else 1.0
        top = top if top > 0 else 1.0
        ceiling = top * 10 if logy else top * 1.2
    lo_col, hi_col = ("min", "max") if band == "minmax" else ("q25", "q75")
    lines, bands, marks = {}, {}, {}
    for i, (key, g) in enumerate(s.groupby(bycols, sort=False)):
        keys = key if isinstance(key, tuple) else (key,)
        name = ", ".join(
            f"{label(col)} = {fmt_value(k)}" if col in LABELS else fmt_value(k)
            for col, k in zip(bycols, keys, strict=False)
        )
        color = (colors or {}).get(name, f"C{i % 10}")
        style = {"lw": 1.8, **(styles or {}).get(name, {})}
        xv = g[x].to_numpy(float)
        med = np.minimum(g["median"].to_numpy(float), ceiling)
        lo = np.minimum(g[lo_col].to_numpy(float), ceiling)
        hi = np.minimum(g[hi_col].to_numpy(float), ceiling)
        (lines[name],) = ax.plot(xv, med, color=color, label=name, **style)
        bands[name] = ax.fill_between(xv, lo, hi, color=color, alpha=0.18, linewidth=0)
        bad = g["diverged"].to_numpy(float) > 0
        if bad.any():
            marks[name] = ax.scatter(xv[bad], np.full(bad.sum(), ceiling), marker="x", color="#c0392b",
                                     s=28, zorder=5, clip_on=False)  # fmt: skip
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    where = "10 × the initial loss" if logy else "1.2 × the largest value"
    ax.axhline(ceiling, color="#c0392b", lw=0.6, ls=":", zorder=0,
               label=f"diverged runs (×), drawn at {where}")  # fmt: skip
    ax.set_xlabel(label(x))
    ax.set_ylabel(label(value))
    ax.grid(True, which="major", alpha=0.3)
    return {"lines": lines, "bands": bands, "diverged": marks, "summary": s, "ceiling": ceiling}


def plot_performance_profile(
    ax: Any,
    table: Any,
    cost: str = "steps_to_target",
    *,
    solver: str = "optimizer",
    instance: str | Sequence[str] = ("problem", "seed"),
) -> dict[str, Any]:
    """Dolan–Moré performance profiles: ρ_s(τ), the fraction of instances a solver finishes
    within τ × the best solver's cost (log₂ τ axis). See
    :func:`adamlab.lab.sweep.performance_profile`. Returns ``{"lines": {solver: Line2D},
    "taus", "rho"}``."""
    taus, rho = performance_profile(table, cost, solver=solver, instance=instance)
    lines = {}
    for i, (s, r) in enumerate(rho.items()):
        (lines[s],) = ax.step(taus, r, where="post", color=f"C{i % 10}", lw=1.8, label=str(s))
    ax.set_xscale("log", base=2)
    ax.set_xlim(1, taus.max())
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(f"τ  (within τ × the best {label(cost)})")
    ax.set_ylabel("fraction of instances ρ(τ)")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return {"lines": lines, "taus": taus, "rho": rho}
