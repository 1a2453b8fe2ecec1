"""ALTI, Value Zeroing and DecompX on the embedded MiniLM and on its randomised control (Adebayo et al. 2018's model randomisation)."""

from __future__ import annotations

import numpy as np
import pytest

from explain import RANDOM_CONTROL, load_model
from explain.evaluation.faithfulness import spearman
from explain.methods import get_method
from explain.records import TargetSpec
from testkit.contexts import build_context

pytestmark = pytest.mark.integration

SENTENCES = (
    "The service was terribly slow but the food was wonderful.",
    "I loved every minute of this beautiful and moving film.",
    "What a boring, predictable and far too long story.",
)


@pytest.mark.parametrize(("name", "factor"), [("alti", 5), ("value_zeroing", 3)])
def test_the_decomposition_ranks_words_differently_on_the_randomised_control(minilm, name, factor):
    """Measured (ALTI): Spearman -0.41, -0.35, 0.13; the randomised model's shares are almost uniform (spread ~0.01
    of their mean against ~0.5 on the trained model). Value Zeroing:
    Spearman 0.19, -0.21, -0.21; spread 0.44, 0.38, 0.59 of the mean against 0.08, 0.11, 0.12 on the control."""
    randomised = load_model(RANDOM_CONTROL)
    spec = TargetSpec("zero_shot", label="positive")
    method = get_method(name)
    correlations, spreads = [], []
    for text in SENTENCES:
        trained = method.attribute(build_context(minilm, text, spec)).word_scores
        control = method.attribute(build_context(randomised, text, spec)).word_scores
        correlations.append(spearman(trained, control))
        spreads.append((trained.std() / trained.mean(), control.std() / control.mean()))
    assert np.mean(correlations) < 0.5, correlations
    assert all(trained > factor * control for trained, control in spreads), spreads


def test_decompx_ranks_words_differently_on_the_randomised_control(minilm):
    """DecompX's signed shares of the zero-shot cosine, on the trained model and on its randomised copy."""
    randomised = load_model(RANDOM_CONTROL)
    spec = TargetSpec("zero_shot", label="positive")
    decompx = get_method("decompx")
    correlations = [spearman(decompx.attribute(build_context(minilm, text, spec)).word_scores,
                             decompx.attribute(build_context(randomised, text, spec)).word_scores)
                    for text in SENTENCES]
    assert np.mean(correlations) < 0.5, correlations
