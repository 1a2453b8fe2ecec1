"""Compare two models on one text, or one model on two texts, word by word."""

from __future__ import annotations

import html
import math
from dataclasses import replace

import streamlit as st

from dashboard import cached
from dashboard.components import ablation, charts, controls, results, share, tasks
from dashboard.components.text import markdown_escape
from dashboard.components.url_state import (
    current,
    leave_saved,
    load_from_url,
    set_value,
    show_notices,
    widget_key,
    write_url,
)
from dashboard.state import COMPARE_FIELDS, COMPARE_MODES, MAX_TEXT_CHARS, SHARED_TARGETS, ViewState, to_query
from explain import Analysis, AnalysisRequest, ExplainError, LoadedModel
from explain.compare import Comparison, Outcome, compare_analyses
from explain.document import Document
from explain.exports import chart_filename, comparison_scores_csv
from explain.models import DEFAULT_MODEL, RANDOM_CONTROL
from explain.viz.attention import attention_heatmap, layer_distance_figure
from explain.viz.prediction import prediction_range
from explain.viz.report import comparison_html

PAGE = "compare"
FIELDS = COMPARE_FIELDS
VIEW_FIELDS = {"level", "layer", "head", "layer_b", "head_b", "hide_special"}
MODE_NAMES = {"models": "two models", "texts": "two texts", "heads": "without heads"}


def sanity_preset() -> None:
    """Trained vs randomised weights of the same architecture, on the same text."""
    set_value("model", DEFAULT_MODEL)
    set_value("model_b", RANDOM_CONTROL)
    set_value("mode", "models")
    leave_saved()


def same_target(request: AnalysisRequest, first: Analysis, mode: str) -> AnalysisRequest:
    """Make the second side explain the very label the first one explains, where both can."""
    if mode == "heads":  # the same model: the side without heads explains the full model's label
        return ablation.same_label(request, first)
    target = first.request.target
    if target is None or (mode == "models" and target.kind not in ("zero_shot", "similarity")):
        return request
    label = first.prediction.labels[first.prediction.explained_index] if target.kind != "similarity" else ""
    return replace(request, target=replace(target, label=label))


def load_side(spec: str, side: str) -> LoadedModel | None:
    """The model for one side, or None with the reason shown."""
    if not spec:
        st.info(f"Pick the {side.lower()} model in the sidebar.")
        return None
    try:
        with st.spinner(markdown_escape(f"Loading {spec}…")):
            return cached.get_model(spec)
    except ExplainError as exc:
        st.error(markdown_escape(f"{side} side: {exc}"))
        return None


def analyse(state: ViewState, loaded: LoadedModel | None, first: Analysis | None = None) -> Analysis | None:
    """One side's analysis; the second side (`first` given) explains the first side's label where it can."""
    second = first is not None
    request = state.request(second=second)
    if first is not None:
        request = same_target(request, first, state.mode)
    if loaded is None:
        loaded = load_side(request.model, "Second" if second else "First")
        if loaded is None:
            return None
    picked = state.target_spec()
    if second and picked is not None and picked.kind not in SHARED_TARGETS and picked.kind in loaded.info.targets:
        request = replace(request, target=picked)  # the other model can explain the very same target kind
    try:
        cache = cached.analysis_cache()
        return cache.get(cache.key(request, loaded.spec)) or results.run_with_progress(
            lambda progress: cache.compute(request, loaded, progress),
            f"Analysing with {loaded.spec}" + (" (second)" if second else ""),
        )
    except ExplainError as exc:
        st.error(markdown_escape(f"{'Second' if second else 'First'} side: {exc}"))
        return None


def side_title(result: Analysis, mode: str) -> str:
    """The side's model, or the start of its text; plain text (escape it for Markdown)."""
    if mode == "heads":
        ablate = result.request.ablate
        return f"{result.model.spec} without heads {ablation.heads_text(ablate)}" if ablate else result.model.spec
    return result.model.spec if mode == "models" else f"«{result.request.text[:40]}»"


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def score_text(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:+.2g}"


CHANGE_NAMES = {"replace": "replaced", "insert": "inserted", "delete": "deleted"}


def changes_summary(comparison: Comparison) -> str:
    """How the two texts differ, in counts (no user text)."""
    n_left, n_right = comparison.changed_words
    places = len(comparison.changes)
    return (f"The two texts differ in {plural(places, 'place')}: {plural(n_left, 'word')} of the first text and "
            f"{plural(n_right, 'word')} of the second are changed. The numbers above use the "
            f"{plural(len(comparison.pairs), 'word')} both texts share; the changed words are listed here with "
            "their attributions in each text.")


def changes_rows(comparison: Comparison) -> list[dict[str, str]]:
    return [{"Change": CHANGE_NAMES[c.kind], "First text": " ".join(c.words_left) or "—",
             "Second text": " ".join(c.words_right) or "—", "Score (first)": score_text(c.score_left),
             "Score (second)": score_text(c.score_right)} for c in comparison.changes]


def sanity_applies(left: Analysis, right: Analysis, mode: str) -> bool:
    return mode == "models" and {left.model.spec, right.model.spec} == {DEFAULT_MODEL, RANDOM_CONTROL}


def first_side_alone(result: Analysis, mode: str) -> None:
    """The first side when the second cannot be analysed (its message is above): the page is not left blank."""
    st.subheader("Word attributions")
    cols = st.columns(2, gap="large")
    with cols[0]:
        st.markdown(f"**{markdown_escape(side_title(result, mode))}**")
        tasks.render_prediction(result, key="pred_a")
        results.render_highlights(result, "word")
    cols[1].info("The second side could not be analysed (the message above says why), so there is nothing to "
                 "compare yet; the first side is shown alone.")


def agreement_section(left: Analysis, right: Analysis, state: ViewState) -> Comparison:
    comparison = compare_analyses(left, right)
    a = comparison.agreement
    st.subheader("How much do the two explanations agree?")
    if comparison.target_difference:
        st.warning(markdown_escape(comparison.target_difference))
    c1, c2, c3, c4 = st.columns(4)

    def show(col, label, value, help_text):
        col.metric(label, "—" if math.isnan(value) else f"{value:.2f}", help=help_text)

    show(c1, "Spearman", a.spearman, "Rank correlation of the word attributions (-1 to 1).")
    show(c2, "Kendall", a.kendall, "Rank correlation counting word pairs ordered the same way (-1 to 1).")
    show(c3, f"Top-{a.top_k} overlap", a.top_k_overlap, "Share of the most important words (by |score|) in common.")
    show(c4, "Sign agreement", a.sign_agreement, "Share of words both push in the same direction.")
    st.write(markdown_escape(comparison.reading()))
    if comparison.texts:
        st.caption(markdown_escape(changes_summary(comparison)))
        if comparison.changes:
            st.dataframe(changes_rows(comparison), hide_index=True, key="changes")
    if sanity_applies(left, right, state.mode):
        verdict = comparison.sanity_check()
        show_verdict = {Outcome.PASSED: st.success, Outcome.FAILED: st.error, Outcome.INCONCLUSIVE: st.warning}
        show_verdict[verdict.outcome](f"**Sanity check:** {verdict.sentence}")
    return comparison


def agreement_html(comparison: Comparison, left: Analysis, right: Analysis, mode: str) -> str:
    """The agreement section of the HTML export (escaped)."""
    parts = [comparison.target_difference, comparison.reading()]
    if sanity_applies(left, right, mode):
        parts.append("Sanity check: " + comparison.sanity_check().sentence)
    if comparison.texts:
        parts.append(changes_summary(comparison))
    body = "".join(f"<p>{html.escape(p)}</p>" for p in parts if p)
    rows = changes_rows(comparison) if comparison.texts else []
    if rows:
        head = "".join(f"<th>{html.escape(k)}</th>" for k in rows[0])
        cells = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row.values()) + "</tr>"
                        for row in rows)
        body += f"<table><tr>{head}</tr>{cells}</table>"
    return body


def main() -> None:
    cached.startup()
    load_from_url(PAGE, FIELDS)
    tasks.keep_task_values()
    st.title("Compare two explanations")
    show_notices(PAGE)
    saved, created = share.open_saved(current(FIELDS).analysis, PAGE)

    with st.sidebar:
        st.header("What to compare")
        mode = st.segmented_control("Compare", COMPARE_MODES, key=widget_key("mode"), required=True,
                                    on_change=leave_saved,
                                    format_func=MODE_NAMES.get,
                                    help="Two models on one text, one model on two texts, or one model against "
                                         "itself without some of its heads.")
        spec = controls.model_picker("model", "First model" if mode == "models" else "Model")
        if mode == "models":
            controls.model_picker("model_b", "Second model")
        st.button("Sanity check: trained vs random weights", on_click=sanity_preset, width="stretch",
                  help="The same architecture with trained and with random weights: explanations that do not "
                       "change are not explaining what the model learned.")
    loaded = None if saved else load_side(spec, "First")
    info = saved[0].model if saved else (loaded.info if loaded else None)
    with st.sidebar:
        if mode == "heads" and info is not None:
            st.header("Heads to remove")
            if saved:
                st.caption("Change the text or a setting to compare live, then choose heads to remove.")
            else:
                ablation.head_picker(info.n_layers, info.n_heads)
        st.header("Target")
        kind = controls.target_controls(info)
        st.header("Attribution")
        controls.attribution_controls()

    tasks.text_inputs(kind, info, height=70, main_label="First text" if mode == "texts" else "Text",
                      pair_label="Text read with each (pair)" if mode == "texts" else "Second text")
    if mode == "texts":
        st.text_area("Second text", key=widget_key("text_b"), max_chars=MAX_TEXT_CHARS, height=70,
                     on_change=leave_saved, help="For example the same sentence with one word changed.")
    state = current(FIELDS)
    write_url(state, FIELDS)
    if mode != "heads":  # the heads stay in the link for the heads mode, but only it removes them
        state = replace(state, ablate="", ablate_mode="zero")
    if saved:
        st.info(f"Showing the saved comparison **{markdown_escape(state.analysis)}** (saved "
                f"{markdown_escape(created[:16].replace('T', ' '))} UTC). "
                "Nothing is recomputed; change a text or setting to compare live.")
        left, right = saved
    else:
        if loaded is None:
            return
        if not state.text.strip() or (mode == "texts" and not state.text_b.strip()):
            st.info("Type the text(s) to compare above.")
            return
        if tasks.missing_input(state, kind):
            st.info(markdown_escape(tasks.missing_input(state, kind)))
            return
        asked = tasks.request_state(state, kind, info)
        if mode == "heads":
            asked = replace(asked, ablate=ablation.parse_kept(asked.ablate, loaded.info.n_layers,
                                                              loaded.info.n_heads)[0].format())
            if not asked.ablate:
                st.info("Choose the heads to remove in the sidebar: the model is then compared with itself "
                        "without them, on the same text.")
                return
        left = analyse(asked, loaded)
        right = analyse(asked, loaded if mode in ("texts", "heads") else None, left) if left is not None else None
        if left is not None and right is None:
            first_side_alone(left, state.mode)
        if left is None or right is None:
            return

    if right.request.ablate:
        ablation.ablation_banner(right, left)
    comparison = agreement_section(left, right, state)
    scale = float(max(abs(comparison.scores_left).max(initial=0), abs(comparison.scores_right).max(initial=0))) or None
    st.subheader("Word attributions side by side")
    st.caption("Both sides use one colour scale, so equal colours mean equal scores.")
    cols = st.columns(2, gap="large")
    axis = prediction_range(left.prediction, right.prediction)
    for col, result, key in ((cols[0], left, "a"), (cols[1], right, "b")):
        with col:
            st.markdown(f"**{markdown_escape(side_title(result, state.mode))}**")
            tasks.render_prediction(result, key=f"pred_{key}", x_range=axis)
            results.render_highlights(result, "word", scale=scale, table_key=f"score_table_{key}")

    st.subheader("Attention side by side")
    cols = st.columns(2, gap="large")
    for col, result, layer_name, head_name, key in ((cols[0], left, "layer", "head", "a"),
                                                      (cols[1], right, "layer_b", "head_b", "b")):
        with col:
            results.clamp_view(layer_name, result.model.n_layers, "layer")
            results.clamp_view(head_name, result.model.n_heads, "head")
            c1, c2 = st.columns(2)
            layer = c1.selectbox(f"Layer ({markdown_escape(side_title(result, state.mode))})", list(range(result.model.n_layers)),
                                 key=widget_key(layer_name))
            head = c2.selectbox("Head", list(range(result.model.n_heads)), key=widget_key(head_name))
            results.render_head(result, layer, head, False, key=f"head_{key}")

    st.subheader("Rollout on shared words")
    cols = st.columns(2, gap="large")
    for col, result, matrix, key in ((cols[0], left, comparison.rollout_left, "a"),
                                     (cols[1], right, comparison.rollout_right, "b")):
        with col:
            charts.plotly_chart(attention_heatmap(matrix, comparison.words, comparison.words,
                                                      title=f"Rollout, {side_title(result, state.mode)}",
                                                      colorbar_title="rollout"),
                            key=f"roll_{key}", config=share.chart_config(
                                results.chart_name(result, "rollout on shared words", side_title(result, state.mode))))
    charts.plotly_chart(
        layer_distance_figure(comparison.layer_distance, label_a=side_title(left, state.mode),
                                      label_b=side_title(right, state.mode)),
        key="distance", config=share.chart_config(chart_filename("attention distance", *(
            side_title(r, state.mode) for r in (left, right)))),
    )
    st.caption("Per layer of the first model: Jensen-Shannon distance between the two sides' head-averaged attention "
               "over the shared words, averaged over words (the second model's layer is the one at the same relative "
               "depth). 0: they attend alike; 1: they attend to disjoint words.")

    st.subheader("Share and export")
    shown = current(FIELDS)
    view = to_query(shown, include=VIEW_FIELDS | {"mode"})
    agreement = agreement_html(comparison, left, right, state.mode)
    share.share_controls(
        lambda: Document(kind="compare", analyses=[left, right], view=view),
        lambda: comparison_html(left, right, view=share.report_view(shown, level="word"), comparison=comparison,
                                extra_sections=[("Agreement", agreement)]),
        page_path=PAGE,
        file_stem="compare-" + share.slug(left.request.text),
        key="share_cmp",
        make_csv=lambda: comparison_scores_csv(left, right, names=(side_title(left, shown.mode),
                                                                   side_title(right, shown.mode))),
    )
    write_url(current(FIELDS), FIELDS)


main()
