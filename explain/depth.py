"""Where the explained score comes from: which part of the input representation, and where in depth.

Two attributions of the same scalar the rest of the app explains (the target's score at
`context.target.index`), both with Captum:

- `embedding_parts`: integrated gradients over the three embeddings BERT sums before its first
  layer norm (token, position, segment), as three inputs integrated together along one straight
  path. Each part's baseline is that part with its information taken out: the token part starts
  from the request's baseline tokens (as the main attribution: [CLS], [SEP] and a masked target's
  [MASK] kept); the position and segment parts start from the mean row of their embedding tables
  ("every token at the average position, in the average segment"). Not zero vectors: the layer norm
  that follows the sum cannot tell a vector from a scaled copy, so with [PAD]'s near-zero embedding
  and zero positions and segments the path's start collapses to the layer norm's bias and the whole
  score change happens in a sliver of the path near it, where no quadrature node lands (measured on
  a tiny random BERT: 50% of the score change missing at 32 steps, against 1e-7 with the means); and
  a zero vector removes the offset every position shares, not only which position a token is at.
  Not position 0 / segment 0 either: those are real values, so [CLS]'s position, or the whole
  segment row of a one-segment text, would score exactly 0 for no reason.
- `layer_attribution`: layer integrated gradients at each encoder layer's output (Captum's
  LayerIntegratedGradients, one layer at a time, since layers feed each other), from that layer's
  output on the baseline input to its output on the text, summed over the hidden size.

Both satisfy completeness: the scores add up to score(input) - score(baseline), up to the reported
integration error. Position and segment ids are the text's own (`context.model_inputs`), on the
model's device; hooks go on the shared model, so everything runs holding `loaded.lock`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from explain.costs import depth_work, work_units
from explain.errors import InputError
from explain.families import family_of, resolve
from explain.methods.base import AttributionContext
from explain.methods.baselines import endpoint_scores
from explain.methods.quadrature import internal_batch_size
from explain.models import LoadedModel
from explain.pacing import batch_between_pauses
from explain.records import EMBEDDING_PARTS, Analysis, EmbeddingParts, LayerAttribution
from explain.scheduling import WorkBudget

__all__ = [
    "EMBEDDING_PARTS",
    "DEPTH_STEPS",
    "EmbeddingParts",
    "LayerAttribution",
    "check_depth_budget",
    "embedding_modules",
    "embedding_parts",
    "encoder_layers",
    "layer_outputs",
    "layer_attribution",
]

ProgressCallback = Callable[[float], None]
DEPTH_STEPS = 50


def embedding_modules(loaded: LoadedModel) -> dict[str, torch.nn.Module]:
    """The position and segment embedding modules the model adds to its token embeddings, by part name.

    A part is left out where the model has no such table (DistilBERT: no segments) or does not add it
    (DeBERTa with relative positions only): its family's `embedding_paths`.
    """
    paths = family_of(loaded.config, "splitting the embeddings").embedding_paths(loaded.config)
    return {part: resolve(loaded.encoder, path) for part, path in paths.items() if part != "token"}


def encoder_layers(loaded: LoadedModel) -> list[torch.nn.Module]:
    """The encoder's transformer layers in order, one module per layer (its family's `layers`)."""
    family = family_of(loaded.config, "layer-wise attribution")
    if family.shared_layers:
        raise InputError(f"This model shares one module between several layers ({family.title}), so the output of "
                         "each layer cannot be attributed on its own.")
    layers = resolve(loaded.encoder, family.layers)
    if not isinstance(layers, torch.nn.ModuleList) or len(layers) == 0:
        raise InputError("This model's encoder layers were not found, so they cannot be attributed one by one.")
    return list(layers)


def layer_outputs(loaded: LoadedModel) -> list[torch.nn.Module]:
    """One module per layer whose output tensor is that layer's output: its last layer norm (its family's
    `output_norm`). Not the layer itself: some layers return a tuple with None in it (DeBERTa's attention
    weights), which Captum's layer attribution cannot hold."""
    family = family_of(loaded.config, "layer-wise attribution")
    return [resolve(loaded.encoder, family.layer_path(i, family.output_norm)) for i in range(len(encoder_layers(loaded)))]


def mean_embedding(module: torch.nn.Module) -> torch.Tensor:
    """The average row of an embedding table [hidden] (its padding row left out): the part's baseline."""
    weight = getattr(module, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise InputError("This model's position or segment embeddings are not a plain table.")
    rows = torch.ones(weight.shape[0], dtype=torch.bool, device=weight.device)
    padding = getattr(module, "padding_idx", None)
    if padding is not None and weight.shape[0] > 1:
        rows[padding] = False
    return weight.detach()[rows].mean(0)


def steps_per_batch(context: AttributionContext, n_steps: int, hidden_size: int) -> int:
    """Integration steps through the model at once: within memory, and short enough between two progress reports
    for light work to pause this at (`explain.pacing.batch_between_pauses`)."""
    step = work_units(1.0, context.target.loaded.config, context.n_tokens)
    return min(internal_batch_size(context.n_tokens, n_steps, hidden_size), batch_between_pauses(n_steps, step))


@contextmanager
def replaced_outputs(outputs: dict[torch.nn.Module, torch.Tensor]) -> Iterator[None]:
    """Within the block, each module returns the given tensor instead of computing its output."""
    handles = [module.register_forward_hook(lambda _m, _i, _o, value=value: value)
               for module, value in outputs.items()]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def recorded_outputs(modules: Sequence[torch.nn.Module]) -> Iterator[dict[int, torch.Tensor]]:
    """Within the block, record each module's first output, by the module's index in `modules`."""
    seen: dict[int, torch.Tensor] = {}

    def recorder(index: int) -> Callable:
        def record(_module, _inputs, output) -> None:
            seen.setdefault(index, output.detach())
        return record

    handles = [module.register_forward_hook(recorder(i)) for i, module in enumerate(modules)]
    try:
        yield seen
    finally:
        for handle in handles:
            handle.remove()


def embedding_parts(context: AttributionContext, n_steps: int = DEPTH_STEPS,
                    progress: ProgressCallback | None = None) -> EmbeddingParts:
    """Integrated gradients of the explained score over the token, position and segment embeddings.

    The three embeddings are integrated together along one straight path from (baseline tokens,
    mean position embedding, mean segment embedding) to the text's own, with Captum's Gauss-Legendre rule, so the
    scores of all parts and tokens add up to score(input) - score(all baselines) up to `delta`.
    """
    loaded = context.target.loaded
    start = time.perf_counter()
    with loaded.lock:
        modules = embedding_modules(loaded)
        names = ("token", *modules)
        extra = context.model_inputs(1)
        mask, types, positions = context.attention_mask, extra.get("token_type_ids"), extra["position_ids"]
        token = context.embeddings()
        with torch.no_grad(), recorded_outputs(list(modules.values())) as natural:
            context.target.forward_embeddings(token, mask, types, position_ids=positions)
        if len(natural) != len(modules):
            raise InputError("This model does not use its position or segment embeddings on this text.")
        inputs = (token, *(natural[i].expand_as(token).contiguous() for i in range(len(modules))))
        baselines = (context.baseline_embeddings(),
                     *(mean_embedding(module).expand_as(token) for module in modules.values()))
        parts = list(modules.values())
        total = n_steps + 2
        done = [0]

        def scores(token_part: torch.Tensor, *rest: torch.Tensor | None) -> torch.Tensor:
            values, (batch_mask, batch_types, batch_positions) = rest[: len(parts)], rest[len(parts):]
            assert batch_mask is not None and batch_positions is not None
            with replaced_outputs(dict(zip(parts, values))):  # type: ignore[arg-type]  # Tensors, never None
                out = context.target.forward_embeddings(token_part, batch_mask, batch_types,
                                                        position_ids=batch_positions)
            done[0] += token_part.shape[0]
            if progress is not None:
                progress(min(1.0, done[0] / total))
            return out

        with torch.no_grad():
            ends = scores(torch.cat([inputs[0], baselines[0]]), *(torch.cat([a, b]) for a, b in
                                                                   zip(inputs[1:], baselines[1:])),
                          mask.repeat(2, 1), None if types is None else types.repeat(2, 1), positions.repeat(2, 1))
        score_input, score_baseline = float(ends[0, context.target.index]), float(ends[1, context.target.index])
        batch = steps_per_batch(context, n_steps, token.shape[-1])
        from captum.attr import IntegratedGradients  # lazy: Captum imports IPython and matplotlib (~2 s)

        with torch.enable_grad():
            attributions = IntegratedGradients(scores).attribute(
                inputs, baselines=baselines, target=context.target.index,
                additional_forward_args=(mask, types, positions), n_steps=n_steps, internal_batch_size=batch,
            )
    rows = torch.stack([a.sum(-1)[0] for a in attributions]).detach().double().cpu().numpy()
    if progress is not None:
        progress(1.0)
    return EmbeddingParts(
        parts=tuple(name for name in EMBEDDING_PARTS if name in names),
        scores=rows[[names.index(name) for name in EMBEDDING_PARTS if name in names]],
        score_input=score_input,
        score_baseline=score_baseline,
        delta=float(rows.sum() - (score_input - score_baseline)),
        n_steps=n_steps,
        baseline=context.baseline,
        seconds=time.perf_counter() - start,
    )


@functools.cache
def reporting_layer_ig() -> type:
    """Captum's layer integrated gradients with `after_batch()` called after each batch of steps, once the batch's
    gradients are taken and its hook is off the layer: a point where the model can be lent to other work. Made on
    first use, so that importing this module does not import Captum (which imports IPython and matplotlib)."""
    from captum.attr import LayerIntegratedGradients

    class ReportingLayerIntegratedGradients(LayerIntegratedGradients):
        def __init__(self, forward_func: Callable, layer: torch.nn.Module, after_batch: Callable[[], None]) -> None:
            super().__init__(forward_func, layer)
            self.after_batch = after_batch

        def _make_gradient_func(self, *args: Any, **kwargs: Any) -> Callable[..., tuple[torch.Tensor, ...]]:
            gradients = super()._make_gradient_func(*args, **kwargs)

            def reporting(*inner: Any, **named: Any) -> tuple[torch.Tensor, ...]:
                found = gradients(*inner, **named)
                self.after_batch()
                return found

            return reporting

    return ReportingLayerIntegratedGradients


def layer_attribution(context: AttributionContext, n_steps: int = DEPTH_STEPS,
                      progress: ProgressCallback | None = None) -> LayerAttribution:
    """Layer integrated gradients of the explained score at every encoder layer's output.

    Row l integrates along the straight path from layer l + 1's output on the baseline input
    (the request's baseline tokens) to its output on the text; each row on its own adds up to
    score(input) - score(baseline), the same two numbers as the main attribution, up to delta[l].
    """
    loaded = context.target.loaded
    start = time.perf_counter()
    with loaded.lock:
        layers = layer_outputs(loaded)
        extra = context.model_inputs(1)
        mask, types, positions = context.attention_mask, extra.get("token_type_ids"), extra["position_ids"]
        inputs, baselines = context.embeddings(), context.baseline_embeddings()
        score_input, score_baseline = endpoint_scores(context.target, inputs, baselines, mask, types, positions)
        batch = steps_per_batch(context, n_steps, inputs.shape[-1])
        total = len(layers) * (n_steps + 2)  # Captum also runs the input and the baseline once per layer
        done = [0]

        def scores(embeds: torch.Tensor, batch_mask: torch.Tensor, batch_types: torch.Tensor | None,
                   batch_positions: torch.Tensor) -> torch.Tensor:
            out = context.target.forward_embeddings(embeds, batch_mask, batch_types, position_ids=batch_positions)
            done[0] += embeds.shape[0]
            return out

        def report() -> None:  # after each batch, hooks off: a cancellation point and a pause point
            if progress is not None:
                progress(min(1.0, done[0] / total))

        rows = []
        with torch.enable_grad():
            for layer in layers:
                attributions = reporting_layer_ig()(scores, layer, report).attribute(
                    inputs, baselines=baselines, target=context.target.index,
                    additional_forward_args=(mask, types, positions), n_steps=n_steps, internal_batch_size=batch,
                )
                rows.append(attributions.sum(-1)[0].detach().double())
    matrix = torch.stack(rows).cpu().numpy()
    if progress is not None:
        progress(1.0)
    return LayerAttribution(
        scores=matrix,
        delta=matrix.sum(axis=1) - (score_input - score_baseline),
        score_input=score_input,
        score_baseline=score_baseline,
        n_steps=n_steps,
        baseline=context.baseline,
        seconds=time.perf_counter() - start,
    )


def strongest_tokens(tokens: Sequence[str], scores: np.ndarray, k: int = 3) -> list[tuple[str, float]]:
    """The `k` tokens with the largest |score|, strongest first (ties in text order)."""
    values = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-np.abs(values), kind="stable")[:k]
    return [(tokens[i], float(values[i])) for i in order]


def check_depth_budget(analysis: Analysis, config: object, budget: WorkBudget | None = None,
                       n_steps: int | None = None) -> float:
    """The work units of both depth attributions of `analysis` (fp32, fixed steps: the embedding parts once,
    then every layer); WorkBudgetError, one sentence, when over the budget (from the environment unless given)."""
    budget = budget or WorkBudget.from_environment()
    work = depth_work(analysis.request, analysis.model.n_layers, config, len(analysis.tokens), n_steps)
    budget.check_work(work, f"Splitting the score over the embeddings and the {analysis.model.n_layers} layers",
                      "use fewer steps or a shorter text")
    return work
