"""Words defined on the text itself, and the tokens that fall in each.

The rule, in order:

1. The text is cut into grapheme clusters (`regex` `\\X`: a letter with its
   combining marks, a flag, an emoji with its skin tone or ZWJ sequence), so no
   word boundary ever falls inside one.
2. A word is a run of word clusters (first character `\\w` in the Unicode sense:
   letters, marks, digits), which may hold invisible format characters (soft
   hyphen, ZWJ, ZWNJ, direction marks) and single inner apostrophes or hyphens
   ("don't", "co\\u00adoperate", "naïve" with a decomposed accent). Every other
   visible cluster (punctuation, a symbol, an emoji) is a word of its own.
   Whitespace and the zero-width space separate words.
3. In scripts written without spaces (Han, kana, Thai, Lao, Khmer, Myanmar, ...)
   a word is split where the model's tokens split it (token boundaries moved to
   the start of the grapheme cluster they fall in), because the text alone does
   not say where the words are.
4. Words that one token spans are merged into one (one `[UNK]` over two emoji,
   a token over "a\\u200bb"), so every character a token covers belongs to
   exactly one word. A token covers its offset range less any whitespace at its
   two ends (byte-level BPE and SentencePiece pieces may start with the space).
   A token that covers nothing (only whitespace, or an empty offset like a
   byte-level BPE "Ġ") joins the next word (or the last one), so word sums keep
   every token's share; only a text with no word at all leaves it at -1.
5. Only words that some token covers are kept (truncation can drop the tail).

Steps 1-2 use the text only, so on space-separated text two models with
different tokenizers share one word axis (aligned through character offsets);
steps 3-4 change words only where a tokenizer reads the text differently.
Spans index the text as given (logical order), and right-to-left words keep
their logical order too; displays must isolate each word (`dir="auto"` or
`<bdi>` in HTML, U+2068...U+2069 in plain-text labels) to draw it in its own
direction.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import numpy as np
import regex

from explain.records import Words

GRAPHEME = regex.compile(r"\X")
WORD_START = regex.compile(r"\w")
SPACE = regex.compile(r"[\s\u200b]+")
TRAILING_SPACE = regex.compile(r"[\s\u200b]+$")
INNER_PUNCTUATION = frozenset("'’-\u2010\u2011")
# Scripts written without spaces between words: there, words follow the tokenizer.
NO_SPACE_SCRIPT = regex.compile(
    r"[\p{scx=Han}\p{scx=Hiragana}\p{scx=Katakana}\p{scx=Bopomofo}\p{scx=Thai}\p{scx=Lao}"
    r"\p{scx=Khmer}\p{scx=Myanmar}\p{scx=Tai_Tham}\p{scx=Javanese}\p{scx=Balinese}]"
)
# Cluster kinds, one letter each: w word, j invisible format (joins), a inner apostrophe
# or hyphen, s space, o anything else.
WORD_RUN = regex.compile(r"j*w(?:j*(?:aj*)?w)*j*")


@lru_cache(maxsize=1 << 14)
def cluster_kind(cluster: str) -> str:
    """The kind letter of one grapheme cluster (see WORD_RUN); cached, as texts repeat a few clusters."""
    if SPACE.fullmatch(cluster):
        return "s"
    if all(unicodedata.category(c) == "Cf" for c in cluster):
        return "j"
    if WORD_START.match(cluster):
        return "w"
    if cluster[0] in INNER_PUNCTUATION:
        return "a"
    return "o"


def grapheme_bounds(text: str) -> np.ndarray:
    """Start offsets of the grapheme clusters of `text`, then len(text): int64 [clusters + 1]."""
    starts = [m.start() for m in GRAPHEME.finditer(text)]
    return np.array(starts + [len(text)], dtype=np.int64)


def split_words(text: str, bounds: np.ndarray | None = None) -> tuple[list[str], np.ndarray]:
    """Words of `text` from the text alone (steps 1-2), and their character spans int32 [words, 2] (`bounds`: its
    `grapheme_bounds`, when known)."""
    bounds = grapheme_bounds(text) if bounds is None else bounds
    kinds = "".join(cluster_kind(text[s:e]) for s, e in zip(bounds[:-1], bounds[1:]))
    cluster_spans: list[tuple[int, int]] = []
    at = 0
    for m in WORD_RUN.finditer(kinds):
        cluster_spans += [(i, i + 1) for i in range(at, m.start()) if kinds[i] != "s"]
        cluster_spans.append(m.span())
        at = m.end()
    cluster_spans += [(i, i + 1) for i in range(at, len(kinds)) if kinds[i] != "s"]
    spans = np.array([(bounds[a], bounds[b]) for a, b in cluster_spans], dtype=np.int32).reshape(-1, 2)
    return [text[s:e] for s, e in spans], spans


def covered_range(text: str, start: int, end: int) -> tuple[int, int]:
    """The part of a token's offset range it covers: the range less whitespace at both ends."""
    lead = SPACE.match(text, start, end)
    if lead:
        start = lead.end()
    trail = TRAILING_SPACE.search(text, start, end)
    return start, trail.start() if trail else end


def split_where_tokens_split(text: str, spans: np.ndarray, cuts: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Cut words at token boundaries `cuts` next to a cluster of a script written without spaces (step 3)."""
    if not NO_SPACE_SCRIPT.search(text):  # no cut can be kept
        return np.asarray(spans, dtype=np.int32).reshape(-1, 2)
    snapped = np.unique(bounds[np.searchsorted(bounds, cuts, side="right") - 1])
    out: list[tuple[int, int]] = []
    for start, end in spans:
        inner = snapped[(snapped > start) & (snapped < end)]
        keep = [int(c) for c in inner
                if NO_SPACE_SCRIPT.match(text, c) or NO_SPACE_SCRIPT.match(text, cluster_start(bounds, c - 1))]
        edges = [int(start)] + keep + [int(end)]
        out += list(zip(edges[:-1], edges[1:]))
    return np.array(out, dtype=np.int32).reshape(-1, 2)


def cluster_start(bounds: np.ndarray, position: int) -> int:
    """Start of the grapheme cluster holding character `position`."""
    return int(bounds[np.searchsorted(bounds, position, side="right") - 1])


def words_for_tokens(text: str, offsets: np.ndarray, special: np.ndarray) -> Words:
    """Words of `text` (module rule) and the word of each token (-1 for special tokens).

    Every character a non-special token covers lies in exactly one word, word
    boundaries fall on grapheme cluster boundaries, `text[start:end]` is the
    word, and every word holds at least one token.
    """
    bounds = grapheme_bounds(text)
    _, spans = split_words(text, bounds)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    ordinary = ~np.asarray(special, dtype=bool)
    ranges = np.array([covered_range(text, int(s), int(e)) if o and e > s else (s, s)
                       for (s, e), o in zip(offsets.tolist(), ordinary)], dtype=np.int64).reshape(-1, 2)
    covering = ordinary & (ranges[:, 1] > ranges[:, 0])
    spans = split_where_tokens_split(text, spans, ranges[covering].ravel(), bounds)
    spans = merge_spanned(spans, ranges[covering])

    token_word = np.full(len(offsets), -1, dtype=np.int64)
    if len(spans):
        next_word = np.minimum(np.searchsorted(spans[:, 0], offsets[:, 0], side="left"), len(spans) - 1)
        token_word[ordinary] = next_word[ordinary]
        token_word[covering] = np.searchsorted(spans[:, 1], ranges[covering, 0], side="right")
    used = np.unique(token_word[token_word >= 0])
    remap = np.full(len(spans) + 1, -1, dtype=np.int64)  # the last entry maps -1 to -1
    remap[used] = np.arange(len(used))
    token_word = remap[token_word].astype(np.int32)
    kept = spans[used].reshape(-1, 2).astype(np.int32)
    return Words(words=[text[s:e] for s, e in kept], spans=kept, token_word=token_word)


def merge_spanned(spans: np.ndarray, ranges: np.ndarray) -> np.ndarray:
    """Merge the words each token range overlaps into one word (step 4).

    Ranges start and end on characters inside words (they are trimmed of whitespace,
    and every other character is in a word), so the merged word covers the range.
    """
    if not len(spans):
        return spans
    starts, ends = spans[:, 0].astype(np.int64), spans[:, 1].astype(np.int64)
    first = np.searchsorted(ends, ranges[:, 0], side="right")
    last = np.searchsorted(starts, ranges[:, 1], side="left") - 1
    spanning = last > first  # such a range joins words first + 1 ... last into word first
    cover = np.zeros(len(spans) + 1, dtype=np.int64)
    np.add.at(cover, first[spanning] + 1, 1)
    np.add.at(cover, last[spanning] + 1, -1)
    joined = np.cumsum(cover[:-1]) > 0  # joined[i]: word i merges into word i - 1
    groups = np.cumsum(~joined) - 1
    merged = np.zeros((int(groups[-1]) + 1, 2), dtype=np.int32)
    merged[:, 0] = starts[np.flatnonzero(~joined)]
    merged[:, 1] = ends[np.r_[np.flatnonzero(~joined)[1:] - 1, len(spans) - 1]]
    return merged


def word_sums(token_values: np.ndarray, token_word: np.ndarray, n_words: int) -> np.ndarray:
    """Sum token values into their words (special tokens, word -1, are left out)."""
    out = np.zeros(n_words, dtype=np.float64)
    keep = token_word >= 0
    np.add.at(out, token_word[keep], np.asarray(token_values, dtype=np.float64)[keep])
    return out
