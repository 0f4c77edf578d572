"""Progress against steps: log suboptimality (or loss, gradient norm, distance to x*), with
a band over seeds when a Result holds several."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from matplotlib.axes import Axes

from ..lab import Result
from ._common import colors

_TOP = 1e150

Quantity = Literal["suboptimality", "loss", "grad_norm", "distance"]

_YLABEL = {
    "suboptimality": "f(xₜ) − f*",
    "loss": "f(xₜ)",
    "grad_norm": "‖∇f(xₜ)‖",
    "distance": "‖xₜ − x*‖",
}


def plot_loss(
    ax: Axes,
    result: Result,
    *,
    what: Quantity = "suboptimality",
    band: Literal["minmax", "iqr"] = "minmax",
    title: str | None = None,
) -> dict[str, dict[str, Any]]:
    """One curve per optimizer against the step t, on a log y axis.

    ``suboptimality`` is f(xₜ) − f* (the loss itself where f* is unknown; exact zeros drawn
    at 1e−16). With several seeds the line is the median over seeds and a shaded band spans
    the min–max (``band="minmax"``) or interquartile range (``"iqr"``). A diverged run ends
    with a ✕ at its last finite value.

    Returns ``{label: {"line": Line2D, "band": PolyCollection | None, "diverged": Line2D | None}}``.
    """
    col = colors(result)
    out: dict[str, dict[str, Any]] = {}
    positive = True
    for label in result.labels:
        p = result.progress(label, what, band)
        # beyond _TOP a run has escaped; log-axis margins would overflow
        mid, lo, hi = (np.minimum(a, _TOP) for a in (p.median, p.low, p.high))
        suffix = f" (median of {p.seeds} seeds)" if p.seeds > 1 else ""
        (line,) = ax.plot(p.steps, mid, color=col[label], lw=1.5, label=label + suffix)
        entry: dict[str, Any] = {"line": line, "band": None, "diverged": None}
        if p.seeds > 1:
            entry["band"] = ax.fill_between(p.steps, lo, hi, color=col[label], alpha=0.2, lw=0)
        if p.diverged:
            xs, ys = zip(*p.diverged, strict=True)
            (entry["diverged"],) = ax.plot(
                xs, np.minimum(ys, _TOP), "x", ms=10, mew=2, color=col[label], linestyle="none",
                label=f"{label}: diverged at step {p.diverged_at}",
            )  # fmt: skip
        positive &= p.all_positive
        out[label] = entry
    if positive:
        ax.set_yscale("log")
    # a blow-up would flatten every other curve: cap the view, the ✕ marks the escape
    starts = [e["line"].get_ydata()[0] for e in out.values()]
    starts = [float(v) for v in starts if np.isfinite(v)]
    if starts and any(e["diverged"] is not None for e in out.values()):
        cap = max(starts) * (1e3 if positive else 10) if max(starts) > 0 else None
        if (
            cap is not None
            and np.nanmax([np.nanmax(e["line"].get_ydata()) for e in out.values()]) > cap
        ):
            lows = [np.nanmin(e["line"].get_ydata()) for e in out.values()]
            bottom = min(lows) / 3 if positive else min(lows) - 0.1 * abs(cap)
            ax.set_ylim(bottom, cap)
            for e in out.values():
                if e["diverged"] is not None:
                    e["diverged"].set_ydata(np.minimum(e["diverged"].get_ydata(), cap))
                    e["diverged"].set_clip_on(False)
    ylabel = _YLABEL[what]
    if what == "suboptimality" and result.f_star is None:
        ylabel = _YLABEL["loss"]
    ax.set_xlabel("step t")
    ax.set_ylabel(ylabel)
    if title is None:
        title = "Progress" if what in ("suboptimality", "loss") else ylabel
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.4)
    ax.legend(fontsize="small")
    return out


def plot_iterates(ax: Axes, result: Result, *, coord: int | None = None) -> dict[str, Any]:
    """The iterate xₜ (one tracked coordinate) against the step t, one line per optimizer
    (first seed), with x* dashed: where a run drifts, e.g. Adam to +1 on Reddi et al.'s
    counterexample while AMSGrad goes to −1.

    Returns ``{"lines": {label: Line2D}, "x_star": Line2D | None}``.
    """
    coord = result.tracked[0] if coord is None else coord
    if coord not in result.tracked:
        raise ValueError(f"coordinate {coord} was not recorded; recorded: {result.tracked}")
    j = result.tracked.index(coord)
    col = colors(result)
    out: dict[str, Any] = {"lines": {}, "x_star": None}
    seen: set[str] = set()
    for t in result.trajectories:
        if t.label in seen:
            continue
        seen.add(t.label)
        (out["lines"][t.label],) = ax.plot(
            np.arange(len(t.x)), t.x[:, j], color=col[t.label], lw=1.2, label=t.label
        )
    if result.x_star is not None:
        out["x_star"] = ax.axhline(
            result.x_star[coord], color="goldenrod", ls="--", lw=1.2, label="x*"
        )
    name = "x" if result.problem["dim"] == 1 else f"x[{coord}]"
    ax.set_xlabel("step t")
    ax.set_ylabel(f"{name}ₜ")
    ax.set_title(f"{name} against step")
    ax.grid(True, alpha=0.4)
    ax.legend(fontsize="small")
    return out
