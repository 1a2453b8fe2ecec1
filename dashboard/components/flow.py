"""The explore page's "Information flow (ALTI)" section: ALTI's per-layer contributions traced back from the
explained position (explain.flow), computed on request on the model's scheduler (one forward pass), then traced at
the slider's threshold on every rerun."""

from __future__ import annotations

import streamlit as st

from dashboard import cached
from dashboard.components import charts, share
from dashboard.components.panels import lazy_panel
from dashboard.components.results import run_with_progress
from dashboard.components.text import markdown_escape
from dashboard.components.url_state import widget_key
from explain import Analysis, ExplainError, LoadedModel
from explain.flow import FlowGraph, FlowMatrices, flow_refusal, trace_flow
from explain.viz.flow import flow_caption, flow_figure

HEADING = "Information flow (ALTI)"


def computed(result: Analysis, loaded: LoadedModel) -> FlowMatrices | None:
    """The contributions for `result`, computed once for all sessions (progress and the place in the queue
    shown); None with the reason shown when they cannot be."""
    results = cached.flow_results()
    try:
        return results.get(results.key(result, loaded.spec)) or run_with_progress(  # type: ignore[return-value]
            lambda progress: results.matrices(result, loaded, progress), "Tracing the information flow")
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        return None


def render_flow_section(result: Analysis, loaded: LoadedModel | None) -> FlowGraph | None:
    """The section, in an expander keyed by the `flow` flag (its content runs only while open); returns the graph
    shown (for the HTML export), or None."""
    panel = lazy_panel(f"{HEADING}: through which tokens and layers the explained position gathers its information",
                       widget_key("flow"))
    if panel is None:
        return None
    with panel:
        return draw_flow(result, loaded)


def draw_flow(result: Analysis, loaded: LoadedModel | None) -> FlowGraph | None:
    """The threshold slider and the graph (the contributions computed on the model's scheduler first), or why not."""
    st.caption("ALTI's token-to-token contributions in every layer, drawn as a graph from the input words to the "
               "explained position: one forward pass.")
    if loaded is None:
        st.info("This saved analysis has no flow stored; change the text or any setting to analyse live.")
        return None
    refusal = flow_refusal(loaded, result)
    if refusal:
        st.info(markdown_escape(refusal))
        return None
    matrices = computed(result, loaded)
    if matrices is None:
        return None
    threshold = st.columns([2, 3])[0].slider("Smallest contribution drawn", min_value=0.0, max_value=1.0, step=0.01, format="%.2f",
                          key=widget_key("flow_threshold"),
                          help="An edge is drawn where a token takes more than this share of its vector from a "
                               "token of the layer below (ALTI's contributions, each row adding up to 1).")
    graph = trace_flow(matrices, threshold)
    charts.plotly_chart(cached.figure(result, ("flow", threshold), lambda: flow_figure(graph)), key="flow_graph",
                    config=share.chart_config("information-flow"), width="content")
    st.caption(flow_caption(graph))
    return graph
