"""The flow contributions shared by every session: equal to the library's, computed once, never refused as one pass."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dashboard.cached import FlowResults
from explain import AnalysisRequest, analyze
from explain.errors import InputError
from explain.flow import flow_matrices
from explain.scheduling import Schedulers, WorkBudget


def analysis_of(loaded, text: str = "the film was good but too long"):
    return analyze(AnalysisRequest(text, model=loaded.spec, method="attention_last"), loaded)


def test_two_sessions_asking_at_once_share_one_computation_equal_to_the_librarys(tiny_models):
    loaded = tiny_models["classification"]
    result = analysis_of(loaded)
    results = FlowResults(schedulers=Schedulers())
    got = []
    threads = [threading.Thread(target=lambda: got.append(results.matrices(result, loaded))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 2 and got[0] is got[1] and len(results) == 1
    np.testing.assert_array_equal(got[0].contributions, flow_matrices(loaded, result).contributions)


def test_one_pass_is_never_refused_and_a_refusal_caches_nothing(tiny_models, tmp_path):
    from explain.models import load_model
    from testkit.families import save_tiny_family

    loaded = tiny_models["classification"]
    results = FlowResults(budget=WorkBudget(max_work=1e-6), schedulers=Schedulers())
    assert results.matrices(analysis_of(loaded), loaded).contributions.shape[0] == 2
    deberta = load_model(str(save_tiny_family(tmp_path / "deberta", "deberta")), device="cpu")
    with pytest.raises(InputError, match="^ALTI needs plain dot-product attention"):
        results.matrices(analysis_of(deberta, "the film was good"), deberta)
    assert len(results) == 1


def test_the_cache_is_bounded_by_bytes(tiny_models):
    loaded = tiny_models["classification"]
    first = analysis_of(loaded)
    size = flow_matrices(loaded, first).nbytes
    results = FlowResults(schedulers=Schedulers(), max_bytes=int(size * 1.5))
    results.matrices(first, loaded)
    results.matrices(analysis_of(loaded, "the film was bad but too long"), loaded)
    assert len(results) == 1
