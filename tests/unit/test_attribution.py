from __future__ import annotations

import numpy as np
import pytest
import torch

from explain import AnalysisRequest, TargetSpec, analyze
from explain.attribution import internal_batch_size

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
    total = torch.zeros_like(x)
    for k in range(steps):
        alpha = (k + 0.5) / steps
        point = (b + alpha * (x - b)).unsqueeze(0).requires_grad_(True)
        logits = loaded.model(inputs_embeds=point, attention_mask=mask).logits
        prob = torch.softmax(logits, -1)[0, label_index]
        (grad,) = torch.autograd.grad(prob, point)
        total += grad[0]
    return ((x - b) * total / steps).sum(-1).numpy()


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
