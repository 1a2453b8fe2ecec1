"""Streamlit entry point: page setup and navigation."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path; the packages live one level up.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from dashboard.components import navigation, url_state  # noqa: E402

# The page's own style, as Markdown: Streamlit draws Markdown at once, while st.html waits for its element's code to
# load, and the rules below must be in place before the other elements' placeholders appear. Its element is hidden.
# - A segmented control's chosen option is drawn in the theme's primary slate on a tint of it: 3.6:1 on the dark
#   page, dimmer than the options not chosen. It takes the page's text colour instead; the tint and border mark it.
# - Streamlit draws a placeholder for each element until that element's code has loaded (on a warm page the widgets
#   and the chart wait for Plotly's chunk: seconds on a busy machine). The placeholder's shimmer never ends, and
#   while one is on screen Chromium composites the whole window every frame: measured 3 to 8 s of CPU per warm load
#   of this page (the one-chart page 0.3 s), CPU the page needs to finish. The placeholders stay, still.
PAGE_STYLE = """<style data-page-style>
[role="radiogroup"] button[data-selected="true"]:not([data-disabled]),
[role="radiogroup"] button[data-selected="true"]:is([data-hovered], [data-focus-visible]):not([data-disabled]) {
  color: inherit; font-weight: 600; }
[data-testid="stSkeleton"], [data-testid="stSkeletonElement"] { animation: none !important; }
[data-testid="stElementContainer"]:has(style[data-page-style]) { display: none; }
</style>"""

st.set_page_config(page_title="Attention & attribution explorer", page_icon="🔎", layout="wide")
st.markdown(PAGE_STYLE, unsafe_allow_html=True)
page = st.navigation(navigation.pages(), position="hidden")
url_state.start_navigation(navigation.page_name(page))
page.run()
