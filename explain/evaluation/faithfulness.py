"""Faithfulness of word attributions (ERASER): comprehensiveness, sufficiency, a random floor, LOO agreement.

Everything here takes a batched scorer, `score(keep) -> scores`, from keep masks
(bool [variants, words], True = the word stays) to the explained score of each
variant, so the metrics can be checked on a hand-written model as well as on BERT
(`explain.methods.scoring.word_scorer` builds one from an attribution context).
All distinct variants of all methods, bins and random rankings go to the scorer in one call.
With NAOPC asked for (`explain.evaluation.naopc`), every ranking's one-word-at-a-time AOPC is read against the best
and worst orders on the text (exactly: the same one call holds every word subset; by beam search: a few more calls).
See docs/faithfulness.md for the formulas and the choices.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from explain.errors import InputError
from explain.evaluation.naopc import (
    AOPCLimits,
    NAOPCSettings,
    aopc_of,
    beam_limits,
    limits_from_subset_scores,
    removal_masks,
    subset_masks,
)
from explain.methods.base import AttributionContext
from explain.methods.scoring import word_scorer

ERASER_BINS = (0.01, 0.05, 0.10, 0.20, 0.50)
FERRET_DECILES = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
DEFAULT_RANDOM_RANKINGS = 20

WordScorer = Callable[[np.ndarray], np.ndarray]


def words_per_bin(n_words: int, bins: tuple[float, ...]) -> np.ndarray:
    """k = ceil(q * words) for each bin fraction q, at least 1 and at most all words: int [bins]."""
    if n_words < 1:
        raise InputError("Faithfulness needs at least one word in the text.")
    if not bins or any(not 0 < q <= 1 for q in bins):
        raise InputError("Every faithfulness bin must be a fraction of the words above 0 and at most 1.")
    # The 1e-9 keeps 0.1 * 30 (3.0000000000000004 in floating point) at 3 words.
    return np.array([min(n_words, max(1, math.ceil(q * n_words - 1e-9))) for q in bins], dtype=np.int64)


def ranking(word_scores: np.ndarray) -> np.ndarray:
    """Word indices from the highest score to the lowest; ties keep the words' order in the text."""
    return np.argsort(-np.asarray(word_scores, dtype=np.float64), kind="stable")


def top_masks(order: np.ndarray, ks: np.ndarray) -> np.ndarray:
    """bool [bins, words]: True for the top-k words of `order`, one row per k."""
    rank_of_word = np.empty(len(order), dtype=np.int64)
    rank_of_word[order] = np.arange(len(order))
    return rank_of_word[None, :] < ks[:, None]


@dataclass(frozen=True, eq=False)
class Faithfulness:
    """ERASER faithfulness of one word ranking.

    comprehensiveness: AOPC of p(x) - p(x without the top-k words), higher is better;
    sufficiency: AOPC of p(x) - p(only the top-k words), lower is better; the per-bin
    values are float64 [bins]. loo_spearman: rank correlation of the word scores with
    leave-one-word-out (nan when either is constant). aopc: comprehensiveness removing the
    ranked words one at a time (k = 1..W), and naopc: that AOPC between the text's worst (0)
    and best (1) orders; nan unless NAOPC was asked for.
    """

    comprehensiveness: float
    sufficiency: float
    comprehensiveness_bins: np.ndarray
    sufficiency_bins: np.ndarray
    loo_spearman: float
    aopc: float = math.nan
    naopc: float = math.nan


@dataclass(frozen=True)
class RandomFloor:
    """The same metrics for uniformly random rankings: mean and standard deviation over `n_rankings` seeds."""

    comprehensiveness_mean: float
    comprehensiveness_std: float
    sufficiency_mean: float
    sufficiency_std: float
    n_rankings: int
    aopc_mean: float | None = None  # the AOPC and NAOPC of the same rankings, when NAOPC was asked for
    aopc_std: float | None = None
    naopc_mean: float | None = None
    naopc_std: float | None = None


@dataclass(frozen=True, eq=False)
class FaithfulnessReport:
    """Faithfulness of several methods on one text, with what they are all compared against."""

    bins: tuple[float, ...]
    words_per_bin: np.ndarray
    score_full: float
    methods: dict[str, Faithfulness]
    random_floor: RandomFloor
    leave_one_out: np.ndarray  # p(x) - p(x without word i), float64 [words]
    n_variants: int  # distinct inputs scored, to show the cost
    limits: AOPCLimits | None = None  # the best and worst orders' AOPC, when NAOPC was asked for


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation; nan when either side is constant or has fewer than two values."""
    from scipy.stats import spearmanr  # lazy: scipy.stats takes ~2 s to import

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(spearmanr(a, b).statistic)


def remembered(score: WordScorer, known: dict[bytes, float]) -> WordScorer:
    """`score` that asks only for the rows not in `known` (keep-mask bytes to score) and adds them there."""

    def ask(keep: np.ndarray) -> np.ndarray:
        keys = [row.tobytes() for row in keep]
        new = {key: i for i, key in enumerate(keys) if key not in known}
        if new:
            known.update(zip(new, np.asarray(score(keep[list(new.values())]), dtype=np.float64).tolist()))
        return np.array([known[key] for key in keys], dtype=np.float64)

    return ask


def evaluate(word_scores: Mapping[str, np.ndarray], score: WordScorer, *, bins: tuple[float, ...] = ERASER_BINS,
             n_random: int = DEFAULT_RANDOM_RANKINGS, seed: int = 0, naopc: NAOPCSettings | None = None
             ) -> FaithfulnessReport:
    """Comprehensiveness, sufficiency and LOO agreement of each method's word scores, and the random floor.

    Words are ranked by score, highest first (signed scores: toward the explained score). One call
    to `score` evaluates the full input, leave-one-word-out, and for every ranking (each method's,
    then `n_random` random ones seeded `seed`, `seed + 1`, ...) the top-k words removed and kept alone.
    With `naopc`, the same call also removes each ranking's words one at a time and, up to
    `naopc.exact_max_words` words, every subset of words (the exact limits); longer texts add the beam's calls.
    """
    names = list(word_scores)
    if not names:
        raise InputError("Faithfulness needs the word scores of at least one method.")
    n_words = len(np.asarray(word_scores[names[0]]))
    if any(np.asarray(word_scores[n]).shape != (n_words,) for n in names):
        raise InputError("Every method's word scores must have one value per word.")
    if n_random < 2:
        raise InputError("The random floor needs at least two random rankings.")
    ks = words_per_bin(n_words, bins)
    orders = [ranking(word_scores[n]) for n in names]
    orders += [np.random.default_rng(seed + i).permutation(n_words) for i in range(n_random)]
    tops = np.stack([top_masks(order, ks) for order in orders])  # [rankings, bins, words]
    parts = [
        np.ones((1, n_words), dtype=bool),
        ~np.eye(n_words, dtype=bool),
        ~tops.reshape(-1, n_words),  # comprehensiveness: the top-k removed
        tops.reshape(-1, n_words),  # sufficiency: only the top-k kept
    ]
    exact = naopc is not None and naopc.checked().search(n_words) == "exact"
    if naopc is not None:  # NAOPC: each ranking's words removed one at a time
        parts += [removal_masks(order, n_words) for order in orders]
    if exact:
        parts.append(subset_masks(n_words))
    keep = np.concatenate(parts)
    # Short texts repeat variants (bins with the same k, random rankings that agree on the top words).
    distinct, inverse = np.unique(keep, axis=0, return_inverse=True)
    distinct_scores = np.asarray(score(distinct), dtype=np.float64)
    if distinct_scores.shape != (len(distinct),):
        raise ValueError(f"the scorer returned shape {distinct_scores.shape} for {len(distinct)} variants")
    scores = distinct_scores[inverse.reshape(-1)]
    full = scores[0]
    loo = full - scores[1 : 1 + n_words]
    after_bins = 1 + n_words + 2 * len(orders) * len(ks)
    rest = scores[1 + n_words : after_bins].reshape(2, len(orders), len(ks))
    n_variants = len(distinct)
    limits, aopcs, naopcs = None, np.full(len(orders), math.nan), np.full(len(orders), math.nan)
    if naopc is not None:
        prefixes = scores[after_bins : after_bins + len(orders) * n_words].reshape(len(orders), n_words)
        aopcs = np.array([aopc_of(full, row) for row in prefixes])
        if exact:
            limits = limits_from_subset_scores(scores[after_bins + len(orders) * n_words :], n_words)
        else:
            known = {row.tobytes(): value for row, value in zip(distinct, distinct_scores)}
            limits = beam_limits(remembered(score, known), n_words, naopc.beam_width)
            n_variants = len(known)
        limits = limits.widened(zip(orders, aopcs))
        naopcs = np.array([limits.normalise(value) for value in aopcs])
    comprehensiveness_bins, sufficiency_bins = full - rest[0], full - rest[1]
    methods = {
        name: Faithfulness(
            comprehensiveness=float(comprehensiveness_bins[i].mean()),
            sufficiency=float(sufficiency_bins[i].mean()),
            comprehensiveness_bins=comprehensiveness_bins[i].copy(),
            sufficiency_bins=sufficiency_bins[i].copy(),
            loo_spearman=spearman(word_scores[name], loo),
            aopc=float(aopcs[i]),
            naopc=float(naopcs[i]),
        )
        for i, name in enumerate(names)
    }
    random_comprehensiveness = comprehensiveness_bins[len(names) :].mean(1)
    random_sufficiency = sufficiency_bins[len(names) :].mean(1)
    floor = RandomFloor(
        comprehensiveness_mean=float(random_comprehensiveness.mean()),
        comprehensiveness_std=float(random_comprehensiveness.std(ddof=1)),
        sufficiency_mean=float(random_sufficiency.mean()),
        sufficiency_std=float(random_sufficiency.std(ddof=1)),
        n_rankings=n_random,
        **({} if limits is None else {
            "aopc_mean": float(aopcs[len(names) :].mean()), "aopc_std": float(aopcs[len(names) :].std(ddof=1)),
            "naopc_mean": float(naopcs[len(names) :].mean()), "naopc_std": float(naopcs[len(names) :].std(ddof=1))}),
    )
    return FaithfulnessReport(
        bins=tuple(bins),
        words_per_bin=ks,
        score_full=float(full),
        methods=methods,
        random_floor=floor,
        leave_one_out=loo,
        n_variants=n_variants,
        limits=limits,
    )


def evaluate_context(context: AttributionContext, word_scores: Mapping[str, np.ndarray], *, mode: str = "replace",
                     bins: tuple[float, ...] = ERASER_BINS, n_random: int = DEFAULT_RANDOM_RANKINGS,
                     seed: int = 0, naopc: NAOPCSettings | None = None,
                     progress: Callable[[float], None] | None = None) -> FaithfulnessReport:
    """`evaluate` on a real model: words replaced by the context's baseline, or removed (`mode`); `progress` gets
    the fraction of the variants scored after each batch."""
    return evaluate(word_scores, word_scorer(context, mode, progress), bins=bins, n_random=n_random, seed=seed,
                    naopc=naopc)
