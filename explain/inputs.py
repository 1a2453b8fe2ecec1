"""A request's text(s) as model inputs: tokens (pairs and questions cut as the tokenizer cuts them), explicit
position ids for every pass, segments, words, and notes on how the model read the text."""

from __future__ import annotations

import numpy as np
import torch

from explain.errors import InputError
from explain.families import family_of
from explain.models import LoadedModel
from explain.records import AnalysisRequest, Tokens, Words
from explain.targets import TARGETS, fitting_kind, model_position_ids, target_kind
from explain.tokenization import encode_pair_truncated, encode_truncated
from explain.words import words_for_tokens


def tokenize(
    loaded: LoadedModel, text: str | tuple[str, ...], max_tokens: int, *, keep_mask: bool = False,
    truncation: str = "longest_first",
) -> tuple[dict[str, torch.Tensor], Tokens]:
    """Model inputs for `text` or a pair of texts (cut to `max_tokens` by the tokenizer's own truncation) and
    its Tokens record.

    Typed special tokens are plain text; with `keep_mask` the mask token stays the mask.
    The inputs hold input_ids, attention_mask, token_type_ids (where the model takes
    them), position_ids (`model_position_ids`, for every pass) and special (bool).
    """
    tok = loaded.tokenizer
    texts = (text,) if isinstance(text, str) else tuple(text)
    if len(texts) == 2:
        result = encode_pair_truncated(tok, texts[0], texts[1], max_tokens, keep_mask=keep_mask, truncation=truncation)
    else:
        result = encode_truncated(tok, texts[0], max_tokens, keep_mask=keep_mask)
    enc = result.encoding
    ids = torch.tensor([enc.ids], dtype=torch.long)
    special = torch.tensor([enc.special_tokens_mask], dtype=torch.bool)
    inputs = {"input_ids": ids, "attention_mask": torch.tensor([enc.attention_mask], dtype=torch.long)}
    if "token_type_ids" in getattr(tok, "model_input_names", ()) or family_of(loaded.config).takes_segments(loaded.config):
        inputs["token_type_ids"] = torch.tensor([enc.type_ids], dtype=torch.long)
    inputs["position_ids"] = model_position_ids(loaded, ids)
    inputs["special"] = special
    tokens = Tokens(
        tokens=tok.convert_ids_to_tokens(enc.ids),
        offsets=np.asarray(enc.offsets, dtype=np.int32).reshape(-1, 2),
        special=special[0].numpy(),
        truncated=result.truncated,
        n_tokens_full=result.n_tokens_full,
        n_tokens_full_at_least=result.at_least,
        segments=(np.array([-1 if s is None else s for s in enc.sequence_ids], dtype=np.int8)
                  if len(texts) > 1 else None),
    )
    return {k: v.to(loaded.device) for k, v in inputs.items()}, tokens


def token_segments(tokens: Tokens) -> np.ndarray:
    """The text each token comes from (-1 for special tokens), also for one-text analyses."""
    if tokens.segments is not None:
        return tokens.segments
    return np.where(np.asarray(tokens.special, dtype=bool), -1, 0).astype(np.int8)


def read_words(texts: tuple[str, ...], tokens: Tokens) -> Words:
    """The words of each text, in reading order, with the tokens that fall in each (`words_for_tokens` per text)."""
    if len(texts) == 1:
        return words_for_tokens(texts[0], tokens.offsets, tokens.special)
    segments = token_segments(tokens)
    words: list[str] = []
    spans, word_segments = [], []
    token_word = np.full(len(tokens), -1, dtype=np.int32)
    for s, text in enumerate(texts):
        part = words_for_tokens(text, tokens.offsets, np.asarray(tokens.special, dtype=bool) | (segments != s))
        mine = part.token_word >= 0
        token_word[mine] = part.token_word[mine] + len(words)
        words += part.words
        spans.append(part.spans.reshape(-1, 2))
        word_segments += [s] * len(part.words)
    return Words(words=words, spans=np.concatenate(spans).astype(np.int32), token_word=token_word,
                 segments=np.array(word_segments, dtype=np.int8))


def encoded_request(loaded: LoadedModel, request: AnalysisRequest, max_tokens: int
                    ) -> tuple[dict[str, torch.Tensor], Tokens, str]:
    """The request's text(s) encoded for its target kind, the tokens, and the kind."""
    kind = target_kind(loaded, request.target)
    declared = fitting_kind(loaded, kind)
    if declared.needs == "question" and not request.question:
        raise InputError(f"The target '{declared.title}' needs a question; type it in the question box (--question).")
    if declared.needs == "pair" and not request.pair:
        raise InputError(f"The target '{declared.title}' needs a second text; type it in the second box (--pair).")
    inputs, tokens = tokenize(loaded, request.texts, max_tokens, keep_mask=declared.keeps_mask,
                              truncation="only_second" if request.question else "longest_first")
    return inputs, tokens, kind


def notices_for(loaded: LoadedModel, text: str, kind: str, tokens: Tokens, *, question: bool = False
                ) -> tuple[str, ...]:
    """One-sentence notes on how the model read the text: a mask token it reads as text, a truncation
    (`question`: a pair cut as question answering cuts it, the context only)."""
    notices = []
    mask = getattr(loaded.tokenizer, "mask_token", None)
    keeps_mask = kind in TARGETS and TARGETS[kind].keeps_mask
    if not keeps_mask and mask and str(mask) in text:
        notices.append(
            f"The text contains the mask token {mask}, which is read as plain text because the target is not "
            "the masked token; choose the masked-token target on a masked-LM model to have it predicted."
        )
    if tokens.truncated:
        length = f"at least {tokens.n_tokens_full:,}" if tokens.n_tokens_full_at_least else f"{tokens.n_tokens_full:,}"
        if tokens.segments is None:
            notices.append(f"The text has {length} tokens; only the first {len(tokens):,} were analysed.")
        elif question:
            notices.append(f"The question and the context have {length} tokens together; the context was cut from "
                           f"its end to fit {len(tokens):,} tokens.")
        else:
            notices.append(f"The two texts have {length} tokens together; each was cut from its end, the longer "
                           f"first, to {len(tokens):,} tokens.")
    return tuple(notices)


def count_units(loaded: LoadedModel, request: AnalysisRequest) -> tuple[int, int]:
    """(tokens, words) the model reads for `request`, every text included and cut as an analysis cuts them,
    from the tokenizer alone (a private copy of its backend), so pricing never waits for the model's lock."""
    max_tokens = min(int(request.max_tokens), loaded.max_tokens)
    texts = request.texts
    if len(texts) == 2:
        truncation = "only_second" if request.question else "longest_first"
        encoding = encode_pair_truncated(loaded.tokenizer, texts[0], texts[1], max_tokens,
                                         truncation=truncation).encoding
    else:
        encoding = encode_truncated(loaded.tokenizer, texts[0], max_tokens).encoding
    special = np.asarray(encoding.special_tokens_mask, dtype=bool)
    offsets = np.asarray(encoding.offsets, dtype=np.int32).reshape(-1, 2)
    n_words = 0
    sequence = np.array([-1 if s is None else s for s in encoding.sequence_ids])
    for s, text in enumerate(texts):
        n_words += len(words_for_tokens(text, offsets, special | (sequence != s)).words)
    return len(encoding.ids), n_words
