"""The tokens a model sees for a text the user typed.

Typed control tokens ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "<s>", "</s>", "<pad>")
are plain text, as transformers' `split_special_tokens` reads them; only the mask
token keeps its meaning, and only when the target is the masked token. Truncation
is the tokenizer's own: the whole text is tokenised, then cut to the limit, so what
follows a long run of characters that make no tokens (zero-width spaces) is kept.

Each tokenizer gets a private copy of its `tokenizers` backend with these settings
fixed once, so no call changes state that other callers of the shared tokenizer see.
"""

from __future__ import annotations

import json
import re
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from tokenizers import Encoding, Tokenizer
from tokenizers.processors import PostProcessor

from explain.errors import InputError

# Texts up to this many characters are tokenised whole, so their full length is exact
# (about 0.1 s with a fast tokenizer); longer ones may be cut at a space past it, and
# their length is then a lower bound.
EXACT_COUNT_CHARS = 200_000
# A cut before an ASCII space, tab or newline that follows a non-space character leaves
# every earlier pre-token of a whitespace-splitting tokenizer as it is.
SAFE_CUT = re.compile(r"(?<=\S)[ \t\n]")


@dataclass(frozen=True)
class TruncatedEncoding:
    """One text's encoding, cut like the tokenizer's own truncation, and the full length.

    n_tokens_full counts the special tokens too; when `at_least` it is a lower bound
    (the text was too long to count whole).
    """

    encoding: Encoding
    n_tokens_full: int
    at_least: bool

    @property
    def truncated(self) -> bool:
        return self.n_tokens_full > len(self.encoding.ids)


@dataclass(frozen=True)
class TextBackend:
    """A tokenizer's backend copy that encodes the text alone, and the post-processor that adds [CLS] and [SEP].

    They are apart because the post-processor also trims offsets (RoBERTa's), so it must run
    exactly once, after the truncation, as in the tokenizer's own pipeline.
    """

    tokenizer: Tokenizer
    processor: PostProcessor | None

    @property
    def n_special(self) -> int:
        return 0 if self.processor is None else self.processor.num_special_tokens_to_add(False)

    def finish(self, content: Encoding) -> Encoding:
        return content if self.processor is None else self.processor.process(content)


_lock = threading.Lock()
_backends: weakref.WeakKeyDictionary[Any, dict[bool, TextBackend]] = weakref.WeakKeyDictionary()


def text_backend(tokenizer: Any, keep_mask: bool) -> TextBackend:
    """A private copy of `tokenizer`'s backend that reads typed special tokens as text.

    Args:
        keep_mask: the mask token stays one token (masked-LM targets); every other
            special token is split into ordinary pieces.
    """
    with _lock:
        copies = _backends.setdefault(tokenizer, {})
        if keep_mask not in copies:
            config = json.loads(tokenizer.backend_tokenizer.to_str())
            mask = getattr(tokenizer, "mask_token", None)
            for added in config.get("added_tokens") or []:
                if keep_mask and mask is not None and added.get("content") == str(mask):
                    added["special"] = False  # still matched as one token when special tokens are split
            backend = Tokenizer.from_str(json.dumps(config))
            backend.no_truncation()
            backend.no_padding()
            backend.encode_special_tokens = True
            processor = backend.post_processor
            backend.post_processor = None
            copies[keep_mask] = TextBackend(backend, processor)
        return copies[keep_mask]


def _splits_at_spaces(backend: Tokenizer) -> bool:
    """Whether the pre-tokenizer splits words at spaces, so a cut at a space leaves earlier words alone."""
    pre = backend.pre_tokenizer
    return pre is not None and len(pre.pre_tokenize_str("a b")) > 1


def encode_truncated(
    tokenizer: Any, text: str, max_tokens: int, *, keep_mask: bool = False, exact_count_chars: int = EXACT_COUNT_CHARS
) -> TruncatedEncoding:
    """Encode `text` with special tokens, cut to `max_tokens` exactly as the tokenizer's truncation cuts it.

    Texts longer than `exact_count_chars` are first cut at a space past that point when
    the tokenizer splits words at spaces and keeps the start: the kept tokens are the
    same, and the full length becomes "at least" the cut text's.
    """
    backend = text_backend(tokenizer, keep_mask)
    encode = backend.tokenizer.encode
    keep = max(max_tokens - backend.n_special, 0)
    side = getattr(tokenizer, "truncation_side", "right")
    content, at_least = None, False
    if len(text) > exact_count_chars and side == "right" and _splits_at_spaces(backend.tokenizer):
        cut = SAFE_CUT.search(text, exact_count_chars)
        if cut is not None and text[cut.start() :].strip():
            head = encode(text[: cut.start()], add_special_tokens=False)
            if len(head.ids) > keep:  # the cut falls after the last kept token
                content, at_least = head, True
    if content is None:
        content = encode(text, add_special_tokens=False)
    n_full = len(content.ids) + backend.n_special
    if len(content.ids) > keep:
        content.truncate(keep, direction=side)
    return TruncatedEncoding(backend.finish(content), n_full, at_least)


PAIR_TRUNCATIONS = ("longest_first", "only_second")


def longest_first_lengths(n_first: int, n_second: int, keep: int) -> tuple[int, int]:
    """How many tokens of each text `tokenizers`' "longest_first" truncation keeps of a pair that needs cutting.

    The shorter text stays whole when the longer one can give up enough; otherwise each keeps half
    of `keep`, the longer one (the second on a tie) the odd token.
    """
    short, long_ = sorted((n_first, n_second))
    long_ = short if short > keep else max(short, keep - short)
    if short + long_ > keep:
        short = keep // 2
        long_ = short + keep % 2
    return (long_, short) if n_first > n_second else (short, long_)


def encode_pair_truncated(
    tokenizer: Any, first: str, second: str, max_tokens: int, *, keep_mask: bool = False,
    truncation: str = "longest_first",
) -> TruncatedEncoding:
    """Encode two texts as one input ([CLS] first [SEP] second [SEP]), cut to `max_tokens` as transformers cuts pairs.

    truncation: "longest_first" (sentence pairs: a token at a time from the longer text) or
    "only_second" (question answering: the context is cut, never the question).
    """
    if truncation not in PAIR_TRUNCATIONS:
        raise ValueError(f"unknown pair truncation {truncation!r}")
    backend = text_backend(tokenizer, keep_mask)
    a = backend.tokenizer.encode(first, add_special_tokens=False)
    b = backend.tokenizer.encode(second, add_special_tokens=False)
    n_special = 0 if backend.processor is None else backend.processor.num_special_tokens_to_add(True)
    keep = max(max_tokens - n_special, 0)
    n_a, n_b = len(a.ids), len(b.ids)
    n_full = n_a + n_b + n_special
    side = getattr(tokenizer, "truncation_side", "right")
    if truncation == "only_second" and n_a >= keep:
        raise InputError(f"The question leaves no room for the context within the limit of {max_tokens:,} tokens; "
                         "shorten the question or raise the limit.")
    if n_a + n_b > keep:
        cut_a, cut_b = (n_a, keep - n_a) if truncation == "only_second" else longest_first_lengths(n_a, n_b, keep)
        if cut_a < n_a:
            a.truncate(cut_a, direction=side)
        if cut_b < n_b:
            b.truncate(cut_b, direction=side)
    encoding = a if backend.processor is None else backend.processor.process(a, b)
    return TruncatedEncoding(encoding, n_full, False)
