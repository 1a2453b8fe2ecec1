"""Pin the explained label: keep explaining the same label for the next texts instead of whichever is on top."""

from __future__ import annotations

import streamlit as st

from dashboard.components.text import markdown_escape
from dashboard.components.url_state import leave_saved, set_value, widget_key
from explain import Analysis
from explain.targets import TARGETS

PIN_KEY = "pin_label"
TOKEN_HEADS = ("token_classification", "question_answering")  # their labels belong to one token of one text


def explained_label(result: Analysis) -> str:
    prediction = result.prediction
    index = int(prediction.explained_index)
    return str(prediction.labels[index]) if 0 <= index < len(prediction.labels) else ""


def pin_label(result: Analysis, kind: str) -> None:
    """A checkbox that writes the explained label into the target's label field (the link's `lb`), or clears it.

    Drawn where the target reads a label that means the same for any text (not for token-level heads).
    """
    label = explained_label(result)
    if not label or kind not in TARGETS or "label" not in TARGETS[kind].reads or result.model.head in TOKEN_HEADS:
        return
    st.session_state[PIN_KEY] = bool(str(st.session_state.get(widget_key("label")) or "").strip())

    def toggle() -> None:
        set_value("label", label if st.session_state[PIN_KEY] else "")
        leave_saved()

    st.checkbox(
        f"Keep explaining «{markdown_escape(label)}» for other texts", key=PIN_KEY, on_change=toggle,
        help="On: the label stays the explained one (and in the link) whatever the model predicts for the next "
             "text. Off: the attributions explain the top prediction of each text.")
