"""Explore one model: prediction, token highlights, attention of every layer and head.

The first screen is the prediction, the highlights and one head's map; the other attention views, the depth split
and the information flow are drawn when opened (dashboard.components.explore_sections).
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from dashboard import cached
from dashboard.components import ablation, controls, pin, results, share, tasks
from dashboard.components import explore_sections as sections
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
from explain import Analysis, AnalysisRequest, ExplainError, LoadedModel
from explain.document import Document
from explain.exports import word_scores_csv
from explain.viz.report import standalone_html

PAGE = "explore"
FIELDS = EXPLORE_FIELDS
VIEW_FIELDS = {"level", "layer", "head", "hide_special", "token", "stat", "aggregate", "stretch", "show_aggregates",
               "show_grid", "span", "depth"}  # depth: a saved analysis holding the depth split opens with it shown


def compute(request: AnalysisRequest, loaded: LoadedModel, label: str = "", state: ViewState | None = None
            ) -> Analysis | None:
    cache = cached.analysis_cache()
    try:
        return cache.get(cache.key(request, loaded.spec)) or results.run_with_progress(
            lambda progress: cache.compute(request, loaded, progress), label or f"Analysing with {loaded.spec}"
        )
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        if state is not None:
            tasks.render_bad_token(state)
        return None


def compute_both(state: ViewState, loaded: LoadedModel) -> tuple[Analysis | None, Analysis | None]:
    """(shown, full): the analysis of the model without the chosen heads (explaining the full model's label)
    and the full model's; with no heads removed both are the full model's."""
    full = compute(replace(state, ablate="").request(), loaded, state=state)
    if full is None or not state.ablate:
        return full, full
    request = ablation.same_label(state.request(), full)
    return compute(request, loaded, f"Analysing {loaded.spec} without heads {ablation.heads_text(state.ablate)}",
                   state=state), full


def main() -> None:
    cached.startup()
    load_from_url(PAGE, FIELDS)
    tasks.keep_task_values()
    st.title("Explore how a model reads a sentence", anchor=False)
    show_notices(PAGE)
    saved_list, created = share.open_saved(current(FIELDS).analysis, PAGE)
    saved = saved_list[0] if saved_list else None

    with st.sidebar:
        st.header("Model", anchor=False)
        spec = controls.model_picker("model", "Model")
    loaded = None if saved else load_model_or_error(spec)
    info = saved.model if saved else (loaded.info if loaded else None)
    with st.sidebar:
        kind = controls.target_controls(info, tucked=True)
        st.header("Attribution", anchor=False)
        controls.attribution_controls(tucked=True)

    tasks.text_inputs(kind, info)
    state = current(FIELDS)
    write_url(state, FIELDS)
    if saved:
        st.info(f"Showing the saved analysis **{markdown_escape(state.analysis)}** (saved "
                f"{markdown_escape(created[:16].replace('T', ' '))} UTC, model {markdown_escape(saved.model.spec)}). Nothing is recomputed; change the text or any setting to analyse live.")
        result, full = saved, None
    elif loaded is None:
        return
    elif not state.text.strip():
        st.info("Type or paste a sentence above to see how the model reads it.")
        return
    elif tasks.missing_input(state, kind):
        st.info(markdown_escape(tasks.missing_input(state, kind)))
        return
    else:
        kept, problems = ablation.parse_kept(state.ablate, loaded.info.n_layers, loaded.info.n_heads)
        for problem in problems:
            st.warning(markdown_escape(f"A head to remove was ignored: {problem}"))
        state = replace(state, ablate=kept.format())
        result, full = compute_both(tasks.request_state(state, kind, info), loaded)
        if result is None:
            return

    # The first screen's chart is sent first, so the browser starts loading Plotly while it draws the rest;
    # the prediction and highlights still show above it.
    upper = st.container()
    # In a popover: its widgets are drawn by the browser only when it is opened (an expander's are drawn closed).
    with st.sidebar, st.popover("Knock out heads", width="stretch",
                                help="Analyse again without some heads' outputs (single heads or whole layers)."):
        if saved:
            st.caption("Change the text or a setting to analyse live, then choose heads to remove.")
        else:
            ablation.head_picker(result.model.n_layers, result.model.n_heads, warn=False)

    st.subheader("Attention", anchor=False)
    results.clamp_view("layer", result.model.n_layers, "layer")
    results.clamp_view("head", result.model.n_heads, "head")
    shown = sections.Shown(state=current(FIELDS), result=result)
    sections.attention_views(result, shown, live=not saved)
    with upper:
        if result.request.ablate:
            ablation.ablation_banner(result, full)

        left, right = st.columns([2, 3], gap="large")
        with left:
            st.subheader("Prediction", anchor=False)
            tasks.render_prediction(result, key="prediction")
            pin.pin_label(result, kind)
            tasks.token_picker(result)
        with right:
            st.subheader("Which tokens raised or lowered the score", anchor=False)
            # the heading above says what the choice is about: the label is read out, not drawn (one Markdown less)
            st.segmented_control("Level", LEVELS, key=widget_key("level"), required=True, label_visibility="collapsed",
                                 format_func=lambda v: {"word": "whole words", "subword": "subword tokens"}[v])
            tasks.render_highlights(result, state.level, loaded, state)
            if result.request.ablate and full is not None and full is not result:
                with st.expander("Highlights of the full model (every head)"):
                    results.render_highlights(full, state.level, table=False)

    sections.depth_section(result, loaded, shown)
    sections.flow_section(result, loaded, shown)

    st.subheader("Share and export", anchor=False)
    shown.state = current(FIELDS)
    share.share_controls(
        lambda: Document(kind="explore", analyses=[shown.result], view=to_query(shown.state, include=VIEW_FIELDS)),
        lambda: standalone_html(shown.result, view=share.report_view(shown.state), flow=shown.flow),
        page_path=PAGE,
        file_stem=share.slug(result.request.text),
        key="share",
        make_csv=lambda: word_scores_csv(shown.result, level=shown.state.level),
    )
    write_url(current(FIELDS), FIELDS)


main()
