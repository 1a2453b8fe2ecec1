"""Figures of the Heads page: importance maps (layers x heads), their rank correlations, the pruning curve and
one head's neuron view (bertviz's: how one query token's attention row is made).

Pure functions (no model code, no Streamlit) over the records of `explain.heads`. Tokens are user text: they
are escaped wherever Plotly interprets markup (tick labels, hover text, titles).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from explain.heads import HeadImportance, NeuronView, PruningCurve
from explain.heads.pruning_summary import pruning_summary
from explain.pieces import readable_tokens
from explain.viz.theme import (
    FONT,
    FONT_SIZE,
    HEAD_CELLS,
    HIGHLIGHT_COLOUR,
    TITLE_FONT_SIZE,
    TITLE_LINE_PX,
    VECTOR_NEGATIVE,
    VECTOR_POSITIVE,
    VECTOR_SCALE,
    fit_title,
    format_score,
    template,
    wrap_title,
)

MAP_TITLES = {
    "gradient": "Gradient importance",
    "ablation": "Ablation effect",
    "confidence": "Confidence",
}
ORDER_WORDS = {"least": "least important first", "most": "most important first"}
MAP_SCALES = {"gradient": "Viridis", "ablation": "RdBu", "confidence": "Blues"}
CHAR_PX = 0.62 * FONT_SIZE  # a little wider than the average glyph: estimates of label widths err large
IMPORTANCE_CELL_PX = 30
COLORBAR_OFFSET_PX = 58  # from the plot's bottom edge to a colour bar drawn under the x axis and its title
COLORBAR_TITLE_CHARS = 38  # a map sits in a third of the page: about 300 px for the title at 12 px
NEURON_ROW_PX = 18
NEURON_MIN_ROW_PX = 11
NEURON_MAX_PLOT_PX = 1800
RANDOM_COLOUR = "#52606d"
# The neuron view's two colour bars, side by side under its panels: each nearly half the width (a phone's 240 px plot
# leaves each about 95 px), labelled at both ends and at 0, apart enough that the end labels do not meet.
NEURON_COLORBAR = dict(orientation="h", xanchor="left", len=0.4, xpad=0, yanchor="top", thickness=12,
                       tickfont=dict(size=10))
NEURON_COLORBAR_X = (0.0, 0.6)
NEURON_SMALL_FONT = dict(size=10)  # the narrow panels' ticks and titles: a phone leaves each 50-65 px


def escape(text: Any) -> str:
    """Text for Plotly's pseudo-HTML (tick labels, hover, titles)."""
    return html.escape(str(text), quote=False)


def map_values(importance: HeadImportance, name: str) -> np.ndarray:
    """The values a map shows: the gradient and confidence as ranked, the ablation effect signed.

    The signed change says which way removing the head moves the score; its ranking (in the rank
    correlations and the pruning order) uses the size of the change.
    """
    if name == "ablation":
        return importance.ablation_effect
    return importance.map(name)


def map_colorbar_title(name: str, score_name: str) -> tuple[str, str]:
    """What a map measures, and in which units (plain text)."""
    if name == "gradient":
        return "|∂ score / ∂ gate|", f"({score_name} per unit of gate)"
    if name == "ablation":
        return "score change without the head", f"({score_name})"
    if name == "confidence":
        return "mean largest attention weight", "(0–1)"
    raise KeyError(f"no importance map '{name}'")


def colorbar_title_text(name: str, score_name: str) -> str:
    """The colour bar's title: the measure on one line, its units on the next (each wrapped, escaped)."""
    return "<br>".join(wrap_title(part, COLORBAR_TITLE_CHARS) for part in map_colorbar_title(name, score_name))


def map_hover_name(name: str) -> str:
    return {"gradient": "|∂score/∂gate|", "ablation": "score change", "confidence": "confidence"}[name]


def importance_map_figure(importance: HeadImportance, name: str, *, width: int | None = None) -> go.Figure:
    """One importance map as a layers x heads heatmap that can be clicked to pick a head.

    An invisible square marker sits on every cell with customdata [layer, head] (Streamlit's point selection
    reports it; `explain.viz.attention.grid_cell_from_selection` reads it back) and carries the hover: layer, head
    and the value with 4 significant digits. `explain.viz.attention.mark_head` outlines one head.

    Args:
        importance: the three maps of one text.
        name: "gradient", "ablation" (signed change, diverging colours around 0) or "confidence".
        width: the figure's width in pixels (None: as wide as its container).
    """
    z = np.asarray(map_values(importance, name), dtype=np.float32)
    n_layers, n_heads = z.shape
    finite = z[np.isfinite(z)]
    if name == "ablation":
        top = float(np.abs(finite).max()) if finite.size else 0.0
        colour_range: dict[str, Any] = dict(zmin=-top, zmax=top, zmid=0.0) if top > 0 else dict(zmin=-1.0, zmax=1.0)
    elif name == "confidence":
        colour_range = dict(zmin=0.0, zmax=1.0)
    else:
        top = float(finite.max()) if finite.size else 0.0
        colour_range = dict(zmin=0.0, zmax=top if top > 0 else 1.0)
    layer_idx, head_idx = np.meshgrid(np.arange(n_layers), np.arange(n_heads), indexing="ij")
    hover_name = map_hover_name(name)
    text = [format_score(float(v)) for v in z.reshape(-1)]
    colorbar_title = colorbar_title_text(name, importance.score_name)
    title_lines = colorbar_title.count("<br>") + 1
    plot_h = IMPORTANCE_CELL_PX * n_layers
    fig = go.Figure([
        go.Heatmap(
            z=z,
            x=np.arange(n_heads, dtype=np.int32),
            y=np.arange(n_layers, dtype=np.int32),
            colorscale=MAP_SCALES[name],
            xgap=1,
            ygap=1,
            hoverinfo="skip",
            colorbar=dict(title=dict(text=colorbar_title, side="top",
                                     font=dict(size=12)),
                          orientation="h", x=0.0, xanchor="left", len=1.0, lenmode="fraction",
                          y=-COLORBAR_OFFSET_PX / plot_h, yanchor="top", thickness=10, tickformat=".3~g"),
            **colour_range,
        ),
        go.Scatter(
            x=head_idx.reshape(-1).astype(np.float32),
            y=layer_idx.reshape(-1).astype(np.float32),
            mode="markers",
            marker=dict(symbol="square", size=IMPORTANCE_CELL_PX * 0.9, color=HIGHLIGHT_COLOUR, opacity=0.0),
            selected=dict(marker=dict(opacity=0.0)),
            unselected=dict(marker=dict(opacity=0.0)),
            customdata=np.stack([layer_idx.reshape(-1), head_idx.reshape(-1)], axis=1).astype(np.int32),
            text=text,
            hovertemplate=f"layer %{{customdata[0]}}, head %{{customdata[1]}}<br>{escape(hover_name)}: "
                          "%{text}<extra></extra>",
            showlegend=False,
            name="heads",
        ),
    ])
    top_margin, left = 54, 58
    bottom = COLORBAR_OFFSET_PX + 16 * title_lines + 10 + 30
    fig.update_layout(
        template=template(), font=FONT, height=top_margin + plot_h + bottom, width=width,
        title=dict(text=escape(MAP_TITLES[name]), x=0.0, xanchor="left", font=dict(size=TITLE_FONT_SIZE)),
        margin=dict(l=left, r=10, t=top_margin, b=bottom), clickmode="event+select",
        hoverdistance=IMPORTANCE_CELL_PX, dragmode=False,
        hoverlabel=dict(font=dict(family=FONT["family"], size=13)),
        meta={HEAD_CELLS: {"pitch": 1, "size": 1, "layers": n_layers, "heads": n_heads}},
    )
    head_step = 1 if n_heads <= 16 else math.ceil(n_heads / 16)
    fig.update_xaxes(title=dict(text="head"), tickmode="array", tickvals=list(range(0, n_heads, head_step)),
                     range=[-0.5, n_heads - 0.5], showgrid=False, zeroline=False, fixedrange=True)
    layer_step = 1 if n_layers <= 24 else math.ceil(n_layers / 24)
    fig.update_yaxes(title=dict(text="layer"), tickmode="array", tickvals=list(range(0, n_layers, layer_step)),
                     range=[n_layers - 0.5, -0.5], showgrid=False, zeroline=False, fixedrange=True)
    return fig


def correlation_rows(importance: HeadImportance) -> list[dict[str, object]]:
    """The maps' Spearman rank correlations as table rows: one row per map, one column per map (None: a map
    with every value equal, which ranks nothing)."""
    names = list(importance.map_names)
    matrix = np.asarray(importance.rank_correlation, dtype=np.float64)
    rows: list[dict[str, object]] = []
    for i, name in enumerate(names):
        row: dict[str, object] = {"map": MAP_TITLES.get(name, name)}
        for j, other in enumerate(names):
            value = matrix[i, j]
            row[MAP_TITLES.get(other, other)] = float(value) if math.isfinite(value) else None
        rows.append(row)
    return rows


def pruning_curve_figure(curve: PruningCurve, *, description: str = "") -> go.Figure:
    """The explained score as heads are removed: in importance order, and the random orders' mean with a band
    of one standard deviation either side.

    Args:
        curve: the scores (`explain.heads.pruning_curve`).
        description: what the score is (e.g. "P(positive) under zero-shot labels"), for the title.
    """
    x = np.asarray(curve.removed, dtype=np.int32)
    ranked = np.asarray(curve.scores, dtype=np.float32)
    mean = np.asarray(curve.random_mean, dtype=np.float32)
    spread = np.asarray(curve.random_std, dtype=np.float32)
    order = ORDER_WORDS.get(curve.order, curve.order)
    importance_title = MAP_TITLES.get(curve.importance_name, curve.importance_name).lower()
    n_random = len(curve.seeds)
    random_name = f"random orders: mean of {n_random}"
    fig = go.Figure([
        go.Scatter(x=x, y=mean + spread, mode="lines", line=dict(width=0), hoverinfo="skip", showlegend=False,
                   name="random + 1 sd"),
        go.Scatter(x=x, y=mean - spread, mode="lines", line=dict(width=0), fill="tonexty",
                   fillcolor="rgba(82,96,109,0.18)", hoverinfo="skip", showlegend=True,
                   name="random orders: ± 1 standard deviation"),
        go.Scatter(x=x, y=mean, mode="lines", line=dict(color=RANDOM_COLOUR, width=2, dash="dash"),
                   name=random_name, text=[format_score(v) for v in mean],
                   customdata=[format_score(v) for v in spread],
                   hovertemplate="%{x} heads removed at random: %{text} ± %{customdata}<extra></extra>"),
        go.Scatter(x=x, y=ranked, mode="lines+markers", line=dict(color=HIGHLIGHT_COLOUR, width=2.5),
                   marker=dict(size=5), name=f"{importance_title} order ({order})",
                   text=[format_score(v) for v in ranked],
                   hovertemplate=f"%{{x}} heads removed, {escape(importance_title)} order: %{{text}}<extra></extra>"),
    ])
    title = fit_title(escape("Pruning heads" + (f": {description}" if description else "")))
    extra_lines = title.count("<br>")
    fig.update_layout(
        template=template(), font=FONT, height=420 + TITLE_LINE_PX * extra_lines,
        title=dict(text=title, x=0.0, xanchor="left", font=dict(size=TITLE_FONT_SIZE)),
        margin=dict(l=70, r=10, t=60 + TITLE_LINE_PX * extra_lines, b=60),
        legend=dict(orientation="h", x=0.0, xanchor="left", y=-0.18, yanchor="top"),
        hovermode="closest", hoverlabel=dict(font=dict(family=FONT["family"], size=13)),
    )
    fig.update_layout(margin=dict(b=110))
    if x.size:
        summary = pruning_summary(curve)
        fig.add_annotation(
            xref="paper", yref="paper", x=1.0, y=1.0, xanchor="right", yanchor="bottom", showarrow=False,
            text=escape(f"mean gap to random: {summary.gap:+.3g}" + (f" · rises by {summary.rise:.3g}"
                                                                     if summary.rise > 0 else "")),
            font=dict(size=12))  # the theme's text colour (light or dark page)
    fig.update_xaxes(title=dict(text="number of heads removed"), range=[-0.5, float(x.max()) + 0.5] if x.size else None,
                     zeroline=False)
    fig.update_yaxes(title=dict(text=f"explained score ({escape(curve.score_name)})"), zeroline=False)
    return fig


def token_labels(tokens: Sequence[str]) -> list[str]:
    """Tick labels for tokens, escaped (rows are positions, so a repeated token keeps its own row)."""
    return [escape(t) for t in readable_tokens(tokens)]


def neuron_view_figure(view: NeuronView) -> go.Figure:
    """bertviz's neuron view of one head for one query token, one row per key token.

    Panels, left to right: the key vectors k (with the query vector q above them), the elementwise products
    q∘k, the scaled dot products (q·k times the head's scaling) and their softmax, which is the attention row.
    q, k and q∘k are drawn on symmetric ochre-green scales (vector signs, not the red-blue of raising or lowering
    the score); hover gives every number.
    """
    n_tokens, head_dim = view.keys.shape
    labels = token_labels(view.tokens)
    real = np.isfinite(view.scores)
    row_px = max(NEURON_MIN_ROW_PX, min(NEURON_ROW_PX, NEURON_MAX_PLOT_PX // max(n_tokens, 1)))
    plot_h = row_px * n_tokens
    query_px = max(row_px, 16)
    gap_px = 56
    fig = make_subplots(
        rows=2, cols=4, column_widths=[0.3, 0.3, 0.2, 0.2], horizontal_spacing=0.035,
        row_heights=[query_px / (query_px + gap_px + plot_h), plot_h / (query_px + gap_px + plot_h)],
        vertical_spacing=gap_px / (query_px + gap_px + plot_h),
        specs=[[{}, None, None, None], [{}, {}, {}, {}]],
        # Short titles: at a phone's width each of the narrow panels is about 55 px wide; the caption says the rest.
        subplot_titles=("query q", "keys k", "q∘k", "q·k / √d", "softmax"),
    )
    q = np.asarray(view.query, dtype=np.float32)
    k = np.asarray(view.keys, dtype=np.float32)
    products = np.asarray(view.products, dtype=np.float32)
    vector_top = float(max(np.abs(q).max(initial=0.0), np.abs(k).max(initial=0.0))) or 1.0
    product_top = float(np.abs(products).max(initial=0.0)) or 1.0
    query_label = labels[view.query_token]
    dims = np.arange(head_dim, dtype=np.int32)
    rows = np.arange(n_tokens, dtype=np.int32)
    key_text = [[f"key «{label}» (#{i}), dimension {d}" for d in range(head_dim)] for i, label in enumerate(labels)]
    fig.add_trace(go.Heatmap(
        z=q[None, :], x=dims, y=[0], coloraxis="coloraxis",
        text=[[f"query «{query_label}» (#{view.query_token}), dimension {d}" for d in range(head_dim)]],
        hovertemplate="%{text}: %{z:.4g}<extra></extra>", name="query q"), row=1, col=1)
    fig.add_trace(go.Heatmap(
        z=k, x=dims, y=rows, coloraxis="coloraxis", text=key_text,
        hovertemplate="%{text}: k = %{z:.4g}<extra></extra>", name="keys k"), row=2, col=1)
    fig.add_trace(go.Heatmap(
        z=products, x=dims, y=rows, coloraxis="coloraxis2", text=key_text,
        hovertemplate="%{text}: q∘k = %{z:.4g}<extra></extra>", name="q∘k"), row=2, col=2)
    score_text = [format_score(s) if ok else "masked (padding)" for s, ok in zip(view.scores, real)]
    scores = np.where(real, view.scores, 0.0).astype(np.float32)
    fig.add_trace(go.Bar(
        x=scores, y=rows, orientation="h", marker=dict(color=np.where(scores >= 0, VECTOR_POSITIVE, VECTOR_NEGATIVE).tolist()),
        customdata=labels, text=score_text, textposition="none",
        hovertemplate="«%{customdata}»: scaled q·k = %{text}<extra></extra>", name="scaled q·k",
        showlegend=False), row=2, col=3)
    attention = np.asarray(view.attention, dtype=np.float32)
    fig.add_trace(go.Bar(
        x=attention, y=rows, orientation="h", marker=dict(color=HIGHLIGHT_COLOUR),
        customdata=labels, text=[format_score(a) for a in attention], textposition="none",
        hovertemplate="«%{customdata}»: attention %{text}<extra></extra>", name="attention",
        showlegend=False), row=2, col=4)
    colorbar_y = -COLORBAR_OFFSET_PX / (query_px + gap_px + plot_h)
    for axis, name, top, x in (("coloraxis", "q, k", vector_top, NEURON_COLORBAR_X[0]),
                               ("coloraxis2", "q∘k", product_top, NEURON_COLORBAR_X[1])):
        fig.update_layout({axis: dict(colorscale=VECTOR_SCALE, cmin=-top, cmax=top, colorbar=dict(
            title=dict(text=f"{name} value<br>ochre < 0 < green", side="top", font=dict(size=11)),
            tickvals=[-top, 0, top], ticktext=[f"−{top:.2g}", "0", f"{top:.2g}"], **NEURON_COLORBAR, x=x,
            y=colorbar_y))})
    longest = max((len(str(t)) for t in view.tokens), default=1)
    left = int(min(220, 24 + longest * CHAR_PX))
    title = fit_title(escape(f"Layer {view.layer}, head {view.head}: how «{view.tokens[view.query_token]}» "
                             f"(#{view.query_token}) attends"))
    top = 80 + TITLE_LINE_PX * title.count("<br>")
    bottom = COLORBAR_OFFSET_PX + 18 + 10 + 30 + 14
    fig.update_layout(
        template=template(), font=FONT, height=top + query_px + gap_px + plot_h + bottom, showlegend=False,
        title=dict(text=title, x=0.0, xanchor="left", font=dict(size=TITLE_FONT_SIZE)),
        margin=dict(l=left, r=20, t=top, b=bottom), bargap=0.15,
        hoverlabel=dict(font=dict(family=FONT["family"], size=13)),
    )
    tick_size = 11 if row_px >= 14 else 9
    step = 1 if row_px >= 11 else math.ceil(11 / row_px)
    token_axis = dict(tickmode="array", tickvals=list(range(0, n_tokens, step)), range=[n_tokens - 0.5, -0.5],
                      showgrid=False, zeroline=False, tickfont=dict(size=tick_size))
    fig.update_yaxes(**token_axis, ticktext=[labels[i] for i in range(0, n_tokens, step)], row=2, col=1)
    for col in (2, 3, 4):
        fig.update_yaxes(**token_axis, showticklabels=False, row=2, col=col)
    fig.update_yaxes(tickmode="array", tickvals=[0], ticktext=[query_label], showgrid=False, zeroline=False,
                     tickfont=dict(size=tick_size), row=1, col=1)
    fig.update_xaxes(showticklabels=False, showgrid=False, zeroline=False, row=1, col=1)
    # Dimensions labelled at quarters, none at the right end, where a label would meet the next panel's "0".
    dimension_ticks = list(range(0, head_dim - max(head_dim // 8, 1), max(head_dim // 4, 1)))
    for col in (1, 2):
        fig.update_xaxes(title=dict(text="dimension", standoff=4, font=NEURON_SMALL_FONT), tickmode="array",
                         tickvals=dimension_ticks, tickangle=0, tickfont=NEURON_SMALL_FONT, showgrid=False,
                         zeroline=False, row=2, col=col)
    # The two narrow panels are about 50 px wide on a phone: three level labels at most, never turned on end.
    narrow = dict(nticks=3, tickangle=0, tickfont=NEURON_SMALL_FONT)
    fig.update_xaxes(title=dict(text="score", standoff=4, font=NEURON_SMALL_FONT), zeroline=True, zerolinecolor="#9aa5b1", **narrow,
                     row=2, col=3)
    fig.update_xaxes(title=dict(text="weight", standoff=4, font=NEURON_SMALL_FONT), range=[0, 1.0], tickvals=[0, 1], **narrow, row=2, col=4)
    # The query token's row, outlined in each panel.
    for col in (1, 2, 3, 4):
        fig.add_shape(type="rect", xref="x domain", yref="y", x0=0, x1=1,
                      y0=view.query_token - 0.5, y1=view.query_token + 0.5,
                      line=dict(color=HIGHLIGHT_COLOUR, width=1.5), fillcolor="rgba(0,0,0,0)", row=2, col=col)
    fig.update_annotations(font=dict(size=13))  # the theme's text colour
    return fig
