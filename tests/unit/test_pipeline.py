from __future__ import annotations

import threading

import numpy as np
import pytest

from explain import Analysis, AnalysisRequest, InputError, TargetSpec, analyze


@pytest.mark.parametrize(
    "request_kwargs,message",
    [
        ({"text": ""}, "text is empty"),
        ({"text": "   \n\t "}, "text is empty"),
        ({"text": "good", "n_steps": 0}, "from 1 to 1000"),
        ({"text": "good", "n_steps": 1001}, "from 1 to 1000"),
        ({"text": "good", "n_steps": 2.5}, "from 1 to 1000"),
        ({"text": "good", "baseline": "noise"}, "Unknown baseline"),
        ({"text": "good", "max_tokens": 1}, "at least 3"),
        ({"text": "good", "target": TargetSpec("similarity")}, "needs a reference"),
        ({"text": "good", "target": TargetSpec("zero_shot", labels=("only",))}, "at least two"),
        ({"text": "good", "target": TargetSpec("zero_shot", labels=("a", "b"), prompts=("x",))}, "one non-empty prompt"),
        ({"text": "good", "target": TargetSpec("class")}, "cannot explain a 'class' target"),
        ({"text": "good", "target": TargetSpec("nonsense")}, "Unknown target"),
        ({"text": "good", "target": TargetSpec("zero_shot", label="maybe")}, "no label 'maybe'"),
    ],
)
def test_bad_inputs_give_one_sentence(tiny_models, request_kwargs, message):
    with pytest.raises(InputError, match=message) as err:
        analyze(AnalysisRequest(**request_kwargs), tiny_models["encoder"])
    assert "\n" not in str(err.value)


def test_masked_target_needs_a_mask(tiny_models):
    with pytest.raises(InputError, match=r"needs a \[MASK\]"):
        analyze(AnalysisRequest("the film was good"), tiny_models["masked_lm"])
    with pytest.raises(InputError, match="not a single token"):
        analyze(AnalysisRequest("the film was [MASK]", target=TargetSpec("masked_token", label="zzzq")),
                tiny_models["masked_lm"])


def test_masked_prediction_lists_top_tokens(tiny_models):
    result = analyze(AnalysisRequest("the film was [MASK] .", n_steps=5), tiny_models["masked_lm"])
    p = result.prediction
    assert len(p.labels) == 10
    assert p.explained_index == 0 and p.scores[0] == p.scores.max()
    assert "[MASK]" in p.description


def test_long_text_is_truncated_and_says_so(tiny_models):
    text = " ".join(["good film"] * 100)
    result = analyze(AnalysisRequest(text, n_steps=4), tiny_models["encoder"])
    assert len(result.tokens) == 64
    assert result.tokens.truncated
    assert result.tokens.n_tokens_full == 202
    assert result.notices == ("The text has 202 tokens; only the first 64 were analysed.",)
    assert result.words.spans[-1, 1] < len(text)
    short = analyze(AnalysisRequest("good film", n_steps=4, max_tokens=3), tiny_models["encoder"])
    assert short.tokens.tokens == ["[CLS]", "good", "[SEP]"] and short.tokens.truncated
    assert short.notices == ("The text has 4 tokens; only the first 3 were analysed.",)


def test_html_and_odd_unicode_keep_offsets(tiny_models):
    text = "ﬁlm <img src=x onerror=alert(1)> 😀 e\u0301 \u200b good"
    result = analyze(AnalysisRequest(text, n_steps=4), tiny_models["encoder"])
    assert "<" in result.words.words and "img" in result.words.words
    for (start, end), word in zip(result.words.spans, result.words.words):
        assert text[start:end] == word


def test_json_round_trip_equals_original(tiny_models):
    result = analyze(AnalysisRequest("the film was [MASK] .", n_steps=6), tiny_models["masked_lm"])
    back = Analysis.from_json(result.to_json())
    assert back.request == result.request and back.model == result.model
    assert back.tokens.tokens == result.tokens.tokens and back.words.words == result.words.words
    for a, b in [
        (back.attention.weights, result.attention.weights),
        (back.attribution.scores, result.attribution.scores),
        (back.word_scores, result.word_scores),
        (back.tokens.offsets, result.tokens.offsets),
        (back.tokens.special, result.tokens.special),
        (back.prediction.scores, result.prediction.scores),
        (back.words.token_word, result.words.token_word),
    ]:
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert back.prediction.labels == result.prediction.labels
    assert back.notices == result.notices
    assert back.attribution.delta == result.attribution.delta
    assert back.to_json() == result.to_json()


def test_parallel_threads_give_sequential_results(tiny_models):
    loaded = tiny_models["classification"]
    texts = ["the film was good", "the service was terrible but fast"]
    sequential = [analyze(AnalysisRequest(t, n_steps=30), loaded).attribution.scores for t in texts]
    results: dict[int, list] = {0: [], 1: []}

    def work(i):
        for _ in range(4):
            results[i].append(analyze(AnalysisRequest(texts[i], n_steps=30), loaded).attribution.scores)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        for scores in results[i]:
            np.testing.assert_array_equal(scores, sequential[i])
