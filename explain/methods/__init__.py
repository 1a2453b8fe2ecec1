"""Attribution methods side by side: a registry of methods with declared settings and one verb each.

    from explain.methods import METHODS, AttributionContext, get_method
    result = get_method("occlusion").attribute(context)

The method modules register themselves below, in the order the dashboard lists them.
"""

from __future__ import annotations

# isort: off
# Registration order is the order the dashboard lists the methods in.
from explain.methods import integrated_gradients, gradients, perturbation, attention_based, decomposition
from explain.methods import decompx
from explain.methods import value_zeroing
# isort: on
from explain.methods.base import (
    METHODS,
    AttributionContext,
    Method,
    MethodAttribution,
    MethodSettings,
    SettingSpec,
    get_method,
    recorded_baseline,
    register,
)
from explain.methods.scoring import score_embeddings, word_scorer

__all__ = [
    "METHODS",
    "recorded_baseline",
    "AttributionContext",
    "Method",
    "MethodAttribution",
    "MethodSettings",
    "SettingSpec",
    "attention_based",
    "decompx",
    "decomposition",
    "get_method",
    "gradients",
    "integrated_gradients",
    "perturbation",
    "register",
    "score_embeddings",
    "value_zeroing",
    "word_scorer",
]
