"""Expanders whose content runs only while they are open: what the first screen does not need.

A closed expander's content is still sent and drawn by the browser; a keyed one with on_change="rerun" tracks its
state, so the page can skip its content while it is closed. Keyed by a view flag's widget key, it is that flag:
a link that names the flag opens it, and opening it writes the flag into the link.
"""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator


def lazy_panel(label: str, key: str) -> DeltaGenerator | None:
    """The expander `label` keyed `key` when it is open (draw its content into it), else None."""
    panel = st.expander(label, key=key, on_change="rerun")
    return panel if panel.open else None
