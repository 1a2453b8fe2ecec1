"""Perturbation methods over words: leave-one-word-out (occlusion), LIME and KernelSHAP.

A word is removed by replacing each of its tokens by the baseline's embedding
([PAD], [MASK] or a zero vector), so these methods and integrated gradients
compare the input with the same reference. Word scores are shared equally by the
word's tokens, so word sums give them back exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from explain.errors import InputError
from explain.methods.base import (
    FORWARD_PASS,
    AttributionContext,
    Method,
    MethodSettings,
    ProgressCallback,
    RawScores,
    SeededRun,
    register,
    setting,
    spread_over_tokens,
)
from explain.methods.gradients import NoSettings
from explain.methods.scoring import variants_per_pass, word_scorer
from explain.pacing import batch_between_pauses, work_units


@dataclass(frozen=True)
class SamplingSettings(MethodSettings):
    n_samples: int = setting(200, "perturbed inputs evaluated (each keeps a random subset of the words)",
                             minimum=8, maximum=5000)
    seed: int = setting(0, "random seed of the sampled subsets", minimum=0, maximum=2**31 - 1)


def leave_one_word_out(context: AttributionContext, progress: ProgressCallback | None = None
                       ) -> tuple[np.ndarray, float]:
    """Score drop when each word alone is replaced by the baseline, float64 [words], and the input's score."""
    keep = ~np.eye(context.n_words, dtype=bool)
    scores = word_scorer(context, "replace", progress)(np.vstack([np.ones((1, context.n_words), dtype=bool), keep]))
    return scores[0] - scores[1:], float(scores[0])


def occlusion(context: AttributionContext, settings: NoSettings, progress: ProgressCallback | None) -> RawScores:
    drops, _ = leave_one_word_out(context, progress)
    return RawScores(scores=spread_over_tokens(drops, context.token_word))


def word_feature_mask(context: AttributionContext) -> torch.Tensor:
    """Captum feature groups [1, tokens, 1]: each token's word; special tokens join the first word.

    Special tokens keep their embeddings in the baseline, so perturbing them with a word changes
    nothing; a group of their own would be a dummy feature whose noisy coefficient KernelSHAP's
    completeness would have to share.
    """
    if context.n_words < 1:
        raise InputError("LIME and KernelSHAP need at least one word in the text.")
    groups = np.where(context.token_word >= 0, context.token_word, 0)
    return torch.as_tensor(groups, dtype=torch.long, device=context.input_ids.device).view(1, -1, 1)


def sampled(context: AttributionContext, settings: SamplingSettings, progress: ProgressCallback | None,
            surrogate: Literal["lime", "kernel_shap"]) -> RawScores:
    """Word coefficients of a surrogate linear model fitted by Captum, under a fixed seed (the RNG is restored).

    The samples go through the model in batches short enough for the scheduler's pause points
    (`batch_between_pauses`); after each the run steps aside (`SeededRun.reporting`) and reports progress."""
    from captum._utils.models.linear_model import SkLearnRidge  # lazy: Captum imports IPython and matplotlib
    from captum.attr import KernelShap, Lime

    inputs = context.embeddings()
    baselines = context.baseline_embeddings()
    n_tokens, hidden = inputs.shape[1], inputs.shape[2]
    per_eval = min(variants_per_pass(n_tokens, hidden), batch_between_pauses(
        settings.n_samples, work_units(FORWARD_PASS, context.target.loaded.config, n_tokens)))
    mask = word_feature_mask(context).expand_as(inputs)
    with SeededRun(settings.seed, inputs.device) as run, torch.no_grad():
        report = run.reporting(progress)
        done = [0]

        def forward(embeds: torch.Tensor) -> torch.Tensor:
            scores = context.forward(embeds)
            done[0] += embeds.shape[0]
            report(min(0.99, done[0] / settings.n_samples))
            return scores

        if surrogate == "lime":
            # Captum's default (Lasso, alpha 0.01) zeroes most coefficients of probability-sized effects;
            # ridge with alpha 1 is what the original LIME package fits.
            explainer: Lime | KernelShap = Lime(forward, interpretable_model=SkLearnRidge(alpha=1.0))
        else:
            explainer = KernelShap(forward)
        coefficients = explainer.attribute(
            inputs, baselines=baselines, target=context.target.index, feature_mask=mask,
            n_samples=settings.n_samples, return_input_shape=False, perturbations_per_eval=per_eval,
        )
    words = coefficients.reshape(-1)[: context.n_words].double().cpu().numpy()
    return RawScores(scores=spread_over_tokens(words, context.token_word))


def lime(context: AttributionContext, settings: SamplingSettings, progress: ProgressCallback | None) -> RawScores:
    return sampled(context, settings, progress, "lime")


def kernel_shap(context: AttributionContext, settings: SamplingSettings, progress: ProgressCallback | None
                ) -> RawScores:
    return sampled(context, settings, progress, "kernel_shap")


def occlusion_cost(settings: NoSettings, n_tokens: int, n_words: int) -> float:
    """One forward pass per word, without gradients."""
    return FORWARD_PASS * n_words


def sampling_cost(settings: SamplingSettings, n_tokens: int, n_words: int) -> float:
    """One forward pass per sampled input, without gradients (the surrogate fit is negligible beside them)."""
    return FORWARD_PASS * settings.n_samples


OCCLUSION = register(Method(
    name="occlusion",
    title="Leave one word out",
    summary="The score drop when one word is replaced by the baseline token, word by word, in batched passes.",
    settings_type=NoSettings,
    compute=occlusion,
    cost=occlusion_cost,
))
LIME = register(Method(
    name="lime",
    title="LIME (words)",
    summary="Coefficients of a ridge model fitted to the scores of inputs with random words replaced "
            "by the baseline, weighted by closeness to the input (Captum's Lime).",
    settings_type=SamplingSettings,
    compute=lime,
    cost=sampling_cost,
))
KERNEL_SHAP = register(Method(
    name="kernel_shap",
    title="KernelSHAP (words)",
    summary="Shapley values of the words, estimated from random coalitions under the Shapley kernel "
            "(Captum's KernelShap); they sum to about the score change from the baseline.",
    settings_type=SamplingSettings,
    compute=kernel_shap,
    cost=sampling_cost,
    complete=True,
))
