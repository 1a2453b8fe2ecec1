"""The methods page's per-method cache: one entry per method and its own settings, bounded, budget-checked."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dashboard.cached import MethodResultCache
from explain import AnalysisRequest
from explain.methods.base import request_for_method
from explain.pipeline import explain_method
from explain.scheduling import Schedulers, WorkBudget, WorkBudgetError

TEXT = "the film was good but far too long"


def cache(max_work: float = math.inf, max_entries: int = 64) -> MethodResultCache:
    return MethodResultCache(max_entries=max_entries, budget=WorkBudget(max_work=max_work, rate=2000.0),
                             schedulers=Schedulers())


def test_a_method_is_computed_once_and_matches_the_pipeline(tiny_models):
    loaded = tiny_models["classification"]
    methods = cache()
    request = AnalysisRequest(TEXT, model="tiny", n_steps=4)
    fractions: list[float] = []
    first = methods.compute(request, loaded, "occlusion", progress=fractions.append, session="s")
    assert methods.compute(request, loaded, "occlusion", session="s") is first and len(methods) == 1
    assert fractions and fractions[-1] == 1.0
    direct = explain_method(request, loaded, "occlusion")
    np.testing.assert_allclose(first.word_scores, direct.word_scores, rtol=1e-5, atol=1e-7)


def test_one_methods_settings_leave_the_others_cached(tiny_models):
    loaded = tiny_models["classification"]
    methods = cache()
    base = AnalysisRequest(TEXT, model="tiny", n_steps=4)
    tuned = AnalysisRequest(TEXT, model="tiny", n_steps=8, method="lime",
                            method_settings=(("lime.n_samples", "16"),))
    assert methods.key(base, loaded.spec, "occlusion") == methods.key(tuned, loaded.spec, "occlusion")
    assert methods.key(base, loaded.spec, "lime") != methods.key(tuned, loaded.spec, "lime")
    assert methods.key(base, loaded.spec, "integrated_gradients") != methods.key(tuned, loaded.spec,
                                                                                 "integrated_gradients")
    assert request_for_method(tuned, "lime").method_settings == (("lime.n_samples", "16"),)
    assert request_for_method(tuned, "kernel_shap").method_settings == ()


def test_the_cache_is_bounded(tiny_models):
    loaded = tiny_models["classification"]
    methods = cache(max_entries=2)
    request = AnalysisRequest(TEXT, model="tiny", n_steps=4)
    for name in ("saliency", "gradient_x_input", "attention_last"):
        methods.compute(request, loaded, name, session="s")
    assert len(methods) == 2
    assert methods.get(methods.key(request, loaded.spec, "saliency")) is None


def test_a_method_over_the_budget_is_refused_with_its_name_and_others_still_run(tiny_models):
    loaded = tiny_models["classification"]
    request = AnalysisRequest(TEXT, model="tiny", n_steps=4, method_settings=(("lime.n_samples", "5000"),))
    methods = cache()
    one_pass = methods.estimate(request, loaded, "saliency")
    tight = cache(max_work=one_pass * 50)
    with pytest.raises(WorkBudgetError, match=r"^LIME \(words\) needs about .* s of computation"):
        tight.compute(request, loaded, "lime", session="s")
    assert len(tight) == 0
    tight.compute(request, loaded, "saliency", session="s")
    assert len(tight) == 1


def test_faithfulness_is_cached_per_removal_mode(tiny_models):
    loaded = tiny_models["classification"]
    methods = cache()
    request = AnalysisRequest(TEXT, model="tiny", n_steps=4)
    results = {n: methods.compute(request, loaded, n, session="s") for n in ("occlusion", "saliency")}
    scored, summary = methods.faithfulness(request, loaded, results, "replace", session="s")
    assert methods.faithfulness(request, loaded, results, "replace", session="s")[1] is summary
    assert summary.removal == "replace" and set(scored) == {"occlusion", "saliency"}
    assert scored["occlusion"].loo_spearman == pytest.approx(1.0)
    removed = methods.faithfulness(request, loaded, results, "remove", session="s")[1]
    assert removed.removal == "remove" and removed is not summary
