"""Streamlit entry point: page setup and navigation."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

# `streamlit run dashboard/app.py` puts dashboard/ on sys.path; the packages live one level up.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

VIEWS = Path(__file__).resolve().parent / "views"

st.set_page_config(page_title="Attention & attribution explorer", page_icon="🔎", layout="wide")
pages = [
    st.Page(VIEWS / "explore.py", title="Explore", icon=":material/search:", url_path="explore", default=True),
    st.Page(VIEWS / "compare.py", title="Compare", icon=":material/compare_arrows:", url_path="compare"),
    st.Page(VIEWS / "methods.py", title="Methods", icon=":material/view_list:", url_path="methods"),
    st.Page(VIEWS / "corpus.py", title="Corpus", icon=":material/dataset:", url_path="corpus"),
    st.Page(VIEWS / "heads.py", title="Heads", icon=":material/grid_view:", url_path="heads"),
    st.Page(VIEWS / "saved.py", title="Saved", icon=":material/bookmarks:", url_path="saved"),
]
st.navigation(pages).run()
