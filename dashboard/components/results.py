"""Render functions: one analysis -> prediction, token highlights, attention views."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable

import streamlit as st

from dashboard import cached
from dashboard.components import charts, head_zoom, share
from dashboard.components.ablation import removed_heads
from dashboard.components.score_table import score_table
from dashboard.components.selection import grid_cell_from_selection
from dashboard.components.text import markdown_escape
from dashboard.components.url_state import leave_saved, set_value, widget_key
from dashboard.state import REQUEST_SETTING_FIELDS
from explain import Analysis, TokenAttribution, head_statistics, rollout, token_by_layer
from explain.attention import HEAD_STATISTICS, renormalise_without
from explain.completeness import Remedy, completeness, split_quantity, split_sentence
from explain.exports import chart_filename, model_short_name
from explain.methods import METHODS
from explain.pieces import continues_word, subword_pieces
from explain.tasks import second_segment_start, segment_rows
from explain.viz.attention import (
    attention_grid,
    attention_heatmap,
    head_statistic_figure,
    mark_head,
    mark_removed_heads,
    rollout_figure,
    token_by_layer_figure,
)
from explain.viz.highlights import explained_quantity, negligible_change, token_highlights_html
from explain.viz.prediction import prediction_bars_html
from explain.viz.tasks import segment_highlights_html
from explain.viz.theme import format_score


def run_with_progress(compute, label: str):
    """Run `compute(progress)` inside a status box with a progress bar naming the current step
    (or, with fraction None, the place in the model's queue).

    The box disappears once the result is there; errors are shown by the caller (the box stays). The label
    and the stages are shown as text: a status label and a progress text render Markdown, and the label names a
    model a link chose.
    """
    slot = st.empty()
    with slot.container(), st.status(markdown_escape(label), expanded=True):
        bar = st.progress(0.0, text="starting")

        def progress(stage: str, fraction: float | None) -> None:
            if fraction is None:  # waiting for a turn on the model: the stage says where in the queue
                bar.progress(0.0, text=markdown_escape(stage))
            else:
                bar.progress(min(max(fraction, 0.0), 1.0), text=markdown_escape(f"{stage} — {fraction:.0%}"))

        result = compute(progress)
    slot.empty()
    return result


def clamp_view(name: str, upper: int, what: str) -> None:
    """Keep a layer/head/token choice inside this model's range, saying so when a link asked for more."""
    key = widget_key(name)
    value = st.session_state.get(key, 0)
    if not isinstance(value, int) or not 0 <= value < upper:
        st.session_state[key] = 0 if not isinstance(value, int) or value < 0 else upper - 1
        st.info(markdown_escape(f"The {what} {value} does not exist in this model (it has {upper}); showing "
                                f"{what} {st.session_state[key]}."))


def pieces_and_scores(result: Analysis, level: str):
    """(pieces, scores, joined flags or None) of the highlights at the word or subword level."""
    if level == "word":
        return result.words.words, result.word_scores, None
    tokens = result.tokens.tokens
    return subword_pieces(tokens), result.attribution.scores, continues_word(tokens)


def chart_name(result: Analysis, what: str, *details: object) -> str:
    """A chart's download name: what it shows, the model, then the details (layer, head, token...)."""
    return chart_filename(what, model_short_name(result.model.spec), *details)


def render_prediction_bars(result: Analysis, *, key: str, x_range: tuple[float, float] | None = None) -> None:
    """The prediction's bars as HTML with the scores as text: no chart for the page to load and draw; `x_range`
    puts bars shown side by side on one axis (`prediction_range`)."""
    with st.container(key=key):
        st.html(prediction_bars_html(result.prediction, x_range=x_range))


def render_highlights(result: Analysis, level: str, *, scale: float | None = None, table: bool = True,
                      table_key: str = "score_table") -> None:
    """Token highlights with the convergence delta and truncation notice beside them; `table` adds their scores
    as a table in an expander keyed `table_key` (off where the highlights sit in an expander already: expanders do
    not nest).

    A sentence beside the highlights says when they would mislead (a score that barely changes from the
    baseline, or a baseline that already scores higher than the text; see `attribution_note`).
    """
    a = result.attribution
    rows = segment_rows(result, level)
    if len(rows) == 1:
        pieces, scores, joined = pieces_and_scores(result, level)
        st.html(token_highlights_html(list(pieces), scores, scale=scale, joined=joined,
                                              title=f"Attribution to {result.prediction.description}",
                                              score_input=a.score_input, score_baseline=a.score_baseline,
                                              explained=explained_quantity(result)))
        if table:
            score_table(list(pieces), scores, explained_quantity(result), level=level, key=table_key)
    else:
        st.html(segment_highlights_html(result, level, scale))
    fmt = format_score
    if split_quantity(result):
        st.caption(markdown_escape(f"{split_sentence(result)}; delta {a.delta:+.2g}."))
    else:
        st.caption(markdown_escape(
            f"{_method_text(result)} Score {fmt(a.score_input)} on the text, {fmt(a.score_baseline)} on the baseline; "
            f"the attributions add up to {fmt(float(a.scores.sum()))}"
            + (f" (convergence delta {a.delta:+.2g})." if math.isfinite(a.delta) else
               " (this method does not promise that they add up to the score change).")
        ))
    verdict = completeness(result.request, a)
    if not verdict.ok and not negligible_change(a.score_input, a.score_baseline):
        st.warning(markdown_escape(verdict.text[:1].upper() + verdict.text[1:] + "."))
        if verdict.remedy is not None:
            st.button(verdict.remedy.label, on_click=apply_remedy, args=(verdict.remedy,), icon=":material/tune:",
                      key="remedy-" + hashlib.sha1(repr(result.request).encode()).hexdigest()[:12],
                      help="Sets the integration in the sidebar to this and analyses again.")
    for notice in result.notices:
        st.warning(markdown_escape(notice))
    if result.tokens.truncated:
        if not result.notices:  # saved before analyses carried their notices
            st.warning(f"The text is longer than the token limit: only the first {len(result.tokens)} of "
                       f"{result.tokens.n_tokens_full} tokens were analysed.")
        st.caption(f"Raise the token limit (up to {result.model.max_tokens} for this model) to analyse more of it.")


def apply_remedy(remedy: Remedy) -> None:
    """Set the sidebar's integration controls to the remedy's request fields (fast mode off: it picks its own)."""
    for field, value in remedy.changes:
        set_value(REQUEST_SETTING_FIELDS[field], value)
    if any(field != "n_steps" for field, _ in remedy.changes):
        set_value("fast", False)
    leave_saved()


def _method_text(result: Analysis) -> str:
    """How the attributions were integrated, in words: fixed steps, or whether adaptive integration or fast mode met
    its tolerance."""
    a: TokenAttribution = result.attribution
    baseline = f"a {a.baseline} baseline"
    if a.method != "integrated_gradients":
        method = METHODS.get(a.method)
        title = method.title if method is not None else a.method
        settings = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(a.settings.items()))
        return f"{title}{f' ({settings})' if settings else ''}, from {baseline}."
    if a.tolerance is None:
        return f"Integrated gradients: {a.n_steps} steps from {baseline}" + (
            " in bfloat16." if a.precision == "bf16" else ".")
    if result.request.integration == "adaptive_simpson":
        cap = result.request.n_steps
        delta = result.request.delta_tolerance
        if a.converged:
            return (f"Adaptive integrated gradients: {a.n_steps} model evaluations (the slider allows up to {cap}), "
                    f"stopped once every token's estimated error was within {a.tolerance:.1%} of the largest "
                    f"attribution" + (f" and the convergence delta within {delta:.0%} of the score change"
                                      if delta is not None else "") + f", integrating from {baseline}.")
        return (f"Adaptive integrated gradients used all {a.n_steps} model evaluations the cap of {cap} allows "
                f"before the attributions settled within {a.tolerance:.1%}"
                + (f" and the convergence delta within {delta:.0%}" if delta is not None else "")
                + f"; raise the cap for exact numbers. Integrated from {baseline}.")
    mode = "Fast mode" + (" (bfloat16, adaptive steps)" if a.precision == "bf16" else " (adaptive steps)")
    cap = result.request.n_steps
    evaluations = f"{a.n_steps} model evaluations"
    change = abs(a.score_input - a.score_baseline)
    if a.converged and abs(a.delta) <= a.tolerance * change:
        return (f"{mode} met its tolerance: the attributions add up to the score change within {a.tolerance:.0%} "
                f"after {evaluations} (the steps slider allows up to {cap}), integrating from {baseline}.")
    if a.converged:
        return (f"{mode} stopped after {evaluations} (the steps slider allows up to {cap}): the score change is "
                f"so small that float32 rounding, not the number of steps, limits how closely the attributions "
                f"add up to it, integrating from {baseline}.")
    return (f"{mode} did not meet its tolerance: after {evaluations}, the most the cap of {cap} steps allows, the "
            f"attributions still miss the score change by more than {a.tolerance:.0%}; raise the steps for "
            f"exact numbers. Integrated from {baseline}.")


def _head_matrix(result: Analysis, layer: int, head: int, hide_special: bool):
    weights = result.attention.weights[layer, head]
    labels = list(result.tokens.tokens)
    positions = list(range(len(labels)))
    if hide_special:
        special = result.tokens.special
        weights = renormalise_without(weights, special)
        labels = [t for t, s in zip(labels, special) if not s]
        positions = [p for p, s in zip(positions, special) if not s]
    return weights, labels, positions


def segment_start(result: Analysis, hide_special: bool = False) -> int | None:
    """Where the second text starts on the map's token axis (None for one text)."""
    return second_segment_start(result.tokens.segments, ~result.tokens.special if hide_special else None)


def _head_figure(result: Analysis, layer: int, head: int, hide_special: bool, stretch: bool,
                 span: tuple[int, int] | None = None):
    weights, labels, positions = _head_matrix(result, layer, head, hide_special)
    title = f"Layer {layer}, head {head}" + (f", tokens {span[0]}–{span[1]}" if span else "") + (
        " (without [CLS]/[SEP], rows renormalised)" if hide_special else "")
    if (layer, head) in removed_heads(result):
        title += " — removed: the model computes this map, its output is not used"
    return attention_heatmap(weights, labels, labels, title=title, stretch=stretch,
                             segment_start=segment_start(result, hide_special), positions=positions, span=span)


def render_head(result: Analysis, layer: int, head: int, hide_special: bool, *, key: str,
                stretch: bool = False, zoom: bool = False) -> None:
    """One head's map at its own (square) size; `stretch` colours it to its own maximum instead of 0–1.

    zoom: draw the page's "Tokens shown" span control and, for a pale map, the offer to stretch (head_zoom).
    """
    span = head_zoom.span_control(*_head_matrix(result, layer, head, hide_special)[1:]) if zoom else None
    figure = cached.figure(result, ("head", layer, head, hide_special, stretch, span),
                           lambda: _head_figure(result, layer, head, hide_special, stretch, span))
    if zoom:
        head_zoom.stretch_offer(figure, key=f"{key}_stretch")
    charts.plotly_chart(figure, key=key, width="content", config=share.chart_config(chart_name(
        result, "attention", f"layer {layer}", f"head {head}", f"tokens {span[0]}-{span[1]}" if span else "",
        "without special tokens" if hide_special else "")))
    if (layer, head) in removed_heads(result):
        st.caption(f"Head {layer}:{head} is removed in this analysis: its attention is still computed by the model "
                   "(the gate acts on the head's output), but nothing it outputs reaches the later layers.")


def _on_grid_select(chart_key: str, layer_name: str, head_name: str, shape: tuple[int, int],
                    on_pick: Callable[[], None] | None) -> None:
    cell = grid_cell_from_selection(st.session_state.get(chart_key) or {}, shape)
    if cell is not None:
        set_value(layer_name, int(cell[0]))
        set_value(head_name, int(cell[1]))
        if on_pick is not None:
            on_pick()


def marked_figure(result: Analysis, view: tuple, layer: int, head: int, build):
    """The layers x heads figure of `view` with (layer, head) outlined: built once, then marked on a copy.

    Heads the analysis ran without are greyed, crossed and labelled "removed" (their maps are still computed).
    """
    removed = removed_heads(result)

    def build_marked():
        figure = build()
        return mark_removed_heads(figure, removed) if removed else figure

    return cached.figure(result, (*view, "marked", layer, head),
                         lambda: mark_head(cached.figure(result, view, build_marked), layer, head))


def render_grid(result: Analysis, *, key: str, layer: int = 0, head: int = 0, stretch: bool = False,
                layer_name: str = "layer", head_name: str = "head", on_pick: Callable[[], None] | None = None) -> None:
    """All layers x heads thumbnails, the shown head outlined; clicking one opens that head in the single-head view
    (then calls `on_pick`, e.g. to bring that view into sight)."""
    figure = marked_figure(result, ("grid", stretch), layer, head,
                           lambda: attention_grid(result.attention.weights, stretch=stretch))
    charts.plotly_chart(
        figure,
        key=key,
        on_select=lambda: _on_grid_select(key, layer_name, head_name, result.attention.weights.shape[:2], on_pick),
        selection_mode="points",
        config=share.chart_config(chart_name(result, "all heads", "stretched" if stretch else "")),
        width="content",
    )
    scale = "each scaled to its own maximum" if stretch else "all on the same 0–1 scale as the other maps"
    st.caption(f"Each thumbnail is one head (rows: layers, columns: heads), {scale}; long texts are shown in blocks "
               f"of neighbouring tokens. The outlined head is the one shown above: click a thumbnail to open it."
               + (" Crossed-out thumbnails are the removed heads: the model still computes their attention, but "
                  "their output is not used." if removed_heads(result) else ""))


AGGREGATE_NAMES = {"rollout": "Attention rollout", "stats": "Head statistics", "token": "From one token"}


def render_aggregates(result: Analysis, *, key: str, layer: int = 0, head: int = 0, stretch: bool = False) -> None:
    """One aggregate view at a time (only the chosen chart is drawn), chosen by a control kept in the URL.

    The head-statistics map outlines (layer, head); `stretch` as for the single-head map.
    """
    tokens = list(result.tokens.tokens)
    view = st.segmented_control("Aggregate view", list(AGGREGATE_NAMES), key=widget_key("aggregate"),
                                required=True, format_func=AGGREGATE_NAMES.get, label_visibility="collapsed")
    if view == "rollout":
        figure = cached.figure(result, ("rollout", stretch),
                               lambda: rollout_figure(rollout(result.attention), tokens, stretch=stretch,
                                                                     segment_start=segment_start(result)))
        charts.plotly_chart(figure, key=f"{key}_rollout", config=share.chart_config(chart_name(result, "rollout")),
                        width="content")
        if segment_start(result) is not None:
            st.caption("The dashed lines mark where the second text starts.")
        st.caption("Rollout (Abnar & Zuidema 2020): each layer's head-averaged attention plus the residual "
                   "identity, renormalised and multiplied from the first layer up — how much each token's final "
                   "representation draws on each input token.")
    elif view == "stats":
        stat = st.selectbox("Statistic", list(HEAD_STATISTICS), key=widget_key("stat"),
                            format_func=lambda s: f"{s} — {HEAD_STATISTICS[s]}")
        figure = marked_figure(result, ("stats", stat), layer, head, lambda: head_statistic_figure(
            head_statistics(result.attention, result.tokens.special, tokens)[stat], name=stat, colorbar_title=stat))
        charts.plotly_chart(figure, key=f"{key}_stat", config=share.chart_config(chart_name(result, "heads", stat)))
    else:
        clamp_view("token", len(tokens), "token")
        token = st.selectbox("Token", list(range(len(tokens))), key=widget_key("token"),
                             format_func=lambda i: f"{i}: {tokens[i]}")
        figure = cached.figure(result, ("token", token, stretch), lambda: token_by_layer_figure(
            token_by_layer(result.attention, token), tokens, source_label=tokens[token], stretch=stretch,
            segment_start=segment_start(result)))
        charts.plotly_chart(figure, key=f"{key}_token", config=share.chart_config(
            chart_name(result, f"token {token}", tokens[token], "by layer")))
