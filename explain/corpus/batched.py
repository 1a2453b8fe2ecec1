"""Gradient methods across texts: one padded forward and backward pass for many texts at once.

Per-text methods (`explain.methods`) pass one text at a time; on short texts most of a pass
is fixed overhead. Here texts (sorted by length by the caller) are padded to the longest in
a group, the padding masked out, and each text's explained score summed before one backward
pass: the gradient of a sum is each text's own gradient, since texts do not see each other.
Results equal the per-text methods' to float tolerance (tests/unit/test_corpus_batched.py).

`BATCHED` maps a method name to its batched compute; a function returns None for settings it
does not batch (adaptive integrated gradients), and the caller runs the per-text method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from explain.methods.base import AttributionContext, RawScores
from explain.methods.quadrature import TOKEN_STEP_BUDGET, gauss_legendre
from explain.targets import model_position_ids

BatchedCompute = Callable[[Sequence[AttributionContext], Any], "list[RawScores] | None"]


class Padded:
    """Input and baseline embeddings of several texts padded to one length, with their masks and ids.

    All contexts must share one resolved target (apart from its explained index).
    """

    def __init__(self, contexts: Sequence[AttributionContext]) -> None:
        self.contexts = list(contexts)
        first = self.contexts[0].target
        loaded = first.loaded
        self.target = first
        self.indices = torch.tensor([c.target.index for c in self.contexts], device=loaded.device)
        self.lengths = [c.n_tokens for c in self.contexts]
        width = max(self.lengths)
        pad = loaded.tokenizer.pad_token_id
        pad = 0 if pad is None else int(pad)
        k = len(self.contexts)
        ids = torch.full((k, width), pad, dtype=torch.long, device=loaded.device)
        mask = torch.zeros((k, width), dtype=torch.long, device=loaded.device)
        types = None if self.contexts[0].token_type_ids is None else torch.zeros_like(ids)
        with torch.no_grad():
            hidden = loaded.word_embeddings(ids[:1, :1]).shape[-1]
        self.inputs = torch.zeros((k, width, hidden), device=loaded.device)
        self.baselines = torch.zeros_like(self.inputs)
        positions = model_position_ids(loaded, ids).clone()
        for i, c in enumerate(self.contexts):
            n = c.n_tokens
            ids[i, :n] = c.input_ids[0]
            mask[i, :n] = c.attention_mask[0]
            if types is not None and c.token_type_ids is not None:
                types[i, :n] = c.token_type_ids[0]
            assert c.position_ids is not None
            positions[i, :n] = c.position_ids[0]
            self.inputs[i, :n] = c.embeddings()[0]
            self.baselines[i, :n] = c.baseline_embeddings()[0]
        self.mask, self.types, self.positions = mask, types, positions
        self.difference = self.inputs - self.baselines

    def explained(self, embeds: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The explained score of each variant [variants], variant r being a copy of text rows[r]."""
        types = None if self.types is None else self.types[rows]
        scores = self.target.forward_embeddings(embeds, self.mask[rows], types, self.positions[rows])
        return scores.gather(1, self.indices[rows].unsqueeze(1))[:, 0]

    def endpoints(self) -> list[tuple[float, float]]:
        """(score at the input, score at the baseline) of each text, float32 as `AttributionContext.endpoints`."""
        k = len(self.contexts)
        rows = torch.arange(k, device=self.inputs.device).repeat(2)
        with torch.no_grad():
            scores = self.explained(torch.cat([self.inputs, self.baselines]), rows).float().cpu().numpy()
        return [(float(scores[i]), float(scores[k + i])) for i in range(k)]

    def gradients(self, alphas: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Gradient of each text's explained score at baseline + alpha * difference: [variants, tokens, hidden]."""
        a = alphas.to(self.inputs.dtype).view(-1, 1, 1)
        points = torch.where(a == 1, self.inputs[rows], self.baselines[rows] + a * self.difference[rows])
        points = points.detach().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.explained(points, rows).sum(), points)
        return grad

    def raw(self, token_scores: torch.Tensor, endpoints: list[tuple[float, float]]) -> list[RawScores]:
        values = token_scores.detach().double().cpu().numpy()
        return [RawScores(scores=values[i, :n], score_input=e[0], score_baseline=e[1])
                for i, (n, e) in enumerate(zip(self.lengths, endpoints))]


def gradient_x_input(contexts: Sequence[AttributionContext], settings: Any) -> list[RawScores]:
    padded = Padded(contexts)
    rows = torch.arange(len(contexts), device=padded.inputs.device)
    grad = gradients_at_input(padded, rows)
    return padded.raw((grad * padded.difference).sum(-1), padded.endpoints())


def saliency(contexts: Sequence[AttributionContext], settings: Any) -> list[RawScores]:
    padded = Padded(contexts)
    rows = torch.arange(len(contexts), device=padded.inputs.device)
    return padded.raw(gradients_at_input(padded, rows).norm(dim=-1), padded.endpoints())


def gradients_at_input(padded: Padded, rows: torch.Tensor) -> torch.Tensor:
    points = padded.inputs[rows].detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(padded.explained(points, rows).sum(), points)
    return grad


def integrated_gradients(contexts: Sequence[AttributionContext], settings: Any) -> list[RawScores] | None:
    """Fixed Gauss-Legendre steps in float32 across texts; None for the adaptive rules and bf16."""
    if settings.integration != "gauss_legendre" or settings.precision != "fp32":
        return None
    padded = Padded(contexts)
    nodes, weights = gauss_legendre(settings.n_steps)
    k, width, hidden = padded.inputs.shape
    per_pass = int(max(1, TOKEN_STEP_BUDGET * 768 / max(hidden, 1) // max(width, 1)))
    text_of = torch.arange(k).repeat_interleave(len(nodes))
    alpha_of = torch.as_tensor(nodes, dtype=torch.float32).repeat(k)
    weight_of = torch.as_tensor(weights, dtype=torch.float64).repeat(k)
    total = torch.zeros((k, width), dtype=torch.float64)
    for start in range(0, len(text_of), per_pass):
        rows = text_of[start : start + per_pass].to(padded.inputs.device)
        grad = padded.gradients(alpha_of[start : start + per_pass], rows)
        contribution = (grad * padded.difference[rows]).sum(-1).double().cpu()
        total.index_add_(0, rows.cpu(), contribution * weight_of[start : start + per_pass, None])
    return padded.raw(total, padded.endpoints())


BATCHED: dict[str, BatchedCompute] = {
    "gradient_x_input": gradient_x_input,
    "saliency": saliency,
    "integrated_gradients": integrated_gradients,
}
