"""A stand-in Explore page whose fragment edits a shared value (the text), as an Explore section drawn in a fragment
may: the real navigation and URL state (dashboard.components.url_state), without a model.

tests/browser/test_fragment_links_browser.py runs it with `streamlit run`.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard.components import navigation, url_state  # noqa: E402
from dashboard.components.explore_sections import fragment_rerun  # noqa: E402
from dashboard.state import EXPLORE_FIELDS  # noqa: E402

PAGE = "explore"


@st.fragment
def text_section() -> None:
    st.text_input("Text", key=url_state.widget_key("text"))
    if fragment_rerun():
        url_state.write_url(url_state.current(EXPLORE_FIELDS), EXPLORE_FIELDS, links=False)


page = st.navigation(navigation.pages(), position="hidden")
url_state.start_navigation(PAGE)
url_state.load_from_url(PAGE, EXPLORE_FIELDS)
text_section()
url_state.write_url(url_state.current(EXPLORE_FIELDS), EXPLORE_FIELDS)
