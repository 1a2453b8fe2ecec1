"""Plain-text descriptions of results that the CLI, the report and the dashboard share."""

from __future__ import annotations

from explain.methods import METHODS
from explain.records import FIXED_INTEGRATION, Analysis, AnalysisRequest, TokenAttribution


def evaluations_text(request: AnalysisRequest, attribution: TokenAttribution) -> str:
    """How many model evaluations integrated gradients made, and under which rule ("50 steps", or
    "23 model evaluations (adaptive simpson, at most 50)")."""
    if request.integration == FIXED_INTEGRATION or attribution.tolerance is None:
        return f"{attribution.n_steps} steps"
    return (f"{attribution.n_steps} model evaluations ({request.integration.replace('_', ' ')}, "
            f"at most {request.n_steps})")


def analysis_details(analysis: Analysis) -> str:
    """What tells apart analyses of one text: the method, the explained score and the heads removed
    ("LIME (words) · explains P(positive) from the classification head · without heads 0:1")."""
    method = METHODS.get(analysis.attribution.method)
    parts = [method.title if method is not None else analysis.attribution.method.replace("_", " "),
             f"explains {analysis.prediction.description}"]
    ablate = analysis.request.ablate
    parts.append(f"without heads {ablate}" + (f" (outputs set to {analysis.request.ablate_mode})"
                                              if analysis.request.ablate_mode != "zero" else "")
                 if ablate else "all heads")
    return " · ".join(parts)


def analyses_details(analyses: list[Analysis]) -> str:
    """`analysis_details` of each analysis of a document; once when they are the same."""
    details = list(dict.fromkeys(analysis_details(a) for a in analyses))
    return details[0] if len(details) == 1 else " | ".join(f"{side}: {d}" for side, d in zip(("first", "second"),
                                                                                               details))

