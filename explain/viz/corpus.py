"""Figures of a corpus run: faithfulness per method with 95% intervals, the words the model relies on (candidate
shortcuts marked), and accuracy by slice. They take the summaries' pyarrow tables (`explain.corpus.summary`)."""

from __future__ import annotations

import html

import plotly.graph_objects as go
import pyarrow as pa

from explain.viz.theme import FONT, HIGHLIGHT_COLOUR, OTHER_COLOUR, TEMPLATE


def method_ranking_figure(ranking: pa.Table) -> go.Figure:
    """Mean comprehensiveness (higher is better) and sufficiency (lower is better) per method, with 95% intervals."""
    rows = ranking.to_pylist()
    names = [html.escape(r["method"]) for r in rows]
    fig = go.Figure()
    for metric, colour in (("comprehensiveness", HIGHLIGHT_COLOUR), ("sufficiency", OTHER_COLOUR)):
        fig.add_bar(name=metric, x=names, y=[r[metric] for r in rows], marker_color=colour,
                    error_y=dict(type="data", symmetric=False,
                                 array=[r[f"{metric}_high"] - r[metric] for r in rows],
                                 arrayminus=[r[metric] - r[f"{metric}_low"] for r in rows]))
    fig.update_layout(template=TEMPLATE, font=FONT, barmode="group", title="Faithfulness on this data (95% bootstrap)",
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
    fig.update_layout(template=TEMPLATE, font=FONT, title="What the model relies on (coloured: candidate shortcuts)",
                      xaxis_title="mean signed attribution", height=max(300, 22 * len(rows) + 120))
    return fig


def slices_figure(slices: pa.Table) -> go.Figure:
    """Accuracy (where gold labels exist) and text counts per slice."""
    rows = [r for r in slices.to_pylist() if r["slice"] != "all"]
    fig = go.Figure(go.Bar(
        x=[f"{r['slice']}: {html.escape(str(r['value']))}" for r in rows],
        y=[r["accuracy"] for r in rows], text=[r["texts"] for r in rows], marker_color=OTHER_COLOUR))
    fig.update_layout(template=TEMPLATE, font=FONT, title="Accuracy by slice (bar labels: texts)",
                      yaxis=dict(range=[0, 1], title="accuracy"))
    return fig
