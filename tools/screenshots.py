"""Take screenshots of the running dashboard in headless Chromium (Debian's chromium, driven by Playwright).

    python tools/screenshots.py --url http://localhost:8501 --out docs/screenshots
Starts its own server on a free port when --url is not given.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.browser.server import launch_browser, running_server, wait_for_app  # noqa: E402

SHOTS = {
    "explore": "?t=The+service+was+terrible+but+the+food+was+great.&l=2&h=5",
    "explore_subword": "?t=Unbelievably+disappointing+screenplay.&v=subword&sp=1",
    "explore_head_stats": "?t=The+service+was+terrible+but+the+food+was+great.&l=2&h=5&ag=stats&st=distance",
    "grid": "?t=The+service+was+terrible+but+the+food+was+great.&l=2&h=5",
}


def all_heads_region(page) -> dict[str, float]:
    """Page coordinates of the "All heads" section: its heading down to the caption under the grid."""
    page.locator(".st-key-grid .js-plotly-plot .heatmaplayer image").first.wait_for(state="visible")
    top = page.get_by_role("heading", name="All heads").bounding_box()
    grid = page.locator(".st-key-grid").bounding_box()
    caption = page.locator(".st-key-grid ~ div [data-testid='stCaptionContainer']").first
    bottom = caption.bounding_box() if caption.count() else grid
    pad = 12
    x = min(top["x"], grid["x"]) - pad
    y = top["y"] - pad
    return {"x": x, "y": y, "width": max(top["x"] + top["width"], grid["x"] + grid["width"]) + pad - x,
            "height": bottom["y"] + bottom["height"] + pad - y}


def page_height(page) -> int:
    return int(page.evaluate(
        "() => Math.ceil(document.querySelector(\"[data-testid='stMain']\").scrollHeight)"))


BEFORE: dict = {}  # interactions before a shot (name -> function of the page)
REGION = {"grid": all_heads_region}  # shots of one part of the page (page coordinates), not the full page


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url")
    p.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    p.add_argument("--only", nargs="*")
    p.add_argument("--width", type=int, default=1440)
    p.add_argument("--height", type=int, default=1700)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with running_server(args.url) as base, launch_browser() as browser:
        page = browser.new_page(viewport={"width": args.width, "height": args.height})
        for name, query in SHOTS.items():
            if args.only and name not in args.only:
                continue
            page.goto(f"{base}/{query}")
            wait_for_app(page)
            if name in BEFORE:
                BEFORE[name](page)
            path = args.out / f"{name}.png"
            if name in REGION:
                # Streamlit scrolls its main container, not the document: a "full page" shot stops at the
                # viewport, so the viewport grows to the whole page before a region further down is cut out.
                page.set_viewport_size({"width": args.width, "height": max(args.height, page_height(page))})
                page.wait_for_timeout(800)
                page.screenshot(path=str(path), clip=REGION[name](page))
                page.set_viewport_size({"width": args.width, "height": args.height})
            else:
                page.screenshot(path=str(path))
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
