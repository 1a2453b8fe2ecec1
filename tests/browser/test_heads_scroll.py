"""The Heads page on a laptop-sized screen: a click on an importance map brings the head it opens into view."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from testkit.server import wait_for_app, wait_for_rerun

pytestmark = pytest.mark.browser

TIMEOUT = 120_000
GRADIENT_MAP = ".st-key-heads_map_gradient .js-plotly-plot"
SCREEN = {"width": 1440, "height": 900}
CELL_CENTRES = """(gd) => {
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  const trace = gd.calcdata.find((c) => c[0] && c[0].trace && c[0].trace.type === 'scatter');
  return trace.map((p) => ({x: box.left + xa._offset + xa.c2p(p.x), y: box.top + ya._offset + ya.c2p(p.y),
                               layer: p.y, head: p.x}));
}"""


def click_cell(page, layer: int, head: int) -> None:
    grid = page.locator(GRADIENT_MAP)
    grid.scroll_into_view_if_needed()
    cell = next(c for c in grid.evaluate(CELL_CENTRES) if (c["layer"], c["head"]) == (layer, head))
    page.mouse.click(cell["x"], cell["y"])
    wait_for_rerun(page, timeout=TIMEOUT)


def test_a_click_on_a_map_scrolls_the_neuron_view_into_view_and_nothing_else_does(server, browser, tiny_dirs):
    context = browser.new_context(viewport=SCREEN)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{server}/heads?{urlencode({'m': tiny_dirs['encoder'], 't': 'the film was good but too long'})}")
        wait_for_app(page, timeout=TIMEOUT, charts=5)
        expect(page.get_by_role("heading", name="Inside layer 0, head 0")).not_to_be_in_viewport()  # below the fold

        click_cell(page, 1, 2)
        expect(page).to_have_url(re.compile(r"[?&]hl=1&hh=2(&|$)"), timeout=10_000)
        expect(page.get_by_role("heading", name="Inside layer 1, head 2")).to_be_in_viewport(timeout=10_000)

        # A second click, after scrolling back up, scrolls again.
        click_cell(page, 0, 3)
        expect(page).to_have_url(re.compile(r"^(?!.*[?&]hl=).*[?&]hh=3(&|$)"), timeout=10_000)
        expect(page.get_by_role("heading", name="Inside layer 0, head 3")).to_be_in_viewport(timeout=10_000)

        # Other reruns leave the scroll where the user put it: no jump back up to the neuron view.
        order = page.get_by_text("most important first", exact=True)
        order.evaluate("el => el.scrollIntoView({block: 'center'})")
        neuron_heading = page.get_by_role("heading", name="Inside layer 0, head 3")
        expect(neuron_heading).not_to_be_in_viewport()
        order.click()
        wait_for_rerun(page, timeout=TIMEOUT)
        expect(page).to_have_url(re.compile(r"[?&]po=most(&|$)"), timeout=10_000)
        page.wait_for_timeout(1000)
        expect(order).to_be_in_viewport()
        expect(neuron_heading).not_to_be_in_viewport()
        assert not errors, errors
    finally:
        context.close()
