"""A chart's text alternative: one or two sentences a screen reader reads in place of a Plotly figure.

Built from the figure's own data (its title, each trace's values and the labels on its axes), so every chart the
dashboard draws gets one without a describer of its own; a builder whose data would read wrongly (the all-heads
mosaic stores colour codes) puts its own sentence in `layout.meta["description"]` (`set_description`).
"""

from __future__ import annotations

import html
import re
from typing import Any

import numpy as np
import plotly.graph_objects as go

MAX_TRACES = 3  # traces described one by one; the rest are counted
TOP = 3  # the largest values named


def set_description(fig: go.Figure, text: str) -> go.Figure:
    """Give `fig` its own text alternative (used by `describe_figure` instead of one read from the data)."""
    meta = fig.layout.meta if isinstance(fig.layout.meta, dict) else {}
    fig.update_layout(meta={**meta, "description": text})
    return fig


def plain(text: Any) -> str:
    """Plotly's label markup (<b>, <br>, entities) as plain text."""
    return " ".join(html.unescape(re.sub(r"<br\s*/?>|<[^>]+>", " ", str(text))).split())


def number(value: float) -> str:
    return f"{value:.3g}"


def values_of(data: Any) -> np.ndarray | None:
    """A trace's numbers as floats, or None when it holds none (strings, a missing array)."""
    if data is None:
        return None
    try:
        out = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return out if out.size and np.isfinite(out).any() else None


def axis_labels(fig: go.Figure, trace: Any, letter: str, count: int) -> list[str]:
    """The labels of a trace's `count` positions along axis `letter` ("x" or "y"): its own category names, else
    the axis's tick text at those positions, else the positions themselves."""
    own = getattr(trace, letter, None)
    if own is not None and len(own) == count and not all(isinstance(v, (int, float, np.number)) for v in own):
        return [plain(v) for v in own]
    axis_name = (getattr(trace, f"{letter}axis", None) or letter).replace(letter, f"{letter}axis")
    try:
        axis = fig.layout[axis_name]
    except (KeyError, ValueError):
        axis = None
    positions = list(own) if own is not None and len(own) == count else list(range(count))
    if axis is not None and axis.ticktext is not None and axis.tickvals is not None:
        names = {float(v): plain(t) for v, t in zip(axis.tickvals, axis.ticktext)}
        if all(float(p) in names for p in positions):
            return [names[float(p)] for p in positions]
    title = plain(axis.title.text or "") if axis is not None and axis.title else ""
    return [f"{title} {plain(p)}".strip() for p in positions]


def describe_bars(fig: go.Figure, trace: Any) -> str | None:
    horizontal = trace.orientation == "h"
    values = values_of(trace.x if horizontal else trace.y)
    if values is None:
        return None
    values = values.reshape(-1)
    labels = axis_labels(fig, trace, "y" if horizontal else "x", len(values))
    top = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:TOP]
    named = ", ".join(f"{labels[i]} {number(values[i])}" for i in top)
    name = f"{plain(trace.name)}: " if trace.name else ""
    return (f"{name}{len(values)} bars from {number(np.nanmin(values))} to {number(np.nanmax(values))}; "
            f"largest: {named}")


def describe_grid(fig: go.Figure, trace: Any) -> str | None:
    z = values_of(trace.z)
    if z is None or z.ndim != 2:
        return None
    rows = axis_labels(fig, trace, "y", z.shape[0])
    cols = axis_labels(fig, trace, "x", z.shape[1])
    flat = np.nan_to_num(z, nan=-np.inf).reshape(-1)
    top = np.argsort(-flat, kind="stable")[:TOP]
    named = ", ".join(f"{rows[i // z.shape[1]]} with {cols[i % z.shape[1]]} {number(flat[i])}" for i in top)
    return (f"a {z.shape[0]} by {z.shape[1]} grid of values from {number(np.nanmin(z))} to {number(np.nanmax(z))}; "
            f"largest: {named}")


def describe_points(fig: go.Figure, trace: Any) -> str | None:
    y = values_of(trace.y)
    if y is None:
        return None
    y = y.reshape(-1)
    xs = axis_labels(fig, trace, "x", len(y))
    best = int(np.nanargmax(y))
    name = f"{plain(trace.name)}: " if trace.name else ""
    return (f"{name}{len(y)} points, from {number(np.nanmin(y))} to {number(np.nanmax(y))}; "
            f"highest {number(y[best])} at {xs[best]}")


DESCRIBERS = {"bar": describe_bars, "heatmap": describe_grid, "scatter": describe_points,
              "scattergl": describe_points}


def describe_figure(fig: go.Figure) -> str:
    """A short text alternative for `fig`: its title, then what each trace shows (its size, its range and its
    largest values), or the builder's own sentence (`set_description`)."""
    title = plain(fig.layout.title.text or "") if fig.layout.title else ""
    meta = fig.layout.meta
    if isinstance(meta, dict) and meta.get("description"):
        parts = [str(meta["description"])]
    else:
        shown = [t for t in fig.data if t.visible is not False and (t.type != "scatter" or t.mode != "markers"
                                                                      or t.marker.opacity != 0)]
        parts = [part for t in shown[:MAX_TRACES] if (part := DESCRIBERS.get(t.type, lambda f, t: None)(fig, t))]
        if len(shown) > MAX_TRACES:
            parts.append(f"and {len(shown) - MAX_TRACES} more series")
    body = "; ".join(parts) or "no values"
    return f"Chart{': ' + title if title else ''}. {body[0].upper()}{body[1:]}."
