"""Heads over a corpus: per text, layer and head, the attention statistics Explore shows and head importance.

For each group of texts padded to one length (`explain.corpus.batched.Padded`):

- attention statistics (`explain.attention.head_statistics`) and confidence (Voita et al. 2019: each head's mean
  largest attention weight) from one padded attention pass, each text's maps sliced to its own tokens;
- gradient importance (Michel, Levy and Neubig 2019): |d score / d gate| of a gate on each head's output, one set
  of gates per text in one padded forward and backward pass (the gradient of the summed scores is each text's own,
  as texts do not see each other);
- optionally the ablation effect (`explain.heads.ablation_effect`, layers x heads variants per text), text by text.

The results equal the single-text head analyses to float tolerance (tests/unit/test_corpus_heads.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from explain.attention import HEAD_STATISTICS, head_statistics
from explain.corpus.batched import Padded
from explain.corpus.tables import HEADS
from explain.heads import HeadInputs, ablation_effect, adapter_of, gated
from explain.methods.base import AttributionContext
from explain.models import LoadedModel
from explain.records import AttentionMaps

HEAD_METRICS = (*HEAD_STATISTICS, "confidence", "gradient", "ablation")
# Attention weights of one padded pass (texts x layers x heads x length^2 floats): 32 M floats, 128 MB.
ATTENTION_BUDGET = 1 << 25


def check_heads(loaded: LoadedModel) -> None:
    """InputError with one sentence when the model's heads cannot be gated (before any batch runs)."""
    adapter_of(loaded)


def padded_ids(padded: Padded) -> torch.Tensor:
    """The token ids of the padded texts (pad token after each text)."""
    loaded = padded.target.loaded
    pad = loaded.tokenizer.pad_token_id
    ids = torch.full(padded.mask.shape, 0 if pad is None else int(pad), dtype=torch.long, device=loaded.device)
    for i, context in enumerate(padded.contexts):
        ids[i, : context.n_tokens] = context.input_ids[0]
    return ids


def split_for_attention(contexts: Sequence[AttributionContext]) -> list[list[AttributionContext]]:
    """Consecutive (length-sorted) contexts in runs whose attention weights stay within ATTENTION_BUDGET."""
    adapter = adapter_of(contexts[0].target.loaded)
    per_text = adapter.n_layers * adapter.n_heads
    runs: list[list[AttributionContext]] = []
    for context in contexts:
        if runs and (len(runs[-1]) + 1) * per_text * max(context.n_tokens, runs[-1][-1].n_tokens) ** 2 \
                <= ATTENTION_BUDGET:
            runs[-1].append(context)
        else:
            runs.append([context])
    return runs


def contexts_head_maps(contexts: Sequence[AttributionContext], ablation: bool = False) -> list[dict[str, np.ndarray]]:
    """`group_head_maps` of any number of contexts sharing one target, in runs within the attention budget."""
    return [maps for run in split_for_attention(contexts) for maps in group_head_maps(run, ablation)]


def group_head_maps(contexts: Sequence[AttributionContext], ablation: bool = False) -> list[dict[str, np.ndarray]]:
    """Each text's [layers, heads] map of every metric in HEAD_METRICS (ablation nan unless asked for).

    The contexts share one resolved target, as `Padded` requires; the caller holds the model's lock.
    """
    padded = Padded(contexts)
    target, loaded = padded.target, padded.target.loaded
    adapter = adapter_of(loaded)
    k = len(padded.contexts)
    with torch.no_grad():
        _, out = target.forward_ids(padded_ids(padded), padded.mask, padded.types, padded.positions)
        weights = torch.stack(list(out.attentions), 1).float().cpu().numpy()  # [texts, layers, heads, q, k]
    del out
    rows = torch.arange(k, device=padded.inputs.device)
    gates = torch.ones(k, adapter.n_layers, adapter.n_heads, device=loaded.device, requires_grad=True)
    with gated(loaded, gates), torch.enable_grad():
        (grad,) = torch.autograd.grad(padded.explained(padded.inputs.detach(), rows).sum(), gates)
    gradient = grad.abs().cpu().numpy().astype(np.float32)
    maps = []
    for i, context in enumerate(padded.contexts):
        n = context.n_tokens
        w = weights[i, :, :, :n, :n]
        special = context.special[0].cpu().numpy()
        found: dict[str, np.ndarray] = dict(head_statistics(AttentionMaps(weights=w), special, [""] * n))
        found["confidence"] = w.max(-1).mean(-1).astype(np.float32)
        found["gradient"] = gradient[i]
        found["ablation"] = (text_ablation(loaded, context) if ablation
                             else np.full(gradient[i].shape, np.nan, dtype=np.float32))
        maps.append(found)
    return maps


def text_ablation(loaded: LoadedModel, context: AttributionContext) -> np.ndarray:
    """The change of the explained score when each head alone is removed (zero ablation), [layers, heads]."""
    inputs = HeadInputs(target=context.target, input_ids=context.input_ids, attention_mask=context.attention_mask,
                        token_type_ids=context.token_type_ids, tokens=(), position_ids=context.position_ids)
    return ablation_effect(loaded, inputs)[1]


def heads_table(texts: Sequence[tuple[str | None, dict[str, np.ndarray]]]) -> pa.Table:
    """The heads table of (text id, maps) pairs, in their order."""
    return pa.Table.from_pylist([r for text_id, maps in texts for r in head_rows(text_id, maps)], schema=HEADS)


def head_rows(text_id: str | None, maps: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """One text's rows of the heads table: one per layer and head."""
    n_layers, n_heads = maps["gradient"].shape
    rows = []
    for layer in range(n_layers):
        for head in range(n_heads):
            row: dict[str, Any] = {"text_id": text_id, "layer": layer, "head": head}
            for name in HEAD_METRICS:
                value = float(maps[name][layer, head])
                row[name] = None if np.isnan(value) else value
            rows.append(row)
    return rows
