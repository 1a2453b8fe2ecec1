"""The page says what a logit-splitting method (DecompX) shares out: the logit, not the probability shown."""

from __future__ import annotations

from explain import AnalysisRequest, analyze
from explain.viz.text import split_score_text


def test_decompx_says_it_splits_the_logit_and_other_methods_say_nothing(tiny_models):
    loaded = tiny_models["classification"]
    decomposed = analyze(AnalysisRequest("a fine film", method="decompx"), loaded)
    text = split_score_text(decomposed)
    assert text.startswith(f"DecompX shares out the score behind {decomposed.prediction.description} before any")
    assert "not the probability" in text
    assert f"{decomposed.attribution.score_input:.4g}" in text
    assert f"{float(decomposed.attribution.scores.sum()):.4g}" in text
    assert split_score_text(analyze(AnalysisRequest("a fine film", method="gradient_x_input"), loaded)) == ""
