"""Heads: knock them out (gates on each head's output), rank them, prune them, look inside one.

    from explain.heads import HeadSet, prepare_inputs, head_importance, pruning_curve, neuron_view
    inputs = prepare_inputs(loaded, "The film was good but too long.")
    importance = head_importance(loaded, inputs)
    curve = pruning_curve(loaded, inputs, importance.map("gradient"))
    with gated(loaded, HeadSet.parse("0:1,2:*", 6, 12)):
        ...  # every pass of the model here runs without those heads (the model's lock is held)
"""

from __future__ import annotations

from explain.heads.adapters import AttentionSite, HeadAdapter, head_adapter
from explain.heads.gating import ABLATION_MODES, HeadSet, adapter_of, gated, head_means
from explain.heads.importance import (
    HeadInputs,
    ablation_effect,
    confidence,
    explained_scores,
    gradient_importance,
    head_importance,
    prepare_inputs,
    rank_correlations,
)
from explain.heads.neuron import neuron_view
from explain.heads.pruning import PRUNING_ORDERS, pruning_curve
from explain.records.heads import MAP_NAMES, HeadImportance, NeuronView, PruningCurve

__all__ = [
    "ABLATION_MODES",
    "MAP_NAMES",
    "PRUNING_ORDERS",
    "AttentionSite",
    "HeadAdapter",
    "HeadImportance",
    "HeadInputs",
    "HeadSet",
    "NeuronView",
    "PruningCurve",
    "ablation_effect",
    "adapter_of",
    "confidence",
    "explained_scores",
    "gated",
    "gradient_importance",
    "head_adapter",
    "head_importance",
    "head_means",
    "neuron_view",
    "prepare_inputs",
    "pruning_curve",
    "rank_correlations",
]
