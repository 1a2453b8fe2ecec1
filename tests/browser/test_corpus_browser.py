"""The Corpus page in a real headless Chromium against a real server: run a few texts of the built-in sample on the
embedded model, then open a finder's text in Explore with the run's model and method."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

from explain.corpus.readers import sample_path
from testkit.server import wait_for_app, wait_for_rerun

pytestmark = pytest.mark.browser

EXCEPTION = "[data-testid='stException']"
ERROR = "[data-testid='stAlertContentError']"
TIMEOUT = 600_000  # ms: the embedded model on a shared CPU


def test_a_sample_run_opens_a_finder_text_in_explore(server, watched):
    page = watched.page
    page.goto(f"{server}/corpus")
    wait_for_app(page, charts=0, timeout=TIMEOUT)
    rows = page.locator(".st-key-corpus_rows input")
    rows.fill("3")
    rows.press("Enter")
    wait_for_rerun(page)
    page.locator(".st-key-corpus_faithfulness label").click()  # off: the quickest run
    wait_for_rerun(page)
    page.get_by_role("button", name="Run").click()
    page.get_by_text("Texts explained").wait_for(timeout=TIMEOUT)
    wait_for_rerun(page, timeout=TIMEOUT)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    expect(page.locator(ERROR)).to_have_count(0)
    assert not watched.page_errors, watched.page_errors
    assert parse_qs(urlparse(page.url).query)["run"], page.url
    button = page.locator("a", has_text="Open in Explore")
    button.scroll_into_view_if_needed(timeout=TIMEOUT)
    href = button.get_attribute("href")
    query = parse_qs(urlparse(href).query)
    assert query["me"] == ["gradient_x_input"]
    assert query["t"][0] in sample_path().read_text(encoding="utf-8")
    page.goto(href)
    wait_for_app(page, charts=1, timeout=TIMEOUT)
    expect(page.locator(EXCEPTION)).to_have_count(0)
    expect(page.locator("textarea").first).to_have_value(query["t"][0])
