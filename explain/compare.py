"""Agreement between two explanations of the same words, and the trained-vs-random sanity check.

Words come from the text, not from a tokenizer, so two models reading the same
text share one word axis: token attributions and token attention are brought onto
it (`explain.words.word_sums`, `word_attention`) and compared there. For two
different texts, `word_diff` aligns the words (a sequence diff): the metrics use the
words both texts have, and the changed words are listed with their scores.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from explain.errors import InputError

# reading(): a significant Spearman rho >= STRONG is "strong", >= MODERATE "moderate", <= -MODERATE "they
# disagree"; |rho| >= MODERATE that is not significant "possibly"; anything in between "little agreement".
STRONG = 0.8
MODERATE = 0.5
# The reading also weighs the top-k overlap: at least TOP_SHARED of the top words in common is "the same top
# words", at most TOP_FEW "different top words"; when that contradicts the rank correlation, the reading says both.
TOP_SHARED = 0.6
TOP_FEW = 0.2
# Two-sided level for the Spearman p-value, used by the reading and the sanity check alike.
SIGNIFICANCE = 0.05
# With n words the smallest exact two-sided p-value is 2 / n!: 0.083 for 4 words, 0.017 for 5. Below 5
# words no ranking, not even a perfect match, can be told from chance at SIGNIFICANCE.
MIN_RANKED_WORDS = 5
# spearman p-values: every permutation up to EXACT_MAX_WORDS words (8! = 40320 orders, ~0.1 s), RESAMPLES
# seeded random permutations up to RESAMPLED_MAX_WORDS, and the t approximation above (there it is within
# 0.006 of the permutation p-value; at 9-10 words it is up to 0.02 too small).
EXACT_MAX_WORDS = 8
RESAMPLED_MAX_WORDS = 30
RESAMPLES = 9999

# sanity_check_verdict(): a randomised model should give a different explanation: a word ranking not
# significantly alike (rho < MODERATE, or not significant) and a mean attention JS distance above
# SANITY_MIN_DISTANCE.
SANITY_MIN_DISTANCE = 0.1


class RankRelation(Enum):
    """How two word rankings relate, the one judgement both the reading and the sanity check use."""

    UNDEFINED = "undefined"  # fewer than two words, or one side scores every word the same
    TOO_FEW = "too few"  # fewer than MIN_RANKED_WORDS words: chance explains any order
    STRONG = "strong"  # rho >= STRONG, significant
    MODERATE = "moderate"  # MODERATE <= rho < STRONG, significant
    CHANCE_ALIKE = "possibly alike"  # rho >= MODERATE, not significant
    UNRELATED = "unrelated"  # |rho| < MODERATE
    OPPOSITE = "opposite"  # rho <= -MODERATE, significant
    CHANCE_OPPOSITE = "possibly opposite"  # rho <= -MODERATE, not significant


ALIKE = (RankRelation.STRONG, RankRelation.MODERATE)

# reading() sentences, for two models on one text and for one model on two texts: {n} words, {numbers}.
_READINGS: dict[str, dict[RankRelation | str, str]] = {
    "models": {
        RankRelation.STRONG: "Strong agreement: both models rank the words almost the same way {numbers}.",
        RankRelation.MODERATE: "Moderate agreement: the models rank the words in a broadly similar order {numbers}.",
        RankRelation.CHANCE_ALIKE: "Possibly similar: the models rank the {n} words in a similar order {numbers}, "
        "but with so few words that often happens by chance.",
        RankRelation.UNRELATED: "Little agreement: the two models' word rankings are mostly unrelated {numbers}.",
        RankRelation.OPPOSITE: "They disagree: words one model ranks high, the other tends to rank low {numbers}.",
        RankRelation.CHANCE_OPPOSITE: "Possibly opposite: words one model ranks high, the other tends to rank low "
        "{numbers}, but with so few words that often happens by chance.",
        "top_only": "Same top words, otherwise little agreement: the models pick largely the same most important "
        "words, but their rankings of all {n} words are only weakly related {numbers}.",
        "order_only": "Similar order, different top words: the models rank the words in a broadly similar order, "
        "but few of their most important words are the same {numbers}.",
    },
    "texts": {
        RankRelation.STRONG: "Strong agreement: the shared words are ranked almost the same way in both texts "
        "{numbers}.",
        RankRelation.MODERATE: "Moderate agreement: the shared words are ranked in a broadly similar order in both "
        "texts {numbers}.",
        RankRelation.CHANCE_ALIKE: "Possibly similar: the {n} shared words are ranked in a similar order in both "
        "texts {numbers}, but with so few words that often happens by chance.",
        RankRelation.UNRELATED: "Little agreement: the shared words are ranked in mostly unrelated orders in the two "
        "texts {numbers}.",
        RankRelation.OPPOSITE: "They disagree: shared words ranked high in one text tend to be ranked low in the "
        "other {numbers}.",
        RankRelation.CHANCE_OPPOSITE: "Possibly opposite: shared words ranked high in one text tend to be ranked low "
        "in the other {numbers}, but with so few words that often happens by chance.",
        "top_only": "Same top words, otherwise little agreement: largely the same shared words matter most in both "
        "texts, but the rankings of all {n} shared words are only weakly related {numbers}.",
        "order_only": "Similar order, different top words: the shared words are ranked in a broadly similar order "
        "in both texts, but few of the most important words are the same {numbers}.",
    },
}
SIDES = tuple(_READINGS)


@dataclass
class AttributionAgreement:
    """How far two word attributions agree.

    spearman/kendall: rank correlations of the signed scores (nan when a vector is
    constant or there are fewer than 2 words). spearman_p: its two-sided p-value
    under independence (`spearman_p_value`; nan with spearman). top_k_overlap: share
    of the top_k words by |score| that both have in their top_k (ties broken by word
    order). sign_agreement: share of the words scored nonzero by both whose signs
    match (nan when there are none).
    """

    spearman: float
    kendall: float
    top_k: int
    top_k_overlap: float
    sign_agreement: float
    n_words: int
    spearman_p: float

    @property
    def relation(self) -> RankRelation:
        if self.n_words < 2 or math.isnan(self.spearman):
            return RankRelation.UNDEFINED
        if self.n_words < MIN_RANKED_WORDS:
            return RankRelation.TOO_FEW
        rho, significant = self.spearman, self.spearman_p < SIGNIFICANCE
        if rho >= MODERATE:
            if not significant:
                return RankRelation.CHANCE_ALIKE
            return RankRelation.STRONG if rho >= STRONG else RankRelation.MODERATE
        if rho <= -MODERATE:
            return RankRelation.OPPOSITE if significant else RankRelation.CHANCE_OPPOSITE
        return RankRelation.UNRELATED

    def reading(self, sides: str = "models") -> str:
        """One plain-language sentence about the agreement; `sides` is "models" (two models, one text) or
        "texts" (one model, two texts).

        It uses every number the Compare page shows (Spearman with its p-value, Kendall, the top-k overlap and
        the sign agreement): the rank relation sets the claim, and where the top-k overlap contradicts it (at
        least TOP_SHARED beside unrelated rankings, at most TOP_FEW beside similar ones) the claim names both.
        """
        if sides not in _READINGS:
            raise InputError(f"The sides compared must be one of {', '.join(SIDES)}, not '{sides}'.")
        relation = self.relation
        if self.n_words < 2:
            return "Too few words to compare: rankings need at least two words."
        if relation is RankRelation.UNDEFINED:
            who = "one model" if sides == "models" else "on one of the texts the model"
            return f"No rank correlation can be computed: {who} gives every word the same score."
        if relation is RankRelation.TOO_FEW:
            words = "words" if sides == "models" else "words shared by the two texts"
            return (f"Too few words to tell: with only {self.n_words} {words}, orders this alike or this different "
                    f"often arise by chance (Spearman {self.spearman:.2f}).")
        shared = f"{round(self.top_k_overlap * self.top_k)} of the top {self.top_k} words shared"
        signs = ("" if math.isnan(self.sign_agreement)
                 else f"; sign agreement {self.sign_agreement:.2f}")
        kendall = "" if math.isnan(self.kendall) else f", Kendall {self.kendall:.2f}"
        numbers = f"(Spearman {self.spearman:.2f}{kendall}, p = {self.spearman_p:.2g}; {shared}{signs})"
        key: RankRelation | str = relation
        if relation is RankRelation.UNRELATED and self.top_k_overlap >= TOP_SHARED:
            key = "top_only"
        elif relation in ALIKE and self.top_k_overlap <= TOP_FEW:
            key = "order_only"
        return _READINGS[sides][key].format(n=self.n_words, numbers=numbers)


def _scores(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InputError(f"The {name} scores must be one number per word, not an array of shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"The {name} scores contain NaN or infinite values, so they cannot be compared.")
    return arr


def spearman_p_value(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p-value of Spearman's rho between a and b under independence (both non-constant).

    Exact (every order of b) up to EXACT_MAX_WORDS words, RESAMPLES seeded random orders up to
    RESAMPLED_MAX_WORDS (the same p-value on every call), the t approximation above.
    """
    from scipy.stats import permutation_test, rankdata, spearmanr  # lazy, as every scipy.stats import: ~2 s

    n = int(a.size)
    if n > RESAMPLED_MAX_WORDS:
        return float(spearmanr(a, b).pvalue)
    ranks_a = rankdata(a)
    ranks_a -= ranks_a.mean()

    def rho(values: np.ndarray, axis: int = -1) -> np.ndarray:
        ranks = rankdata(values, axis=axis)
        ranks = ranks - ranks.mean(axis=axis, keepdims=True)
        return (ranks * ranks_a).sum(axis) / np.sqrt((ranks_a**2).sum() * (ranks**2).sum(axis))

    settings: dict = ({"n_resamples": np.inf} if n <= EXACT_MAX_WORDS
                      else {"n_resamples": RESAMPLES, "rng": np.random.default_rng(0)})
    result = permutation_test((b,), rho, permutation_type="pairings", vectorized=True, **settings)
    return float(min(1.0, result.pvalue))


def attribution_agreement(scores_a: np.ndarray, scores_b: np.ndarray, *, k: int = 5) -> AttributionAgreement:
    """Rank correlation, top-k overlap and sign agreement of two word attributions on the same words."""
    from scipy.stats import kendalltau, spearmanr

    a, b = _scores(scores_a, "first"), _scores(scores_b, "second")
    if a.shape != b.shape:
        raise InputError(
            f"The two attributions cover {a.size} and {b.size} words; align them on the same words first."
        )
    if k < 1:
        raise InputError(f"k must be at least 1 to compare the top words, not {k}.")
    n = int(a.size)
    spearman = kendall = p_value = math.nan
    if n >= 2 and np.ptp(a) > 0 and np.ptp(b) > 0:
        spearman = float(spearmanr(a, b).statistic)
        p_value = spearman_p_value(a, b)
        kendall = float(kendalltau(a, b).statistic)
    top_k = min(k, n)
    if top_k:
        top_a = set(np.argsort(-np.abs(a), kind="stable")[:top_k].tolist())
        top_b = set(np.argsort(-np.abs(b), kind="stable")[:top_k].tolist())
        overlap = len(top_a & top_b) / top_k
    else:
        overlap = math.nan
    both = (a != 0) & (b != 0)
    sign = float(np.mean(np.sign(a[both]) == np.sign(b[both]))) if both.any() else math.nan
    return AttributionAgreement(
        spearman=spearman, kendall=kendall, top_k=top_k, top_k_overlap=overlap, sign_agreement=sign, n_words=n,
        spearman_p=p_value,
    )


def word_attention(weights: np.ndarray, token_word: np.ndarray, n_words: int) -> np.ndarray:
    """Token attention [L, H, T, T] as word attention [L, H, W, W], rows summing to 1.

    The key side sums a word's tokens (attention a query pays to the word), the
    query side averages them (one word, one row); columns of special tokens
    (token_word == -1) are dropped and rows renormalised. A word with no tokens
    (possible after truncation) gets a zero column and a uniform row; a row with
    no mass left is uniform over the words that have tokens. Computed in the
    input's float precision (float32 stays float32, to bound memory).
    """
    w = np.asarray(weights)
    tw = np.asarray(token_word).astype(np.int64)
    if w.ndim != 4 or w.shape[-1] != w.shape[-2]:
        raise InputError(f"Attention must have shape [layers, heads, tokens, tokens], not {w.shape}.")
    if tw.shape != (w.shape[-1],):
        raise InputError(f"token_word has {tw.size} entries but the attention covers {w.shape[-1]} tokens.")
    if tw.size and (tw.min() < -1 or tw.max() >= n_words):
        raise InputError(f"token_word must hold word indices below {n_words}, or -1 for special tokens.")
    dtype = np.result_type(w.dtype, np.float32)
    w = w.astype(dtype, copy=False)
    member = np.zeros((tw.size, n_words), dtype=dtype)  # [T, W]
    rows = np.flatnonzero(tw >= 0)
    member[rows, tw[rows]] = 1.0
    counts = member.sum(0)  # tokens per word
    has_tokens = counts > 0
    query_mean = (member / np.where(has_tokens, counts, 1.0)).T  # [W, T]
    out = query_mean @ (w @ member)  # [L, H, W, W]
    sums = out.sum(-1, keepdims=True)
    fallback = np.where(has_tokens, 1.0, 0.0) if has_tokens.any() else np.ones(n_words)
    fallback = (fallback / max(fallback.sum(), 1.0)).astype(dtype)
    ok = sums > 0
    out = np.where(ok, out / np.where(ok, sums, 1.0), fallback)
    # words without tokens: uniform rows (their zero columns stay zero where others have tokens)
    out[..., ~has_tokens, :] = fallback
    return out.astype(dtype, copy=False)


def layer_mapping(n_layers_a: int, n_layers_b: int) -> np.ndarray:
    """For each layer i of A, the layer of B at the same relative depth: round_half_up(i * (Lb-1) / (La-1)).

    A one-layer model's layer counts as its last layer, so it maps to B's last layer.
    """
    if n_layers_a < 1 or n_layers_b < 1:
        raise InputError("Both models need at least one layer to compare their attention.")
    if n_layers_a == 1:
        return np.array([n_layers_b - 1])
    depth = np.arange(n_layers_a) * (n_layers_b - 1) / (n_layers_a - 1)
    return np.floor(depth + 0.5).astype(int)


def _head_average(attn: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(attn, dtype=np.float64)
    if arr.ndim == 4:
        arr = arr.mean(1)
    if arr.ndim != 3 or arr.shape[-1] != arr.shape[-2]:
        raise InputError(
            f"The {name} word attention must be [layers, heads, words, words] or [layers, words, words], "
            f"not {arr.shape}."
        )
    return arr


def layer_attention_distance(word_attn_a: np.ndarray, word_attn_b: np.ndarray) -> np.ndarray:
    """Per-layer Jensen-Shannon distance (base 2, in [0, 1]) between two models' word attention.

    Inputs are [L, H, W, W] (heads are averaged here) or already head-averaged
    [L, W, W], on the same W words. Layer i of A is compared with layer
    `layer_mapping(La, Lb)[i]` of B; each layer's distance is the mean over
    query rows. Returns [La]; nan per layer when there are no words.
    """
    a, b = _head_average(word_attn_a, "first"), _head_average(word_attn_b, "second")
    if a.shape[-1] != b.shape[-1]:
        raise InputError(
            f"The two attentions cover {a.shape[-1]} and {b.shape[-1]} words; compare them on the same words."
        )
    if a.shape[-1] == 0:
        return np.full(a.shape[0], math.nan)
    b = b[layer_mapping(a.shape[0], b.shape[0])]
    from scipy.spatial.distance import jensenshannon  # lazy: scipy.spatial imports scipy.stats

    rows = jensenshannon(a, b, axis=-1, base=2)  # [La, W]
    # rounding can leave a tiny negative divergence under the square root for near-identical rows
    return np.nan_to_num(rows, nan=0.0).mean(-1)


class Outcome(Enum):
    PASSED = "passed"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class SanityVerdict:
    """The trained-vs-randomised check's outcome and the sentence that explains it (it starts with the
    outcome: "Passed:", "Failed:" or "Inconclusive:")."""

    outcome: Outcome
    sentence: str

    @property
    def passed(self) -> bool:
        return self.outcome is Outcome.PASSED


def sanity_check_verdict(agreement: AttributionAgreement, layer_distances: np.ndarray) -> SanityVerdict:
    """Trained-vs-randomised check: an explanation that survives randomising the weights does not reflect
    what the model learned.

    Inconclusive below MIN_RANKED_WORDS words or when a side scores every word the same. Failed when
    the randomised model ranks the words significantly alike (`RankRelation` STRONG or MODERATE: rho >=
    MODERATE with p < SIGNIFICANCE) or its mean attention JS distance is at most SANITY_MIN_DISTANCE.
    Otherwise inconclusive when the rankings look alike but could be so by chance, and passed when they
    are unrelated or opposite: a negative correlation is disagreement, not resemblance.
    """
    n = agreement.n_words
    if n < MIN_RANKED_WORDS:
        return SanityVerdict(Outcome.INCONCLUSIVE, (
            f"Inconclusive: too few words to tell. The check needs at least {MIN_RANKED_WORDS} words, "
            f"since with only {n} {'word' if n == 1 else 'words'} even a perfectly matching order arises by chance "
            "too often."
        ))
    relation = agreement.relation
    if relation is RankRelation.UNDEFINED:
        return SanityVerdict(Outcome.INCONCLUSIVE, (
            "Inconclusive: one model gives every word the same score, so the rankings cannot be compared."
        ))
    distance = float(np.nanmean(layer_distances)) if np.size(layer_distances) else math.nan
    if math.isnan(distance):
        return SanityVerdict(Outcome.INCONCLUSIVE, "Inconclusive: the attention maps could not be compared.")
    ranks_alike = relation in ALIKE
    attention_alike = distance <= SANITY_MIN_DISTANCE
    numbers = (f"(Spearman {agreement.spearman:.2f}, p = {agreement.spearman_p:.2g}, "
               f"mean attention distance {distance:.2f})")
    if ranks_alike or attention_alike:
        if ranks_alike and attention_alike:
            problem = "ranks the words and spreads its attention much like the trained one"
        elif ranks_alike:
            problem = "ranks the words much like the trained one"
        else:
            problem = "spreads its attention much like the trained one"
        return SanityVerdict(Outcome.FAILED, (
            f"Failed: the randomised model {problem} {numbers}, "
            "so this explanation may reflect the input or the architecture more than what the model learned."
        ))
    if relation is RankRelation.CHANCE_ALIKE:
        return SanityVerdict(Outcome.INCONCLUSIVE, (
            f"Inconclusive: the randomised model ranks the {n} words in an order like the trained one's {numbers}, "
            "but with so few words that often happens by chance, so the check cannot tell."
        ))
    how = ("ranks the words in roughly the opposite order"
           if relation in (RankRelation.OPPOSITE, RankRelation.CHANCE_OPPOSITE) else "explains the text differently")
    return SanityVerdict(Outcome.PASSED, (
        f"Passed: the randomised model {how} {numbers}, "
        "so the explanation depends on what the trained model learned."
    ))


@dataclass(frozen=True)
class WordChange:
    """One place where two texts differ: words of the first text replaced by, or deleted for, or words
    inserted in the second, with their summed attribution on each side (nan on a side with no words)."""

    kind: str  # "replace" | "insert" | "delete"
    words_left: tuple[str, ...]
    words_right: tuple[str, ...]
    span_left: tuple[int, int]  # word indices [start, end) in the first text
    span_right: tuple[int, int]  # word indices [start, end) in the second text
    score_left: float = math.nan
    score_right: float = math.nan


def word_diff(words_a: list[str], words_b: list[str]) -> tuple[list[tuple[int, int]], list[WordChange]]:
    """Align two texts' words (difflib on lowercased words): the index pairs (i, j) of the words both
    share, in order, and the changes (replaced, inserted, deleted words) between them.

    Every word of either text is in exactly one pair or one change.
    """
    matcher = difflib.SequenceMatcher(None, [w.lower() for w in words_a], [w.lower() for w in words_b],
                                      autojunk=False)
    pairs: list[tuple[int, int]] = []
    changes: list[WordChange] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            pairs.extend(zip(range(i1, i2), range(j1, j2), strict=True))
        else:
            changes.append(WordChange(tag, tuple(words_a[i1:i2]), tuple(words_b[j1:j2]), (i1, i2), (j1, j2)))
    return pairs, changes


def align_words(words_a: list[str], words_b: list[str]) -> list[tuple[int, int]]:
    """Index pairs (i, j) of words the two texts share, in order (`word_diff`).

    Only equal words are paired; a substituted word ("film" vs "movie") is a change, not a pair.
    """
    return word_diff(words_a, words_b)[0]


def _target_key(analysis) -> tuple:
    """What an analysis explains, in terms that mean the same across models: the target kind, the
    explained label, and for zero-shot the labels and prompts, for similarity the reference."""
    spec = analysis.request.target
    prediction = analysis.prediction
    label = prediction.labels[prediction.explained_index].strip().lower() if prediction.labels else ""
    if spec is None:
        return ("", label, prediction.description)
    labels = tuple(s.strip().lower() for s in spec.labels) if spec.kind == "zero_shot" else ()
    prompts = tuple(s.strip() for s in spec.prompts) if spec.kind == "zero_shot" else ()
    reference = spec.reference.strip() if spec.kind == "similarity" else ""
    return (spec.kind, "" if spec.kind == "similarity" else label, labels, prompts, reference)


def target_difference(left, right) -> str:
    """One sentence when two analyses explain different outputs (say a zero-shot P(positive) and a
    classifier's P(pos)), "" when they explain the same one. Contains user text (labels, prompts, the
    reference): escape it for where it is shown."""
    if _target_key(left) == _target_key(right):
        return ""
    first, second = left.prediction.description, right.prediction.description
    if first == second:  # the same labels with other prompts
        first += f" with the prompts «{' | '.join(left.request.target.prompts)}»"
        second += f" with the prompts «{' | '.join(right.request.target.prompts)}»"
    return (f"The targets differ: the first side explains {first or 'its default output'}, the second "
            f"{second or 'its default output'}. Their attributions answer different questions, so the "
            "agreement numbers compare unlike things.")


def _submatrix(word_attn: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Restrict word attention [..., W, W] to the words in `keep` and renormalise the rows."""
    sub = word_attn[..., keep, :][..., :, keep].astype(np.float64)
    sums = sub.sum(-1, keepdims=True)
    n = max(sub.shape[-1], 1)
    return np.where(sums > 0, sub / np.where(sums > 0, sums, 1.0), 1.0 / n)


@dataclass
class Comparison:
    """Two analyses on one word axis: the words both have (`pairs` of word indices), how far their
    attributions agree, the per-layer attention distance, and both rollouts on the shared words.

    For two texts (`texts`), `changes` lists the words that differ, with their scores on each side.
    `target_difference` is a sentence when the two sides explain different outputs, else "".
    """

    pairs: np.ndarray  # int [P, 2]: word index in the left analysis, in the right one
    words: list[str]  # the shared words (left spelling)
    agreement: AttributionAgreement
    layer_distance: np.ndarray  # [left layers], JS distance of head-averaged word attention
    rollout_left: np.ndarray  # [P, P]
    rollout_right: np.ndarray  # [P, P]
    scores_left: np.ndarray  # [P] word attributions on the shared words
    scores_right: np.ndarray  # [P]
    texts: bool = False  # the sides read two different texts
    changes: list[WordChange] = field(default_factory=list)
    target_difference: str = ""

    @property
    def changed_words(self) -> tuple[int, int]:
        """How many words of the first and of the second text are not shared."""
        return (sum(c.span_left[1] - c.span_left[0] for c in self.changes),
                sum(c.span_right[1] - c.span_right[0] for c in self.changes))

    def reading(self) -> str:
        return self.agreement.reading("texts" if self.texts else "models")

    def sanity_check(self) -> SanityVerdict:
        return sanity_check_verdict(self.agreement, self.layer_distance)


def _span_score(scores: np.ndarray, span: tuple[int, int]) -> float:
    start, end = span
    return float(scores[start:end].sum()) if end > start else math.nan


def compare_analyses(left, right, *, k: int = 5) -> Comparison:
    """Bring two analyses (`explain.records.Analysis`) onto their shared words and compare them.

    The same text read by two models shares every word; two texts are aligned by `word_diff`, and
    the words that differ are kept as `changes` with their summed attribution on each side.
    """
    from explain.attention import rollout
    from explain.records import AttentionMaps

    left_scores = np.asarray(left.word_scores, dtype=np.float64)
    right_scores = np.asarray(right.word_scores, dtype=np.float64)
    changes: list[WordChange] = []
    if left.words.words == right.words.words:
        pairs = np.stack([np.arange(len(left.words))] * 2, axis=1).reshape(-1, 2)
    else:
        shared, diff = word_diff(left.words.words, right.words.words)
        pairs = np.array(shared, dtype=np.int64).reshape(-1, 2)
        changes = [WordChange(c.kind, c.words_left, c.words_right, c.span_left, c.span_right,
                              _span_score(left_scores, c.span_left), _span_score(right_scores, c.span_right))
                   for c in diff]
    ia, ib = pairs[:, 0], pairs[:, 1]
    scores_a, scores_b = left_scores[ia], right_scores[ib]
    agreement = attribution_agreement(scores_a, scores_b, k=k)
    wa = word_attention(left.attention.weights, left.words.token_word, len(left.words))
    wb = word_attention(right.attention.weights, right.words.token_word, len(right.words))
    distance = layer_attention_distance(_submatrix(wa.mean(1), ia), _submatrix(wb.mean(1), ib))
    roll_a = rollout(AttentionMaps(weights=left.attention.weights))[None, None]
    roll_b = rollout(AttentionMaps(weights=right.attention.weights))[None, None]
    ra = _submatrix(word_attention(roll_a, left.words.token_word, len(left.words))[0, 0], ia)
    rb = _submatrix(word_attention(roll_b, right.words.token_word, len(right.words))[0, 0], ib)
    return Comparison(
        pairs=pairs,
        words=[left.words.words[i] for i in ia],
        agreement=agreement,
        layer_distance=np.asarray(distance, dtype=np.float32),
        rollout_left=ra.astype(np.float32),
        rollout_right=rb.astype(np.float32),
        scores_left=scores_a.astype(np.float32),
        scores_right=scores_b.astype(np.float32),
        texts=left.request.text != right.request.text,
        changes=changes,
        target_difference=target_difference(left, right),
    )
