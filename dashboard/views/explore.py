"""Explore one model: prediction, token highlights, attention of every layer and head."""

from __future__ import annotations

import streamlit as st

from dashboard import cached
from dashboard.components import controls, results, share, tasks
from dashboard.components.loading import load_model_or_error
from dashboard.components.text import markdown_escape
from dashboard.components.url_state import (
    current,
    load_from_url,
    show_notices,
    widget_key,
    write_url,
)
from dashboard.state import EXPLORE_FIELDS, LEVELS, ViewState, to_query
from explain import Analysis, ExplainError, LoadedModel
from explain.document import Document
from explain.exports import word_scores_csv
from explain.report import standalone_html

PAGE = "explore"
FIELDS = EXPLORE_FIELDS
VIEW_FIELDS = {"level", "layer", "head", "hide_special", "token", "stat", "aggregate", "stretch"}
# Up to this many tokens the single-head map (square, 12 px a token) fits beside the aggregate view; longer
# texts get the full width for each, one below the other.
SIDE_BY_SIDE_TOKENS = 24


def compute(state: ViewState, loaded: LoadedModel) -> Analysis | None:
    request = state.request()
    cache = cached.analysis_cache()
    try:
        return cache.get(cache.key(request, loaded.spec)) or results.run_with_progress(
            lambda progress: cache.compute(request, loaded, progress), f"Analysing with {loaded.spec}"
        )
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        tasks.render_bad_token(state)
        return None


def main() -> None:
    cached.startup()
    load_from_url(PAGE, FIELDS)
    tasks.keep_task_values()
    st.title("Explore how a model reads a sentence")
    show_notices(PAGE)
    saved_list, created = share.open_saved(current(FIELDS).analysis, PAGE)
    saved = saved_list[0] if saved_list else None

    with st.sidebar:
        st.header("Model")
        spec = controls.model_picker("model", "Model")
    loaded = None if saved else load_model_or_error(spec)
    info = saved.model if saved else (loaded.info if loaded else None)
    with st.sidebar:
        kind = controls.target_controls(info)
        st.header("Attribution")
        controls.attribution_controls()

    tasks.text_inputs(kind, info)
    state = current(FIELDS)
    write_url(state, FIELDS)
    if saved:
        st.info(f"Showing the saved analysis **{markdown_escape(state.analysis)}** (saved "
                f"{markdown_escape(created[:16].replace('T', ' '))} UTC, model {markdown_escape(saved.model.spec)}). Nothing is recomputed; change the text or any setting to analyse live.",
                icon=":material/bookmark:")
        result = saved
    elif loaded is None:
        return
    elif not state.text.strip():
        st.info("Type or paste a sentence above to see how the model reads it.")
        return
    elif tasks.missing_input(state, kind):
        st.info(markdown_escape(tasks.missing_input(state, kind)))
        return
    else:
        result = compute(tasks.request_state(state, kind, info), loaded)
        if result is None:
            return

    left, right = st.columns([2, 3], gap="large")
    with left:
        st.subheader("Prediction")
        tasks.render_prediction(result, key="prediction")
        tasks.token_picker(result)
    with right:
        st.subheader("Which tokens raised or lowered the score")
        st.segmented_control("Level", LEVELS, key=widget_key("level"), required=True,
                             format_func=lambda v: {"word": "whole words", "subword": "subword tokens"}[v])
        tasks.render_highlights(result, state.level, loaded, state)

    st.subheader("Attention")
    results.clamp_view("layer", result.model.n_layers, "layer")
    results.clamp_view("head", result.model.n_heads, "head")
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
        c1, c2, c3 = st.columns([1, 1, 2], vertical_alignment="bottom")
        layer = c1.selectbox("Layer", list(range(result.model.n_layers)), key=widget_key("layer"))
        head = c2.selectbox("Head", list(range(result.model.n_heads)), key=widget_key("head"))
        hide = c3.toggle("Hide [CLS]/[SEP]", key=widget_key("hide_special"),
                         help="Drop the special tokens and renormalise each row to sum to 1.")
        results.render_head(result, layer, head, hide, key="head_map", stretch=stretch)
    with agg_col:
        results.render_aggregates(result, key="agg", layer=layer, head=head, stretch=stretch)
    st.subheader("All heads")
    results.render_grid(result, key="grid", layer=layer, head=head, stretch=stretch)

    st.subheader("Share and export")
    shown = current(FIELDS)
    view = to_query(shown, include=VIEW_FIELDS)
    share.share_controls(
        lambda: Document(kind="explore", analyses=[result], view=view),
        lambda: standalone_html(result, view=share.report_view(shown)),
        page_path=PAGE,
        file_stem=share.slug(result.request.text),
        key="share",
        make_csv=lambda: word_scores_csv(result, level=shown.level),
    )
    write_url(current(FIELDS), FIELDS)


main()
