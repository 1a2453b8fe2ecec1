"""Nothing on the Explore page is cut off: every button shows its whole label, at a desktop's and a phone's width.

A real server and Debian's Chromium; a tiny random classifier (testkit/tiny_models.py) on a twelve-word text, whose
near-uniform attention makes the single-head map pale, so the page offers to stretch it (a button beside a note).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from testkit.server import wait_for_app

pytestmark = pytest.mark.browser

TIMEOUT = 120_000
TEXT = "the film was good but far too long and the food was cold"

# The labels of the main area's buttons whose text overflows its box (drawn cut, with an ellipsis).
CUT_LABELS = """() => [...document.querySelectorAll('[data-testid=stMain] button')].filter((b) =>
  [...b.querySelectorAll('*')].some((e) => e.textContent.trim() && e.clientWidth
      && !e.closest('[data-testid=stIconMaterial]') && e.scrollWidth > e.clientWidth + 1))
  .map((b) => b.innerText)"""


@pytest.mark.parametrize("width", [1440, 390])
def test_no_button_label_is_cut(server, browser, tiny_dirs, width):
    page = browser.new_context(viewport={"width": width, "height": 1000}).new_page()
    page.goto(f"{server}/?{urlencode({'m': tiny_dirs['classification'], 't': TEXT, 'n': '5'})}")
    wait_for_app(page, timeout=TIMEOUT, charts=3)
    page.locator(".st-key-head_map_stretch button").wait_for(state="visible", timeout=TIMEOUT)  # the pale map's offer
    assert page.evaluate(CUT_LABELS) == []
    page.context.close()


# The labels of the main area's option groups (segmented controls) whose options run past their box: drawn cut at
# the edge, the rest reachable only by scrolling the group sideways.
CUT_GROUPS = """() => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stButtonGroup]')].filter((g) =>
  [...g.querySelectorAll('div')].some((e) => e.clientWidth && e.scrollWidth > e.clientWidth + 1))
  .map((g) => g.innerText.split('\\n')[0])"""


def test_the_heads_page_option_groups_fit_a_390_px_phone(server, browser, tiny_dirs):
    """The pruning section's "Order heads by" and "Remove" sit in columns, where Streamlit keeps options on one
    row; at a phone's width their options wrap onto a second row instead of running past the edge."""
    page = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
    page.goto(f"{server}/heads?{urlencode({'m': tiny_dirs['classification'], 't': 'good film'})}")
    wait_for_app(page, timeout=2 * TIMEOUT, charts=5)
    assert page.evaluate(CUT_GROUPS) == []
    page.context.close()
