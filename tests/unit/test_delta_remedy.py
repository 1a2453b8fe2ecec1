"""The delta warning's advice is an action that works: each remedy, applied to the request, shrinks the delta."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from explain import AnalysisRequest, analyze
from explain.completeness import DELTA_WARNING, completeness
from explain.records import TokenAttribution


def attribution(relative: float, *, n_steps: int, converged: bool | None, tolerance: float | None = 0.015
                ) -> TokenAttribution:
    return TokenAttribution(scores=np.array([0.0, 1.0 + relative], np.float32), score_input=1.0, score_baseline=0.0,
                            delta=relative, n_steps=n_steps, baseline="pad", tolerance=tolerance,
                            converged=converged, method="integrated_gradients")


def test_each_verdict_offers_the_action_its_text_names():
    capped = completeness(AnalysisRequest("x", n_steps=50), attribution(0.1, n_steps=49, converged=False))
    assert capped.remedy is not None and dict(capped.remedy.changes) == {"n_steps": 200}
    assert "cap" in capped.remedy.label and "higher cap would help" in capped.text
    settled = completeness(AnalysisRequest("x", n_steps=50, delta_tolerance=None),
                           attribution(0.1, n_steps=13, converged=True))
    assert settled.remedy is not None and dict(settled.remedy.changes) == {"delta_tolerance": DELTA_WARNING}
    assert "higher cap would stop at the same point" in settled.text  # the cap is not offered where it cannot help
    loose = completeness(AnalysisRequest("x", delta_tolerance=0.3), attribution(0.2, n_steps=13, converged=True))
    assert loose.remedy is not None and dict(loose.remedy.changes) == {"delta_tolerance": DELTA_WARNING}
    fixed = completeness(AnalysisRequest("x", n_steps=8, integration="gauss_legendre"),
                         attribution(0.1, n_steps=8, converged=None, tolerance=None))
    assert fixed.remedy is not None and dict(fixed.remedy.changes) == {"n_steps": 32}
    at_most = completeness(AnalysisRequest("x", n_steps=1000, integration="gauss_legendre"),
                           attribution(0.1, n_steps=1000, converged=None, tolerance=None))
    assert at_most.remedy is None
    assert completeness(AnalysisRequest("x"), attribution(0.01, n_steps=13, converged=True)).remedy is None


def test_the_remedy_shrinks_the_delta_on_a_real_model(tiny_models):
    loaded = tiny_models["classification"]
    request = AnalysisRequest("good", n_steps=1, integration="gauss_legendre", delta_tolerance=None)
    first = analyze(request, loaded)
    verdict = completeness(request, first.attribution)
    assert not verdict.ok and verdict.remedy is not None
    second = analyze(replace(request, **dict(verdict.remedy.changes)), loaded)
    assert abs(second.attribution.delta) < abs(first.attribution.delta)
