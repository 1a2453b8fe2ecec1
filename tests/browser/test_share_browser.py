"""Save an analysis in a real browser, open its link in a fresh browser context, see the same thing."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import urllib.parse

import pytest

from testkit.server import wait_for_app

pytestmark = pytest.mark.browser


def highlights(page) -> list[tuple[str, str]]:
    """(text, hover title) of every highlighted piece."""
    return page.eval_on_selector_all(
        "span[title]", "els => els.filter(e => /: [-+]?[0-9]/.test(e.title)).map(e => [e.innerText, e.title])"
    )


def test_saved_link_reopens_the_same_analysis_in_a_new_context(server, store, browser, tiny_dirs):
    base = server
    query = urllib.parse.urlencode({"m": tiny_dirs["encoder"], "t": "the food was great but the service slow",
                                    "n": "6", "l": "1", "h": "3"})
    first = browser.new_context(viewport={"width": 1400, "height": 2000})
    page = first.new_page()
    page.goto(f"{base}/?{query}")
    wait_for_app(page, charts=3)
    before = highlights(page)
    assert any(text == "food" and title.startswith("food: ") for text, title in before)
    page.get_by_role("button", name="Save and share").click()
    page.wait_for_selector("[data-testid='stCode']", timeout=60_000)
    link = page.inner_text("[data-testid='stCode']").strip()
    assert link.startswith(base) and "analysis=" in link
    assert "analysis=" in page.url  # the address bar is the link too
    first.close()
    if not os.environ.get("DASHBOARD_URL"):  # a server given by URL keeps a store of its own
        saved = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["analysis"][-1]
        with contextlib.closing(sqlite3.connect(store)) as db:  # the session's store: other tests save there too
            assert db.execute("SELECT count(*) FROM analyses WHERE id = ?", (saved,)).fetchone() == (1,)

    second = browser.new_context(viewport={"width": 1400, "height": 2000})
    other = second.new_page()
    other.goto(link)
    wait_for_app(other, charts=3)
    assert highlights(other) == before
    assert other.get_by_text("Showing the saved analysis").count() == 1
    assert other.get_by_text("Page not found").count() == 0
    assert other.locator("[data-testid='stException']").count() == 0
    second.close()
