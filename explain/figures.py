"""Plotly figures and token-highlight HTML built from result records and numpy arrays.

Everything here is a pure function: no model code, no Streamlit. Token strings are
user text, so they are HTML-escaped wherever Plotly or a browser would interpret
markup (tick labels, hover text, titles, highlight spans).
"""

from __future__ import annotations

import html
import math
import textwrap
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale

from explain.analysis import FIXED_INTEGRATION, AnalysisRequest, Prediction, TokenAttribution

TEMPLATE = "plotly_white"
FONT_SIZE = 13
FONT = dict(family="Inter, 'Segoe UI', Helvetica, Arial, sans-serif", size=FONT_SIZE, color="#1f2933")
ATTENTION_SCALE = "Blues"
STATISTIC_SCALE = "Viridis"
GRID_GAP_COLOUR = "#aab4bf"
HIGHLIGHT_COLOUR = "#d9480f"  # the explained label
OTHER_COLOUR = "#9aa5b1"
POSITIVE_LINE = "#2f6fae"  # a multi-label head's labels that are on
NEGATIVE_RGB = (178, 24, 43)  # RdBu ends: red lowers the score
POSITIVE_RGB = (33, 102, 172)  # blue raises it
MAX_PREDICTION_BARS = 10
MAX_HOVER_TEXT_CELLS = 256 * 256  # above this, hover names positions, not tokens
# Explained scores are probabilities or cosine similarities (scale 1): a change below this share of the score's
# scale is too small to explain, and the highlights' colour scale never resolves finer than it.
NEGLIGIBLE_CHANGE = 1e-3
TITLE_FONT_SIZE = 15
TITLE_LINE_PX = 20
PREDICTION_TITLE_CHARS = 44  # the prediction chart sits in a narrow column (about 420 px)
HEATMAP_MIN_SIDE = 240  # px of the single-head map's square plot area
HEATMAP_MAX_SIDE = 640
HEATMAP_PX_PER_TOKEN = 12
HEATMAP_TICK_FONT = 10  # the smallest tick label drawn: fewer labels (every k-th) rather than smaller ones
GRID_PLOT_WIDTH = 760  # px of the all-heads mosaic, unless its height would pass GRID_MAX_PLOT_HEIGHT
GRID_MAX_PLOT_HEIGHT = 760
SEGMENT_LINE = dict(color="#d9480f", width=1.5, dash="dash")  # where the second text starts in attention maps
# One colour per entity type, in the order the types occur (Okabe-Ito-like, light enough for dark text).
ENTITY_COLOURS = ("#a5d8ff", "#ffd8a8", "#b2f2bb", "#eebefa", "#ffec99", "#99e9f2", "#ffc9c9", "#d0bfff")
ANSWER_COLOUR = "#ffe066"
THRESHOLD_COLOUR = "#52606d"
HEAD_CELLS = "head_cells"  # layout.meta key of layers x heads figures: where each head's cell is (see mark_head)
_SPECIAL_PIECES = {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "<s>", "</s>", "<pad>", "<mask>", "<unk>"}


# -- small helpers -------------------------------------------------------------


def _esc(text: Any) -> str:
    """Escape text for Plotly's pseudo-HTML (tick labels, hover, titles)."""
    return html.escape(str(text), quote=False)


def format_score(value: float) -> str:
    """A score for people: 4 significant digits ("0.1234", "2e-05", "1.235e+04"), never "0.0000" for 2e-5."""
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    return f"{value:.4g}"


def wrap_title(text: str, max_chars: int) -> str:
    """Plain text broken into lines of at most `max_chars` at word boundaries, escaped, joined by <br>."""
    lines = textwrap.wrap(str(text), width=max(8, int(max_chars)), break_long_words=True, break_on_hyphens=False)
    return "<br>".join(_esc(line) for line in lines)


def _clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _layout(
    fig: go.Figure, *, title: str, height: int, margin: Mapping[str, float] | None = None, **kwargs: Any
) -> go.Figure:
    """Shared layout: template, fonts, margins that leave room for tick labels.

    `title` is escaped already and may hold <br> line breaks (see `wrap_title`): the top
    margin grows by a line for each. `margin` should already fit the tick labels (see
    `_label_margin`): axes keep automargin as a safety net, but when the margins fit,
    Plotly draws the figure once instead of measuring the labels and drawing it again.
    """
    lines = title.count("<br>") + 1 if title else 0
    fig.update_layout(
        template=TEMPLATE,
        font=FONT,
        title=dict(text=title, x=0.0, xanchor="left", font=dict(size=TITLE_FONT_SIZE)),
        height=int(height),
        margin={"l": 10, "r": 10, "t": 40 + TITLE_LINE_PX * lines if title else 30, "b": 10, **(margin or {})},
        hoverlabel=dict(font=dict(family=FONT["family"], size=13)),
        **kwargs,
    )
    return fig


_CHAR_WIDTH = 0.62  # of the font size: a little wider than the average glyph of FONT, so estimates err large
_AXIS_TITLE_PX = 40


def _label_margin(labels: Sequence[str], size: float, *, tilt: float = 90.0, title: bool = True) -> int:
    """Pixels that tick labels (plus the axis title) take away from the plot, measured across the axis.

    `tilt` is the angle in degrees between the labels' text and the axis: 90 for horizontal labels on a y axis,
    0 for horizontal labels on an x axis, 60 for x labels at tickangle -60.
    """
    longest = max((len(str(t)) for t in labels), default=0) * _CHAR_WIDTH * size
    angle = math.radians(tilt)
    across = longest * math.sin(angle) + 1.3 * size * math.cos(angle)
    return int(math.ceil(across + 12 + (_AXIS_TITLE_PX if title else 0)))


def _tick_font_size(n: int, length_px: float, *, smallest: int = 8) -> tuple[int, int]:
    """(font size, label every k-th tick) so that n tick labels fit in length_px, none smaller than `smallest`."""
    per_tick = length_px / max(n, 1)
    size = int(_clip(per_tick * 0.8, smallest, 12))
    step = max(1, math.ceil(size * 1.15 / max(per_tick, 1e-9)))
    return size, step


def _layer_axis(n_layers: int) -> dict[str, Any]:
    """Layers 0..n-1 top to bottom."""
    return dict(title=dict(text="layer"), tickmode="array", tickvals=list(range(n_layers)), showgrid=False,
                zeroline=False, range=[n_layers - 0.5, -0.5], automargin=True)


def _token_axis(labels: Sequence[str], *, step: int = 1) -> dict[str, Any]:
    """Numeric axis 0..n-1 labelled with (escaped) tokens, so repeated tokens stay separate."""
    n = len(labels)
    vals = list(range(0, n, step))
    return dict(
        tickmode="array",
        tickvals=vals,
        ticktext=[_esc(labels[i]) for i in vals],
        range=[-0.5, n - 0.5],
        showgrid=False,
        zeroline=False,
        automargin=True,
    )


# -- prediction ----------------------------------------------------------------


def prediction_figure(prediction: Prediction) -> go.Figure:
    """Horizontal bars of the scores per label (top 10), the explained label highlighted.

    Args:
        prediction: the model's scores; `explained_index` marks the label being explained.

    Returns:
        A bar figure, best label on top; the explained label is kept even when outside the top 10. A long
        description wraps onto more title lines (the chart sits in a narrow column) instead of being cut.
    """
    scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1)
    order = [int(i) for i in np.argsort(-scores, kind="stable")[:MAX_PREDICTION_BARS]]
    explained = int(prediction.explained_index)
    if 0 <= explained < len(scores) and explained not in order:
        order[-1] = explained
        order.sort(key=lambda i: -scores[i])
    labels = [_esc(prediction.labels[i]) if i < len(prediction.labels) else str(i) for i in order]
    values = scores[order].astype(np.float32)
    colours = [HIGHLIGHT_COLOUR if i == explained else OTHER_COLOUR for i in order]
    y = np.arange(len(order), dtype=np.int32)
    fig = go.Figure(
        go.Bar(
            x=values,
            y=y,
            orientation="h",
            marker=dict(color=colours),
            text=[f"{v:.3g}" for v in values],
            textposition="auto",
            customdata=labels,
            hovertemplate="%{customdata}: %{x:.6g}<extra></extra>",
        )
    )
    name = _esc(prediction.score_name)
    title = wrap_title(prediction.description, PREDICTION_TITLE_CHARS)
    extra_lines = title.count("<br>")
    _layout(
        fig, title=title, height=int(_clip(130 + 34 * len(order), 220, 500)) + TITLE_LINE_PX * extra_lines,
        showlegend=False,
        margin=dict(l=_label_margin(labels, FONT_SIZE, title=False), b=_label_margin(["0"], FONT_SIZE, tilt=0)),
    )
    fig.update_xaxes(title=dict(text=name), automargin=True, zeroline=True, zerolinecolor="#cbd2d9")
    fig.update_yaxes(
        tickmode="array",
        tickvals=y,
        ticktext=[f"<b>{label}</b>" if i == explained else label for label, i in zip(labels, order)],
        autorange="reversed",
        automargin=True,
        showgrid=False,
    )
    return fig


def sigmoid_bars_figure(prediction: Prediction, *, threshold: float = 0.5) -> go.Figure:
    """A multi-label head's scores: every label's own sigmoid as a bar (0-1), the threshold marked.

    Each label is on when its sigmoid passes `threshold`; several may be on at once, so the bars do not
    add up to 1 and every label is drawn (not only the top ones), in the head's order.
    """
    scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1)
    explained = int(prediction.explained_index)
    labels = [_esc(label) for label in prediction.labels]
    on = scores >= threshold
    colours = [HIGHLIGHT_COLOUR if i == explained else (POSITIVE_LINE if on[i] else OTHER_COLOUR)
               for i in range(len(scores))]
    y = np.arange(len(scores), dtype=np.int32)
    fig = go.Figure(go.Bar(
        x=scores.astype(np.float32), y=y, orientation="h", marker=dict(color=colours),
        text=[f"{v:.3g}" + (" (on)" if o else "") for v, o in zip(scores, on)], textposition="outside",
        cliponaxis=False, customdata=labels, hovertemplate="%{customdata}: %{x:.6g}<extra></extra>",
    ))
    fig.add_vline(x=threshold, line=dict(color=THRESHOLD_COLOUR, width=1.5, dash="dash"),
                  annotation_text=f"threshold {threshold:g}", annotation_position="top",
                  annotation_font=dict(size=11, color=THRESHOLD_COLOUR))
    title = wrap_title(prediction.description, PREDICTION_TITLE_CHARS)
    _layout(
        fig, title=title, height=int(_clip(150 + 34 * len(scores), 240, 560)) + TITLE_LINE_PX * title.count("<br>"),
        showlegend=False,
        margin=dict(l=_label_margin(labels, FONT_SIZE, title=False), b=_label_margin(["0"], FONT_SIZE, tilt=0),
                    r=_label_margin(["0.999 (on)"], FONT_SIZE, title=False)),
    )
    fig.update_xaxes(title=dict(text="sigmoid of each label"), range=[0, 1.0], automargin=True)
    fig.update_yaxes(tickmode="array", tickvals=y,
                     ticktext=[f"<b>{label}</b>" if i == explained else label for i, label in enumerate(labels)],
                     autorange="reversed", automargin=True, showgrid=False)
    return fig


# -- token highlights ----------------------------------------------------------


def subword_pieces(tokens: list[str]) -> list[str]:
    """Tokenizer pieces as people read them: "##ing" -> "ing", "▁word"/"Ġword" -> "word".

    Special tokens such as [CLS] and [SEP] are kept as they are.
    """
    pieces = []
    for token in tokens:
        token = str(token)
        if token in _SPECIAL_PIECES:
            pieces.append(token)
        elif token.startswith("##") and len(token) > 2:
            pieces.append(token[2:])
        elif token[:1] in ("▁", "Ġ") and len(token) > 1:
            pieces.append(token[1:])
        else:
            pieces.append(token)
    return pieces


def continues_word(tokens: Sequence[str]) -> list[bool]:
    """For each tokenizer piece, whether it continues the word of the piece before it.

    WordPiece marks continuations ("##ing"); SentencePiece ("▁word") and byte-level BPE ("Ġword") mark word
    starts instead, so there a piece without the mark continues the word before it. Special tokens neither
    continue nor are continued.
    """
    tokens = [str(t) for t in tokens]
    marks_starts = any(t[:1] in ("▁", "Ġ") and len(t) > 1 for t in tokens)
    out = []
    for i, token in enumerate(tokens):
        if token in _SPECIAL_PIECES or i == 0 or tokens[i - 1] in _SPECIAL_PIECES:
            out.append(False)
        elif marks_starts:
            out.append(token[:1] not in ("▁", "Ġ"))
        else:
            out.append(token.startswith("##") and len(token) > 2)
    return out


def score_colour(score: float, scale: float) -> tuple[str, str]:
    """(background, text colour) for a score: red below 0, blue above, white at 0.

    Args:
        score: the attribution score.
        scale: the |score| that gets the full colour.
    """
    t = float(score) / scale if scale > 0 and math.isfinite(float(score)) else 0.0
    t = _clip(t, -1.0, 1.0)
    end = NEGATIVE_RGB if t < 0 else POSITIVE_RGB
    a = abs(t)
    rgb = [round(255 + (c - 255) * a) for c in end]
    # relative luminance (sRGB) decides between dark and white text
    lin = [((c / 255) / 12.92) if c / 255 <= 0.04045 else (((c / 255) + 0.055) / 1.055) ** 2.4 for c in rgb]
    luminance = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    text = "#ffffff" if luminance < 0.3 else "#1f2933"
    return "#{:02x}{:02x}{:02x}".format(*rgb), text


def _legend_html(scale: float) -> str:
    lo, hi = score_colour(-scale, scale)[0], score_colour(scale, scale)[0]
    small = "font-size:12px;color:#52606d;"
    return (
        '<div style="display:flex;align-items:center;gap:8px;margin-top:8px;font-size:12px;color:#52606d;">'
        f'<span style="{small}">lowers the score</span>'
        '<span style="display:inline-flex;flex-direction:column;min-width:180px;">'
        f'<span style="display:block;height:10px;border-radius:2px;border:1px solid #d9dee3;'
        f'background:linear-gradient(to right,{lo},#ffffff,{hi});"></span>'
        '<span style="display:flex;justify-content:space-between;font-variant-numeric:tabular-nums;">'
        f"<span>{html.escape(f'{-scale:.3g}')}</span><span>0</span><span>+{html.escape(f'{scale:.3g}')}</span>"
        "</span></span>"
        f'<span style="{small}">raises the score</span>'
        "</div>"
    )


def negligible_change(score_input: float, score_baseline: float) -> bool:
    """Whether the explained score barely moves from the baseline to the input (see NEGLIGIBLE_CHANGE)."""
    return abs(score_input - score_baseline) < _colour_floor(score_input, score_baseline)


def _colour_floor(score_input: float, score_baseline: float) -> float:
    return NEGLIGIBLE_CHANGE * max(1.0, abs(float(score_input)), abs(float(score_baseline)))


def attribution_note(score_input: float, score_baseline: float) -> str | None:
    """One sentence to show beside the highlights when they would mislead, else None.

    Two cases: the score barely changes between the baseline and the input (the
    attributions then split almost nothing, and their colours are kept faint), or the
    baseline already scores higher than the input (the attributions then add up to a
    drop, so red dominates even for text that supports the label).
    """
    score_input, score_baseline = float(score_input), float(score_baseline)
    if not (math.isfinite(score_input) and math.isfinite(score_baseline)):
        return None
    change = score_input - score_baseline
    if negligible_change(score_input, score_baseline):
        return (
            f"The score barely changes between the baseline ({format_score(score_baseline)}) and the text "
            f"({format_score(score_input)}), so the attributions split a change of only {format_score(change)} and "
            f"are drawn faint, on a fixed ±{format_score(_colour_floor(score_input, score_baseline))} scale."
        )
    if change < 0:
        return (
            f"The baseline already scores higher than the text ({format_score(score_baseline)} vs "
            f"{format_score(score_input)}), so the attributions add up to a drop of {format_score(-change)}: they "
            "show what lowers the score from the baseline's, not what the label rests on."
        )
    return None


def text_direction(text: str) -> str | None:
    """ "rtl" or "ltr" from the first strongly directional character (as the browser's dir="auto"), else None."""
    for char in str(text):
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return None


def _dir_attribute(text: str) -> str:
    direction = text_direction(text)
    return f'dir="{direction}" ' if direction else ""


def token_highlights_html(
    pieces: list[str],
    scores: np.ndarray,
    *,
    scale: float | None = None,
    title: str = "",
    joined: Sequence[bool] | None = None,
    score_input: float | None = None,
    score_baseline: float | None = None,
    legend: bool = True,
    note: bool = True,
) -> str:
    """Pieces of text as inline spans coloured by score, with a legend.

    Args:
        pieces: words or subword pieces (user text; escaped here).
        scores: one score per piece.
        scale: the |score| shown at full colour; default the largest |score|.
        title: optional heading above the pieces (escaped).
        joined: per piece, whether it continues the word before it (see `continues_word`); the pieces of one
            word are then drawn touching, as one word split by thin lines, and never wrap apart.
        score_input, score_baseline: the explained score at the input and at the baseline. When both are given,
            the colour scale is never finer than NEGLIGIBLE_CHANGE of the score (noise in a score that barely
            moves stays faint), and `attribution_note`'s sentence, if any, is shown beside the pieces.
        legend, note: draw the colour legend and the note (rows of one explanation draw them once, under the
            last row).

    Each word keeps its own writing direction (right-to-left pieces run right to left, isolated in <bdi>), and
    the line of words follows the text's first strongly directional word, as the browser's dir="auto" would.

    Returns:
        An HTML fragment with inline styles only (safe for `st.html`).
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(values) != len(pieces):
        raise ValueError(f"{len(pieces)} pieces but {len(values)} scores")
    finite = np.abs(values[np.isfinite(values)])
    if scale is None:
        scale = float(finite.max()) if finite.size else 0.0
    scale = float(scale)
    sentence = None
    if score_input is not None and score_baseline is not None:
        sentence = attribution_note(score_input, score_baseline) if note else None
        floor = _colour_floor(score_input, score_baseline)
        if math.isfinite(floor):
            scale = max(scale, floor) if math.isfinite(scale) else floor
    if not math.isfinite(scale) or scale <= 0:
        scale = 1.0
    if joined is not None and len(joined) != len(pieces):
        raise ValueError(f"{len(pieces)} pieces but {len(joined)} joined flags")
    starts = [i == 0 or not (joined is not None and joined[i]) for i in range(len(pieces))]
    groups: list[list[str]] = []
    group_texts: list[str] = []
    for i, (piece, value) in enumerate(zip(pieces, values)):
        first, last = starts[i], i + 1 == len(pieces) or starts[i + 1]
        radius = " ".join("4px" if end else "0" for end in (first, last, last, first))
        background, colour = score_colour(value, scale)
        text = html.escape(str(piece), quote=True)
        span = (
            f'<span title="{text}: {html.escape(format_score(value))}" style="display:inline-block;'
            f"background:{background};color:{colour};padding:1px {5 if first else 3}px 1px {5 if first else 3}px;"
            f"margin:0;border-radius:{radius};border:1px solid rgba(0,0,0,0.08);"
            f'{"" if first else "border-left-color:rgba(0,0,0,0.25);"}white-space:pre-wrap;"><bdi>{text}</bdi></span>'
        )
        if first:
            groups.append([])
            group_texts.append("")
        groups[-1].append(span)
        group_texts[-1] += str(piece)
    spans = [
        f'<span {_dir_attribute(word)}style="display:inline-block;white-space:nowrap;margin:2px 1px;">'
        f'{"".join(group)}</span>'
        for group, word in zip(groups, group_texts)
    ]
    line_direction = _dir_attribute("".join(str(p) for p in pieces if str(p) not in _SPECIAL_PIECES))
    heading = (
        f'<div style="font-weight:600;margin-bottom:4px;font-size:14px;">{html.escape(title)}</div>' if title else ""
    )
    note_html = (
        '<div role="note" style="margin-top:6px;padding:4px 8px;border-left:3px solid #f0b429;background:#fffbea;'
        f'font-size:13px;line-height:1.5;color:#52606d;">{html.escape(sentence)}</div>'
        if sentence else ""
    )
    return (
        "<div style=\"font-family:Inter,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;line-height:1.9;"
        'color:#1f2933;">'
        f'{heading}<div {line_direction}style="display:block;">{"".join(spans)}</div>{note_html}'
        f"{_legend_html(scale) if legend else ''}</div>"
    )


def entity_colours(types: Sequence[str]) -> dict[str, str]:
    """A colour per entity type, in the order given (colours repeat past len(ENTITY_COLOURS) types)."""
    return {kind: ENTITY_COLOURS[i % len(ENTITY_COLOURS)] for i, kind in enumerate(dict.fromkeys(types))}


def marked_text_html(text: str, marks: Sequence[tuple[int, int, str, str, str]], *, title: str = "",
                     legend: Mapping[str, str] | None = None) -> str:
    """A text with character ranges marked in colour and labelled (named entities, an answer).

    Args:
        text: the text (user text; escaped here).
        marks: (start, end, label, colour, hover) per range, in characters of `text`; overlapping ranges
            after the first are skipped. The label is drawn small after the marked characters.
        title: an optional heading (escaped).
        legend: label -> colour, drawn as swatches under the text.

    Returns:
        An HTML fragment with inline styles only (safe for `st.html`); the text keeps its own direction.
    """
    parts: list[str] = []
    at = 0
    for start, end, label, colour, hover in sorted(marks, key=lambda m: (m[0], m[1])):
        start, end = max(int(start), at), min(int(end), len(text))
        if end <= start:
            continue
        parts.append(html.escape(text[at:start]))
        parts.append(
            f'<mark title="{html.escape(hover, quote=True)}" style="background:{colour};color:#1f2933;'
            'padding:2px 4px;margin:0 1px;border-radius:4px;border:1px solid rgba(0,0,0,0.12);">'
            f"<bdi>{html.escape(text[start:end])}</bdi>"
            f'<span style="font-size:11px;font-weight:600;margin-left:5px;color:#323f4b;">{html.escape(label)}</span>'
            "</mark>"
        )
        at = end
    parts.append(html.escape(text[at:]))
    heading = (f'<div style="font-weight:600;margin-bottom:4px;font-size:14px;">{html.escape(title)}</div>'
               if title else "")
    swatches = "".join(
        f'<span style="display:inline-flex;align-items:center;gap:4px;margin-right:12px;">'
        f'<span style="display:inline-block;width:12px;height:12px;border-radius:3px;background:{colour};'
        f'border:1px solid rgba(0,0,0,0.15);"></span>{html.escape(name)}</span>'
        for name, colour in (legend or {}).items()
    )
    legend_html = (f'<div style="margin-top:6px;font-size:12px;color:#52606d;">{swatches}</div>' if swatches else "")
    return (
        "<div style=\"font-family:Inter,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;line-height:2.1;"
        f'color:#1f2933;">{heading}<div {_dir_attribute(text)}style="white-space:pre-wrap;">{"".join(parts)}</div>'
        f"{legend_html}</div>"
    )


# -- attention -----------------------------------------------------------------


def mark_segment_start(fig: go.Figure, start: int | None, *, rows: bool = True) -> go.Figure:
    """Dashed lines before token `start` (where the second text begins) across a token-by-token map.

    rows: also a horizontal line (maps with tokens on both axes); None draws nothing.
    """
    if start is None or start <= 0:
        return fig
    fig.add_vline(x=start - 0.5, line=SEGMENT_LINE)
    if rows:
        fig.add_hline(y=start - 0.5, line=SEGMENT_LINE)
    return fig


def _hover_text(query_labels: Sequence[str], key_labels: Sequence[str]) -> list[list[str]]:
    q = [_esc(t) for t in query_labels]
    k = [_esc(t) for t in key_labels]
    return [[f"{qi} → {kj}" for kj in k] for qi in q]


def attention_range(weights: np.ndarray, *, stretch: bool = False) -> float:
    """The top of an attention map's colour scale: 1 (one scale for every map), or the map's own max if `stretch`."""
    if not stretch:
        return 1.0
    z = np.asarray(weights, dtype=np.float64)
    peak = float(np.nanmax(z)) if z.size and np.isfinite(z).any() else 0.0
    return peak if math.isfinite(peak) and peak > 0 else 1.0


def _attention_colorbar(title: str, zmax: float, *, stretch: bool) -> dict[str, Any]:
    """Colour bar of an attention map with its range printed: "(0–1)" in the title, or "(stretched)"."""
    ticks = [zmax * f for f in (0.0, 0.25, 0.5, 0.75, 1.0)]
    labels = ["0"] + [f"{v:.2g}" for v in ticks[1:]]
    return dict(
        title=dict(text=f"{_esc(title)} ({'stretched' if stretch else '0–1'})", side="right"),
        tickmode="array",
        tickvals=ticks,
        ticktext=labels,
        thickness=14,
    )


def _colorbar_margin(ticktext: Sequence[str], plot_width: float) -> int:
    """Right margin that holds a colour bar at x=1.02 (paper), its tick labels and a side title."""
    labels = max((len(t) for t in ticktext), default=1) * _CHAR_WIDTH * FONT_SIZE
    return int(math.ceil(0.02 * plot_width + 10 + 14 + 4 + labels + 1.4 * FONT_SIZE + 4))


def attention_heatmap(
    weights: np.ndarray,
    query_labels: list[str],
    key_labels: list[str],
    *,
    title: str = "",
    colorbar_title: str = "attention",
    stretch: bool = False,
    segment_start: int | None = None,
) -> go.Figure:
    """One attention map as a heatmap: rows are query ("from") tokens, columns key ("to") tokens.

    Args:
        weights: [query, key] weights.
        query_labels: one label per row (repeats allowed).
        key_labels: one label per column (repeats allowed).
        title: figure title (plain text: escaped, and wrapped to the figure's width).
        colorbar_title: colour bar title (escaped).
        stretch: False (default) draws every map on the same absolute 0–1 scale, so a near-uniform map looks
            pale beside a peaked one; True stretches the colours to this map's own maximum.
        segment_start: the first token of the second text (sentence pairs, question and context): dashed
            lines mark where it begins; None for one text.

    The figure has a fixed size whose plot area is square (labels thinned to every k-th token when they would
    not fit at a readable size); hover shows "from → to: value" with the token strings, or token positions
    when the map has more than MAX_HOVER_TEXT_CELLS cells (to keep the figure small).
    """
    z = np.asarray(weights, dtype=np.float32)
    if z.ndim != 2 or z.shape != (len(query_labels), len(key_labels)):
        raise ValueError(f"weights of shape {z.shape} do not match {len(query_labels)} x {len(key_labels)} labels")
    n_q, n_k = z.shape
    side = int(_clip(HEATMAP_PX_PER_TOKEN * max(n_q, n_k), HEATMAP_MIN_SIDE, HEATMAP_MAX_SIDE))
    x_size, x_step = _tick_font_size(n_k, side, smallest=HEATMAP_TICK_FONT)
    y_size, y_step = _tick_font_size(n_q, side, smallest=HEATMAP_TICK_FONT)
    if n_q * n_k <= MAX_HOVER_TEXT_CELLS:
        hover = dict(text=_hover_text(query_labels, key_labels), hovertemplate="%{text}: %{z:.3g}<extra></extra>")
    else:  # token strings per cell would cost megabytes: hover shows positions instead
        hover = dict(hovertemplate="token #%{y} → token #%{x}: %{z:.3g}<extra></extra>")
    zmax = attention_range(z, stretch=stretch)
    colorbar = _attention_colorbar(colorbar_title, zmax, stretch=stretch)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=np.arange(n_k, dtype=np.int32),
            y=np.arange(n_q, dtype=np.int32),
            zmin=0.0,
            zmax=zmax,
            colorscale=ATTENTION_SCALE,
            **hover,
            colorbar=colorbar,
        )
    )
    left = _label_margin(query_labels[::y_step], y_size)
    right = _colorbar_margin(colorbar["ticktext"], side)
    bottom = _label_margin(key_labels[::x_step], x_size, tilt=60 if n_k > 1 else 0)
    width = left + side + right
    wrapped = wrap_title(title, int(width / (_CHAR_WIDTH * TITLE_FONT_SIZE))) if title else ""
    top = 40 + TITLE_LINE_PX * (wrapped.count("<br>") + 1) if wrapped else 30
    _layout(fig, title=wrapped, height=top + side + bottom, width=width,
            margin=dict(l=left, r=right, t=top, b=bottom))
    fig.update_xaxes(
        **_token_axis(key_labels, step=x_step),
        title=dict(text="to (key)"),
        tickangle=-60 if n_k > 1 else 0,
        tickfont=dict(size=x_size),
    )
    fig.update_yaxes(
        **_token_axis(query_labels, step=y_step),
        title=dict(text="from (query)"),
        autorange=False,
        tickfont=dict(size=y_size),
    )
    fig.update_yaxes(range=[n_q - 0.5, -0.5])  # first token on top
    return mark_segment_start(fig, segment_start)


def _block_bins(n: int, cells: int) -> np.ndarray:
    """Start indices of `cells` near-equal contiguous blocks covering 0..n-1."""
    return np.unique(np.linspace(0, n, cells + 1).round().astype(np.int64)[:-1])


def downsample_attention(weights: np.ndarray, max_cell: int) -> np.ndarray:
    """Block-average the last two axes of [..., T, T] to at most max_cell x max_cell.

    Query rows are averaged and key columns summed within each block, so every
    downsampled row still sums to 1 when the input rows do.
    """
    w = np.asarray(weights, dtype=np.float32)
    n_q, n_k = w.shape[-2:]
    q_starts = _block_bins(n_q, min(n_q, max_cell))
    k_starts = _block_bins(n_k, min(n_k, max_cell))
    q_counts = np.diff(np.append(q_starts, n_q)).astype(np.float32)
    out = np.add.reduceat(w, q_starts, axis=-2) / q_counts[:, None]
    return np.add.reduceat(out, k_starts, axis=-1)


def attention_grid(weights: np.ndarray, *, max_cell: int = 32, stretch: bool = False) -> go.Figure:
    """All layers x heads as one mosaic of small thumbnails (bertviz "model view").

    Each map is downsampled to at most max_cell x max_cell (see `downsample_attention`) and
    sent as uint8, so the figure stays small (12 x 12 heads at 128 tokens is well under
    1 MB). An invisible scatter marker sits on every thumbnail with customdata [layer,
    head], so point selection reports the head clicked (see `grid_cell_from_selection`);
    `mark_head` outlines one thumbnail.

    The figure has a fixed size whose plot area is exactly the mosaic (square cells), so
    the colour bar is as tall as the grid and nothing is left empty below it.

    Args:
        weights: [layers, heads, query, key].
        max_cell: the largest thumbnail side, in cells.
        stretch: False (default) draws every thumbnail on the absolute 0–1 scale of the
            other attention maps; True scales each to its own maximum.
    """
    w = np.asarray(weights, dtype=np.float32)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise ValueError(f"expected [layers, heads, T, T] weights, got shape {w.shape}")
    n_layers, n_heads = w.shape[:2]
    small = downsample_attention(w, max(1, int(max_cell)))
    cell = small.shape[-1]
    if stretch:
        peak = small.max(axis=(-2, -1), keepdims=True)
        small = np.divide(small, peak, out=np.zeros_like(small), where=peak > 0)
    quant = (1 + np.rint(np.clip(small, 0, 1) * 254)).astype(np.uint8)  # 0 is kept for the gaps
    gap = 1 if cell > 2 else 0
    pitch = cell + gap
    rows, cols = n_layers * pitch - gap, n_heads * pitch - gap
    mosaic = np.zeros((rows, cols), dtype=np.uint8)
    for layer in range(n_layers):
        for head in range(n_heads):
            mosaic[layer * pitch : layer * pitch + cell, head * pitch : head * pitch + cell] = quant[layer, head]
    centres_l = np.arange(n_layers) * pitch + (cell - 1) / 2
    centres_h = np.arange(n_heads) * pitch + (cell - 1) / 2

    base = _colourscale_stops(ATTENTION_SCALE)
    edge = 1e-4  # value 0 (the gaps) only; data starts at 1/255
    colourscale = [[0.0, GRID_GAP_COLOUR], [edge, GRID_GAP_COLOUR]] + [[edge + p * (1 - edge), c] for p, c in base]
    ticktext = ["0", "0.25", "0.5", "0.75", "head max" if stretch else "1"]

    plot_w = float(GRID_PLOT_WIDTH)
    plot_h = plot_w * rows / cols
    if plot_h > GRID_MAX_PLOT_HEIGHT:
        plot_h = float(GRID_MAX_PLOT_HEIGHT)
        plot_w = plot_h * cols / rows
    thumb_px = plot_w / cols * cell
    top = _label_margin([f"head {n_heads - 1}"], 11, tilt=0, title=False) + 16
    left = _label_margin([f"layer {n_layers - 1}"], 11, title=False)
    right = _colorbar_margin(ticktext, plot_w)
    bottom = 10
    layer_idx, head_idx = np.meshgrid(np.arange(n_layers), np.arange(n_heads), indexing="ij")
    fig = go.Figure(
        [
            go.Heatmap(
                z=mosaic,
                zmin=0,
                zmax=255,
                colorscale=colourscale,
                hoverinfo="skip",
                colorbar=dict(
                    title=dict(text="attention (scaled per head)" if stretch else "attention (0–1)", side="right"),
                    tickmode="array",
                    tickvals=[1, 64.5, 128, 191.5, 255],
                    ticktext=ticktext,
                    thickness=14,
                    len=1,
                    lenmode="fraction",
                ),
            ),
            go.Scatter(
                x=np.repeat(centres_h[None, :], n_layers, 0).reshape(-1).astype(np.float32),
                y=np.repeat(centres_l[:, None], n_heads, 1).reshape(-1).astype(np.float32),
                mode="markers",
                marker=dict(
                    symbol="square-open",
                    size=max(6.0, thumb_px),
                    color=HIGHLIGHT_COLOUR,
                    line=dict(width=3, color=HIGHLIGHT_COLOUR),
                    opacity=0.0,
                ),
                selected=dict(marker=dict(opacity=1.0)),
                unselected=dict(marker=dict(opacity=0.0)),
                customdata=np.stack([layer_idx.reshape(-1), head_idx.reshape(-1)], axis=1).astype(np.int32),
                hovertemplate="layer %{customdata[0]}, head %{customdata[1]}<extra></extra>",
                showlegend=False,
                name="heads",
            ),
        ]
    )
    _layout(fig, title="", height=int(round(top + plot_h + bottom)), width=int(round(left + plot_w + right)),
            clickmode="event+select", hoverdistance=int(max(20, thumb_px / 2)),
            margin=dict(t=top, l=left, r=right, b=bottom),
            meta={HEAD_CELLS: {"pitch": pitch, "size": cell, "layers": n_layers, "heads": n_heads}})
    fig.update_xaxes(
        tickmode="array",
        tickvals=centres_h.astype(np.float32),
        ticktext=[f"head {h}" for h in range(n_heads)],
        side="top",
        range=[-0.5, cols - 0.5],
        showgrid=False,
        zeroline=False,
        ticks="",
        automargin=True,
        tickfont=dict(size=11),
        fixedrange=True,
    )
    fig.update_yaxes(
        tickmode="array",
        tickvals=centres_l.astype(np.float32),
        ticktext=[f"layer {layer}" for layer in range(n_layers)],
        range=[rows - 0.5, -0.5],
        showgrid=False,
        zeroline=False,
        ticks="",
        automargin=True,
        tickfont=dict(size=11),
        fixedrange=True,
    )
    return fig


def mark_head(fig: go.Figure, layer: int, head: int) -> go.Figure:
    """A copy of a layers x heads figure (`attention_grid`, `head_statistic_figure`) with one head outlined.

    The figure given is left unchanged, so a cached figure can be marked for each selection without being
    rebuilt.

    Raises:
        ValueError: the figure is not a layers x heads figure, or (layer, head) is outside it.
    """
    meta = fig.layout.meta
    cells = meta.get(HEAD_CELLS) if isinstance(meta, Mapping) else None
    if not cells:
        raise ValueError("this figure has no layers x heads cells to mark")
    if not (0 <= layer < cells["layers"] and 0 <= head < cells["heads"]):
        raise ValueError(f"layer {layer}, head {head} is outside this {cells['layers']} x {cells['heads']} figure")
    pitch, size = cells["pitch"], cells["size"]
    marked = go.Figure(fig)
    marked.add_shape(
        type="rect", xref="x", yref="y", name="selected head",
        x0=head * pitch - 0.5, x1=head * pitch + size - 0.5, y0=layer * pitch - 0.5, y1=layer * pitch + size - 0.5,
        line=dict(color=HIGHLIGHT_COLOUR, width=3), fillcolor="rgba(0,0,0,0)",
    )
    return marked


REMOVED_COLOUR = "#52606d"


def mark_removed_heads(fig: go.Figure, heads: Sequence[tuple[int, int]]) -> go.Figure:
    """A copy of a layers x heads figure with each of `heads` greyed, crossed and labelled "removed".

    For an analysis of a model without some heads: their attention is still computed by the model (the
    gates act on each head's output), so their maps stay visible, marked as not used.
    """
    meta = fig.layout.meta
    cells = meta.get(HEAD_CELLS) if isinstance(meta, Mapping) else None
    if not cells:
        raise ValueError("this figure has no layers x heads cells to mark")
    pitch, size = cells["pitch"], cells["size"]
    marked = go.Figure(fig)
    for layer, head in heads:
        if not (0 <= layer < cells["layers"] and 0 <= head < cells["heads"]):
            raise ValueError(f"layer {layer}, head {head} is outside this {cells['layers']} x {cells['heads']} figure")
        x0, x1 = head * pitch - 0.5, head * pitch + size - 0.5
        y0, y1 = layer * pitch - 0.5, layer * pitch + size - 0.5
        marked.add_shape(type="rect", xref="x", yref="y", x0=x0, x1=x1, y0=y0, y1=y1, name="removed head",
                         line=dict(color=REMOVED_COLOUR, width=1), fillcolor="rgba(255,255,255,0.6)")
        for ya, yb in ((y0, y1), (y1, y0)):
            marked.add_shape(type="line", xref="x", yref="y", x0=x0, x1=x1, y0=ya, y1=yb, name="removed head",
                             line=dict(color=REMOVED_COLOUR, width=1))
        marked.add_annotation(x=(x0 + x1) / 2, y=(y0 + y1) / 2, xref="x", yref="y", text="removed",
                              showarrow=False, font=dict(size=9, color="#1f2933"), bgcolor="rgba(255,255,255,0.85)",
                              name="removed head")
    return marked


def _colourscale_stops(name: str) -> list[tuple[float, str]]:
    return [(float(p), c) for p, c in get_colorscale(name)]


def grid_cell_from_selection(
    selection: Mapping[str, Any] | None, grid_shape: tuple[int, int] | None = None
) -> tuple[int, int] | None:
    """The (layer, head) of the thumbnail picked in `attention_grid`, from Streamlit's selection state.

    Args:
        selection: what `st.plotly_chart(on_select="rerun")` returns, i.e.
            {"selection": {"points": [{"customdata": [layer, head], ...}]}}; a bare
            {"points": [...]} is accepted too.
        grid_shape: (layers, heads), used when a point carries only its index.

    Returns:
        (layer, head) of the first selected point, or None if nothing usable was selected.
    """
    if not selection:
        return None
    try:
        inner = selection.get("selection", selection)
        points = inner.get("points") if inner else None
    except AttributeError:
        return None
    if not points:
        return None
    for point in points:
        if not isinstance(point, Mapping):
            continue
        custom = point.get("customdata")
        if isinstance(custom, Mapping):  # a typed array arrives serialised as {"0": layer, "1": head}
            custom = [custom.get("0", custom.get(0)), custom.get("1", custom.get(1))]
        if isinstance(custom, (list, tuple)) and len(custom) >= 2:
            try:
                layer, head = int(custom[0]), int(custom[1])
            except (TypeError, ValueError):
                continue
            if grid_shape is None or (0 <= layer < grid_shape[0] and 0 <= head < grid_shape[1]):
                return layer, head
            continue
        if grid_shape is None:
            continue
        if point.get("curve_number", point.get("curveNumber", 1)) != 1:
            continue  # not the scatter trace of attention_grid
        index = point.get("point_index", point.get("point_number", point.get("pointIndex", point.get("pointNumber"))))
        if isinstance(index, (list, tuple)) or index is None:
            continue
        try:
            index = int(index)
        except (TypeError, ValueError):
            continue
        n_layers, n_heads = int(grid_shape[0]), int(grid_shape[1])
        if 0 <= index < n_layers * n_heads:
            return divmod(index, n_heads)
    return None


def head_statistic_figure(values: np.ndarray, *, name: str, colorbar_title: str) -> go.Figure:
    """A per-head statistic as a layers x heads heatmap (`mark_head` outlines one head).

    Args:
        values: [layers, heads].
        name: figure title (escaped).
        colorbar_title: colour bar title (escaped).
    """
    z = np.asarray(values, dtype=np.float32)
    if z.ndim != 2:
        raise ValueError(f"expected [layers, heads] values, got shape {z.shape}")
    n_layers, n_heads = z.shape
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=np.arange(n_heads, dtype=np.int32),
            y=np.arange(n_layers, dtype=np.int32),
            colorscale=STATISTIC_SCALE,
            xgap=1,
            ygap=1,
            hovertemplate="layer %{y}, head %{x}: %{z:.3g}<extra></extra>",
            colorbar=dict(title=dict(text=_esc(colorbar_title), side="right"), thickness=14),
        )
    )
    _layout(fig, title=_esc(name), height=int(_clip(130 + 34 * n_layers, 300, 700)),
            margin=dict(l=_label_margin([str(n_layers)], FONT_SIZE),
                        b=_label_margin([str(n_heads)], FONT_SIZE, tilt=0)),
            meta={HEAD_CELLS: {"pitch": 1, "size": 1, "layers": n_layers, "heads": n_heads}})
    fig.update_xaxes(
        title=dict(text="head"),
        tickmode="array",
        tickvals=list(range(n_heads)),
        showgrid=False,
        zeroline=False,
        range=[-0.5, n_heads - 0.5],
        automargin=True,
    )
    fig.update_yaxes(**_layer_axis(n_layers))
    return fig


def token_by_layer_figure(
    rows: np.ndarray, token_labels: list[str], *, source_label: str, stretch: bool = False,
    segment_start: int | None = None,
) -> go.Figure:
    """Where one token attends in every layer (heads averaged): layers on y, key tokens on x.

    Args:
        rows: [layers, tokens] attention of the chosen token.
        token_labels: one label per token (repeats allowed).
        source_label: the chosen token, for the title (escaped).
        stretch: as in `attention_heatmap`: False keeps the absolute 0–1 scale of every attention map.
        segment_start: as in `attention_heatmap` (a dashed line before the second text's first token).
    """
    z = np.asarray(rows, dtype=np.float32)
    if z.ndim != 2 or z.shape[1] != len(token_labels):
        raise ValueError(f"rows of shape {z.shape} do not match {len(token_labels)} token labels")
    n_layers, n_tokens = z.shape
    keys = [_esc(t) for t in token_labels]
    text = [[f"layer {layer} → {k}" for k in keys] for layer in range(n_layers)]
    size, step = _tick_font_size(n_tokens, 900)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=np.arange(n_tokens, dtype=np.int32),
            y=np.arange(n_layers, dtype=np.int32),
            zmin=0.0,
            zmax=attention_range(z, stretch=stretch),
            colorscale=ATTENTION_SCALE,
            text=text,
            hovertemplate="%{text}: %{z:.3g}<extra></extra>",
            colorbar=_attention_colorbar("attention, heads averaged", attention_range(z, stretch=stretch),
                                         stretch=stretch),
        )
    )
    _layout(
        fig,
        title=f"where «{_esc(source_label)}» attends, by layer",
        height=int(_clip(190 + 30 * n_layers, 320, 700)),
        margin=dict(l=_label_margin([str(n_layers)], FONT_SIZE),
                    b=_label_margin(token_labels[::step], size, tilt=60 if n_tokens > 1 else 0)),
    )
    fig.update_xaxes(
        **_token_axis(token_labels, step=step),
        title=dict(text="to (key)"),
        tickangle=-60 if n_tokens > 1 else 0,
        tickfont=dict(size=size),
    )
    fig.update_yaxes(**_layer_axis(n_layers))
    return mark_segment_start(fig, segment_start, rows=False)


def rollout_figure(rollout: np.ndarray, labels: list[str], *, stretch: bool = False,
                   segment_start: int | None = None) -> go.Figure:
    """Attention rollout [tokens, tokens] as a heatmap (see `explain.attention.rollout`).

    Rollout rows sum to 1 like attention rows, so by default it shares their 0–1 scale; `stretch` as in
    `attention_heatmap`.
    """
    return attention_heatmap(
        rollout,
        labels,
        labels,
        title="attention rollout (all layers, heads averaged)",
        colorbar_title="attention rollout",
        stretch=stretch,
        segment_start=segment_start,
    )


def layer_distance_figure(distances: np.ndarray, *, label_a: str, label_b: str) -> go.Figure:
    """Per-layer Jensen-Shannon distance between two models' word attention, as a line chart."""
    d = np.asarray(distances, dtype=np.float32)
    layers = np.arange(len(d))
    fig = go.Figure(
        go.Scatter(
            x=layers,
            y=d,
            mode="lines+markers",
            line=dict(color=HIGHLIGHT_COLOUR, width=2),
            marker=dict(size=8),
            hovertemplate="layer %{x}: JS distance %{y:.3f}<extra></extra>",
            name="JS distance",
        )
    )
    _layout(fig, title=f"Attention distance by layer: {_esc(label_a)} vs {_esc(label_b)}", height=320,
            margin=dict(l=_label_margin(["0.8"], FONT_SIZE), b=_label_margin(["0"], FONT_SIZE, tilt=0)))
    fig.update_xaxes(title="layer of the first model (the second is matched by relative depth)",
                     tickmode="array", tickvals=layers, showgrid=False)
    fig.update_yaxes(title="JS distance", range=[0, 1], rangemode="tozero")
    return fig


def evaluations_text(request: AnalysisRequest, attribution: TokenAttribution) -> str:
    """How many model evaluations integrated gradients made, and under which rule ("50 steps", or
    "23 model evaluations (adaptive simpson, at most 50)")."""
    if request.integration == FIXED_INTEGRATION or attribution.tolerance is None:
        return f"{attribution.n_steps} steps"
    return (f"{attribution.n_steps} model evaluations ({request.integration.replace('_', ' ')}, "
            f"at most {request.n_steps})")
