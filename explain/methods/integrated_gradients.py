"""Integrated gradients, registered like every method; its quadrature engine is `explain.methods.quadrature`."""

from __future__ import annotations

from dataclasses import dataclass

from explain.methods.base import (
    AttributionContext,
    Method,
    MethodSettings,
    ProgressCallback,
    Quadrature,
    RawScores,
    register,
    setting,
)
from explain.methods.quadrature import ADAPTIVE_START_INTERVALS, PRECISIONS, SIMPSON_TOLERANCE, integrated_gradients
from explain.records import (
    DEFAULT_DELTA_TOLERANCE,
    DEFAULT_INTEGRATION,
    DEFAULT_STEPS,
    INTEGRATIONS,
    MAX_STEPS,
    MIN_STEPS,
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
                     score_baseline=result.score_baseline,
                     quadrature=Quadrature(evaluations=result.n_steps, precision=result.precision,
                                           tolerance=result.tolerance, converged=result.converged))


def ig_cost(settings: IntegratedGradientsSettings, n_tokens: int, n_words: int) -> float:
    """The most gradient evaluations the rule may make: the cap for adaptive Simpson and fixed steps, and for
    Clenshaw-Curtis the largest whole level within the cap (levels of 2, 3, 5, then 9, 17, 33, ... points)."""
    n_steps = int(settings.n_steps)
    if settings.integration != "clenshaw_curtis":
        return float(n_steps)
    points = [n + 1 for n in (1, 2, 4) if n + 1 <= n_steps]
    n = ADAPTIVE_START_INTERVALS
    while n + 1 <= n_steps:
        points.append(n + 1)
        n *= 2
    return float(max(points, default=n_steps))


INTEGRATED_GRADIENTS = register(Method(
    name="integrated_gradients",
    title="Integrated gradients",
    summary="Gradients integrated along the straight path from the baseline's embeddings to the input's; "
            "the scores sum to the score change, up to the reported delta.",
    settings_type=IntegratedGradientsSettings,
    compute=attribute_ig,
    complete=True,
    cost=ig_cost,
    request_fields=("n_steps", "tolerance", "precision", "integration", "delta_tolerance"),
))
