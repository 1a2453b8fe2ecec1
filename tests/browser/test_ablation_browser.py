"""Knocking a head out in a real browser: click its thumbnail, remove it, and reopen the link."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from testkit.server import wait_for_app, wait_for_rerun
from tests.browser.test_explore_browser import GRID, THUMBNAIL_CENTRES, assert_clean, expect_head, wait_until_drawn

pytestmark = pytest.mark.browser

TIMEOUT = 60_000
INFO = "[data-testid='stAlertContentInfo']"
REMOVED_LABELS = f"{GRID} .annotation-text"
# The page puts an invisible word joiner after each ":" so that nothing reads as a link.
BANNER = re.compile("Without heads 1:\u2060?2 — 1 of 8 heads removed \\(set to zero\\)")


def test_remove_a_clicked_head_and_reopen_the_link(server, watched, tiny_dirs):
    page = watched.page
    page.goto(f"{server}/?{urlencode({'m': tiny_dirs['encoder'], 't': 'the food was great', 'n': '5', 'gr': '1'})}")
    wait_until_drawn(page, grid=True)
    expect(page.locator(INFO).filter(has_text="Without heads")).to_have_count(0)
    grid = page.locator(GRID)
    grid.scroll_into_view_if_needed()
    geometry = grid.evaluate(THUMBNAIL_CENTRES)
    target = next(p for p in geometry["points"]
                  if p["dx"] == geometry["headCentres"][2] and p["dy"] == geometry["layerCentres"][1])
    page.mouse.click(target["x"], target["y"])
    wait_for_rerun(page)
    expect_head(page, 1, 2)

    page.get_by_role("button", name="Remove head 1:2").click()
    wait_for_rerun(page)
    expect(page).to_have_url(re.compile(r"[?&]ab=1%3A2(&|$)"), timeout=5_000)
    banner = page.locator(INFO).filter(has_text="Without heads")
    expect(banner).to_contain_text(BANNER, timeout=TIMEOUT)
    expect(page.locator(REMOVED_LABELS).filter(has_text="removed")).to_have_count(1, timeout=TIMEOUT)
    expect(page.get_by_text("Head 1:2 is removed in this analysis")).to_be_visible()
    assert_clean(watched)

    link = page.url
    other = page.context.new_page()
    other.goto(link)
    wait_for_app(other, charts=3)  # one head and all heads (the prediction is HTML)
    expect(other.locator(INFO).filter(has_text=BANNER)).to_have_count(1, timeout=TIMEOUT)
    expect(other.locator(REMOVED_LABELS).filter(has_text="removed")).to_have_count(1, timeout=TIMEOUT)
    other.close()
