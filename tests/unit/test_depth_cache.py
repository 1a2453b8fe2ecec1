"""The depth results shared by every session: equal to the library's, computed once, refused over the budget."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dashboard.cached import DepthResults
from explain import AnalysisRequest, analyze
from explain.pipeline import with_depth
from explain.scheduling import Schedulers, WorkBudget, WorkBudgetError


def analysis_of(loaded, text: str = "the film was good but too long"):
    return analyze(AnalysisRequest(text, model=loaded.spec, n_steps=4, integration="gauss_legendre"), loaded)


def test_two_sessions_asking_at_once_share_one_computation_equal_to_the_librarys(tiny_models):
    loaded = tiny_models["classification"]
    result = analysis_of(loaded)
    results = DepthResults(schedulers=Schedulers())
    stages: list[tuple[str, float | None]] = []
    got = []
    threads = [threading.Thread(target=lambda: got.append(results.with_depth(
        result, loaded, lambda stage, fraction: stages.append((stage, fraction))))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 2 and got[0] is got[1] and len(results) == 1
    fractions = [f for _, f in stages if f is not None]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)  # one bar across both parts
    direct = with_depth(loaded, result)
    np.testing.assert_allclose(got[0].layer_attribution.scores, direct.layer_attribution.scores, rtol=1e-5,
                               atol=1e-7)
    np.testing.assert_allclose(got[0].embedding_parts.scores, direct.embedding_parts.scores, rtol=1e-5, atol=1e-7)


def test_over_the_work_budget_is_one_sentence_and_nothing_is_computed(tiny_models):
    loaded = tiny_models["classification"]
    results = DepthResults(budget=WorkBudget(max_work=1e-6), schedulers=Schedulers())
    with pytest.raises(WorkBudgetError) as caught:
        results.with_depth(analysis_of(loaded), loaded)
    message = str(caught.value)
    assert message.startswith("Splitting the score over the embeddings") and message.count(". ") == 0
    assert len(results) == 0
