"""GlobEnc (Modarressi et al. 2022, N_ENC) against an independent computation from the tiny BERT's own weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain.errors import InputError
from explain.methods import get_method
from explain.methods.decomposition import alti_contributions, globenc_contributions
from explain.records import TargetSpec
from testkit.contexts import build_context

TEXT = "the film was good but too long ."


def reference_globenc_layers(context) -> np.ndarray:
    """Per-layer GlobEnc matrices [layers, tokens, tokens] written from the paper on a plain BERT, in float64.

    The layer inputs and attention come from transformers' own forward; the rest, both layer norms' real inputs
    included (the second through the feed-forward block), is recomputed here from the weights, token by token.
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
        norm1, norm2 = block.attention.output.LayerNorm, block.output.LayerNorm
        gamma1, beta1 = norm1.weight.detach().double(), norm1.bias.detach().double()
        gamma2, beta2 = norm2.weight.detach().double(), norm2.bias.detach().double()
        w_1, b_1 = block.intermediate.dense.weight.detach().double(), block.intermediate.dense.bias.detach().double()
        w_2, b_2 = block.output.dense.weight.detach().double(), block.output.dense.bias.detach().double()
        size = w_v.shape[0] // heads
        parts = torch.zeros(n, n, x.shape[1], dtype=torch.float64)
        for h in range(heads):
            cols = slice(h * size, (h + 1) * size)
            for i in range(n):
                for j in range(n):
                    parts[i, j] += attention[h, i, j] * (w_o[:, cols] @ (w_v[cols] @ x[j] + b_v[cols]))
        for i in range(n):
            parts[i, i] += x[i]
        # The real layer: attention block, first norm, feed-forward with its residual, second norm.
        z = parts.sum(1) + b_o
        y = torch.nn.functional.layer_norm(z, (z.shape[-1],), gamma1, beta1, norm1.eps)
        u = y + torch.nn.functional.gelu(y @ w_1.T + b_1) @ w_2.T + b_2
        layer_output = torch.nn.functional.layer_norm(u, (u.shape[-1],), gamma2, beta2, norm2.eps)
        np.testing.assert_allclose(layer_output.numpy(), out.hidden_states[index + 1][0].double().numpy(), atol=1e-5)
        sigma1 = torch.sqrt(((z - z.mean(-1, keepdim=True)) ** 2).mean(-1) + norm1.eps)
        sigma2 = torch.sqrt(((u - u.mean(-1, keepdim=True)) ** 2).mean(-1) + norm2.eps)
        c = torch.zeros(n, n, dtype=torch.float64)
        for i in range(n):
            for j in range(n):
                first = gamma1 * (parts[i, j] - parts[i, j].mean()) / sigma1[i]
                second = gamma2 * (first - first.mean()) / sigma2[i]
                c[i, j] = float(torch.sqrt((second ** 2).sum()))
            c[i] /= c[i].sum()
        matrices.append(c.numpy())
    return np.stack(matrices)


@pytest.fixture(scope="module")
def normed(tiny_dirs):
    """A private copy of the tiny BERT whose layer norms have uneven gamma and nonzero beta (the initial ones are
    1 and 0, with which the second norm would only scale each row and vanish in the row normalisation)."""
    from explain.models import load_model

    loaded = load_model(tiny_dirs["classification"], device="cpu")
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for module in loaded.model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=generator))
                module.bias.copy_(0.1 * torch.randn(module.bias.shape, generator=generator))
    return loaded


@pytest.fixture(scope="module")
def context(normed):
    return build_context(normed, TEXT, TargetSpec("class", label="positive"))


def test_the_tiny_bert_uses_the_gelu_the_reference_writes(context):
    assert context.target.loaded.config.hidden_act == "gelu"


def test_per_layer_matrices_and_token_scores_match_an_independent_computation(context):
    expected = reference_globenc_layers(context)
    got = globenc_contributions(context)
    assert got.shape == expected.shape == (2, context.n_tokens, context.n_tokens)
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    rolled = expected[1] @ expected[0]
    scores = np.where(context.special[0].numpy(), 0.0, rolled[0])
    result = get_method("globenc").attribute(context)
    np.testing.assert_allclose(result.scores, scores, atol=1e-5, rtol=0)
    assert not result.signed


def test_rows_are_distributions_and_differ_from_altis(context):
    matrices = globenc_contributions(context)
    assert (matrices >= 0).all()
    np.testing.assert_allclose(matrices.sum(-1), 1.0, atol=1e-12)
    assert (matrices.max(-1) < 1).all()
    assert not np.allclose(matrices, alti_contributions(context), atol=1e-3)


def test_the_token_scores_are_the_same_for_every_label(normed):
    loaded = normed
    scores = [get_method("globenc").attribute(build_context(loaded, TEXT, TargetSpec("class", label=label))).scores
              for label in ("negative", "positive")]
    np.testing.assert_array_equal(scores[0], scores[1])


@pytest.mark.parametrize("family", ["deberta", "mpnet"])
def test_a_family_without_plain_attention_is_refused_in_one_sentence(tmp_path, family):
    from explain.models import load_model
    from testkit.families import save_tiny_family

    loaded = load_model(str(save_tiny_family(tmp_path / family, family)), device="cpu")
    refused = build_context(loaded, TEXT, TargetSpec("class", label="positive"))
    with pytest.raises(InputError, match=r"^GlobEnc needs plain dot-product attention [^.]* do not have\.$"):
        get_method("globenc").attribute(refused)


@pytest.mark.parametrize("family", ["albert", "distilbert"])
def test_every_layer_of_a_shared_or_renamed_family_gets_its_own_matrix(tmp_path, family):
    """ALBERT runs one module for both layers: its hooks, the second layer norm's included, fire once per layer."""
    from explain.models import load_model
    from testkit.families import save_tiny_family

    loaded = load_model(str(save_tiny_family(tmp_path / family, family)), device="cpu")
    matrices = globenc_contributions(build_context(loaded, TEXT, TargetSpec("class", label="positive")))
    assert matrices.shape[0] == 2
    assert not np.allclose(matrices[0], matrices[1])
    np.testing.assert_allclose(matrices.sum(-1), 1.0, atol=1e-12)
