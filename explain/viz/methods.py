"""Figures that put attribution methods side by side: one highlight row per method, and their rank agreement.

Pure functions (no model code, no Streamlit). Words are user text: escaped in the HTML and in Plotly labels.
"""

from __future__ import annotations

import html
import math
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from explain.evaluation.faithfulness import spearman
from explain.methods import METHODS
from explain.records import Analysis, FaithfulnessSummary
from explain.viz.highlights import score_colour, text_direction, themed
from explain.viz.theme import (
    DARK_PAGE,
    FONT,
    LIGHT_PAGE,
    TITLE_FONT_SIZE,
    TITLE_LINE_PX,
    fit_title,
    format_score,
    template,
)

RELEVANCE_RGB = (106, 61, 154)  # one hue for methods whose scores are never negative
AGREEMENT_SCALE = "RdBu"
AGREEMENT_RANGE = (-1.0, 1.0)
# The word-scores table scrolls sideways where its words do not fit (a phone): the method names wrap, so they take
# less than half of a 390 px screen, and stay in place (on the page's own background) while the words scroll.
NAME_COLUMN = (f"white-space:normal;min-width:8em;max-width:11em;position:sticky;left:0;z-index:1;"
               f"background:{LIGHT_PAGE};background:{themed(LIGHT_PAGE, DARK_PAGE)};")
RANK_LABEL_CHARS = 14  # a method's name on the rank-agreement map wraps at this many characters a line


@dataclass(frozen=True)
class MethodRow:
    """One method's word scores as a highlight row: its title, one score per word, and whether they are signed."""

    title: str
    word_scores: np.ndarray
    signed: bool = True


def method_title(name: str) -> str:
    return METHODS[name].title if name in METHODS else name


def relevance_colour(value: float, scale: float) -> tuple[str, str]:
    """(background, text colour) for an unsigned relevance: white at 0, the one relevance hue at `scale`."""
    t = abs(float(value)) / scale if scale > 0 and math.isfinite(float(value)) else 0.0
    t = min(1.0, t)
    rgb = [round(255 + (c - 255) * t) for c in RELEVANCE_RGB]
    return "#{:02x}{:02x}{:02x}".format(*rgb), "#ffffff" if t > 0.6 else "#1f2933"


def row_scale(scores: np.ndarray) -> float:
    """The |score| a row shows at full colour: its own largest finite |score| (1 when there is none)."""
    finite = np.abs(np.asarray(scores, dtype=np.float64))
    finite = finite[np.isfinite(finite)]
    top = float(finite.max()) if finite.size else 0.0
    return top if top > 0 else 1.0


def methods_highlights_html(words: Sequence[str], rows: Sequence[MethodRow]) -> str:
    """A table: one row per method, one column per word, each cell coloured by the method's score for the word.

    Each row is scaled to its own largest |score| (methods' scores have different units), so colours compare
    words within a row and rankings across rows. Signed scores go from red (lowers the score) to blue (raises
    it); unsigned relevances use one hue. Every word and title is escaped; the HTML has inline styles only.
    """
    for row in rows:
        if len(row.word_scores) != len(words):
            raise ValueError(f"{row.title}: {len(row.word_scores)} scores for {len(words)} words")
    cell = "padding:2px 5px;border:1px solid #e4e7eb;white-space:nowrap;"
    direction = text_direction(" ".join(words))
    table_dir = f' dir="{direction}"' if direction else ""
    head = "".join(f'<th style="{cell}font-weight:500;"><bdi>{html.escape(str(w))}</bdi></th>' for w in words)
    corner = f'<th style="{cell}{NAME_COLUMN}"></th>'
    body = []
    for row in rows:
        scale = row_scale(row.word_scores)
        cells = []
        for word, value in zip(words, np.asarray(row.word_scores, dtype=np.float64)):
            background, colour = score_colour(value, scale) if row.signed else relevance_colour(value, scale)
            tip = html.escape(f"{word}: {format_score(value)}", quote=True)
            cells.append(f'<td title="{tip}" style="{cell}background:{background};color:{colour};text-align:center;">'
                         f"<bdi>{html.escape(str(word))}</bdi></td>")
        kind = "" if row.signed else " (unsigned)"
        body.append(f'<tr><th scope="row" style="{cell}{NAME_COLUMN}text-align:left;font-weight:600;">'
                    f"{html.escape(row.title + kind)}<br><span style=\"font-weight:400;font-size:11px;color:inherit;opacity:0.8;\">"
                    f"full colour at {html.escape(format_score(scale))}</span></th>{''.join(cells)}</tr>")
    lo, hi = score_colour(-1, 1)[0], score_colour(1, 1)[0]
    legend = (
        '<div style="margin-top:6px;font-size:12px;color:inherit;opacity:0.85;">Each row is scaled to its own largest |score|. '
        f'Signed: <span style="background:{lo};color:#fff;padding:0 4px;">lowers</span> '
        f'<span style="background:{hi};color:#fff;padding:0 4px;">raises</span> the score; unsigned: '
        f'<span style="background:{relevance_colour(1, 1)[0]};color:#fff;padding:0 4px;">relevant</span>.</div>'
    )
    return (
        "<div style=\"font-family:Inter,'Segoe UI',Helvetica,Arial,sans-serif;font-size:14px;color:inherit;"
        f'overflow-x:auto;"><table{table_dir} style="border-collapse:collapse;">'
        f'<tr>{corner}{head}</tr>{"".join(body)}</table>{legend}</div>'
    )


def method_rows(analysis: Analysis, names: Sequence[str] | None = None) -> list[MethodRow]:
    """The analysis's methods (or `names`, in that order) as highlight rows."""
    names = list(analysis.methods) if names is None else list(names)
    return [MethodRow(method_title(n), analysis.methods[n].word_scores, analysis.methods[n].attribution.signed)
            for n in names]


def rank_agreement(word_scores: Mapping[str, np.ndarray]) -> np.ndarray:
    """Spearman rank correlation of every pair of methods' word scores: float64 [methods, methods], symmetric,
    1 on the diagonal, nan where a method's scores are all equal (no ranking to compare)."""
    names = list(word_scores)
    n = len(names)
    matrix = np.eye(n, dtype=np.float64)
    for i in range(n):
        for j in range(i + 1, n):
            matrix[i, j] = matrix[j, i] = spearman(word_scores[names[i]], word_scores[names[j]])
    return matrix


def rank_agreement_figure(titles: Sequence[str], matrix: np.ndarray) -> go.Figure:
    """The rank-agreement matrix as a heatmap on a fixed -1..1 scale, values in the cells and on hover.

    The columns are numbered (the rows name each method with its number): fifteen names under columns a phone
    draws 15 px wide overlap at any angle. Names wrap onto two lines and the colour bar lies under the matrix, so
    the cells keep the width.
    """
    z = np.asarray(matrix, dtype=np.float64)
    n = len(titles)
    if z.shape != (n, n):
        raise ValueError(f"{n} titles but a matrix of shape {z.shape}")
    labels = [html.escape(str(t), quote=False) for t in titles]
    text = [["n/a" if not math.isfinite(v) else f"{v:.2f}" for v in row] for row in z]
    low, high = AGREEMENT_RANGE
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=labels, zmin=low, zmax=high, colorscale=AGREEMENT_SCALE, text=text,
        texttemplate="%{text}", xgap=1, ygap=1,
        hovertemplate="%{y} vs %{x}: Spearman %{text}<extra></extra>",
        colorbar=dict(title=dict(text=f"Spearman ρ ({low:g} to {high:g})", side="top"), orientation="h",
                      x=0.0, xanchor="left", len=1.0, y=0.0, yref="container", yanchor="bottom", ypad=10,
                      thickness=12, tickvals=[-1, -0.5, 0, 0.5, 1]),
    ))
    names = [textwrap.wrap(str(t), RANK_LABEL_CHARS, break_long_words=False, break_on_hyphens=False) or [""]
             for t in titles]
    longest = max((len(line) for lines in names for line in lines), default=4)
    side = max(320, min(760, 60 * n + 8 * longest + 80))
    title = fit_title("Rank agreement between methods (Spearman, word scores)")
    fig.update_layout(
        template=template(), font=FONT, height=side + 90,
        title=dict(text=title, x=0.0, xanchor="left", font=dict(size=TITLE_FONT_SIZE)),
        margin=dict(l=10, r=10, t=60 + TITLE_LINE_PX * title.count("<br>"), b=100),
    )
    fig.update_xaxes(tickmode="array", tickvals=labels, ticktext=[str(i + 1) for i in range(n)], tickangle=0,
                     tickfont=dict(size=11), automargin=True, showgrid=False)
    fig.update_yaxes(tickmode="array", tickvals=labels,
                     ticktext=["<br>".join(html.escape(line, quote=False) for line in lines) + f" · {i + 1}"
                               for i, lines in enumerate(names)],
                     autorange="reversed", automargin=True, showgrid=False)
    return fig


def faithfulness_rows(analysis: Analysis, names: Sequence[str] | None = None) -> list[dict[str, object]]:
    """One row per method for a table: NAOPC and raw AOPC (one word at a time; higher is better), ERASER
    comprehensiveness (higher is better) and sufficiency (lower is better), agreement with leave-one-word-out, and
    seconds taken (None where not measured); ranked by NAOPC where it was computed."""
    names = ranked_by_naopc(analysis, names)

    def number(value: float) -> float | None:
        return float(f"{value:.3g}") if math.isfinite(value) else None

    return [
        {"method": method_title(n), "NAOPC ↑": number(r.naopc), "AOPC ↑": number(r.aopc),
         "comprehensiveness ↑": number(r.comprehensiveness), "sufficiency ↓": number(r.sufficiency),
         "LOO Spearman": number(r.loo_spearman), "seconds": number(r.attribution.seconds)}
        for n in names for r in [analysis.methods[n]]
    ]


def ranked_by_naopc(analysis: Analysis, names: Sequence[str] | None = None) -> list[str]:
    """The methods (or `names`) from the highest NAOPC to the lowest, those without one last in their order."""
    names = list(analysis.methods) if names is None else list(names)
    return sorted(names, key=lambda n: -analysis.methods[n].naopc if math.isfinite(analysis.methods[n].naopc)
                  else math.inf)


def random_floor_text(summary: FaithfulnessSummary) -> str:
    """The random-ranking floor in one sentence (mean ± standard deviation)."""
    removal = "replaced by the baseline token" if summary.removal == "replace" else "removed"
    naopc = (f", AOPC {summary.random_aopc:.2g} ± {summary.random_aopc_std:.2g}, NAOPC "
             f"{summary.random_naopc:.2g} ± {summary.random_naopc_std:.2g}" if summary.aopc_limits else "")
    return (f"Random rankings ({summary.n_random} of them): comprehensiveness "
            f"{summary.random_comprehensiveness:.2g} ± {summary.random_comprehensiveness_std:.2g}, sufficiency "
            f"{summary.random_sufficiency:.2g} ± {summary.random_sufficiency_std:.2g}{naopc} (words {removal}; "
            f"{summary.n_variants} inputs scored).")


def limits_text(summary: FaithfulnessSummary, n_words: int) -> str:
    """How NAOPC's limits were found on this text, in one sentence (or why they were not)."""
    if not summary.aopc_limits:
        return summary.naopc_note or "NAOPC was not computed for this analysis."
    how = (f"exact over all {n_words}! orders (every one of the {2 ** n_words} word subsets scored)"
           if summary.aopc_limits == "exact" else
           f"the best and worst orders a beam search of width {summary.beam_width} found, which can lie inside the "
           "exact ones")
    return (f"NAOPC places each method's AOPC (its words removed one at a time) between the worst order's "
            f"{summary.aopc_lower:.3g} (0) and the best order's {summary.aopc_upper:.3g} (1) on this text: {how}.")


def ranking_sentence(analysis: Analysis) -> str:
    """Which method is most faithful on this text by NAOPC, and whether its lead over the next is larger than the
    random rankings' spread (one sentence; "" where NAOPC was not computed)."""
    summary = analysis.faithfulness
    ranked = [n for n in ranked_by_naopc(analysis) if math.isfinite(analysis.methods[n].naopc)]
    if summary is None or not summary.aopc_limits or not ranked:
        return ""
    first = analysis.methods[ranked[0]].naopc
    lead = f"{method_title(ranked[0])} is the most faithful method on this text (NAOPC {first:.2f})"
    if len(ranked) == 1:
        return lead + "."
    second = analysis.methods[ranked[1]].naopc
    spread = summary.random_naopc_std
    verdict = "larger" if first - second > spread else "not larger"
    return (f"{lead}; its lead over {method_title(ranked[1])} ({second:.2f}) is {verdict} than the random rankings' "
            f"spread (± {spread:.2f}).")


def naopc_figure(analysis: Analysis) -> go.Figure:
    """NAOPC per method as horizontal bars, best on top, over the random rankings' mean ± one standard deviation."""
    summary = analysis.faithfulness
    names = [n for n in ranked_by_naopc(analysis) if math.isfinite(analysis.methods[n].naopc)]
    titles = [html.escape(method_title(n), quote=False) for n in names]
    values = [analysis.methods[n].naopc for n in names]
    fig = go.Figure(go.Bar(
        x=values, y=titles, orientation="h", marker_color=f"rgb{RELEVANCE_RGB}",
        customdata=[analysis.methods[n].aopc for n in names],
        hovertemplate="%{y}: NAOPC %{x:.3f} (AOPC %{customdata:.3g})<extra></extra>",
    ))
    if summary is not None and math.isfinite(summary.random_naopc):
        low = summary.random_naopc - summary.random_naopc_std
        high = summary.random_naopc + summary.random_naopc_std
        fig.add_vrect(x0=low, x1=high, fillcolor="#9aa5b1", opacity=0.25, line_width=0,
                      annotation_text="random ± 1 sd", annotation_position="outside top")
        fig.add_vline(x=summary.random_naopc, line_dash="dash", line_color="#52606d")
    title = fit_title("NAOPC: 0 is the worst order of words, 1 the best")
    fig.update_layout(
        template=template(), font=FONT, height=max(240, 28 * len(names) + 110) + TITLE_LINE_PX * title.count("<br>"),
        title=dict(text=title, x=0.0, xanchor="left", font=dict(size=TITLE_FONT_SIZE)),
        margin=dict(l=10, r=10, t=80 + TITLE_LINE_PX * title.count("<br>"), b=10),  # room for the band's label
    )
    fig.update_xaxes(range=[0, 1.02], title="NAOPC")
    fig.update_yaxes(autorange="reversed", automargin=True)
    return fig
