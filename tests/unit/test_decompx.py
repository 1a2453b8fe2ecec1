"""DecompX (Modarressi et al. 2023): exact completeness on every family and target kind, the sum of the parts
after every layer, a known answer computed by hand, and an independent implementation on the tiny BERT."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explain.errors import InputError
from explain.families import FAMILIES, family_of
from explain.methods import get_method
from explain.methods.decompx import (
    decompx_blocks,
    decompx_layer_norms,
    decompx_shares,
    feed_forward_step,
    propagate,
    real_pass,
)
from explain.models import load_model
from explain.pipeline import attribution_context
from explain.records import AnalysisRequest, TargetSpec
from explain.targets import TARGETS
from testkit.contexts import build_context
from testkit.families import HEADS, save_tiny_family

TEXT = "the film was good but too long ."
MASKED = "the film was {mask} but too long ."
PAIR = "it was a bad movie ."
QUESTION = "what was the film ?"
DECOMPOSED = tuple(name for name, family in FAMILIES.items() if family.plain_dot_product and family.value)
REFUSED = tuple(name for name in FAMILIES if name not in DECOMPOSED)


def explained_logit(context) -> float:
    """The logit (or cosine) the target explains, from a plain transformers forward of the token ids."""
    target = context.target
    loaded = target.loaded
    extra = {} if context.token_type_ids is None else {"token_type_ids": context.token_type_ids}
    kind = target.spec.kind
    with torch.no_grad():
        if kind in ("zero_shot", "similarity"):
            hidden = loaded.encoder(input_ids=context.input_ids, attention_mask=context.attention_mask,
                                    **extra).last_hidden_state[0].double()
            pooled = F.normalize(hidden.mean(0), dim=-1)
            return float(pooled @ target.label_embeddings[target.index].double())
        out = loaded.model(input_ids=context.input_ids, attention_mask=context.attention_mask, **extra)
    if kind == "answer":
        if target.part == "span":
            return float(out.start_logits[0, target.answer.first_token] + out.end_logits[0, target.answer.last_token])
        return float((out.start_logits if target.part == "start" else out.end_logits)[0, target.index])
    if kind == "next_sentence":
        logits = getattr(out, "seq_relationship_logits", None)
        return float((out.logits if logits is None else logits)[0, target.index])
    logits = out.logits if getattr(out, "logits", None) is not None else out.prediction_logits
    if kind == "masked_token":
        return float(logits[0, target.mask_position, target.index])
    if kind == "token_class":
        return float(logits[0, target.token, target.index])
    return float(logits[0, target.index])


def assert_complete(context) -> None:
    shares, value = decompx_shares(context)
    expected = explained_logit(context)
    assert value == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert float(shares.sum()) == pytest.approx(expected, rel=1e-5, abs=1e-7)
    result = get_method("decompx").attribute(context)
    assert result.score_input == pytest.approx(expected, rel=1e-5, abs=1e-7) and result.score_baseline == 0.0
    assert abs(result.delta) <= 1e-5 * abs(expected) + 1e-7
    np.testing.assert_allclose(result.scores, shares, rtol=1e-6, atol=1e-7)  # special tokens keep their shares
    assert np.abs(result.scores[context.special[0].numpy()]).sum() > 0


class TinyFamilies(dict):
    """Tiny models by (family, head), each saved and loaded the first time a test asks for it."""

    def __init__(self, root) -> None:
        super().__init__()
        self.root = root

    def __missing__(self, key: tuple[str, str]):
        name, head = key
        loaded = self[key] = load_model(str(save_tiny_family(self.root / f"{name}-{head}", name, head)),
                                        device="cpu")
        return loaded


@pytest.fixture(scope="module")
def family_models(tmp_path_factory) -> TinyFamilies:
    return TinyFamilies(tmp_path_factory.mktemp("decompx_families"))


SPECS = {
    "class": TargetSpec("class", label="positive"),
    "masked_token": TargetSpec("masked_token"),
    "token_class": TargetSpec("token_class", label="B-PER"),
    "answer": TargetSpec("answer", part="span"),
    "zero_shot": TargetSpec("zero_shot", labels=("good", "bad")),
    "similarity": TargetSpec("similarity", reference="a fine film ."),
}
# Every kind on the head it is meant for; the pooled kinds also on a model with a head (they read its encoder).
CASES = [("class", "classification"), ("masked_token", "masked_lm"), ("token_class", "token_classification"),
         ("answer", "question_answering"), ("zero_shot", "encoder"), ("similarity", "encoder"),
         ("similarity", "classification"), ("zero_shot", "masked_lm")]
assert {kind for kind, _ in CASES} == set(SPECS) and {head for _, head in CASES} == set(HEADS)


def request_for(loaded, kind: str, spec: TargetSpec) -> AnalysisRequest:
    needs = TARGETS[kind].needs
    text = MASKED.format(mask=loaded.tokenizer.mask_token) if kind == "masked_token" else TEXT
    return AnalysisRequest(text, model=loaded.spec, target=spec, pair=PAIR if needs == "pair" else "",
                           question=QUESTION if needs == "question" else "")


@pytest.mark.parametrize("name", DECOMPOSED)
@pytest.mark.parametrize("kind,head", CASES, ids=[f"{k}-{h}" for k, h in CASES])
def test_the_parts_sum_to_the_explained_logit_on_every_family_and_kind(family_models, name, kind, head):
    loaded = family_models[name, head]
    assert_complete(attribution_context(request_for(loaded, kind, SPECS[kind]), loaded))


@pytest.mark.parametrize("part", ["start", "end"])
def test_answer_start_and_end_are_complete(family_models, part):
    loaded = family_models["bert", "question_answering"]
    assert_complete(attribution_context(request_for(loaded, "answer", TargetSpec("answer", part=part)), loaded))


TASKS = {
    "next_sentence": ("next_sentence", AnalysisRequest(TEXT, pair=PAIR, target=TargetSpec("next_sentence"))),
    "pretraining_next": ("pretraining", AnalysisRequest(TEXT, pair=PAIR, target=TargetSpec("next_sentence"))),
    "pretraining_masked": ("pretraining", AnalysisRequest("the film was [MASK] but too long .")),
    "multi_label": ("multi_label", AnalysisRequest(TEXT)),
    "probability": ("multi_label", AnalysisRequest(TEXT, target=TargetSpec("class", label="negative", logit=False))),
}


@pytest.mark.parametrize("task", list(TASKS))
def test_next_sentence_pretraining_and_multi_label_heads_are_complete(task_models, task):
    """A probability target (softmax or per-label sigmoid) is decomposed on its logit."""
    head, request = TASKS[task]
    assert_complete(attribution_context(request, task_models[head]))


@pytest.mark.parametrize("name", ["bert", "albert", "distilbert", "roberta"])
def test_the_parts_sum_to_the_real_hidden_state_after_every_layer(family_models, name):
    loaded = family_models[name, "classification"]
    context = build_context(loaded, TEXT, SPECS["class"])
    with torch.no_grad():
        out = loaded.encoder(input_ids=context.input_ids, attention_mask=context.attention_mask,
                             output_hidden_states=True, **context.model_inputs())
    blocks, order = decompx_blocks(loaded)
    real = real_pass(context, blocks, [], [])
    every = list(range(context.n_tokens))
    sums = [parts.sum(0).clone() for parts in propagate(real, blocks, order, every)]
    assert len(sums) == len(out.hidden_states) - 1 == 2
    for layer, total in enumerate(sums):
        expected = out.hidden_states[layer + 1][0].double()
        np.testing.assert_allclose(total.numpy(), expected.numpy(), atol=1e-5 * float(expected.abs().max()))


def test_the_layer_norms_have_one_row_per_token_and_input(family_models):
    context = build_context(family_models["bert", "classification"], TEXT, SPECS["class"])
    norms = decompx_layer_norms(context)
    assert norms.shape == (2, context.n_tokens, context.n_tokens)
    assert (norms >= 0).all() and np.isfinite(norms).all()


@pytest.mark.parametrize("name", REFUSED)
def test_a_family_without_plain_attention_is_refused_in_one_sentence(family_models, name):
    loaded = family_models[name, "classification"]
    assert get_method("decompx").refusal(loaded).startswith("DecompX needs plain dot-product attention")
    with pytest.raises(InputError, match=r"^DecompX needs plain dot-product attention [^.]* do not have\.$"):
        get_method("decompx").attribute(build_context(loaded, TEXT, SPECS["class"]))


def test_a_head_the_table_does_not_list_is_refused_in_one_sentence():
    with pytest.raises(InputError, match=r"^The next sentence head of RoBERTa models is not in the table"):
        family_of("roberta").head_modules("next_sentence")


# ---------------------------------------------------------------- a known answer, by hand


@pytest.fixture(scope="module")
def one_layer(tmp_path_factory):
    """A one-layer tiny BERT whose feed-forward block outputs 0 (zero weights and biases), whose layer norms are the
    identity affine map (gamma 1, beta 0: they still centre and scale), and whose only nonzero biases are the
    attention output's, the pooler's and the classifier's (random: the tiny models start with zero biases)."""
    from testkit.tiny_models import save_tiny_model

    loaded = load_model(str(save_tiny_model(tmp_path_factory.mktemp("one_layer") / "m", "classification",
                                            layers=1)), device="cpu")
    layer = loaded.model.bert.encoder.layer[0]
    with torch.no_grad():
        for module in (layer.intermediate.dense, layer.output.dense):
            module.weight.zero_()
            module.bias.zero_()
        for norm in (layer.attention.output.LayerNorm, layer.output.LayerNorm):
            norm.weight.fill_(1.0)
            norm.bias.zero_()
        layer.attention.self.value.bias.zero_()
        generator = torch.Generator().manual_seed(3)
        for module in (layer.attention.output.dense, loaded.model.bert.pooler.dense, loaded.model.classifier):
            module.bias.copy_(0.5 * torch.randn(module.bias.shape, generator=generator))
    return loaded


def test_a_one_layer_model_without_feed_forward_gives_the_hand_computed_parts(one_layer):
    context = build_context(one_layer, TEXT, TargetSpec("class", label="positive"))
    bert = one_layer.model.bert
    layer = bert.encoder.layer[0]
    eps = layer.attention.output.LayerNorm.eps
    with torch.no_grad():
        x = bert.embeddings(input_ids=context.input_ids, token_type_ids=context.token_type_ids)[0].double()
        attention = bert(input_ids=context.input_ids, attention_mask=context.attention_mask,
                         token_type_ids=context.token_type_ids, output_attentions=True).attentions[0][0].double()
    w_v = layer.attention.self.value.weight.detach().double()
    w_o = layer.attention.output.dense.weight.detach().double()
    b_o = layer.attention.output.dense.bias.detach().double()
    n, hidden = x.shape
    heads = attention.shape[0]
    size = hidden // heads
    # Attention and residual: part k of token i.
    c = torch.zeros(n, n, hidden, dtype=torch.float64)
    for k in range(n):
        for i in range(n):
            if i == k:
                c[k, i] += x[i]
            for h in range(heads):
                cols = slice(h * size, (h + 1) * size)
                c[k, i] += attention[h, i, k] * (w_o[:, cols] @ (w_v[cols] @ x[k]))
    # The output bias, spread over the parts by |b . c_k|.
    for i in range(n):
        weights = torch.tensor([abs(float(b_o @ c[k, i])) for k in range(n)], dtype=torch.float64)
        for k in range(n):
            c[k, i] += weights[k] / weights.sum() * b_o
    # The first layer norm (gamma 1, beta 0) at the real deviation; the feed-forward adds 0; the second norm.
    real = c.sum(0)
    sigma1 = torch.sqrt(real.var(-1, unbiased=False) + eps)
    u = torch.stack([torch.stack([(c[k, i] - c[k, i].mean()) / sigma1[i] for i in range(n)]) for k in range(n)])
    sigma2 = torch.sqrt(u.sum(0).var(-1, unbiased=False) + eps)
    y = torch.stack([(u[k, 0] - u[k, 0].mean()) / sigma2[0] for k in range(n)])  # the [CLS] row
    # Pooler (tanh(p) / p at the real p, its bias spread by |b . part|), then the classifier's row and bias.
    pooler, classifier = bert.pooler.dense, one_layer.model.classifier
    w_p, b_p = pooler.weight.detach().double(), pooler.bias.detach().double()
    p_parts = y @ w_p.T
    dots = (p_parts @ b_p).abs()
    p_parts = p_parts + (dots / dots.sum())[:, None] * b_p
    p = p_parts.sum(0)
    t_parts = p_parts * (torch.tanh(p) / p)
    index = context.target.index
    logit_parts = t_parts @ classifier.weight.detach().double()[index]
    bias = float(classifier.bias[index])
    logit_parts = logit_parts + logit_parts.abs() / logit_parts.abs().sum() * bias

    result = get_method("decompx").attribute(context)
    np.testing.assert_allclose(result.scores, logit_parts.numpy(), rtol=1e-5, atol=1e-6)
    assert float(logit_parts.sum()) == pytest.approx(explained_logit(context), rel=1e-5)


# ---------------------------------------------------------------- an independent implementation (tiny BERT)


def spread(parts: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """parts [inputs, tokens, width] plus each token's bias shared by |bias . part| (the paper's absdot)."""
    if not bias.any():
        return parts
    weights = (parts @ bias).abs()
    assert (weights.sum(0) > 0).all()
    return parts + (weights / weights.sum(0, keepdim=True))[..., None] * bias


def norm_parts(parts: torch.Tensor, norm, real: torch.Tensor) -> torch.Tensor:
    sigma = torch.sqrt(real.var(-1, unbiased=False) + norm.eps)
    gamma, beta = norm.weight.detach().double(), norm.bias.detach().double()
    return spread(gamma * (parts - parts.mean(-1, keepdim=True)) / sigma[:, None], beta)


def reference_decompx(context, settings=None) -> np.ndarray:
    """DecompX on a plain BertForSequenceClassification, written from the paper with whole [inputs, tokens, hidden]
    tensors: the layer inputs, attention and the real pre-activations are recomputed here from the weights."""
    model = context.target.loaded.model
    bert = model.bert
    with torch.no_grad():
        out = bert(input_ids=context.input_ids, attention_mask=context.attention_mask,
                   token_type_ids=context.token_type_ids, output_hidden_states=True, output_attentions=True)
    x = out.hidden_states[0][0].double()
    n = x.shape[0]
    parts = torch.zeros(n, n, x.shape[1], dtype=torch.float64)
    parts[torch.arange(n), torch.arange(n)] = x
    for index, layer in enumerate(bert.encoder.layer):
        attention = out.attentions[index][0].double()
        heads = attention.shape[0]
        value, dense = layer.attention.self.value, layer.attention.output.dense
        w_v, b_v = value.weight.detach().double(), value.bias.detach().double()
        w_o, b_o = dense.weight.detach().double(), dense.bias.detach().double()
        size = w_v.shape[0] // heads
        mixed = torch.zeros_like(parts)
        for h in range(heads):
            cols = slice(h * size, (h + 1) * size)
            mixed += torch.einsum("ij,kjd->kid", attention[h], parts @ w_v[cols].T) @ w_o[:, cols].T
        c = spread(parts + mixed, w_o @ b_v + b_o)
        u = norm_parts(c, layer.attention.output.LayerNorm, c.sum(0))
        w_1, b_1 = layer.intermediate.dense.weight.detach().double(), layer.intermediate.dense.bias.detach().double()
        w_2, b_2 = layer.output.dense.weight.detach().double(), layer.output.dense.bias.detach().double()
        z = spread(u @ w_1.T, b_1)
        real_z = z.sum(0)
        f = spread(z * (F.gelu(real_z) / real_z) @ w_2.T, b_2)
        parts = norm_parts(u + f, layer.output.LayerNorm, (u + f).sum(0))
        np.testing.assert_allclose(parts.sum(0).numpy(), out.hidden_states[index + 1][0].double().numpy(), atol=1e-5)
    pooler = bert.pooler.dense
    p = spread(parts[:, :1] @ pooler.weight.detach().double().T, pooler.bias.detach().double())
    real_p = p.sum(0)
    t = p * torch.tanh(real_p) / real_p
    index = context.target.index
    logit = t[:, 0] @ model.classifier.weight.detach().double()[index]
    bias = float(model.classifier.bias[index])
    return (logit + logit.abs() / logit.abs().sum() * bias).numpy()


@pytest.fixture(scope="module")
def biased(tiny_dirs):
    """A private copy of the tiny BERT with random biases and uneven layer norms (it starts with zero biases,
    gamma 1 and beta 0, which would leave the spreading of biases untested)."""
    loaded = load_model(tiny_dirs["classification"], device="cpu")
    randomise_biases(loaded.model)
    return loaded


def randomise_biases(model: torch.nn.Module) -> None:
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.copy_(0.5 + torch.rand(module.weight.shape, generator=generator))
            if isinstance(module, (torch.nn.LayerNorm, torch.nn.Linear)) and module.bias is not None:
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=generator))


def test_the_tiny_bert_decompx_matches_an_independent_implementation(biased):
    context = build_context(biased, TEXT, TargetSpec("class", label="positive"))
    expected = reference_decompx(context)
    got = get_method("decompx").attribute(context)
    np.testing.assert_allclose(got.scores, expected, rtol=1e-5, atol=1e-6 * np.abs(expected).max())
    assert got.signed and float(expected.sum()) == pytest.approx(explained_logit(context), rel=1e-5, abs=1e-7)


def test_the_shares_differ_between_labels(biased):
    loaded = biased
    scores = [get_method("decompx").attribute(build_context(loaded, TEXT, TargetSpec("class", label=label))).scores
              for label in ("negative", "positive")]
    assert not np.allclose(scores[0], scores[1])


@pytest.mark.parametrize("name", ["bert", "distilbert"])
def test_both_orders_of_the_feed_forward_products_agree(tmp_path, name):
    """Long texts go through each token's linearised feed-forward map; short ones through the intermediate."""
    loaded = load_model(str(save_tiny_family(tmp_path / name, name)), device="cpu")
    randomise_biases(loaded.model)
    context = build_context(loaded, TEXT, SPECS["class"])
    blocks, order = decompx_blocks(loaded)
    real = real_pass(context, blocks, [], [])
    every = list(range(context.n_tokens))
    parts = next(propagate(real, blocks, order, every)).clone()
    results = []
    for per_token in (False, True):
        copy = parts.clone()
        feed_forward_step(copy, blocks[order[1]], real.pre_activations[1], real.activations[1], per_token=per_token)
        results.append(copy)
    np.testing.assert_allclose(results[1].numpy(), results[0].numpy(), rtol=1e-9, atol=1e-12)
    assert not torch.equal(results[0], parts)


def test_the_declared_cost_grows_with_the_tokens_as_measured():
    """DecompX carries N parts of every token through every layer: about 1.4 forward passes per token (MiniLM, one
    core: 33 passes at 32 tokens, 179 at 128), not the one pass it first declared; ALTI and GlobEnc about
    1 + N / 20 (2.5 and 7.1 passes measured)."""
    from explain.methods import get_method
    from explain.methods.base import FORWARD_PASS

    assert get_method("decompx").cost(None, 128, 20) == pytest.approx(FORWARD_PASS * (1 + 1.4 * 128))
    for name in ("alti", "globenc"):
        assert get_method(name).cost(None, 128, 20) == pytest.approx(FORWARD_PASS * (1 + 128 / 20))
