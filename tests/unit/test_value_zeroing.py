"""Value Zeroing (Mohebbi et al. 2023) against an independent computation from the tiny BERT's own weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain.errors import InputError
from explain.methods import get_method
from explain.methods.value_zeroing import value_zeroing_contributions
from explain.records import TargetSpec
from testkit.contexts import build_context

TEXT = "the film was good but too long ."


def bert_layer(block, x: torch.Tensor, zeroed: int | None) -> torch.Tensor:
    """One BERT layer written out in float64 from its weights (no padding), token `zeroed`'s value set to 0."""
    def linear(module, v):
        return v @ module.weight.detach().double().T + module.bias.detach().double()

    def norm(module, v):
        return torch.nn.functional.layer_norm(v, (v.shape[-1],), module.weight.detach().double(),
                                              module.bias.detach().double(), module.eps)

    attention = block.attention.self
    heads = attention.num_attention_heads
    n, hidden = x.shape
    size = hidden // heads
    q = linear(attention.query, x).reshape(n, heads, size).transpose(0, 1)
    k = linear(attention.key, x).reshape(n, heads, size).transpose(0, 1)
    v = linear(attention.value, x)
    if zeroed is not None:
        v[zeroed] = 0.0
    v = v.reshape(n, heads, size).transpose(0, 1)
    weights = torch.softmax(q @ k.transpose(1, 2) / size**0.5, dim=-1)
    mixed = (weights @ v).transpose(0, 1).reshape(n, hidden)
    after_attention = norm(block.attention.output.LayerNorm, linear(block.attention.output.dense, mixed) + x)
    inner = torch.nn.functional.gelu(linear(block.intermediate.dense, after_attention))
    return norm(block.output.LayerNorm, linear(block.output.dense, inner) + after_attention)


def reference_value_zeroing_layers(context) -> np.ndarray:
    """Per-layer Value Zeroing matrices [layers, tokens, tokens] from the paper, token by token in float64."""
    bert = context.target.loaded.model.bert
    assert bool(context.attention_mask.all())
    with torch.no_grad():
        out = bert(input_ids=context.input_ids, attention_mask=context.attention_mask,
                   token_type_ids=context.token_type_ids, output_hidden_states=True)
        n = context.n_tokens
        matrices = []
        for index, block in enumerate(bert.encoder.layer):
            x = out.hidden_states[index][0].double()
            real = bert_layer(block, x, None)
            np.testing.assert_allclose(real.numpy(), out.hidden_states[index + 1][0].double().numpy(), atol=1e-4)
            c = np.zeros((n, n))
            for j in range(n):
                altered = bert_layer(block, x, j)
                for i in range(n):
                    c[i, j] = 1.0 - float(torch.dot(real[i], altered[i]) / (real[i].norm() * altered[i].norm()))
            matrices.append(c / c.sum(1, keepdims=True))
    return np.stack(matrices)


@pytest.fixture(scope="module")
def context(tiny_models):
    return build_context(tiny_models["classification"], TEXT, TargetSpec("class", label="positive"))


def test_per_layer_matrices_and_token_scores_match_an_independent_computation(context):
    expected = reference_value_zeroing_layers(context)
    got = value_zeroing_contributions(context)
    assert got.shape == expected.shape == (2, context.n_tokens, context.n_tokens)
    np.testing.assert_allclose(got, expected, atol=2e-4, rtol=0)
    rolled = expected[1] @ expected[0]
    scores = np.where(context.special[0].numpy(), 0.0, rolled[0])
    result = get_method("value_zeroing").attribute(context)
    np.testing.assert_allclose(result.scores, scores, atol=2e-4, rtol=0)
    assert not result.signed


def test_rows_are_distributions_with_the_own_token_measured(context):
    matrices = value_zeroing_contributions(context)
    assert (matrices >= 0).all()
    np.testing.assert_allclose(matrices.sum(-1), 1.0, atol=1e-12)
    assert (np.diagonal(matrices, axis1=1, axis2=2) > 0).all()  # the paper's convention: i == j is measured too
    assert (matrices.max(-1) < 1).all()


def test_the_token_scores_are_the_same_for_every_label(tiny_models):
    loaded = tiny_models["classification"]
    scores = [get_method("value_zeroing").attribute(build_context(loaded, TEXT, TargetSpec("class", label=label)))
              .scores for label in ("negative", "positive")]
    np.testing.assert_array_equal(scores[0], scores[1])


def test_the_declared_cost_is_about_one_forward_pass_per_token():
    method = get_method("value_zeroing")
    assert method.evaluations(None, 10, 8) == pytest.approx(0.5 * 11)
    assert method.evaluations(None, 100, 80) > 10 * method.evaluations(None, 10, 8) * 0.9


def test_small_chunks_give_the_same_matrices(context, monkeypatch):
    import explain.methods.value_zeroing as module

    whole = value_zeroing_contributions(context)
    monkeypatch.setattr(module, "VARIANT_ELEMENTS", 1)  # one variant per batched call
    np.testing.assert_allclose(value_zeroing_contributions(context), whole, atol=1e-6, rtol=0)


@pytest.mark.parametrize("family", ["deberta", "mpnet"])
def test_a_family_without_plain_attention_is_refused_in_one_sentence(tmp_path, family):
    from explain.models import load_model
    from testkit.families import save_tiny_family

    loaded = load_model(str(save_tiny_family(tmp_path / family, family)), device="cpu")
    method = get_method("value_zeroing")
    assert method.refusal(loaded).startswith("Value Zeroing needs plain dot-product attention")
    refused = build_context(loaded, TEXT, TargetSpec("class", label="positive"))
    with pytest.raises(InputError, match=r"^Value Zeroing needs plain dot-product attention [^.]* do not have\.$"):
        method.attribute(refused)


@pytest.mark.parametrize("family", ["albert", "distilbert", "roberta"])
def test_every_layer_of_a_shared_or_renamed_family_gets_its_own_matrix(tmp_path, family):
    """ALBERT runs one module for both layers: each call is rerun with its own input."""
    from explain.models import load_model
    from testkit.families import save_tiny_family

    loaded = load_model(str(save_tiny_family(tmp_path / family, family)), device="cpu")
    matrices = value_zeroing_contributions(build_context(loaded, TEXT, TargetSpec("class", label="positive")))
    assert matrices.shape[0] == 2
    assert not np.allclose(matrices[0], matrices[1])
    np.testing.assert_allclose(matrices.sum(-1), 1.0, atol=1e-12)
