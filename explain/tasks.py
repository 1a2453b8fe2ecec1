"""What each task shows beside its explanation: the texts read together, the entities and answers predicted.

An analysis of a sentence pair or of a question with its context reads two texts in one input; its words
and tokens say which text they come from (`Words.segments`, `Tokens.segments`). These helpers split what
is shown by text, name the texts, and turn predicted spans (named entities, answers) into character ranges
of their own text and into the requests that explain each one.

    rows = segment_rows(analysis, "word")        # one (name, pieces, scores) row per text
    for span, request in entity_requests(analysis):
        analyze(request, loaded)                 # each entity explained at its first token
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from explain.pieces import continues_word, subword_pieces
from explain.records import Analysis, AnalysisRequest, Span, TargetSpec
from explain.targets import TARGETS, kinds_for_head

MULTI_LABEL_THRESHOLD = 0.5


def segment_names(request: AnalysisRequest) -> tuple[str, ...]:
    """What the page calls each text of `request.texts`, in the model's order."""
    if request.question:
        return ("Question", "Context")
    if request.pair:
        return ("First text", "Second text")
    return ("Text",)


def token_rows_of(segments: np.ndarray) -> np.ndarray:
    """The text each token is shown with: its own, and for a special token the text before it (the first
    text for a leading [CLS]), so [SEP] closes the text it ends."""
    rows = np.asarray(segments, dtype=np.int64).copy()
    known = np.flatnonzero(rows >= 0)
    if not known.size:
        return np.zeros_like(rows)
    for i in range(len(rows)):
        if rows[i] < 0:
            rows[i] = rows[i - 1] if i > 0 else rows[known[0]]
    return rows


@dataclass(frozen=True)
class SegmentRow:
    """The words (or tokens) of one text, with their scores: one row of highlights."""

    name: str
    segment: int
    pieces: list[str]
    scores: np.ndarray
    joined: list[bool] | None  # subword level: whether each piece continues the word before it
    indices: np.ndarray  # the word (or token) index of each piece in the analysis


def segment_rows(analysis: Analysis, level: str, scores: np.ndarray | None = None) -> list[SegmentRow]:
    """The highlights of `analysis` split by text: one row per text it read (one row for a single text).

    level: "word" (whole words, `scores` per word, default the word scores) or "subword" (tokens as the
    model saw them, `scores` per token, default the attribution scores).
    """
    names = segment_names(analysis.request)
    if level == "word":
        pieces = list(analysis.words.words)
        values = np.asarray(analysis.word_scores if scores is None else scores)
        joined = None
        rows_of = (np.zeros(len(pieces), dtype=np.int64) if analysis.words.segments is None
                   else np.asarray(analysis.words.segments, dtype=np.int64))
    else:
        tokens = list(analysis.tokens.tokens)
        pieces = subword_pieces(tokens)
        values = np.asarray(analysis.attribution.scores if scores is None else scores)
        joined = continues_word(tokens)
        rows_of = (np.zeros(len(pieces), dtype=np.int64) if analysis.tokens.segments is None
                   else token_rows_of(analysis.tokens.segments))
    out = []
    for segment, name in enumerate(names):
        indices = np.flatnonzero(rows_of == segment)
        if not indices.size and segment:
            continue  # a truncated second text
        out.append(SegmentRow(
            name=name, segment=segment, pieces=[pieces[i] for i in indices], scores=values[indices],
            joined=None if joined is None else [bool(joined[i]) and k > 0 for k, i in enumerate(indices)],
            indices=indices,
        ))
    return out


def second_segment_start(segments: np.ndarray | None, shown: np.ndarray | None = None) -> int | None:
    """Where the second text starts among the shown tokens (`shown`: bool per token, default all), else None.

    The position is the first shown token of the second text: attention maps draw a line before it.
    """
    if segments is None:
        return None
    segments = np.asarray(segments)
    if shown is not None:
        segments = segments[np.asarray(shown, dtype=bool)]
    second = np.flatnonzero(segments == 1)
    return int(second[0]) if second.size else None


def span_segment(analysis: Analysis, span: Span) -> int:
    """The text (index in `request.texts`) a span's tokens come from."""
    if analysis.tokens.segments is None:
        return 0
    return max(int(analysis.tokens.segments[span.first_token]), 0)


def span_chars(analysis: Analysis, span: Span) -> tuple[int, int, int]:
    """(text index, first character, end character) a span covers in its own text."""
    offsets = analysis.tokens.offsets
    return span_segment(analysis, span), int(offsets[span.first_token][0]), int(offsets[span.last_token][1])


def span_text(analysis: Analysis, span: Span) -> str:
    """The characters of its text a span covers."""
    segment, start, end = span_chars(analysis, span)
    return analysis.request.texts[segment][start:end]


def entity_request(request: AnalysisRequest, span: Span) -> AnalysisRequest:
    """The request that explains one predicted entity: its first token's predicted label (the top label there).

    The label is left to the model's top prediction at that token, which is the label the entity was
    predicted from, so picking the entity by its token gives the very same request (and cached result).
    """
    logit = request.target.logit if request.target is not None else False
    return replace(request, target=TargetSpec(kind="token_class", token=span.first_token, logit=logit))


def span_display(analysis: Analysis) -> str:
    """How the analysis's target shows its prediction's spans ("entities", "answer" or "none"), as its kind
    declares (`TargetKind.spans`); an analysis that names no kind uses its head's default."""
    spec = analysis.request.target
    kinds = kinds_for_head(analysis.model.head)
    kind = spec.kind if spec is not None and spec.kind else (kinds[0] if kinds else "")
    return TARGETS[kind].spans if kind in TARGETS else "none"


def entity_requests(analysis: Analysis) -> list[tuple[Span, AnalysisRequest]]:
    """Each entity the model predicts, with the request that explains it."""
    if span_display(analysis) != "entities":
        return []
    return [(span, entity_request(analysis.request, span)) for span in analysis.prediction.spans]


def entity_types(spans: tuple[Span, ...] | list[Span]) -> list[str]:
    """The entity types in the order they first occur."""
    return list(dict.fromkeys(span.label for span in spans))


def has_independent_scores(analysis: Analysis) -> bool:
    """Whether the explained score is one of a multi-label head's sigmoids (several labels may be on at once)."""
    return analysis.prediction.independent


def answer_span(analysis: Analysis) -> Span | None:
    """The answer a question-answering head extracts, when the analysis has one."""
    if span_display(analysis) != "answer" or not analysis.prediction.spans:
        return None
    return analysis.prediction.spans[0]


