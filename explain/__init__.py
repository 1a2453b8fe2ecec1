"""Attention maps and integrated-gradients attributions for BERT-family models.

    from explain import load_model, analyze, AnalysisRequest
    result = analyze(AnalysisRequest("The film was good but too long."))
"""

from __future__ import annotations

from explain.attention import head_statistics, rollout, token_by_layer
from explain.errors import ExplainError, InputError, ModelLoadError, SchemaError
from explain.methods.quadrature import integrated_gradients
from explain.models import BUILTIN_MODELS, DEFAULT_MODEL, RANDOM_CONTROL, LoadedModel, load_model
from explain.pipeline import analyze
from explain.records import (
    APP_VERSION,
    SCHEMA_VERSION,
    Analysis,
    AnalysisRequest,
    AttentionMaps,
    ModelInfo,
    Prediction,
    TargetSpec,
    TokenAttribution,
    Tokens,
    Words,
)
from explain.viz.notebook import attach_notebook_display

__all__ = [
    "APP_VERSION",
    "BUILTIN_MODELS",
    "DEFAULT_MODEL",
    "RANDOM_CONTROL",
    "SCHEMA_VERSION",
    "Analysis",
    "AnalysisRequest",
    "AttentionMaps",
    "ExplainError",
    "InputError",
    "LoadedModel",
    "ModelInfo",
    "ModelLoadError",
    "Prediction",
    "SchemaError",
    "TargetSpec",
    "TokenAttribution",
    "Tokens",
    "Words",
    "analyze",
    "head_statistics",
    "integrated_gradients",
    "load_model",
    "rollout",
    "token_by_layer",
]

attach_notebook_display()
