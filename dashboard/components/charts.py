"""Every Plotly chart the dashboard draws, with its text alternative for screen readers.

The sentence (explain.viz.describe: what the chart shows, its range, its largest values) sits just before the chart,
visually hidden, in a container without a gap, so the page looks as before and a screen reader reads the numbers
where the chart is.
"""

from __future__ import annotations

import html
from typing import Any

import plotly.graph_objects as go
import streamlit as st

from explain.viz.describe import describe_figure

DESCRIPTION_CLASS = "chart-description"
# Read by screen readers, drawn nowhere (the usual "visually hidden" rules).
HIDDEN = ("position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);"
          "white-space:nowrap;border:0")


def description_html(figure: go.Figure) -> str:
    return f'<p class="{DESCRIPTION_CLASS}" style="{HIDDEN}">{html.escape(describe_figure(figure))}</p>'


def plotly_chart(figure: go.Figure, **kwargs: Any) -> Any:
    """st.plotly_chart(figure, **kwargs) preceded by the figure's description; returns what st.plotly_chart
    returns (a selection where `on_select` is given)."""
    with st.container(gap=None):
        st.html(description_html(figure))
        return st.plotly_chart(figure, **kwargs)
