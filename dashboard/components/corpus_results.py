"""What a corpus run says, drawn: which method to believe, the words the model relies on, slices, and finders
whose every text opens in Explore with the run's model, target and method."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyarrow as pa
import streamlit as st

from dashboard.components import charts, share
from dashboard.components.text import markdown_escape
from dashboard.state import DEFAULTS, EXPLORE_FIELDS, ViewState, to_query
from explain.corpus import summary
from explain.methods import METHODS
from explain.viz.corpus import (
    HEAD_COLUMNS,
    head_importance_figure,
    method_ranking_figure,
    shortcut_figure,
    slices_figure,
)

LINK_COLUMN = "open"


def explore_state(request: dict[str, Any], text: str, method: str) -> ViewState:
    """The Explore page's state for one text of a run: the run's model, target and method."""
    target = request.get("target") or {}
    return ViewState(
        text=text, model=str(request.get("model") or DEFAULTS.model), method=method,
        target=str(target.get("kind") or ""), label=str(target.get("label") or ""),
        labels=", ".join(target.get("labels") or ()), prompts="|".join(target.get("prompts") or ()),
        reference=str(target.get("reference") or ""), target_token=int(target.get("token", DEFAULTS.target_token)),
        part=str(target.get("part") or ""), logit=bool(target.get("logit")), max_tokens=int(
            request.get("max_tokens") or DEFAULTS.max_tokens))


def explore_url(request: dict[str, Any], text: str, method: str) -> str:
    """An absolute link (relative when the server's address is unknown) opening `text` in Explore."""
    origin = re.match(r"^(https?://[^/]+)", st.context.url or "")
    query = to_query(explore_state(request, text, method), include=EXPLORE_FIELDS)
    return f"{origin.group(1) if origin else ''}/?{urlencode(query)}"


def with_links(table: pa.Table, request: dict[str, Any], method: str) -> list[dict[str, Any]]:
    rows = table.to_pylist()
    for row in rows:
        row[LINK_COLUMN] = explore_url(request, row["text"], method)
    return rows


def finder_table(table: pa.Table, request: dict[str, Any], method: str, key: str,
                 number_columns: tuple[str, ...] = ()) -> list[str]:
    """The finder's rows with an Explore link each; returns their texts."""
    if not table.num_rows:
        st.caption("None in this run.")
        return []
    config: dict[str, Any] = {LINK_COLUMN: st.column_config.LinkColumn(
        "Explore", display_text="open in Explore", help="This text on the Explore page, with the run's model, "
                                                        "target and method.")}
    config.update({c: st.column_config.NumberColumn(c, format="%.3g") for c in number_columns})
    st.dataframe(with_links(table, request, method), hide_index=True, width="stretch", column_config=config,
                 key=key)
    return [str(t) for t in table.column("text").to_pylist()]


def method_title(name: str) -> str:
    return METHODS[name].title if name in METHODS else name


def ranking_section(run: summary.CorpusRun) -> None:
    st.subheader("Which explanation to believe on this data")
    ranking = summary.method_ranking(run)
    if not ranking.methods:
        st.caption("This run did not score faithfulness; run it with faithfulness on to rank the methods.")
        return
    table = ranking.table()
    titled = table.set_column(1, "method", pa.array([method_title(m) for m in table.column("method").to_pylist()]))
    charts.plotly_chart(method_ranking_figure(titled), key="corpus_ranking", config=share.chart_config("corpus-ranking"))
    st.dataframe(titled.to_pylist(), hide_index=True, width="stretch", column_config={
        c: st.column_config.NumberColumn(c.replace("_low", " 95% low").replace("_high", " 95% high")
                                         .replace("naopc", "NAOPC"), format="%.3g")
        for c in table.column_names if c not in ("rank", "method", "texts")})
    caption = ("Comprehensiveness: how much the score drops when a method's top words are taken out (higher is more "
               "faithful); sufficiency: how much it drops when only they are kept (lower is more faithful); "
               "intervals are 95% bootstrap intervals of the mean over texts.")
    if ranking.paired is not None:
        p = ranking.paired
        caption += (f" Paired Wilcoxon test of comprehensiveness, {method_title(p.first)} against "
                    f"{method_title(p.second)} over {p.texts} texts: mean difference {p.mean_difference:.3g}, "
                    f"p = {p.p_value:.3g}.")
    st.caption(markdown_escape(caption))


def words_section(run: summary.CorpusRun, method: str) -> None:
    st.subheader("Words the model relies on")
    flagged = summary.shortcuts(run, method, min_texts=min(summary.SHORTCUT_MIN_TEXTS, max(2, texts_in(run) // 10)))
    if not flagged.num_rows:
        st.caption("No word form appears in enough texts to compare; run more texts.")
        return
    charts.plotly_chart(shortcut_figure(flagged), key="corpus_shortcuts", config=share.chart_config("corpus-words"))
    count = sum(bool(f) for f in flagged.column("flagged").to_pylist())
    found = f"{count} candidate shortcut{'s' if count != 1 else ''} (coloured)" if count else "No candidate shortcut"
    st.caption(markdown_escape(
        f"{found}: word forms whose texts are mostly "
        f"(at least {summary.SHORTCUT_SHARE:.0%}) predicted as one class and whose mean |attribution| is at least "
        f"{summary.SHORTCUT_STRENGTH:g} times the median word form's. Bar labels: the form, its texts and its class."))
    st.dataframe(flagged.to_pylist(), hide_index=True, width="stretch", key="corpus_shortcut_table", column_config={
        "share": st.column_config.NumberColumn("share", format="percent"),
        "mean_signed": st.column_config.NumberColumn("mean signed", format="%.3g"),
        "mean_abs": st.column_config.NumberColumn("mean |attribution|", format="%.3g")})
    by = st.segmented_control("Words per class by", ["prediction", "gold"], default="prediction",
                              key="corpus_words_by", required=True)
    st.dataframe(summary.word_attributions(run, method, by or "prediction", min_texts=2).slice(0, 200).to_pylist(),
                 hide_index=True, width="stretch", key="corpus_words_table", column_config={
                     "mean_signed": st.column_config.NumberColumn("mean signed", format="%.3g"),
                     "mean_abs": st.column_config.NumberColumn("mean |attribution|", format="%.3g")})


def heads_section(run: summary.CorpusRun) -> None:
    st.subheader("Heads over the data")
    if not run.heads:
        st.caption("This run did not compute heads; run it with Heads over the data on.")
        return
    table = summary.head_summary(run)
    if not table.num_rows:
        st.caption("No text of this run has been explained yet.")
        return
    has_ablation = any(v is not None for v in table.column("ablation").to_pylist())
    choices = [c for c in HEAD_COLUMNS if c != "ablation" or has_ablation]
    column = st.segmented_control("Map", choices, default=choices[0], key="corpus_head_map", required=True,
                                  format_func=HEAD_COLUMNS.get) or choices[0]
    charts.plotly_chart(head_importance_figure(table, column), key="corpus_heads_map",
                    config=share.chart_config("corpus-heads"))
    top = summary.top_heads(run, by=column, top=10)
    st.dataframe(summary.spread_table(top).to_pylist(), hide_index=True, width="stretch", key="corpus_heads_table",
                 column_config={"importance": st.column_config.NumberColumn(
                     "importance", format="%.3g", help="Mean gradient importance over the texts, divided by the l2 "
                                                       "norm of its layer's means (Michel et al. 2019).")})
    st.caption(markdown_escape(
        "Gradient importance (Michel et al. 2019): |d score / d gate| for a gate on each head's output, averaged over "
        "the texts and, normalised, divided by the l2 norm of its layer's means. Ablation effect: the change of the "
        "explained score when the head alone is removed. Table values are mean ± standard deviation over the texts; the "
        "table lists the 10 heads largest on the map shown (|value| for the ablation effect)."))


def texts_in(run: summary.CorpusRun) -> int:
    return int(run.sql("SELECT count(*) AS n FROM texts").column("n")[0].as_py())


def slices_section(run: summary.CorpusRun) -> None:
    st.subheader("Slices")
    table = summary.slices(run)
    if any(v is not None for v in table.column("accuracy").to_pylist()):
        charts.plotly_chart(slices_figure(table), key="corpus_slices", config=share.chart_config("corpus-slices"))
    else:
        st.caption("The run has no gold labels, so accuracy is not known.")
    st.dataframe(table.to_pylist(), hide_index=True, width="stretch", column_config={
        "accuracy": st.column_config.NumberColumn("accuracy", format="percent"),
        "mean_explained_score": st.column_config.NumberColumn("mean explained score", format="%.3g")})


def finders_section(run: summary.CorpusRun, method: str) -> None:
    request = run.manifest["request"]
    st.subheader("Finders")
    st.caption("Every text opens in Explore with the run's model, target and the method chosen above.")
    found: list[str] = []
    if run.manifest["request"].get("faithfulness"):
        st.markdown(markdown_escape(f"Least faithful explanations ({method_title(method)})"))
        found += finder_table(summary.least_faithful(run, method), request, method, "corpus_least",
                     ("comprehensiveness", "sufficiency"))
    st.markdown(markdown_escape(f"Misclassified texts with their top words ({method_title(method)})"))
    found += finder_table(summary.misclassified(run, method), request, method, "corpus_wrong")
    others = [m for m in run.methods if m != method]
    if others:
        st.markdown(markdown_escape(f"Where {method_title(method)} and {method_title(others[0])} disagree most"))
        found += finder_table(summary.disagreements(run, method, others[0]), request, method, "corpus_disagree",
                     ("spearman",))
    forms = summary.shortcuts(run, method, min_texts=1).column("form").to_pylist()[:200]
    if forms:
        form = st.selectbox("Texts where this word matters most", forms, key="corpus_form",
                            help="Word forms by mean |attribution|, largest first.")
        found += finder_table(summary.where_word_matters(run, form, method), request, method, "corpus_word",
                              ("score",))
    found = list(dict.fromkeys(found))
    if found:
        left, right = st.columns([4, 1], vertical_alignment="bottom")
        text = left.selectbox("A text from the finders", found, key="corpus_open_text")
        right.link_button("Open in Explore", explore_url(request, text, method), icon=":material/search:")


def failures_section(run: summary.CorpusRun) -> None:
    table = summary.failures(run)
    if table.num_rows:
        with st.expander(f"{table.num_rows} rows skipped"):
            st.dataframe(table.to_pylist(), hide_index=True, width="stretch")


def show_run(folder: Path, link: str | None) -> None:
    """Every section of the run in `folder`; `link` reopens it (None for a CLI folder, which has no id)."""
    run = summary.open_run(folder)
    manifest = run.manifest
    counts = manifest.get("counts", {})
    request = manifest["request"]
    texts = texts_in(run)
    acc = next((r["accuracy"] for r in summary.slices(run).to_pylist() if r["slice"] == "all"), None)
    st.header("Results")
    left, middle, right, last = st.columns(4)
    left.metric("Texts explained", f"{texts} of {counts.get('texts', texts)}")
    middle.metric("Accuracy", "unknown" if acc is None else f"{acc:.0%}")
    right.metric("Rows skipped", str(counts.get("failed", 0)))
    last.metric("Methods", str(len(run.methods)))
    st.caption(markdown_escape(
        f"Model {request.get('model')}; methods {', '.join(method_title(m) for m in run.methods)}; status "
        f"{manifest.get('status')}."))
    if link:
        st.markdown("This run's link reopens it without recomputing:")
        st.code(link, language=None)
    method = st.selectbox("Method for words and finders", list(run.methods), format_func=method_title,
                          key="corpus_method")
    ranking_section(run)
    words_section(run, method)
    heads_section(run)
    slices_section(run)
    finders_section(run, method)
    failures_section(run)
