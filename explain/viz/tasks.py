"""What each task shows beside its explanation, drawn: one row of highlights per text read, and the texts with
the predicted entities or the answer marked."""

from __future__ import annotations

import html

import numpy as np

from explain.records import Analysis
from explain.tasks import answer_span, entity_types, segment_names, segment_rows, span_chars, span_display
from explain.viz.highlights import entity_colours, explained_quantity, marked_text_html, token_highlights_html
from explain.viz.theme import ANSWER_COLOUR, format_score


def segment_highlights_html(analysis: Analysis, level: str, scale: float | None = None, *,
                            title: str | None = None) -> str:
    """One row of highlights per text the model read (question and context, or the two texts of a pair), on one
    colour scale (`scale`, default the largest |score|), with one legend under the last row."""
    a = analysis.attribution
    rows = segment_rows(analysis, level)
    values = np.concatenate([np.abs(row.scores[np.isfinite(row.scores)]) for row in rows])
    common = scale if scale is not None else (float(values.max()) if values.size else 0.0)
    heading = f"Attribution to {analysis.prediction.description}" if title is None else title
    parts = [f'<div style="font-weight:600;font-size:14px;">{html.escape(heading)}</div>' if heading else ""]
    for i, row in enumerate(rows):
        last = i == len(rows) - 1
        parts.append(token_highlights_html(
            row.pieces, row.scores, scale=common, joined=row.joined, title=row.name, legend=last,
            score_input=a.score_input, score_baseline=a.score_baseline, note=last,
            explained=explained_quantity(analysis)))
    return "".join(parts)


Mark = tuple[int, int, str, str, str]  # (start, end, label, colour, hover) in characters of one text


def entity_marks(analysis: Analysis) -> tuple[list[Mark], dict[str, str]]:
    """The predicted entities as marks on the text, and the colour of each entity type (the legend)."""
    spans = analysis.prediction.spans if span_display(analysis) == "entities" else ()
    colours = entity_colours(entity_types(spans))
    marks = []
    for span in spans:
        _, start, end = span_chars(analysis, span)
        tokens = f"{span.first_token}–{span.last_token}" if span.last_token > span.first_token else str(span.first_token)
        marks.append((start, end, span.label, colours[span.label],
                      f"{span.label}: score {format_score(span.score)}, tokens {tokens}"))
    return marks, colours


def texts_html(analysis: Analysis) -> str:
    """Each text the model read under its name, the predicted entities or the answer marked in colour."""
    names = segment_names(analysis.request)
    marks: dict[int, list[Mark]] = {}
    legend: dict[str, str] | None = None
    answer = answer_span(analysis)
    if answer is not None:
        segment, start, end = span_chars(analysis, answer)
        marks[segment] = [(start, end, "answer", ANSWER_COLOUR,
                           f"answer: start + end logit {format_score(answer.score)}, tokens {answer.first_token}–"
                           f"{answer.last_token}")]
    elif span_display(analysis) == "entities":
        marks[0], legend = entity_marks(analysis)
    return "".join(
        marked_text_html(text, marks.get(i, []), title=name if len(names) > 1 else "",
                         legend=legend if i == len(names) - 1 else None)
        for i, (name, text) in enumerate(zip(names, analysis.request.texts))
    )
