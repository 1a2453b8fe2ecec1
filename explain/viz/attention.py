"""Attention figures: one head as a token-by-token map, all heads as a grid of thumbnails, head statistics,
rollout and cross-model layer distances.

Everything here is a pure function: no model code, no Streamlit. Token strings are
user text, so they are HTML-escaped wherever Plotly or a browser would interpret
markup (tick labels, hover text, titles, highlight spans).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.colors import get_colorscale

from explain.pieces import readable_tokens
from explain.viz.describe import set_description
from explain.viz.theme import (
    ATTENTION_SCALE,
    CHAR_WIDTH,
    FONT_SIZE,
    GRID_GAP_COLOUR,
    GRID_MAX_PLOT_HEIGHT,
    GRID_PLOT_WIDTH,
    HEAD_CELLS,
    HEATMAP_MAX_SIDE,
    HEATMAP_MIN_SIDE,
    HEATMAP_PX_PER_TOKEN,
    HEATMAP_TICK_FONT,
    HIGHLIGHT_COLOUR,
    MAX_HOVER_TEXT_CELLS,
    SEGMENT_LINE,
    STATISTIC_SCALE,
    TITLE_FONT_SIZE,
    TITLE_LINE_PX,
    base_layout,
    clip,
    esc,
    label_margin,
    layer_axis,
    tick_font_size,
    token_axis,
    wrap_title,
)

# A single-head map whose largest weight is under this looks almost white on the 0–1 scale (`pale_map_note`).
PALE_MAP_PEAK = 0.3


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


def _hover_text(query_labels: Sequence[str], key_labels: Sequence[str],
                positions: Sequence[int] | None = None) -> list[list[str]]:
    """"from → to" per cell; with `positions`, each token is prefixed by its place in the whole text ("#12 film")."""
    q = [esc(t) for t in query_labels]
    k = [esc(t) for t in key_labels]
    if positions is not None:
        q = [f"#{p} {t}" for p, t in zip(positions, q)]
        k = [f"#{p} {t}" for p, t in zip(positions, k)]
    return [[f"{qi} → {kj}" for kj in k] for qi in q]


def token_span(positions: Sequence[int] | np.ndarray, first: int, last: int) -> slice:
    """The rows (and columns) of a map whose tokens' places in the text (`positions`, ascending) lie in first..last."""
    p = np.asarray(positions)
    return slice(int(np.searchsorted(p, first, side="left")), int(np.searchsorted(p, last, side="right")))


def every_label_fits(n_tokens: int) -> bool:
    """Whether the single-head map of n_tokens labels every token (longer maps label every k-th)."""
    side = clip(HEATMAP_PX_PER_TOKEN * n_tokens, HEATMAP_MIN_SIDE, HEATMAP_MAX_SIDE)
    return tick_font_size(n_tokens, side, smallest=HEATMAP_TICK_FONT)[1] == 1


def most_labelled_tokens() -> int:
    """The longest single-head map (in tokens) that still labels every token."""
    return max(n for n in range(1, HEATMAP_MAX_SIDE + 1) if every_label_fits(n))


def pale_map_note(fig: go.Figure, threshold: float = PALE_MAP_PEAK) -> str | None:
    """Why to stretch a single-head map: on the 0–1 scale a map whose largest weight is under `threshold` looks
    almost white. None when the map is stretched already or has a weight at or above `threshold`."""
    heatmap = fig.data[0]
    z = np.asarray(heatmap.z, dtype=np.float64)
    if heatmap.zmax != 1.0 or not z.size or not np.isfinite(z).any():
        return None
    peak = float(np.nanmax(z))
    if peak >= threshold:
        return None
    return (f"The largest weight in this map is {peak:.2g}, so on the 0–1 scale it looks almost white: stretch the "
            f"colours to 0–{peak:.2g} to see its pattern.")


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
        title=dict(text=f"{esc(title)} ({'stretched' if stretch else '0–1'})", side="right"),
        tickmode="array",
        tickvals=ticks,
        ticktext=labels,
        thickness=14,
    )


def _colorbar_margin(ticktext: Sequence[str], plot_width: float) -> int:
    """Right margin that holds a colour bar at x=1.02 (paper), its tick labels and a side title."""
    labels = max((len(t) for t in ticktext), default=1) * CHAR_WIDTH * FONT_SIZE
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
    positions: Sequence[int] | None = None,
    span: tuple[int, int] | None = None,
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
        positions: each row's (and column's) place in the whole text, ascending (the rows left when special tokens
            are hidden); default 0..n-1. Hover names tokens by these places when `span` is given.
        span: (first, last) places in the text: draw only the tokens from first to last, a square zoom of the map
            (every token labelled when the span is short enough, see `every_label_fits`); colours keep the scale
            of the whole map unless `stretch`.

    The figure has a fixed size whose plot area is square (labels thinned to every k-th token when they would
    not fit at a readable size); hover shows "from → to: value" with the token strings, or token positions
    when the map has more than MAX_HOVER_TEXT_CELLS cells (to keep the figure small).
    """
    z = np.asarray(weights, dtype=np.float32)
    if z.ndim != 2 or z.shape != (len(query_labels), len(key_labels)):
        raise ValueError(f"weights of shape {z.shape} do not match {len(query_labels)} x {len(key_labels)} labels")
    query_labels, key_labels = readable_tokens(query_labels), readable_tokens(key_labels)
    if span is not None:
        if z.shape[0] != z.shape[1]:
            raise ValueError("a span zooms a square (self-attention) map only")
        places = list(range(len(z))) if positions is None else [int(p) for p in positions]
        if len(places) != len(z):
            raise ValueError(f"{len(places)} positions for a map of {len(z)} tokens")
        rows = token_span(places, *span)
        if rows.start >= rows.stop:
            raise ValueError(f"no token of the map lies in the span {span[0]}–{span[1]}")
        z = z[rows, rows]
        query_labels, key_labels = query_labels[rows], key_labels[rows]
        positions = places[rows]
        if segment_start is not None:
            segment_start = segment_start - rows.start if rows.start < segment_start < rows.stop else None
    n_q, n_k = z.shape
    side = int(clip(HEATMAP_PX_PER_TOKEN * max(n_q, n_k), HEATMAP_MIN_SIDE, HEATMAP_MAX_SIDE))
    x_size, x_step = tick_font_size(n_k, side, smallest=HEATMAP_TICK_FONT)
    y_size, y_step = tick_font_size(n_q, side, smallest=HEATMAP_TICK_FONT)
    if n_q * n_k <= MAX_HOVER_TEXT_CELLS:
        hover = dict(text=_hover_text(query_labels, key_labels, positions if span is not None else None),
                     hovertemplate="%{text}: %{z:.3g}<extra></extra>")
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
    left = label_margin(query_labels[::y_step], y_size)
    right = _colorbar_margin(colorbar["ticktext"], side)
    bottom = label_margin(key_labels[::x_step], x_size, tilt=60 if n_k > 1 else 0)
    width = left + side + right
    wrapped = wrap_title(title, int(width / (CHAR_WIDTH * TITLE_FONT_SIZE))) if title else ""
    top = 40 + TITLE_LINE_PX * (wrapped.count("<br>") + 1) if wrapped else 30
    base_layout(fig, title=wrapped, height=top + side + bottom, width=width,
            margin=dict(l=left, r=right, t=top, b=bottom))
    fig.update_xaxes(
        **token_axis(key_labels, step=x_step),
        title=dict(text="to (key)"),
        tickangle=-60 if n_k > 1 else 0,
        tickfont=dict(size=x_size),
    )
    fig.update_yaxes(
        **token_axis(query_labels, step=y_step),
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
    top = label_margin([f"head {n_heads - 1}"], 11, tilt=0, title=False) + 16
    left = label_margin([f"layer {n_layers - 1}"], 11, title=False)
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
    base_layout(fig, title="", height=int(round(top + plot_h + bottom)), width=int(round(left + plot_w + right)),
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
    peaks = w.max(axis=(-2, -1))
    high, low = np.unravel_index(int(np.argmax(peaks)), peaks.shape), np.unravel_index(int(np.argmin(peaks)), peaks.shape)
    return set_description(fig, (
        f"{n_layers} layers by {n_heads} heads, one attention map each; the most peaked is layer {high[0]} head "
        f"{high[1]} (largest weight {peaks[high]:.3g}), the flattest layer {low[0]} head {low[1]} (largest weight "
        f"{peaks[low]:.3g})"))


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
            colorbar=dict(title=dict(text=esc(colorbar_title), side="right"), thickness=14),
        )
    )
    base_layout(fig, title=esc(name), height=int(clip(130 + 34 * n_layers, 300, 700)),
            margin=dict(l=label_margin([str(n_layers)], FONT_SIZE),
                        b=label_margin([str(n_heads)], FONT_SIZE, tilt=0)),
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
    fig.update_yaxes(**layer_axis(n_layers))
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
    token_labels = readable_tokens(token_labels)
    n_layers, n_tokens = z.shape
    keys = [esc(t) for t in token_labels]
    text = [[f"layer {layer} → {k}" for k in keys] for layer in range(n_layers)]
    size, step = tick_font_size(n_tokens, 900)
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
    base_layout(
        fig,
        title=f"where «{esc(source_label)}» attends, by layer",
        height=int(clip(190 + 30 * n_layers, 320, 700)),
        margin=dict(l=label_margin([str(n_layers)], FONT_SIZE),
                    b=label_margin(token_labels[::step], size, tilt=60 if n_tokens > 1 else 0)),
    )
    fig.update_xaxes(
        **token_axis(token_labels, step=step),
        title=dict(text="to (key)"),
        tickangle=-60 if n_tokens > 1 else 0,
        tickfont=dict(size=size),
    )
    fig.update_yaxes(**layer_axis(n_layers))
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
    base_layout(fig, title=f"Attention distance by layer: {esc(label_a)} vs {esc(label_b)}", height=320,
            margin=dict(l=label_margin(["0.8"], FONT_SIZE), b=label_margin(["0"], FONT_SIZE, tilt=0)))
    # Short enough for a phone's width; the page's caption says how the second model's layers are matched.
    fig.update_xaxes(title="layer of the first model",
                     tickmode="array", tickvals=layers, showgrid=False)
    fig.update_yaxes(title="JS distance", range=[0, 1], rangemode="tozero")
    return fig


