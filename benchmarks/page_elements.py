"""How much the warm explore page asks the browser to build: DOM nodes and Streamlit elements by kind.

A load-insensitive proxy for the warm render's main-thread time (benchmarks/dashboard_render.py measures the time,
which a loaded machine blurs): starts the dashboard as `make run` does, opens the page of dashboard_render.py's
minilm case (32 tokens, embedded model) once to warm the server's caches, then again in a new context at 1440 x 900
and counts, once the script is idle: every DOM node, the `stElementContainer`s by the testid of what they hold,
help icons, heading anchors, buttons, checkboxes and toggles, and Plotly charts. --floor counts the floor app too.

Run: .venv/bin/python benchmarks/page_elements.py [--floor]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import common  # noqa: E402

from testkit.server import launch_browser, running_server, wait_for_app  # noqa: E402

FLOOR_APP = HERE / "floor_app.py"
VIEWPORT = {"width": 1440, "height": 900}
SERVER_TIMEOUT_S = 900

COUNT = """() => {
  const kinds = {}, nodes = {};
  for (const c of document.querySelectorAll('[data-testid="stElementContainer"]')) {
    const inner = c.querySelector('[data-testid]');
    const kind = inner ? inner.getAttribute('data-testid') : '(none)';
    kinds[kind] = (kinds[kind] || 0) + 1;
    nodes[kind] = (nodes[kind] || 0) + 1 + c.getElementsByTagName('*').length;
  }
  const n = (sel) => document.querySelectorAll(sel).length;
  const main = document.querySelector('[data-testid="stMain"]');
  const side = document.querySelector('[data-testid="stSidebar"]');
  const expanderNodes = [...document.querySelectorAll('[data-testid="stExpander"]')]
    .reduce((sum, e) => sum + 1 + e.getElementsByTagName('*').length, 0);
  return {
    dom_nodes: document.getElementsByTagName('*').length,
    main_dom_nodes: main ? main.getElementsByTagName('*').length : 0,
    sidebar_dom_nodes: side ? side.getElementsByTagName('*').length : 0,
    expander_dom_nodes: expanderNodes,
    element_containers: n('[data-testid="stElementContainer"]'),
    help_icons: n('[data-testid="stTooltipHoverTarget"]'),
    heading_anchors: n('[data-testid="stHeaderActionElements"]'),
    buttons: n('button'),
    checkboxes: n('input[type="checkbox"]'),
    expanders: n('[data-testid="stExpander"]'),
    plotly_charts: n('.js-plotly-plot'),
    kinds,
    nodes,
  };
}"""


def count(base: str, address: str) -> dict:
    with launch_browser() as browser:
        for visit in ("warm-up", "counted"):
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.goto(address, timeout=SERVER_TIMEOUT_S * 1000)
            wait_for_app(page, timeout=SERVER_TIMEOUT_S * 1000)
            page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")
            result = page.evaluate(COUNT)
            context.close()
            if visit == "counted":
                return result
    raise AssertionError("unreachable")


def show(name: str, result: dict) -> None:
    print(f"## {name}")
    for key, value in result.items():
        if key not in ("kinds", "nodes"):
            print(f"{key}: {value}")
    print("element containers by kind (count, DOM nodes):")
    for kind, n in sorted(result["kinds"].items(), key=lambda kv: (-result["nodes"][kv[0]], kv[0])):
        print(f"  {n:4d} {result['nodes'][kind]:5d}  {kind}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor", action="store_true", help="count the floor app as well")
    args = parser.parse_args()
    text = common.text_of_tokens(common.tokenizer(), 32)
    with running_server(warm=True, timeout=SERVER_TIMEOUT_S) as base:
        show("explore (minilm, 32 tokens, warm)", count(base, f"{base}/?{urlencode({'t': text})}"))
    if args.floor:
        with running_server(app=FLOOR_APP, timeout=SERVER_TIMEOUT_S) as base:
            show("floor", count(base, f"{base}/"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
