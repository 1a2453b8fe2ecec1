"""The two ends of every attribution: what a removed word becomes (the baseline's embeddings, special tokens
kept) and the explained score at the input and at the baseline, in float32."""

from __future__ import annotations

import torch

from explain.errors import InputError
from explain.records import BASELINES
from explain.targets import Target


def kept_in_baseline(target: Target, input_ids: torch.Tensor, special: torch.Tensor) -> torch.Tensor:
    """Tokens the baseline keeps as they are: the special tokens and, for a masked-token target, every mask token.

    A kept token is the same at both ends of the path, so it gets exactly zero attribution.
    Keeping the mask means the masked-token question stays asked all along the path:
    replacing the [MASK] itself would credit much of the prediction to the mask token.
    """
    return special.bool() | target.kept_in_baseline(input_ids)


def baseline_embeddings(
    target: Target, input_ids: torch.Tensor, special: torch.Tensor, baseline: str
) -> torch.Tensor:
    """Reference input: every token replaced by [PAD], [MASK] or a zero vector, but those `kept_in_baseline`.

    Special tokens ([CLS], [SEP]) and, for masked-token targets, the [MASK] itself keep
    their embeddings, so they get no attribution.
    """
    if baseline not in BASELINES:
        raise InputError(f"Unknown baseline '{baseline}'; choose one of {', '.join(BASELINES)}.")
    embed = target.loaded.word_embeddings
    tok = target.loaded.tokenizer
    kept = kept_in_baseline(target, input_ids, special)
    if baseline == "zero":
        with torch.no_grad():
            emb = embed(input_ids)
        return torch.where(kept.unsqueeze(-1), emb, torch.zeros_like(emb))
    token_id = tok.pad_token_id if baseline == "pad" else tok.mask_token_id
    if token_id is None:
        raise InputError(f"This model's tokenizer has no {baseline} token; choose another baseline.")
    ids = torch.where(kept, input_ids, torch.full_like(input_ids, token_id))
    with torch.no_grad():
        return embed(ids)


def endpoint_scores(
    target: Target,
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None,
    position_ids: torch.Tensor | None = None,
) -> tuple[float, float]:
    """The explained score at the input and at the baseline, float32, in one batch of two.

    Every engine measures its convergence delta against these two numbers.
    """
    with torch.no_grad():
        ends = target.forward_embeddings(
            torch.cat([inputs, baselines]),
            attention_mask.repeat(2, 1),
            None if token_type_ids is None else token_type_ids.repeat(2, 1),
            None if position_ids is None else position_ids.repeat(2, 1),
        )
    return float(ends[0, target.index]), float(ends[1, target.index])
