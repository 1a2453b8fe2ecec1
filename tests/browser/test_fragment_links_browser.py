"""The sidebar's page links after a change drawn in a fragment (only that part of the page reruns, so the links
were built on an earlier run): moving on through them, or with Back and Forward, keeps the change.

A real server and Debian's Chromium; a tiny random classifier (testkit/tiny_models.py) keeps each rerun short.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from playwright.sync_api import expect

from testkit.server import running_server, select_option, wait_for_app, wait_for_rerun

pytestmark = pytest.mark.browser

TIMEOUT = 120_000  # a busy 2-core machine
SIDEBAR = "[data-testid='stSidebar']"


def query(address: str) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlparse(address).query).items()}


def link(page, name: str):
    return page.locator(SIDEBAR).get_by_role("link", name=name, exact=True)


def settle(page) -> None:
    page.wait_for_timeout(500)
    wait_for_app(page, timeout=TIMEOUT, charts=0)
    wait_for_rerun(page, timeout=TIMEOUT)


def expect_layer(page, layer: str) -> None:
    expect(page.get_by_role("combobox", name="Layer", exact=True)).to_have_value(layer, timeout=TIMEOUT)
    assert query(page.url).get("l", "0") == layer, page.url


def test_a_head_chosen_in_a_fragment_survives_the_sidebar_links_and_back_and_forward(server, watched, tiny_dirs):
    page = watched.page
    page.set_default_timeout(TIMEOUT)
    page.goto(f"{server}/?{urlencode({'m': tiny_dirs['classification'], 't': 'good film', 'n': '5'})}")
    wait_for_app(page, timeout=TIMEOUT, charts=2)
    select_option(page, "Layer", "1")  # reruns the attention views' fragment only
    settle(page)
    expect_layer(page, "1")

    link(page, "Explore").click()  # the page's own link, drawn before the change
    settle(page)
    expect_layer(page, "1")

    link(page, "Compare").click()
    page.wait_for_url(lambda u: urlparse(u).path.strip("/") == "compare", timeout=TIMEOUT)
    settle(page)
    page.go_back()
    settle(page)
    expect_layer(page, "1")
    link(page, "Methods").click()
    page.wait_for_url(lambda u: urlparse(u).path.strip("/") == "methods", timeout=TIMEOUT)
    settle(page)
    link(page, "Explore").click()
    settle(page)
    expect_layer(page, "1")
    page.go_back()  # Methods
    settle(page)
    page.go_forward()
    settle(page)
    expect_layer(page, "1")
    assert not watched.page_errors


@pytest.fixture(scope="module")
def fragment_app() -> str:
    with running_server(app=Path(__file__).with_name("fragment_shared_app.py")) as base:
        yield base


def test_a_shared_value_changed_in_a_fragment_reaches_the_other_pages_links(fragment_app, watched):
    page = watched.page
    page.set_default_timeout(TIMEOUT)
    page.goto(f"{fragment_app}/?{urlencode({'t': 'first text'})}")
    settle(page)
    box = page.get_by_label("Text", exact=True)
    box.fill("second text")
    box.press("Enter")
    settle(page)
    assert query(page.url)["t"] == "second text"
    for name in ("Compare", "Methods", "Heads"):
        assert query(link(page, name).get_attribute("href"))["t"] == "second text", name
