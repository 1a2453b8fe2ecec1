"""Evaluation of explanations: faithfulness (ERASER comprehensiveness and sufficiency)."""

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

__all__ = [
    "ERASER_BINS",
    "FERRET_DECILES",
    "Faithfulness",
    "FaithfulnessReport",
    "RandomFloor",
    "evaluate",
    "evaluate_context",
]
