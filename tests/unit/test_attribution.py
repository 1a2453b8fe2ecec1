from __future__ import annotations

import numpy as np
import pytest
import torch

from explain import AnalysisRequest, TargetSpec, analyze
from explain.methods.quadrature import integrated_gradients, internal_batch_size
from explain.targets import model_position_ids, resolve_target

TEXT = "The film was good but too long ."


def completeness_gap(result) -> float:
    a = result.attribution
    return abs(float(a.scores.sum()) - (a.score_input - a.score_baseline))


@pytest.mark.parametrize(
    "head,target",
    [
        ("classification", TargetSpec("class", label="positive")),
        ("masked_lm", TargetSpec("masked_token", label="good")),
        ("encoder", TargetSpec("zero_shot", label="positive")),
        ("encoder", TargetSpec("similarity", reference="the food was bad")),
    ],
)
@pytest.mark.parametrize("baseline", ["pad", "mask", "zero"])
def test_completeness_within_reported_delta(tiny_models, head, target, baseline):
    text = TEXT.replace("good", "[MASK]") if head == "masked_lm" else TEXT
    result = analyze(AnalysisRequest(text, target=target, baseline=baseline), tiny_models[head])
    a = result.attribution
    assert completeness_gap(result) == pytest.approx(abs(a.delta), abs=1e-5)
    assert abs(a.delta) < 1e-3 * max(1.0, abs(a.score_input - a.score_baseline)) + 1e-4
    special = result.tokens.special
    np.testing.assert_allclose(a.scores[special], 0.0, atol=1e-7)


def reference_riemann(loaded, text, label_index, steps=400):
    """Independent IG: midpoint Riemann sum of gradients on the word embeddings, written from scratch."""
    tok = loaded.tokenizer
    enc = tok(text, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    special = torch.tensor(tok.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)).bool()
    embed = loaded.model.bert.embeddings.word_embeddings
    x = embed.weight[ids[0]].detach()
    base_ids = torch.where(special, ids[0], torch.full_like(ids[0], tok.pad_token_id))
    b = embed.weight[base_ids].detach()
    # All midpoints in one batch: each row's probability depends on its own row only, so the gradient of their
    # sum holds each point's gradient (one pass instead of `steps`).
    alphas = ((torch.arange(steps, dtype=x.dtype) + 0.5) / steps).view(-1, 1, 1)
    points = (b + alphas * (x - b)).requires_grad_(True)
    logits = loaded.model(inputs_embeds=points, attention_mask=mask.expand(steps, -1)).logits
    probs = torch.softmax(logits, -1)[:, label_index]
    (grads,) = torch.autograd.grad(probs.sum(), points)
    return ((x - b) * grads.sum(0) / steps).sum(-1).numpy()


def test_agrees_with_independent_riemann_sum(tiny_models):
    loaded = tiny_models["classification"]
    result = analyze(AnalysisRequest(TEXT, target=TargetSpec("class", label="positive"), n_steps=50), loaded)
    expected = reference_riemann(loaded, TEXT, 2)
    got = result.attribution.scores
    assert np.corrcoef(got, expected)[0, 1] >= 0.99
    np.testing.assert_allclose(got, expected, atol=5e-3 * np.abs(expected).max() + 1e-6)


def test_word_scores_are_sums_of_token_scores(tiny_models):
    result = analyze(AnalysisRequest("Loving the slowly served food!", n_steps=10), tiny_models["encoder"])
    w = result.words
    assert w.words == ["Loving", "the", "slowly", "served", "food", "!"]
    for i, (start, end) in enumerate(w.spans):
        assert "Loving the slowly served food!"[start:end] == w.words[i]
        members = result.attribution.scores[w.token_word == i]
        assert len(members) >= 1
        assert result.word_scores[i] == pytest.approx(members.sum(), abs=1e-6)


def test_internal_batch_size_shrinks_with_length():
    assert internal_batch_size(32, 50, 384) == 50
    assert internal_batch_size(128, 50, 768) == 10
    assert internal_batch_size(512, 50, 768) == 2
    assert internal_batch_size(5000, 50, 768) == 1


def test_progress_reports_and_can_cancel(tiny_models):
    seen = []
    analyze(AnalysisRequest(TEXT, n_steps=20), tiny_models["encoder"], progress=lambda s, f: seen.append((s, f)))
    fractions = [f for s, f in seen if s == "attribution"]
    assert fractions and fractions[-1] == 1.0 and fractions == sorted(fractions)
    assert seen[-1] == ("done", 1.0)

    class Stop(Exception):
        pass

    def cancel(stage, fraction):
        if stage == "attribution":
            raise Stop

    with pytest.raises(Stop):
        analyze(AnalysisRequest(TEXT, n_steps=20), tiny_models["encoder"], progress=cancel)
    # the model lock was released: a later call works
    assert analyze(AnalysisRequest(TEXT, n_steps=4), tiny_models["encoder"]).attribution.n_steps == 4


def test_masked_token_scores_match_the_full_model_output(tiny_models):
    """The IG function projects only the [MASK] position onto the vocabulary; it must equal the model's own
    logits at that position, and the prediction shown must be the score IG starts from."""
    from explain.targets import resolve_target

    loaded = tiny_models["masked_lm"]
    assert loaded.masked_lm_head is loaded.model.cls
    enc = loaded.tokenizer("the film was [MASK] but too long .", return_tensors="pt")
    target = resolve_target(loaded, TargetSpec("masked_token", label="good"), enc["input_ids"])
    embeds = loaded.word_embeddings(enc["input_ids"])
    noisy = torch.cat([embeds, embeds + 0.3 * torch.randn_like(embeds)])  # an input and an off-path point
    mask = enc["attention_mask"].expand(2, -1)
    with torch.no_grad():
        fast = target.forward_embeddings(noisy, mask)
        full = torch.softmax(loaded.model(inputs_embeds=noisy, attention_mask=mask).logits[:, target.mask_position],
                             dim=-1)
    assert fast.shape == full.shape == (2, len(loaded.tokenizer))
    torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-6)
    result = analyze(AnalysisRequest("the film was [MASK] but too long .", target=TargetSpec("masked_token",
                                                                                              label="good"),
                                     n_steps=8), loaded)
    explained = result.prediction.scores[result.prediction.explained_index]
    assert result.attribution.score_input == pytest.approx(float(explained), abs=1e-5)


FAMILY_CASES = [
    ("classification", TargetSpec("class", label="positive"), "the film was good {pad} but too long ."),
    ("masked_lm", TargetSpec("masked_token"), "the film was {mask} {pad} but too long ."),
    ("encoder", TargetSpec("zero_shot", label="positive"), "the film was good {pad} but too long ."),
]
TYPED = {"bert": {"pad": "[PAD]", "mask": "[MASK]"}, "roberta": {"pad": "<pad>", "mask": "<mask>"}}


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("head,target,template", FAMILY_CASES)
@pytest.mark.parametrize("baseline", ["pad", "mask", "zero"])
def test_the_score_shown_is_the_score_explained(tiny_models, tiny_roberta, family, head, target, template, baseline):
    """Issue 9: on RoBERTa a pad token in the input gave the prediction and integrated gradients different
    position ids (P = 0.8187 shown, 0.8740 explained)."""
    loaded = (tiny_models if family == "bert" else tiny_roberta)[head]
    text = template.format(**TYPED[family])
    result = analyze(AnalysisRequest(text, target=target, baseline=baseline, n_steps=20), loaded)
    p, a = result.prediction, result.attribution
    assert a.score_input == pytest.approx(float(p.scores[p.explained_index]), abs=1e-5)
    assert completeness_gap(result) == pytest.approx(abs(a.delta), abs=1e-5)


def roberta_ids_with_pad(loaded, text="the film was good but too long ."):
    """Token ids with a <pad> id inside the text: what a typed <pad> used to become."""
    ids = loaded.tokenizer(text, return_tensors="pt")["input_ids"]
    pad = torch.tensor([[loaded.tokenizer.pad_token_id]])
    return torch.cat([ids[:, :4], pad, ids[:, 4:]], dim=1)


def test_position_ids_follow_the_models_own_rule(tiny_models, tiny_roberta):
    from transformers.models.roberta.modeling_roberta import RobertaEmbeddings

    loaded = tiny_roberta["classification"]
    ids = roberta_ids_with_pad(loaded)
    expected = RobertaEmbeddings.create_position_ids_from_input_ids(ids, loaded.config.pad_token_id)
    assert torch.equal(model_position_ids(loaded, ids), expected)
    assert model_position_ids(loaded, ids)[0, 4] == loaded.config.pad_token_id  # the pad keeps the padding position
    bert_ids = tiny_models["classification"].tokenizer("the film was good", return_tensors="pt")["input_ids"]
    assert torch.equal(model_position_ids(tiny_models["classification"], bert_ids), torch.arange(6).unsqueeze(0))


@pytest.mark.parametrize("baseline", ["pad", "mask", "zero"])
def test_ids_with_a_pad_explain_the_models_own_function(tiny_roberta, baseline):
    """integrated_gradients on ids holding a pad explains what the model computes from those ids."""
    loaded = tiny_roberta["classification"]
    ids = roberta_ids_with_pad(loaded)
    mask = torch.ones_like(ids)
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[0, 0] = special[0, -1] = True
    target = resolve_target(loaded, TargetSpec("class", label="positive"), ids)
    with torch.no_grad():
        shown = float(torch.softmax(loaded.model(input_ids=ids, attention_mask=mask).logits, -1)[0, target.index])
    sequential = target.forward_embeddings(loaded.word_embeddings(ids), mask)[0, target.index]
    assert abs(float(sequential) - shown) > 1e-3  # without explicit positions it is another function
    a = integrated_gradients(target, ids, mask, special, n_steps=20, baseline=baseline)
    assert a.score_input == pytest.approx(shown, abs=1e-6)
    assert float(a.scores.sum()) == pytest.approx(a.score_input - a.score_baseline + a.delta, abs=1e-6)


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("baseline", ["pad", "zero"])
def test_masked_token_baseline_keeps_the_mask(tiny_models, tiny_roberta, family, baseline):
    """The [MASK] is kept in the baseline like [CLS] and [SEP]: it gets exactly 0 and completeness holds."""
    loaded = (tiny_models if family == "bert" else tiny_roberta)["masked_lm"]
    text = "the film was {mask} but too long .".format(**TYPED[family])
    result = analyze(AnalysisRequest(text, target=TargetSpec("masked_token"), baseline=baseline, n_steps=30), loaded)
    a = result.attribution
    tok = loaded.tokenizer
    at_mask = np.array(tok.convert_tokens_to_ids(result.tokens.tokens)) == tok.mask_token_id
    assert at_mask.sum() == 1
    assert a.scores[at_mask][0] == 0.0
    assert completeness_gap(result) == pytest.approx(abs(a.delta), abs=1e-6)
    assert abs(a.delta) < 1e-3 * max(1.0, abs(a.score_input - a.score_baseline)) + 1e-4
    words = result.words
    mask_word = int(result.words.token_word[at_mask][0])
    assert words.words[mask_word] in TYPED[family]["mask"] and result.word_scores[mask_word] == 0.0
