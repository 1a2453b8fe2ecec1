"""Everyone can use the Explore page: keyboard and screen reader, the system's dark theme, a 390 px phone.

A real server and Debian's Chromium; a tiny random classifier (testkit/tiny_models.py) keeps each rerun short.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from testkit.server import wait_for_app

pytestmark = pytest.mark.browser

TIMEOUT = 120_000
# Icon names Streamlit draws as ligature text (the Material Symbols font turns them into pictures).
LIGATURES = ("content_cut", "bookmark", "compare_arrows", "link")

# Every keyboard stop in page order, from the first to the last: tag, accessible label, the Streamlit key of the
# element it sits in, and whether it belongs to a chart. The page records the focused element as each Tab key comes
# up (one round trip for all the stops instead of one per stop).
RECORD_STOPS = """() => { window.tabStops = [];
  const stop = (e) => { const k = e.closest('[class*="st-key-"]');
    return {tag: e.tagName, label: e.getAttribute('aria-label') || e.getAttribute('data-title') || '',
            key: k ? [...k.classList].find((c) => c.startsWith('st-key-')) : '', chart: !!e.closest('.js-plotly-plot')}; };
  window.addEventListener('keyup', (event) => {
    if (event.key === 'Tab') window.tabStops.push(stop(document.activeElement)); }, true); }"""

# WCAG contrast of an element's text against its own background, or the first opaque one above it.
CONTRAST = """(e) => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const opaque = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] === 1)) return c; } return [255, 255, 255]; };
  const lum = (c) => { const l = c.slice(0, 3).map((v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
      return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
  const a = lum(rgb(getComputedStyle(e).color)), b = lum(opaque(e));
  return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
}"""


def explore(base: str, model: str, **extra: str) -> str:
    return f"{base}/?{urlencode({'m': model, 't': 'good film', 'n': '5', **extra})}"


def open_explore(browser, address: str, **context):
    page = browser.new_context(**{"viewport": {"width": 1440, "height": 1000}, **context}).new_page()
    page.goto(address)
    wait_for_app(page, timeout=TIMEOUT, charts=3)  # the head's map (three SVG layers) at least
    return page


def tab_stops(page, count: int = 120) -> list[dict]:
    page.locator("[data-testid='stMain'] h1").first.click()
    page.evaluate(RECORD_STOPS)
    for _ in range(count):
        page.keyboard.press("Tab")
    return page.evaluate("() => window.tabStops")


def one_round(stops: list[dict]) -> list[dict]:
    """The stops up to where Tab wraps round to the first one again (a short page is gone through more than once)."""
    return next((stops[:i] for i in range(1, len(stops)) if stops[i] == stops[0]), stops)


@pytest.fixture
def tiny_classifier(tiny_dirs) -> str:
    return tiny_dirs["classification"]


@pytest.fixture(scope="module")
def default_explore(server, browser, tiny_dirs):
    """The default Explore page and its first 40 keyboard stops, read once for the tests that only look at them."""
    page = open_explore(browser, explore(server, tiny_dirs["classification"]))
    yield page, tab_stops(page, 40)
    page.context.close()


def test_tab_reaches_every_highlighted_word_with_its_score(default_explore):
    page, stops = default_explore
    labels = [s["label"] for s in stops]
    score = r"[+-]?\d+(\.\d+)?(e[+-]?\d+)?"
    for word in ("good", "film"):
        assert any(re.fullmatch(rf"{word}: {score}(, (raises|lowers) P\(\w+\))?", label) for label in labels), labels
    # the same numbers as a table, one row per word
    page.get_by_text("Word scores as a table").click()  # the table is sent once the expander opens (a rerun)
    expect(page.locator("[data-testid='stExpander'] [data-testid='stDataFrame']")).to_have_count(1, timeout=60_000)


def test_each_chart_adds_at_most_two_tab_stops(server, browser, tiny_classifier):
    page = open_explore(browser, explore(server, tiny_classifier, gr="1"))  # the all-heads grid opened
    per_chart: dict[str, int] = {}
    for stop in one_round(tab_stops(page)):
        if stop["chart"]:
            per_chart[stop["key"]] = per_chart.get(stop["key"], 0) + 1
    assert {"st-key-head_map", "st-key-grid"} <= set(per_chart), per_chart
    assert max(per_chart.values()) <= 2, per_chart
    page.context.close()


def test_the_prediction_reads_every_score_from_one_tab_stop(default_explore):
    """The prediction is HTML bars (no chart): one keyboard stop whose name reads each label with its score."""
    page, all_stops = default_explore
    stops = [s for s in all_stops if s["key"] == "st-key-prediction"]
    assert len(stops) == 1, stops
    rows = page.locator(".st-key-prediction table tr").all_inner_texts()
    assert len(rows) >= 2
    for row in rows:
        label, score = row.split("\t")[0].strip(), row.split("\t")[-1].strip()
        assert re.fullmatch(r"[+-]?\d+(\.\d+)?(e[+-]?\d+)?", score), row
        assert f"{label}: {score}" in stops[0]["label"], (row, stops[0]["label"])


def test_alerts_carry_no_icon_names(server, browser, tiny_classifier):
    page = open_explore(browser, explore(server, tiny_classifier, ab="0:1"))
    alerts = page.locator("[data-testid='stAlert']")
    expect(alerts.first).to_contain_text("Without heads")
    for text in alerts.all_inner_texts():
        assert not any(re.search(rf"\b{name}\b", text) for name in LIGATURES), text
    tree = page.locator("[data-testid='stMain']").aria_snapshot()  # "link" is a role there: only the others
    assert not any(name in tree for name in LIGATURES if name != "link"), tree
    page.context.close()


def test_the_system_dark_theme_keeps_the_highlights_legible(server, browser, tiny_classifier):
    page = open_explore(browser, explore(server, tiny_classifier), color_scheme="dark")
    background = page.locator("[data-testid='stApp']").evaluate("e => getComputedStyle(e).backgroundColor")
    assert max(int(v) for v in re.findall(r"\d+", background)[:3]) < 60, background  # a dark page
    pieces = page.locator("[data-testid='stHtml'] span[title]")
    assert pieces.count() >= 2
    for piece in pieces.all():
        assert piece.evaluate(CONTRAST) >= 4.5, piece.get_attribute("title")
    # the heading and the legend around the pieces read on the dark page too
    html = page.locator("[data-testid='stHtml']:has(span[title])").first
    assert html.locator("div").first.evaluate(CONTRAST) >= 4.5
    assert html.get_by_text(re.compile("^red lowers")).evaluate(CONTRAST) >= 4.5
    page.context.close()


def test_a_390_px_phone_clips_nothing_and_toolbars_leave_titles_alone(server, browser, tiny_classifier):
    page = open_explore(browser, explore(server, tiny_classifier), viewport={"width": 390, "height": 844},
                        is_mobile=True, has_touch=True)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    wide = page.evaluate("""() => [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot, '
        + '[data-testid=stMain] [data-testid=stHtml]')].map((e) => e.getBoundingClientRect())
        .filter((r) => r.right > 391 || r.left < -1).length""")
    assert wide == 0
    overlaps = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].flatMap((p) => {
        const t = p.querySelector('.gtitle'), m = p.querySelector('.modebar');
        if (!t || !m || !t.textContent) return [];
        const a = t.getBoundingClientRect(), b = m.getBoundingClientRect();
        const apart = a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top;
        return apart ? [] : [t.textContent]; })""")
    assert overlaps == []
    page.context.close()


# Each chart's text alternative: the visually hidden sentence just before it (dashboard/components/charts.py).
CHART_DESCRIPTIONS = """() => [...document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')].map((plot) => {
  const box = plot.closest('[data-testid=stElementContainer]');
  const before = box && box.previousElementSibling;
  const text = before && before.querySelector('.chart-description');
  return {key: [...(box ? box.classList : [])].find((c) => c.startsWith('st-key-')) || '',
          text: text ? text.textContent : ''};
})"""


@pytest.mark.parametrize("where", ["explore", "heads"])
def test_every_chart_has_a_text_alternative_with_its_numbers(server, browser, tiny_classifier, where):
    if where == "explore":  # the head map, with the aggregate views and the all-heads grid opened (the prediction
        page = open_explore(browser, explore(server, tiny_classifier, gr="1", ao="1"))  # is HTML bars)
        least = 3
    else:
        page = browser.new_context(viewport={"width": 1440, "height": 1000}).new_page()
        page.goto(f"{server}/heads?{urlencode({'m': tiny_classifier, 't': 'good film'})}")
        least = 5  # three importance maps, the neuron view and the pruning curve
        wait_for_app(page, timeout=2 * TIMEOUT, charts=least)
    charts = page.evaluate(CHART_DESCRIPTIONS)
    assert len(charts) >= least, charts
    for chart in charts:
        assert re.search(r"\d", chart["text"]), chart
    tree = page.locator("[data-testid='stMain']").aria_snapshot()
    assert all(chart["text"][:40] in tree for chart in charts), tree  # read out, not hidden from screen readers
    page.context.close()


def test_the_heads_page_text_does_not_overlap_on_a_390_px_phone(server, browser, tiny_classifier):
    """The neuron view's panel titles and colour-bar titles stay apart at a phone's width."""
    page = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()
    page.goto(f"{server}/heads?{urlencode({'m': tiny_classifier, 't': 'good film'})}")
    wait_for_app(page, timeout=2 * TIMEOUT, charts=5)
    overlaps = page.evaluate("""() => [...document.querySelectorAll('.js-plotly-plot')].flatMap((p) => {
        const boxes = [...p.querySelectorAll('.annotation-text, .cbtitle text')].filter((t) => t.textContent)
            .map((t) => [t.textContent, t.getBoundingClientRect()]);
        return boxes.flatMap(([ta, a], i) => boxes.slice(i + 1).filter(([, b]) =>
            !(a.right <= b.left || b.right <= a.left || a.bottom <= b.top || b.bottom <= a.top))
            .map(([tb]) => `${ta} / ${tb}`)); })""")
    assert overlaps == []
    page.context.close()
