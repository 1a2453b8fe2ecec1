"""How much each head matters for the explained score: three maps, layers x heads.

- gradient importance (Michel, Levy and Neubig 2019): |d score / d g| for a gate g = 1 on each head's
  output, all heads from one forward and one backward pass;
- ablation effect: the change of the score when that head alone is removed (layers x heads variants,
  batched by whole layers; the layers before a batch's first layer run once and are shared by its variants);
- confidence (Voita et al. 2019): each head's mean, over the text's tokens, of its largest attention weight.

Their Spearman rank correlations say whether the three agree on which heads matter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from explain.costs import work_units
from explain.heads.gating import adapter_of, check_mode, gated, head_means, shared_prefix
from explain.inputs import token_segments, tokenize
from explain.methods.base import FORWARD_PASS
from explain.models import LoadedModel
from explain.pacing import batch_between_pauses
from explain.records import TargetSpec
from explain.records.heads import HeadImportance
from explain.targets import TARGETS, Target, choose_index, model_position_ids, resolve_target, target_kind

# Tokens x variants in one forward batch (no gradient) at most: bert-base at 128 tokens runs 64 variants at once
# (attention scores of one layer: 64 x 12 heads x 128 x 128 floats, 50 MB). Batches are smaller where that would
# run longer than light work should wait for a pause point (`variants_per_batch`).
VARIANT_TOKEN_BUDGET = 8192

ProgressCallback = Callable[[float], None]


@dataclass(frozen=True)
class HeadInputs:
    """One tokenised text and its resolved target (explained index fixed), ready for head analyses."""

    target: Target
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    token_type_ids: torch.Tensor | None
    tokens: tuple[str, ...]
    # The model's own position ids for input_ids (None: `model_position_ids`), given to every pass as the
    # analysis does, so that RoBERTa-style models explain the same function.
    position_ids: torch.Tensor | None = None

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[1])

    @property
    def positions(self) -> torch.Tensor:
        if self.position_ids is not None:
            return self.position_ids
        return model_position_ids(self.target.loaded, self.input_ids)


def prepare_inputs(
    loaded: LoadedModel, text: str | tuple[str, ...], target: TargetSpec | None = None, max_tokens: int = 512,
    *, truncation: str = "longest_first",
) -> HeadInputs:
    """Tokenise `text` (or two texts read as one input, as `AnalysisRequest.texts` orders them) as an analysis
    does and fix the explained score (the top prediction when unset)."""
    with loaded.lock:
        enc, tokens = tokenize(loaded, text, min(int(max_tokens), loaded.max_tokens),
                               keep_mask=TARGETS[target_kind(loaded, target)].keeps_mask, truncation=truncation)
        ids, mask, types, positions = (enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"),
                                       enc["position_ids"])
        resolved = resolve_target(loaded, target, ids, token_segments(tokens), types)
        with torch.no_grad():
            scores = resolved.forward_embeddings(loaded.word_embeddings(ids), mask, types, positions)[0]
        resolved = choose_index(resolved, scores)
    return HeadInputs(resolved, ids, mask, types, tuple(tokens.tokens), positions)


def explained_scores(inputs: HeadInputs, n_variants: int = 1) -> torch.Tensor:
    """The explained score [variants] for the text repeated `n_variants` times (gates may differ per copy).

    Runs the same function integrated gradients explains (`Target.forward_embeddings`).
    """
    embed = inputs.target.loaded.word_embeddings
    with torch.no_grad():
        embeds = embed(inputs.input_ids)
    types = inputs.token_type_ids
    scores = inputs.target.forward_embeddings(
        embeds.expand(n_variants, -1, -1),
        inputs.attention_mask.expand(n_variants, -1),
        None if types is None else types.expand(n_variants, -1),
        inputs.positions.expand(n_variants, -1),
    )
    return scores[:, inputs.target.index].float()


def variants_per_batch(n_tokens: int, loaded: LoadedModel | None = None, total: int | None = None) -> int:
    """Variants of the text in one forward batch: within memory, and (given the model and the number of variants
    in all) a batch short enough and the run in enough batches for its pause points (`batch_between_pauses`)."""
    by_memory = max(1, VARIANT_TOKEN_BUDGET // max(n_tokens, 1))
    if loaded is None or total is None:
        return by_memory
    return min(by_memory, batch_between_pauses(total, work_units(FORWARD_PASS, loaded.config, n_tokens)))


def mean_outputs(loaded: LoadedModel, inputs: HeadInputs, mode: str) -> torch.Tensor | None:
    """The replacement outputs mean ablation needs (None for zero ablation)."""
    if check_mode(mode) == "zero":
        return None
    return head_means(loaded, inputs.input_ids, inputs.attention_mask, inputs.token_type_ids, inputs.positions)


def gradient_importance(loaded: LoadedModel, inputs: HeadInputs, mode: str = "zero") -> np.ndarray:
    """|d score / d gate| of every head at gates 1: [layers, heads], one forward and one backward pass."""
    adapter = adapter_of(loaded)
    with loaded.lock:
        means = mean_outputs(loaded, inputs, mode)
        gates = torch.ones(adapter.n_layers, adapter.n_heads, device=loaded.device, requires_grad=True)
        with gated(loaded, gates, mode, means), torch.enable_grad():
            score = explained_scores(inputs)[0]
            (grad,) = torch.autograd.grad(score, gates)
    return grad.abs().cpu().numpy().astype(np.float32)


def ablation_batches(n_layers: int, n_heads: int, max_variants: int) -> list[list[tuple[int, int]]]:
    """Single-head removals grouped into batches of at most `max_variants`, in layer order.

    Whole layers go together where they fit, spread evenly over as few batches as the size allows (each
    batch runs the layers from its first one; fewer, larger batches cost fewer passes); a layer with more
    heads than fit is split.
    """
    max_variants = max(1, int(max_variants))
    if n_heads > max_variants:
        return [[(layer, h) for h in range(start, min(n_heads, start + max_variants))]
                for layer in range(n_layers) for start in range(0, n_heads, max_variants)]
    n_batches = -(-n_layers * n_heads // max_variants)
    per_batch = min(-(-n_layers // n_batches), max_variants // n_heads)
    return [[(layer, h) for layer in range(start, min(n_layers, start + per_batch)) for h in range(n_heads)]
            for start in range(0, n_layers, per_batch)]


def ablation_effect(
    loaded: LoadedModel,
    inputs: HeadInputs,
    mode: str = "zero",
    progress: ProgressCallback | None = None,
    *,
    share_prefix: bool | None = None,
    batch_size: int | None = None,
) -> tuple[float, np.ndarray]:
    """The unablated score and the change of the score when each head alone is removed: [layers, heads]
    of (score without the head) - (score with every head).

    Every batch also runs the text with no head removed, and the changes are taken against that row, so
    the rounding of batched passes cancels: a head whose output is zero gets exactly 0.

    Args:
        share_prefix: run the layers before the ablated one once per batch (None: where the family's
            layers take a batch of one beside a larger one, which is the plain dot-product families).
        batch_size: texts per forward pass, the unablated reference included (None: from the length).
    """
    adapter = adapter_of(loaded)
    n_layers, n_heads = adapter.n_layers, adapter.n_heads
    share = adapter.plain_dot_product if share_prefix is None else bool(share_prefix)
    effect = np.zeros((n_layers, n_heads), dtype=np.float64)
    size = batch_size or variants_per_batch(inputs.n_tokens, loaded, n_layers * n_heads)
    batches = ablation_batches(n_layers, n_heads, max(2, size) - 1)
    with loaded.lock, torch.no_grad():
        means = mean_outputs(loaded, inputs, mode)
        full = float(explained_scores(inputs)[0])
        for done, batch in enumerate(batches, 1):
            layers, heads = (torch.tensor(column) for column in zip(*batch, strict=True))
            gates = torch.ones(len(batch) + 1, n_layers, n_heads, device=loaded.device)
            gates[torch.arange(1, len(batch) + 1), layers, heads] = 0
            with gated(loaded, gates, mode, means):
                if share:
                    with shared_prefix(loaded, batch[0][0], len(batch) + 1):
                        scores = explained_scores(inputs, 1)
                else:
                    scores = explained_scores(inputs, len(batch) + 1)
            scores64 = scores.double().cpu().numpy()
            effect[layers.numpy(), heads.numpy()] = scores64[1:] - scores64[0]
            if progress is not None:
                progress(done / len(batches))
    return full, effect.astype(np.float32)


def confidence(loaded: LoadedModel, inputs: HeadInputs) -> np.ndarray:
    """Each head's largest attention weight per query token, averaged over the text's real tokens."""
    types = inputs.token_type_ids
    extra = {} if types is None else {"token_type_ids": types}
    with loaded.lock, torch.no_grad():
        out = loaded.encoder(
            input_ids=inputs.input_ids, attention_mask=inputs.attention_mask, position_ids=inputs.positions,
            output_attentions=True, **extra
        )
        weights = torch.stack([a[0] for a in out.attentions]).float()  # [layers, heads, query, key]
    real = inputs.attention_mask[0].bool()
    top = weights.max(dim=-1).values[:, :, real]
    return top.mean(-1).cpu().numpy().astype(np.float32)


def rank_correlations(maps: list[np.ndarray]) -> np.ndarray:
    """Spearman rank correlations between the maps, [maps, maps] (NaN where a map is constant)."""
    from scipy.stats import spearmanr  # lazy: scipy.stats takes ~2 s to import

    n = len(maps)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            a, b = maps[i].ravel(), maps[j].ravel()
            if np.ptp(a) == 0 or np.ptp(b) == 0:
                rho = float("nan")
            else:
                rho = float(spearmanr(a, b).statistic)
            out[i, j] = out[j, i] = rho
    return out


def head_importance(
    loaded: LoadedModel, inputs: HeadInputs, mode: str = "zero", progress: ProgressCallback | None = None
) -> HeadImportance:
    """The three importance maps and their rank correlations, all under the model's lock.

    Args:
        mode: how the ablation effect removes a head ("zero" or "mean"); the gradient is taken at the
            same kind of gate.
        progress: called with the finished fraction; may raise to cancel.
    """
    check_mode(mode)
    report = progress or (lambda fraction: None)
    timings = {}
    with loaded.lock:
        t0 = time.perf_counter()
        gradient = gradient_importance(loaded, inputs, mode)
        timings["gradient"] = time.perf_counter() - t0
        report(0.05)
        t0 = time.perf_counter()
        score, effect = ablation_effect(loaded, inputs, mode, lambda f: report(0.05 + 0.9 * f))
        timings["ablation"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        conf = confidence(loaded, inputs)
        timings["confidence"] = time.perf_counter() - t0
    report(1.0)
    maps = [gradient, np.abs(effect), conf]
    return HeadImportance(
        gradient=gradient,
        ablation_effect=effect,
        confidence=conf,
        rank_correlation=rank_correlations(maps),
        score=score,
        score_name=inputs.target.score_name,
        description=inputs.target.description,
        mode=mode,
        timings=tuple(timings.items()),
    )
