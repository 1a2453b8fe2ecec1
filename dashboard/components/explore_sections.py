"""The explore page's attention views, each a fragment, so that a click redraws only what it changed.

The first screen holds one head's map (and the prediction and highlights above it, drawn by the page). The
aggregate views, the all-heads grid, the depth split and the information flow are drawn only when opened: each
section's opener lives in its own fragment, so opening one reruns that section alone. A change of head reruns the
head's view and, when open, the views that outline the head (the grid, the head-statistics map); nothing else is
sent again. A fragment rerun brings the link and the export's view up to date itself (`finish`), since the rest
of the page does not run.
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dashboard.components import ablation, results
from dashboard.components.depth import render_depth_section
from dashboard.components.flow import render_flow_section
from dashboard.components.url_state import current, leave_saved, widget_key, write_url
from dashboard.state import EXPLORE_FIELDS, ViewState
from explain import Analysis, LoadedModel
from explain.flow import FlowGraph
from explain.heads import HeadSet

HEAD, AGGREGATES, GRID, DEPTH, FLOW = "explore_head", "explore_aggregates", "explore_grid", "explore_depth", "explore_flow"
RUNS_KEY = "_explore_fragment_runs"  # how often each view ran this session: {fragment key: runs}
SCROLL_KEY = "_explore_scroll_to_head"  # set by a thumbnail click: the head's view scrolls into sight once
HEAD_ANCHOR = "head_view"  # the head view's container (CSS class st-key-head_view), the scroll's target
# Runs once, where it is inserted: brings the head's view (its controls and map) to the top of the window, below
# Streamlit's fixed header. A constant: nothing from the user goes into it.
SCROLL_SCRIPT = (
    '<script data-run="{run}">'
    f"const view = document.querySelector('.st-key-{HEAD_ANCHOR}');"
    "if (view) { view.style.scrollMarginTop = '4rem'; view.scrollIntoView({block: 'start'}); }"
    "</script>"
)


@dataclass
class Shown:
    """What the page shows now, kept current by its fragments: the export buttons (drawn once per full run) read it
    when clicked."""

    state: ViewState
    result: Analysis
    flow: FlowGraph | None = None


def runs() -> dict[str, int]:
    return dict(st.session_state.get(RUNS_KEY, {}))


def fragment_rerun() -> bool:
    """This run reruns fragments only (the rest of the page stays as it is)."""
    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def start(name: str, *fields: str) -> None:
    """Count the view's run; on a fragment rerun, keep the values of its widgets `fields` that it may not draw this
    time (Streamlit drops those; a full run does this in `load_from_url`)."""
    counts = st.session_state.setdefault(RUNS_KEY, {})
    counts[name] = counts.get(name, 0) + 1
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


def opened(name: str) -> bool:
    return bool(st.session_state.get(widget_key(name)))


def views_of_head() -> list[str]:
    """The views that show the chosen head: its map, and when open the grid and the head-statistics map."""
    stats = opened("show_aggregates") and st.session_state.get(widget_key("aggregate")) == "stats"
    return [HEAD] + ([GRID] if opened("show_grid") else []) + ([AGGREGATES] if stats else [])


def views_of_scale() -> list[str]:
    """The views that "Stretch each map" changes: the head's map, and the open rollout, one-token and grid views."""
    scaled = opened("show_aggregates") and st.session_state.get(widget_key("aggregate")) != "stats"
    return [HEAD] + ([AGGREGATES] if scaled else []) + ([GRID] if opened("show_grid") else [])


def rerun_views(views: list[str]) -> None:
    """From a widget callback: rerun only these views."""
    st.rerun(views)


def head_chosen_in_grid() -> None:
    """A thumbnail was clicked: rerun the views of the head, and bring the head's map into sight."""
    st.session_state[SCROLL_KEY] = True
    rerun_views(views_of_head())


def current_view() -> tuple[int, int, bool]:
    return (int(st.session_state.get(widget_key("layer"), 0)), int(st.session_state.get(widget_key("head"), 0)),
            bool(st.session_state.get(widget_key("stretch"))))


def remove_head(layer: int, head: int, n_layers: int, n_heads: int) -> None:
    """Add (layer, head) to the heads removed: the analysis changes, so the whole page reruns."""
    heads, _ = ablation.parse_kept(str(st.session_state.get(widget_key("ablate"), "") or ""), n_layers, n_heads)
    st.session_state[widget_key("ablate")] = HeadSet((*heads.heads, (layer, head)), n_layers, n_heads).format()
    leave_saved()
    st.rerun()


@st.fragment(key=HEAD)
def head_view(result: Analysis, shown: Shown, *, live: bool) -> None:
    """The layer and head pickers and that head's map; `live`: heads can be removed (not a saved analysis)."""
    start(HEAD)
    n_layers, n_heads = result.model.n_layers, result.model.n_heads
    with st.container(key=HEAD_ANCHOR):
        c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
        layer = c1.selectbox("Layer", list(range(n_layers)), key=widget_key("layer"),
                             on_change=lambda: rerun_views(views_of_head()))
        head = c2.selectbox("Head", list(range(n_heads)), key=widget_key("head"),
                            on_change=lambda: rerun_views(views_of_head()))
        hide = c3.toggle("Hide [CLS]/[SEP]", key=widget_key("hide_special"),
                         help="Drop the special tokens and renormalise each row to sum to 1.")
        results.render_head(result, layer, head, hide, key="head_map", stretch=current_view()[2])
        if live:
            removed, _ = ablation.parse_kept(result.request.ablate, n_layers, n_heads)
            st.button(f"Remove head {layer}:{head}", key="ablate_add_outlined", disabled=(layer, head) in removed,
                      on_click=remove_head, args=(layer, head, n_layers, n_heads), icon=":material/content_cut:",
                      help="Analyse again without this head's output (the heads removed are listed in the sidebar).")
    if st.session_state.pop(SCROLL_KEY, False):
        st.html(SCROLL_SCRIPT.replace("{run}", str(runs()[HEAD])), unsafe_allow_javascript=True)
    finish(shown)


@st.fragment(key=AGGREGATES)
def aggregates_section(result: Analysis, shown: Shown) -> None:
    """Rollout, head statistics or one token's attention by layer, when opened."""
    start(AGGREGATES, "aggregate", "stat", "token")
    if st.toggle("Aggregate views", key=widget_key("show_aggregates"),
                 help="Attention rollout, a statistic of every head, or one token's attention in every layer."):
        layer, head, stretch = current_view()
        results.render_aggregates(result, key="agg", layer=layer, head=head, stretch=stretch)
    else:
        st.caption("Off: turn it on for attention rollout, a statistic of every head, or one token's attention "
                   "in every layer.")
    finish(shown)


@st.fragment(key=GRID)
def grid_section(result: Analysis, shown: Shown) -> None:
    """Every layer's and head's map as thumbnails, when opened; a click opens that head above."""
    start(GRID)
    st.subheader("All heads")
    if st.toggle("Show every head", key=widget_key("show_grid"),
                 help="One thumbnail per layer and head; click one to open it in the single-head map."):
        layer, head, stretch = current_view()
        results.render_grid(result, key="grid", layer=layer, head=head, stretch=stretch, on_pick=head_chosen_in_grid)
    else:
        st.caption(f"Off: turn it on to see the maps of all {result.model.n_layers} x {result.model.n_heads} heads "
                   "at once and open one with a click.")
    finish(shown)


@st.fragment(key=DEPTH)
def depth_section(result: Analysis, loaded: LoadedModel | None, shown: Shown) -> None:
    start(DEPTH)
    shown.result = render_depth_section(result, loaded)
    finish(shown)


@st.fragment(key=FLOW)
def flow_section(result: Analysis, loaded: LoadedModel | None, shown: Shown) -> None:
    start(FLOW, "flow_threshold")
    shown.flow = render_flow_section(result, loaded)
    finish(shown)
