"""Evaluation of explanations: faithfulness (ERASER comprehensiveness and sufficiency, and normalised AOPC)."""

from __future__ import annotations

from explain.evaluation.faithfulness import (
    ERASER_BINS,
    FERRET_DECILES,
    Faithfulness,
    FaithfulnessReport,
    RandomFloor,
    evaluate,
    evaluate_context,
)
from explain.evaluation.naopc import AOPCLimits, NAOPCSettings, aopc_limits

__all__ = [
    "ERASER_BINS",
    "FERRET_DECILES",
    "AOPCLimits",
    "Faithfulness",
    "FaithfulnessReport",
    "NAOPCSettings",
    "RandomFloor",
    "aopc_limits",
    "evaluate",
    "evaluate_context",
]
