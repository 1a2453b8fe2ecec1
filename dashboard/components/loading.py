"""Loading the model a page names, with progress and a one-sentence error."""

from __future__ import annotations

import streamlit as st

from dashboard import cached
from dashboard.components.text import markdown_escape
from explain import ExplainError, LoadedModel


def load_model_or_error(spec: str) -> LoadedModel | None:
    """The model for `spec`, or None with the reason shown (nothing picked, or why it cannot be loaded)."""
    if not spec:
        st.info("Pick a model in the sidebar.")
        return None
    try:
        with st.spinner(markdown_escape(f"Loading {spec}…")):
            return cached.get_model(spec)
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        return None
