"""Faithfulness metrics: known answers on hand-written scorers and on a linear bag-of-embeddings model."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from explain.errors import InputError
from explain.evaluation import ERASER_BINS, FERRET_DECILES, evaluate, evaluate_context
from explain.evaluation.faithfulness import ranking, words_per_bin
from explain.methods import get_method, word_scorer
from testkit.contexts import build_context, linear_context

# Ten words whose contributions to a linear score are known.
WEIGHTS = np.array([0.5, -0.2, 0.1, 0.3, 0.0, 0.05, -0.1, 0.2, 0.15, -0.05])
BIAS = 0.25


class LinearScorer:
    """score(keep) = bias + sum of the kept words' weights."""

    def __init__(self, weights: np.ndarray, bias: float = BIAS) -> None:
        self.weights, self.bias = weights, bias

    def __call__(self, keep: np.ndarray) -> np.ndarray:
        return self.bias + keep.astype(np.float64) @ self.weights


def test_bins_are_ceil_of_fraction_with_at_least_one_word():
    assert words_per_bin(10, ERASER_BINS).tolist() == [1, 1, 1, 2, 5]
    assert words_per_bin(30, ERASER_BINS).tolist() == [1, 2, 3, 6, 15]
    assert words_per_bin(3, ERASER_BINS).tolist() == [1, 1, 1, 1, 2]
    assert words_per_bin(10, FERRET_DECILES).tolist() == list(range(1, 11))
    with pytest.raises(InputError):
        words_per_bin(0, ERASER_BINS)
    with pytest.raises(InputError):
        words_per_bin(5, (0.0, 0.5))


def test_linear_scorer_metrics_by_hand():
    """Ranking by the true weights: words 0 (0.5), 3 (0.3), 7 (0.2), 8 (0.15), 2 (0.1), ... k = 1, 1, 1, 2, 5."""
    scorer = LinearScorer(WEIGHTS)
    report = evaluate({"true": WEIGHTS, "reversed": -WEIGHTS}, scorer, n_random=5)
    full = BIAS + WEIGHTS.sum()  # 1.2
    assert report.score_full == pytest.approx(full)
    np.testing.assert_allclose(report.leave_one_out, WEIGHTS, atol=1e-12)  # leave-one-out is exact
    true = report.methods["true"]
    # comprehensiveness per bin: the top-k weights' sum
    np.testing.assert_allclose(true.comprehensiveness_bins, [0.5, 0.5, 0.5, 0.8, 1.25], atol=1e-12)
    assert true.comprehensiveness == pytest.approx((0.5 * 3 + 0.8 + 1.25) / 5)
    # sufficiency per bin: p(x) - p(top-k only) = sum of all weights - top-k sum = 0.95 - top-k sum
    np.testing.assert_allclose(true.sufficiency_bins, [0.45, 0.45, 0.45, 0.15, -0.3], atol=1e-12)
    assert true.sufficiency == pytest.approx((0.45 * 3 + 0.15 - 0.3) / 5)
    assert true.loo_spearman == pytest.approx(1.0)
    # the reversed ranking removes -0.2 first, then -0.2 and -0.1, then -0.2, -0.1, -0.05, 0, 0.05
    rev = report.methods["reversed"]
    np.testing.assert_allclose(rev.comprehensiveness_bins, [-0.2, -0.2, -0.2, -0.3, -0.3], atol=1e-12)
    assert rev.loo_spearman == pytest.approx(-1.0)
    assert rev.comprehensiveness < report.random_floor.comprehensiveness_mean < true.comprehensiveness
    assert true.sufficiency < report.random_floor.sufficiency_mean < rev.sufficiency


def test_all_distinct_variants_go_to_the_scorer_in_one_call():
    """Ten words: k = 1, 1, 1, 2, 5, so each ranking has 3 distinct top sets, removed and kept alone."""
    seen = []

    def scorer(keep):
        seen.append(keep.copy())
        return BIAS + keep.astype(np.float64) @ WEIGHTS

    report = evaluate({"a": WEIGHTS, "b": np.arange(10.0), "c": -WEIGHTS}, scorer, n_random=20)
    assert len(seen) == 1
    rows = {row.tobytes() for row in seen[0]}
    assert len(rows) == len(seen[0]) == report.n_variants  # no input scored twice
    assert report.n_variants <= 1 + 10 + 2 * 3 * (3 + 20)
    full = np.ones(10, dtype=bool)
    assert full.tobytes() in rows and all((~np.eye(10, dtype=bool))[i].tobytes() in rows for i in range(10))


def test_random_floor_is_the_mean_and_spread_of_seeded_random_rankings():
    scorer = LinearScorer(WEIGHTS)
    report = evaluate({"true": WEIGHTS}, scorer, n_random=8, seed=3)
    ks = words_per_bin(10, ERASER_BINS)
    values = []
    for i in range(8):
        order = np.random.default_rng(3 + i).permutation(10)
        values.append(np.mean([WEIGHTS[order[:k]].sum() for k in ks]))
    assert report.random_floor.comprehensiveness_mean == pytest.approx(np.mean(values))
    assert report.random_floor.comprehensiveness_std == pytest.approx(np.std(values, ddof=1))
    again = evaluate({"true": WEIGHTS}, LinearScorer(WEIGHTS), n_random=8, seed=3)
    assert again.random_floor == report.random_floor


def test_ties_rank_in_text_order():
    assert ranking(np.array([0.0, 1.0, 1.0, 0.0])).tolist() == [1, 2, 0, 3]


def test_constant_scores_have_no_rank_correlation():
    report = evaluate({"flat": np.ones(10)}, LinearScorer(WEIGHTS), n_random=2)
    assert math.isnan(report.methods["flat"].loo_spearman)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-1, 1, allow_nan=False), min_size=1, max_size=40))
def test_comprehensiveness_plus_rest_is_the_whole_change(weights):
    """For an additive score, removing the top-k and keeping only the top-k split the full change:
    comprehensiveness + (p(x) - p(nothing) - sufficiency) ... i.e. comp_k + suff_k = sum of all weights."""
    w = np.array(weights)
    report = evaluate({"m": w}, LinearScorer(w), n_random=2)
    f = report.methods["m"]
    np.testing.assert_allclose(f.comprehensiveness_bins + f.sufficiency_bins, w.sum(), atol=1e-9)
    # ranking by the exact contributions is the best comprehensiveness any ranking can reach
    assert f.comprehensiveness >= report.random_floor.comprehensiveness_mean - 1e-9


def test_on_a_linear_bag_of_embeddings_model(tiny_models):
    """The real path (methods, batched word scorer) on a model whose answer is known exactly:
    leave-one-out equals gradient x input, and the metrics equal sums of the word contributions."""
    context, contributions = linear_context(tiny_models["classification"], "the film was good but too long .")
    occlusion = get_method("occlusion").attribute(context).word_scores
    gxi = get_method("gradient_x_input").attribute(context).word_scores
    np.testing.assert_allclose(occlusion, contributions, atol=1e-5)
    np.testing.assert_allclose(gxi, contributions, atol=1e-5)
    report = evaluate_context(context, {"occlusion": occlusion, "gradient_x_input": gxi}, n_random=4)
    np.testing.assert_allclose(report.leave_one_out, contributions, atol=1e-5)
    n = len(contributions)
    ks = words_per_bin(n, ERASER_BINS)
    order = np.argsort(-contributions, kind="stable")
    expected = [contributions[order[:k]].sum() for k in ks]
    np.testing.assert_allclose(report.methods["occlusion"].comprehensiveness_bins, expected, atol=1e-5)
    np.testing.assert_allclose(report.methods["occlusion"].sufficiency_bins,
                               contributions.sum() - np.array(expected), atol=1e-5)
    assert report.methods["gradient_x_input"].loo_spearman == pytest.approx(1.0)


def test_removing_words_equals_zero_baseline_on_a_bag_of_embeddings(tiny_models):
    """Deleted tokens drop out of a position-free sum, exactly like zero vectors in their place."""
    context, _ = linear_context(tiny_models["classification"], "the film was good but too long .", baseline="zero")
    rng = np.random.default_rng(0)
    keep = rng.random((12, context.n_words)) < 0.5
    keep[0] = False
    removed = word_scorer(context, "remove")(keep)
    replaced = word_scorer(context, "replace")(keep)
    np.testing.assert_allclose(removed, replaced, atol=1e-5)


def test_remove_mode_keeps_special_tokens_and_order(tiny_models):
    """On the tiny BERT, removing words gives the same score as tokenising the text without them."""

    loaded = tiny_models["classification"]
    text = "the film was good but too long ."
    context = build_context(loaded, text)
    keep = np.ones((1, context.n_words), dtype=bool)
    keep[0, [1, 3]] = False  # "film", "good"
    got = word_scorer(context, "remove")(keep)[0]
    enc = loaded.tokenizer("the was but too long .", return_tensors="pt")
    with torch.no_grad():
        probs = torch.softmax(loaded.model(**enc).logits, -1)[0]
    assert got == pytest.approx(float(probs[context.target.index]), abs=1e-6)


def test_remove_mode_is_refused_for_masked_token_targets(tiny_models):
    from explain.records import TargetSpec

    context = build_context(tiny_models["masked_lm"], "the film was [MASK] .", TargetSpec("masked_token", label="good"))
    with pytest.raises(InputError):
        word_scorer(context, "remove")



def rows_through_the_model(loaded):
    """A counter of the inputs (batch rows) that reach the model's embedding layer, and its hook handle."""
    count = [0]

    def hook(module, args, output):
        count[0] += output.shape[0]

    return count, loaded.model.base_model.embeddings.register_forward_hook(hook)


@pytest.mark.parametrize("mode", ["replace", "remove"])
def test_a_context_scores_each_variant_once_with_the_same_numbers(tiny_models, mode):
    """Leave-one-word-out's variants, scored by the occlusion method (replace mode) or by a first call, are not
    scored again by faithfulness on the same context, and the metrics are those of a fresh context."""
    loaded = tiny_models["classification"]
    text = "the film was good but far too long and the service was slow"
    context = build_context(loaded, text)
    n_words = context.n_words
    count, handle = rows_through_the_model(loaded)
    try:
        scores = {name: get_method(name).attribute(context).word_scores for name in ("gradient_x_input", "occlusion")}
        before = count[0]
        word_scorer(context, mode)(np.vstack([np.ones((1, n_words), dtype=bool), ~np.eye(n_words, dtype=bool)]))
        assert count[0] - before == (0 if mode == "replace" else n_words + 1)
        before = count[0]
        report = evaluate_context(context, scores, mode=mode)
        assert count[0] - before == report.n_variants - (n_words + 1)  # the full input and leave-one-out were known
        before = count[0]
        evaluate_context(context, scores, mode=mode)
        assert count[0] == before  # the second evaluation scored nothing new
    finally:
        handle.remove()
    fresh = evaluate_context(build_context(loaded, text), scores, mode=mode)
    for name in scores:
        a, b = report.methods[name], fresh.methods[name]
        np.testing.assert_allclose([a.comprehensiveness, a.sufficiency], [b.comprehensiveness, b.sufficiency],
                                   atol=1e-6)
    np.testing.assert_allclose(report.leave_one_out, fresh.leave_one_out, atol=1e-6)
