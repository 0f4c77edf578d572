"""The README's picture of the playground, ``docs/img/playground.png``, from the real page.

    python docs/make_playground_screenshot.py [--out docs/img/playground.png]

Starts ``python -m adamlab.serve`` on a free port of 127.0.0.1, opens the page in Debian's
Chromium (headless, through Playwright; ``apt-get install -y chromium``, never ``playwright
install``) with the seed demo plus Adam without bias correction, stops the step scrubber at
t = 12, and saves the top of the page: the controls, the paths, the loss curves and the table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from adamlab.serve import running

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
VIEW = (
    "?problem=quadratic&opt=sgd:lr=0.1&opt=adam:lr=0.1,betas=0.9/0.999,eps=1e-8"
    "&opt=adam:lr=0.1,bias_correction=false&steps=50&t=12"
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "img" / "playground.png"))
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    with running() as base, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1500})
        page.goto(base + VIEW)
        page.wait_for_selector('body[data-state="ready"]', state="attached", timeout=60_000)
        table = page.locator("#results-section").bounding_box()
        height = table["y"] + table["height"] + 8
        page.screenshot(path=args.out, clip={"x": 0, "y": 0, "width": 1280, "height": height})
        browser.close()
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
