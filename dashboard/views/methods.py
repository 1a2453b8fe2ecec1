"""Every attribution method on one text: their highlights row by row, their faithfulness and how they agree."""

from __future__ import annotations

import math
from dataclasses import replace

import streamlit as st

from dashboard import cached
from dashboard.components import charts, controls, results, share, tasks
from dashboard.components.loading import load_model_or_error
from dashboard.components.text import markdown_escape
from dashboard.components.url_state import current, load_from_url, show_notices, widget_key, write_url
from dashboard.state import METHODS_FIELDS, REMOVAL_MODES
from explain import Analysis, AnalysisRequest, ExplainError, LoadedModel
from explain.errors import InputError
from explain.evaluation.stability import (
    AGREEMENT_CAPTION,
    agreement_rows,
    other_seed_request,
    request_seed,
    seed_agreement,
)
from explain.methods import METHODS
from explain.pipeline import supported_methods
from explain.records import MethodResult
from explain.viz.methods import (
    MethodRow,
    faithfulness_rows,
    limits_text,
    method_title,
    methods_highlights_html,
    naopc_figure,
    random_floor_text,
    rank_agreement,
    rank_agreement_figure,
    ranking_sentence,
)
from explain.viz.theme import format_score

PAGE = "methods"
FIELDS = METHODS_FIELDS
REMOVAL_NAMES = {"replace": "replaced by the baseline token", "remove": "removed"}
FAILED = "_methods_failed"  # session: cache key -> why that method could not be computed
COLUMN_HELP = {
    "NAOPC ↑": "The AOPC between the worst (0) and the best (1) order of removing this text's words: comparable "
               "across texts and models.",
    "AOPC ↑": "How much the score drops, on average, as the method's words are taken out one at a time, best first.",
    "comprehensiveness ↑": "How much the score drops when the method's top-ranked words are taken out (averaged over "
                           "the top 1, 5, 10, 20 and 50% of words): higher is more faithful.",
    "sufficiency ↓": "How much the score drops when only the method's top-ranked words are kept: lower is more "
                     "faithful.",
    "LOO Spearman": "Rank agreement of the method's word scores with leaving each word out in turn (-1 to 1).",
    "seconds": "How long the method took on this server.",
}
READING = ("A method is more faithful than chance when its comprehensiveness (how much the score drops when its "
           "top-ranked words are taken out) is above the random rankings' and its sufficiency (how much it drops "
           "when only those words are kept) is below theirs.")


def base_analysis(request: AnalysisRequest, loaded: LoadedModel) -> Analysis | None:
    """The chosen method's analysis (shared with the Explore page): the words, the prediction, one row."""
    cache = cached.analysis_cache()
    try:
        return cache.get(cache.key(request, loaded.spec)) or results.run_with_progress(
            lambda progress: cache.compute(request, loaded, progress), f"Analysing with {loaded.spec}")
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        return None


def prediction_sentence(analysis: Analysis) -> str:
    p = analysis.prediction
    score = float(p.scores[p.explained_index])
    return (f"Every method explains {p.description}, which is {format_score(score)} on this text "
            f"({analysis.model.spec}).")


def draw_rows(slot, analysis: Analysis, names: list[str], done: dict[str, MethodResult | None]) -> None:
    rows = [MethodRow(method_title(n), r.word_scores, r.attribution.signed) for n in names
            for r in [done.get(n)] if r is not None]
    if rows:
        slot.html(methods_highlights_html(analysis.words.words, rows))
    else:
        slot.empty()


def compute_missing(request: AnalysisRequest, loaded: LoadedModel, names: list[str],
                    done: dict[str, MethodResult | None], slot, analysis: Analysis) -> None:
    """Compute the methods not cached yet, one by one, with a progress bar across them; rows appear as they end."""
    mcache = cached.method_cache()
    failed: dict = st.session_state.setdefault(FAILED, {})
    bar = st.progress(0.0, text="starting")
    total = len(names)
    for i, name in enumerate(names):
        if done.get(name) is not None:
            continue
        label = f"{method_title(name)} ({i + 1} of {total})"
        bar.progress(i / total, text=label)

        def step(fraction: float, i: int = i, label: str = label) -> None:
            bar.progress(min(1.0, (i + min(max(fraction, 0.0), 1.0)) / total), text=label)

        try:
            done[name] = mcache.compute(request, loaded, name, progress=step)
        except InputError as exc:  # over the work budget or a setting the method refuses: asking again won't help
            failed[mcache.key(request, loaded.spec, name)] = str(exc)
            continue
        except ExplainError as exc:  # a busy server: the button offers the rest again
            st.error(markdown_escape(exc))
            break
        draw_rows(slot, analysis, names, done)
    bar.empty()


def faithfulness_section(request: AnalysisRequest, loaded: LoadedModel, analysis: Analysis, names: list[str],
                         done: dict[str, MethodResult | None], removal: str) -> None:
    computed = {n: r for n in names for r in [done.get(n)] if r is not None}
    if len(analysis.words) < 2:
        st.info("Faithfulness and agreement need a text of at least two words.")
        return
    try:
        with st.spinner("Scoring the methods' faithfulness…"):
            scored, summary = cached.method_cache().faithfulness(request, loaded, computed, removal)
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        return
    st.subheader("Faithfulness")
    st.caption(markdown_escape(random_floor_text(summary)))
    shown = replace(analysis, methods=scored, faithfulness=summary)
    ranking = ranking_sentence(shown)
    if ranking:
        st.markdown(markdown_escape(ranking))
    st.caption(markdown_escape(limits_text(summary, len(analysis.words))))
    rows = faithfulness_rows(shown)
    # Tall enough for every method: a table that scrolls hides the last rows from a screenshot or a printout.
    st.dataframe(rows, hide_index=True, width="stretch", height="content", column_config={
        name: st.column_config.NumberColumn(name, help=text, format="%.3g") for name, text in COLUMN_HELP.items()})
    better = [method_title(n) for n, r in scored.items()
              if r.comprehensiveness > summary.random_comprehensiveness + summary.random_comprehensiveness_std
              and r.sufficiency < summary.random_sufficiency - summary.random_sufficiency_std]
    st.caption(markdown_escape(READING + (
        f" Here, by more than one standard deviation on both: {', '.join(better)}." if better else
        " Here no method beats the random rankings by more than one standard deviation on both.")))
    if ranking:
        charts.plotly_chart(naopc_figure(shown), key="naopc", config=share.chart_config("naopc"))
    st.subheader("How much do the methods agree?")
    matrix = rank_agreement({n: r.word_scores for n, r in scored.items()})
    charts.plotly_chart(rank_agreement_figure([method_title(n) for n in scored], matrix), key="agreement",
                    config=share.chart_config("rank-agreement"))
    flat = [method_title(n) for i, n in enumerate(scored) if all(math.isnan(v) for j, v in enumerate(matrix[i]) if j != i)]
    st.caption("Spearman rank correlation of the word scores: 1, the same order of words; 0, unrelated; -1, the "
               "reverse order. Unsigned methods rank words by magnitude, so they can agree with a signed method "
               "only on its positive words." + (f" No ranking (all scores equal): {', '.join(flat)}." if flat else ""))


def seed_section(request: AnalysisRequest, loaded: LoadedModel, names: list[str],
                 done: dict[str, MethodResult | None]) -> None:
    """Each computed stochastic method's agreement with itself under the next seed (that run is cached too)."""
    mcache, shown = cached.method_cache(), []
    for name in [n for n in names if METHODS[n].stochastic and done.get(n) is not None]:
        other = other_seed_request(request, name)
        try:
            with st.spinner(f"Running {method_title(name)} with a second seed…"):
                second = mcache.get(mcache.key(other, loaded.spec, name)) or mcache.compute(other, loaded, name)
        except ExplainError as exc:
            st.warning(markdown_escape(f"{method_title(name)} was not run with a second seed: {exc}"))
            continue
        first = done[name]
        assert first is not None
        seeds = (request_seed(request, name), request_seed(other, name))
        shown.append((method_title(name), seed_agreement(name, seeds, first.word_scores, second.word_scores)))
    if shown:
        st.subheader("Do two seeds agree?")
        st.dataframe(agreement_rows(shown), hide_index=True, column_config={
            "Spearman": st.column_config.NumberColumn("Spearman", format="%.2f")})
        st.caption(AGREEMENT_CAPTION)


def main() -> None:
    cached.startup()
    load_from_url(PAGE, FIELDS)
    tasks.keep_task_values()
    st.title("Compare attribution methods")
    show_notices(PAGE)
    with st.sidebar:
        st.header("Model")
        spec = controls.model_picker("model", "Model")
    loaded = load_model_or_error(spec)
    with st.sidebar:
        kind = controls.target_controls(loaded.info if loaded else None)
        st.header("Methods")
        controls.attribution_controls()
        st.segmented_control("Faithfulness: words are", REMOVAL_MODES, key=widget_key("removal"), required=True,
                             format_func=REMOVAL_NAMES.get,
                             help="How the faithfulness metrics take a word out: replace it by the baseline token "
                                  "(the input keeps its length) or remove it from the text.")
    tasks.text_inputs(kind, loaded.info if loaded else None)
    state = current(FIELDS)
    write_url(state, FIELDS)
    if loaded is None:
        return
    if not state.text.strip():
        st.info("Type or paste a sentence above to compare how the methods explain it.")
        return
    if tasks.missing_input(state, kind):
        st.info(markdown_escape(tasks.missing_input(state, kind)))
        return
    request = tasks.request_state(state, kind, loaded.info).request()
    analysis = base_analysis(request, loaded)
    if analysis is None:
        return
    st.markdown(markdown_escape(prediction_sentence(analysis)))
    for notice in analysis.notices:
        st.warning(markdown_escape(notice))

    names = supported_methods(loaded, request)
    mcache = cached.method_cache()
    shown_key = mcache.key(request, loaded.spec, request.method)
    if mcache.get(shown_key) is None and request.method in analysis.methods:
        mcache.put(shown_key, analysis.methods[request.method])
    done = {n: mcache.get(mcache.key(request, loaded.spec, n)) for n in names}
    failed: dict = st.session_state.get(FAILED, {})
    missing = [n for n in names if done[n] is None and mcache.key(request, loaded.spec, n) not in failed]

    st.subheader("Each method's word scores")
    slot = st.empty()
    draw_rows(slot, analysis, names, done)
    if missing:
        offer = st.empty()
        with offer.container():
            st.caption(f"{len(names) - len(missing)} of {len(names)} methods computed; the others run one by one "
                       "(each is kept, so coming back is instant).")
            clicked = st.button("Compute all methods", type="primary", key="compute_all")
        if not clicked:
            return
        offer.empty()
        compute_missing(request, loaded, names, done, slot, analysis)
        failed = st.session_state.get(FAILED, {})
    for name in names:
        reason = failed.get(mcache.key(request, loaded.spec, name))
        if reason is not None and done.get(name) is None:
            st.warning(markdown_escape(f"{method_title(name)} was not computed: {reason}"))
    if all(done.get(n) is not None or mcache.key(request, loaded.spec, n) in failed for n in names):
        faithfulness_section(request, loaded, analysis, names, done, state.removal)
        seed_section(request, loaded, names, done)


main()
