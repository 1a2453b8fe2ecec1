"""Nothing on the Explore page is cut off: every button shows its whole label, at a desktop's and a phone's width.

A real server and Debian's Chromium; a tiny random classifier (testkit/tiny_models.py) on a twelve-word text, whose
near-uniform attention makes the single-head map pale, so the page offers to stretch it (a button beside a note).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from testkit.server import wait_for_app, wait_for_rerun

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


# What a phone's width cuts or piles up in the main area's charts and tables, one line per defect:
# - text of a chart (title, axis titles, tick labels, colour-bar titles) drawn past the chart's own box, or past the
#   screen's right edge, where it is cut;
# - a chart's title under its toolbar;
# - tick labels of one axis that overlap (upright or on end: the boxes of labels at other angles overlap without
#   the letters touching);
# - tick labels of two side-by-side x axes of one chart within 3 px of each other (they read as one number);
# - a colour bar shorter than 60 px, or with fewer than two labels (its scale cannot be read);
# - any element past the screen's right edge that is not inside a box that scrolls sideways within the screen;
# - a table that scrolls sideways but whose first column (the row names) takes more than half of its width or does
#   not stay in place while the rest scrolls.
PHONE_DEFECTS = """() => {
  const out = [];
  const vw = document.documentElement.clientWidth;
  const within = (r, b) => r.left >= b.left - 1 && r.right <= b.right + 1 && r.top >= b.top - 1 && r.bottom <= b.bottom + 1;
  const hit = (a, b) => !(a.right <= b.left + 0.5 || b.right <= a.left + 0.5 || a.bottom <= b.top + 0.5
                          || b.bottom <= a.top + 0.5);
  const upright = (t) => { const m = (t.getAttribute('transform') || '').match(/rotate\\((-?[\\d.]+)/);
                           return !m || Math.abs(parseFloat(m[1])) % 90 < 0.5; };
  document.querySelectorAll('[data-testid=stMain] .js-plotly-plot').forEach((p, k) => {
    const svg = p.querySelector('.main-svg');
    const box = svg.getBoundingClientRect();
    const name = (p.querySelector('.gtitle') || {}).textContent || `chart ${k}`;
    p.querySelectorAll('text').forEach((t) => {
      const r = t.getBoundingClientRect();
      if (t.textContent.trim() && r.width && (!within(r, box) || r.right > vw + 1))
        out.push(`cut in ${name}: ${t.textContent}`);
    });
    const bar = p.querySelector('.modebar-group:last-child'), title = p.querySelector('.gtitle');
    if (bar && title && hit(bar.getBoundingClientRect(), title.getBoundingClientRect()))
      out.push(`toolbar over the title of ${name}`);
    p.querySelectorAll('.xaxislayer-above, .yaxislayer-above').forEach((layer) => {
      const ticks = [...layer.querySelectorAll('text')].filter((t) => t.textContent.trim() && upright(t))
        .map((t) => t.getBoundingClientRect());
      if (ticks.some((a, i) => ticks.slice(i + 1).some((b) => hit(a, b))))
        out.push(`tick labels overlap in ${name}`);
    });
    const near = (a, b) => hit({left: a.left - 3, right: a.right + 3, top: a.top, bottom: a.bottom}, b);
    const xLabels = [...p.querySelectorAll('.xaxislayer-above')].map((layer) => [...layer.querySelectorAll('text')]
      .filter((t) => t.textContent.trim() && upright(t)).map((t) => t.getBoundingClientRect()));
    if (xLabels.some((one, i) => xLabels.slice(i + 1).some((other) => one.some((a) => other.some((b) => near(a, b))))))
      out.push(`tick labels of two axes meet in ${name}`);
    p.querySelectorAll('.colorbar').forEach((c) => {
      const f = c.querySelector('.cbfills');
      const r = f ? f.getBoundingClientRect() : {width: 0, height: 0};
      if (Math.max(r.width, r.height) < 60) out.push(`colour bar of ${name} only ${Math.round(Math.max(r.width, r.height))} px`);
      if ([...c.querySelectorAll('.cbaxis text, .xtick text, .ytick text')].filter((t) => t.textContent.trim()).length < 2)
        out.push(`colour bar of ${name} has fewer than two labels`);
    });
  });
  const scrolls = (e) => { for (let a = e.parentElement; a; a = a.parentElement) {
    if (['auto', 'scroll'].includes(getComputedStyle(a).overflowX) && a.getBoundingClientRect().right <= vw + 1) return a; }
    return null; };
  const past = [...document.querySelectorAll('[data-testid=stMain] *')].filter((e) => {
    const r = e.getBoundingClientRect(); return r.width && r.right > vw + 1 && !scrolls(e); });
  past.filter((e) => !past.includes(e.parentElement)).forEach((e) => out.push(`past the right edge: ${e.tagName}
    ${e.getAttribute('data-testid') || ''} ${e.textContent.slice(0, 40)}`));
  document.querySelectorAll('[data-testid=stMain] table').forEach((t) => {
    const box = scrolls(t);
    const name = t.querySelector('tr:nth-child(2) th');
    if (!box || box.scrollWidth <= box.clientWidth + 1 || !name) return;
    if (name.getBoundingClientRect().width > box.clientWidth / 2) out.push(`row names take over half of a table`);
    box.scrollLeft = box.scrollWidth;
    if (name.getBoundingClientRect().left < box.getBoundingClientRect().left - 1)
      out.push(`row names scroll out of a table`);
    box.scrollLeft = 0;
  });
  return out;
}"""


def phone_page(browser):
    return browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True).new_page()


def phone_defects(browser, url: str, charts: int) -> list:
    """What PHONE_DEFECTS finds on `url` opened at a phone's width once `charts` charts are drawn."""
    page = phone_page(browser)
    page.goto(url)
    wait_for_app(page, timeout=2 * TIMEOUT, charts=charts)
    try:
        return page.evaluate(PHONE_DEFECTS)
    finally:
        page.context.close()


def test_compare_fits_a_390_px_phone(server, browser, tiny_dirs):
    """Compare at a phone's width: the attention-distance chart's title and x-axis title were cut at the right."""
    query = urlencode({'m': tiny_dirs['classification'], 'm2': tiny_dirs['encoder'], 't': TEXT})
    assert phone_defects(browser, f"{server}/compare?{query}", charts=5) == []


def test_heads_fits_a_390_px_phone(server, browser, tiny_dirs):
    """Heads at a phone's width: the neuron view's q·k/√d labels piled up and its colour bars were about 27 px; the
    pruning chart's title was cut; the keys' last dimension label met the products' first ("30" "0") and the q, k
    colour bar had one label."""
    query = urlencode({'m': tiny_dirs['classification'], 't': TEXT})
    assert phone_defects(browser, f"{server}/heads?{query}", charts=5) == []


def test_methods_fits_a_390_px_phone(server, browser, tiny_dirs):
    """Methods at a phone's width, every method computed: the rank-agreement chart's title was cut and its method
    names overlapped; the word-scores table's names took most of the screen and scrolled away with the words."""
    page = phone_page(browser)
    page.goto(f"{server}/methods?{urlencode({'m': tiny_dirs['classification'], 't': TEXT})}")
    wait_for_app(page, timeout=2 * TIMEOUT, charts=0)
    page.get_by_role("button", name="Compute all methods").click()
    page.locator(".st-key-agreement .js-plotly-plot .main-svg").first.wait_for(timeout=2 * TIMEOUT)
    wait_for_rerun(page, timeout=2 * TIMEOUT)
    assert page.evaluate(PHONE_DEFECTS) == []
    page.context.close()
