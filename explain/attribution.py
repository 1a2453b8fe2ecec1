"""Integrated gradients on the word embeddings, with Captum.

Captum's `IntegratedGradients` runs on the word embeddings passed as
`inputs_embeds`, so the path is the same as `LayerIntegratedGradients` on the
word-embedding layer, but no hook is put on the (shared, cached) model and the
baseline may be any embedding, zeros included.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from captum.attr import IntegratedGradients

from explain.analysis import BASELINES, MAX_STEPS, MIN_STEPS, TokenAttribution
from explain.errors import InputError
from explain.targets import Target

# Tokens x steps processed in one batch, for a hidden size of 768: keeps bert-base at
# 128 tokens near 2 GB instead of 6 GB for all 50 steps at once.
TOKEN_STEP_BUDGET = 1280

ProgressCallback = Callable[[float], None]


def check_steps(n_steps: int) -> int:
    if not isinstance(n_steps, (int, np.integer)) or not MIN_STEPS <= int(n_steps) <= MAX_STEPS:
        raise InputError(f"The number of integration steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}.")
    return int(n_steps)


def internal_batch_size(n_tokens: int, n_steps: int, hidden_size: int) -> int:
    """How many interpolation steps go through the model at once, from the input size."""
    budget = TOKEN_STEP_BUDGET * 768 / max(hidden_size, 1)
    return int(max(1, min(n_steps, budget // max(n_tokens, 1))))


def baseline_embeddings(
    target: Target, input_ids: torch.Tensor, special: torch.Tensor, baseline: str
) -> torch.Tensor:
    """Reference input: every non-special token replaced by [PAD], [MASK] or a zero vector.

    Special tokens ([CLS], [SEP]) keep their embeddings, so they get no attribution.
    """
    if baseline not in BASELINES:
        raise InputError(f"Unknown baseline '{baseline}'; choose one of {', '.join(BASELINES)}.")
    embed = target.loaded.model.get_input_embeddings()
    tok = target.loaded.tokenizer
    if baseline == "zero":
        with torch.no_grad():
            emb = embed(input_ids)
        return torch.where(special.unsqueeze(-1), emb, torch.zeros_like(emb))
    token_id = tok.pad_token_id if baseline == "pad" else tok.mask_token_id
    if token_id is None:
        raise InputError(f"This model's tokenizer has no {baseline} token; choose another baseline.")
    ids = torch.where(special, input_ids, torch.full_like(input_ids, token_id))
    with torch.no_grad():
        return embed(ids)


def integrated_gradients(
    target: Target,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    special: torch.Tensor,
    *,
    token_type_ids: torch.Tensor | None = None,
    n_steps: int = 50,
    baseline: str = "pad",
    progress: ProgressCallback | None = None,
) -> TokenAttribution:
    """Attribute `target`'s explained score to each token.

    Args:
        input_ids, attention_mask, special: [1, tokens] tensors on the model's device.
        progress: called with the finished fraction after each batch of steps; it may
            raise to cancel the computation.
    """
    n_steps = check_steps(n_steps)
    embed = target.loaded.model.get_input_embeddings()
    with torch.no_grad():
        inputs = embed(input_ids).detach()
    baselines = baseline_embeddings(target, input_ids, special, baseline)
    batch = internal_batch_size(input_ids.shape[1], n_steps, inputs.shape[-1])
    done = [0]

    def forward(emb: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None) -> torch.Tensor:
        scores = target.forward_embeddings(emb, mask, types)
        if emb.requires_grad and progress is not None:
            done[0] += emb.shape[0]
            progress(min(1.0, done[0] / n_steps))
        return scores

    with torch.enable_grad():
        ig = IntegratedGradients(forward)
        attributions, delta = ig.attribute(
            inputs,
            baselines=baselines,
            target=target.index,
            additional_forward_args=(attention_mask, token_type_ids),
            n_steps=n_steps,
            internal_batch_size=batch,
            return_convergence_delta=True,
        )
    with torch.no_grad():
        ends = target.forward_embeddings(torch.cat([inputs, baselines]), attention_mask.repeat(2, 1),
                                         None if token_type_ids is None else token_type_ids.repeat(2, 1))
    scores = attributions.sum(-1)[0].detach().float().cpu().numpy()
    return TokenAttribution(
        scores=scores.astype(np.float32),
        score_input=float(ends[0, target.index]),
        score_baseline=float(ends[1, target.index]),
        delta=float(delta.reshape(-1)[0]),
        n_steps=n_steps,
        baseline=baseline,
    )


ATTRIBUTION_METHODS = {"integrated_gradients": integrated_gradients}
