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

# A segmented control's chosen option is drawn in the theme's primary slate on a tint of it: 3.6:1 on the dark page,
# dimmer than the options not chosen. It takes the page's text colour instead; the tint and border still mark it.
CHOSEN_OPTION_STYLE = """<style>
[role="radiogroup"] button[data-selected="true"]:not([data-disabled]),
[role="radiogroup"] button[data-selected="true"]:is([data-hovered], [data-focus-visible]):not([data-disabled]) {
  color: inherit; font-weight: 600; }
</style>"""

st.set_page_config(page_title="Attention & attribution explorer", page_icon="🔎", layout="wide")
st.html(CHOSEN_OPTION_STYLE)
page = st.navigation(navigation.pages(), position="hidden")
url_state.start_navigation(navigation.page_name(page))
page.run()
