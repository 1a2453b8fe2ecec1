"""The explore page's "Where the score comes from" section: the score split over the embedding parts, and over
the layers (explain.depth), computed on request because it costs about (layers + 1) x the main attribution."""

from __future__ import annotations

import streamlit as st

from dashboard import cached
from dashboard.components import charts, share
from dashboard.components.panels import lazy_panel
from dashboard.components.results import chart_name, run_with_progress
from dashboard.components.text import markdown_escape
from dashboard.components.url_state import widget_key
from explain import Analysis, ExplainError, LoadedModel
from explain.exports import depth_csv
from explain.viz.depth import embedding_parts_figure, layer_caption, layer_figure, parts_caption

HEADING = "Where the score comes from"


def has_depth(result: Analysis) -> bool:
    return result.embedding_parts is not None and result.layer_attribution is not None


def computed(result: Analysis, loaded: LoadedModel) -> Analysis | None:
    """`result` with its depth attributions, computed once for all sessions on the model's scheduler (progress
    and the place in the queue shown)."""
    results = cached.depth_results()
    try:
        return results.get(results.key(result, loaded.spec)) or run_with_progress(  # type: ignore[return-value]
            lambda progress: results.with_depth(result, loaded, progress),
            "Splitting the score over the embeddings and the layers")
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        return None


def render_depth_section(result: Analysis, loaded: LoadedModel | None) -> Analysis:
    """The section, in an expander keyed by the `depth` flag (its content runs only while open); returns the
    analysis shown, with its depth attributions when there are any, so that saving and exporting include them."""
    panel = lazy_panel(f"{HEADING}: the score split over the embeddings and the layers (slower)", widget_key("depth"))
    if panel is None:
        return result
    with panel:
        return draw_depth(result, loaded)


def draw_depth(result: Analysis, loaded: LoadedModel | None) -> Analysis:
    """The two depth charts (computed on the model's scheduler first when needed) and their CSV."""
    st.caption("Integrated gradients once over the token, position and segment embeddings, and once at every "
               "encoder layer's output: about as many passes as the attribution above, times the number of layers "
               "plus one.")
    shown = result if has_depth(result) else None
    if shown is None:
        if loaded is None:
            st.info("This saved analysis was saved without them; change the text or any setting to analyse live.")
            return result
        shown = computed(result, loaded)
        if shown is None:
            return result
    tokens = list(shown.tokens.tokens)
    parts, layers = shown.embedding_parts, shown.layer_attribution
    assert parts is not None and layers is not None
    charts.plotly_chart(cached.figure(shown, ("depth_parts",), lambda: embedding_parts_figure(tokens, parts)),
                    key="depth_parts", config=share.chart_config(chart_name(result, "embedding parts")), width="content")
    st.caption(parts_caption(parts))
    charts.plotly_chart(cached.figure(shown, ("depth_layers",), lambda: layer_figure(tokens, layers)),
                    key="depth_layers", config=share.chart_config(chart_name(result, "attribution by layer")), width="content")
    st.caption(layer_caption(layers))
    st.download_button("Download these as CSV", data=lambda: depth_csv(shown), file_name="depth.csv", mime="text/csv",
                       key="depth_csv", icon=":material/table:",
                       help="One row per token: its score for each embedding part and at each layer.")
    return shown
