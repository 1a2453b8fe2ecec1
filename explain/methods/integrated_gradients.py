"""Integrated gradients through the project's one integration engine (`explain.attribution`)."""

from __future__ import annotations

from dataclasses import dataclass

from explain.analysis import (
    DEFAULT_DELTA_TOLERANCE,
    DEFAULT_INTEGRATION,
    DEFAULT_STEPS,
    INTEGRATIONS,
    MAX_STEPS,
    MIN_STEPS,
)
from explain.attribution import PRECISIONS, SIMPSON_TOLERANCE, integrated_gradients
from explain.methods.base import (
    AttributionContext,
    Method,
    MethodSettings,
    ProgressCallback,
    RawScores,
    register,
    setting,
)


@dataclass(frozen=True)
class IntegratedGradientsSettings(MethodSettings):
    n_steps: int = setting(DEFAULT_STEPS, "adaptive rules: at most this many model evaluations; gauss_legendre: "
                           "this many fixed steps", minimum=MIN_STEPS, maximum=MAX_STEPS)
    tolerance: float = setting(0.0, f"adaptive_simpson: the largest token error allowed, as a fraction of the "
                               f"largest token attribution (0: {SIMPSON_TOLERANCE:g}); clenshaw_curtis (needs one): "
                               "stop when |delta| is within this fraction of the score change; gauss_legendre: 0",
                               minimum=0.0, maximum=1.0)
    precision: str = setting("fp32", "arithmetic of the model's passes", choices=PRECISIONS)
    integration: str = setting(DEFAULT_INTEGRATION, "quadrature rule: adaptive Simpson panels that stop when the "
                               "attributions settle, fixed Gauss-Legendre steps, or Clenshaw-Curtis levels that "
                               "stop on the convergence delta", choices=INTEGRATIONS)
    delta_tolerance: float = setting(DEFAULT_DELTA_TOLERANCE, "adaptive_simpson: also keep refining until |delta| "
                                     "is within this fraction of the score change, or the cap is reached (0: check "
                                     "only the tokens' estimated errors)", minimum=0.0, maximum=1.0)


def attribute_ig(context: AttributionContext, settings: IntegratedGradientsSettings,
                 progress: ProgressCallback | None) -> RawScores:
    result = integrated_gradients(
        context.target,
        context.input_ids,
        context.attention_mask,
        context.special,
        token_type_ids=context.token_type_ids,
        position_ids=context.position_ids,
        n_steps=settings.n_steps,
        baseline=context.baseline,
        progress=progress,
        tolerance=settings.tolerance or None,
        precision=settings.precision,
        method=settings.integration,
        delta_tolerance=settings.delta_tolerance or None,
    )
    return RawScores(scores=result.scores, delta=result.delta, score_input=result.score_input,
                     score_baseline=result.score_baseline)


INTEGRATED_GRADIENTS = register(Method(
    name="integrated_gradients",
    title="Integrated gradients",
    summary="Gradients integrated along the straight path from the baseline's embeddings to the input's; "
            "the scores sum to the score change, up to the reported delta.",
    settings_type=IntegratedGradientsSettings,
    compute=attribute_ig,
    complete=True,
))
