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

st.set_page_config(page_title="Attention & attribution explorer", page_icon="🔎", layout="wide")
page = st.navigation(navigation.pages(), position="hidden")
url_state.start_navigation(navigation.page_name(page))
page.run()
