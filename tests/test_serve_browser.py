"""The playground page in a real browser (Debian's Chromium, driven by Playwright for Python).

Each test loads the page from the real server (``python -m adamlab.serve`` on a free port),
moves its controls as a student would, reads the numbers the page shows, and checks them
against the Python API for the same configuration, digit for digit. Every test also checks
that the page logged no error and asked nothing of any address but the server's own, and
leaves a screenshot in its tmp_path.

Needs ``apt-get install -y chromium`` (launched from /usr/bin/chromium) and ``pip install
playwright``; never ``playwright install``, which downloads a browser. Without them these
tests fail, saying what is missing: they do not skip.
"""

from __future__ import annotations

import math
import os
import re
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from adamlab.lab import Result, compare, optimizer_from_spec
from adamlab.serve import running
from adamlab.serve.request import SEED_OPTS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
# a 4xx the test asked for is logged by Chromium itself; nothing else may be
API_REFUSAL = re.compile(r"Failed to load resource: the server responded with a status of 4\d\d")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        pytest.fail(f"the browser tests need Playwright for Python: pip install playwright "
                    f"(never `playwright install`): {e}")  # fmt: skip
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"the browser tests need Debian's Chromium at {CHROMIUM}: "
                    "apt-get install -y chromium")  # fmt: skip
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server():
    with running() as base:
        request = urllib.request.Request(
            base + "api/compare", data=b"{}", headers={"content-type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=120) as r:  # the workers are warm
            assert r.status == 200
        yield base


@pytest.fixture
def page(browser, server, tmp_path, request):
    """A fresh page; afterwards: a screenshot, no console errors, no outside requests."""
    context = browser.new_context(viewport={"width": 1320, "height": 1500}, accept_downloads=True)
    outside: list[str] = []

    def route(r):
        if r.request.url.startswith(server):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    pg = context.new_page()
    pg.base = server
    pg.console = []
    pg.allowed = []
    pg.on("console", lambda m: pg.console.append(m.text) if m.type == "error" else None)
    pg.on("pageerror", lambda e: pg.console.append(f"uncaught: {e}"))
    yield pg
    shot = tmp_path / f"{request.node.name}.png"
    pg.screenshot(path=str(shot), full_page=True)
    context.close()
    errors = [m for m in pg.console if not any(a.search(m) for a in pg.allowed)]
    assert errors == [], f"console errors ({shot}): {errors}"
    assert outside == [], f"requests outside {server}: {outside}"


def open_page(page, query: str = "") -> None:
    page.goto(page.base + query)
    wait_runs(page, 1)


def wait_runs(page, n: int) -> None:
    """Until the page has shown its n-th result (selectors: the page's CSP forbids eval)."""
    page.wait_for_selector(
        f'body[data-state="ready"][data-runs="{n}"]', state="attached", timeout=30_000
    )


def runs(page) -> int:
    return int(page.get_attribute("body", "data-runs"))


def rows(page) -> list[dict]:
    return page.eval_on_selector_all(
        "#results tbody tr",
        """rows => rows.map(r => {
            const out = {};
            for (const td of r.children) out[td.dataset.col] = {text: td.textContent, value: td.dataset.value};
            out.label = r.dataset.label;
            return out;
        })""",
    )


def floats(value: str) -> list[float]:
    return [float(v) for v in value.split(",")]


def specs(page) -> list[str]:
    return page.eval_on_selector_all(".spec-input", "els => els.map(e => e.value)")


def card(page, i: int) -> str:
    return f'[data-field="opt[{i}]"]'


def assert_table_is(page, result: Result, t: int | None = None) -> None:
    """The page's table holds the result's numbers: final x, final loss, steps to tolerance,
    and x_t, f(x_t) at the scrubber's step (exact, via the cells' data-value)."""
    got = rows(page)
    metrics = result.metrics()
    assert [r["label"] for r in got] == [m.label for m in metrics]
    for r, m, traj in zip(got, metrics, result.trajectories, strict=True):
        assert floats(r["final-x"]["value"]) == list(m.final_x)
        assert float(r["final-loss"]["value"]) == m.final_loss
        assert r["steps-to"]["text"].startswith(
            "never" if m.steps_to_tol is None else str(m.steps_to_tol)
        )
        s = traj.steps_taken if t is None else min(t, traj.steps_taken)
        assert floats(r["x-at-t"]["value"]) == traj.x[s].tolist()
        assert float(r["f-at-t"]["value"]) == traj.loss[s]


# -----------------------------------------------------------------------------------------------


def test_seed_demo_shows_what_adamlab_compare_prints(page):
    open_page(page)
    want = compare("quadratic", list(SEED_OPTS), steps=50)
    assert_table_is(page, want)
    got = rows(page)
    assert [
        (r["final-x"]["text"], r["final-loss"]["text"], r["steps-to"]["text"]) for r in got
    ] == [
        ("2.000086", "7.333e-09", "39"),
        ("3.703843", "2.903083", "never"),
    ]
    assert page.text_content("#cli-table") == want.table()
    assert page.text_content("#steps-to-head") == "steps to |x - 2| < 0.001"
    assert specs(page) == list(SEED_OPTS)
    assert "opt=adam:lr=0.1,betas=0.9/0.999,eps=1e-8" in page.url
    compute_ms = float(page.get_attribute("#status", "data-compute"))
    assert 0 < compute_ms < 5000  # the seed demo's server time (README: well under 100 ms)


def test_bias_correction_off_first_step_jumps_by_3_16_alpha(page):
    open_page(page)
    page.select_option(f'{card(page, 1)} select[data-key="bias_correction"]', "false/false")
    wait_runs(page, 2)
    assert specs(page)[1] == "adam:lr=0.1,bias_correction=false/false"
    page.fill("#step-range", "1")
    want = compare("quadratic", ["sgd:lr=0.1", "adam:lr=0.1,bias_correction=false"], steps=50)
    assert_table_is(page, want, t=1)
    adam_x1 = floats(rows(page)[1]["x-at-t"]["value"])[0]
    assert adam_x1 == want.trajectories[1].x[1, 0]
    # the uncorrected first step: α(1−β₁)/√(1−β₂) ≈ 3.16α (ε = 1e-8 moves it by 1e-8)
    assert adam_x1 == pytest.approx(8 - 0.1 * (1 - 0.9) / math.sqrt(1 - 0.999), abs=1e-7)
    assert 8 - adam_x1 == pytest.approx(3.1623 * 0.1, abs=1e-5)
    # and the diagnostics panel shows the raw moments at that step (no correction)
    readout = dict(
        page.eval_on_selector_all(
            "#diag-readout td", "tds => tds.map(t => [t.dataset.key, t.dataset.value])"
        )
    )
    d = want.trajectories[1].diagnostics
    assert float(readout["m_hat"]) == d["m_hat"][1, 0] == d["m"][1, 0]
    assert page.get_attribute("#diag-readout", "data-step") == "1"


def test_raising_beta2_is_the_librarys_v_hat(page):
    open_page(page)
    beta2 = f'{card(page, 1)} input[data-key="betas"][data-part="1"]'
    page.fill(beta2, "0.99")
    page.press(beta2, "Enter")
    wait_runs(page, 2)
    assert specs(page)[1] == "adam:lr=0.1,betas=0.9/0.99"
    want = compare("quadratic", ["sgd:lr=0.1", "adam:lr=0.1,betas=0.9/0.99"], steps=50)
    assert_table_is(page, want)
    page.fill("#step-range", "20")
    readout = dict(
        page.eval_on_selector_all(
            "#diag-readout td", "tds => tds.map(t => [t.dataset.key, t.dataset.value])"
        )
    )
    d = want.trajectories[1].diagnostics
    for key in ("m", "m_hat", "v", "v_hat", "effective_lr"):
        assert float(readout[key]) == d[key][20, 0], key
    assert float(readout["bias2"]) == d["bias2"][20] and d["bias2"][20] == pytest.approx(
        1 - 0.99**20
    )
    # the slider beside the field moved to the value typed
    slider = page.eval_on_selector(beta2, "e => e.slider.value")
    assert page.eval_on_selector(beta2, "e => e.value") == "0.99" and slider == "6"


def test_hovering_a_chart_shows_exact_values(page):
    open_page(page)
    box = page.locator("#loss-chart .u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    from playwright.sync_api import expect

    expect(page.locator("#loss-chart .u-legend .u-value").first).not_to_have_text("–")
    values = page.eval_on_selector_all(
        "#loss-chart .u-legend .u-value", "els => els.map(e => e.textContent)"
    )
    t = int(values[0])
    assert 20 <= t <= 30
    want = compare("quadratic", list(SEED_OPTS), steps=50)
    assert [float(v) for v in values[1:]] == [traj.loss[t] - 0.0 for traj in want.trajectories]
    # the diagnostics charts follow the same cursor
    diag_t = page.eval_on_selector("#diag-v .u-legend .u-value", "e => e.textContent")
    assert diag_t == str(t)
    # the play button animates every view from the scrubber's step to the end
    page.mouse.move(0, 0)
    page.fill("#step-range", "10")
    assert page.text_content("#step-out") == "t = 10"
    page.click("#play")
    page.wait_for_selector("#play:has-text('▶')", timeout=20_000)
    assert page.text_content("#step-out") == "t = 50"
    assert page.get_attribute("#diag-readout", "data-step") == "50"
    assert_table_is(page, want)


def test_adding_an_optimizer_runs_it_too(page):
    open_page(page)
    page.click("#add-opt")
    wait_runs(page, 2)
    assert len(rows(page)) == 3 and rows(page)[2]["label"].endswith("#2")
    page.select_option(f"{card(page, 2)} select.opt-type", "rmsprop")
    wait_runs(page, 3)
    assert specs(page) == [*SEED_OPTS, "rmsprop:lr=0.1"]
    assert_table_is(page, compare("quadratic", [*SEED_OPTS, "rmsprop:lr=0.1"], steps=50))
    colors = page.eval_on_selector_all(
        "#results .swatch", "els => els.map(e => getComputedStyle(e).backgroundColor)"
    )
    assert colors == [
        "rgb(31, 119, 180)",
        "rgb(255, 127, 14)",
        "rgb(44, 160, 44)",
    ]  # matplotlib's C0-C2


def test_clicking_the_contours_sets_the_start_and_the_link_reproduces_it(page, browser):
    open_page(page, "?problem=rosenbrock&opt=adam:lr=0.05&opt=sgd:lr=1e-3,momentum=0.9&steps=150")
    canvas = page.locator("#path-canvas").bounding_box()
    page.mouse.click(canvas["x"] + canvas["width"] * 0.3, canvas["y"] + canvas["height"] * 0.25)
    wait_runs(page, 2)
    start = [float(v) for v in page.input_value("#start").split(",")]
    assert len(start) == 2 and start != [-1.2, 1.0]
    assert -2 <= start[0] <= 2 and -1 <= start[1] <= 3  # inside Rosenbrock's box
    opts = ["adam:lr=0.05", "sgd:lr=1e-3,momentum=0.9"]
    want = compare("rosenbrock", opts, steps=150, start=start)
    assert_table_is(page, want)
    assert "start=" in page.url
    # the link alone reproduces the view, in a fresh page
    other = browser.new_page()
    try:
        other.goto(page.url)
        wait_runs(other, 1)
        assert rows(other) == rows(page)
        assert other.input_value("#start") == page.input_value("#start")
    finally:
        other.close()


def test_a_refused_value_is_explained_next_to_its_field(page):
    page.allowed.append(API_REFUSAL)
    open_page(page)
    lr = f'{card(page, 1)} input[data-key="lr"]'
    page.fill(lr, "-1")
    page.press(lr, "Enter")
    page.wait_for_selector('body[data-state="error"]', state="attached")
    with pytest.raises(ValueError) as e:
        optimizer_from_spec("adam:lr=-1")
    error = page.locator(f'{card(page, 1)} [data-error-for="opt[1].lr"]')
    assert error.text_content() == str(e.value) == "Invalid lr: -1; it must lie in [0, inf)"
    assert error.is_visible()
    assert page.get_attribute(lr, "aria-invalid") == "true"
    # and the page recovers when the value is mended
    page.fill(lr, "0.2")
    page.press(lr, "Enter")
    wait_runs(page, 2)
    assert error.text_content() == ""
    assert_table_is(page, compare("quadratic", ["sgd:lr=0.1", "adam:lr=0.2"], steps=50))


def test_downloads_are_the_librarys_files(page, tmp_path):
    open_page(page, "?problem=himmelblau&opt=adam:lr=0.05&steps=40")
    with page.expect_download() as info:
        page.click('[data-export="json"]')
    path = tmp_path / "run.json"
    info.value.save_as(path)
    got = Result.load(path)
    want = compare("himmelblau", ["adam:lr=0.05"], steps=40)
    for a, b in zip(got.trajectories, want.trajectories, strict=True):
        np.testing.assert_array_equal(a.x, b.x)
        np.testing.assert_array_equal(a.loss, b.loss)
    with page.expect_download() as info:
        page.click('[data-export="png"]')
    png = Path(info.value.path()).read_bytes()
    assert png[:4] == b"\x89PNG" and info.value.suggested_filename == "adamlab-compare.png"


def test_the_page_formats_numbers_as_adamlab_does(page):
    """The table's short numbers are adamlab.lab.metrics.fmt_number's, in JavaScript."""
    from adamlab.lab.metrics import fmt_number

    open_page(page)
    values = [2.000085634861562, 7.3333295147220946e-9, 3.7038434759725885, 0.0, -0.0, 1e7,
              9999999.5, 1e-4, 9.99999e-5, 1234567.5, -0.00012345678, 1e300, 5e-324, 0.1,
              12345678.0, 2.505e-05, 0.002288404231375]  # fmt: skip
    shown = page.evaluate(
        "async (vs) => { const m = await import('/static/format.js'); return vs.map(m.fmt); }",
        values,
    )
    assert shown == [fmt_number(v) for v in values]
