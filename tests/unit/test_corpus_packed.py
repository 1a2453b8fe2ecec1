"""Layers run on real tokens only (explain.corpus.packed): the scores and their gradients at the inputs of padded
texts of mixed lengths equal the padded pass's, with and without the last layer's first-position cut, on tiny random
models of every family; the packing really happens where the family lists its position-wise module, never
elsewhere, and is gone afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain import load_model
from explain.corpus.packed import packed_layers, real_tokens_only
from explain.families import FAMILIES
from explain.pipeline import attribution_context
from explain.records import AnalysisRequest
from testkit.families import save_tiny_family
from tests.unit.padded_pass import scores_and_gradient

PACKED = [name for name, family in FAMILIES.items() if family.position_wise_from]
TEXTS = ["the film was good", "bad service . too slow !", "it was not very good but the food was great", "terrible",
         "good"]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    return {family: load_model(str(save_tiny_family(root / family, family)), device="cpu")
            for family in FAMILIES}


@pytest.mark.parametrize("cut", [False, True])
@pytest.mark.parametrize("family", list(FAMILIES))
def test_packed_layers_give_the_padded_scores_and_gradients(models, family, cut):
    loaded = models[family]
    with loaded.lock:
        contexts = [attribution_context(AnalysisRequest(t, model="tiny"), loaded) for t in TEXTS]
        lengths = [c.n_tokens for c in contexts]
        assert len(set(lengths)) >= 4 and max(lengths) >= 2 * min(lengths)  # much padding, in several rows
        whole, whole_gradient, _, _ = scores_and_gradient(loaded, contexts, packed=False, cut=cut)
        packed, packed_gradient, _, active = scores_and_gradient(loaded, contexts, packed=True, cut=cut)
    assert active == (family in PACKED)
    np.testing.assert_allclose(packed.numpy(), whole.numpy(), rtol=1e-5, atol=1e-6)
    largest = float(whole_gradient.abs().max())
    assert largest > 0
    np.testing.assert_allclose(packed_gradient.numpy(), whole_gradient.numpy(), rtol=1e-4, atol=1e-5 * largest)


def test_within_the_position_wise_parts_see_real_tokens_only_and_after_it_all(models):
    loaded = models["bert"]
    found = packed_layers(loaded)
    assert found is not None
    seen: list[tuple[int, ...]] = []
    handles = [module.register_forward_hook(lambda m, args, out: seen.append(tuple(args[0].shape)))
               for _, module in found]
    ids = torch.tensor([[2, 5, 6, 7, 3], [2, 5, 3, 0, 0]])
    mask = (ids != 0).long()
    try:
        with loaded.lock, torch.no_grad():
            with real_tokens_only(loaded):
                inside = loaded.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            with pytest.raises(RuntimeError), real_tokens_only(loaded):
                raise RuntimeError("a failed pass")
            n_inside = len(seen)
            after = loaded.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
    finally:
        for handle in handles:
            handle.remove()
    hidden = inside.shape[-1]
    assert seen[:n_inside] == [(1, 8, hidden)] * (len(found) - 1) + [(2, 5, hidden)]
    assert seen[n_inside:] == [(2, 5, hidden)] * len(found)
    real = mask.bool()
    torch.testing.assert_close(inside[real], after[real], rtol=1e-5, atol=1e-6)


def test_no_packing_where_the_family_lists_no_position_wise_module(models):
    assert [name for name in FAMILIES if packed_layers(models[name]) is not None] == PACKED
