"""Keep a page's widgets and the URL in step through one ViewState."""

from __future__ import annotations

from dataclasses import fields, replace

import streamlit as st

from dashboard.state import DEFAULTS, ViewState, from_query, to_query

PREFIX = "w_"


def widget_key(name: str) -> str:
    return PREFIX + name


def load_from_url(page: str, names: set[str]) -> None:
    """On a page's first run in a session, seed its widgets from the URL and queue notices."""
    flag = f"_url_loaded_{page}"
    if st.session_state.get(flag):
        return
    state, notices = from_query(st.query_params.to_dict())
    for name in names:
        st.session_state[widget_key(name)] = getattr(state, name)
    st.session_state[f"_notices_{page}"] = notices
    st.session_state[flag] = True


def show_notices(page: str) -> None:
    for notice in st.session_state.pop(f"_notices_{page}", []):
        st.warning(notice, icon="🔗")


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
