"""The highlights' scores as a table: the same numbers as the hover tooltips, for keyboards and screen readers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import streamlit as st

from dashboard.components.panels import lazy_panel
from explain.viz.highlights import score_rows


def score_table(pieces: Sequence[str], scores: np.ndarray, explained: str = "", *, level: str = "word",
                key: str = "score_table") -> None:
    """A collapsed expander holding one row per highlighted piece: its position, text, score and effect.

    The table is sent only while the expander is open (opening it reruns the page): a closed expander's
    content is still drawn by the browser, and a dataframe loads its own grid chunk, which a page's first
    screen does not need.
    """
    what = "Word" if level == "word" else "Token"
    panel = lazy_panel(f"{what} scores as a table", key)
    if panel is not None:
        panel.dataframe(score_rows(list(pieces), scores, explained), hide_index=True, width="stretch",
                        column_config={"score": st.column_config.NumberColumn("score", format="%.4g"),
                                       "token": st.column_config.TextColumn(what.lower())})
