"""Gradient methods across texts: one padded forward and backward pass for many texts at once.

Per-text methods (`explain.methods`) pass one text at a time; on short texts most of a pass
is fixed overhead. Here texts (sorted by length by the caller) are padded to the longest in
a group, the padding masked out, and each text's explained score summed before one backward
pass: the gradient of a sum is each text's own gradient, since texts do not see each other.
Results equal the per-text methods' to float tolerance (tests/unit/test_corpus_batched.py).

Default (adaptive Simpson) integrated gradients keeps one adaptive rule per text
(`explain.methods.quadrature.simpson_rounds`, the generator behind the per-text rule): each
round, the next points of every unfinished text go through the model together, and each
text's rule gets its own values back. A text so gets the same points, the same stopping and
the same delta as alone, up to the float rounding of a padded pass (which could flip a
decision only when a test lands on its threshold within that rounding).

`BATCHED` maps a method name to its batched compute; a function returns None for settings it
does not batch (bf16, the Clenshaw-Curtis rule, a cap below one Simpson panel), and the caller
runs the per-text method.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from explain.methods.base import AttributionContext, Quadrature, RawScores
from explain.methods.quadrature import (
    SIMPSON_TOLERANCE,
    TOKEN_STEP_BUDGET,
    SimpsonRounds,
    gauss_legendre,
    rounding_floor,
    simpson_rounds,
)
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

    def path_values(self, texts: torch.Tensor, alphas: torch.Tensor) -> torch.Tensor:
        """(input - baseline) . gradient of text texts[r] at alphas[r], summed over the hidden size: float64
        [variants, width], as many variants per pass as `TOKEN_STEP_BUDGET` allows at this width."""
        k, width, hidden = self.inputs.shape
        per_pass = int(max(1, TOKEN_STEP_BUDGET * 768 / max(hidden, 1) // max(width, 1)))
        out = torch.empty((len(texts), width), dtype=torch.float64)
        for start in range(0, len(texts), per_pass):
            rows = texts[start : start + per_pass].to(self.inputs.device)
            grad = self.gradients(alphas[start : start + per_pass], rows)
            out[start : start + per_pass] = (grad.float() * self.difference[rows]).sum(-1).double().cpu()
        return out

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
    """Integrated gradients in float32 across texts: fixed Gauss-Legendre steps, or the default adaptive Simpson
    rule run per text on stacked passes; None for bf16, Clenshaw-Curtis and caps below one Simpson panel."""
    if settings.precision != "fp32":
        return None
    if settings.integration == "gauss_legendre":
        return fixed_steps(contexts, int(settings.n_steps))
    if settings.integration == "adaptive_simpson" and int(settings.n_steps) >= 5:
        return adaptive_simpson(contexts, settings)
    return None


def fixed_steps(contexts: Sequence[AttributionContext], n_steps: int) -> list[RawScores]:
    padded = Padded(contexts)
    nodes, weights = gauss_legendre(n_steps)
    k = len(contexts)
    values = padded.path_values(torch.arange(k).repeat_interleave(len(nodes)),
                                torch.as_tensor(nodes, dtype=torch.float32).repeat(k))
    total = (values.view(k, len(nodes), -1) * torch.as_tensor(weights, dtype=torch.float64)[None, :, None]).sum(1)
    return padded.raw(total, padded.endpoints())


def adaptive_simpson(contexts: Sequence[AttributionContext], settings: Any) -> list[RawScores]:
    """The per-text adaptive Simpson rule of each text (`explain.methods.quadrature.integrated_gradients`), its
    rounds advanced together: each round evaluates the new points of every unfinished text in stacked passes."""
    padded = Padded(contexts)
    endpoints = padded.endpoints()
    n_steps = int(settings.n_steps)
    tolerance = float(settings.tolerance) or SIMPSON_TOLERANCE
    delta_tolerance = float(settings.delta_tolerance) or None
    rules: list[SimpsonRounds] = []
    pending: dict[int, np.ndarray] = {}
    for i, (score_input, score_baseline) in enumerate(endpoints):
        change = score_input - score_baseline
        rules.append(simpson_rounds(
            tolerance, n_steps, rounding_floor(score_input, score_baseline),
            total=None if delta_tolerance is None else change,
            total_allowed=0.0 if delta_tolerance is None else delta_tolerance * abs(change)))
        pending[i] = next(rules[i])
    finished: dict[int, tuple[np.ndarray, int, bool]] = {}
    while pending:
        order = list(pending)
        texts = torch.cat([torch.full((len(pending[i]),), i) for i in order])
        alphas = torch.as_tensor(np.concatenate([pending[i] for i in order]), dtype=torch.float32)
        values = padded.path_values(texts, alphas).numpy()
        start = 0
        for i in order:
            count = len(pending[i])
            try:
                pending[i] = rules[i].send(values[start : start + count, : padded.lengths[i]])
            except StopIteration as stop:
                finished[i] = stop.value
                del pending[i]
            start += count
    out = []
    for i, (score_input, score_baseline) in enumerate(endpoints):
        integral, used, converged = finished[i]
        scores = integral.astype(np.float32)
        out.append(RawScores(
            scores=scores.astype(np.float64), delta=float(scores.astype(np.float64).sum() - (score_input - score_baseline)),
            score_input=score_input, score_baseline=score_baseline,
            quadrature=Quadrature(evaluations=used, precision="fp32", tolerance=tolerance, converged=converged)))
    return out


BATCHED: dict[str, BatchedCompute] = {
    "gradient_x_input": gradient_x_input,
    "saliency": saliency,
    "integrated_gradients": integrated_gradients,
}
