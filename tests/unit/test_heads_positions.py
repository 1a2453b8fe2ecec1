"""The heads' passes explain the function the analysis shows: the model's own position ids, also on RoBERTa."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from explain import AnalysisRequest, TargetSpec, analyze
from explain.heads import HeadInputs, HeadSet, explained_scores, gated, head_means, prepare_inputs
from explain.targets import resolve_target

TEXT = "the film was good but too long ."
TARGETS = {"classification": TargetSpec("class", label="positive"), "masked_lm": TargetSpec("masked_token"),
           "encoder": TargetSpec("zero_shot", label="positive")}
TEXTS = {"classification": TEXT, "masked_lm": "the film was <mask> but too long .", "encoder": TEXT}


def pad_inside(loaded, text: str = TEXT) -> torch.Tensor:
    """Token ids with a <pad> id inside the text (as a batch left-padded to a common length has)."""
    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"]
    pad = torch.tensor([[loaded.tokenizer.pad_token_id]])
    return torch.cat([ids[:, :4], pad, ids[:, 4:]], dim=1)


@pytest.mark.parametrize("head", list(TARGETS))
def test_heads_explained_score_is_the_analysis_prediction_on_roberta(tiny_roberta, head):
    loaded = tiny_roberta[head]
    result = analyze(AnalysisRequest(TEXTS[head], target=TARGETS[head], n_steps=4), loaded)
    shown = float(result.prediction.scores[result.prediction.explained_index])
    inputs = prepare_inputs(loaded, TEXTS[head], TARGETS[head], result.request.max_tokens)
    assert float(explained_scores(inputs)[0]) == pytest.approx(shown, abs=1e-6)


def test_heads_score_ids_holding_a_pad_by_the_models_own_positions(tiny_roberta):
    """RoBERTa numbers positions skipping <pad>; the heads' passes on embeddings must too, or they score
    another function than the model computes from the ids."""
    loaded = tiny_roberta["classification"]
    ids = pad_inside(loaded)
    mask = torch.ones_like(ids)
    target = replace(resolve_target(loaded, TARGETS["classification"], ids), index=2)
    with torch.no_grad():
        own = float(torch.softmax(loaded.model(input_ids=ids, attention_mask=mask).logits, -1)[0, 2])
        sequential = float(target.forward_embeddings(loaded.word_embeddings(ids), mask)[0, 2])
    assert abs(sequential - own) > 1e-3  # the case would not tell the two numberings apart otherwise
    inputs = HeadInputs(target, ids, mask, None, tuple(loaded.tokenizer.convert_ids_to_tokens(ids[0])))
    with torch.no_grad():
        assert float(explained_scores(inputs)[0]) == pytest.approx(own, abs=1e-6)
        assert np.allclose(explained_scores(inputs, 3).numpy(), own, atol=1e-6)
    with gated(loaded, HeadSet.parse("0:1", 2, 4)), torch.no_grad():
        gated_own = float(torch.softmax(loaded.model(input_ids=ids, attention_mask=mask).logits, -1)[0, 2])
        assert float(explained_scores(inputs)[0]) == pytest.approx(gated_own, abs=1e-6)
    means = head_means(loaded, ids, mask)
    with gated(loaded, HeadSet.parse("1:*", 2, 4), "mean", means), torch.no_grad():
        mean_own = float(torch.softmax(loaded.model(input_ids=ids, attention_mask=mask).logits, -1)[0, 2])
        assert float(explained_scores(inputs)[0]) == pytest.approx(mean_own, abs=1e-6)
