"""Agreement between two models' explanations of the same words.

Words come from the text, not from a tokenizer, so two models reading the same
text share one word axis: token attributions and token attention are brought onto
it (`explain.words.word_sums`, `word_attention`) and compared there. For two
different texts, `align_words` pairs the words the texts have in common.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

import numpy as np
from scipy.spatial.distance import jensenshannon
from scipy.stats import kendalltau, spearmanr

from explain.errors import InputError

# reading(): Spearman rho >= STRONG is "strong", >= MODERATE "moderate", <= -MODERATE "they disagree",
# anything in between "little agreement".
STRONG = 0.8
MODERATE = 0.5

# sanity_check_verdict(): a randomised model should give a different explanation, i.e.
# |Spearman| below SANITY_MAX_ABS_SPEARMAN and a mean attention JS distance above SANITY_MIN_DISTANCE.
SANITY_MAX_ABS_SPEARMAN = 0.5
SANITY_MIN_DISTANCE = 0.1
SANITY_P_VALUE = 0.05


@dataclass
class AttributionAgreement:
    """How far two word attributions agree.

    spearman/kendall: rank correlations of the signed scores (nan when a vector is
    constant or there are fewer than 2 words). top_k_overlap: share of the top_k
    words by |score| that both have in their top_k (ties broken by word order).
    sign_agreement: share of the words scored nonzero by both whose signs match
    (nan when there are none).
    """

    spearman: float
    kendall: float
    top_k: int
    top_k_overlap: float
    sign_agreement: float
    n_words: int
    spearman_p: float = math.nan  # two-sided p-value of the Spearman correlation

    def reading(self) -> str:
        """One plain-language sentence about the agreement (thresholds: STRONG, MODERATE)."""
        if self.n_words < 2:
            return "Too few words to compare: rankings need at least two words."
        if math.isnan(self.spearman):
            return "No rank correlation can be computed: one model gives every word the same score."
        rho = self.spearman
        shared = f"; {round(self.top_k_overlap * self.top_k)} of the top {self.top_k} words shared"
        numbers = f"(Spearman {rho:.2f}{shared})"
        if rho >= STRONG:
            return f"Strong agreement: both models rank the words almost the same way {numbers}."
        if rho >= MODERATE:
            return f"Moderate agreement: the models rank the words in a broadly similar order {numbers}."
        if rho > -MODERATE:
            return f"Little agreement: the two models' word rankings are mostly unrelated {numbers}."
        return f"They disagree: words one model ranks high, the other tends to rank low {numbers}."


def _scores(values: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise InputError(f"The {name} scores must be one number per word, not an array of shape {arr.shape}.")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"The {name} scores contain NaN or infinite values, so they cannot be compared.")
    return arr


def attribution_agreement(scores_a: np.ndarray, scores_b: np.ndarray, *, k: int = 5) -> AttributionAgreement:
    """Rank correlation, top-k overlap and sign agreement of two word attributions on the same words."""
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
        rank = spearmanr(a, b)
        spearman, p_value = float(rank.statistic), float(rank.pvalue)
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
    rows = jensenshannon(a, b, axis=-1, base=2)  # [La, W]
    # rounding can leave a tiny negative divergence under the square root for near-identical rows
    return np.nan_to_num(rows, nan=0.0).mean(-1)


def sanity_check_verdict(agreement: AttributionAgreement, layer_distances: np.ndarray) -> tuple[bool, str]:
    """Trained-vs-randomised check: passes when the explanations disagree, with one sentence why.

    Passes when the rankings differ — |Spearman| < SANITY_MAX_ABS_SPEARMAN (0.5), or
    a correlation that is not significant (p >= SANITY_P_VALUE) since a handful
    of words correlate by chance — and the mean attention JS distance >
    SANITY_MIN_DISTANCE (0.1): an explanation that survives randomising the
    weights does not reflect what the model learned.
    """
    distance = float(np.nanmean(layer_distances)) if np.size(layer_distances) else math.nan
    rho = agreement.spearman
    if math.isnan(rho) or math.isnan(distance):
        return False, (
            "The check is inconclusive: the attributions or attention maps could not be compared "
            "(a constant score vector or too few words)."
        )
    p_value = agreement.spearman_p
    ranks_differ = abs(rho) < SANITY_MAX_ABS_SPEARMAN or (not math.isnan(p_value) and p_value >= SANITY_P_VALUE)
    attention_differs = distance > SANITY_MIN_DISTANCE
    p_text = "" if math.isnan(p_value) else f", p = {p_value:.2f}"
    numbers = f"(Spearman {rho:.2f}{p_text}, mean attention distance {distance:.2f})"
    if ranks_differ and attention_differs:
        return True, (
            f"Passed: the randomised model explains the text differently {numbers}, "
            "so the explanation depends on what the trained model learned."
        )
    if not ranks_differ and not attention_differs:
        problem = "ranks the words and spreads its attention much like the trained one"
    elif not ranks_differ:
        problem = "ranks the words much like the trained one"
    else:
        problem = "spreads its attention much like the trained one"
    return False, (
        f"Failed: the randomised model {problem} {numbers}, "
        "so this explanation may reflect the input or the architecture more than what the model learned."
    )


def align_words(words_a: list[str], words_b: list[str]) -> list[tuple[int, int]]:
    """Index pairs (i, j) of words the two texts share, in order (difflib on lowercased words).

    Only equal words are paired; a substituted word ("film" vs "movie") is left unpaired.
    """
    matcher = difflib.SequenceMatcher(None, [w.lower() for w in words_a], [w.lower() for w in words_b],
                                      autojunk=False)
    return [(block.a + d, block.b + d) for block in matcher.get_matching_blocks() for d in range(block.size)]


def _submatrix(word_attn: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Restrict word attention [..., W, W] to the words in `keep` and renormalise the rows."""
    sub = word_attn[..., keep, :][..., :, keep].astype(np.float64)
    sums = sub.sum(-1, keepdims=True)
    n = max(sub.shape[-1], 1)
    return np.where(sums > 0, sub / np.where(sums > 0, sums, 1.0), 1.0 / n)


@dataclass
class Comparison:
    """Two analyses on one word axis: the words both have (`pairs` of word indices), how far their
    attributions agree, the per-layer attention distance, and both rollouts on the shared words."""

    pairs: np.ndarray  # int [P, 2]: word index in the left analysis, in the right one
    words: list[str]  # the shared words (left spelling)
    agreement: AttributionAgreement
    layer_distance: np.ndarray  # [left layers], JS distance of head-averaged word attention
    rollout_left: np.ndarray  # [P, P]
    rollout_right: np.ndarray  # [P, P]
    scores_left: np.ndarray  # [P] word attributions on the shared words
    scores_right: np.ndarray  # [P]

    def sanity_check(self) -> tuple[bool, str]:
        return sanity_check_verdict(self.agreement, self.layer_distance)


def compare_analyses(left, right, *, k: int = 5) -> Comparison:
    """Bring two analyses (`explain.analysis.Analysis`) onto their shared words and compare them.

    The same text read by two models shares every word; two texts share the words
    `align_words` pairs.
    """
    from explain.analysis import AttentionMaps
    from explain.attention import rollout

    if left.words.words == right.words.words:
        pairs = np.stack([np.arange(len(left.words))] * 2, axis=1).reshape(-1, 2)
    else:
        pairs = np.array(align_words(left.words.words, right.words.words), dtype=np.int64).reshape(-1, 2)
    ia, ib = pairs[:, 0], pairs[:, 1]
    scores_a = np.asarray(left.word_scores, dtype=np.float64)[ia]
    scores_b = np.asarray(right.word_scores, dtype=np.float64)[ib]
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
    )
