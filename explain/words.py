"""Words defined on the text itself, and the tokens that fall in each.

Words come from the text, not from a tokenizer, so two models with different
tokenizers share one word axis (aligned through character offsets).
"""

from __future__ import annotations

import re

import numpy as np

from explain.analysis import Words

# A word is a run of letters/digits (with inner apostrophes or hyphens), or one other visible character.
WORD_PATTERN = re.compile(r"\w+(?:['’\-]\w+)*|[^\w\s]", re.UNICODE)


def split_words(text: str) -> tuple[list[str], np.ndarray]:
    """Words of `text` and their character spans [words, 2]."""
    matches = list(WORD_PATTERN.finditer(text))
    spans = np.array([m.span() for m in matches], dtype=np.int32).reshape(-1, 2)
    return [m.group() for m in matches], spans


def words_for_tokens(text: str, offsets: np.ndarray, special: np.ndarray) -> Words:
    """Assign each token to the word its character span overlaps most.

    Only words that some token covers are kept (truncation can drop the tail),
    so every word has at least one token.
    """
    words, spans = split_words(text)
    token_word = np.full(len(offsets), -1, dtype=np.int32)
    for t, (start, end) in enumerate(offsets):
        if special[t] or end <= start:
            continue
        overlap = np.minimum(spans[:, 1], end) - np.maximum(spans[:, 0], start)
        if len(overlap) and overlap.max() > 0:
            token_word[t] = int(overlap.argmax())
    used = np.unique(token_word[token_word >= 0])
    remap = np.full(len(words), -1, dtype=np.int32)
    remap[used] = np.arange(len(used), dtype=np.int32)
    token_word = np.where(token_word >= 0, remap[np.maximum(token_word, 0)], -1).astype(np.int32)
    return Words(words=[words[i] for i in used], spans=spans[used].reshape(-1, 2), token_word=token_word)


def word_sums(token_values: np.ndarray, token_word: np.ndarray, n_words: int) -> np.ndarray:
    """Sum token values into their words (special tokens, word -1, are left out)."""
    out = np.zeros(n_words, dtype=np.float64)
    keep = token_word >= 0
    np.add.at(out, token_word[keep], np.asarray(token_values, dtype=np.float64)[keep])
    return out
