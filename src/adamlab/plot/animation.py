"""The runs as animations: the main view of a Result with the paths growing step by step,
written as an animated GIF (Pillow) or a self-contained HTML page (``to_jshtml``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.animation import FuncAnimation, PillowWriter
from matplotlib.figure import Figure

from .._files import atomic_path, check_suffix, write_atomic
from ..lab import Result
from .figures import ANIMATION_FORMATS, _panels, draw_main

# to_jshtml links Font Awesome from a CDN for its button icons; these glyphs replace it so
# that the page works offline, with no request leaving it.
_OFFLINE_ICONS = """<style>
.fa{font-style:normal;font-family:sans-serif}
.fa-play:before{content:"\\25B6"}.fa-pause:before{content:"\\23F8"}
.fa-step-forward:before{content:"\\25B6|"}.fa-step-backward:before{content:"|\\25C0"}
.fa-fast-forward:before{content:"\\23ED"}.fa-fast-backward:before{content:"\\23EE"}
.fa-plus:before{content:"+"}.fa-minus:before{content:"\\2212"}
.fa-flip-horizontal{display:inline-block;transform:scaleX(-1)}
</style>"""


def _segments(artists: dict[str, Any]) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """(line, full x data, full y data) for every line that grows with the steps."""
    out = []
    for panel, drawn in artists.items():
        if panel in ("paths", "contour"):
            for line in drawn["paths"].values():
                out.append((line, np.asarray(line.get_xdata()), np.asarray(line.get_ydata())))
        elif panel == "iterates":
            for line in drawn["lines"].values():
                out.append((line, np.asarray(line.get_xdata()), np.asarray(line.get_ydata())))
        elif panel == "loss":
            for entry in drawn.values():
                line = entry["line"]
                out.append((line, np.asarray(line.get_xdata()), np.asarray(line.get_ydata())))
    return out


def animate(
    result: Result, *, max_frames: int = 40, interval_ms: int = 120, dpi: int = 80
) -> FuncAnimation:
    """An animation of :func:`~adamlab.plot.draw_main`: the paths (and progress curves) are
    revealed step by step; the end markers follow the current iterate. Long runs are
    subsampled to at most ``max_frames`` frames (the last step is always shown).

    Everything that does not move (contours, axes, ticks, legend) is rendered once into a
    background image, so a frame only draws the growing lines: saving stays fast. Save at
    the figure's own dpi (:func:`save_animation` does).
    """
    width = 13.0 if len(_panels(result)) == 2 else 8.0
    fig = Figure(figsize=(width, 5.0), dpi=dpi, layout="constrained")
    artists = draw_main(fig, result)
    segs = _segments(artists)
    ends = artists.get("contour", {}).get("ends", {})
    paths = artists.get("contour", {}).get("paths", {})
    n = max(len(x) for _, x, _ in segs)
    frames = np.unique(np.linspace(0, n - 1, min(n, max_frames)).round().astype(int))
    counter = fig.axes[0].text(
        1.0, 1.01, "", transform=fig.axes[0].transAxes, ha="right", va="bottom", color="0.3"
    )
    moving = [line for line, _, _ in segs] + list(ends.values()) + [counter]
    _freeze_background(fig, moving)

    def update(k: int) -> list[Any]:
        for line, x, y in segs:
            line.set_data(x[: k + 1], y[: k + 1])
        for label, marker in ends.items():
            px, py = paths[label].get_data()
            ok = np.isfinite(px) & np.isfinite(py)
            if ok.any():
                i = np.flatnonzero(ok)[-1]
                marker.set_data([px[i]], [py[i]])
        counter.set_text(f"step {k}")
        return moving

    anim = FuncAnimation(fig, update, frames=frames, interval=interval_ms, blit=False)
    anim.adamlab_artists = artists  # type: ignore[attr-defined]
    anim.adamlab_frames = frames  # type: ignore[attr-defined]
    return anim


def _freeze_background(fig: Figure, moving: list[Any]) -> None:
    """Render every artist but ``moving`` once into an image behind the axes, then hide the
    originals: each frame then draws the image and the moving artists only."""
    from matplotlib.backend_bases import FigureCanvasBase
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig.draw_without_rendering()  # lay out once, then keep the layout
    fig.set_layout_engine("none")
    keep = {id(a) for a in moving}
    for a in moving:
        a.set_visible(False)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    background = np.asarray(canvas.buffer_rgba()).copy()
    for ax in fig.axes:
        for child in ax.get_children():
            if id(child) not in keep:
                child.set_visible(False)
        ax.set_axis_off()
    for text in fig.texts:
        text.set_visible(False)
    for a in moving:
        a.set_visible(True)
    fig.figimage(background, xo=0, yo=0, origin="upper", zorder=-10)
    # back to the plain canvas: the animation's draw_idle after each frame is then free,
    # and savefig still renders with Agg
    FigureCanvasBase(fig)


def save_animation(anim: FuncAnimation, path: str | os.PathLike[str]) -> Path:
    """Write ``anim`` as ``.gif`` (Pillow) or self-contained ``.html`` (frames embedded as
    base64 PNGs, no network needed), atomically."""
    suffix = check_suffix(path, ANIMATION_FORMATS, "animation")
    fps = 1000.0 / anim._interval  # FuncAnimation keeps no public getter
    if suffix == ".gif":
        with atomic_path(path) as tmp:
            anim.save(tmp, writer=PillowWriter(fps=fps), dpi=anim._fig.dpi)
    else:
        body = anim.to_jshtml(fps=fps, default_mode="once")
        body = body.replace(
            '<link rel="stylesheet"\nhref="https://maxcdn.bootstrapcdn.com/font-awesome/4.4.0/'
            'css/font-awesome.min.css">',
            _OFFLINE_ICONS,
        )
        page = (
            "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>adamlab</title></head>"
            f"<body>\n{body}\n</body></html>\n"
        )
        write_atomic(path, lambda f: f.write(page))
    return Path(path)
