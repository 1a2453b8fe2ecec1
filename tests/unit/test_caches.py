"""The dashboard's shared caches: bounded, and one computation per request."""

from __future__ import annotations

import threading

import pytest

from dashboard.cached import AnalysisCache, ModelCache
from explain import AnalysisRequest


def param_bytes(loaded) -> int:
    return sum(p.numel() * p.element_size() for p in loaded.model.parameters())


def test_model_cache_is_bounded_by_count_and_memory(tiny_dirs, tiny_models):
    cache = ModelCache(max_models=2, max_bytes=10**9)
    a = cache.get(tiny_dirs["encoder"])
    assert cache.get(tiny_dirs["encoder"]) is a
    cache.get(tiny_dirs["classification"])
    cache.get(tiny_dirs["masked_lm"])
    assert cache.specs() == [tiny_dirs["classification"], tiny_dirs["masked_lm"]]
    both = param_bytes(tiny_models["encoder"]) + param_bytes(tiny_models["encoder_alt"])
    small = ModelCache(max_models=5, max_bytes=both - 1)
    small.get(tiny_dirs["encoder"])
    small.get(tiny_dirs["encoder_alt"])
    assert small.specs() == [tiny_dirs["encoder_alt"]]
    roomy = ModelCache(max_models=5, max_bytes=both)
    roomy.get(tiny_dirs["encoder"])
    roomy.get(tiny_dirs["encoder_alt"])
    assert len(roomy.specs()) == 2 and roomy.total_bytes == both


def test_failed_loads_are_not_cached(tmp_path):
    from explain import ModelLoadError

    cache = ModelCache()
    with pytest.raises(ModelLoadError):
        cache.get(str(tmp_path / "missing"))
    assert cache.specs() == []


def test_same_request_from_many_sessions_is_computed_once(tiny_models):
    cache = AnalysisCache()
    loaded = tiny_models["encoder"]
    calls = []
    request = AnalysisRequest("the food was great", n_steps=20)
    results = []

    def session():
        results.append(cache.compute(request, loaded, progress=lambda s, f: calls.append(s)))

    threads = [threading.Thread(target=session) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(r) for r in results}) == 1
    assert calls.count("done") == 1


def test_analysis_cache_evicts_by_bytes(tiny_models):
    loaded = tiny_models["encoder"]
    cache = AnalysisCache(max_bytes=1)
    cache.compute(AnalysisRequest("good", n_steps=2), loaded)
    cache.compute(AnalysisRequest("bad", n_steps=2), loaded)
    assert len(cache) == 1
