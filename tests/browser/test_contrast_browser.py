"""Chosen options read as well as the others: a segmented control's selected option in light and dark.

In the dark theme the selected option was drawn in the theme's primary slate on a slate tint (about 2.4:1), dimmer
than the options not chosen. A real server and Debian's Chromium, on the Heads page of a tiny random encoder
(its pruning controls are two segmented controls).
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from testkit.server import wait_for_app

pytestmark = pytest.mark.browser

# WCAG contrast of an element's text against what is drawn behind it: its own background and every one above it,
# translucent ones composited over the first opaque one (a selected option sits on a tint of the primary colour).
CONTRAST = """(e) => {
  const rgba = (s) => { const v = (s.match(/[\\d.]+/g) || []).map(Number); return v.length === 3 ? [...v, 1] : v; };
  const layers = [];
  for (let el = e; el; el = el.parentElement) {
    const c = rgba(getComputedStyle(el).backgroundColor);
    if (c.length === 4 && c[3] > 0) { layers.push(c); if (c[3] === 1) break; }
  }
  let back = [255, 255, 255];
  for (const [r, g, b, a] of layers.reverse()) back = [r, g, b].map((v, i) => a * v + (1 - a) * back[i]);
  const [r, g, b, a] = rgba(getComputedStyle(e).color);
  const text = [r, g, b].map((v, i) => a * v + (1 - a) * back[i]);
  const lum = (c) => { const l = c.map((v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
      return 0.2126 * l[0] + 0.7152 * l[1] + 0.0722 * l[2]; };
  const x = lum(text), y = lum(back);
  return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_selected_option_of_a_segmented_control_reads_at_least_4_5_to_1(server, browser, tiny_dirs, scheme):
    query = urlencode({"m": tiny_dirs["encoder"], "t": "the film was good"})
    page = browser.new_context(viewport={"width": 1440, "height": 1000}, color_scheme=scheme).new_page()
    page.goto(f"{server}/heads?{query}")
    wait_for_app(page, timeout=120_000, charts=5)
    chosen = page.locator("[role=radiogroup] button[aria-checked=true]")
    assert chosen.count() >= 1
    for button in [*chosen.all(), *page.locator("[role=radiogroup] button[aria-checked=false]").all()]:
        ratio = button.evaluate(CONTRAST)
        assert ratio >= 4.5, (scheme, button.inner_text(), ratio)
    page.context.close()
