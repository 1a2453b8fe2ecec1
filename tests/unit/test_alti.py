"""ALTI (Ferrando et al. 2022) against an independent computation from the tiny BERT's own weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain.errors import InputError
from explain.methods import get_method
from explain.methods.decomposition import alti_contributions
from explain.records import TargetSpec
from testkit.contexts import build_context

TEXT = "the film was good but too long ."


def reference_alti_layers(context) -> np.ndarray:
    """Per-layer ALTI matrices [layers, tokens, tokens] written from the paper on a plain BERT, in float64.

    The layer inputs and attention come from transformers' own forward; everything else is recomputed here
    from the weights, the layer norm's real output included, token by token and head by head.
    """
    bert = context.target.loaded.model.bert
    with torch.no_grad():
        out = bert(input_ids=context.input_ids, attention_mask=context.attention_mask,
                   token_type_ids=context.token_type_ids, output_hidden_states=True, output_attentions=True)
    n = context.n_tokens
    matrices = []
    for index, block in enumerate(bert.encoder.layer):
        x = out.hidden_states[index][0].double()
        attention = out.attentions[index][0].double()
        heads = attention.shape[0]
        w_v = block.attention.self.value.weight.detach().double()
        b_v = block.attention.self.value.bias.detach().double()
        w_o = block.attention.output.dense.weight.detach().double()
        b_o = block.attention.output.dense.bias.detach().double()
        norm = block.attention.output.LayerNorm
        gamma, beta = norm.weight.detach().double(), norm.bias.detach().double()
        size = w_v.shape[0] // heads
        parts = torch.zeros(n, n, x.shape[1], dtype=torch.float64)
        for h in range(heads):
            cols = slice(h * size, (h + 1) * size)
            for i in range(n):
                for j in range(n):
                    parts[i, j] += attention[h, i, j] * (w_o[:, cols] @ (w_v[cols] @ x[j] + b_v[cols]))
        for i in range(n):
            parts[i, i] += x[i]
        # The real pre-norm vector, biases included, and the layer norm's real output.
        z = parts.sum(1) + b_o  # the value bias is in the parts: each row of attention sums to 1
        y = torch.nn.functional.layer_norm(z, (z.shape[-1],), gamma, beta, norm.eps)
        sigma = torch.sqrt(((z - z.mean(-1, keepdim=True)) ** 2).mean(-1) + norm.eps)
        c = torch.zeros(n, n, dtype=torch.float64)
        for i in range(n):
            for j in range(n):
                part = gamma * (parts[i, j] - parts[i, j].mean()) / sigma[i]
                c[i, j] = max(0.0, float(y[i].abs().sum() - (y[i] - part).abs().sum()))
            c[i] /= c[i].sum()
        matrices.append(c.numpy())
        # The linearised parts and the biases' share add up to the real output: the split is complete.
        bias = b_o
        linear = gamma * (parts - parts.mean(-1, keepdim=True)) / sigma[:, None, None]
        np.testing.assert_allclose((linear.sum(1) + gamma * (bias - bias.mean()) / sigma[:, None] + beta).numpy(),
                                   y.numpy(), atol=1e-9)
    return np.stack(matrices)


@pytest.fixture(scope="module")
def context(tiny_models):
    return build_context(tiny_models["classification"], TEXT, TargetSpec("class", label="positive"))


def test_per_layer_matrices_and_token_scores_match_an_independent_computation(context):
    expected = reference_alti_layers(context)
    got = alti_contributions(context)
    assert got.shape == expected.shape == (2, context.n_tokens, context.n_tokens)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    rolled = expected[1] @ expected[0]
    scores = np.where(context.special[0].numpy(), 0.0, rolled[0])
    result = get_method("alti").attribute(context)
    np.testing.assert_allclose(result.scores, scores, atol=1e-5, rtol=0)
    assert not result.signed


def test_rows_are_distributions(context):
    matrices = alti_contributions(context)
    assert (matrices >= 0).all()
    np.testing.assert_allclose(matrices.sum(-1), 1.0, atol=1e-12)
    assert (matrices.max(-1) < 1).all()  # every token takes something from another token


def test_the_token_scores_are_the_same_for_every_label(tiny_models):
    loaded = tiny_models["classification"]
    scores = [get_method("alti").attribute(build_context(loaded, TEXT, TargetSpec("class", label=label))).scores
              for label in ("negative", "positive")]
    np.testing.assert_array_equal(scores[0], scores[1])


def test_the_masked_token_target_reads_the_mask_row(tiny_models):
    loaded = tiny_models["masked_lm"]
    masked = build_context(loaded, "the film was [MASK] but too long .", TargetSpec("masked_token", label="good"))
    matrices = alti_contributions(masked)
    row = (matrices[1] @ matrices[0])[masked.target.mask_position]
    np.testing.assert_allclose(get_method("alti").attribute(masked).scores,
                               np.where(masked.special[0].numpy(), 0.0, row), atol=1e-6)


@pytest.mark.parametrize("family", ["deberta", "mpnet"])
def test_a_family_without_plain_attention_is_refused_in_one_sentence(tmp_path, family):
    from explain.models import load_model
    from testkit.families import save_tiny_family

    loaded = load_model(str(save_tiny_family(tmp_path / family, family)), device="cpu")
    refused = build_context(loaded, TEXT, TargetSpec("class", label="positive"))
    with pytest.raises(InputError, match=r"^ALTI needs plain dot-product attention [^.]* do not have\.$"):
        get_method("alti").attribute(refused)


@pytest.mark.parametrize("family", ["albert", "distilbert"])
def test_every_layer_of_a_shared_or_renamed_family_gets_its_own_matrix(tmp_path, family):
    """ALBERT runs one module for both layers: its hooks fire once per layer, in order."""
    from explain.models import load_model
    from testkit.families import save_tiny_family

    loaded = load_model(str(save_tiny_family(tmp_path / family, family)), device="cpu")
    matrices = alti_contributions(build_context(loaded, TEXT, TargetSpec("class", label="positive")))
    assert matrices.shape[0] == 2
    assert not np.allclose(matrices[0], matrices[1])
    np.testing.assert_allclose(matrices.sum(-1), 1.0, atol=1e-12)
