"""Figures of a corpus run: faithfulness per method with 95% intervals, the words the model relies on (candidate
shortcuts marked), accuracy by slice, and head importance over the data. They take the summaries' pyarrow tables (`explain.corpus.summary`)."""

from __future__ import annotations

import html

import numpy as np
import plotly.graph_objects as go
import pyarrow as pa

from explain.viz.theme import FONT, HIGHLIGHT_COLOUR, OTHER_COLOUR, STATISTIC_SCALE, template

HEAD_COLUMNS = {
    "gradient_normalised": "gradient importance, normalised per layer",
    "gradient": "gradient importance |d score / d gate|",
    "ablation": "ablation effect (score change without the head)",
}

ERROR_BAR_COLOUR = "#7b8794"  # mid grey: 3.5:1 on the light page and 4.6:1 on the dark one (the template's is dark)


def method_ranking_figure(ranking: pa.Table) -> go.Figure:
    """Mean comprehensiveness (higher is better) and sufficiency (lower is better) per method, with 95% intervals."""
    rows = ranking.to_pylist()
    names = [html.escape(r["method"]) for r in rows]
    fig = go.Figure()
    for metric, colour in (("comprehensiveness", HIGHLIGHT_COLOUR), ("sufficiency", OTHER_COLOUR)):
        fig.add_bar(name=metric, x=names, y=[r[metric] for r in rows], marker_color=colour,
                    error_y=dict(type="data", symmetric=False, color=ERROR_BAR_COLOUR,
                                 array=[r[f"{metric}_high"] - r[metric] for r in rows],
                                 arrayminus=[r[metric] - r[f"{metric}_low"] for r in rows]))
    fig.update_layout(template=template(), font=FONT, barmode="group", title="Faithfulness on this data (95% bootstrap)",
                      yaxis_title="mean over texts")
    return fig


def shortcut_figure(shortcuts: pa.Table, top: int = 25) -> go.Figure:
    """Word forms by mean |attribution|, bars signed by the mean attribution; candidate shortcuts in colour."""
    rows = sorted(shortcuts.to_pylist(), key=lambda r: -r["mean_abs"])[:top][::-1]
    labels = [f"{html.escape(r['form'])} ({r['texts']}, {html.escape(str(r['class']))})" for r in rows]
    fig = go.Figure(go.Bar(
        x=[r["mean_signed"] for r in rows], y=labels, orientation="h",
        marker_color=[HIGHLIGHT_COLOUR if r["flagged"] else OTHER_COLOUR for r in rows],
        hovertext=[f"mean |attribution| {r['mean_abs']:.3g}; {r['share']:.0%} of its texts predicted "
                   f"{html.escape(str(r['class']))}" for r in rows], hoverinfo="text"))
    fig.update_layout(template=template(), font=FONT, title="What the model relies on (coloured: candidate shortcuts)",
                      xaxis_title="mean signed attribution", height=max(300, 22 * len(rows) + 120))
    return fig


def slices_figure(slices: pa.Table) -> go.Figure:
    """Accuracy (where gold labels exist) and text counts per slice."""
    rows = [r for r in slices.to_pylist() if r["slice"] != "all"]
    fig = go.Figure(go.Bar(
        x=[f"{r['slice']}: {html.escape(str(r['value']))}" for r in rows],
        y=[r["accuracy"] for r in rows], text=[r["texts"] for r in rows], marker_color=OTHER_COLOUR))
    fig.update_layout(template=template(), font=FONT, title="Accuracy by slice (bar labels: texts)",
                      yaxis=dict(range=[0, 1], title="accuracy"))
    return fig


def head_importance_figure(heads: pa.Table, column: str = "gradient_normalised") -> go.Figure:
    """A layer x head heatmap of `column` of `explain.corpus.summary.head_summary` (mean over the texts); hover
    gives each head's mean ± standard deviation of the gradient importance and the ablation effect, and its texts."""
    rows = heads.to_pylist()
    n_layers = 1 + max((r["layer"] for r in rows), default=-1)
    n_heads = 1 + max((r["head"] for r in rows), default=-1)
    values = np.full((n_layers, n_heads), np.nan)
    hover = [["" for _ in range(n_heads)] for _ in range(n_layers)]

    def spread(r: dict, name: str) -> str:
        mean, std = r[name], r[f"{name}_std"]
        if mean is None:
            return "not computed"
        return f"{mean:.3g} ± {std:.2g}" if std is not None else f"{mean:.3g}"

    for r in rows:
        value = r[column]
        values[r["layer"], r["head"]] = np.nan if value is None else value
        hover[r["layer"]][r["head"]] = (
            f"layer {r['layer']}, head {r['head']}<br>{column.replace('_', ' ')}: "
            f"{'n/a' if value is None else f'{value:.3g}'}<br>gradient (mean ± std): {spread(r, 'gradient')}"
            f"<br>ablation effect (mean ± std): {spread(r, 'ablation')}<br>texts: {r['texts']}")
    title = HEAD_COLUMNS.get(column, column.replace("_", " "))
    fig = go.Figure(go.Heatmap(
        z=values, x=list(range(n_heads)), y=list(range(n_layers)), text=hover, hovertemplate="%{text}<extra></extra>",
        colorscale=STATISTIC_SCALE, colorbar=dict(title=dict(text=html.escape(title), side="right"))))
    fig.update_layout(template=template(), font=FONT, title="Head importance over the data (mean over texts)",
                      xaxis=dict(title="head", dtick=1), yaxis=dict(title="layer", dtick=1, autorange="reversed"),
                      height=max(260, 40 * n_layers + 140))
    return fig
