"""What the explore and compare pages show per task: the texts typed, the token picked, the predicted
entities, the answer, a multi-label head's labels, and one row of highlights per text or per entity."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from dashboard import cached
from dashboard.components import charts, results, share
from dashboard.components.text import markdown_escape
from dashboard.components.url_state import leave_saved, set_value, widget_key
from dashboard.state import ALL_ENTITIES, MAX_TEXT_CHARS, ViewState
from explain import Analysis, ExplainError, LoadedModel, ModelInfo
from explain.targets import TARGETS
from explain.tasks import MULTI_LABEL_THRESHOLD, answer_span, entity_requests, has_independent_scores, span_text
from explain.viz.highlights import explained_quantity, marked_text_html, token_highlights_html
from explain.viz.prediction import prediction_figure, sigmoid_bars_figure
from explain.viz.tasks import entity_marks, texts_html
from explain.viz.theme import format_score

TASK_FIELDS = ("pair", "question", "target_token", "part", "logit")
PAIR_HEADS = ("classification",)
MAX_ENTITY_ROWS = 12  # "All entities" explains at most this many (each is a full attribution run)  # cross-encoders read a sentence pair through a classification head


def keep_task_values() -> None:
    """Keep the task inputs a page does not draw for this model (a question box hidden when another model is
    picked), so that they, and the link, survive a switch back: Streamlit drops a widget's value on a run that
    does not draw it, unless the value is written back."""
    for name in TASK_FIELDS:
        key = widget_key(name)
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def shown_inputs(kind: str, info: ModelInfo | None) -> tuple[bool, bool]:
    """(pair box shown, question box shown) for the effective target kind and the model's head."""
    needs = TARGETS[kind].needs if kind in TARGETS else ""
    head = info.head if info else ""
    return needs == "pair" or head in PAIR_HEADS, needs == "question"


def text_inputs(kind: str, info: ModelInfo | None, *, height: int = 80, main_label: str = "Text",
                pair_label: str = "Second text") -> None:
    """The text box, and the boxes the task needs: a question above it (question answering, the text then being
    the context) or a second text below it (next-sentence prediction; optional for classification heads)."""
    pair, question = shown_inputs(kind, info)
    needs = TARGETS[kind].needs if kind in TARGETS else ""
    if question:
        st.text_input("Question", key=widget_key("question"), max_chars=MAX_TEXT_CHARS, on_change=leave_saved,
                      placeholder="What is asked about the context", help="The model finds the answer in the context.")
    st.text_area("Context" if question else main_label, key=widget_key("text"), max_chars=MAX_TEXT_CHARS,
                 height=height, on_change=leave_saved,
                 help="Any text; long texts are truncated to the token limit. Press Ctrl+Enter to apply.")
    if pair:
        st.text_area(
            pair_label if needs == "pair" else f"{pair_label} (optional)", key=widget_key("pair"),
            max_chars=MAX_TEXT_CHARS, height=max(60, height - 20), on_change=leave_saved,
            help="Read with the first text as one input ([CLS] first [SEP] second [SEP]): next-sentence prediction "
                 "asks whether it follows the first; cross-encoders (NLI, paraphrase) classify the pair.",
        )


def request_state(state: ViewState, kind: str, info: ModelInfo | None) -> ViewState:
    """`state` with the task fields this model's target does not read cleared: what is computed (the link keeps
    them all)."""
    pair, question = shown_inputs(kind, info)
    reads = TARGETS[kind].reads if kind in TARGETS else ()
    return replace(
        state, pair=state.pair if pair else "", question=state.question if question else "",
        target_token=state.target_token if "token" in reads else ALL_ENTITIES,
        part=state.part if "part" in reads else "", logit=state.logit if "logit" in reads else False,
    )


def missing_input(state: ViewState, kind: str) -> str | None:
    """The sentence asking for the text the task still needs, else None."""
    needs = TARGETS[kind].needs if kind in TARGETS else ""
    if needs == "question" and not state.question.strip():
        return "Type a question about the context above: question answering explains the answer it finds there."
    if needs == "pair" and not state.pair.strip():
        return "Type the second text above: next-sentence prediction asks whether it follows the first."
    return None


# -- what the model predicts ------------------------------------------------------------------------------------


def render_prediction(result: Analysis, *, key: str, x_range: tuple[float, float] | None = None) -> None:
    """The prediction as the task reads it: entities, an answer, a multi-label head's sigmoids, or the bars (on
    `x_range` where given: one axis for predictions side by side)."""
    if has_independent_scores(result):
        figure = cached.figure(result, "sigmoids", lambda: sigmoid_bars_figure(
            result.prediction, threshold=MULTI_LABEL_THRESHOLD))
        charts.plotly_chart(figure, key=key, config=share.chart_config(results.chart_name(result, "labels")))
        on = [label for label, score in zip(result.prediction.labels, result.prediction.scores)
              if score >= MULTI_LABEL_THRESHOLD]
        st.caption(markdown_escape(
            f"Each label has its own sigmoid; several may be on (above {MULTI_LABEL_THRESHOLD:g}) at once, so the "
            f"bars do not add up to 1. On here: {', '.join(on) if on else 'none'}."))
        return
    if result.model.head == "token_classification":
        render_entities(result, key=key)
    elif result.model.head == "question_answering":
        render_answer(result)
        if len(result.prediction.labels) == len(result.tokens):  # one logit per token: name them by position
            shown = replace(result.prediction, labels=[f"{i}: {t}" for i, t in enumerate(result.tokens.tokens)])
            figure = cached.figure(result, "positions", lambda: prediction_figure(shown))
            charts.plotly_chart(figure, key=key, config=share.chart_config(results.chart_name(result, "positions")))
            st.caption("The highest logits over every token, question included; the answer is the best span "
                       "inside the context.")
            return
    results.render_prediction_bars(result, key=key, x_range=x_range)


def render_entities(result: Analysis, *, key: str) -> None:
    """The predicted entities drawn over the text (a colour per type) and listed in a table."""
    spans = result.prediction.spans
    if not spans:
        st.info("The model predicts no entity in this text (every token is outside).")
        return
    marks, colours = entity_marks(result)
    st.html(marked_text_html(result.request.text, marks, title="Predicted entities", legend=colours))
    st.dataframe(
        [{"Entity": span_text(result, span), "Type": span.label,
          "Tokens": f"{span.first_token}–{span.last_token}" if span.last_token > span.first_token
          else str(span.first_token), "Score": format_score(span.score)} for span in spans],
        hide_index=True, key=f"{key}_entities",
    )
    st.caption("Score: the mean probability of the labels predicted for the entity's tokens.")


def render_answer(result: Analysis) -> None:
    """The question and the context apart, the answer span marked in the context, with its score."""
    span = answer_span(result)
    if span is None:
        return
    st.html(texts_html(result))
    st.caption(markdown_escape(f"Answer «{span_text(result, span)}», score {format_score(span.score)} "
                               "(start logit + end logit: the best span of at most 30 tokens in the context)."))


def token_picker(result: Analysis) -> None:
    """The token a token-level target explains: every predicted entity (NER) or the answer (QA), one entity, or
    any token of the text."""
    kind = result.request.target.kind if result.request.target and result.request.target.kind else (
        result.model.targets[0] if result.model.targets else "")
    if kind not in TARGETS or "token" not in TARGETS[kind].reads:
        return
    if result.request.target is not None and result.request.target.part == "span":
        return
    tokens = result.tokens.tokens
    spans = result.prediction.spans if result.model.head == "token_classification" else ()
    firsts = {span.first_token: span for span in spans}
    options = [ALL_ENTITIES, *firsts, *(i for i in range(len(tokens)) if i not in firsts and not result.tokens.special[i])]
    current = st.session_state.get(widget_key("target_token"), ALL_ENTITIES)
    if current not in options:
        options.append(current)
    everything = "All entities" if result.model.head == "token_classification" else "The predicted answer"

    def name(i: int) -> str:
        if i == ALL_ENTITIES:
            return everything
        if i in firsts:
            return f"entity {firsts[i].label} «{span_text(result, firsts[i])}»"
        return f"token {i} «{tokens[i]}»" if 0 <= i < len(tokens) else f"token {i}"

    st.selectbox("Token to explain", options, key=widget_key("target_token"), on_change=leave_saved,
                 format_func=name,
                 help="Which token's label the attributions explain: each predicted entity at its first token, or "
                      "any token of the text.")


def render_bad_token(state: ViewState) -> None:
    """After an error about the picked token: a way back to the default."""
    if state.target_token != ALL_ENTITIES:
        st.button("Explain the model's own prediction instead", key="reset_target_token",
                  on_click=lambda: (set_value("target_token", ALL_ENTITIES), leave_saved()))


# -- highlights -----------------------------------------------------------------------------------------------


def entity_analyses(result: Analysis, loaded: LoadedModel | None) -> list[tuple[str, Analysis]]:
    """(entity name, analysis) for every predicted entity, each explained at its first token (cached)."""
    out = []
    cache = cached.analysis_cache()
    for span, request in entity_requests(result)[:MAX_ENTITY_ROWS]:
        name = f"{span.label} «{span_text(result, span)}»"
        target = result.request.target
        if span == result.prediction.spans[0] and (target is None or (target.token == ALL_ENTITIES
                                                                       and not target.label)):
            out.append((name, result))  # the default request explains the first entity's predicted label
            continue
        found = cache.get(cache.key(request, result.model.spec))
        if found is None and loaded is not None:
            try:
                found = results.run_with_progress(lambda progress, r=request: cache.compute(r, loaded, progress),
                                                  f"Explaining the entity {name}")
            except ExplainError as exc:
                st.error(markdown_escape(exc))
                continue
        if found is not None:
            out.append((name, found))
    return out


def render_highlights(result: Analysis, level: str, loaded: LoadedModel | None, state: ViewState) -> None:
    """Highlights: one row per predicted entity ("All entities"), else one row per text (see results)."""
    every_entity = (result.model.head == "token_classification" and state.target_token == ALL_ENTITIES
                    and len(result.prediction.spans) > 1)
    if not every_entity:
        results.render_highlights(result, level)
        return
    rows = entity_analyses(result, loaded)
    if loaded is None:
        st.caption("A saved analysis holds the first entity only; change a setting to explain every entity.")
    for name, analysis in rows:
        pieces, scores, joined = results.pieces_and_scores(analysis, level)
        a = analysis.attribution
        st.html(token_highlights_html(list(pieces), scores, joined=joined,
                                              title=f"{name}: {analysis.prediction.description}",
                                              score_input=a.score_input, score_baseline=a.score_baseline,
                                              explained=explained_quantity(analysis)))
    more = len(result.prediction.spans) - MAX_ENTITY_ROWS
    if more > 0:
        st.caption(markdown_escape(f"{more} more entities are not explained here; pick one beside the prediction."))
    st.caption(markdown_escape(
        f"One row per predicted entity ({len(rows)}), each the attribution of its first token's predicted label, "
        "on its own colour scale. Pick one entity or token beside the prediction to see it alone."))
