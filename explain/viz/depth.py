"""Figures of where the score comes from: embedding parts x tokens, and layers x tokens (explain.depth).

Pure functions (no model code, no Streamlit). Tokens are user text: escaped in tick labels and hover.
Both figures use one diverging scale centred at 0 (red lowers the score, blue raises it, as the highlights)
and symmetric about it, so equal colours mean equal |attribution| anywhere in the figure.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from explain.pieces import subword_pieces
from explain.records import EmbeddingParts, LayerAttribution
from explain.viz.theme import FONT, TITLE_FONT_SIZE, format_score, template

DIVERGING_SCALE = "RdBu"  # red at the low end (lowers the score), blue at the high end (raises it)
COLORBAR_TITLE = "attribution<br>(score units)"  # two short lines above the bar: a side title was cut off
PART_TITLES = {"token": "token", "position": "position", "segment": "segment"}
PX_PER_TOKEN = 34
PX_PER_ROW = 34
MIN_PLOT_WIDTH = 360
MAX_PLOT_WIDTH = 1000
LEFT_MARGIN = 110  # px: the longest row label ("position") and the axis title
RIGHT_MARGIN = 130  # px: the colour bar, its tick labels and its title
TICK_PX = 15  # px a tick label needs across the axis


def symmetric_range(scores: np.ndarray) -> float:
    """The |value| at either end of the colour scale: the largest finite |score| (1 when there is none)."""
    values = np.abs(np.asarray(scores, dtype=np.float64))
    values = values[np.isfinite(values)]
    top = float(values.max()) if values.size else 0.0
    return top if top > 0 else 1.0


def _esc(text: Any) -> str:
    return html.escape(str(text), quote=False)


def _hover(row_names: Sequence[str], labels: Sequence[str], z: np.ndarray) -> list[list[str]]:
    return [[f"{_esc(labels[j])} (token {j})<br>{_esc(row_names[i])}: {format_score(z[i, j])}"
             for j in range(z.shape[1])] for i in range(z.shape[0])]


def _heatmap(z: np.ndarray, row_names: Sequence[str], row_ticks: Sequence[str], tokens: Sequence[str], *,
             title: str, y_title: str, total: str = "") -> go.Figure:
    n_rows, n_tokens = z.shape
    if len(tokens) != n_tokens:
        raise ValueError(f"{len(tokens)} tokens for scores of shape {z.shape}")
    labels = subword_pieces(list(tokens))
    top = symmetric_range(z)
    fig = go.Figure(go.Heatmap(
        z=z.astype(np.float32), x=np.arange(n_tokens, dtype=np.int32), y=np.arange(n_rows, dtype=np.int32),
        zmid=0.0, zmin=-top, zmax=top, colorscale=DIVERGING_SCALE, xgap=1, ygap=1,
        text=_hover(row_names, labels, z), hovertemplate="%{text}<extra></extra>",
        colorbar=dict(title=dict(text=COLORBAR_TITLE, side="top", font=dict(size=12)), thickness=14,
                      tickformat=".3~g"),
    ))
    plot_width = min(MAX_PLOT_WIDTH, max(MIN_PLOT_WIDTH, PX_PER_TOKEN * n_tokens))
    step = max(1, math.ceil(TICK_PX / (plot_width / max(n_tokens, 1))))  # every k-th label where they would overlap
    shown = list(range(0, n_tokens, step))
    longest = max((len(labels[j]) for j in shown), default=1)
    bottom = int(min(160, 24 + 5.8 * longest))
    fig.update_layout(
        template=template(), font=FONT, width=LEFT_MARGIN + plot_width + RIGHT_MARGIN,
        height=(80 if total else 60) + bottom + PX_PER_ROW * max(n_rows, 3),
        title=dict(text=title + (f'<br><span style="font-size:12px">{_esc(total)}</span>' if total else ""),
                   x=0.0, xanchor="left", font=dict(size=TITLE_FONT_SIZE)),
        margin=dict(l=LEFT_MARGIN, r=RIGHT_MARGIN, t=70 if total else 50, b=bottom),
    )
    fig.update_xaxes(tickmode="array", tickvals=shown, ticktext=[_esc(labels[j]) for j in shown],
                     tickangle=-50 if n_tokens > 1 else 0, showgrid=False, zeroline=False, automargin=True)
    # a fixed left margin (no automargin) so that the two figures' token columns line up one above the other
    fig.update_yaxes(tickmode="array", tickvals=list(range(n_rows)), ticktext=list(row_ticks),
                     title=dict(text=y_title), showgrid=False, zeroline=False, automargin=False)
    return fig


def embedding_parts_figure(tokens: Sequence[str], parts: EmbeddingParts) -> go.Figure:
    """One row per embedding part (token at the top), one column per token, coloured by its attribution."""
    z = np.asarray(parts.scores, dtype=np.float64)
    names = [PART_TITLES.get(p, p) for p in parts.parts]
    change = format_score(parts.score_input - parts.score_baseline)
    fig = _heatmap(z[::-1], names[::-1], names[::-1], tokens,
                   title="Which part of the input representation the score depends on", y_title="embedding",
                   total=f"All cells together add up to the score change {change}")
    return fig


def layer_figure(tokens: Sequence[str], layers: LayerAttribution) -> go.Figure:
    """One row per encoder layer (layer 0, the first, at the bottom, numbered as in the attention views)."""
    z = np.asarray(layers.scores, dtype=np.float64)
    numbers = [str(i) for i in range(z.shape[0])]
    change = format_score(layers.score_input - layers.score_baseline)
    return _heatmap(z, [f"after layer {n}" for n in numbers], numbers, tokens,
                    title="Where in depth each token's influence appears", y_title="output of layer",
                    total=f"Each row on its own adds up to the score change {change}")


def parts_caption(parts: EmbeddingParts) -> str:
    """One sentence under the embedding-parts figure: what the rows are measured against, and the gap."""
    change = parts.score_input - parts.score_baseline
    return (f"Integrated gradients ({parts.n_steps} steps) split over the three embeddings summed into the input: "
            f"tokens against the {parts.baseline} baseline, positions and segments against the mean row of their "
            f"tables; all cells add up to the score change {format_score(change)} "
            f"(integration error {_relative(parts.delta, change)}).")


def layer_caption(layers: LayerAttribution) -> str:
    """One sentence under the layers figure: what a row is, and its worst completeness gap."""
    change = layers.score_input - layers.score_baseline
    worst = float(np.max(np.abs(layers.delta))) if np.asarray(layers.delta).size else math.nan
    return (f"Layer integrated gradients ({layers.n_steps} steps) at each encoder layer's output (layer 0 is the "
            f"first, as in the attention views), from its output on the {layers.baseline} baseline to its output "
            f"on the text: every row adds up to the score change {format_score(change)} (largest integration error "
            f"{_relative(worst, change)}).")


def _relative(delta: float, change: float) -> str:
    if not math.isfinite(delta):
        return "unknown"
    if abs(change) < 1e-12:
        return format_score(delta)
    return f"{format_score(delta)}, {100 * abs(delta) / abs(change):.2g}% of it"
