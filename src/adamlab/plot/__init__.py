"""Figures from a :class:`~adamlab.lab.Result` (matplotlib, object-oriented API).

Every helper draws on the ``ax`` (or ``fig`` for multi-panel helpers) it is given and
returns what it drew; none computes anything from the problem, calls ``plt.show()`` or
changes global style. Saving is explicit and atomic.

    >>> from matplotlib.figure import Figure
    >>> from adamlab.lab import compare
    >>> from adamlab import plot
    >>> r = compare("quadratic", ["sgd:lr=0.1", "adam:lr=0.1"])
    >>> fig = Figure(); drawn = plot.plot_path_1d(fig.subplots(), r)
    >>> plot.save_figure(fig, "paths.png")  # doctest: +SKIP
"""

from typing import Any

from .._files import FIGURE_FORMATS, save_figure
from .curves import plot_iterates, plot_loss
from .diagnostics import pick_trajectory, plot_diagnostics
from .figures import ANIMATION_FORMATS, draw_main, figure_for
from .paths import log_levels, plot_contour, plot_path_1d


def __getattr__(name: str) -> Any:
    # matplotlib.animation costs import time that a still figure does not need
    if name in ("animate", "save_animation"):
        from . import animation as _animation

        return getattr(_animation, name)
    raise AttributeError(f"module 'adamlab.plot' has no attribute {name!r}")


__all__ = [
    "ANIMATION_FORMATS",
    "FIGURE_FORMATS",
    "animate",
    "draw_main",
    "figure_for",
    "log_levels",
    "pick_trajectory",
    "plot_contour",
    "plot_diagnostics",
    "plot_iterates",
    "plot_loss",
    "plot_path_1d",
    "save_animation",
    "save_figure",
]
