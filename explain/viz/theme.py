"""The look every figure shares: fonts, colours, sizes, axes, and escaping for Plotly's HTML subset."""

from __future__ import annotations

import functools
import html
import math
import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import plotly.graph_objects as go

FONT_SIZE = 13
# No colour here: text takes the template's, which Streamlit's chart theme replaces with its light or dark text.
FONT = dict(family="Inter, 'Segoe UI', Helvetica, Arial, sans-serif", size=FONT_SIZE)
MODEBAR_PX = 30  # the chart toolbar's strip at the top right: titles start below it, so it never covers them
ATTENTION_SCALE = "Blues"
STATISTIC_SCALE = "Viridis"
GRID_GAP_COLOUR = "#aab4bf"
# One meaning per colour (tests/unit/test_figures.py keeps them apart):
# - attribution sign, here and in every RdBu chart: red lowers the explained score, blue raises it;
NEGATIVE_RGB = (178, 24, 43)  # RdBu ends: red lowers the score
POSITIVE_RGB = (33, 102, 172)  # blue raises it
ATTRIBUTION_SCALE = "RdBu"
# Pages the highlights are drawn on (Streamlit's default light and dark backgrounds) and the text colours they
# prefer there; every piece of text on a coloured cell keeps WCAG AA contrast (MIN_CONTRAST) on both.
LIGHT_PAGE = "#ffffff"
DARK_PAGE = "#171614"
LIGHT_TEXT = "#1f2933"
DARK_TEXT = "#edebe8"
MUTED_TEXT = "#52606d"  # legends and notes on the light page
MUTED_TEXT_DARK = "#b8c2cc"  # the same on the dark page
MIN_CONTRAST = 4.5
# - the explained label among the predicted ones: violet, neither red nor blue;
EXPLAINED_COLOUR = "#7048e8"
OTHER_COLOUR = "#9aa5b1"
POSITIVE_LINE = "#52606d"  # a multi-label head's labels that are on: dark grey beside the light grey of the others
# - signs of vector components (the neuron view's q, k, q∘k, q·k), which say nothing about the score: ochre / green;
VECTOR_NEGATIVE = "#a6761d"
VECTOR_POSITIVE = "#1b7837"
VECTOR_SCALE = [[0.0, VECTOR_NEGATIVE], [0.5, "#f7f7f7"], [1.0, VECTOR_POSITIVE]]
# - the head or token shown, outlined in maps of heads and tokens.
HIGHLIGHT_COLOUR = "#d9480f"
MAX_PREDICTION_BARS = 10
MAX_HOVER_TEXT_CELLS = 256 * 256  # above this, hover names positions, not tokens
# Explained scores are probabilities or cosine similarities (scale 1): a change below this share of the score's
# scale is too small to explain, and the highlights' colour scale never resolves finer than it.
NEGLIGIBLE_CHANGE = 1e-3
TITLE_FONT_SIZE = 15
TITLE_LINE_PX = 20
# A title line of this many characters fits a chart across a 390 px phone (a 358 px chart, margins out): Chromium
# draws 6.5-6.9 px per character of these titles at 15 px, so 44 leaves room for wider glyphs.
PHONE_TITLE_CHARS = 44
PREDICTION_TITLE_CHARS = PHONE_TITLE_CHARS  # the prediction chart sits in a narrow column (about 420 px)
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


# -- small helpers -------------------------------------------------------------


@functools.cache
def template() -> go.layout.Template:
    """plotly_white with dark text, every title placed under the toolbar's strip.

    Streamlit keeps these placements when it swaps in its own colours, so the charts follow the page's light or
    dark theme. Built on first use: the CLI and the library's numbers import this module without drawing.
    """
    import plotly.graph_objects as go
    import plotly.io as pio

    chosen = go.layout.Template(pio.templates["plotly_white"])
    chosen.layout.font = dict(color="#1f2933")
    chosen.layout.title = dict(y=1.0, yref="container", yanchor="top", pad=dict(t=MODEBAR_PX))
    return chosen


def esc(text: Any) -> str:
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
    return "<br>".join(esc(line) for line in lines)


def fit_title(title: str, max_chars: int = PHONE_TITLE_CHARS) -> str:
    """An escaped title (lines joined by <br>) with every plain line longer than `max_chars` wrapped, so that no
    title runs past a chart as narrow as a phone's; lines with markup (a <span>) are kept as they are."""
    lines = []
    for line in title.split("<br>"):
        plain = html.unescape(line)
        lines.append(wrap_title(plain, max_chars) if "<" not in line and len(plain) > max_chars else line)
    return "<br>".join(lines)


def clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def base_layout(
    fig: go.Figure, *, title: str, height: int, margin: Mapping[str, float] | None = None, **kwargs: Any
) -> go.Figure:
    """Shared layout: template, fonts, margins that leave room for tick labels.

    `title` is escaped already and may hold <br> line breaks (see `wrap_title`): the top
    margin grows by a line for each; a line too long for a phone's width is wrapped (`fit_title`), the
    figure growing by the lines it adds. `margin` should already fit the tick labels (see
    `_label_margin`): axes keep automargin as a safety net, but when the margins fit,
    Plotly draws the figure once instead of measuring the labels and drawing it again.
    """
    fitted = fit_title(title)
    lines = fitted.count("<br>") + 1 if title else 0
    added = TITLE_LINE_PX * (fitted.count("<br>") - title.count("<br>"))
    margins = {"l": 10, "r": 10, "t": MODEBAR_PX + 14 + TITLE_LINE_PX * lines if title else 30, "b": 10,
               **(margin or {})}
    if margin and "t" in margin:  # the caller's top margin holds the lines it knew of
        margins["t"] += added
    fig.update_layout(
        template=template(),
        font=FONT,
        title=dict(text=fitted, x=0.0, xanchor="left", font=dict(size=TITLE_FONT_SIZE)),
        height=int(height) + added,
        margin=margins,
        hoverlabel=dict(font=dict(family=FONT["family"], size=13)),
        **kwargs,
    )
    return fig


CHAR_WIDTH = 0.62  # of the font size: a little wider than the average glyph of FONT, so estimates err large
AXIS_TITLE_PX = 40


def label_margin(labels: Sequence[str], size: float, *, tilt: float = 90.0, title: bool = True) -> int:
    """Pixels that tick labels (plus the axis title) take away from the plot, measured across the axis.

    `tilt` is the angle in degrees between the labels' text and the axis: 90 for horizontal labels on a y axis,
    0 for horizontal labels on an x axis, 60 for x labels at tickangle -60.
    """
    longest = max((len(str(t)) for t in labels), default=0) * CHAR_WIDTH * size
    angle = math.radians(tilt)
    across = longest * math.sin(angle) + 1.3 * size * math.cos(angle)
    return int(math.ceil(across + 12 + (AXIS_TITLE_PX if title else 0)))


def tick_font_size(n: int, length_px: float, *, smallest: int = 8) -> tuple[int, int]:
    """(font size, label every k-th tick) so that n tick labels fit in length_px, none smaller than `smallest`."""
    per_tick = length_px / max(n, 1)
    size = int(clip(per_tick * 0.8, smallest, 12))
    step = max(1, math.ceil(size * 1.15 / max(per_tick, 1e-9)))
    return size, step


def layer_axis(n_layers: int) -> dict[str, Any]:
    """Layers 0..n-1 top to bottom."""
    return dict(title=dict(text="layer"), tickmode="array", tickvals=list(range(n_layers)), showgrid=False,
                zeroline=False, range=[n_layers - 0.5, -0.5], automargin=True)


def token_axis(labels: Sequence[str], *, step: int = 1) -> dict[str, Any]:
    """Numeric axis 0..n-1 labelled with (escaped) tokens, so repeated tokens stay separate."""
    n = len(labels)
    vals = list(range(0, n, step))
    return dict(
        tickmode="array",
        tickvals=vals,
        ticktext=[esc(labels[i]) for i in vals],
        range=[-0.5, n - 0.5],
        showgrid=False,
        zeroline=False,
        automargin=True,
    )


# -- prediction ----------------------------------------------------------------


