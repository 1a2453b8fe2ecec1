"""Keep a page's widgets and the URL in step through one ViewState."""

from __future__ import annotations

from dataclasses import fields, replace

import streamlit as st

from dashboard.components.text import markdown_escape
from dashboard.state import DEFAULTS, ViewState, from_query, state_from_saved, to_query

PREFIX = "w_"


def widget_key(name: str) -> str:
    return PREFIX + name


def load_from_url(page: str, names: set[str]) -> None:
    """On a page's first run in a session, seed its widgets from the URL and queue notices.

    A link with `analysis=<id>` seeds the request from that saved analysis and its saved view.
    """
    flag = f"_url_loaded_{page}"
    if st.session_state.get(flag):
        return
    params = st.query_params.to_dict()
    state, notices = from_query(params)
    if state.analysis:
        from dashboard import cached
        from explain import ExplainError

        try:
            document, _ = cached.saved_document(state.analysis)
        except ExplainError as exc:
            notices.append(str(exc))
            state = replace(state, analysis="")
        else:
            state, more = state_from_saved([a.request for a in document.analyses], document.view, params)
            notices += more
    seed(state, names)
    st.session_state[f"_notices_{page}"] = notices
    st.session_state[flag] = True


def seed(state: ViewState, names: set[str]) -> None:
    for name in names:
        st.session_state[widget_key(name)] = getattr(state, name)


def leave_saved() -> None:
    """A request control changed: what is shown is no longer the saved analysis."""
    st.session_state[widget_key("analysis")] = ""


def show_notices(page: str) -> None:
    for notice in st.session_state.pop(f"_notices_{page}", []):
        st.warning(markdown_escape(notice), icon=":material/link:")


def current(names: set[str]) -> ViewState:
    """The state the widgets hold now (defaults for fields the page has no widget for)."""
    values = {}
    for f in fields(ViewState):
        if f.name in names and widget_key(f.name) in st.session_state:
            values[f.name] = st.session_state[widget_key(f.name)]
    return replace(DEFAULTS, **values)


def set_value(name: str, value) -> None:
    """Change a widget's value from a callback (before the widget is drawn)."""
    st.session_state[widget_key(name)] = value


def write_url(state: ViewState, names: set[str]) -> None:
    """Make the address bar reproduce `state` (only fields that differ from the defaults)."""
    wanted = to_query(state, include=names)
    if wanted != st.query_params.to_dict():
        st.query_params.from_dict(wanted)
