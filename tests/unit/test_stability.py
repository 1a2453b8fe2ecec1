"""Seed-to-seed agreement of the stochastic methods (issue 21 B3), and SmoothGrad's noise scale."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from explain import AnalysisRequest, TargetSpec
from explain.evaluation.stability import (
    MAX_SEED,
    context_seed_agreement,
    other_seed,
    other_seed_request,
    request_seed,
    seed_agreement,
)
from explain.methods import METHODS
from explain.methods.gradients import token_norm
from explain.pipeline import attribution_context


def test_the_stochastic_methods_are_those_with_a_seed():
    assert sorted(name for name, m in METHODS.items() if m.stochastic) == ["kernel_shap", "lime", "smoothgrad"]


def test_the_other_seed_request_changes_only_that_methods_seed():
    request = AnalysisRequest("a film", method_settings=(("lime.n_samples", "40"), ("smoothgrad.seed", "3")))
    assert request_seed(request, "smoothgrad") == 3 and request_seed(request, "lime") == 0
    other = other_seed_request(request, "smoothgrad")
    assert dict(other.method_settings) == {"lime.n_samples": "40", "smoothgrad.seed": "4"}
    assert dict(other_seed_request(request, "lime").method_settings)["lime.seed"] == "1"
    assert other_seed(MAX_SEED) == 0
    with pytest.raises(ValueError):
        request_seed(request, "occlusion")


def test_agreement_is_spearman_of_the_word_scores_and_nan_without_a_ranking():
    assert seed_agreement("lime", (0, 1), np.array([1.0, 2, 3]), np.array([2.0, 4, 9])).spearman == pytest.approx(1)
    assert seed_agreement("lime", (0, 1), np.array([1.0, 2, 3]), np.array([3.0, 2, 1])).spearman == pytest.approx(-1)
    assert math.isnan(seed_agreement("lime", (0, 1), np.zeros(3), np.array([1.0, 2, 3])).spearman)


def test_context_seed_agreement_runs_two_seeds(tiny_models):
    context = attribution_context(AnalysisRequest("the film was good but far too long", model="tiny",
                                                  target=TargetSpec("class", label="positive")),
                                  tiny_models["classification"])
    agreement = context_seed_agreement("smoothgrad", context)
    assert agreement.seeds == (0, 1) and -1 <= agreement.spearman <= 1
    same = context_seed_agreement("smoothgrad", context, METHODS["smoothgrad"].settings_type(noise=0.0))
    assert same.spearman == pytest.approx(1.0)  # no noise: both seeds give the method it smooths
    with pytest.raises(ValueError):
        context_seed_agreement("occlusion", context)


def test_smoothgrads_noise_is_scaled_to_the_tokens_norm(tiny_models):
    context = attribution_context(AnalysisRequest("the film was good", model="tiny",
                                                  target=TargetSpec("class", label="positive")),
                                  tiny_models["classification"])
    embeddings = context.embeddings()[0][~context.special[0]]
    assert token_norm(context) == pytest.approx(float(torch.linalg.vector_norm(embeddings, dim=-1).mean()))
    assert METHODS["smoothgrad"].settings_type().as_dict()["noise"] == 0.05
