"""Keep a page's widgets, the URL and the other pages in step through one ViewState.

Per session it remembers the values every page shares (`SHARED_FIELDS`: the text, the model, the target, the
method) and each page's own last values. A page reads its link when the address bar holds one it did not write
(a shared link, Back or Forward); otherwise, arriving from another page, it takes its own last values under the
shared ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, replace

import streamlit as st

from dashboard.components import navigation
from dashboard.components.text import markdown_escape
from dashboard.state import (
    DEFAULTS,
    PAGE_FIELDS,
    SHARED_FIELDS,
    ViewState,
    from_query,
    returning_state,
    state_from_saved,
    to_query,
)

PREFIX = "w_"
SETTING_PREFIX = PREFIX + "ms."  # a method setting's own widget (its value also lives in `method_settings`)
PAGE_KEY = "_page"  # the page this run draws (every page, Saved included)
ARRIVED_KEY = "_arrived"  # this run draws another page than the run before
WRITTEN_KEY = "_url_written"  # the query the last run wrote or read
SHARED_KEY = "_shared_values"
OWN_KEY = "_page_values"
NAV_SLOT = "_nav_slot"
NAV_DRAWN = "_nav_drawn"  # the links' queries this run drew


def widget_key(name: str) -> str:
    return PREFIX + name


def link_state(params: Mapping[str, str | list[str]]) -> tuple[ViewState, list[str]]:
    """The state a link asks for; `analysis=<id>` seeds the request from that saved analysis and its saved view."""
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
    return state, notices


def load_from_url(page: str, names: set[str]) -> None:
    """At the top of every run: seed the page's widgets from a new link, or from memory on arrival from another
    page; otherwise keep the values of widgets this run may not draw (Streamlit drops those)."""
    flag = f"_url_loaded_{page}"
    params = st.query_params.to_dict()
    arrived = st.session_state.get(ARRIVED_KEY, True)
    st.session_state[ARRIVED_KEY] = False
    st.session_state[PAGE_KEY] = page
    if params and (params != st.session_state.get(WRITTEN_KEY) or not st.session_state.get(flag)):
        state, notices = link_state(params)
        seed(state, names)
        st.session_state[f"_notices_{page}"] = notices
    elif arrived or not st.session_state.get(flag):
        seed(returning_state(st.session_state.get(OWN_KEY, {}).get(page, {}),
                             st.session_state.get(SHARED_KEY, {})), names)
    else:
        for name in names:
            key = widget_key(name)
            if key in st.session_state:
                st.session_state[key] = st.session_state[key]
    st.session_state[WRITTEN_KEY] = params
    st.session_state[flag] = True


def seed(state: ViewState, names: set[str]) -> None:
    for key in [k for k in st.session_state if str(k).startswith(SETTING_PREFIX)]:
        del st.session_state[key]  # re-read from `method_settings`
    for name in names:
        st.session_state[widget_key(name)] = getattr(state, name)


def leave_saved() -> None:
    """A request control changed: what is shown is no longer the saved analysis."""
    st.session_state[widget_key("analysis")] = ""


def show_notices(page: str) -> None:
    for notice in st.session_state.pop(f"_notices_{page}", []):
        st.warning(markdown_escape(notice))


def current(names: set[str]) -> ViewState:
    """The state the widgets hold now (defaults for fields the page has no widget for, or whose widget is empty)."""
    values = {}
    for f in fields(ViewState):
        if f.name in names and st.session_state.get(widget_key(f.name)) is not None:
            values[f.name] = st.session_state[widget_key(f.name)]
    return replace(DEFAULTS, **values)


def set_value(name: str, value) -> None:
    """Change a widget's value from a callback (before the widget is drawn)."""
    st.session_state[widget_key(name)] = value


def write_url(state: ViewState, names: set[str], *, links: bool = True) -> None:
    """Make the address bar reproduce `state` (only fields that differ from the defaults), remember it for the
    other pages, and point the sidebar's links at it. From a fragment rerun (`links` False), which cannot draw into
    the sidebar's placeholder, a change of a shared value (the text, the model, the target, the method) reruns the
    whole page so that the other pages' links carry it; the page's own link carries no query (`draw_navigation`)."""
    wanted = to_query(state, include=names)
    if wanted != st.query_params.to_dict():
        st.query_params.from_dict(wanted)
    st.session_state[WRITTEN_KEY] = wanted
    page = st.session_state.get(PAGE_KEY)
    shared = st.session_state.setdefault(SHARED_KEY, {})
    before = dict(shared)
    if page:
        values = {name: getattr(state, name) for name in names}
        st.session_state.setdefault(OWN_KEY, {})[page] = values
        shared.update({name: value for name, value in values.items() if name in SHARED_FIELDS})
    if links:
        draw_navigation()
    elif shared != before:  # the other pages' links carry it: only a full run redraws them
        st.rerun()


def page_query(page: str) -> dict[str, str]:
    """The link to `page`: its own last values under the shared ones (no query for a page without fields)."""
    if page not in PAGE_FIELDS:
        return {}
    state = returning_state(st.session_state.get(OWN_KEY, {}).get(page, {}), st.session_state.get(SHARED_KEY, {}))
    return to_query(state, include=set(PAGE_FIELDS[page]))


def start_navigation(page: str) -> None:
    """Note whether the user arrives at `page` from another one, and draw the sidebar's page links (before the
    page runs; `write_url` redraws them once it has settled)."""
    st.session_state[ARRIVED_KEY] = st.session_state.get(PAGE_KEY) != page
    st.session_state[PAGE_KEY] = page
    st.session_state[NAV_SLOT] = st.sidebar.empty()
    st.session_state[NAV_DRAWN] = None
    draw_navigation()


def draw_navigation() -> None:
    """The sidebar's page links. The page's own link carries no query: a fragment may have changed the page since
    the link was drawn, and a click on it without a query keeps what the page shows (`load_from_url`)."""
    slot = st.session_state.get(NAV_SLOT)
    if slot is not None:
        here = st.session_state.get(PAGE_KEY)
        queries = {p.name: {} if p.name == here else page_query(p.name) for p in navigation.PAGES}
        if st.session_state.get(NAV_DRAWN) == queries:
            return  # this run drew these links already: sending them again only makes the browser redraw them
        st.session_state[NAV_DRAWN] = queries
        navigation.draw_links(slot, queries.__getitem__)
