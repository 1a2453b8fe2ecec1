"""A user walks every page from the sidebar in a real Chromium: the text, the model and the method go along, each
page keeps its own settings, and the browser's Back and Forward step page by page."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from testkit.server import wait_for_app, wait_for_rerun

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WALK = ("explore", "methods", "heads", "compare", "saved")
TEXT = "the food was great but slow"
STEPS = "6"
# One setting of each page's own, set by the link that opens it: it must come back with the page and nowhere else.
OWN = {"explore": ("l", "1"), "compare": ("l", "1"), "methods": ("mf", "remove"), "heads": ("hl", "1")}
TIMEOUT = 120_000  # a busy 2-core machine
STEP_PAGES = {"explore", "methods", "compare"}  # the pages with integrated gradients' evaluations slider


def query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlparse(page.url).query).items()}


def open_by_sidebar(page, name: str) -> None:
    page.locator("[data-testid='stSidebar']").get_by_role("link", name=name.capitalize(), exact=True).click()
    path = "" if name == "explore" else name
    page.wait_for_url(lambda url: urlparse(url).path.strip("/") == path, timeout=TIMEOUT)
    # The page switch keeps the connection: waiting for the new page's run to end is enough (no second settle).
    wait_for_rerun(page)


def sliders(page, name: str) -> list[str]:
    """The page's slider values; Explore keeps its integration settings in a sidebar popover, opened to read them."""
    tucked = page.get_by_role("button", name="Integration, baseline, token limit") if name == "explore" else None
    if tucked is not None:
        tucked.click()
        page.locator("[data-testid='stSlider']").first.wait_for(timeout=TIMEOUT)
    values = page.eval_on_selector_all("[data-testid='stSlider'] input[type='range']", "els => els.map(e => e.value)")
    if tucked is not None:
        page.keyboard.press("Escape")
    return values


def check(page, name: str, start: str, steps: str) -> None:
    """The shared values arrived, the start page's own setting is there only on that page, no slider at its
    minimum, no 'None' in the link."""
    url = query(page)
    assert "None" not in url.values(), (name, url)
    assert not page.locator("[data-testid='stException']").count(), name
    if name == "saved":
        return
    assert page.get_by_label("Text", exact=True).input_value() == TEXT, name
    assert url.get("t") == TEXT, (name, url)
    assert url.get("m"), (name, url)
    key, value = OWN[start] if start in OWN else ("", "")
    if name == start:
        assert url.get(key) == value, (name, url)
    elif key:
        assert url.get(key) != value, (name, url)
    values = sliders(page, name)
    assert values == ([steps] if name in STEP_PAGES else []), (name, values)


@pytest.mark.parametrize("start", WALK)
def test_walking_every_page_keeps_the_text_and_each_page_its_settings(server, watched, tiny_dirs, start):
    page = watched.page
    page.set_default_timeout(TIMEOUT)
    params = {"m": tiny_dirs["classification"], "n": STEPS, "ig": "adaptive_simpson", "dt": "0.05"}
    key, value = OWN.get(start, ("", ""))
    if key:
        params[key] = value
    path = "" if start in ("explore", "saved") else start
    page.goto(f"{server}/{path}?{urlencode(params)}")
    wait_for_app(page, charts=0)
    if start == "saved":  # the Saved page reads no link: the model was picked on Explore
        open_by_sidebar(page, "saved")
    steps = STEPS if start in STEP_PAGES | {"saved"} else "50"
    order = WALK[WALK.index(start):] + WALK[:WALK.index(start)] + (start,)
    typed = False
    for name in order[1:] if start == "saved" else order:
        if name != start or typed:
            open_by_sidebar(page, name)
        if not typed and name != "saved":
            box = page.get_by_label("Text", exact=True)
            box.fill(TEXT)
            box.press("Control+Enter")
            wait_for_rerun(page)
            # The link follows the run's end by a message; a busy machine can show the idle page first.
            page.wait_for_url(lambda url: parse_qs(urlparse(url).query).get("t", [""])[-1] == TEXT, timeout=TIMEOUT)
            typed = True
        check(page, name, start, steps)
    assert not watched.page_errors, watched.page_errors


def test_back_forward_and_reload_keep_each_page(server, watched, tiny_dirs):
    page = watched.page
    page.set_default_timeout(TIMEOUT)
    page.goto(f"{server}/?{urlencode({'m': tiny_dirs['classification'], 'n': STEPS, 'l': '1'})}")
    wait_for_app(page, charts=0)
    box = page.get_by_label("Text", exact=True)
    box.fill(TEXT)
    box.press("Control+Enter")
    wait_for_rerun(page)
    explore_url = page.url
    open_by_sidebar(page, "methods")
    methods_url = page.url
    open_by_sidebar(page, "heads")
    for expected, move in ((methods_url, page.go_back), (explore_url, page.go_back), (methods_url, page.go_forward)):
        move()
        page.wait_for_url(re.compile(re.escape(urlparse(expected).path) + r"(\?|$)"), timeout=TIMEOUT)
        wait_for_app(page, charts=0)
        wait_for_rerun(page)
        assert parse_qs(urlparse(page.url).query) == parse_qs(urlparse(expected).query), (page.url, expected)
        assert page.get_by_label("Text", exact=True).input_value() == TEXT
    page.reload()  # a reload reopens the page from its link: the same link, text and sliders
    wait_for_app(page, charts=0)
    wait_for_rerun(page)
    assert parse_qs(urlparse(page.url).query) == parse_qs(urlparse(methods_url).query), (page.url, methods_url)
    assert page.get_by_label("Text", exact=True).input_value() == TEXT
    assert sliders(page, "methods") == [STEPS], sliders(page, "methods")
    assert not watched.page_errors, watched.page_errors
