"""The last layer cut to its first position (explain.corpus.first_position): the class scores and their gradients at
the inputs of padded texts equal the whole model's, on tiny random models of every family it is listed for; the
cut is really made there, never for other families or targets, and gone afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain import load_model
from explain.corpus.first_position import first_position_only, last_layer_cut
from explain.families import FAMILIES
from explain.pipeline import attribution_context
from explain.records import AnalysisRequest
from testkit.families import save_tiny_family
from tests.unit.padded_pass import scores_and_gradient

CUT = [name for name, family in FAMILIES.items() if family.position_wise_from]
TEXTS = ["the film was good", "bad service . too slow !", "it was not very good but the food was great", "terrible"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("first_position")
    return {family: load_model(str(save_tiny_family(root / family, family)), device="cpu")
            for family in FAMILIES}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_the_cut_gives_the_whole_model_scores_and_gradients(models, family):
    loaded = models[family]
    with loaded.lock:
        contexts = [attribution_context(AnalysisRequest(t, model="tiny"), loaded) for t in TEXTS]
        assert len({c.n_tokens for c in contexts}) >= 3  # padded: other positions hold padding
        whole, whole_gradient, _, _ = scores_and_gradient(loaded, contexts, cut=False)
        cut, cut_gradient, active, _ = scores_and_gradient(loaded, contexts, cut=True)
    assert active == (family in CUT)
    np.testing.assert_allclose(cut.numpy(), whole.numpy(), rtol=1e-5, atol=1e-6)
    largest = float(whole_gradient.abs().max())
    assert largest > 0
    np.testing.assert_allclose(cut_gradient.numpy(), whole_gradient.numpy(), rtol=1e-4, atol=1e-5 * largest)


def test_within_the_cut_the_last_layer_has_one_position_and_after_it_all(models):
    loaded = models["bert"]
    model = loaded.model
    ids = torch.tensor([[2, 5, 6, 7, 3]])
    mask = torch.ones_like(ids)
    with loaded.lock:
        target = attribution_context(AnalysisRequest(TEXTS[0], model="tiny"), loaded).target
        with torch.no_grad(), first_position_only(loaded, target):
            inside = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        with pytest.raises(RuntimeError), first_position_only(loaded, target):
            raise RuntimeError("a failed pass")
        with torch.no_grad():
            after = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert inside.shape[1] == 1
    assert after.shape[1] == ids.shape[1]
    torch.testing.assert_close(inside[:, 0], after[:, 0], rtol=1e-5, atol=1e-6)


def test_no_cut_for_targets_that_read_other_positions(tiny_models):
    masked = tiny_models["masked_lm"]
    with masked.lock:
        target = attribution_context(AnalysisRequest("the film was [MASK] .", model="tiny"), masked).target
    assert last_layer_cut(masked, target) is None
    assert last_layer_cut(tiny_models["classification"], None) is None
