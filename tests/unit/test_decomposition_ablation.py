"""The decomposition methods explain the model with heads removed, as the forward pass and the other methods do.

ALTI, GlobEnc and DecompX read each layer's attention from the forward pass, which keeps the removed heads'
weights (heads are removed at their output); they split the full model's mixing until the attention they read
had the removed heads zeroed.
"""

from __future__ import annotations

import numpy as np
import pytest

from explain import AnalysisRequest, analyze
from explain.errors import InputError

TEXT = "the film was good"
DECOMPOSITIONS = ["alti", "globenc", "decompx", "value_zeroing"]


def every_head(loaded) -> str:
    return ",".join(f"{layer}:*" for layer in range(loaded.info.n_layers))


@pytest.mark.parametrize("method", DECOMPOSITIONS)
def test_with_every_head_removed_no_word_reaches_the_pooled_token(tiny_models, method):
    """No head left means no token reads another: the classifier's first token owes nothing to any word."""
    loaded = tiny_models["classification"]
    request = AnalysisRequest(TEXT, method=method, ablate=every_head(loaded), max_tokens=loaded.max_tokens)
    np.testing.assert_allclose(analyze(request, loaded).word_scores, 0.0, atol=1e-7)


@pytest.mark.parametrize("method", DECOMPOSITIONS)
def test_removing_one_head_changes_the_decomposition(tiny_models, method):
    loaded = tiny_models["classification"]
    full = analyze(AnalysisRequest(TEXT, method=method, max_tokens=loaded.max_tokens), loaded)
    ablated = analyze(AnalysisRequest(TEXT, method=method, ablate="0:*", max_tokens=loaded.max_tokens), loaded)
    assert not np.allclose(full.word_scores, ablated.word_scores, rtol=1e-4, atol=1e-7)


def test_decompx_stays_exactly_complete_on_the_ablated_model(tiny_models):
    loaded = tiny_models["classification"]
    result = analyze(AnalysisRequest(TEXT, method="decompx", ablate="0:1,1:0", max_tokens=loaded.max_tokens), loaded)
    a = result.attribution
    assert float(np.sum(a.scores, dtype=np.float64)) == pytest.approx(a.score_input, rel=1e-5, abs=1e-7)


@pytest.mark.parametrize("method", ["alti", "globenc", "decompx"])
def test_mean_ablation_is_refused_in_one_sentence(tiny_models, method):
    loaded = tiny_models["classification"]
    request = AnalysisRequest(TEXT, method=method, ablate="0:1", ablate_mode="mean", max_tokens=loaded.max_tokens)
    with pytest.raises(InputError, match=r"^[^.]*set to zero[^.]*; choose zero ablation or another method\.$"):
        analyze(request, loaded)
