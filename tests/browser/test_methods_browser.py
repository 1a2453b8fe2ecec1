"""The Methods page in a real headless Chromium against a real server: pick a method, compute them all."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from playwright.sync_api import expect

from explain.methods import METHODS
from testkit.server import select_option, wait_for_app, wait_for_rerun

pytestmark = pytest.mark.browser

EXCEPTION = "[data-testid='stException']"
ERROR = "[data-testid='stAlertContentError']"
AGREEMENT = ".st-key-agreement .js-plotly-plot"
TIMEOUT = 240_000  # ms: every registered method on a tiny model on a shared CPU


def test_methods_page_computes_every_method_and_keeps_the_choice_in_the_link(server, watched, tiny_dirs):
    page = watched.page
    text = "the film was good but far too long"
    page.goto(f"{server}/methods?{urlencode({'m': tiny_dirs['classification'], 't': text, 'n': '4'})}")
    wait_for_app(page, charts=0)
    select_option(page, "Attribution method", METHODS["lime"].title)
    wait_for_rerun(page)
    assert parse_qs(urlparse(page.url).query)["me"] == ["lime"]
    page.get_by_role("button", name="Compute all methods").click()
    page.locator(f"{AGREEMENT} .main-svg").first.wait_for(timeout=TIMEOUT)
    wait_for_rerun(page, timeout=TIMEOUT)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    expect(page.locator(ERROR)).to_have_count(0)
    assert not watched.page_errors, watched.page_errors
    rows = page.locator("[data-testid='stHtml'] table tr")
    expect(rows).to_have_count(len(METHODS) + 1)
    for method in METHODS.values():
        expect(page.locator("[data-testid='stHtml'] table")).to_contain_text(method.title)
    expect(page.locator(f"{AGREEMENT} .cbtitle")).to_contain_text("-1 to 1")
    expect(page.get_by_text("Random rankings (", exact=False)).to_be_visible()
    page.reload()  # every method is kept: the page comes back complete without the button
    wait_for_app(page, charts=1)
    expect(page.get_by_role("button", name="Compute all methods")).to_have_count(0)
    expect(page.locator("[data-testid='stHtml'] table tr")).to_have_count(len(METHODS) + 1)
