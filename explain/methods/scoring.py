"""Batched scoring of many variants of one text: the primitive of perturbation methods and faithfulness.

A variant keeps some words and drops the others, either by replacing each of their
tokens by the baseline's embedding ("replace") or by deleting those tokens and
closing the gap ("remove"; later tokens move up one position per removed token, as
if the words had never been typed). Special tokens are always kept. Variants go
through the model in chunks sized from the sequence length, never one pass each.
Scores are remembered per context and removal mode, so a variant that one method
scored (leave-one-word-out's) is not scored again by another (faithfulness).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

import numpy as np
import torch

from explain.errors import InputError
from explain.methods.base import AttributionContext
from explain.targets import model_position_ids

# Tokens through the model in one no-grad pass, for a hidden size of 768: 16 variants of 128 tokens. Smaller
# passes stay in the CPU caches: on the 2-core build machine, 128 variants of 128 tokens of MiniLM took 2.0 s in
# passes of 16 or 32 variants against 3.0 s in passes of 256 (benchmarks in docs/benchmarks.md).
VARIANT_TOKEN_BUDGET = 2048
REMOVAL_MODES = ("replace", "remove")

WordScorer = Callable[[np.ndarray], np.ndarray]
# Scores of the variants already scored, per context (while it lives) and removal mode, by keep-mask bytes.
SCORED_VARIANTS: weakref.WeakKeyDictionary[AttributionContext, dict[str, dict[bytes, float]]] = (
    weakref.WeakKeyDictionary())
SCORED_VARIANTS_LOCK = threading.Lock()


def scored_variants(context: AttributionContext, mode: str) -> dict[bytes, float]:
    """The remembered scores of `context`'s variants under removal `mode` (a context describes one model state)."""
    with SCORED_VARIANTS_LOCK:
        return SCORED_VARIANTS.setdefault(context, {}).setdefault(mode, {})


def variants_per_pass(n_tokens: int, hidden_size: int) -> int:
    """How many variants of `n_tokens` tokens go through the model in one pass."""
    budget = VARIANT_TOKEN_BUDGET * 768 / max(hidden_size, 1)
    return int(max(1, budget // max(n_tokens, 1)))


def score_embeddings(context: AttributionContext, embeds: torch.Tensor, attention_mask: torch.Tensor,
                     token_type_ids: torch.Tensor | None = None, position_ids: torch.Tensor | None = None
                     ) -> np.ndarray:
    """The explained score of each variant [variants, tokens, hidden], float64 [variants], in chunks.

    position_ids: [variants, tokens]; None gives every variant the text's own positions.
    """
    if position_ids is None:
        position_ids = context.model_inputs(embeds.shape[0])["position_ids"]
    chunk = variants_per_pass(embeds.shape[1], embeds.shape[2])
    out = []
    with torch.no_grad():
        for start in range(0, embeds.shape[0], chunk):
            part = slice(start, start + chunk)
            types = None if token_type_ids is None else token_type_ids[part]
            scores = context.target.forward_embeddings(embeds[part], attention_mask[part], types,
                                                       position_ids=position_ids[part])
            out.append(scores[:, context.target.index].double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def word_scorer(context: AttributionContext, mode: str = "replace",
                progress: Callable[[float], None] | None = None) -> WordScorer:
    """A function from keep masks (bool [variants, words], True = the word stays) to explained scores [variants].

    The input and baseline embeddings are computed once; each call builds its variants chunk by chunk, calling
    `progress` with the fraction of its new variants scored after each chunk (it may raise to stop).
    """
    if mode not in REMOVAL_MODES:
        raise InputError(f"Unknown removal mode '{mode}'; choose one of {', '.join(REMOVAL_MODES)}.")
    if mode == "remove" and context.target.kind.position_bound:
        raise InputError(f"Removing words moves the token this target ({context.target.kind.title}) reads; "
                         "use the 'replace' mode.")
    inputs = context.embeddings()[0]
    baselines = context.baseline_embeddings()[0]
    token_word = torch.as_tensor(context.token_word, dtype=torch.long, device=inputs.device)
    always = context.special[0] | (token_word < 0)
    word_of_token = token_word.clamp(min=0)
    chunk = variants_per_pass(inputs.shape[0], inputs.shape[1])
    types = context.token_type_ids

    known = scored_variants(context, mode)

    def score(keep: np.ndarray) -> np.ndarray:
        keep = np.ascontiguousarray(keep, dtype=bool).reshape(-1, context.n_words)
        keys = [row.tobytes() for row in keep]
        firsts: dict[bytes, int] = {}  # each variant not scored yet, at its first row
        for i, key in enumerate(keys):
            if key not in known and key not in firsts:
                firsts[key] = i
        rows = list(firsts.values())
        for key, value in zip(firsts, score_new(keep[rows])):
            known[key] = float(value)
        return np.array([known[key] for key in keys], dtype=np.float64)

    def score_new(keep: np.ndarray) -> np.ndarray:
        out = []
        for start in range(0, len(keep), chunk):
            part = torch.as_tensor(keep[start : start + chunk], device=inputs.device)
            kept_tokens = always | part[:, word_of_token] if context.n_words else always.expand(len(part), -1)
            if mode == "replace":
                embeds = torch.where(kept_tokens.unsqueeze(-1), inputs, baselines)
                mask = context.attention_mask.expand(len(part), -1)
                part_types = None if types is None else types.expand(len(part), -1)
                positions = None
            else:
                embeds, mask, part_types = compact(inputs, kept_tokens, types)
                positions = model_position_ids(context.target.loaded, mask_ids(context, mask))
            out.append(score_embeddings(context, embeds, mask, part_types, positions))
            if progress is not None:
                progress(min(1.0, (start + chunk) / len(keep)))
        return np.concatenate(out) if out else np.zeros(0)

    return score


def mask_ids(context: AttributionContext, mask: torch.Tensor) -> torch.Tensor:
    """Stand-in ids for compacted variants: pad where the mask is 0, so positions follow the model's rule."""
    pad = context.target.loaded.tokenizer.pad_token_id
    filler = 0 if pad is None else int(pad)
    return torch.where(mask.bool(), torch.full_like(mask, filler + 1), torch.full_like(mask, filler))


def compact(inputs: torch.Tensor, kept_tokens: torch.Tensor, token_type_ids: torch.Tensor | None
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Variants with the dropped tokens deleted and the rest moved left, padded at the end (mask 0)."""
    lengths = kept_tokens.sum(1)
    n, width = kept_tokens.shape[0], int(lengths.max())
    order = torch.argsort((~kept_tokens).to(torch.int8), dim=1, stable=True)[:, :width]
    embeds = inputs[order]
    mask = (torch.arange(width, device=inputs.device).unsqueeze(0) < lengths.unsqueeze(1)).long()
    embeds = embeds * mask.unsqueeze(-1).to(embeds.dtype)
    types = None if token_type_ids is None else token_type_ids[0][order] * mask
    return embeds, mask.reshape(n, width), types
