"""What an attribution's convergence delta means for the reader, and whether more steps would shrink it.

The page and the HTML report say the same thing: above `DELTA_WARNING` of the score change the attributions
are approximate, and they advise more integration steps only when the run used every step it was allowed
(fixed steps, or an adaptive run stopped by its cap). An adaptive run that stopped on its own tests would
stop at the same point under a higher cap, so there the delta is stated plainly, with what it checked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from explain.methods import METHODS
from explain.records import (
    DEFAULT_DELTA_TOLERANCE,
    FIXED_INTEGRATION,
    MAX_STEPS,
    Analysis,
    AnalysisRequest,
    TokenAttribution,
)
from explain.targets import default_target

# Past this share of the score change the attributions no longer add up, and the page and the report say so.
DELTA_WARNING = DEFAULT_DELTA_TOLERANCE
IG = "integrated_gradients"


STEP_FACTOR = 4  # a remedy that adds steps multiplies them by this (within MAX_STEPS)


@dataclass(frozen=True)
class Remedy:
    """One action that shrinks the delta: a label for its button and the request fields it sets."""

    label: str
    changes: tuple[tuple[str, object], ...]


@dataclass(frozen=True)
class Completeness:
    """ok: the attributions add up to the score change within `DELTA_WARNING`; more_steps: raising the steps
    (or the cap) would shrink the delta; text: one plain sentence for the reader; remedy: the action that would
    (None where none does)."""

    ok: bool
    more_steps: bool
    text: str
    remedy: Remedy | None = None


def more_steps(request: AnalysisRequest, what: str) -> Remedy | None:
    """Integrate again with STEP_FACTOR times the steps (or the cap), None at MAX_STEPS already."""
    wanted = min(MAX_STEPS, request.n_steps * STEP_FACTOR)
    return Remedy(f"Integrate with {what} {wanted}", (("n_steps", wanted),)) if wanted > request.n_steps else None


def completeness(request: AnalysisRequest, attribution: TokenAttribution) -> Completeness:
    """The verdict on `attribution`'s convergence delta, for the request that produced it."""
    relative = attribution.relative_delta
    if math.isnan(relative):
        return Completeness(True, False, "this method does not promise that its scores add up to the score change")
    if relative <= DELTA_WARNING:
        return Completeness(True, False, "the attributions account for the score change well")
    share = f"the convergence delta is {relative:.0%} of the score change, so the attributions are approximate"
    if attribution.method != IG:
        return Completeness(False, False, f"{share}; this method's scores need not add up to it exactly")
    if attribution.tolerance is None or request.integration == FIXED_INTEGRATION:
        return Completeness(False, True, f"{share}; more integration steps would help (all {attribution.n_steps} "
                                         "fixed steps were used)", more_steps(request, "fixed steps:"))
    if attribution.converged is False:
        return Completeness(False, True, f"{share}; adaptive integration used all {attribution.n_steps} model "
                                         f"evaluations its cap of {request.n_steps} allows, so a higher cap would "
                                         "help", more_steps(request, "a cap of"))
    tighter = Remedy(f"Integrate to a delta within {DELTA_WARNING:.0%}", (("delta_tolerance", DELTA_WARNING),))
    remedy: Remedy | None = tighter
    if request.integration == "adaptive_simpson" and request.delta_tolerance is None:
        checked = ("its token test passed, and this analysis did not check the delta; a higher cap would stop at "
                   "the same point, integrating to a delta tolerance refines further")
    elif request.integration == "adaptive_simpson":
        checked = (f"its tests passed with the delta allowed up to {request.delta_tolerance:.0%} of the score "
                   "change; a higher cap would stop at the same point, a smaller delta tolerance refines further")
    else:
        checked = "the float32 rounding of the scores, not the number of steps, limits the delta"
        remedy = None
    return Completeness(False, False, f"{share}; adaptive integration stopped after {attribution.n_steps} of "
                                      f"{request.n_steps} allowed model evaluations: {checked}", remedy)




# Target kinds whose score is a softmax over cosines (or the cosine itself): a decomposition splits the cosine.
COSINE_KINDS = ("zero_shot", "similarity")


def split_quantity(analysis: Analysis) -> str:
    """What the shown method divides among the tokens when it splits the logit (DecompX): "logit" or "cosine"; ""
    for the other methods, whose scores explain the shown score itself."""
    method = METHODS.get(analysis.attribution.method)
    if method is None or not method.splits_logit:
        return ""
    target = analysis.request.target or default_target(analysis.model.head)
    return "cosine" if target.kind in COSINE_KINDS else "logit"


def split_sentence(analysis: Analysis) -> str:
    """For a logit-splitting method: which number it split and its value (the shown probability is not split)."""
    a = analysis.attribution
    return (f"{METHODS[a.method].title} splits the {split_quantity(analysis)} behind "
            f"{analysis.prediction.description}, {a.score_input:.4g}, exactly among all tokens, special tokens "
            "included (the probability itself is not split)")
