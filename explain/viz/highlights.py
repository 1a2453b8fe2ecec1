"""Token highlights as escaped HTML: one colour per sign, strength by score, hover values, a legend."""

from __future__ import annotations

import html
import math
import unicodedata
from collections.abc import Mapping, Sequence

import numpy as np

from explain.completeness import split_quantity
from explain.pieces import SPECIAL_PIECES
from explain.records import Analysis, Prediction
from explain.viz.theme import (
    DARK_PAGE,
    DARK_TEXT,
    ENTITY_COLOURS,
    LIGHT_PAGE,
    LIGHT_TEXT,
    MIN_CONTRAST,
    MUTED_TEXT,
    MUTED_TEXT_DARK,
    NEGATIVE_RGB,
    NEGLIGIBLE_CHANGE,
    POSITIVE_RGB,
    clip,
    format_score,
)


def _luminance(hex_colour: str) -> float:
    """WCAG relative luminance of "#rrggbb"."""
    rgb = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    lin = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]


def contrast_ratio(a: str, b: str) -> float:
    """WCAG contrast ratio of two "#rrggbb" colours (1 to 21; text needs 4.5)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def text_on(background: str, preferred: Sequence[str]) -> str:
    """The first of `preferred` that reads on `background` at WCAG AA (4.5:1), else black or white, whichever
    reads better (one of the two always reaches 4.5:1)."""
    for colour in preferred:
        if contrast_ratio(colour, background) >= MIN_CONTRAST:
            return colour
    return max(("#000000", "#ffffff"), key=lambda c: contrast_ratio(c, background))


def _blend(end: Sequence[int], page: str, strength: float) -> str:
    base = [int(page[i:i + 2], 16) for i in (1, 3, 5)]
    return "#{:02x}{:02x}{:02x}".format(*(round(b + (c - b) * strength) for b, c in zip(base, end)))


def _strength(score: float, scale: float) -> tuple[tuple[int, int, int], float]:
    t = float(score) / scale if scale > 0 and math.isfinite(float(score)) else 0.0
    t = clip(t, -1.0, 1.0)
    return (NEGATIVE_RGB if t < 0 else POSITIVE_RGB), abs(t)


def score_colour(score: float, scale: float) -> tuple[str, str]:
    """(background, text colour) for a score on a light page: red below 0, blue above, white at 0.

    Args:
        score: the attribution score.
        scale: the |score| that gets the full colour.
    """
    end, strength = _strength(score, scale)
    background = _blend(end, LIGHT_PAGE, strength)
    return background, text_on(background, (LIGHT_TEXT, "#ffffff"))


def score_colour_dark(score: float, scale: float) -> tuple[str, str]:
    """(background, text colour) for a score on a dark page: the same red and blue, fading into the page at 0."""
    end, strength = _strength(score, scale)
    background = _blend(end, DARK_PAGE, strength)
    return background, text_on(background, (DARK_TEXT, "#ffffff"))


def score_style(score: float, scale: float) -> str:
    """Inline CSS colours of a scored cell that follow the page's light or dark scheme (CSS light-dark(); a
    browser without it, or a page with no dark scheme, keeps the light pair written first)."""
    (light_bg, light_fg), (dark_bg, dark_fg) = score_colour(score, scale), score_colour_dark(score, scale)
    return (f"background:{light_bg};color:{light_fg};"
            f"background:light-dark({light_bg},{dark_bg});color:light-dark({light_fg},{dark_fg});")


def themed(light: str, dark: str) -> str:
    """A CSS colour for light and dark pages: light-dark(), which needs the page's color-scheme (Streamlit sets it)."""
    return f"light-dark({light},{dark})"


def score_label(piece: str, value: float, explained: str = "") -> str:
    """What a screen reader says for one highlighted piece: "film: +0.42, raises P(positive)"."""
    value = float(value)
    number = format_score(value)
    signed = f"+{number}" if value > 0 and not number.startswith("+") else number
    if not math.isfinite(value) or value == 0:
        return f"{piece}: {signed}"
    what = explained or "the score"
    return f"{piece}: {signed}, {'raises' if value > 0 else 'lowers'} {what}"


def explained_name(prediction: Prediction) -> str:
    """The explained score in a few words, for the legend: "P(positive)", "the logit of «positive»", "the
    similarity".

    The label is quoted after "of" (a question-answering head's labels are the text's tokens: "the start logit of
    the" reads as a cut sentence), and named by position where the labels hold it more than once.
    """
    index = int(prediction.explained_index)
    labels = [str(label) for label in prediction.labels]
    label = labels[index] if 0 <= index < len(labels) else ""
    if prediction.score_name == "probability" and label:
        return f"P({label})"
    if prediction.score_name == "cosine similarity" or not label:
        return f"the {prediction.score_name}"
    where = f" (token {index})" if labels.count(label) > 1 else ""
    return f"the {prediction.score_name} of «{label}»{where}"


def explained_quantity(analysis: Analysis) -> str:
    """What the shown scores divide, for the legend and the spoken names: `explained_name`, or for a method that
    splits the logit (DecompX) "the cosine behind P(positive)", since P itself is not split."""
    name = explained_name(analysis.prediction)
    quantity = split_quantity(analysis)
    return f"the {quantity} behind {name}" if quantity else name


def _legend_html(scale: float, explained: str = "") -> str:
    lo, hi = score_colour(-scale, scale)[0], score_colour(scale, scale)[0]
    muted = themed(MUTED_TEXT, MUTED_TEXT_DARK)
    small = f"font-size:12px;color:{MUTED_TEXT};color:{muted};"
    lowers, raises = ((f"red lowers <b>{html.escape(explained)}</b>", f"blue raises <b>{html.escape(explained)}</b>")
                      if explained else ("lowers the score", "raises the score"))
    return (
        '<div style="display:flex;flex-wrap:wrap;align-items:center;gap:8px;margin-top:8px;font-size:12px;'
        f'color:{MUTED_TEXT};color:{muted};">'
        f'<span style="{small}">{lowers}</span>'
        '<span aria-hidden="true" style="display:inline-flex;flex-direction:column;min-width:180px;">'
        f'<span style="display:block;height:10px;border-radius:2px;border:1px solid #d9dee3;border-color:{themed("#d9dee3", "#5f5a54")};'
        f'background:linear-gradient(to right,{lo},#ffffff,{hi});'
        f'background:linear-gradient(to right,{lo},{themed(LIGHT_PAGE, DARK_PAGE)},{hi});"></span>'
        '<span style="display:flex;justify-content:space-between;font-variant-numeric:tabular-nums;">'
        f"<span>{html.escape(f'{-scale:.3g}')}</span><span>0</span><span>+{html.escape(f'{scale:.3g}')}</span>"
        "</span></span>"
        f'<span style="{small}">{raises}</span>'
        "</div>"
    )


def negligible_change(score_input: float, score_baseline: float) -> bool:
    """Whether the explained score barely moves from the baseline to the input (see NEGLIGIBLE_CHANGE)."""
    return abs(score_input - score_baseline) < _colour_floor(score_input, score_baseline)


def _colour_floor(score_input: float, score_baseline: float) -> float:
    return NEGLIGIBLE_CHANGE * max(1.0, abs(float(score_input)), abs(float(score_baseline)))


def attribution_note(score_input: float, score_baseline: float) -> str | None:
    """One sentence to show beside the highlights when they would mislead, else None.

    Two cases: the score barely changes between the baseline and the input (the
    attributions then split almost nothing, and their colours are kept faint), or the
    baseline already scores higher than the input (the attributions then add up to a
    drop, so red dominates even for text that supports the label).
    """
    score_input, score_baseline = float(score_input), float(score_baseline)
    if not (math.isfinite(score_input) and math.isfinite(score_baseline)):
        return None
    change = score_input - score_baseline
    if negligible_change(score_input, score_baseline):
        return (
            f"The score barely changes between the baseline ({format_score(score_baseline)}) and the text "
            f"({format_score(score_input)}), so the attributions split a change of only {format_score(change)} and "
            f"are drawn faint, on a fixed ±{format_score(_colour_floor(score_input, score_baseline))} scale."
        )
    if change < 0:
        return (
            f"The baseline already scores higher than the text ({format_score(score_baseline)} vs "
            f"{format_score(score_input)}), so the attributions add up to a drop of {format_score(-change)}: they "
            "show what lowers the score from the baseline's, not what the label rests on."
        )
    return None


def text_direction(text: str) -> str | None:
    """ "rtl" or "ltr" from the first strongly directional character (as the browser's dir="auto"), else None."""
    for char in str(text):
        kind = unicodedata.bidirectional(char)
        if kind == "L":
            return "ltr"
        if kind in ("R", "AL"):
            return "rtl"
    return None


def _dir_attribute(text: str) -> str:
    direction = text_direction(text)
    return f'dir="{direction}" ' if direction else ""


def token_highlights_html(
    pieces: list[str],
    scores: np.ndarray,
    *,
    scale: float | None = None,
    title: str = "",
    joined: Sequence[bool] | None = None,
    score_input: float | None = None,
    score_baseline: float | None = None,
    legend: bool = True,
    note: bool = True,
    explained: str = "",
) -> str:
    """Pieces of text as inline spans coloured by score, with a legend.

    Args:
        pieces: words or subword pieces (user text; escaped here).
        scores: one score per piece.
        scale: the |score| shown at full colour; default the largest |score|.
        title: optional heading above the pieces (escaped).
        joined: per piece, whether it continues the word before it (see `continues_word`); the pieces of one
            word are then drawn touching, as one word split by thin lines, and never wrap apart.
        score_input, score_baseline: the explained score at the input and at the baseline. When both are given,
            the colour scale is never finer than NEGLIGIBLE_CHANGE of the score (noise in a score that barely
            moves stays faint), and `attribution_note`'s sentence, if any, is shown beside the pieces.
        legend, note: draw the colour legend and the note (rows of one explanation draw them once, under the
            last row).
        explained: the explained score in a few words (`explained_name`), named in the legend ("blue raises
            P(positive)"), so that it is plain which label the colours are about.

    Each word keeps its own writing direction (right-to-left pieces run right to left, each piece isolated by dir="auto"), and
    the line of words follows the text's first strongly directional word, as the browser's dir="auto" would.

    Returns:
        An HTML fragment with inline styles only (safe for `st.html`).
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(values) != len(pieces):
        raise ValueError(f"{len(pieces)} pieces but {len(values)} scores")
    finite = np.abs(values[np.isfinite(values)])
    if scale is None:
        scale = float(finite.max()) if finite.size else 0.0
    scale = float(scale)
    sentence = None
    if score_input is not None and score_baseline is not None:
        sentence = attribution_note(score_input, score_baseline) if note else None
        floor = _colour_floor(score_input, score_baseline)
        if math.isfinite(floor):
            scale = max(scale, floor) if math.isfinite(scale) else floor
    if not math.isfinite(scale) or scale <= 0:
        scale = 1.0
    if joined is not None and len(joined) != len(pieces):
        raise ValueError(f"{len(pieces)} pieces but {len(joined)} joined flags")
    starts = [i == 0 or not (joined is not None and joined[i]) for i in range(len(pieces))]
    border = themed("rgba(0,0,0,0.08)", "rgba(255,255,255,0.16)")
    seam_colour = themed("rgba(0,0,0,0.25)", "rgba(255,255,255,0.35)")
    words: list[str] = []
    i = 0
    while i < len(pieces):
        end = next((j for j in range(i + 1, len(pieces)) if starts[j]), len(pieces))
        alone = end == i + 1
        spans = []
        for k in range(i, end):
            first, last = k == i, k + 1 == end
            radius = " ".join("4px" if edge else "0" for edge in (first, last, last, first))
            text = html.escape(str(pieces[k]), quote=True)
            label = html.escape(score_label(str(pieces[k]), values[k], explained), quote=True)
            seam = "" if first else f"border-left-color:{seam_colour};"
            # dir="auto" on an inline-block isolates the piece's own direction as <bdi> would, one node fewer
            spans.append(
                f'<span title="{text}: {html.escape(format_score(values[k]))}" role="img" aria-label="{label}" '
                f'tabindex="0" dir="auto" style="display:inline-block;{score_style(values[k], scale)}'
                f"padding:1px {5 if first else 3}px 1px {5 if first else 3}px;"
                f"margin:{'2px 1px' if alone else '0'};border-radius:{radius};border:1px solid rgba(0,0,0,0.08);"
                f'border-color:{border};{seam}white-space:pre-wrap;">{text}</span>'
            )
        if alone:  # a word of one piece is its own span: no wrapper (a third of the highlights' DOM nodes)
            words.append(spans[0])
        else:
            word = "".join(str(p) for p in pieces[i:end])
            words.append(f'<span {_dir_attribute(word)}style="display:inline-block;white-space:nowrap;margin:2px 1px;">'
                         f'{"".join(spans)}</span>')
        i = end
    line_direction = _dir_attribute("".join(str(p) for p in pieces if str(p) not in SPECIAL_PIECES))
    heading = (
        f'<div style="font-weight:600;margin-bottom:4px;font-size:14px;">{html.escape(title)}</div>' if title else ""
    )
    note_html = (
        '<div role="note" style="margin-top:6px;padding:4px 8px;border-left:3px solid #f0b429;background:#fffbea;'
        f'background:{themed("#fffbea", "#2f2a17")};font-size:13px;line-height:1.5;color:{MUTED_TEXT};'
        f'color:{themed(MUTED_TEXT, MUTED_TEXT_DARK)};">{html.escape(sentence)}</div>'
        if sentence else ""
    )
    return (
        "<div style=\"font-family:Inter,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;line-height:1.9;"
        'color:inherit;">'
        f'{heading}<div {line_direction}style="display:block;">{"".join(words)}</div>{note_html}'
        f"{_legend_html(scale, explained) if legend else ''}</div>"
    )


def entity_colours(types: Sequence[str]) -> dict[str, str]:
    """A colour per entity type, in the order given (colours repeat past len(ENTITY_COLOURS) types)."""
    return {kind: ENTITY_COLOURS[i % len(ENTITY_COLOURS)] for i, kind in enumerate(dict.fromkeys(types))}


def marked_text_html(text: str, marks: Sequence[tuple[int, int, str, str, str]], *, title: str = "",
                     legend: Mapping[str, str] | None = None) -> str:
    """A text with character ranges marked in colour and labelled (named entities, an answer).

    Args:
        text: the text (user text; escaped here).
        marks: (start, end, label, colour, hover) per range, in characters of `text`; overlapping ranges
            after the first are skipped. The label is drawn small after the marked characters.
        title: an optional heading (escaped).
        legend: label -> colour, drawn as swatches under the text.

    Returns:
        An HTML fragment with inline styles only (safe for `st.html`); the text keeps its own direction.
    """
    parts: list[str] = []
    at = 0
    for start, end, label, colour, hover in sorted(marks, key=lambda m: (m[0], m[1])):
        start, end = max(int(start), at), min(int(end), len(text))
        if end <= start:
            continue
        parts.append(html.escape(text[at:start]))
        parts.append(
            f'<mark title="{html.escape(hover, quote=True)}" style="background:{colour};color:#1f2933;'
            'padding:2px 4px;margin:0 1px;border-radius:4px;border:1px solid rgba(0,0,0,0.12);">'
            f"<bdi>{html.escape(text[start:end])}</bdi>"
            f'<span style="font-size:11px;font-weight:600;margin-left:5px;color:#323f4b;">{html.escape(label)}</span>'
            "</mark>"
        )
        at = end
    parts.append(html.escape(text[at:]))
    heading = (f'<div style="font-weight:600;margin-bottom:4px;font-size:14px;">{html.escape(title)}</div>'
               if title else "")
    swatches = "".join(
        f'<span style="display:inline-flex;align-items:center;gap:4px;margin-right:12px;">'
        f'<span style="display:inline-block;width:12px;height:12px;border-radius:3px;background:{colour};'
        f'border:1px solid rgba(0,0,0,0.15);"></span>{html.escape(name)}</span>'
        for name, colour in (legend or {}).items()
    )
    legend_html = (f'<div style="margin-top:6px;font-size:12px;color:{MUTED_TEXT};'
                   f'color:{themed(MUTED_TEXT, MUTED_TEXT_DARK)};">{swatches}</div>' if swatches else "")
    return (
        "<div style=\"font-family:Inter,'Segoe UI',Helvetica,Arial,sans-serif;font-size:15px;line-height:2.1;"
        f'color:inherit;">{heading}<div {_dir_attribute(text)}style="white-space:pre-wrap;">{"".join(parts)}</div>'
        f"{legend_html}</div>"
    )


# -- attention -----------------------------------------------------------------




def score_rows(pieces: Sequence[str], scores: np.ndarray, explained: str = "") -> list[dict[str, object]]:
    """The highlights' numbers as table rows (position, piece, score, effect), for readers who cannot hover."""
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if len(values) != len(pieces):
        raise ValueError(f"{len(pieces)} pieces but {len(values)} scores")
    what = explained or "the score"
    return [{"#": i, "token": str(piece), "score": float(value),
             "effect": "" if not math.isfinite(value) or value == 0 else
             f"{'raises' if value > 0 else 'lowers'} {what}"}
            for i, (piece, value) in enumerate(zip(pieces, values))]
