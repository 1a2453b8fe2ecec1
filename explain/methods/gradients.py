"""Gradient methods on the word embeddings: saliency, gradient x input, and SmoothGrad over either or over IG.

All three run Captum on the difference d = input - baseline (the model sees
baseline + d), so "input" means the difference from the baseline everywhere:
gradient x input is grad . (x - b), which for a model linear in the embeddings
equals replacing the token by the baseline (occlusion), and IG is the same path
as `explain.methods.quadrature`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from explain.methods.base import (
    AttributionContext,
    Method,
    MethodSettings,
    ProgressCallback,
    RawScores,
    SeededRun,
    register,
    setting,
)
from explain.methods.quadrature import internal_batch_size
from explain.pacing import batch_between_pauses, work_units

SMOOTHED_METHODS = ("saliency", "gradient_x_input", "integrated_gradients")


@dataclass(frozen=True)
class NoSettings(MethodSettings):
    """A method with nothing to set."""


@dataclass(frozen=True)
class SmoothGradSettings(MethodSettings):
    over: str = setting("gradient_x_input", "the gradient method averaged over noisy copies", choices=SMOOTHED_METHODS)
    nt_samples: int = setting(20, "noisy copies averaged", minimum=1, maximum=500)
    noise: float = setting(0.05, "noise per token, as a fraction of the mean norm of the text's word embeddings "
                           "(a noisy copy lies about this far from each token; Smilkov et al. scale to the input's "
                           "range). 0.05 ranks the words of the 20 benchmark sentences alike under two seeds "
                           "(Spearman >= 0.98); 0.1 falls to 0.80 on one, 0.2 to 0.50 (docs/benchmarks.md)",
                           minimum=0.0, maximum=2.0)
    ig_steps: int = setting(16, "integration steps per noisy copy when smoothing integrated gradients",
                            minimum=1, maximum=200)
    seed: int = setting(0, "random seed of the noise", minimum=0, maximum=2**31 - 1)


class DifferenceForward:
    """The explained scores as a function of d = input - baseline, in Captum's forward signature."""

    def __init__(self, context: AttributionContext, baselines: torch.Tensor, progress: ProgressCallback | None = None,
                 total: int = 1) -> None:
        self.context = context
        self.baselines = baselines
        self.progress = progress
        self.total = total
        self.done = 0

    def __call__(self, difference: torch.Tensor) -> torch.Tensor:
        scores = self.context.forward(self.baselines + difference)
        if self.progress is not None:  # `total` rows in all: the fraction of them evaluated
            self.done += difference.shape[0]
            self.progress(min(0.99, self.done / max(self.total, 1)))
        return scores


def difference(context: AttributionContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(input - baseline, baseline) word embeddings, [1, tokens, hidden] each."""
    baselines = context.baseline_embeddings()
    return (context.embeddings() - baselines).detach().requires_grad_(True), baselines


def saliency(context: AttributionContext, settings: NoSettings, progress: ProgressCallback | None) -> RawScores:
    from captum.attr import Saliency  # lazy, as every Captum import here: Captum imports IPython and matplotlib

    d, b = difference(context)
    with torch.enable_grad():
        grads = Saliency(DifferenceForward(context, b)).attribute(d, target=context.target.index, abs=True)
    return RawScores(scores=grads[0].norm(dim=-1).detach().double().cpu().numpy())


def gradient_x_input(context: AttributionContext, settings: NoSettings, progress: ProgressCallback | None
                     ) -> RawScores:
    from captum.attr import InputXGradient

    d, b = difference(context)
    with torch.enable_grad():
        attributions = InputXGradient(DifferenceForward(context, b)).attribute(d, target=context.target.index)
    return RawScores(scores=attributions[0].sum(-1).detach().double().cpu().numpy())


def token_norm(context: AttributionContext) -> float:
    """The mean L2 norm of the text's word embeddings (special tokens left out; 0 for none): SmoothGrad's noise
    scale, as the paper scales its noise to the input's range."""
    words = ~context.special[0]
    inputs = context.embeddings()[0][words]
    return float(inputs.norm(dim=-1).mean()) if inputs.numel() else 0.0


def smoothgrad(context: AttributionContext, settings: SmoothGradSettings, progress: ProgressCallback | None
               ) -> RawScores:
    """Captum's NoiseTunnel ("smoothgrad") over one gradient method, under a fixed seed (the RNG is restored).

    The noisy copies go through the model in batches short enough for the scheduler's pause points
    (`batch_between_pauses`, from the declared cost of one copy); after each pass the run steps aside
    (`SeededRun.reporting`) and reports progress."""
    from captum.attr import InputXGradient, IntegratedGradients, NoiseTunnel, Saliency

    d, b = difference(context)
    per_copy = settings.ig_steps if settings.over == "integrated_gradients" else 1
    n_tokens, hidden = d.shape[1], d.shape[2]
    config = context.target.loaded.config
    stdev = settings.noise * token_norm(context) / hidden**0.5
    extra: dict = {"target": context.target.index}
    batch = max(1, internal_batch_size(n_tokens, settings.nt_samples * per_copy, hidden) // per_copy)
    batch = min(batch, batch_between_pauses(settings.nt_samples, work_units(per_copy, config, n_tokens)))
    if settings.over == "integrated_gradients":  # rows per pass: the batch's copies' steps, within memory and time
        rows = min(internal_batch_size(n_tokens, batch * per_copy, hidden),
                   batch_between_pauses(settings.nt_samples * per_copy, work_units(1, config, n_tokens)))
        extra.update(baselines=torch.zeros_like(d), n_steps=settings.ig_steps, method="gausslegendre",
                     internal_batch_size=max(batch, rows))
    with SeededRun(settings.seed, d.device) as run, torch.enable_grad():
        forward = DifferenceForward(context, b, run.reporting(progress), settings.nt_samples * per_copy)
        inner: Saliency | InputXGradient | IntegratedGradients
        if settings.over == "saliency":
            inner = Saliency(forward)
            extra["abs"] = False
        elif settings.over == "gradient_x_input":
            inner = InputXGradient(forward)
        else:
            inner = IntegratedGradients(forward)
        attributions = NoiseTunnel(inner).attribute(
            d, nt_type="smoothgrad", nt_samples=settings.nt_samples, nt_samples_batch_size=batch,
            stdevs=stdev, **extra)
    if settings.over == "saliency":
        scores = attributions[0].norm(dim=-1)
    else:
        scores = attributions[0].sum(-1)
    return RawScores(scores=scores.detach().double().cpu().numpy())


def smoothgrad_cost(settings: SmoothGradSettings, n_tokens: int, n_words: int) -> float:
    """One gradient per noisy copy, or `ig_steps` of them when smoothing integrated gradients."""
    return float(settings.nt_samples * (settings.ig_steps if settings.over == "integrated_gradients" else 1))


SALIENCY = register(Method(
    name="saliency",
    title="Saliency (gradient norm)",
    summary="L2 norm of the explained score's gradient at each token's word embedding.",
    settings_type=NoSettings,
    compute=saliency,
    signed=False,
    uses_baseline=False,
))
GRADIENT_X_INPUT = register(Method(
    name="gradient_x_input",
    title="Gradient x input",
    summary="Gradient . (embedding - baseline embedding) per token: a one-point linearisation.",
    settings_type=NoSettings,
    compute=gradient_x_input,
))
SMOOTHGRAD = register(Method(
    name="smoothgrad",
    title="SmoothGrad",
    summary="A gradient method averaged over noisy copies of the embeddings (Captum NoiseTunnel).",
    settings_type=SmoothGradSettings,
    compute=smoothgrad,
    cost=smoothgrad_cost,
    signed_for=lambda settings: settings.over != "saliency",
    uses_baseline_for=lambda settings: settings.over != "saliency",
))

