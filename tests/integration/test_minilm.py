from __future__ import annotations

import numpy as np
import pytest

from explain import AnalysisRequest, TargetSpec, analyze, load_model

pytestmark = pytest.mark.integration


def test_terrible_lowers_positive_sentiment(minilm):
    result = analyze(AnalysisRequest("The service was terrible.", target=TargetSpec("zero_shot", label="positive")),
                     minilm)
    words = dict(zip(result.words.words, result.word_scores))
    assert words["terrible"] < 0
    assert words["terrible"] == min(words.values())
    assert result.prediction.labels == ["positive", "negative"]
    assert result.prediction.scores[1] > result.prediction.scores[0]


def test_default_steps_converge(minilm):
    fixed = analyze(AnalysisRequest("The film was good but too long.", integration="gauss_legendre"), minilm)
    assert fixed.attribution.n_steps == 50
    assert fixed.attribution.relative_delta < 0.01
    assert fixed.model.n_layers == 6 and fixed.model.n_heads == 12


def test_the_default_adaptive_integration_ranks_words_as_fixed_steps_with_fewer_evaluations(minilm):
    text = "The film was good but too long."
    adaptive = analyze(AnalysisRequest(text), minilm)
    fixed = analyze(AnalysisRequest(text, integration="gauss_legendre"), minilm)
    a = adaptive.attribution
    assert adaptive.request.integration == "adaptive_simpson" and a.converged is True
    assert a.n_steps < 50
    assert a.relative_delta < 0.05
    assert list(np.argsort(-adaptive.word_scores)) == list(np.argsort(-fixed.word_scores))


def test_random_control_is_reproducible_and_differs_from_trained(minilm):
    a = load_model("minilm-random")
    b = load_model("minilm-random")
    for pa, pb in zip(a.model.parameters(), b.model.parameters()):
        assert np.array_equal(pa.numpy(), pb.numpy())
    trained = minilm.model.embeddings.word_embeddings.weight
    assert not np.allclose(trained.numpy(), a.model.embeddings.word_embeddings.weight.numpy())
