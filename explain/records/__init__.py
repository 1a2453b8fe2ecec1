"""Records: what is asked (requests), what comes back (results) and their one JSON form.

Frozen dataclasses of numpy arrays and strings; the JSON codec writes arrays in a typed encoding
(base64 bytes, dtype, shape) under a schema version, and `migrations` upgrades older documents as they
are read. This package imports nothing of the project above `explain.errors`.
"""

from __future__ import annotations

from explain.records.analysis import (
    EMBEDDING_PARTS,
    Analysis,
    AttentionMaps,
    EmbeddingParts,
    EntityExplanation,
    FaithfulnessSummary,
    LayerAttribution,
    MethodResult,
    ModelInfo,
    Prediction,
    ReadLimits,
    Span,
    TokenAttribution,
    Tokens,
    Words,
    analysis_from_dict,
    check_consistent,
    check_depth,
    parse_json,
    request_from_dict,
    to_jsonable,
)
from explain.records.heads import (
    MAP_NAMES,
    HeadImportance,
    NeuronView,
    PruningCurve,
    head_importance_from_dict,
    heads_document,
    neuron_view_from_dict,
    pruning_curve_from_dict,
)
from explain.records.migrations import MIGRATIONS, migrate
from explain.records.requests import (
    APP_VERSION,
    BASELINES,
    DEFAULT_DELTA_TOLERANCE,
    DEFAULT_INTEGRATION,
    DEFAULT_MAX_TOKENS,
    DEFAULT_STEPS,
    FIXED_INTEGRATION,
    INTEGRATIONS,
    LEGACY_MAX_TOKENS,
    MAX_STEPS,
    MIN_STEPS,
    SCHEMA_VERSION,
    AnalysisRequest,
    HeadsRequest,
    TargetSpec,
    implied_integration,
    texts_in_order,
)

__all__ = [
    "MAP_NAMES", "HeadImportance", "NeuronView", "PruningCurve", "head_importance_from_dict", "heads_document",
    "neuron_view_from_dict", "pruning_curve_from_dict",
    "APP_VERSION", "BASELINES", "DEFAULT_DELTA_TOLERANCE", "DEFAULT_INTEGRATION", "DEFAULT_MAX_TOKENS", "DEFAULT_STEPS", "EMBEDDING_PARTS",
    "FIXED_INTEGRATION", "INTEGRATIONS", "LEGACY_MAX_TOKENS", "MAX_STEPS", "MIGRATIONS", "MIN_STEPS",
    "SCHEMA_VERSION", "Analysis", "AnalysisRequest", "AttentionMaps", "HeadsRequest", "EmbeddingParts", "EntityExplanation",
    "FaithfulnessSummary", "LayerAttribution", "MethodResult", "ModelInfo", "Prediction", "ReadLimits", "Span",
    "TargetSpec", "TokenAttribution", "Tokens", "Words", "analysis_from_dict", "check_consistent", "check_depth",
    "implied_integration", "migrate", "parse_json", "request_from_dict", "texts_in_order", "to_jsonable",
]
