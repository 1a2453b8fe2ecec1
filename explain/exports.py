"""Data and image exports: word or token scores as CSV, and the Plotly config that saves a chart as PNG or SVG."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from explain.records import Analysis

LEVELS = ("word", "subword")
IMAGE_FORMATS = ("png", "svg")
PNG_SCALE = 2  # PNGs at twice the screen resolution; SVG is resolution-free
# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection").
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def chart_filename(*parts: object) -> str:
    """A chart's download name from what it shows ("attention", "minilm", "layer 2", "head 5" ->
    "attention-minilm-layer-2-head-5"): lowercase letters, digits and dashes, at most 100 characters."""
    words = [re.sub(r"[^a-z0-9]+", "-", str(part).lower()).strip("-") for part in parts]
    return "-".join(w for w in words if w)[:100].strip("-") or "chart"


def model_short_name(spec: str) -> str:
    """The last part of a model id or folder ("sentence-transformers/all-MiniLM-L6-v2" -> "all-MiniLM-L6-v2")."""
    return re.split(r"[\\/]", str(spec).rstrip("/\\"))[-1] or str(spec)


def image_config(filename: str, image_format: str = "png") -> dict[str, Any]:
    """Plotly config whose camera button saves the chart as `image_format` ("png" at 2x, or "svg")."""
    if image_format not in IMAGE_FORMATS:
        raise ValueError(f"Unknown image format '{image_format}'; expected one of {', '.join(IMAGE_FORMATS)}.")
    options: dict[str, Any] = {"format": image_format, "filename": filename}
    if image_format == "png":
        options["scale"] = PNG_SCALE
    return {"displaylogo": False, "toImageButtonOptions": options}


def safe_cell(text: str) -> str:
    """A text cell a spreadsheet shows as text: a leading quote when it would start a formula.

    Plain numbers such as "-2" are left alone (a spreadsheet reads them as the number they are).
    """
    if text.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.fullmatch(text):
        return "'" + text
    return text


def _number(value: float) -> str:
    """The shortest text that reads back as the same float32 (or float64) value."""
    return str(value)


def token_spans(analysis: Analysis) -> list[str]:
    """For each token, the predicted span it lies in: its entity type (token classification), "answer" (question
    answering), else ""."""
    out = [""] * len(analysis.tokens)
    for span in analysis.prediction.spans:
        for i in range(span.first_token, span.last_token + 1):
            out[i] = span.label
    return out


def _segments(segments: np.ndarray | None, n: int, special: np.ndarray | None = None) -> list[str]:
    """Each piece's text as a CSV cell ("" for special tokens); a single text is text 0."""
    if segments is None:
        segments = np.where(special, -1, 0) if special is not None else np.zeros(n, dtype=np.int8)
    return [str(int(s)) if s >= 0 else "" for s in segments]


PROVENANCE = ("model", "target", "label", "method")  # the last columns of every scores CSV: what each row explains


def provenance(analysis: Analysis) -> list[str]:
    """The `PROVENANCE` cells of an analysis: its model, target kind (the model's default when none was asked),
    the explained label and the attribution method (as text cells a spreadsheet keeps as text)."""
    target = analysis.request.target.kind if analysis.request.target is not None else ""
    target = target or (analysis.model.targets[0] if analysis.model.targets else "")
    prediction = analysis.prediction
    index = int(prediction.explained_index)
    label = str(prediction.labels[index]) if 0 <= index < len(prediction.labels) else ""
    return [safe_cell(str(v)) for v in (analysis.model.spec, target, label, analysis.attribution.method)]


def _rows(analysis: Analysis, level: str) -> tuple[list[str], list[list[str]]]:
    header, rows = _score_rows(analysis, level)
    extra = provenance(analysis)
    return [*header, *PROVENANCE], [[*row, *extra] for row in rows]


def _score_rows(analysis: Analysis, level: str) -> tuple[list[str], list[list[str]]]:
    spans = token_spans(analysis)
    if level == "word":
        words = analysis.words
        scores = np.asarray(analysis.word_scores)
        word_spans = [""] * len(words)
        for token, word in enumerate(np.asarray(words.token_word)):
            if word >= 0 and spans[token] and not word_spans[word]:
                word_spans[word] = spans[token]
        header = ["word", "segment", "start", "end", "span", "score"]
        rows = [
            [safe_cell(word), segment, str(int(start)), str(int(end)), safe_cell(span), _number(score)]
            for word, segment, (start, end), span, score in zip(
                words.words, _segments(words.segments, len(words)), words.spans, word_spans, scores)
        ]
        return header, rows
    if level == "subword":
        tokens = analysis.tokens
        token_word = np.asarray(analysis.words.token_word)
        scores = np.asarray(analysis.attribution.scores)
        header = ["token", "segment", "start", "end", "special", "word_index", "span", "score"]
        rows = [
            [safe_cell(token), segment, str(int(start)), str(int(end)), "1" if special else "0",
             "" if word < 0 else str(int(word)), safe_cell(span), _number(score)]
            for token, segment, (start, end), special, word, span, score in zip(
                tokens.tokens, _segments(tokens.segments, len(tokens), tokens.special), tokens.offsets, tokens.special, token_word,
                spans, scores)
        ]
        return header, rows
    raise ValueError(f"Unknown level '{level}'; expected one of {', '.join(LEVELS)}.")


def _write(header: list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def word_scores_csv(analysis: Analysis, *, level: str = "word") -> str:
    """The attribution scores as CSV, one row per word or per token.

    Args:
        analysis: the result to export.
        level: "word" (columns word, segment, start, end, span, score) or "subword" (columns token, segment,
            start, end, special, word_index, span, score; word_index and segment are empty for special tokens).

    Every row ends with the columns model, target, label and method (`provenance`), so rows from several
    exports stay told apart. Segment is the text a word comes from (0 the first, 1 the second of a pair; for question answering 0 the
    question and 1 the context); start and end are character offsets into that text. Span names the predicted
    entity type (token classification) or "answer" (question answering) the word or token lies in. Text cells that a spreadsheet would read as
    a formula get a leading quote (see `safe_cell`); scores are plain numbers.
    """
    return _write(*_rows(analysis, level))


def comparison_scores_csv(left: Analysis, right: Analysis, *, names: Sequence[str] = ("left", "right"),
                          level: str = "word") -> str:
    """Both sides' scores in one CSV: the columns of `word_scores_csv` after a "side" column naming the side."""
    header: list[str] = []
    rows: list[list[str]] = []
    for name, analysis in zip(names, (left, right)):
        header, side_rows = _rows(analysis, level)
        rows.extend([safe_cell(name), *row] for row in side_rows)
    return _write(["side", *header], rows)


def depth_csv(analysis: Analysis) -> str:
    """The embedding-part and layer-wise attributions (explain.depth) as CSV, one row per token.

    Columns: token, start, end, special, then one column per embedding part ("token_part", "position_part",
    "segment_part") and per layer ("layer_1" ... "layer_L"), for those the analysis holds.
    """
    tokens = analysis.tokens
    header = ["token", "start", "end", "special"]
    columns: list[np.ndarray] = []
    if analysis.embedding_parts is not None:
        header += [f"{name}_part" for name in analysis.embedding_parts.parts]
        columns += list(analysis.embedding_parts.scores)
    if analysis.layer_attribution is not None:
        header += [f"layer_{i + 1}" for i in range(analysis.layer_attribution.scores.shape[0])]
        columns += list(analysis.layer_attribution.scores)
    rows = [
        [safe_cell(token), str(int(start)), str(int(end)), "1" if special else "0",
         *(_number(column[i]) for column in columns)]
        for i, (token, (start, end), special) in enumerate(zip(tokens.tokens, tokens.offsets, tokens.special))
    ]
    return _write(header, rows)
