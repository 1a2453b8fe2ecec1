"""Gradient methods across texts: one padded forward and backward pass for many texts at once.

Per-text methods (`explain.methods`) pass one text at a time; on short texts most of a pass
is fixed overhead. Here texts (sorted by length by the caller) are padded to the longest in
a group, the padding masked out, and each text's explained score summed before one backward
pass: the gradient of a sum is each text's own gradient, since texts do not see each other.
Results equal the per-text methods' to float tolerance (tests/unit/test_corpus_job.py,
tests/unit/test_corpus_batched_ig.py).

Passes are shared rather than repeated. The prediction pass at the inputs (`Padded.predict`)
also takes the gradient there when a method reads it (gradient x input, saliency, the alpha = 1
point of adaptive integrated gradients), so gradient x input costs one forward and one backward
pass per group of texts. The score at the baseline goes through the model only where a method's
output needs it (the completeness delta of integrated gradients); adaptive integrated gradients
reads both endpoint scores off its own first points (alpha 0 and 1). On a CPU the work grows
with the tokens, padding included, so each pass covers texts of similar lengths and is cut to
its longest one (`spans`), and passes that read no attention weights run SDPA attention
(`fast_attention`).

Default (adaptive Simpson) integrated gradients keeps one adaptive rule per text
(`explain.methods.quadrature.simpson_rounds`, the generator behind the per-text rule): each
round, the next points of every unfinished text go through the model together, and each
text's rule gets its own values back. A text so gets the same points, the same stopping and
the same delta as alone, up to the float rounding of a padded pass (which could flip a
decision only when a test lands on its threshold within that rounding).

`BATCHED` maps a method name to its batched form; its compute returns None for settings it
does not batch (bf16, the Clenshaw-Curtis rule, a cap below one Simpson panel), and the caller
runs the per-text method.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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
from explain.models import LoadedModel
from explain.targets import model_position_ids

# At most this share of a pass's tokens may be padding: on a CPU a padded token costs as much as a real one, while
# one more (smaller) pass costs little.
PADDING_SHARE = 0.125
# A pass's fixed work (module calls, autograd bookkeeping) in padded tokens: on a 2-core CPU with all-MiniLM-L6-v2 a
# one-text pass costs what about 58 more tokens of a larger pass do.
PASS_TOKENS = 58.0
MOST_TEXTS = 128


def spans(lengths: Sequence[int], budget: float, padding: float = PADDING_SHARE) -> list[tuple[int, int]]:
    """[start, end) runs of consecutive lengths whose padded tokens (count x longest) stay within `budget` and whose
    padding stays within `padding` of them; a length alone over the budget gets a run of its own."""
    out: list[tuple[int, int]] = []
    start, width, real = 0, 0, 0
    for i, n in enumerate(lengths):
        wider = max(width, n)
        tokens = (i - start + 1) * wider
        if i > start and (tokens > budget or tokens - (real + n) > padding * tokens):
            out.append((start, i))
            start, wider, real = i, n, 0
        width, real = wider, real + n
    if len(lengths):
        out.append((start, len(lengths)))
    return out


def cheapest_spans(lengths: Sequence[int], budget: float, pass_tokens: float, most: int = MOST_TEXTS
                   ) -> list[tuple[int, int]]:
    """[start, end) runs of consecutive lengths that minimise the work of their passes, each costing `pass_tokens`
    plus its padded tokens (count x longest): one more pass against more padding. A run stays within `budget` padded
    tokens and `most` texts; a length alone over the budget gets a run of its own."""
    n = len(lengths)
    best = [0.0] + [math.inf] * n
    start = [0] * (n + 1)
    for end in range(1, n + 1):
        width = 0
        for a in range(end - 1, max(end - most, 0) - 1, -1):
            width = max(width, lengths[a])
            tokens = (end - a) * width
            if tokens > budget and a < end - 1:
                break
            cost = best[a] + pass_tokens + tokens
            if cost < best[end]:
                best[end], start[end] = cost, a
    out: list[tuple[int, int]] = []
    end = n
    while end > 0:
        out.append((start[end], end))
        end = start[end]
    return out[::-1]


@contextmanager
def fast_attention(loaded: LoadedModel) -> Iterator[None]:
    """SDPA attention for passes that read no attention weights (hold `loaded.lock`): the shared model is loaded
    with eager attention so that maps can be read, which computes the same scores slower. Models that cannot switch
    stay as they are."""
    model: Any = loaded.model  # a transformers PreTrainedModel
    before = getattr(model.config, "_attn_implementation", None)
    switched = False
    if before == "eager" and getattr(model, "_supports_sdpa", False):
        try:
            model.set_attn_implementation("sdpa")
            switched = model.config._attn_implementation == "sdpa"
        except (ValueError, ImportError):
            switched = False
    try:
        yield
    finally:
        if switched or getattr(model.config, "_attn_implementation", None) != before:
            model.set_attn_implementation(before)


class Padded:
    """Input and baseline embeddings of several texts padded to one length, with their masks and ids.

    All contexts must share one resolved target (apart from its explained index). What one pass learns (the
    scores and the gradient at the inputs, the score at the baselines) is kept for the methods that follow.
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
        self.input_gradient: torch.Tensor | None = None
        self.score_input: torch.Tensor | None = None
        self.score_baseline: torch.Tensor | None = None

    def explained(self, embeds: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """The explained score of each variant [variants], variant r being a copy of text rows[r] (`embeds` may be
        cut to fewer tokens than the padded width, when these texts are shorter)."""
        width = embeds.shape[1]
        types = None if self.types is None else self.types[rows, :width]
        scores = self.target.forward_embeddings(embeds, self.mask[rows, :width], types, self.positions[rows, :width])
        return scores.gather(1, self.indices[rows].unsqueeze(1))[:, 0]

    def predict(self, choose: Callable[[int, torch.Tensor], AttributionContext], gradient: bool) -> torch.Tensor:
        """Every label's score at each text's input [texts, labels], from one pass; text i's context becomes
        choose(i, its scores) (its explained index chosen). With `gradient`, the same pass also gives each
        explained score's gradient at the input, which the gradient methods then read (`at_input`)."""
        points = self.inputs.detach().requires_grad_(gradient)
        with torch.set_grad_enabled(gradient):
            scores = self.target.forward_embeddings(points, self.mask, self.types, self.positions)
            self.contexts = [choose(i, scores[i].detach()) for i in range(len(self.contexts))]
            self.indices = torch.tensor([c.target.index for c in self.contexts], device=self.inputs.device)
            chosen = scores.gather(1, self.indices.unsqueeze(1))[:, 0]
            if gradient:
                (self.input_gradient,) = torch.autograd.grad(chosen.sum(), points)
        self.score_input = chosen.detach().float()
        return scores.detach()

    def at_input(self) -> torch.Tensor:
        """The gradient of each text's explained score at its input [texts, width, hidden], from one pass, kept."""
        if self.input_gradient is None:
            rows = torch.arange(len(self.contexts), device=self.inputs.device)
            points = self.inputs.detach().requires_grad_(True)
            with torch.enable_grad():
                scores = self.explained(points, rows)
                (self.input_gradient,) = torch.autograd.grad(scores.sum(), points)
            self.score_input = scores.detach().float()
        return self.input_gradient

    def endpoints(self, baseline: bool = True) -> list[tuple[float, float | None]]:
        """(score at the input, score at the baseline) of each text, float32 as `AttributionContext.endpoints`; only
        the scores not known yet go through the model. baseline=False: the baseline's is None unless known."""
        k = len(self.contexts)
        parts = [self.inputs] if self.score_input is None else []
        if baseline and self.score_baseline is None:
            parts.append(self.baselines)
        if parts:
            rows = torch.arange(k, device=self.inputs.device).repeat(len(parts))
            with torch.no_grad():
                scores = self.explained(torch.cat(parts), rows).float()
            if self.score_input is None:
                self.score_input, scores = scores[:k], scores[k:]
            if baseline and self.score_baseline is None:
                self.score_baseline = scores[:k]
        assert self.score_input is not None
        at_input = self.score_input.cpu().numpy()
        at_baseline = None if self.score_baseline is None else self.score_baseline.cpu().numpy()
        return [(float(at_input[i]), None if at_baseline is None else float(at_baseline[i])) for i in range(k)]

    def gradients(self, alphas: torch.Tensor, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gradient of each text's explained score at baseline + alpha * difference [variants, width, hidden], the
        width cut to the longest of these texts, and the score there [variants]."""
        width = max(self.lengths[int(r)] for r in rows)
        a = alphas.to(self.inputs.dtype).view(-1, 1, 1)
        inputs = self.inputs[rows, :width]
        points = torch.where(a == 1, inputs, self.baselines[rows, :width] + a * self.difference[rows, :width])
        points = points.detach().requires_grad_(True)
        with torch.enable_grad():
            scores = self.explained(points, rows)
            (grad,) = torch.autograd.grad(scores.sum(), points)
        return grad, scores.detach()

    def path_values(self, texts: torch.Tensor, alphas: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(input - baseline) . gradient of text texts[r] at alphas[r], summed over the hidden size (float64
        [variants, width]), and the explained score there (float32 [variants]). Variants go through the model
        sorted by length, in passes within `TOKEN_STEP_BUDGET` tokens and little padding (`spans`)."""
        k, width, hidden = self.inputs.shape
        order = sorted(range(len(texts)), key=lambda v: self.lengths[int(texts[v])])
        values = torch.zeros((len(texts), width), dtype=torch.float64)
        scores = torch.empty(len(texts), dtype=torch.float32)
        budget = TOKEN_STEP_BUDGET * 768 / max(hidden, 1)
        for start, end in spans([self.lengths[int(texts[v])] for v in order], budget):
            chosen = torch.as_tensor(order[start:end])
            rows = texts[chosen].to(self.inputs.device)
            grad, score = self.gradients(alphas[chosen], rows)
            cut = grad.shape[1]
            values[chosen, :cut] = (grad.float() * self.difference[rows, :cut]).sum(-1).double().cpu()
            scores[chosen] = score.float().cpu()
        return values, scores

    def raw(self, token_scores: torch.Tensor, endpoints: list[tuple[float, float | None]]) -> list[RawScores]:
        values = token_scores.detach().double().cpu().numpy()
        return [RawScores(scores=values[i, :n], score_input=e[0], score_baseline=e[1])
                for i, (n, e) in enumerate(zip(self.lengths, endpoints))]


def gradient_x_input(padded: Padded, settings: Any) -> list[RawScores]:
    """Not complete: the score at the baseline is left out (None) unless another method needed it."""
    return padded.raw((padded.at_input() * padded.difference).sum(-1), padded.endpoints(baseline=False))


def saliency(padded: Padded, settings: Any) -> list[RawScores]:
    return padded.raw(padded.at_input().norm(dim=-1), padded.endpoints(baseline=False))


def adaptive_ig(settings: Any) -> bool:
    """Whether these integrated-gradients settings run the batched adaptive Simpson rule."""
    return bool(settings.precision == "fp32" and settings.integration == "adaptive_simpson"
                and int(settings.n_steps) >= 5)


def integrated_gradients(padded: Padded, settings: Any) -> list[RawScores] | None:
    """Integrated gradients in float32 across texts: fixed Gauss-Legendre steps, or the default adaptive Simpson
    rule run per text on stacked passes; None for bf16, Clenshaw-Curtis and caps below one Simpson panel."""
    if adaptive_ig(settings):
        return adaptive_simpson(padded, settings)
    if settings.precision == "fp32" and settings.integration == "gauss_legendre":
        return fixed_steps(padded, int(settings.n_steps))
    return None


def fixed_steps(padded: Padded, n_steps: int) -> list[RawScores]:
    nodes, weights = gauss_legendre(n_steps)
    k = len(padded.contexts)
    values, _ = padded.path_values(torch.arange(k).repeat_interleave(len(nodes)),
                                   torch.as_tensor(nodes, dtype=torch.float32).repeat(k))
    total = (values.view(k, len(nodes), -1) * torch.as_tensor(weights, dtype=torch.float64)[None, :, None]).sum(1)
    return padded.raw(total, padded.endpoints())


def first_round(padded: Padded, alphas: np.ndarray) -> np.ndarray:
    """Path values of every text at the first round's alphas [texts, points, width]; the scores at alpha 0 and 1
    become the endpoint scores, and alpha 1's gradient is the one at the input when a pass already took it."""
    k = len(padded.contexts)
    assert alphas[0] == 0 and alphas[-1] == 1
    known = padded.input_gradient is not None
    points = alphas[:-1] if known else alphas
    values, scores = padded.path_values(torch.arange(k).repeat_interleave(len(points)),
                                        torch.as_tensor(points, dtype=torch.float32).repeat(k))
    values = values.view(k, len(points), -1)
    scores = scores.view(k, len(points))
    if known:
        at_one = (padded.at_input().float() * padded.difference).sum(-1).double().cpu()
        values = torch.cat([values, at_one[:, None]], 1)
    elif padded.score_input is None:
        padded.score_input = scores[:, -1].to(padded.inputs.device)
    padded.score_baseline = scores[:, 0].to(padded.inputs.device)
    return values.numpy()


def adaptive_simpson(padded: Padded, settings: Any) -> list[RawScores]:
    """The per-text adaptive Simpson rule of each text (`explain.methods.quadrature.integrated_gradients`), its
    rounds advanced together: each round evaluates the new points of every unfinished text in stacked passes."""
    n_steps = int(settings.n_steps)
    tolerance = float(settings.tolerance) or SIMPSON_TOLERANCE
    delta_tolerance = float(settings.delta_tolerance) or None
    first = next(simpson_rounds(tolerance, n_steps))  # the first points do not depend on the endpoint scores
    values = first_round(padded, first)
    endpoints = padded.endpoints()
    rules: list[SimpsonRounds] = []
    pending: dict[int, np.ndarray] = {}
    finished: dict[int, tuple[np.ndarray, int, bool]] = {}
    for i, (score_input, score_baseline) in enumerate(endpoints):
        assert score_baseline is not None
        change = score_input - score_baseline
        rules.append(simpson_rounds(
            tolerance, n_steps, rounding_floor(score_input, score_baseline),
            total=None if delta_tolerance is None else change,
            total_allowed=0.0 if delta_tolerance is None else delta_tolerance * abs(change)))
        assert np.array_equal(next(rules[i]), first)
        try:
            pending[i] = rules[i].send(values[i, :, : padded.lengths[i]])
        except StopIteration as stop:
            finished[i] = stop.value
    while pending:
        order = list(pending)
        texts = torch.cat([torch.full((len(pending[i]),), i) for i in order])
        alphas = torch.as_tensor(np.concatenate([pending[i] for i in order]), dtype=torch.float32)
        found = padded.path_values(texts, alphas)[0].numpy()
        start = 0
        for i in order:
            count = len(pending[i])
            try:
                pending[i] = rules[i].send(found[start : start + count, : padded.lengths[i]])
            except StopIteration as stop:
                finished[i] = stop.value
                del pending[i]
            start += count
    out = []
    for i, (score_input, score_baseline) in enumerate(endpoints):
        assert score_baseline is not None
        integral, used, converged = finished[i]
        scores = integral.astype(np.float32)
        out.append(RawScores(
            scores=scores.astype(np.float64), delta=float(scores.astype(np.float64).sum() - (score_input - score_baseline)),
            score_input=score_input, score_baseline=score_baseline,
            quadrature=Quadrature(evaluations=used, precision="fp32", tolerance=tolerance, converged=converged)))
    return out


def always(settings: Any) -> bool:
    return True


@dataclass(frozen=True)
class Batched:
    """A method's form across texts: its compute on padded texts (None: these settings are left to the per-text
    method), and whether it reads the gradient at the inputs, which the prediction pass then takes too."""

    compute: Callable[[Padded, Any], list[RawScores] | None]
    reads_input_gradient: Callable[[Any], bool] = always

    def __call__(self, contexts: Sequence[AttributionContext], settings: Any) -> list[RawScores] | None:
        """The method on `contexts` (their explained indices chosen) padded together."""
        return self.compute(Padded(contexts), settings)


BATCHED: dict[str, Batched] = {
    "gradient_x_input": Batched(gradient_x_input),
    "saliency": Batched(saliency),
    "integrated_gradients": Batched(integrated_gradients, reads_input_gradient=adaptive_ig),
}
