"""The heads page's cache: results equal the library's, computed once, and refused over the work budget."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dashboard.cached import HeadResultCache
from explain import TargetSpec
from explain.heads import head_importance, neuron_view, prepare_inputs, pruning_curve
from explain.records import HeadsRequest
from explain.scheduling import Schedulers, WorkBudget, WorkBudgetError

TEXT = "the film was good but too long"
TARGET = TargetSpec("class", label="positive")


def request_for(loaded, text: str = TEXT) -> HeadsRequest:
    return HeadsRequest(spec=loaded.spec, text=text, target=TARGET, max_tokens=128)


def test_results_are_the_librarys_and_are_computed_once(tiny_models):
    loaded = tiny_models["classification"]
    cache = HeadResultCache(schedulers=Schedulers())
    request = request_for(loaded)
    stages: list[tuple[str, float | None]] = []
    inputs = cache.inputs(request, loaded)
    importance = cache.importance(request, loaded, inputs, lambda stage, fraction: stages.append((stage, fraction)))
    assert stages and stages[-1][1] == 1.0
    expected = head_importance(loaded, prepare_inputs(loaded, TEXT, TARGET, 128))
    assert np.array_equal(importance.gradient, expected.gradient)
    assert np.array_equal(importance.ablation_effect, expected.ablation_effect)
    assert cache.inputs(request, loaded) is inputs and cache.importance(request, loaded, inputs) is importance
    curve = cache.pruning(request, loaded, inputs, importance, "confidence", "most")
    direct = pruning_curve(loaded, inputs, expected.map("confidence"), importance_name="confidence", order="most",
                           n_random=3, n_points=49)
    assert np.allclose(curve.scores, direct.scores) and np.allclose(curve.random_scores, direct.random_scores)
    view = cache.neuron(request, loaded, inputs, 1, 2, 3)
    assert np.array_equal(view.attention, neuron_view(loaded, inputs, 1, 2, 3).attention)
    assert cache.neuron(request, loaded, inputs, 1, 2, 3) is view


def test_two_sessions_asking_at_once_share_one_computation(tiny_models):
    loaded = tiny_models["classification"]
    cache = HeadResultCache(schedulers=Schedulers())
    request = request_for(loaded, "the service was slow but the food was great")
    inputs = cache.inputs(request, loaded)
    results = []
    threads = [threading.Thread(target=lambda: results.append(cache.importance(request, loaded, inputs)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2 and results[0] is results[1]


def test_over_the_work_budget_is_one_sentence_and_nothing_is_computed(tiny_models):
    loaded = tiny_models["classification"]
    cache = HeadResultCache(budget=WorkBudget(max_work=1e-6), schedulers=Schedulers())
    request = request_for(loaded)
    inputs = cache.inputs(request, loaded)
    with pytest.raises(WorkBudgetError) as caught:
        cache.importance(request, loaded, inputs)
    message = str(caught.value)
    assert message.startswith("Ranking the heads needs about") and message.count(". ") == 0
    assert "shorter text" in message
    assert len(cache) == 1  # only the tokenised inputs
