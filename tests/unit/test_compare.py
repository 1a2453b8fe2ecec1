from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from scipy.spatial.distance import jensenshannon

from explain import AnalysisRequest, TargetSpec, analyze
from explain.compare import (
    MIN_RANKED_WORDS,
    MODERATE,
    SANITY_MIN_DISTANCE,
    SIGNIFICANCE,
    AttributionAgreement,
    Outcome,
    RankRelation,
    align_words,
    attribution_agreement,
    compare_analyses,
    layer_attention_distance,
    layer_mapping,
    sanity_check_verdict,
    target_difference,
    word_attention,
    word_diff,
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
    assert three.reading().startswith("Same top words, otherwise little agreement:")  # 2 of 3 top words shared
    assert "2 of the top 3 words shared" in three.reading()


def test_moderate_reading_threshold():
    agreement = AttributionAgreement(spearman=0.6, kendall=0.5, top_k=5, top_k_overlap=0.6, sign_agreement=1.0,
                                     n_words=20, spearman_p=0.005)
    assert agreement.reading() == (
        "Moderate agreement: the models rank the words in a broadly similar order "
        "(Spearman 0.60, Kendall 0.50, p = 0.005; 3 of the top 5 words shared; sign agreement 1.00)."
    )


def test_unrelated_rankings_beside_shared_top_words_do_not_read_as_unrelated():
    """The Compare page showed "mostly unrelated" beside a top-5 overlap of 0.80: the reading names both."""
    agreement = AttributionAgreement(spearman=0.12, kendall=0.09, top_k=5, top_k_overlap=0.8, sign_agreement=0.75,
                                     n_words=14, spearman_p=0.68)
    for sides in ("models", "texts"):
        reading = agreement.reading(sides)
        assert "mostly unrelated" not in reading and not reading.startswith("Little agreement"), reading
        assert reading.startswith("Same top words")
        # every number the page shows is in the sentence
        for shown in ("Spearman 0.12", "Kendall 0.09", "p = 0.68", "4 of the top 5 words shared",
                      "sign agreement 0.75"):
            assert shown in reading, (shown, reading)


def test_similar_rankings_with_different_top_words_say_so():
    agreement = AttributionAgreement(spearman=0.62, kendall=0.45, top_k=5, top_k_overlap=0.2, sign_agreement=0.9,
                                     n_words=30, spearman_p=0.001)
    reading = agreement.reading()
    assert reading.startswith("Similar order, different top words") and "1 of the top 5 words shared" in reading
    assert not reading.startswith(("Strong", "Moderate"))


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


# -- significance and the sanity check ----------------------------------------------------


def exact_two_sided_p(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's two-sided permutation p-value by listing every order of b (untied scores only)."""
    n = a.size
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))

    def rho(ranks_b) -> float:
        return 1 - 6 * float(np.sum((ra - np.asarray(ranks_b)) ** 2)) / (n * (n * n - 1))

    observed = rho(rb)
    null = np.array([rho(p) for p in itertools.permutations(rb)])
    greater = np.mean(null >= observed - 1e-12)
    less = np.mean(null <= observed + 1e-12)
    return min(1.0, 2 * min(greater, less))


@pytest.mark.parametrize("n,seed", [(2, 0), (3, 1), (4, 2), (5, 3), (6, 4), (7, 5), (7, 6), (8, 7)])
def test_small_samples_get_the_exact_permutation_p_value(n, seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=n)
    b = a + rng.normal(size=n)
    agreement = attribution_agreement(a, b)
    assert agreement.spearman_p == pytest.approx(exact_two_sided_p(a, b), abs=1e-12)


def test_exact_p_value_is_not_the_t_approximation():
    # rho = 0.9 on 5 words: 5 of the 120 orders are at least this alike, two-sided p = 10/120; the t
    # approximation says 0.037 and would call it significant
    a = np.arange(5.0)
    b = np.array([0.0, 2.0, 1.0, 3.0, 4.0])
    agreement = attribution_agreement(a, b)
    assert agreement.spearman == pytest.approx(0.9)
    assert agreement.spearman_p == pytest.approx(10 / 120)
    assert agreement.relation is RankRelation.CHANCE_ALIKE


def test_larger_samples_get_a_stable_p_value():
    rng = np.random.default_rng(8)
    a = rng.normal(size=20)
    b = a + 2 * rng.normal(size=20)
    first, second = attribution_agreement(a, b), attribution_agreement(a, b)
    assert first.spearman_p == second.spearman_p  # seeded resampling: the page never flickers
    assert 0 < first.spearman_p <= 1
    long = attribution_agreement(np.arange(60.0), np.arange(60.0) ** 0.5)
    assert long.spearman_p < 1e-10


def _agreement(rho: float, p: float = 1e-4, n: int = 10) -> AttributionAgreement:
    return AttributionAgreement(spearman=rho, kendall=rho, top_k=5, top_k_overlap=0.2, sign_agreement=0.5,
                                n_words=n, spearman_p=p)


def test_sanity_check_passes_only_when_both_differ():
    verdict = sanity_check_verdict(_agreement(0.1, 0.8), np.array([0.3, 0.4]))
    assert verdict.outcome is Outcome.PASSED and verdict.passed
    assert verdict.sentence.startswith("Passed:")
    assert "(Spearman 0.10, p = 0.8, mean attention distance 0.35)" in verdict.sentence
    verdict = sanity_check_verdict(_agreement(0.9), np.array([0.3, 0.4]))
    assert verdict.outcome is Outcome.FAILED and "ranks the words much like the trained one" in verdict.sentence
    verdict = sanity_check_verdict(_agreement(0.1, 0.8), np.array([0.05, 0.02]))
    assert verdict.outcome is Outcome.FAILED and "spreads its attention much like the trained one" in verdict.sentence
    verdict = sanity_check_verdict(_agreement(0.9), np.array([0.05]))
    assert verdict.outcome is Outcome.FAILED
    assert "ranks the words and spreads its attention much like" in verdict.sentence


def test_negative_correlation_counts_as_disagreement():
    verdict = sanity_check_verdict(_agreement(-1.0, 1e-6), np.array([0.3, 0.4]))
    assert verdict.outcome is Outcome.PASSED
    assert "like the trained one" not in verdict.sentence
    verdict = sanity_check_verdict(_agreement(-0.7, 0.2, n=6), np.array([0.3, 0.4]))
    assert verdict.outcome is Outcome.PASSED


def test_too_few_words_is_inconclusive():
    # "I hated it." (4 words with the full stop) at rho = -0.8, and a two-word text
    agreement = attribution_agreement(np.array([0.1, 0.6, -0.2, 0.05]), np.array([0.1, -0.4, 0.2, 0.3]))
    assert agreement.spearman == pytest.approx(-0.8)
    verdict = sanity_check_verdict(agreement, np.array([0.3, 0.4]))
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.sentence.startswith("Inconclusive: too few words to tell")
    assert agreement.reading().startswith("Too few words to tell")
    two = attribution_agreement(np.array([0.2, 0.1]), np.array([0.3, 0.1]))
    verdict = sanity_check_verdict(two, np.array([0.3]))
    assert verdict.outcome is Outcome.INCONCLUSIVE and verdict.sentence.startswith("Inconclusive: too few words")
    # even identical rankings of 4 words are inconclusive: 2 of the 24 orders are that extreme, p = 0.083
    same = attribution_agreement(np.arange(4.0), np.arange(4.0))
    assert same.spearman_p == pytest.approx(2 / 24)
    assert sanity_check_verdict(same, np.array([0.0])).outcome is Outcome.INCONCLUSIVE


def test_minimum_words_is_the_first_count_where_chance_can_be_ruled_out():
    # the smallest exact two-sided p-value with n words is 2 / n!
    assert 2 / math.factorial(MIN_RANKED_WORDS - 1) > SIGNIFICANCE >= 2 / math.factorial(MIN_RANKED_WORDS)


def test_alike_but_not_significant_is_inconclusive():
    verdict = sanity_check_verdict(_agreement(0.8, 0.13, n=5), np.array([0.3, 0.4]))
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.sentence.startswith("Inconclusive:")
    assert not verdict.passed


def test_constant_scores_are_inconclusive():
    agreement = attribution_agreement(np.zeros(6), np.arange(6.0))
    verdict = sanity_check_verdict(agreement, np.array([0.3]))
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.sentence.startswith("Inconclusive:") and "same score" in verdict.sentence


def test_sanity_check_on_real_numbers():
    rng = np.random.default_rng(5)
    trained = rng.normal(size=20)
    agreement = attribution_agreement(trained, trained + 0.01 * rng.normal(size=20))
    attn = word_attention(softmax(rng.normal(size=(2, 2, 8, 8))), np.array([-1, 0, 1, 2, 3, 4, 5, -1]), 6)
    verdict = sanity_check_verdict(agreement, layer_attention_distance(attn, attn))
    assert verdict.outcome is Outcome.FAILED


CLAIMS_ALIKE = ("Strong agreement", "Moderate agreement", "Similar order")
CLAIMS_DIFFERENT = ("Little agreement", "They disagree", "Possibly opposite", "Same top words")
CLAIMS_NOTHING = ("Too few words", "No rank correlation", "Possibly similar")


@settings(max_examples=150, deadline=None)
@given(
    hnp.arrays(np.float64, st.integers(2, 12), elements=st.floats(-1, 1, allow_nan=False, width=32)),
    st.data(),
    st.floats(0, 1),
)
def test_verdict_and_reading_never_contradict(a, data, distance):
    noise = data.draw(hnp.arrays(np.float64, a.shape, elements=st.floats(-1, 1, allow_nan=False, width=32)))
    weight = data.draw(st.sampled_from([-1.0, -0.3, 0.0, 0.3, 1.0]))
    b = weight * a + noise
    agreement = attribution_agreement(a, b)
    verdict = sanity_check_verdict(agreement, np.array([distance]))
    reading = agreement.reading()
    kinds = [prefixes for prefixes in (CLAIMS_ALIKE, CLAIMS_DIFFERENT, CLAIMS_NOTHING) if reading.startswith(prefixes)]
    assert len(kinds) == 1, reading
    ranks_alike = "ranks the words" in verdict.sentence and verdict.outcome is Outcome.FAILED
    # the verdict's reason about word ranks is exactly the reading's claim
    assert ranks_alike == (kinds[0] is CLAIMS_ALIKE), (reading, verdict.sentence)
    if verdict.outcome is Outcome.PASSED:
        assert kinds[0] is CLAIMS_DIFFERENT and distance > SANITY_MIN_DISTANCE
        assert agreement.n_words >= MIN_RANKED_WORDS and agreement.spearman < MODERATE
    if kinds[0] is CLAIMS_NOTHING:
        assert verdict.outcome is not Outcome.PASSED
    if agreement.n_words < MIN_RANKED_WORDS or math.isnan(agreement.spearman):
        assert verdict.outcome is Outcome.INCONCLUSIVE and verdict.sentence.startswith("Inconclusive")
    if verdict.outcome is Outcome.FAILED:
        assert distance <= SANITY_MIN_DISTANCE or (
            agreement.spearman >= MODERATE and agreement.spearman_p < SIGNIFICANCE
        )
    # independent check of the significance the reading and the verdict rest on
    if agreement.n_words <= 7 and not math.isnan(agreement.spearman) and np.unique(a).size == a.size \
            and np.unique(b).size == b.size:
        assert agreement.spearman_p == pytest.approx(exact_two_sided_p(a, b), abs=1e-9)


def test_the_reading_speaks_of_texts_in_texts_mode():
    agreement = attribution_agreement(np.arange(8.0), np.arange(8.0))
    assert "both models" in agreement.reading()
    assert "models" not in agreement.reading(sides="texts") and "texts" in agreement.reading(sides="texts")


# -- what the two sides explain, and where two texts differ -----------------------------------------


def test_sides_that_explain_different_outputs_say_so(tiny_models):
    text = "the film was good"
    classifier = analyze(AnalysisRequest(text, n_steps=4), tiny_models["classification"])
    zero_shot = analyze(AnalysisRequest(text, n_steps=4, target=TargetSpec("zero_shot", label="positive")),
                        tiny_models["encoder"])
    sentence = target_difference(zero_shot, classifier)
    assert sentence.startswith("The targets differ:")
    assert zero_shot.prediction.description in sentence and classifier.prediction.description in sentence
    assert compare_analyses(zero_shot, classifier).target_difference == sentence
    other_encoder = analyze(AnalysisRequest(text, n_steps=4, target=TargetSpec("zero_shot", label="positive")),
                            tiny_models["encoder_alt"])
    assert target_difference(zero_shot, other_encoder) == ""
    negative = analyze(AnalysisRequest(text, n_steps=4, target=TargetSpec("zero_shot", label="negative")),
                       tiny_models["encoder_alt"])
    assert "P(negative)" in target_difference(zero_shot, negative)
    prompts = TargetSpec("zero_shot", label="positive", prompts=("I like it.", "I do not like it."))
    other_prompts = analyze(AnalysisRequest(text, n_steps=4, target=prompts), tiny_models["encoder_alt"])
    assert "I do not like it." in target_difference(zero_shot, other_prompts)


def test_two_texts_show_and_count_the_changed_words(tiny_models):
    a = analyze(AnalysisRequest("the film was good", n_steps=4), tiny_models["encoder"])
    b = analyze(AnalysisRequest("the movie was not very good !", n_steps=4,
                                target=a.request.target), tiny_models["encoder"])
    c = compare_analyses(a, b)
    assert c.texts
    assert c.pairs.tolist() == [[0, 0], [2, 2], [3, 5]]
    assert c.words == ["the", "was", "good"]
    assert [(w.kind, w.words_left, w.words_right) for w in c.changes] == [
        ("replace", ("film",), ("movie",)),
        ("insert", (), ("not", "very")),
        ("insert", (), ("!",)),
    ]
    assert c.changes[0].score_left == pytest.approx(float(a.word_scores[1]))
    assert c.changes[0].score_right == pytest.approx(float(b.word_scores[1]))
    assert math.isnan(c.changes[1].score_left)
    assert c.changes[1].score_right == pytest.approx(float(b.word_scores[3] + b.word_scores[4]))
    assert c.changed_words == (1, 4)
    assert "texts" in c.reading() and "models" not in c.reading()
    same = compare_analyses(a, a)
    assert not same.texts and same.changes == [] and same.changed_words == (0, 0)


def test_word_diff_covers_every_word_once():
    left = "the film was really good".split()
    right = "a film was good , truly".split()
    shared, changes = word_diff(left, right)
    assert shared == align_words(left, right)
    covered_left = sorted([i for i, _ in shared] + [i for c in changes for i in range(*c.span_left)])
    covered_right = sorted([j for _, j in shared] + [j for c in changes for j in range(*c.span_right)])
    assert covered_left == list(range(len(left))) and covered_right == list(range(len(right)))
    assert [(c.kind, c.words_left, c.words_right) for c in changes] == [
        ("replace", ("the",), ("a",)), ("delete", ("really",), ()), ("insert", (), (",", "truly")),
    ]


# -- word alignment ----------------------------------------------------------------------


def test_align_words_pairs_shared_words():
    assert align_words(["the", "film", "was", "good"], ["the", "movie", "was", "good"]) == [(0, 0), (2, 2), (3, 3)]
    assert align_words(["The", "Film"], ["the", "film", "!"]) == [(0, 0), (1, 1)]
    assert align_words(["so", "good"], ["really", "so", "very", "good"]) == [(0, 1), (1, 3)]
    assert align_words([], ["a"]) == []
