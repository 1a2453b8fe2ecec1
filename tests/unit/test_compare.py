from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import jensenshannon

from explain.compare import (
    AttributionAgreement,
    align_words,
    attribution_agreement,
    layer_attention_distance,
    layer_mapping,
    sanity_check_verdict,
    word_attention,
)
from explain.errors import InputError


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


# -- attribution agreement ---------------------------------------------------


def test_identical_scores_agree_completely():
    scores = np.array([0.4, -0.2, 0.1, 0.9, -0.05, 0.3])
    agreement = attribution_agreement(scores, scores.copy(), k=3)
    assert agreement.spearman == pytest.approx(1.0)
    assert agreement.kendall == pytest.approx(1.0)
    assert agreement.top_k == 3
    assert agreement.top_k_overlap == 1.0
    assert agreement.sign_agreement == 1.0
    assert agreement.n_words == 6
    assert agreement.reading().startswith("Strong agreement: both models rank the words almost the same way")
    assert "Spearman 1.00" in agreement.reading()


def test_reversed_ranking_is_minus_one_and_reads_as_disagreement():
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    agreement = attribution_agreement(a, -a)
    assert agreement.spearman == pytest.approx(-1.0)
    assert agreement.kendall == pytest.approx(-1.0)
    assert agreement.sign_agreement == 0.0
    assert agreement.top_k_overlap == 1.0  # same words matter most, with opposite signs
    assert agreement.reading().startswith("They disagree:")


def test_hand_computed_top_k_sign_and_rank_agreement():
    a = np.array([0.5, -0.1, 0.3, 0.0, -0.4])
    b = np.array([0.2, 0.3, -0.6, 0.1, -0.05])
    # |a| order: 0, 4, 2, 1, 3; |b| order: 2, 1, 0, 3, 4
    assert attribution_agreement(a, b, k=2).top_k_overlap == 0.0  # {0, 4} vs {2, 1}
    three = attribution_agreement(a, b, k=3)
    assert three.top_k_overlap == pytest.approx(2 / 3)  # {0, 4, 2} vs {2, 1, 0}
    # words nonzero in both: 0 (+,+), 1 (-,+), 2 (+,-), 4 (-,-) -> 2 of 4 match; word 3 is zero in a
    assert three.sign_agreement == 0.5
    # ranks a = [5, 2, 4, 3, 1], b = [4, 5, 1, 3, 2]: sum d^2 = 20, rho = 1 - 6*20/(5*24) = 0;
    # 5 concordant and 5 discordant pairs, tau = 0
    assert three.spearman == pytest.approx(0.0, abs=1e-12)
    assert three.kendall == pytest.approx(0.0, abs=1e-12)
    assert three.reading().startswith("Little agreement:")
    assert "2 of the top 3 words shared" in three.reading()


def test_moderate_reading_threshold():
    agreement = AttributionAgreement(spearman=0.6, kendall=0.5, top_k=5, top_k_overlap=0.6, sign_agreement=1.0,
                                     n_words=10)
    assert agreement.reading() == (
        "Moderate agreement: the models rank the words in a broadly similar order "
        "(Spearman 0.60; 3 of the top 5 words shared)."
    )


def test_constant_vector_gives_nan_and_says_so():
    agreement = attribution_agreement(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4]))
    assert math.isnan(agreement.spearman) and math.isnan(agreement.kendall)
    assert math.isnan(agreement.sign_agreement)  # no word is nonzero in both
    assert agreement.reading() == "No rank correlation can be computed: one model gives every word the same score."


def test_fewer_than_two_words_and_k_larger_than_n():
    one = attribution_agreement(np.array([0.3]), np.array([-0.2]), k=5)
    assert math.isnan(one.spearman)
    assert (one.top_k, one.top_k_overlap, one.sign_agreement, one.n_words) == (1, 1.0, 0.0, 1)
    assert one.reading().startswith("Too few words")
    none = attribution_agreement(np.array([]), np.array([]))
    assert none.top_k == 0 and math.isnan(none.top_k_overlap) and none.n_words == 0
    wide = attribution_agreement(np.array([1.0, 2.0, 3.0]), np.array([3.0, 1.0, 2.0]), k=10)
    assert wide.top_k == 3 and wide.top_k_overlap == 1.0


def test_mismatched_or_bad_inputs_are_refused():
    with pytest.raises(InputError, match="3 and 4 words"):
        attribution_agreement(np.zeros(3), np.zeros(4))
    with pytest.raises(InputError, match="NaN"):
        attribution_agreement(np.array([1.0, np.nan]), np.array([1.0, 2.0]))
    with pytest.raises(InputError, match="at least 1"):
        attribution_agreement(np.ones(3), np.ones(3), k=0)


# -- word attention ------------------------------------------------------------


def test_word_attention_matches_hand_computation():
    # tokens: [CLS], word0, word1, word1, [SEP]
    w = np.array(
        [
            [0.2, 0.2, 0.2, 0.2, 0.2],
            [0.5, 0.1, 0.2, 0.1, 0.1],
            [0.1, 0.3, 0.3, 0.2, 0.1],
            [0.3, 0.1, 0.1, 0.1, 0.4],
            [0.2, 0.2, 0.2, 0.2, 0.2],
        ],
        dtype=np.float64,
    )[None, None]
    token_word = np.array([-1, 0, 1, 1, -1])
    out = word_attention(w, token_word, 2)
    assert out.shape == (1, 1, 2, 2)
    # word0 row = token 1: keys (0.1, 0.2 + 0.1) -> (0.25, 0.75)
    # word1 row = mean of tokens 2, 3: ((0.3, 0.5) + (0.1, 0.2)) / 2 = (0.2, 0.35) -> (4/11, 7/11)
    np.testing.assert_allclose(out[0, 0], [[0.25, 0.75], [4 / 11, 7 / 11]], rtol=1e-12)


def test_word_without_tokens_gets_uniform_row_and_zero_column():
    w = softmax(np.random.default_rng(1).normal(size=(2, 3, 4, 4)))
    out = word_attention(w, np.array([-1, 0, 1, -1]), 3)  # word 2 lost to truncation
    np.testing.assert_allclose(out[..., 2, :], np.broadcast_to([0.5, 0.5, 0.0], (2, 3, 3)))
    np.testing.assert_array_equal(out[..., :2, 2], 0.0)
    np.testing.assert_allclose(out.sum(-1), 1.0)


def test_one_token_per_word_without_specials_is_the_token_attention():
    w = softmax(np.random.default_rng(2).normal(size=(2, 2, 5, 5))).astype(np.float32)
    out = word_attention(w, np.arange(5), 5)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, w, atol=1e-6)


def test_word_attention_rejects_bad_token_map():
    w = softmax(np.zeros((1, 1, 3, 3)))
    with pytest.raises(InputError, match="below 2"):
        word_attention(w, np.array([0, 1, 2]), 2)
    with pytest.raises(InputError, match="covers 3 tokens"):
        word_attention(w, np.array([0, 1]), 2)


@st.composite
def attention_and_token_map(draw):
    layers, heads = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    tokens, n_words = draw(st.integers(1, 8)), draw(st.integers(1, 5))
    logits = draw(hnp.arrays(np.float64, (layers, heads, tokens, tokens),
                             elements=st.floats(-30, 30, allow_nan=False, allow_infinity=False)))
    token_word = draw(hnp.arrays(np.int64, (tokens,), elements=st.integers(-1, n_words - 1)))
    return softmax(logits).astype(np.float32), token_word, n_words


@settings(max_examples=200, deadline=None)
@given(attention_and_token_map())
def test_word_attention_rows_sum_to_one(case):
    weights, token_word, n_words = case
    out = word_attention(weights, token_word, n_words)
    assert out.shape == weights.shape[:2] + (n_words, n_words)
    assert np.all(out >= 0)
    np.testing.assert_allclose(out.sum(-1), 1.0, atol=1e-5)
    has_tokens = np.isin(np.arange(n_words), token_word)
    if has_tokens.any():
        np.testing.assert_array_equal(out[..., ~has_tokens], 0.0)


# -- layer distances --------------------------------------------------------------


def test_js_distance_is_zero_for_identical_and_positive_for_different():
    rng = np.random.default_rng(3)
    a = word_attention(softmax(rng.normal(size=(3, 4, 6, 6))), np.array([-1, 0, 1, 1, 2, -1]), 3)
    np.testing.assert_array_equal(layer_attention_distance(a, a.copy()), 0.0)
    b = word_attention(softmax(3 * rng.normal(size=(3, 4, 6, 6))), np.array([-1, 0, 1, 1, 2, -1]), 3)
    d = layer_attention_distance(a, b)
    assert d.shape == (3,)
    assert np.all((d > 0) & (d <= 1))
    # head-averaged input gives the same numbers
    np.testing.assert_allclose(layer_attention_distance(a.mean(1), b.mean(1)), d)


def test_js_distance_of_disjoint_rows_is_one():
    a = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    b = np.array([[[0.0, 1.0], [0.0, 1.0]]])
    np.testing.assert_allclose(layer_attention_distance(a, b), [1.0])


def test_layer_mapping_by_relative_depth():
    np.testing.assert_array_equal(layer_mapping(12, 6), [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    np.testing.assert_array_equal(layer_mapping(3, 5), [0, 2, 4])
    np.testing.assert_array_equal(layer_mapping(5, 2), [0, 0, 1, 1, 1])  # 0.5 rounds up
    np.testing.assert_array_equal(layer_mapping(4, 4), [0, 1, 2, 3])
    np.testing.assert_array_equal(layer_mapping(1, 6), [5])
    np.testing.assert_array_equal(layer_mapping(6, 1), [0] * 6)


def test_layer_distance_with_different_layer_counts_uses_the_mapping():
    rng = np.random.default_rng(4)
    x = softmax(rng.normal(size=(4, 4)))
    y = softmax(4 * rng.normal(size=(4, 4)))
    a = np.stack([x, x, x])  # 3 layers, head-averaged
    b = np.stack([x, y])  # 2 layers: mapping(3, 2) = [0, 1, 1]
    d = layer_attention_distance(a, b)
    expected = jensenshannon(x, y, axis=-1, base=2).mean()
    assert expected > 0
    np.testing.assert_allclose(d, [0.0, expected, expected])
    assert layer_attention_distance(b, a).shape == (2,)


def test_layer_distance_needs_the_same_words():
    with pytest.raises(InputError, match="3 and 4 words"):
        layer_attention_distance(np.ones((1, 3, 3)) / 3, np.ones((1, 4, 4)) / 4)


# -- sanity check ---------------------------------------------------------------------


def _agreement(rho: float) -> AttributionAgreement:
    return AttributionAgreement(spearman=rho, kendall=rho, top_k=5, top_k_overlap=0.2, sign_agreement=0.5,
                                n_words=10)


def test_sanity_check_passes_only_when_both_disagree():
    ok, text = sanity_check_verdict(_agreement(0.1), np.array([0.3, 0.4]))
    assert ok and text.startswith("Passed:") and "(Spearman 0.10, mean attention distance 0.35)" in text
    ok, text = sanity_check_verdict(_agreement(0.9), np.array([0.3, 0.4]))
    assert not ok and "ranks the words much like the trained one" in text
    ok, text = sanity_check_verdict(_agreement(-0.7), np.array([0.3, 0.4]))
    assert not ok  # a strong negative correlation is still structure that survived randomisation
    ok, text = sanity_check_verdict(_agreement(0.1), np.array([0.05, 0.02]))
    assert not ok and "spreads its attention much like the trained one" in text
    ok, text = sanity_check_verdict(_agreement(0.9), np.array([0.05]))
    assert not ok and "ranks the words and spreads its attention much like" in text
    ok, text = sanity_check_verdict(_agreement(float("nan")), np.array([0.3]))
    assert not ok and text.startswith("The check is inconclusive")


def test_sanity_check_on_real_numbers():
    rng = np.random.default_rng(5)
    trained = rng.normal(size=20)
    agreement = attribution_agreement(trained, trained + 0.01 * rng.normal(size=20))
    attn = word_attention(softmax(rng.normal(size=(2, 2, 8, 8))), np.array([-1, 0, 1, 2, 3, 4, 5, -1]), 6)
    ok, _ = sanity_check_verdict(agreement, layer_attention_distance(attn, attn))
    assert not ok


# -- word alignment ----------------------------------------------------------------------


def test_align_words_pairs_shared_words():
    assert align_words(["the", "film", "was", "good"], ["the", "movie", "was", "good"]) == [(0, 0), (2, 2), (3, 3)]
    assert align_words(["The", "Film"], ["the", "film", "!"]) == [(0, 0), (1, 1)]
    assert align_words(["so", "good"], ["really", "so", "very", "good"]) == [(0, 1), (1, 3)]
    assert align_words([], ["a"]) == []
