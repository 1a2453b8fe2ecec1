"""Standalone HTML exports: one page per analysis, or two analyses side by side.

The pages work offline with no server: plotly.js is inlined once and every
figure after the first reuses it. All user-provided text is HTML-escaped.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from explain.attention import HEAD_STATISTICS, head_statistics, renormalise_without, rollout, token_by_layer
from explain.compare import Comparison
from explain.completeness import IG, completeness
from explain.exports import LEVELS, image_config
from explain.flow import FlowGraph
from explain.methods import METHODS, recorded_baseline
from explain.pieces import continues_word, subword_pieces
from explain.records import APP_VERSION, Analysis
from explain.tasks import MULTI_LABEL_THRESHOLD, has_independent_scores, second_segment_start, segment_rows
from explain.viz.attention import (
    attention_grid,
    attention_heatmap,
    head_statistic_figure,
    layer_distance_figure,
    rollout_figure,
    token_by_layer_figure,
)
from explain.viz.flow import flow_caption, flow_figure
from explain.viz.highlights import explained_quantity, token_highlights_html
from explain.viz.prediction import prediction_figure, prediction_range, sigmoid_bars_figure
from explain.viz.tasks import segment_highlights_html, texts_html
from explain.viz.text import evaluations_text
from explain.viz.theme import format_score

_CSS = """
body { font-family: Inter, 'Segoe UI', Helvetica, Arial, sans-serif; color: #1f2933; margin: 0;
       background: #f5f7fa; line-height: 1.5; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 12px; }
h2 { font-size: 19px; margin: 0 0 10px; }
h3 { font-size: 16px; margin: 16px 0 6px; }
section { background: #ffffff; border: 1px solid #e4e7eb; border-radius: 8px; padding: 16px 20px;
          margin: 16px 0; }
blockquote { margin: 0 0 12px; padding: 10px 14px; background: #f0f4f8; border-left: 4px solid #9fb3c8;
             white-space: pre-wrap; word-break: break-word; font-size: 16px; }
table.meta { border-collapse: collapse; font-size: 14px; }
table.meta th { text-align: left; font-weight: 600; padding: 2px 16px 2px 0; color: #52606d;
                vertical-align: top; white-space: nowrap; }
table.meta td { padding: 2px 0; word-break: break-word; }
.note { color: #52606d; font-size: 13px; }
.warn { color: #9b2c2c; }
.columns { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px; }
.columns > section { margin: 0; }
footer { color: #7b8794; font-size: 12px; margin-top: 24px; }
"""

# Added to every figure's modebar beside the camera (PNG) button; set once with Plotly.setPlotConfig before the
# first figure is drawn, so no figure's own config may name modeBarButtonsToAdd. The file is named after the div id.
_SVG_BUTTON_SCRIPT = """Plotly.setPlotConfig({modeBarButtonsToAdd: [{
  name: "downloadSvg",
  title: "Download plot as an SVG",
  icon: Plotly.Icons.disk,
  click: function (gd) { Plotly.downloadImage(gd, {format: "svg", filename: gd.id}); }
}]});"""

AGGREGATES = ("rollout", "stats", "token")
AGGREGATE_TITLES = {"rollout": "Attention rollout", "stats": "Head statistics", "token": "From one token"}
COMPARE_MODES = ("", "models", "texts")
SIDE_TEXT_CHARS = 40  # a side named by its text shows its first 40 characters, as the Compare page does


@dataclass(frozen=True)
class ReportView:
    """What the page shows, so the export shows the same: defaults are the dashboard's defaults.

    level: highlights of "word"s or "subword" tokens; layer, head: the single head shown (layer_b, head_b:
    the second side's in a comparison); hide_special: that head without [CLS]/[SEP], rows renormalised;
    aggregate: "rollout", "stats" (the head statistic `stat`) or "token" (where token number `token`
    attends, by layer); mode: how a comparison names its sides, "models" or "texts" ("" decides from the
    analyses: by text when the texts differ). Layers, heads and tokens beyond a model's range are clamped to
    its last one, as the page does.
    """

    level: str = "word"
    layer: int = 0
    head: int = 0
    hide_special: bool = False
    aggregate: str = "rollout"
    stat: str = "entropy"
    token: int = 1
    layer_b: int = 0
    head_b: int = 0
    mode: str = ""

    def __post_init__(self) -> None:
        for name, choices in (("level", LEVELS), ("aggregate", AGGREGATES), ("stat", tuple(HEAD_STATISTICS)),
                              ("mode", COMPARE_MODES)):
            value = getattr(self, name)
            if value not in choices:
                raise ValueError(f"Unknown {name} '{value}'; expected one of {', '.join(c or '(empty)' for c in choices)}.")


class _Figures:
    """Turns figures into HTML fragments (plotly.js itself is inlined once by `_page`), each under a unique id."""

    def __init__(self) -> None:
        self._ids: set[str] = set()

    def __call__(self, fig: go.Figure, name: str) -> str:
        stem = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "figure"
        div_id, n = stem, 1
        while div_id in self._ids:
            n += 1
            div_id = f"{stem}-{n}"
        self._ids.add(div_id)
        return pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=False,
            config={**image_config(div_id), "responsive": True, "showSendToCloud": False},
            default_width="100%",
            div_id=div_id,
        )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n"
        f'<script type="text/javascript">{get_plotlyjs()}</script>\n'
        f'<script type="text/javascript">{_SVG_BUTTON_SCRIPT}</script>\n'
        "</head>\n<body>\n<main>\n"
        f"{body}\n"
        f"<footer>Exported by explain-dashboard {_e(APP_VERSION)}. "
        "Works offline: plotly.js is included in this file. Save any chart as PNG (camera) or SVG (disk) from "
        "the buttons above it.</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


def _meta_table(rows: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="meta">{cells}</table>'


def _model_rows(analysis: Analysis) -> list[tuple[str, str]]:
    model, tokens, attribution = analysis.model, analysis.tokens, analysis.attribution
    n_tokens = f"{len(tokens)}"
    if tokens.truncated:
        n_tokens += f" (truncated from {tokens.n_tokens_full})"
    name = model.spec if model.spec == model.name else f"{model.spec} ({model.name})"
    return [
        ("model", name),
        ("architecture", f"{model.head}, {model.n_layers} layers x {model.n_heads} heads"),
        ("explained", analysis.prediction.description),
        (
            "method",
            f"{method_title(attribution.method)}, "
            + (f"{evaluations_text(analysis.request, attribution)}, " if attribution.method == "integrated_gradients"
               else "")
            + (f"{attribution.baseline} baseline" if recorded_baseline(attribution.method, attribution.settings)
               else "no baseline"),
        ),
        ("tokens", n_tokens),
    ] + ([("heads removed", f"{analysis.request.ablate} (outputs set to {analysis.request.ablate_mode})")]
         if analysis.request.ablate else [])


def method_title(method: str) -> str:
    """A method's own title ("LIME (words)"), or its name in words when it is not registered."""
    registered = METHODS.get(method)
    return registered.title if registered is not None else method.replace("_", " ")


def _convergence_heading(analysis: Analysis) -> str:
    return "Convergence" if analysis.attribution.method == IG else "Do the scores add up?"


def _convergence_html(analysis: Analysis) -> str:
    """The scores against the score change; the delta only where the method has one (never "nan"), named as
    integrated gradients names it only for integrated gradients."""
    a = analysis.attribution
    total = float(np.sum(a.scores))
    change = a.score_input - a.score_baseline
    relative = a.relative_delta
    verdict = completeness(analysis.request, a)
    promised = a.method == IG or math.isfinite(a.delta)
    rows = [
        ("score on the text", format_score(a.score_input)),
        ("score on the baseline", format_score(a.score_baseline)),
        ("sum of attributions", f"{format_score(total)}" + (f" (should equal {format_score(change)})" if promised
                                                            else f" (the score change is {format_score(change)})")),
    ]
    if math.isfinite(a.delta):
        share = f" ({relative:.1%} of the change)" if math.isfinite(relative) else ""
        rows.append(("convergence delta" if a.method == IG else "gap to the score change", f"{a.delta:.2e}{share}"))
    cls = "note" if verdict.ok else "note warn"
    return f'{_meta_table(rows)}<p class="{cls}">Completeness check: {_e(verdict.text)}.</p>'


def _shown_scores(analysis: Analysis, level: str) -> np.ndarray:
    return np.asarray(analysis.word_scores if level == "word" else analysis.attribution.scores, dtype=np.float64)


def _prediction_figure(analysis: Analysis, x_range: tuple[float, float] | None = None) -> go.Figure:
    """The prediction as the dashboard draws it: a multi-label head's sigmoids against their threshold, else bars
    (on `x_range` when given: both sides of a comparison share one axis)."""
    if has_independent_scores(analysis):
        return sigmoid_bars_figure(analysis.prediction, threshold=MULTI_LABEL_THRESHOLD)
    return prediction_figure(analysis.prediction, x_range=x_range)


def _texts(analysis: Analysis) -> str:
    """The text, or each text of a pair or of a question and its context apart, entities or the answer marked."""
    if len(analysis.request.texts) == 1 and not analysis.prediction.spans:
        return f"<blockquote>{_e(analysis.request.text)}</blockquote>"
    return f'<div class="texts">{texts_html(analysis)}</div>'


def _highlights(analysis: Analysis, level: str, *, scale: float | None = None) -> str:
    """Token highlights at the page's level: whole words, or the subword pieces drawn joined into words; one row
    per text when the model read two (question and context, or a pair)."""
    a = analysis.attribution
    if len(segment_rows(analysis, level)) > 1:
        return segment_highlights_html(analysis, level, scale, title="")
    explained = explained_quantity(analysis)
    if level == "word":
        return token_highlights_html(analysis.words.words, analysis.word_scores, scale=scale, title="Words",
                                     score_input=a.score_input, score_baseline=a.score_baseline, explained=explained)
    tokens = analysis.tokens.tokens
    return token_highlights_html(subword_pieces(tokens), a.scores, scale=scale, title="Tokens (as the model saw them)",
                                 joined=continues_word(tokens), score_input=a.score_input,
                                 score_baseline=a.score_baseline, explained=explained)


def _clamp(value: int, upper: int) -> int:
    return min(max(int(value), 0), max(upper - 1, 0))


def _has_attention(analysis: Analysis) -> bool:
    weights = analysis.attention.weights
    return bool(weights.ndim == 4 and weights.shape[0] and weights.shape[1]
                and weights.shape[-1] == len(analysis.tokens.tokens))


def _head_figure(analysis: Analysis, layer: int, head: int, hide_special: bool, *, title: str) -> go.Figure:
    """One head as the page draws it; without special tokens, their rows and columns go and rows renormalise."""
    weights = np.asarray(analysis.attention.weights[layer, head])
    labels = list(analysis.tokens.tokens)
    if hide_special:
        special = np.asarray(analysis.tokens.special, dtype=bool)
        weights = renormalise_without(weights, special)
        labels = [t for t, s in zip(labels, special) if not s]
        title += " (without [CLS]/[SEP], rows renormalised)"
    start = second_segment_start(analysis.tokens.segments, ~analysis.tokens.special if hide_special else None)
    return attention_heatmap(weights, labels, labels, title=title, segment_start=start)


def _aggregate_section(analysis: Analysis, view: ReportView, figure: _Figures) -> str:
    tokens = list(analysis.tokens.tokens)
    if view.aggregate == "rollout":
        chart = figure(rollout_figure(rollout(analysis.attention), tokens,
                                      segment_start=second_segment_start(analysis.tokens.segments)), "rollout")
        note = ("Rollout (Abnar &amp; Zuidema 2020): each layer's head-averaged attention plus the residual identity, "
                "renormalised and multiplied from the first layer up.")
    elif view.aggregate == "stats":
        values = head_statistics(analysis.attention, analysis.tokens.special, tokens)[view.stat]
        chart = figure(head_statistic_figure(values, name=view.stat, colorbar_title=view.stat), f"head-{view.stat}")
        note = f"{_e(view.stat)}: {_e(HEAD_STATISTICS[view.stat])}, per layer and head."
    else:
        token = _clamp(view.token, len(tokens))
        chart = figure(token_by_layer_figure(token_by_layer(analysis.attention, token), tokens,
                                             source_label=tokens[token],
                                             segment_start=second_segment_start(analysis.tokens.segments)),
                       "token-by-layer")
        note = f"Where token {token} attends in every layer, heads averaged."
    return f"<h3>{_e(AGGREGATE_TITLES[view.aggregate])}</h3>{chart}<p class=\"note\">{note}</p>"


def standalone_html(analysis: Analysis, *, title: str | None = None, view: ReportView = ReportView(),
                    flow: FlowGraph | None = None) -> str:
    """A complete offline HTML page for one analysis, showing what the dashboard shows in `view`.

    Args:
        analysis: the result to show.
        title: page title; defaults to one built from the text.
        view: the level, head, and aggregate view to show (the dashboard's current choices).
        flow: the information-flow graph the page shows (explain.flow), traced from this analysis's text.

    Returns:
        The page: text, model, prediction, highlights at the view's level, convergence, the view's
        attention head and aggregate view, the all-heads grid, and the information flow when given.
    """
    if flow is not None and flow.tokens != tuple(analysis.tokens.tokens):
        raise ValueError("The information-flow graph was traced from other tokens than the analysis's.")
    text = analysis.request.text
    if title is None:
        short = text if len(text) <= 60 else text[:57] + "..."
        title = f"Explanation of “{short}”"
    figure = _Figures()
    level_note = "whole words" if view.level == "word" else "subword tokens, as the model saw them"
    parts = [
        f"<h1>{_e(title)}</h1>",
        f"<section><h2>Text</h2>{_texts(analysis)}{_meta_table(_model_rows(analysis))}</section>",
        f"<section><h2>Prediction</h2>{figure(_prediction_figure(analysis), 'prediction')}</section>",
        "<section><h2>Which tokens pushed the score</h2>"
        f'<p class="note">{_e(method_title(analysis.attribution.method))}: attribution of '
        f"{_e(analysis.prediction.description)} over {level_note}; hover a piece for its value.</p>"
        f"{_highlights(analysis, view.level)}<h3>{_convergence_heading(analysis)}</h3>"
        f"{_convergence_html(analysis)}</section>",
    ]
    if _has_attention(analysis):
        layer = _clamp(view.layer, analysis.attention.weights.shape[0])
        head = _clamp(view.head, analysis.attention.weights.shape[1])
        head_chart = _head_figure(analysis, layer, head, view.hide_special, title=f"Layer {layer}, head {head}")
        parts.append(
            "<section><h2>Attention</h2>"
            f"{figure(head_chart, f'attention-layer-{layer}-head-{head}')}"
            f"{_aggregate_section(analysis, view, figure)}"
            "<h3>All layers and heads</h3>"
            '<p class="note">Each thumbnail is one head (rows: from, columns: to), downsampled, all on the same '
            "0–1 colour scale as the other maps.</p>"
            f"{figure(attention_grid(analysis.attention.weights), 'all-heads')}</section>"
        )
    if flow is not None:
        parts.append("<section><h2>Information flow (ALTI)</h2>"
                     f"{figure(flow_figure(flow), 'information-flow')}"
                     f'<p class="note">{_e(flow_caption(flow))}</p></section>')
    return _page(title, "\n".join(parts))


def side_names(left: Analysis, right: Analysis, mode: str = "") -> tuple[str, str]:
    """What a comparison calls its two sides: each model's name, or each «text» when comparing texts.

    `mode` is "models", "texts" or "" (by text when the two texts differ, else by model).
    """
    by_text = mode == "texts" or (mode == "" and left.request.text != right.request.text)
    if by_text:
        return f"«{left.request.text[:SIDE_TEXT_CHARS]}»", f"«{right.request.text[:SIDE_TEXT_CHARS]}»"
    left_name, right_name = (f"{a.model.spec} without heads {a.request.ablate}" if a.request.ablate else a.model.spec
                             for a in (left, right))
    return left_name, right_name


def _column(analysis: Analysis, name: str, layer: int, head: int, level: str, scale: float,
            figure: _Figures, side: str, x_range: tuple[float, float]) -> str:
    attention = ""
    if _has_attention(analysis):
        layer = _clamp(layer, analysis.attention.weights.shape[0])
        head = _clamp(head, analysis.attention.weights.shape[1])
        chart = _head_figure(analysis, layer, head, False, title=f"{name}: layer {layer}, head {head}")
        chart.update_traces(zmin=0.0, zmax=1.0)  # both sides on one absolute scale
        attention = (f"<h3>Attention</h3>{figure(chart, f'{side}-attention-layer-{layer}-head-{head}')}")
    return (
        f"<section><h2>{_e(name)}</h2>{_meta_table(_model_rows(analysis))}"
        f"<h3>Prediction</h3>{figure(_prediction_figure(analysis, x_range), f'{side}-prediction')}"
        f"<h3>Attribution</h3>{_highlights(analysis, level, scale=scale)}"
        f"<h3>{_convergence_heading(analysis)}</h3>{_convergence_html(analysis)}{attention}</section>"
    )


def _shared_words_section(comparison: Comparison, names: tuple[str, str], figure: _Figures) -> str:
    """Both rollouts on the shared words (one absolute scale) and the per-layer attention distance."""
    charts = []
    for name, matrix, side in ((names[0], comparison.rollout_left, "left"),
                               (names[1], comparison.rollout_right, "right")):
        chart = attention_heatmap(matrix, comparison.words, comparison.words, title=f"Rollout, {name}",
                                  colorbar_title="rollout")
        chart.update_traces(zmin=0.0, zmax=1.0)
        charts.append(f"<section>{figure(chart, f'{side}-rollout')}</section>")
    distance = layer_distance_figure(comparison.layer_distance, label_a=names[0], label_b=names[1])
    return (
        "<section><h2>Attention on the shared words</h2>"
        f'<div class="columns">{"".join(charts)}</div>{figure(distance, "attention-distance")}'
        '<p class="note">Per layer: Jensen-Shannon distance between the two sides\' head-averaged attention over '
        "the shared words, averaged over words. 0: they attend alike; 1: they attend to disjoint words.</p>"
        "</section>"
    )


def comparison_html(left: Analysis, right: Analysis, *, view: ReportView = ReportView(),
                    comparison: Comparison | None = None, extra_sections: Sequence[tuple[str, str]] = ()) -> str:
    """A complete offline HTML page with two analyses side by side, showing what the Compare page shows.

    Both sides' highlights share one colour scale (the largest |score| of either side) and both attention
    heatmaps one absolute scale (0 to 1), so equal colours mean equal values.

    Args:
        left: first analysis.
        right: second analysis.
        view: the highlight level, each side's head (layer, head; layer_b, head_b) and how sides are named.
        comparison: the two brought onto their shared words (`explain.compare.compare_analyses`); when given,
            both rollouts on those words and the per-layer attention distance are shown too.
        extra_sections: (heading, html_fragment) pairs appended below; headings are
            escaped, fragments are inserted as given and must already be safe HTML.
    """
    figure = _Figures()
    name_left, name_right = side_names(left, right, view.mode)
    if left.request.texts == right.request.texts and len(left.request.texts) > 1:
        texts = _texts(left)
    elif left.request.text == right.request.text:
        texts = f"<blockquote>{_e(left.request.text)}</blockquote>"
    else:
        texts = (
            f"<h3>{_e(name_left)}</h3><blockquote>{_e(left.request.text)}</blockquote>"
            f"<h3>{_e(name_right)}</h3><blockquote>{_e(right.request.text)}</blockquote>"
        )
    title = f"Comparison: {name_left} vs {name_right}"
    if name_left != left.model.spec and left.model.spec == right.model.spec:
        title += f" ({left.model.spec})"
    shown = np.abs(np.concatenate([_shown_scores(left, view.level), _shown_scores(right, view.level)]))
    shown = shown[np.isfinite(shown)]
    scale = float(shown.max()) if shown.size else 0.0
    axis = prediction_range(left.prediction, right.prediction)
    parts = [
        f"<h1>{_e(title)}</h1>",
        f"<section><h2>Text</h2>{texts}</section>",
        '<p class="note">Both sides use one colour scale, so equal colours mean equal scores.</p>',
        '<div class="columns">'
        f"{_column(left, name_left, view.layer, view.head, view.level, scale, figure, 'left', axis)}"
        f"{_column(right, name_right, view.layer_b, view.head_b, view.level, scale, figure, 'right', axis)}</div>",
    ]
    if comparison is not None:
        parts.append(_shared_words_section(comparison, (name_left, name_right), figure))
    for heading, fragment in extra_sections:
        parts.append(f"<section><h2>{_e(heading)}</h2>{fragment}</section>")
    return _page(title, "\n".join(parts))
