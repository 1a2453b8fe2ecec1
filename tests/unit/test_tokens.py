"""The model sees the text the user typed: control tokens as text, the tokenizer's own truncation."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explain import Analysis, AnalysisRequest, TargetSpec, analyze
from explain.inputs import tokenize
from explain.tokenization import EXACT_COUNT_CHARS, encode_truncated

FRAGMENTS = ["good", "film", "was", "hello", " ", "  ", "\n", "\t", "\u200b", ".", "!", "é", "e\u0301", "😀", "ab",
             "ﬁ", "\u3000", "<", ">", "[", "]"]
CONTROL = {
    "bert": ["[CLS]", "[SEP]", "[PAD]", "[UNK]"],
    "roberta": ["<s>", "</s>", "<pad>", "<unk>"],
}
MASK = {"bert": "[MASK]", "roberta": "<mask>"}
HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=["bert", "roberta"])
def family(request, tiny_models, tiny_roberta):
    """(name, loaded classification model) for each tokenizer family."""
    models = tiny_models if request.param == "bert" else tiny_roberta
    return request.param, models["classification"]


def own_truncation(tok, text: str, max_tokens: int, split: bool = True) -> dict:
    return tok(text, truncation=True, max_length=max_tokens, split_special_tokens=split,
               return_offsets_mapping=True, return_special_tokens_mask=True)


def full_length(tok, text: str, split: bool = True) -> int:
    return len(tok(text, split_special_tokens=split)["input_ids"])


def texts(extra: list[str]):
    return st.lists(st.sampled_from(FRAGMENTS + extra), min_size=1, max_size=40).map("".join)


@pytest.mark.parametrize("name", ["bert", "roberta"])
def test_typed_control_tokens_are_plain_text(name, tiny_models, tiny_roberta):
    loaded = (tiny_models if name == "bert" else tiny_roberta)["classification"]
    tok = loaded.tokenizer
    # [UNK] may still come from characters outside the tiny vocabulary ("["), so it is checked by its span
    control_ids = {tok.convert_tokens_to_ids(t) for t in CONTROL[name] + [MASK[name]]} - {tok.unk_token_id}
    text = "good " + " film ".join(CONTROL[name] + [MASK[name]]) + " ."
    result = analyze(AnalysisRequest(text, n_steps=4), loaded)
    inner_ids = tok.convert_tokens_to_ids(result.tokens.tokens[1:-1])
    assert not control_ids & set(inner_ids)
    assert result.tokens.special.tolist() == [True] + [False] * (len(result.tokens) - 2) + [True]
    for control in CONTROL[name] + [MASK[name]]:
        start = text.index(control)
        covered = [i for i, (s, e) in enumerate(result.tokens.offsets) if s < start + len(control) and e > start]
        assert len(covered) >= 2, f"{control} was read as one token"
        assert start + len(control) - 1 in {int(e) - 1 for _, e in result.tokens.offsets[covered]}
    assert {"film", "good"} <= set(result.words.words)


@pytest.mark.parametrize("name", ["bert", "roberta"])
def test_mask_token_is_the_mask_only_for_the_masked_target(name, tiny_models, tiny_roberta):
    models = tiny_models if name == "bert" else tiny_roberta
    tok = models["masked_lm"].tokenizer
    text = f"{CONTROL[name][0]} the film was {MASK[name]} ."
    masked = analyze(AnalysisRequest(text, n_steps=4), models["masked_lm"])
    ids = tok.convert_tokens_to_ids(masked.tokens.tokens)
    assert ids.count(tok.mask_token_id) == 1 and ids.count(tok.cls_token_id) == 1  # the typed one is text
    assert not any("mask token" in n for n in masked.notices)

    as_text = analyze(AnalysisRequest(text, target=TargetSpec("zero_shot"), n_steps=4), models["masked_lm"])
    assert tok.mask_token_id not in tok.convert_tokens_to_ids(as_text.tokens.tokens)
    assert [n for n in as_text.notices if MASK[name] in n and "plain text" in n]
    classified = analyze(AnalysisRequest(text, n_steps=4), models["classification"])
    assert [n for n in classified.notices if MASK[name] in n]
    plain = analyze(AnalysisRequest("the film was good .", n_steps=4), models["classification"])
    assert plain.notices == ()


@given(data=st.data())
@HYPOTHESIS
def test_tokens_are_the_tokenizers_own_truncation(family, data):
    name, loaded = family
    tok = loaded.tokenizer
    text = data.draw(texts(CONTROL[name] + [MASK[name]]), label="text")
    max_tokens = data.draw(st.integers(3, 64), label="max_tokens")
    inputs, tokens = tokenize(loaded, text, max_tokens)
    expected = own_truncation(tok, text, max_tokens)
    assert inputs["input_ids"][0].tolist() == expected["input_ids"]
    assert tokens.offsets.tolist() == [list(o) for o in expected["offset_mapping"]]
    assert tokens.special.tolist() == [bool(s) for s in expected["special_tokens_mask"]]
    n_full = full_length(tok, text)
    assert tokens.n_tokens_full == n_full and not tokens.n_tokens_full_at_least
    assert tokens.truncated == (n_full > max_tokens)


@given(data=st.data())
@HYPOTHESIS
def test_kept_mask_reads_like_the_tokenizer_with_its_mask(family, data):
    """With only the mask typed, keeping the mask is the tokenizer's default reading (lstrip included)."""
    name, loaded = family
    tok = loaded.tokenizer
    text = data.draw(texts([MASK[name], " " + MASK[name]]), label="text")
    max_tokens = data.draw(st.integers(3, 64), label="max_tokens")
    inputs, tokens = tokenize(loaded, text, max_tokens, keep_mask=True)
    expected = own_truncation(tok, text, max_tokens, split=False)
    assert inputs["input_ids"][0].tolist() == expected["input_ids"]
    assert tokens.offsets.tolist() == [list(o) for o in expected["offset_mapping"]]
    assert tokens.n_tokens_full == full_length(tok, text, split=False)


@given(data=st.data())
@HYPOTHESIS
def test_counting_a_cut_text_keeps_the_same_tokens(family, data):
    """Past `exact_count_chars` the text may be cut at a space: the tokens kept must not change."""
    name, loaded = family
    tok = loaded.tokenizer
    text = data.draw(texts(CONTROL[name] + ["good film was hello"] * 4), label="text")
    max_tokens = data.draw(st.integers(3, 20), label="max_tokens")
    limit = data.draw(st.integers(0, max(len(text) - 1, 0)), label="exact_count_chars")
    result = encode_truncated(tok, text, max_tokens, exact_count_chars=limit)
    assert result.encoding.ids == own_truncation(tok, text, max_tokens)["input_ids"]
    assert result.encoding.offsets == own_truncation(tok, text, max_tokens)["offset_mapping"]
    n_full = full_length(tok, text)
    if result.at_least:
        assert max_tokens < result.n_tokens_full <= n_full
    else:
        assert result.n_tokens_full == n_full


def test_characters_without_tokens_do_not_hide_later_words(tiny_models):
    """Issue 9: 'good', 30,000 zero-width spaces, ' film' reached the model as [CLS] good [SEP]."""
    text = "good" + "\u200b" * 30_000 + " film"
    result = analyze(AnalysisRequest(text, n_steps=4, max_tokens=64), tiny_models["encoder"])
    assert result.tokens.tokens == ["[CLS]", "good", "film", "[SEP]"]
    assert not result.tokens.truncated and result.notices == ()
    assert result.words.words == ["good", "film"]


def test_notice_states_the_true_length(tiny_models):
    text = "the film was good but too long . " * 400  # 13,200 characters
    loaded = tiny_models["encoder"]
    result = analyze(AnalysisRequest(text, n_steps=4), loaded)
    n_full = full_length(loaded.tokenizer, text)
    assert n_full == 8 * 400 + 2
    assert result.tokens.truncated and result.tokens.n_tokens_full == n_full
    assert not result.tokens.n_tokens_full_at_least
    assert result.notices == (f"The text has {n_full:,} tokens; only the first 64 were analysed.",)
    back = Analysis.from_json(result.to_json())
    assert back.notices == result.notices and back.tokens.n_tokens_full == n_full


def test_a_huge_text_is_counted_as_at_least(tiny_models):
    loaded = tiny_models["encoder"]
    text = "good film . " * (EXACT_COUNT_CHARS // 10)
    result = analyze(AnalysisRequest(text, n_steps=2), loaded)
    assert result.tokens.tokens == own_truncation(loaded.tokenizer, text, 64).tokens()
    assert result.tokens.n_tokens_full_at_least
    assert 3 * EXACT_COUNT_CHARS // 12 <= result.tokens.n_tokens_full <= full_length(loaded.tokenizer, text)
    assert result.notices == (f"The text has at least {result.tokens.n_tokens_full:,} tokens; only the first 64 "
                              "were analysed.",)
    assert Analysis.from_json(result.to_json()).tokens.n_tokens_full_at_least
