"""Plain-text descriptions of results that the CLI, the report and the dashboard share."""

from __future__ import annotations

from explain.records import FIXED_INTEGRATION, AnalysisRequest, TokenAttribution


def evaluations_text(request: AnalysisRequest, attribution: TokenAttribution) -> str:
    """How many model evaluations integrated gradients made, and under which rule ("50 steps", or
    "23 model evaluations (adaptive simpson, at most 50)")."""
    if request.integration == FIXED_INTEGRATION or attribution.tolerance is None:
        return f"{attribution.n_steps} steps"
    return (f"{attribution.n_steps} model evaluations ({request.integration.replace('_', ' ')}, "
            f"at most {request.n_steps})")
