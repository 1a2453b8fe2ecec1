"""Normalised AOPC (Edin, Motzfeldt, Maistro, Borgholt and Maaløe 2025, "Normalized AOPC: Fixing Misleading
Faithfulness Metrics for Feature Attributions Explainability"), written for this project.

The AOPC of comprehensiveness of a word order removes the words one at a time in that order and averages the
drops of the explained score over k = 1..W:

    AOPC(order) = 1/W sum_k [p(x) - p(x without the first k words of the order)]

Its range depends on the model and the text, so raw AOPC does not compare across them. NAOPC rescales it by the
best and the worst AOPC any order reaches on this text: (AOPC - lower) / (upper - lower), 1 for the best order
and 0 for the worst.

The limits are exact up to `exact_max_words` words: every one of the 2^W word subsets is scored once (in batches,
through the same scorer faithfulness uses), and dynamic programming over the subsets finds the best chain of
removals: best[S] = drop(S) + max over j in S of best[S without j], the order's AOPC being best[all] / W (and the
same with min for the lower limit). Above that, a beam search over orders keeps the `beam_width` best (and worst)
partial orders at each step, merging orders that removed the same set; its limits are real orders' AOPC, so they
lie inside the exact ones, and any order known to reach further (a method's, a random one) widens them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from explain.errors import InputError

WordScorer = Callable[[np.ndarray], np.ndarray]

EXACT_MAX_WORDS = 12  # 2^12 = 4096 subsets scored
EXACT_WORDS_CAP = 16  # the largest exact_max_words accepted: 65536 subsets
DEFAULT_BEAM_WIDTH = 5  # the paper's beam for long texts
BEAM_WIDTH_CAP = 64
SEARCHES = ("exact", "beam")


@dataclass(frozen=True)
class NAOPCSettings:
    """How the AOPC limits are found: exactly up to `exact_max_words` words, by a beam of `beam_width` above."""

    exact_max_words: int = EXACT_MAX_WORDS
    beam_width: int = DEFAULT_BEAM_WIDTH

    def checked(self) -> NAOPCSettings:
        if not 1 <= self.exact_max_words <= EXACT_WORDS_CAP:
            raise InputError(f"NAOPC's exact limits take from 1 to {EXACT_WORDS_CAP} words, not {self.exact_max_words}.")
        if not 1 <= self.beam_width <= BEAM_WIDTH_CAP:
            raise InputError(f"NAOPC's beam width must be from 1 to {BEAM_WIDTH_CAP}, not {self.beam_width}.")
        return self

    def search(self, n_words: int) -> str:
        return "exact" if n_words <= self.exact_max_words else "beam"


DEFAULT_NAOPC = NAOPCSettings()


@dataclass(frozen=True)
class AOPCLimits:
    """The best and worst AOPC of comprehensiveness over word orders on one text.

    search: "exact" (every order, through all 2^W subsets) or "beam" (beam search of `beam_width`: the best and
    worst orders found); best_order / worst_order: word indices in removal order; n_variants: distinct inputs the
    search scored.
    """

    upper: float
    lower: float
    search: str
    best_order: tuple[int, ...]
    worst_order: tuple[int, ...]
    beam_width: int
    n_variants: int

    def normalise(self, aopc: float) -> float:
        """(aopc - lower) / (upper - lower); nan where every order has the same AOPC."""
        span = self.upper - self.lower
        return (float(aopc) - self.lower) / span if span > 0 and math.isfinite(aopc) else math.nan

    def widened(self, orders: Iterable[tuple[Sequence[int] | np.ndarray, float]]) -> AOPCLimits:
        """These limits, moved out to any (order, AOPC) that reaches beyond them (a beam can miss the best)."""
        found = self
        for order, aopc in orders:
            if aopc > found.upper:
                found = replace(found, upper=float(aopc), best_order=tuple(int(w) for w in order))
            if aopc < found.lower:
                found = replace(found, lower=float(aopc), worst_order=tuple(int(w) for w in order))
        return found


def removal_masks(order: Sequence[int] | np.ndarray, n_words: int) -> np.ndarray:
    """Keep masks bool [W, words]: row k - 1 has the first k words of `order` removed."""
    rank = np.empty(n_words, dtype=np.int64)
    rank[np.asarray(order, dtype=np.int64)] = np.arange(n_words)
    return rank[None, :] >= np.arange(1, n_words + 1)[:, None]


def aopc_of(full: float, removed_scores: np.ndarray) -> float:
    """The AOPC from p(x) and the scores with the first 1..W words removed."""
    return float(np.mean(full - np.asarray(removed_scores, dtype=np.float64)))


def order_aopc(order: Sequence[int] | np.ndarray, score: WordScorer, n_words: int) -> float:
    """AOPC of comprehensiveness of one order: the full input and its W prefixes removed, in one call."""
    keep = np.vstack([np.ones((1, n_words), dtype=bool), removal_masks(order, n_words)])
    scores = np.asarray(score(keep), dtype=np.float64)
    return aopc_of(scores[0], scores[1:])


def subset_masks(n_words: int) -> np.ndarray:
    """Keep masks bool [2^W, words] for every subset S removed, S as a bit mask (row 0: nothing removed)."""
    subsets = np.arange(1 << n_words, dtype=np.int64)
    return ((subsets[:, None] >> np.arange(n_words)) & 1) == 0


def exact_limits(score: WordScorer, n_words: int) -> AOPCLimits:
    """The exact limits: every subset scored in one call, then dynamic programming over the subsets."""
    if n_words < 1:
        raise InputError("NAOPC needs at least one word in the text.")
    scores = np.asarray(score(subset_masks(n_words)), dtype=np.float64)
    return limits_from_subset_scores(scores, n_words)


def limits_from_subset_scores(scores: np.ndarray, n_words: int) -> AOPCLimits:
    """The exact limits from the score of every subset removed (row s: the words of bit mask s removed)."""
    count = 1 << n_words
    if scores.shape != (count,):
        raise ValueError(f"{scores.shape} scores for {count} subsets")
    drop = scores[0] - scores
    subsets = np.arange(count, dtype=np.int64)
    bits = np.int64(1) << np.arange(n_words, dtype=np.int64)
    members = (subsets[:, None] & bits[None, :]) != 0
    sizes = members.sum(1)
    best = {"upper": np.zeros(count), "lower": np.zeros(count)}
    last = {"upper": np.zeros(count, dtype=np.int64), "lower": np.zeros(count, dtype=np.int64)}
    for size in range(1, n_words + 1):
        at = subsets[sizes == size]
        inside = members[at]
        before = at[:, None] ^ bits[None, :]  # the subset without word j (meaningful where j is inside)
        for side, pick, outside in (("upper", np.argmax, -np.inf), ("lower", np.argmin, np.inf)):
            chains = np.where(inside, best[side][before], outside)
            j = pick(chains, axis=1)
            best[side][at] = drop[at] + chains[np.arange(len(at)), j]
            last[side][at] = j

    def order(side: str) -> tuple[int, ...]:
        removed, backwards = count - 1, []
        while removed:
            j = int(last[side][removed])
            backwards.append(j)
            removed ^= 1 << j
        return tuple(reversed(backwards))

    full = count - 1
    return AOPCLimits(upper=float(best["upper"][full] / n_words), lower=float(best["lower"][full] / n_words),
                      search="exact", best_order=order("upper"), worst_order=order("lower"), beam_width=0,
                      n_variants=count)


def beam_limits(score: WordScorer, n_words: int, width: int) -> AOPCLimits:
    """Limits from a beam search over orders: at each step every kept partial order is extended by each word it has
    not removed, the new subsets are scored in one call, orders that removed the same set are merged (the better
    sum stays), and the `width` best (for the upper limit) and worst (for the lower) are kept."""
    if n_words < 1:
        raise InputError("NAOPC needs at least one word in the text.")
    scored: dict[bytes, float] = {}
    full = float(np.asarray(score(np.ones((1, n_words), dtype=bool)), dtype=np.float64)[0])
    scored[np.zeros(n_words, dtype=bool).tobytes()] = full
    start = (0.0, (), np.zeros(n_words, dtype=bool))
    beams: dict[str, list[tuple[float, tuple[int, ...], np.ndarray]]] = {"upper": [start], "lower": [start]}
    for _ in range(n_words):
        children: dict[str, dict[bytes, tuple[float, tuple[int, ...], np.ndarray]]] = {"upper": {}, "lower": {}}
        new: dict[bytes, np.ndarray] = {}
        for side, beam in beams.items():
            for total, order, removed in beam:
                for j in np.flatnonzero(~removed):
                    child = removed.copy()
                    child[j] = True
                    key = child.tobytes()
                    if key not in scored:
                        new[key] = child
                    children[side].setdefault(key, (total, (*order, int(j)), child))
                    kept = children[side][key]
                    better = total > kept[0] if side == "upper" else total < kept[0]
                    if better:
                        children[side][key] = (total, (*order, int(j)), child)
        if new:
            values = np.asarray(score(~np.stack(list(new.values()))), dtype=np.float64)
            scored.update(zip(new, values.tolist()))
        for side in beams:
            extended = [(total + full - scored[key], order, removed)
                        for key, (total, order, removed) in children[side].items()]
            extended.sort(key=lambda item: item[0], reverse=side == "upper")
            beams[side] = extended[:width]
    (upper, best, _), (lower, worst, _) = beams["upper"][0], beams["lower"][0]
    return AOPCLimits(upper=upper / n_words, lower=lower / n_words, search="beam", best_order=best,
                      worst_order=worst, beam_width=width, n_variants=len(scored))


def aopc_limits(score: WordScorer, n_words: int, settings: NAOPCSettings | None = None) -> AOPCLimits:
    """The AOPC limits of a text: exact up to `settings.exact_max_words` words, by beam search above."""
    settings = (settings or NAOPCSettings()).checked()
    if settings.search(n_words) == "exact":
        return exact_limits(score, n_words)
    return beam_limits(score, n_words, settings.beam_width)


def limit_variants(n_words: int, settings: NAOPCSettings | None = None) -> int:
    """At most this many distinct inputs the limits score: 2^W exactly; a beam's children at each step above
    (both beams, never more than the subsets of that size), plus the full input."""
    settings = settings or NAOPCSettings()
    if settings.search(n_words) == "exact":
        return 1 << n_words
    width = settings.beam_width
    return 1 + sum(min(math.comb(n_words, k), 2 * width * (n_words - k + 1)) for k in range(1, n_words + 1))


def order_variants(n_orders: int, n_words: int, settings: NAOPCSettings | None = None) -> int:
    """At most this many distinct inputs the AOPC of `n_orders` orders adds beyond the limits (none when exact:
    every prefix is one of the subsets)."""
    settings = settings or NAOPCSettings()
    return 0 if settings.search(n_words) == "exact" else n_orders * n_words
