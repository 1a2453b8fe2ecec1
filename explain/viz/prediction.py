"""The model's prediction as bars: the explained label marked, probabilities on a 0-1 axis.

Two drawings of the same bars: a Plotly figure (exports, the compare page) and light HTML (`prediction_bars_html`,
the explore page's first screen: numbers as text, nothing for the browser to load or draw).
"""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go

from explain.records import Prediction
from explain.viz.theme import (
    EXPLAINED_COLOUR,
    FONT_SIZE,
    MAX_PREDICTION_BARS,
    OTHER_COLOUR,
    POSITIVE_LINE,
    PREDICTION_TITLE_CHARS,
    THRESHOLD_COLOUR,
    TITLE_LINE_PX,
    base_layout,
    clip,
    esc,
    format_score,
    label_margin,
    wrap_title,
)

PROBABILITY = "probability"


def prediction_range(*predictions: Prediction) -> tuple[float, float]:
    """One score axis for predictions drawn side by side: 0-1 when all are probabilities, else from the lowest
    score (or 0) to the highest (or 0), padded by 5%."""
    if predictions and all(p.score_name == PROBABILITY for p in predictions):
        return 0.0, 1.0
    values = np.concatenate([np.asarray(p.scores, dtype=np.float64).reshape(-1) for p in predictions]
                            or [np.zeros(1)])
    values = values[np.isfinite(values)]
    low, high = min(0.0, float(values.min(initial=0.0))), max(0.0, float(values.max(initial=0.0)))
    pad = 0.05 * (high - low) or 1.0
    return low - (pad if low < 0 else 0.0), high + pad


def shown_bars(prediction: Prediction) -> tuple[np.ndarray, list[int]]:
    """(scores, indices of the bars drawn): the top MAX_PREDICTION_BARS, best first, the explained label kept even
    when outside them."""
    scores = np.asarray(prediction.scores, dtype=np.float64).reshape(-1)
    order = [int(i) for i in np.argsort(-scores, kind="stable")[:MAX_PREDICTION_BARS]]
    explained = int(prediction.explained_index)
    if 0 <= explained < len(scores) and explained not in order:
        order[-1] = explained
        order.sort(key=lambda i: -scores[i])
    return scores, order


def label_of(prediction: Prediction, index: int) -> str:
    return str(prediction.labels[index]) if index < len(prediction.labels) else str(index)


def prediction_bars_html(prediction: Prediction, *, x_range: tuple[float, float] | None = None) -> str:
    """The bars of `prediction_figure` as a small HTML table: label, bar, the score as text (best first, the
    explained label bold and violet).

    One tab stop (the table) whose accessible name reads every label with its score, so a keyboard or screen
    reader user gets the numbers without a chart. Labels come from the model's config: escaped here.
    """
    scores, order = shown_bars(prediction)
    explained = int(prediction.explained_index)
    low, high = x_range or prediction_range(prediction)
    span = (high - low) or 1.0

    def share(value: float) -> float:
        return 100.0 * clip((value - low) / span, 0.0, 1.0) if np.isfinite(value) else 0.0

    zero = share(0.0)
    rows = []
    for i in order:
        value, mine = float(scores[i]), i == explained
        left, right = sorted((zero, share(value)))
        colour = EXPLAINED_COLOUR if mine else OTHER_COLOUR
        weight = "700" if mine else "400"
        rows.append(
            f'<tr><th scope="row" style="text-align:right;padding:2px 8px 2px 0;font-weight:{weight};'
            f'white-space:nowrap;max-width:12em;overflow:hidden;text-overflow:ellipsis;">'
            f"<bdi>{html.escape(label_of(prediction, i))}</bdi></th>"
            f'<td style="width:100%;padding:2px 0;"><div style="position:relative;height:18px;'
            f'background:rgba(127,127,127,0.12);border-radius:3px;"><div style="position:absolute;top:0;bottom:0;'
            f'left:{left:.2f}%;width:{right - left:.2f}%;background:{colour};border-radius:3px;"></div></div></td>'
            f'<td style="padding:2px 0 2px 8px;text-align:right;font-variant-numeric:tabular-nums;'
            f'font-weight:{weight};">{html.escape(format_score(value))}</td></tr>'
        )
    name = html.escape(str(prediction.score_name))
    summary = "; ".join(f"{label_of(prediction, i)}: {format_score(float(scores[i]))}"
                        + (" (explained)" if i == explained else "") for i in order)
    return (
        "<div style=\"font-family:Inter,'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;color:inherit;\">"
        f'<div style="font-weight:600;margin-bottom:6px;">{html.escape(str(prediction.description))}</div>'
        f'<table tabindex="0" aria-label="{html.escape(f"{prediction.description}, {prediction.score_name}: {summary}", quote=True)}" '
        'style="border-collapse:collapse;width:100%;border:none;margin:0;">'
        f'<tbody>{"".join(rows)}</tbody></table>'
        f'<div style="font-size:12px;opacity:0.75;margin-top:4px;">{name}, bars from {format_score(low)} to '
        f"{format_score(high)}</div></div>"
    )


def prediction_figure(prediction: Prediction, *, x_range: tuple[float, float] | None = None) -> go.Figure:
    """Horizontal bars of the scores per label (top 10), the explained label highlighted.

    Args:
        prediction: the model's scores; `explained_index` marks the label being explained.
        x_range: the score axis (`prediction_range` of the predictions shown together); default that of this one,
            so probabilities always run 0-1.

    Returns:
        A bar figure, best label on top; the explained label is kept even when outside the top 10. A long
        description wraps onto more title lines (the chart sits in a narrow column) instead of being cut.
    """
    scores, order = shown_bars(prediction)
    explained = int(prediction.explained_index)
    labels = [esc(label_of(prediction, i)) for i in order]
    values = scores[order].astype(np.float32)
    colours = [EXPLAINED_COLOUR if i == explained else OTHER_COLOUR for i in order]
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
    name = esc(prediction.score_name)
    title = wrap_title(prediction.description, PREDICTION_TITLE_CHARS)
    extra_lines = title.count("<br>")
    base_layout(
        fig, title=title, height=int(clip(130 + 34 * len(order), 220, 500)) + TITLE_LINE_PX * extra_lines,
        showlegend=False,
        margin=dict(l=label_margin(labels, FONT_SIZE, title=False), b=label_margin(["0"], FONT_SIZE, tilt=0)),
    )
    fig.update_xaxes(title=dict(text=name), automargin=True, zeroline=True, zerolinecolor="#cbd2d9",
                     range=list(x_range or prediction_range(prediction)))
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
    labels = [esc(label) for label in prediction.labels]
    on = scores >= threshold
    colours = [EXPLAINED_COLOUR if i == explained else (POSITIVE_LINE if on[i] else OTHER_COLOUR)
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
    base_layout(
        fig, title=title, height=int(clip(150 + 34 * len(scores), 240, 560)) + TITLE_LINE_PX * title.count("<br>"),
        showlegend=False,
        margin=dict(l=label_margin(labels, FONT_SIZE, title=False), b=label_margin(["0"], FONT_SIZE, tilt=0),
                    r=label_margin(["0.999 (on)"], FONT_SIZE, title=False)),
    )
    fig.update_xaxes(title=dict(text="sigmoid of each label"), range=[0, 1.0], automargin=True)
    fig.update_yaxes(tickmode="array", tickvals=y,
                     ticktext=[f"<b>{label}</b>" if i == explained else label for i, label in enumerate(labels)],
                     autorange="reversed", automargin=True, showgrid=False)
    return fig


# -- token highlights ----------------------------------------------------------


