"""Take screenshots of the running dashboard in headless Chromium (Debian's chromium, driven by Playwright).

    python tools/screenshots.py --url http://localhost:8501 --out docs/screenshots
Starts its own server on a free port when --url is not given.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from explain.records import DEFAULT_DELTA_TOLERANCE  # noqa: E402
from testkit.server import launch_browser, running_server, wait_for_app  # noqa: E402

# 100 tokens on minilm ([CLS] and [SEP] included): the single-head map labels every other token, and head 0:0 is
# pale on the 0-1 scale (largest weight 0.15), so its zoom and the offer to stretch show.
LONG_TEXT = ("The hotel was close to the station and the staff at the front desk were friendly, but the room was small, "
             "the air conditioning rattled all night, and breakfast ran out of almost everything by eight. We would "
             "stay again for the location, though not at this price, and only if they fix the noise from the street "
             "below our window every single night. The pool was clean and quiet in the mornings, the lifts were "
             "slow, and the bar closed far too early for a city hotel.")
SHOTS = {
    "explore": "?t=The+service+was+terrible+but+the+food+was+great.&l=2&h=5",
    "explore_subword": "?t=Unbelievably+disappointing+screenplay.&v=subword&sp=1",
    "explore_head_stats": "?t=The+service+was+terrible+but+the+food+was+great.&l=2&h=5&ao=1&ag=stats&st=distance",
    "explore_from_token": "?t=The+service+was+terrible+but+the+food+was+great.&l=2&h=5&ao=1&ag=token&tok=4",
    "grid": "?t=The+service+was+terrible+but+the+food+was+great.&l=2&h=5&gr=1",
    "compare": "compare?t=The+service+was+terrible+but+the+food+was+great.&m=minilm&m2=minilm-random",
    "compare_texts": "compare?cm=texts&t=The+film+was+good+but+far+too+long.&t2=The+film+was+bad+and+far+too+long.",
    "methods": "methods?t=The+service+was+terrible+but+the+food+was+great.",
    "explore_ablated": "?t=The+service+was+terrible+but+the+food+was+great.&l=5&h=9&ab=1:*,2:10,3:10,5:9&gr=1",
    "compare_ablated": "compare?cm=heads&t=The+service+was+terrible+but+the+food+was+great.&ab=1:*,2:10,3:10,5:9",
    "saved": "saved",
    "explore_depth": "?t=The+service+was+terrible+but+the+food+was+great.&dp=1",
    "flow": "?t=The+service+was+terrible+but+the+food+was+great.&fl=1",
    "heads": "heads?t=The+service+was+terrible+but+the+food+was+great.&hl=1&hh=10&hq=4",
    "methods-naopc": "methods?t=The+film+was+good+but+far+too+long.",
    "explore-decompx": "?t=The+film+was+good+but+far+too+long.&me=decompx",
    "explore-zoom": "?" + urlencode({"t": LONG_TEXT, "zs": "30-69"}),
    "explore-zoom-stretched": "?" + urlencode({"t": LONG_TEXT, "zs": "30-69", "sc": "1"}),
}


# The tasks' shots use tiny random models of each task head (testkit/tiny_models.py) saved to a temporary folder:
# no real NER or QA weights can be downloaded where the screenshots are taken, so what these models predict is
# random; the shots show how each task is drawn, not what a trained model reads.
TASK_SHOTS = {
    "task_ner": ("token_classification", 6, {"t": "the film was good but the food was terrible ."}),
    "task_qa": ("question_answering", 0, {"q": "was the food good ?",
                                          "t": "the film was good but the food was terrible and slow ."}),
    "task_pairs": ("next_sentence", 0, {"t": "the film was good .", "p2": "but it was too long ."}),
    "task_multilabel": ("multi_label", 0, {"t": "the service was slow but the food was great ."}),
}


def spread_label_biases(folder: Path) -> None:
    """Give the random multi-label head's labels different biases (2, -1.5, 0.6), so its sigmoids spread out
    (two on, one off) instead of all sitting at 0.5: the shot then shows what "several labels on" looks like."""
    import torch
    from transformers import BertForSequenceClassification

    model = BertForSequenceClassification.from_pretrained(folder)
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([2.0, -1.5, 0.6]))
    model.save_pretrained(folder)


def task_queries(folder: Path) -> dict[str, str]:
    """The tasks' shots: each tiny task model saved under `folder`, and the query that opens it."""
    from testkit.tiny_models import save_tiny_model

    out = {}
    for name, (head, seed, params) in TASK_SHOTS.items():
        model = save_tiny_model(folder / f"{head}-{seed}", head, seed=seed)
        if head == "multi_label":
            spread_label_biases(model)
        out[name] = "?" + urlencode({"m": str(model), **params, "n": "20"})
    return out


def panel_region(page, key: str, drawn: str) -> dict[str, float]:
    """Page coordinates of the open expander keyed `key` (its label down to the end of its content), once the chart
    `drawn` (a CSS selector) is there."""
    page.locator(drawn).first.wait_for(state="visible", timeout=600_000)  # depth computes first: minutes when busy
    box = page.locator(f".st-key-{key}").bounding_box()
    pad = 12
    return {"x": box["x"] - pad, "y": box["y"] - pad, "width": box["width"] + 2 * pad,
            "height": box["height"] + 2 * pad}


def all_heads_region(page) -> dict[str, float]:
    """The "All heads" expander, open: the grid of every head's map."""
    return panel_region(page, "w_show_grid", ".st-key-grid .js-plotly-plot .heatmaplayer image")


def depth_region(page) -> dict[str, float]:
    """The "Where the score comes from" expander, open: both charts down to its CSV button."""
    return panel_region(page, "w_depth", ".st-key-depth_layers .js-plotly-plot .main-svg")


def flow_region(page) -> dict[str, float]:
    """The "Information flow (ALTI)" expander, open: the threshold, the graph and its caption."""
    return panel_region(page, "w_flow", ".st-key-flow_graph .js-plotly-plot .main-svg")


def head_map_region(page) -> dict[str, float]:
    """The single-head map and its controls: the "Attention" heading down to the map."""
    return attention_region(page, ".st-key-head_map .js-plotly-plot .main-svg", below=("head_map",))


def attention_region(page, drawn: str, below: tuple[str, ...] = ("head_map", "w_show_aggregates")) -> dict[str, float]:
    """The "Attention" section, once `drawn` (a CSS selector) is there: its heading down to the lowest of the
    elements keyed `below` (the single-head map and the aggregate views' expander: side by side at 1440 px, one
    above the other at 390 px), across the main column without the sidebar's border."""
    page.locator(drawn).first.wait_for(state="visible", timeout=600_000)
    top = page.get_by_role("heading", name="Attention", exact=True).bounding_box()
    boxes = [page.locator(f".st-key-{key}").bounding_box() for key in below]
    main = page.locator("[data-testid='stMainBlockContainer']").bounding_box()
    pad = 12
    bottom = max(box["y"] + box["height"] for box in boxes) + pad
    margin = top["x"] - main["x"] - 2 * pad
    return {"x": main["x"] + margin, "y": top["y"] - pad, "width": main["width"] - 2 * margin,
            "height": bottom - (top["y"] - pad)}


def head_stats_region(page) -> dict[str, float]:
    """The single-head map beside the aggregate views showing the head statistics map (the head outlined)."""
    return attention_region(page, ".st-key-agg_stat .js-plotly-plot .main-svg")


def from_token_region(page) -> dict[str, float]:
    """The single-head map beside the aggregate views showing one token's attention in every layer."""
    return attention_region(page, ".st-key-agg_token .js-plotly-plot .main-svg")


def page_height(page) -> int:
    return int(page.evaluate(
        "() => Math.ceil(document.querySelector(\"[data-testid='stMain']\").scrollHeight)"))


def save_two_analyses(page, base: str) -> None:
    """Fill the (temporary) store with two saved analyses, as a user does, then open the saved page."""
    for text in ("The service was terrible but the food was great.", "An unbelievably dull and overlong film."):
        page.goto(f"{base}/?{urlencode({'t': text})}")
        wait_for_app(page, timeout=600_000, charts=2)
        page.get_by_role("button", name="Save and share").click()
        page.wait_for_selector("[data-testid='stCode']", timeout=60_000)
    page.goto(f"{base}/saved")
    wait_for_app(page, timeout=600_000, charts=0)


def compute_all_methods(page, base: str) -> None:
    """Press "Compute all methods" and wait for every row, the faithfulness table and the agreement chart."""
    page.get_by_role("button", name="Compute all methods").click()
    page.wait_for_timeout(500)
    wait_for_app(page, timeout=600_000, charts=1)


def heads_drawn(page, base: str) -> None:
    """Wait for the heads page's five charts: three importance maps, the neuron view and the pruning curve."""
    wait_for_app(page, timeout=300_000, charts=5)


BEFORE: dict = {"saved": save_two_analyses, "methods": compute_all_methods, "methods-naopc": compute_all_methods,
                "heads": heads_drawn}  # interactions before a shot (name -> function of the page, base URL)
REGION = {"explore_head_stats": head_stats_region, "explore_from_token": from_token_region,
          "grid": all_heads_region, "explore_depth": depth_region, "flow": flow_region,
          "explore-zoom": head_map_region, "explore-zoom-stretched": head_map_region}  # shots of one part of the page (page coordinates), not the full page
WHOLE_PAGE = {"compare", "compare_texts", "methods", "explore_ablated", "compare_ablated", "heads", "task_ner",
              "methods-naopc"}  # shots of the whole page, however long, rather than of the first screen
HEIGHT = {"saved": 620}  # shorter first screens for pages with little on them


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url")
    p.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    p.add_argument("--only", nargs="*")
    p.add_argument("--width", type=int, default=1440)
    p.add_argument("--height", type=int, default=1700)
    p.add_argument("--scheme", choices=("light", "dark"), default="light",
                   help="the system colour scheme the browser reports (the dashboard follows it)")
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait for a page (a busy machine)")
    args = p.parse_args()
    # explore.png, explore-dark.png, explore-390.png, explore-dark-390.png
    suffix = ("-dark" if args.scheme == "dark" else "") + (f"-{args.width}" if args.width != 1440 else "")
    args.out.mkdir(parents=True, exist_ok=True)
    # A server started here saves into a temporary store, so the "saved" shot shows only what it saved.
    store = {"EXPLAIN_STORE_PATH": str(Path(tempfile.mkdtemp(prefix="screenshots-")) / "analyses.sqlite3")}
    with running_server(args.url, env=store) as base, launch_browser() as browser:
        page = browser.new_page(viewport={"width": args.width, "height": args.height}, color_scheme=args.scheme)
        wanted = [name for name in [*SHOTS, *TASK_SHOTS] if not args.only or name in args.only]
        shots = {**SHOTS, **(task_queries(Path(tempfile.mkdtemp(prefix="task-models-")))
                             if any(name in TASK_SHOTS for name in wanted) else {})}
        for name in wanted:
            query = shots[name]
            if "?" in query and "ig=" not in query:  # a link without `ig` reads as one from before adaptive IG
                query += "&ig=adaptive_simpson"
            if "?" in query and "dt=" not in query:  # nor `dt` as one from before the delta check
                query += f"&dt={DEFAULT_DELTA_TOLERANCE:g}"
            page.goto(f"{base}/{query}")
            wait_for_app(page, timeout=args.timeout * 1000,
                         charts=0 if name in ("saved", "methods", "methods-naopc") else 1)
            if name in BEFORE:
                BEFORE[name](page, base)
            path = args.out / f"{name}{suffix}.png"
            if name in REGION or name in WHOLE_PAGE:
                # Streamlit scrolls its main container, not the document: a "full page" shot stops at the
                # viewport, so the viewport grows to the whole page first.
                page.set_viewport_size({"width": args.width, "height": max(args.height, page_height(page))})
                page.wait_for_timeout(800)
            if name in HEIGHT:
                page.set_viewport_size({"width": args.width, "height": HEIGHT[name]})
                page.wait_for_timeout(500)
            page.screenshot(path=str(path), clip=REGION[name](page) if name in REGION else None)
            page.set_viewport_size({"width": args.width, "height": args.height})
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
