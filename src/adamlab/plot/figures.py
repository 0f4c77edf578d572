"""Whole figures for a Result (what ``adamlab compare`` and ``adamlab plot`` write), and
atomic saving. Figures are plain :class:`matplotlib.figure.Figure` objects: no pyplot, no
global state, nothing shown."""

from __future__ import annotations

from typing import Any

from matplotlib.figure import Figure

from ..lab import Result
from ._common import title_for
from .curves import plot_iterates, plot_loss
from .diagnostics import plot_diagnostics
from .paths import plot_contour, plot_path_1d

#: what ``save_figure`` / ``save_animation`` write, by file extension
ANIMATION_FORMATS = (".gif", ".html")


def draw_main(fig: Figure | Any, result: Result) -> dict[str, Any]:
    """The main view of a Result on ``fig`` (a Figure or SubFigure): the 1-D paths over the
    loss curve; a contour plot beside the progress curve in 2-D; the progress curve alone
    above that. Returns ``{panel: artists}`` with panels ``"paths"``, ``"contour"``, ``"loss"``."""
    panels = _panels(result)
    if panels == ("paths",):
        ax = fig.subplots()
        return {"paths": plot_path_1d(ax, result)}
    if panels == ("paths", "iterates"):
        ax1, ax2 = fig.subplots(1, 2)
        return {"paths": plot_path_1d(ax1, result), "iterates": plot_iterates(ax2, result)}
    if panels == ("paths", "loss"):
        ax1, ax2 = fig.subplots(1, 2)
        return {"paths": plot_path_1d(ax1, result), "loss": plot_loss(ax2, result)}
    if panels == ("contour", "loss"):
        ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.15, 1]})
        return {"contour": plot_contour(ax1, result), "loss": plot_loss(ax2, result)}
    ax = fig.subplots()
    return {"loss": plot_loss(ax, result, title=title_for(result))}


def _panels(result: Result) -> tuple[str, ...]:
    dim = result.problem["dim"]
    if dim == 1 and result.surface is not None:
        if len(result.seeds) > 1:  # several seeds: their median and band against the step
            return ("paths", "loss")
        # online / noisy problems and long runs: where x goes over time says more
        long = result.problem.get("stochastic") or result.steps > 200
        return ("paths", "iterates") if long else ("paths",)
    if dim == 2 and result.surface is not None:
        return ("contour", "loss")
    return ("loss",)


def figure_for(
    result: Result, *, diagnostics: bool = False, label: str | None = None, dpi: int = 100
) -> Figure:
    """The figure ``adamlab compare`` writes: :func:`draw_main`, and with ``diagnostics`` the
    :func:`~adamlab.plot.plot_diagnostics` panel (for ``label``, default the first optimizer
    with m̂) below it. The drawn artists are in ``fig.adamlab_artists``."""
    width = 13.0 if len(_panels(result)) == 2 else 8.0
    height = 5.0
    if not diagnostics:
        # one 8x5 panel (the seed figure) fits matplotlib's default margins, like the lesson's;
        # constrained layout would only add start-up time to the default command
        single = len(_panels(result)) == 1
        fig = Figure(figsize=(width, height), dpi=dpi, layout=None if single else "constrained")
        fig.adamlab_artists = draw_main(fig, result)  # type: ignore[attr-defined]
        return fig
    width = max(width, 11.0)
    fig = Figure(figsize=(width, height + 6.5), dpi=dpi, layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[height, 6.5])
    artists = draw_main(top, result)
    artists["diagnostics"] = plot_diagnostics(bottom, result, label=label)
    fig.adamlab_artists = artists  # type: ignore[attr-defined]
    return fig
