"""The Heads page in a real headless Chromium against a real server: click a head on a map, see inside it."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from testkit.server import select_option, wait_for_app, wait_for_rerun

pytestmark = pytest.mark.browser

EXCEPTION = "[data-testid='stException']"
ERROR = "[data-testid='stAlertContentError']"
TIMEOUT = 120_000  # ms: importance maps, a pruning curve and a neuron view on a tiny model, on a shared CPU
GRADIENT_MAP = ".st-key-heads_map_gradient .js-plotly-plot"
NEURON = ".st-key-heads_neuron .js-plotly-plot"

# Page coordinates of every cell of an importance map, from Plotly's own axis geometry: the invisible scatter
# trace has one marker per cell at (head, layer) with customdata [layer, head].
CELL_CENTRES = """(gd) => {
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  const trace = gd.calcdata.find((c) => c[0] && c[0].trace && c[0].trace.type === 'scatter');
  return trace.map((p) => ({x: box.left + xa._offset + xa.c2p(p.x), y: box.top + ya._offset + ya.c2p(p.y),
                               layer: p.y, head: p.x}));
}"""


def neuron_title(page) -> str:
    return page.locator(f"{NEURON} .gtitle").first.text_content() or ""


def test_clicking_a_cell_of_an_importance_map_opens_that_head_inside(server, watched, tiny_dirs):
    page = watched.page
    page.goto(f"{server}/heads?{urlencode({'m': tiny_dirs['encoder'], 't': 'the film was good but too long'})}")
    wait_for_app(page, timeout=TIMEOUT, charts=5)
    expect(page.locator(NEURON)).to_be_visible()
    assert neuron_title(page).startswith("Layer 0, head 0:")
    grid = page.locator(GRADIENT_MAP)
    grid.scroll_into_view_if_needed()
    cell = next(c for c in grid.evaluate(CELL_CENTRES) if (c["layer"], c["head"]) == (1, 2))
    page.mouse.move(cell["x"], cell["y"])
    expect(page.locator(".hoverlayer .hovertext")).to_contain_text("layer 1, head 2")
    expect(page.locator(".hoverlayer .hovertext")).to_contain_text("|∂score/∂gate|")
    page.mouse.click(cell["x"], cell["y"])
    wait_for_rerun(page, timeout=TIMEOUT)
    expect(page).to_have_url(re.compile(r"[?&]hl=1&hh=2(&|$)"), timeout=10_000)
    page.locator(NEURON).scroll_into_view_if_needed()
    expect(page.locator(f"{NEURON} .gtitle")).to_contain_text("Layer 1, head 2:")
    expect(page.get_by_role("heading", name="Inside layer 1, head 2")).to_be_visible()
    # The keyboard-usable picker moves the selection; a click on the first cell then brings it back.
    select_option(page, "Head", "3")
    wait_for_rerun(page, timeout=TIMEOUT)
    expect(page).to_have_url(re.compile(r"[?&]hl=1&hh=3(&|$)"), timeout=10_000)
    grid.scroll_into_view_if_needed()
    cell = next(c for c in grid.evaluate(CELL_CENTRES) if (c["layer"], c["head"]) == (1, 2))
    page.mouse.click(cell["x"], cell["y"])
    wait_for_rerun(page, timeout=TIMEOUT)
    expect(page).to_have_url(re.compile(r"[?&]hl=1&hh=2(&|$)"), timeout=10_000)
    expect(page.locator(f"{NEURON} .gtitle")).to_contain_text("Layer 1, head 2:")
    expect(page.locator(EXCEPTION)).to_have_count(0)
    expect(page.locator(ERROR)).to_have_count(0)
    assert not watched.page_errors, watched.page_errors
