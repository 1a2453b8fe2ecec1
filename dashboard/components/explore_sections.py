"""The explore page's views below the highlights, as fragments, so that a click redraws only what it changed.

The first screen holds one head's map (the prediction and highlights above it are drawn by the page). The aggregate
views and the all-heads grid are drawn only when opened, the depth split and the information flow likewise. The
attention views share one fragment: a change of head, of scale or of an open view reruns that fragment alone, and the
browser redraws the charts whose figures changed (the head's map, and the grid or head statistics that outline the
head, when open); the prediction and the highlights are not sent again. A fragment rerun brings the link and the
export's view up to date itself (`finish`), since the rest of the page does not run.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.components import ablation, results, scroll
from dashboard.components.depth import render_depth_section
from dashboard.components.flow import render_flow_section
from dashboard.components.panels import lazy_panel
from dashboard.components.url_state import current, leave_saved, widget_key, write_url
from dashboard.state import EXPLORE_FIELDS, ViewState
from explain import Analysis, LoadedModel
from explain.flow import FlowGraph
from explain.heads import HeadSet

# Up to this many tokens the single-head map (square, 12 px a token) fits beside the aggregate views; longer texts
# get the full width for each, one below the other.
SIDE_BY_SIDE_TOKENS = 24
HEAD_ANCHOR = "head_view"  # the head view's container (CSS class st-key-head_view), the scroll's target
# Runs once, where it is inserted: brings the head's view (its controls and map) to the top of the window, below
# Streamlit's fixed header. A constant: nothing from the user goes into it.
HEAD_VIEW = f".st-key-{HEAD_ANCHOR}"  # the head's pickers and map, which a thumbnail click scrolls to


@dataclass
class Shown:
    """What the page shows now, kept current by its fragments: the export buttons (drawn once per full run) read it
    when clicked."""

    state: ViewState
    result: Analysis
    flow: FlowGraph | None = None


def fragment_rerun() -> bool:
    """This run reruns fragments only (the rest of the page stays as it is)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def start(*fields: str) -> None:
    """On a fragment rerun, keep the values of the fragment's widgets `fields` that it may not draw this time
    (Streamlit drops those; a full run does this in `load_from_url`)."""
    if fragment_rerun():
        for field in fields:
            key = widget_key(field)
            if key in st.session_state:
                st.session_state[key] = st.session_state[key]


def finish(shown: Shown) -> None:
    """On a fragment rerun: the link and the export's view follow what the fragment changed (the sidebar's page
    links follow on the next full run)."""
    if fragment_rerun():
        shown.state = current(EXPLORE_FIELDS)
        write_url(shown.state, EXPLORE_FIELDS, links=False)


def head_chosen_in_grid() -> None:
    """A thumbnail was clicked (it set the layer and the head): bring the head's map into sight on this rerun."""
    scroll.scroll_on_next_run(HEAD_VIEW)


def remove_head(layer: int, head: int, n_layers: int, n_heads: int) -> None:
    """Add (layer, head) to the heads removed: the analysis changes, so the whole page reruns."""
    heads, _ = ablation.parse_kept(str(st.session_state.get(widget_key("ablate"), "") or ""), n_layers, n_heads)
    st.session_state[widget_key("ablate")] = HeadSet((*heads.heads, (layer, head)), n_layers, n_heads).format()
    leave_saved()
    st.rerun()


@st.fragment
def attention_views(result: Analysis, shown: Shown, *, live: bool) -> None:
    """"Stretch each map", the layer and head pickers with that head's map, and the aggregate views and the
    all-heads grid when opened; `live`: heads can be removed (not a saved analysis)."""
    start("aggregate", "stat", "token")
    stretch = st.checkbox(
        "Stretch each map", key=widget_key("stretch"),
        help="Off: every attention map (one head, rollout, one token, all heads) uses the same 0–1 colour scale, "
             "so a weak, near-uniform head looks pale beside a peaked one. On: each map stretches its colours to "
             "its own maximum, which shows the structure of weak maps but makes them look as strong as any.",
    )
    if len(result.tokens) <= SIDE_BY_SIDE_TOKENS:
        head_col, agg_col = st.columns([1, 1], gap="large")
    else:
        head_col, agg_col = st.container(), st.container()
    with head_col:
        layer, head = head_view(result, stretch, live=live)
    with agg_col:
        aggregates(result, layer, head, stretch)
    grid(result, layer, head, stretch)
    scroll.scroll_if_asked(HEAD_VIEW)
    finish(shown)


def head_view(result: Analysis, stretch: bool, *, live: bool) -> tuple[int, int]:
    """The pickers and the map of the chosen head (with a button removing it); returns (layer, head)."""
    n_layers, n_heads = result.model.n_layers, result.model.n_heads
    with st.container(key=HEAD_ANCHOR):
        c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
        layer = c1.selectbox("Layer", list(range(n_layers)), key=widget_key("layer"))
        head = c2.selectbox("Head", list(range(n_heads)), key=widget_key("head"))
        hide = c3.toggle("Hide [CLS]/[SEP]", key=widget_key("hide_special"),
                         help="Drop the special tokens and renormalise each row to sum to 1.")
        results.render_head(result, layer, head, hide, key="head_map", stretch=stretch, zoom=True)
        if live:
            removed, _ = ablation.parse_kept(result.request.ablate, n_layers, n_heads)
            st.button(f"Remove head {layer}:{head}", key="ablate_add_outlined", disabled=(layer, head) in removed,
                      on_click=remove_head, args=(layer, head, n_layers, n_heads), icon=":material/content_cut:",
                      help="Analyse again without this head's output (the heads removed are listed under Knock out "
                           "heads in the sidebar).")
    return layer, head


def aggregates(result: Analysis, layer: int, head: int, stretch: bool) -> None:
    """Rollout, head statistics or one token's attention by layer, when opened."""
    panel = lazy_panel("Aggregate views: rollout, a statistic of every head, one token by layer",
                       widget_key("show_aggregates"))
    if panel is not None:
        with panel:
            results.render_aggregates(result, key="agg", layer=layer, head=head, stretch=stretch)


def grid(result: Analysis, layer: int, head: int, stretch: bool) -> None:
    """Every layer's and head's map as thumbnails, when opened; a click opens that head above."""
    panel = lazy_panel(f"All heads: the maps of all {result.model.n_layers} x {result.model.n_heads} heads; click "
                       "one to open it above", widget_key("show_grid"))
    if panel is not None:
        with panel:
            results.render_grid(result, key="grid", layer=layer, head=head, stretch=stretch,
                                on_pick=head_chosen_in_grid)


@st.fragment
def depth_section(result: Analysis, loaded: LoadedModel | None, shown: Shown) -> None:
    shown.result = render_depth_section(result, loaded)
    finish(shown)


@st.fragment
def flow_section(result: Analysis, loaded: LoadedModel | None, shown: Shown) -> None:
    start("flow_threshold")
    shown.flow = render_flow_section(result, loaded)
    finish(shown)
