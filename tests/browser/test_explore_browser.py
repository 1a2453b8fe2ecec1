"""The explore page in a real headless Chromium against a real server: what a user sees and clicks.

No mocks: the server runs `streamlit run dashboard/app.py`, the models are real (the embedded MiniLM, or tiny
random BERTs from testkit/tiny_models.py where the embedded model is not needed).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlencode, urlparse

import pytest
from playwright.sync_api import expect

from dashboard.state import DEFAULT_TEXT
from testkit.server import select_option, wait_for_app, wait_for_rerun

pytestmark = pytest.mark.browser

EXCEPTION = "[data-testid='stException']"
ERROR = "[data-testid='stAlertContentError']"
WARNING = "[data-testid='stAlertContentWarning']"
INFO = "[data-testid='stAlertContentInfo']"
HIGHLIGHT = "[data-testid='stHtml'] span[title]"
TIMEOUT = 60_000  # ms, for one rerun on a tiny model (the embedded model's first load is slower)

# The single-head heatmap and the all-heads grid, by their Streamlit keys (st-key-<key> on the element).
HEAD_MAP = ".st-key-head_map .js-plotly-plot"
GRID = ".st-key-grid .js-plotly-plot"

# Page coordinates of the grid's thumbnail centres, from Plotly's own axis geometry: the invisible scatter
# trace (curve 1) has one marker per thumbnail at (head centre, layer centre) in data units.
THUMBNAIL_CENTRES = """(gd) => {
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
  const ticks = (ax) => Array.from(ax.ticktext);
  const trace = gd.calcdata.find((c) => c[0] && c[0].trace && c[0].trace.type === 'scatter');
  return {
    heads: ticks(xa), layers: ticks(ya),
    points: trace.map((p) => ({x: box.left + xa._offset + xa.c2p(p.x), y: box.top + ya._offset + ya.c2p(p.y),
                                dx: p.x, dy: p.y})),
    headCentres: Array.from(xa.tickvals), layerCentres: Array.from(ya.tickvals),
  };
}"""

# Sides whose margin Plotly's automargin had to grow past the figure's own (colour bars push the right margin
# before the axes are drawn, so only left, bottom and top say whether the labels fitted).
MARGINS_GROWN = """(gd) => ['l', 'b', 't'].filter((side) => gd._fullLayout._size[side] > gd._fullLayout.margin[side] + 0.5)
  .map((side) => `${side}: ${gd._fullLayout.margin[side]} -> ${gd._fullLayout._size[side]}`)"""


def url(base: str, **params: str) -> str:
    return f"{base}/?{urlencode(params)}" if params else f"{base}/"


def open_page(page, address: str) -> None:
    page.goto(address)
    wait_until_drawn(page)


def wait_until_drawn(page, *, grid: bool = False) -> None:
    """The first screen (the prediction's bars, one head) drawn, and the grid when the link opened it."""
    wait_for_app(page, charts=3 if grid else 2)
    for chart in (HEAD_MAP, GRID) if grid else (HEAD_MAP,):  # drawn by Plotly, not just placed
        page.locator(f"{chart} .main-svg").first.wait_for(timeout=TIMEOUT)


def assert_clean(watched) -> None:
    page = watched.page
    expect(page.locator(EXCEPTION)).to_have_count(0)
    expect(page.locator(ERROR)).to_have_count(0)
    assert not watched.page_errors, watched.page_errors


def head_title(page) -> str:
    return page.locator(f"{HEAD_MAP} .gtitle").text_content() or ""


def expect_head(page, layer: int, head: int) -> None:
    expect(page.get_by_role("combobox", name="Layer", exact=True)).to_have_value(str(layer), timeout=TIMEOUT)
    expect(page.get_by_role("combobox", name="Head", exact=True)).to_have_value(str(head), timeout=TIMEOUT)
    expect(page.locator(f"{HEAD_MAP} .gtitle")).to_have_text(f"Layer {layer}, head {head}", timeout=TIMEOUT)


def test_default_page_renders_highlights_and_heatmaps(server, watched):
    page = watched.page
    open_page(page, url(server))
    assert_clean(watched)
    # The token highlights: one span per word, its title "word: score".
    titles = page.locator(HIGHLIGHT).evaluate_all("els => els.map(e => e.title)")
    assert any(re.fullmatch(r"film: [+-]?\d+(\.\d+)?(e[+-]?\d+)?", t) for t in titles), titles
    assert [t.rsplit(": ", 1)[0] for t in titles] == re.findall(r"\w+|[^\w\s]", DEFAULT_TEXT)  # one per word
    assert "blue raises P(" in page.locator("[data-testid='stHtml']:has(span[title])").first.inner_text()
    # The first screen draws one chart, the head's map; the prediction is HTML bars with its scores as text (one
    # tab stop); the other views open on request.
    assert page.locator(".js-plotly-plot").count() == 1
    bars = page.locator(".st-key-prediction [data-testid='stHtml'] table")
    assert bars.get_attribute("tabindex") == "0"
    assert re.search(r"\d\.\d", bars.inner_text()) and re.search(r": \d\.\d", bars.get_attribute("aria-label") or "")
    assert head_title(page) == "Layer 0, head 0"
    for view in ("Aggregate views", "All heads"):  # expanders, keyed by the views' URL flags
        page.locator("[data-testid='stExpander'] summary").filter(has_text=f"{view}:").click()
        wait_for_rerun(page)
    expect(page).to_have_url(re.compile(r"[?&]ao=1&gr=1(&|$)"), timeout=TIMEOUT)
    page.locator(f"{GRID} .main-svg").first.wait_for(timeout=TIMEOUT)
    assert page.locator(".js-plotly-plot").count() == 3
    ticks = page.locator(GRID).evaluate("gd => Array.from(gd._fullLayout.yaxis.ticktext)")
    assert ticks == [f"layer {i}" for i in range(6)]  # all-MiniLM-L6: 6 layers
    drawn = page.locator(f"{GRID} .heatmaplayer image, {GRID} .heatmaplayer .hm")
    assert drawn.count() >= 1
    assert page.locator(f"{HEAD_MAP} .heatmaplayer image, {HEAD_MAP} .heatmaplayer .hm").count() >= 1
    assert urlencode({"t": DEFAULT_TEXT}) in page.url  # the page writes its state into the address bar
    # The figures' own margins already fit their tick labels, so Plotly drew each chart once instead of
    # measuring the labels, growing the margins and drawing it again (see explain.viz.attention._label_margin).
    for key in ("head_map", "agg_rollout", "grid"):
        grown = page.locator(f".st-key-{key} .js-plotly-plot").evaluate(MARGINS_GROWN)
        assert not grown, f"{key}: Plotly had to grow the margins {grown}"


def test_layer_and_head_choice_lands_in_the_url_and_survives_a_reload(server, watched, tiny_dirs):
    page = watched.page
    open_page(page, url(server, m=tiny_dirs["encoder"], t="good film", n="5"))
    expect_head(page, 0, 0)
    select_option(page, "Layer", "1")
    wait_for_rerun(page)
    select_option(page, "Head", "3")
    wait_for_rerun(page)
    expect_head(page, 1, 3)
    expect(page).to_have_url(re.compile(r"[?&]l=1&h=3(&|$)"), timeout=TIMEOUT)
    address = page.url

    page.reload()  # a new Streamlit session: everything comes from the URL
    wait_until_drawn(page)
    expect_head(page, 1, 3)
    assert page.url == address
    assert_clean(watched)


def test_clicking_a_grid_thumbnail_opens_that_head(server, watched, tiny_dirs):
    page = watched.page
    page.goto(url(server, m=tiny_dirs["encoder"], t="good film", n="5", gr="1"))
    wait_until_drawn(page, grid=True)
    expect_head(page, 0, 0)
    grid = page.locator(GRID)
    grid.scroll_into_view_if_needed()
    geometry = grid.evaluate(THUMBNAIL_CENTRES)
    assert geometry["layers"] == ["layer 0", "layer 1"] and geometry["heads"] == [f"head {h}" for h in range(4)]
    # The thumbnail in row "layer 1", column "head 2": its marker sits at those ticks' data coordinates.
    target = next(p for p in geometry["points"]
                  if p["dx"] == geometry["headCentres"][2] and p["dy"] == geometry["layerCentres"][1])
    box = grid.bounding_box()
    assert box["x"] < target["x"] < box["x"] + box["width"] and box["y"] < target["y"] < box["y"] + box["height"]
    page.mouse.move(target["x"], target["y"])
    expect(page.locator(".hoverlayer .hovertext")).to_contain_text("layer 1, head 2")
    page.mouse.click(target["x"], target["y"])
    wait_for_rerun(page)
    expect(page).to_have_url(re.compile(r"[?&]l=1&h=2(&|$)"), timeout=5_000)
    expect_head(page, 1, 2)
    assert_clean(watched)


def test_html_in_the_text_is_shown_as_text_and_runs_nothing(server, watched, tiny_dirs):
    page = watched.page
    tag = "<img src=x onerror=alert(1)>"
    text = f"{tag} good film"
    # The tag also goes in whole (not split into words) as a zero-shot label, which the page prints in the
    # highlights' heading and the prediction chart.
    open_page(page, url(server, m=tiny_dirs["encoder"], t=text, ls=f"{tag},positive", n="4"))
    page.wait_for_timeout(1000)  # give a broken image's onerror time to fire
    assert watched.dialogs == []
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("[onerror]").count() == 0
    highlights = page.locator("[data-testid='stHtml']:has(span[title])").first.inner_text()
    assert "<img" in highlights and "onerror=alert(1)" in highlights
    assert f"P({tag})" in highlights  # the heading, escaped: the whole tag is there as text
    expect(page.get_by_role("textbox", name="Text")).to_have_value(text)
    assert_clean(watched)


def test_a_hand_edited_bad_link_warns_and_still_renders(server, watched, tiny_dirs):
    page = watched.page
    open_page(page, f"{server}/?m={tiny_dirs['encoder']}&t=good+film&n=zillion&l=99")
    warning = page.locator(WARNING).filter(has_text="'n'")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("whole number")
    expect(page.locator(INFO).filter(has_text="layer 99 does not exist")).to_be_visible()
    expect_head(page, 1, 0)  # the tiny model has 2 layers: the last one is shown
    assert page.locator(".js-plotly-plot").count() >= 1
    assert page.locator(HIGHLIGHT).count() == 2
    page.get_by_role("button", name="Integration, baseline, token limit").click()  # a popover in the sidebar
    expect(page.get_by_role("slider", name="Integration steps")).to_have_value("50")
    assert_clean(watched)


def test_the_target_settings_are_one_click_away_in_the_sidebar(server, watched, tiny_dirs):
    """The zero-shot labels sit in a sidebar popover (its widgets drawn only once opened): opened, typed into, they
    relabel the prediction and the link."""
    page = watched.page
    open_page(page, url(server, m=tiny_dirs["encoder"], t="good film", n="2"))
    sidebar = page.locator("[data-testid='stSidebar']")
    expect(sidebar.get_by_role("textbox", name="Labels (comma-separated)")).to_have_count(0)
    sidebar.get_by_role("button", name="Labels, prompts, label to explain").click()
    box = page.get_by_role("textbox", name="Labels (comma-separated)")
    box.fill("sunny, rainy")
    box.press("Enter")
    wait_for_rerun(page)
    expect(page.locator(".st-key-prediction")).to_contain_text("sunny", timeout=TIMEOUT)
    assert parse_qs(urlparse(page.url).query)["ls"] == ["sunny, rainy"]
    assert_clean(watched)


def test_markdown_in_a_link_fetches_nothing_and_links_nowhere(server, watched, tiny_dirs):
    """A model name, a label and an unknown key made of Markdown images and links: shown as text, fetched never."""
    page = watched.page
    outside: list[str] = []
    page.on("request", lambda request: outside.append(request.url) if not request.url.startswith(server) else None)
    image = "![t](http://127.0.0.1:9/a.png)"
    link = "[login](https://evil.example/x)"
    for address in (f"{server}/?" + urlencode({"m": f"{image} {link}", "t": "good film", "n": "2", link: "1"}),
                    url(server, m=tiny_dirs["encoder"], t="good film", n="2", lb=image, ls=f"{link},good")):
        page.goto(address)
        wait_for_app(page, charts=0)
    page.wait_for_timeout(1000)
    # The sidebar's page links carry the link's own query (Markdown included, URL-encoded): what must not exist
    # is a link or an image that points at another host.
    targets = page.eval_on_selector_all("a[href], img[src]", "els => els.map(e => e.href || e.src)")
    elsewhere = [t for t in targets if urlparse(t).netloc != urlparse(server).netloc and t.startswith("http")]
    assert elsewhere == []
    assert outside == []
    assert "login" in page.locator("[data-testid='stMain']").inner_text()


# Before a change: every chart on the page counts Plotly's redraws and carries a mark (a chart replaced by a new
# element loses it), as do the prediction's bars and the highlights (HTML: drawn again means replaced). After: the
# Streamlit keys of the charts that were drawn again, and whether the bars and the highlights are the same nodes.
WATCH_DRAWS = """() => {
  document.querySelectorAll('.js-plotly-plot').forEach((gd) => {
    gd.__draws = 0; gd.__watched = true; gd.on('plotly_afterplot', () => { gd.__draws += 1; });
  });
  document.querySelectorAll("[data-testid='stHtml']").forEach((el) => { el.__watched = true; });
}"""
HTML_KEPT = """() => ({
  bars: !!document.querySelector(".st-key-prediction [data-testid='stHtml']").__watched,
  highlights: !!document.querySelector("[data-testid='stHtml']:has(span[title])").__watched,
})"""
DRAWN_AGAIN = """() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"]'))
  .filter((el) => { const gd = el.querySelector('.js-plotly-plot'); return !gd || !gd.__watched || gd.__draws > 0; })
  .map((el) => Array.from(el.closest('[class*="st-key-"]').classList).find((c) => c.startsWith('st-key-')).slice(7))"""


def test_a_head_change_redraws_only_the_head_map(server, watched, tiny_dirs):
    """Issue 20 section 7: the prediction (and the rest of the page) is not drawn again when the head changes."""
    page = watched.page
    open_page(page, url(server, m=tiny_dirs["encoder"], t="good film", n="5"))
    page.evaluate(WATCH_DRAWS)
    select_option(page, "Head", "2")
    wait_for_rerun(page)
    expect_head(page, 0, 2)
    assert page.evaluate(DRAWN_AGAIN) == ["head_map"]
    assert page.evaluate(HTML_KEPT) == {"bars": True, "highlights": True}
    expect(page).to_have_url(re.compile(r"[?&]h=2(&|$)"), timeout=5_000)
    assert_clean(watched)


def test_a_thumbnail_click_brings_the_head_map_into_view(server, watched, tiny_dirs):
    """Issue 20 section 5: the head opened from the grid is drawn above it, out of sight; the page scrolls to it."""
    page = watched.page
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(url(server, m=tiny_dirs["encoder"], t="the film was good but far too long", n="5", gr="1"))
    wait_until_drawn(page, grid=True)
    grid = page.locator(GRID)
    grid.evaluate("gd => gd.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)
    expect(page.locator(f"{HEAD_MAP} .gtitle")).not_to_be_in_viewport()
    geometry = grid.evaluate(THUMBNAIL_CENTRES)
    target = next(p for p in geometry["points"]
                  if p["dx"] == geometry["headCentres"][3] and p["dy"] == geometry["layerCentres"][1])
    page.mouse.click(target["x"], target["y"])
    wait_for_rerun(page)
    expect_head(page, 1, 3)
    expect(page.locator(f"{HEAD_MAP} .gtitle")).to_be_in_viewport(timeout=5_000)
    expect(page.get_by_role("combobox", name="Head", exact=True)).to_be_in_viewport()
    assert_clean(watched)


# Streamlit draws a placeholder (stSkeleton) for each element until its code has loaded; on a warm page the widgets
# and the chart wait for Plotly's chunk, seconds on a busy machine. Its shimmer is a never-ending animation that
# makes Chromium composite the whole window every frame meanwhile (measured: 3 to 8 s of CPU a warm load, the
# one-chart page 0.3 s), taking the CPU the page needs to finish. The page's style (dashboard/app.py) stills them;
# the page links' and the style's own placeholders, drawn before it, are gone within a few frames.
# Installed before the page's scripts: the animation of each keyed element's placeholder (widgets, the head's map),
# and whether the page's style was there when it was drawn.
SKELETONS_SEEN = """(() => {
  const seen = window.__skeletonAnimations = [];
  new MutationObserver(() => {
    const styled = !!document.querySelector('style[data-page-style]');
    for (const s of document.querySelectorAll('[class*="st-key-"] [data-testid=stSkeleton]:not([data-seen])')) {
      s.setAttribute('data-seen', '');
      seen.push((styled ? 'styled ' : 'before ') + getComputedStyle(s).animationName);
    }
  }).observe(document, {childList: true, subtree: true});
})();"""
STYLE_BOXES = """() => [...document.querySelectorAll('[data-testid=stElementContainer]')]
  .filter((c) => c.querySelector('style')).map((c) => c.getBoundingClientRect().height + getComputedStyle(c).display)"""


def test_element_placeholders_do_not_shimmer_and_the_style_takes_no_room(server, watched, tiny_dirs):
    page = watched.page
    page.add_init_script(SKELETONS_SEEN)
    open_page(page, url(server, m=tiny_dirs["encoder"], t="good film", n="4"))
    assert_clean(watched)
    seen = page.evaluate("window.__skeletonAnimations")
    # A fresh page loads each widget's code, so placeholders are drawn; those drawn once the style is on the page
    # are still (one may come before it, as the page links' do).
    styled = [s.removeprefix("styled ") for s in seen if s.startswith("styled ")]
    assert styled and set(styled) == {"none"}, seen
    boxes = page.evaluate(STYLE_BOXES)
    assert boxes and all(box == "0none" for box in boxes), boxes
