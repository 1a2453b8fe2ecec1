"""Attention-based relevance: last-layer attention, rollout, attention x gradient, gradient-weighted rollout.

Each reads the attention of the row (query) the target reads out: [CLS] (position 0)
for a classification head, the [MASK] position for a masked-token target, and the
mean of all attended rows for mean-pooled targets (zero-shot labels, similarity),
which read every position. The relevances are never negative (`signed=False`);
special tokens get 0 like in every method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explain.attention import rollout
from explain.methods.base import AttributionContext, Method, ProgressCallback, RawScores, one_forward_pass, register
from explain.methods.gradients import NoSettings
from explain.records import AttentionMaps


def readout_weights(context: AttributionContext) -> np.ndarray:
    """How the target reads the query rows, float64 [tokens] summing to 1 (see the module docstring)."""
    return context.target.readout_weights(context.attention_mask)


@dataclass(frozen=True)
class AttentionPass:
    """Attention maps [layers, heads, tokens, tokens] and the explained score's gradient on them, float64."""

    weights: np.ndarray
    gradients: np.ndarray


def attention_with_gradients(context: AttributionContext) -> AttentionPass:
    """One forward pass with attention weights and one backward pass of the explained score onto them."""
    target = context.target
    extra = context.model_inputs()
    embeds = context.embeddings().requires_grad_(True)
    with torch.enable_grad():
        out = target.module(inputs_embeds=embeds, attention_mask=context.attention_mask,
                            output_attentions=True, **extra)
        attentions = tuple(out.attentions)
        score = target.scores_from_output(out, context.attention_mask)[0, target.index]
        grads = torch.autograd.grad(score, attentions)
    weights = torch.stack([a[0] for a in attentions]).detach().double().cpu().numpy()
    gradients = torch.stack([g[0] for g in grads]).double().cpu().numpy()
    return AttentionPass(weights=weights, gradients=gradients)


def attention_weights(context: AttributionContext) -> np.ndarray:
    """Attention maps [layers, heads, tokens, tokens], float64, from one no-grad pass."""
    target = context.target
    extra = context.model_inputs()
    with torch.no_grad():
        out = target.module(inputs_embeds=context.embeddings(), attention_mask=context.attention_mask,
                            output_attentions=True, **extra)
    return torch.stack([a[0] for a in out.attentions]).double().cpu().numpy()


def gradient_weighted(attention: AttentionPass) -> np.ndarray:
    """Chefer et al.'s per-layer map E_h[(grad A * A)^+], [layers, tokens, tokens]."""
    return np.clip(attention.gradients * attention.weights, 0.0, None).mean(1)


def last_layer_attention(context: AttributionContext, settings: NoSettings, progress: ProgressCallback | None
                         ) -> RawScores:
    last = attention_weights(context)[-1].mean(0)
    return RawScores(scores=readout_weights(context) @ last)


def attention_rollout(context: AttributionContext, settings: NoSettings, progress: ProgressCallback | None
                      ) -> RawScores:
    rolled = rollout(AttentionMaps(weights=attention_weights(context).astype(np.float32))).astype(np.float64)
    return RawScores(scores=readout_weights(context) @ rolled)


def attention_x_gradient(context: AttributionContext, settings: NoSettings, progress: ProgressCallback | None
                         ) -> RawScores:
    """Last layer only: E_h[(grad A * A)^+] on the readout row."""
    last = gradient_weighted(attention_with_gradients(context))[-1]
    return RawScores(scores=readout_weights(context) @ last)


def gradient_weighted_rollout(context: AttributionContext, settings: NoSettings, progress: ProgressCallback | None
                              ) -> RawScores:
    """Chefer, Gur and Wolf (2021): R = I; for each layer R <- R + A_bar R; the readout row of R - I."""
    maps = gradient_weighted(attention_with_gradients(context))
    n = maps.shape[-1]
    relevance = np.eye(n)
    for layer_map in maps:
        relevance = relevance + layer_map @ relevance
    return RawScores(scores=readout_weights(context) @ (relevance - np.eye(n)))


LAST_LAYER_ATTENTION = register(Method(
    name="attention_last",
    title="Last-layer attention",
    summary="Attention of the read-out row ([CLS], [MASK], or all rows for pooled targets) in the last "
            "layer, averaged over heads.",
    settings_type=NoSettings,
    compute=last_layer_attention,
    cost=one_forward_pass,
    signed=False,
    uses_baseline=False,
))
ATTENTION_ROLLOUT = register(Method(
    name="attention_rollout",
    title="Attention rollout",
    summary="Rollout (Abnar and Zuidema 2020) of head-averaged attention with the residual, read-out row.",
    settings_type=NoSettings,
    compute=attention_rollout,
    cost=one_forward_pass,
    signed=False,
    uses_baseline=False,
))
ATTENTION_X_GRADIENT = register(Method(
    name="attention_x_gradient",
    title="Attention x gradient",
    summary="Last-layer attention times its gradient, positive part, averaged over heads, read-out row.",
    settings_type=NoSettings,
    compute=attention_x_gradient,
    signed=False,
    uses_baseline=False,
))
GRADIENT_WEIGHTED_ROLLOUT = register(Method(
    name="gradient_rollout",
    title="Gradient-weighted rollout",
    summary="Chefer, Gur and Wolf (2021): attention times gradient, positive part, head mean, rolled out "
            "with the identity over all layers (one forward and one backward pass).",
    settings_type=NoSettings,
    compute=gradient_weighted_rollout,
    signed=False,
    uses_baseline=False,
))
