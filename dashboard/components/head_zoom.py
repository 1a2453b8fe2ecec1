"""The single-head map's controls for long and pale maps: "Tokens shown" (a span of the text with every token
labelled) and, when the map's largest weight is small, an offer to stretch its colours."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
import streamlit as st

from dashboard.components.text import markdown_escape
from dashboard.components.url_state import set_value, widget_key
from explain.viz.attention import every_label_fits, most_labelled_tokens, pale_map_note

SPAN_PICK = "head_span_pick"  # the range slider's own key; the page state holds the span as text ("20-59")


def parse_span(text: str) -> tuple[int, int] | None:
    """(first, last) from the state's "first-last" text (already checked by dashboard.state.check_span)."""
    first, sep, last = str(text or "").partition("-")
    return (int(first), int(last)) if sep and first.strip().isdigit() and last.strip().isdigit() else None


def span_text(span: tuple[int, int], whole: tuple[int, int]) -> str:
    """The state's text for `span`: empty when it is the whole map (no zoom)."""
    return "" if span == whole else f"{span[0]}-{span[1]}"


def _kept_span(positions: Sequence[int]) -> tuple[int, int] | None:
    """The page's span inside this map's tokens (the state corrected when a link or a shorter text asked for more);
    None for the whole map."""
    whole = (int(positions[0]), int(positions[-1]))
    asked = parse_span(st.session_state.get(widget_key("span")) or "")
    if asked is None:
        return None
    kept = (max(asked[0], whole[0]), min(asked[1], whole[1]))
    if kept[0] > kept[1]:
        st.info(markdown_escape(f"The text has no tokens {asked[0]}–{asked[1]} (its map runs from {whole[0]} to "
                                f"{whole[1]}); showing every token."))
        kept = whole
    set_value("span", span_text(kept, whole))
    return None if kept == whole else kept


def span_control(labels: Sequence[str], positions: Sequence[int]) -> tuple[int, int] | None:
    """The "Tokens shown" range slider, drawn when the map is too long to label every token (or a span is set);
    returns the span (first, last places in the text) or None for the whole map.

    labels: the map's tokens as shown; positions: their places in the text (the rows left when special tokens
    are hidden).
    """
    if not len(positions):
        return None
    whole = (int(positions[0]), int(positions[-1]))
    span = _kept_span(positions)
    if span is None and every_label_fits(len(positions)):
        return None
    value = span or whole
    if SPAN_PICK in st.session_state and st.session_state[SPAN_PICK] != value:  # a link, Back or a new text
        st.session_state[SPAN_PICK] = value
    names = {int(p): str(t) for p, t in zip(positions, labels)}
    most = most_labelled_tokens()
    st.select_slider(
        "Tokens shown", [int(p) for p in positions], value=value, key=SPAN_PICK,
        format_func=lambda p: f"{p}: {names[p]}",
        on_change=lambda: set_value("span", span_text(tuple(st.session_state[SPAN_PICK]), whole)),
        help=f"Zoom the map to a span of the text (places counted from 0, as in the hover). Spans of up to {most} "
             "tokens label every token. The weights are the whole map's (rows are not renormalised to the span).")
    shown = len([p for p in positions if value[0] <= p <= value[1]])
    if not every_label_fits(shown):
        st.caption(f"{shown} tokens shown, labelled every other one or sparser: narrow the span to {most} tokens or "
                   "fewer to read every label.")
    return span


def stretch_offer(figure: go.Figure, *, key: str) -> None:
    """A note and a button when the map looks almost white on the 0–1 scale (its largest weight is small)."""
    note = pale_map_note(figure)
    if note is None:
        return
    with st.container(horizontal=True, vertical_alignment="center"):  # the button as wide as its label
        st.caption(markdown_escape(note))
        st.button("Stretch each map", key=key, on_click=set_value, args=("stretch", True))
