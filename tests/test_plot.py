"""Plot helpers, rendered headless to PNG; assertions on the artists they return."""

from __future__ import annotations

import dataclasses

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from PIL import Image

import adamlab
from adamlab import plot
from adamlab.lab import compare
from adamlab.problems import Problem


@dataclasses.dataclass(frozen=True, eq=False)
class Valley(Problem):
    """f(x, y) = x² + 10·y² with optional seeded gradient noise (a local test double)."""

    name: str = "valley"
    description: str = "test double"
    dim: int = 2
    x0: np.ndarray = dataclasses.field(default_factory=lambda: np.array([-1.5, 1.0]))
    domain: np.ndarray = dataclasses.field(
        default_factory=lambda: np.array([[-2.0, 2], [-1.5, 1.5]])
    )
    x_star: np.ndarray | None = dataclasses.field(default_factory=lambda: np.zeros(2))
    f_star: float | None = 0.0
    sigma: float = 0.0

    def loss(self, x):
        return x[..., 0] ** 2 + 10 * x[..., 1] ** 2

    def grad(self, x):
        return np.stack([2 * x[..., 0], 20 * x[..., 1]], axis=-1)

    def oracle(self, seed=0):
        def sample(x, t):
            noise = np.random.default_rng([seed, t]).normal(size=x.shape) * self.sigma
            return self.loss(x), self.grad(x) + noise

        return sample


@pytest.fixture(scope="module")
def seed_result():
    return compare("quadratic", [adamlab.SGD(lr=0.1), adamlab.Adam(lr=0.1)], steps=50)


@pytest.fixture(scope="module")
def valley_result():
    return compare(Valley(), ["adam:lr=0.1", "sgd:lr=0.04,momentum=0.5"], steps=60)


def render(fig, tmp_path, name="fig.png"):
    path = plot.save_figure(fig, tmp_path / name)
    with Image.open(path) as im:
        assert im.format == "PNG" and im.size[0] > 100
    return path


def test_path_1d_is_the_seed_figure(seed_result, tmp_path):
    fig = Figure(figsize=(8, 5))
    ax = fig.subplots()
    drawn = plot.plot_path_1d(ax, seed_result)
    assert set(drawn["paths"]) == {"SGD(lr=0.1)", "Adam(lr=0.1, betas=(0.9, 0.999))"}
    # the loss curve over the lesson's grid, np.linspace(-2, 8, 100)
    np.testing.assert_array_equal(drawn["surface"].get_xdata(), np.linspace(-2, 8, 100))
    adam = drawn["paths"]["Adam(lr=0.1, betas=(0.9, 0.999))"]
    np.testing.assert_array_equal(adam.get_xdata(), seed_result.trajectories[1].x[:, 0])
    np.testing.assert_array_equal(adam.get_ydata(), seed_result.trajectories[1].loss)
    assert adam.get_marker() == "s" and drawn["paths"]["SGD(lr=0.1)"].get_marker() == "o"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    # the formula, not "Loss Surface"
    assert labels[0] == "f(x) = (x − 2)²" and "minimum x* = 2" in labels
    assert "start x₀ = 8" in labels and "SGD after 50 steps: x = 2.00009" in labels
    assert "Adam after 50 steps: x = 3.70384" in labels
    assert drawn["paths"]["SGD(lr=0.1)"].get_markerfacecolor() == "none"  # hollow: SGD's
    assert ax.get_title() == "SGD vs. Adam on f(x) = (x − 2)²"  # first points stay visible
    assert ax.get_xlabel() == "x" and ax.get_ylabel() == "Loss"
    assert len(ax.get_lines()) == 7  # surface, two paths, two ends, the start, x*
    render(fig, tmp_path)


def test_contour_has_log_levels_paths_and_markers(valley_result, tmp_path):
    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    drawn = plot.plot_contour(ax, valley_result, levels=15)
    lv = drawn["levels"]
    assert len(lv) == 15
    gaps = np.log(lv - valley_result.surface.loss.min())
    np.testing.assert_allclose(np.diff(gaps), np.diff(gaps)[0])  # evenly spaced in log
    assert list(drawn["contour"].levels) == list(lv)
    assert list(drawn["paths"]) == valley_result.labels and len(drawn["ends"]) == 2
    assert drawn["start"].get_xydata().tolist() == [[-1.5, 1.0]]
    assert drawn["x_star"].get_marker() == "*"
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "Adam(lr=0.1, betas=(0.9, 0.999))" in legend and "SGD(lr=0.04, momentum=0.5)" in legend
    assert {"start", "x*"} <= set(legend)
    render(fig, tmp_path)


def test_loss_curves_log_scale_and_seed_bands(tmp_path):
    r = compare(Valley(sigma=2.0), ["adam:lr=0.05", "sgd:lr=0.02"], steps=40, seed=[0, 1, 2])
    fig = Figure()
    ax = fig.subplots()
    drawn = plot.plot_loss(ax, r)
    assert ax.get_yscale() == "log" and ax.get_xlabel() == "step t"
    assert set(drawn) == set(r.labels)
    for label, entry in drawn.items():
        assert isinstance(entry["band"], PolyCollection)
        runs = np.array([t.loss for t in r.trajectories if t.label == label])
        np.testing.assert_allclose(entry["line"].get_ydata(), np.median(runs, axis=0))
        assert "median of 3 seeds" in entry["line"].get_label()
    render(fig, tmp_path)


def test_loss_curve_marks_divergence(tmp_path):
    r = compare("quadratic", ["sgd:lr=1.5", "adam:lr=0.1"], steps=800)
    fig = Figure()
    ax = fig.subplots()
    drawn = plot.plot_loss(ax, r)
    bad = drawn["SGD(lr=1.5)"]
    assert bad["band"] is None and bad["diverged"] is not None
    assert f"diverged at step {r.trajectories[0].diverged_at}" in bad["diverged"].get_label()
    assert drawn["Adam(lr=0.1, betas=(0.9, 0.999))"]["diverged"] is None
    assert ax.get_ylim()[1] < 1e10  # the blow-up does not flatten the other curve
    render(fig, tmp_path)


def test_diagnostics_panel_shows_bias_correction(seed_result, tmp_path):
    fig = Figure(figsize=(10, 7))
    drawn = plot.plot_diagnostics(fig, seed_result)
    t = drawn["trajectory"]
    assert t.label.startswith("Adam")
    assert set(drawn["axes"]) == {"m", "v", "bias", "step"} and len(fig.axes) == 4
    lines = drawn["lines"]
    assert {"m", "m_hat", "v", "v_hat", "bias1", "bias2", "effective_lr", "step_taken"} <= set(
        lines
    )
    np.testing.assert_array_equal(lines["m_hat"].get_ydata(), t.diagnostics["m_hat"][:, 0])
    np.testing.assert_array_equal(lines["bias2"].get_ydata(), t.diagnostics["bias2"])
    assert drawn["axes"]["bias"].get_yscale() == "log" and drawn["axes"]["v"].get_yscale() == "log"
    # bias correction is visible: m̂ starts 10x above m (1 − β₁ = 0.1), v̂ 1000x above v
    assert lines["m_hat"].get_ydata()[1] == pytest.approx(10 * lines["m"].get_ydata()[1])
    assert lines["v_hat"].get_ydata()[1] == pytest.approx(1000 * lines["v"].get_ydata()[1])
    render(fig, tmp_path)


def test_diagnostics_panel_for_sgd_says_what_is_missing(seed_result, tmp_path):
    fig = Figure(figsize=(10, 7))
    drawn = plot.plot_diagnostics(fig, seed_result, label="SGD(lr=0.1)")
    texts = [t.get_text() for t in drawn["axes"]["m"].texts]
    assert texts == ["sgd has no first moment"]
    assert "m_hat" not in drawn["lines"] and "effective_lr" in drawn["lines"]
    render(fig, tmp_path)


def test_figure_for_layouts(seed_result, valley_result, tmp_path):
    assert len(plot.figure_for(seed_result).axes) == 1
    fig = plot.figure_for(valley_result)
    assert len(fig.axes) == 2 and set(fig.adamlab_artists) == {"contour", "loss"}
    fig = plot.figure_for(valley_result, diagnostics=True)
    assert len(fig.axes) == 6 and "diagnostics" in fig.adamlab_artists
    render(fig, tmp_path)


@pytest.mark.parametrize("ext", [".png", ".svg", ".pdf"])
def test_save_figure_formats(seed_result, tmp_path, ext):
    path = plot.save_figure(plot.figure_for(seed_result), tmp_path / f"f{ext}")
    head = path.read_bytes()[:8]
    assert {".png": b"\x89PNG", ".svg": b"<?xml", ".pdf": b"%PDF"}[ext] in head
    assert [p.name for p in tmp_path.iterdir()] == [f"f{ext}"]


def test_save_figure_refuses_unknown_extension(seed_result, tmp_path):
    with pytest.raises(ValueError, match=r"unknown extension '\.jpg'; use one of .png, .svg, .pdf"):
        plot.save_figure(plot.figure_for(seed_result), tmp_path / "f.jpg")
    assert list(tmp_path.iterdir()) == []


def test_animation_gif_and_html(valley_result, tmp_path):
    anim = plot.animate(valley_result, max_frames=6)
    frames = anim.adamlab_frames
    assert len(frames) == 6 and frames[0] == 0 and frames[-1] == 60
    gif = plot.save_animation(anim, tmp_path / "a.gif")
    with Image.open(gif) as im:
        assert im.format == "GIF" and im.n_frames == 6
    html = plot.save_animation(plot.animate(valley_result, max_frames=3), tmp_path / "a.html")
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.count("data:image/png;base64") >= 1
    assert "https://" not in text  # self-contained: no CDN, works offline
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.html"]


def test_plots_change_no_global_state(seed_result, valley_result):
    import matplotlib as mpl

    before = dict(mpl.rcParams)
    plot.figure_for(seed_result, diagnostics=True)
    plot.figure_for(valley_result, diagnostics=True)
    assert dict(mpl.rcParams) == before  # no style changes (pyplot is checked in test_cli)


def test_registered_rosenbrock_contour(tmp_path):
    r = compare("rosenbrock", ["adam:lr=0.05", "sgd:lr=1e-3,momentum=0.9"], steps=200)
    fig = plot.figure_for(r)
    assert fig.adamlab_artists["contour"]["x_star"] is not None
    render(fig, tmp_path)


def test_iterates_panel_for_online_problems(tmp_path):
    r = compare(
        "reddi-thm1", ["adam:lr=0.1,betas=0/0.1", "adam:lr=0.1,betas=0/0.1,amsgrad=true"], steps=300
    )
    fig = plot.figure_for(r)
    assert set(fig.adamlab_artists) == {"paths", "iterates"} and len(fig.axes) == 2
    drawn = fig.adamlab_artists["iterates"]
    assert len(drawn["lines"]) == 2 and drawn["x_star"].get_ydata()[0] == -1
    adam, ams = (line.get_ydata() for line in drawn["lines"].values())
    assert adam[-1] > 0.9 and ams.min() == -1.0  # the counterexample, as drawn
    render(fig, tmp_path)
