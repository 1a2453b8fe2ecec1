"""The dashboard's shared caches: bounded, and one computation per request."""

from __future__ import annotations

import gc
import threading

import pytest

from dashboard.cached import AnalysisCache, FigureCache, ModelCache
from explain import AnalysisRequest, analyze
from explain.viz.attention import attention_grid
from explain.viz.prediction import prediction_figure


def param_bytes(loaded) -> int:
    """The memory a loaded model holds: its parameters and buffers."""
    model = loaded.model
    return sum(t.numel() * t.element_size() for t in [*model.parameters(), *model.buffers()])


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
    assert len(results) == 4 and len({id(r) for r in results}) == 1  # one computation, shared
    assert "done" in calls  # its progress shown to the sessions waiting for it


def test_analysis_cache_evicts_by_bytes(tiny_models):
    loaded = tiny_models["encoder"]
    one = analyze(AnalysisRequest("good", n_steps=2), loaded)
    size = one.attention.weights.nbytes + one.attribution.scores.nbytes + 4096
    cache = AnalysisCache(max_bytes=int(size * 1.5))  # room for one analysis: the older leaves
    cache.compute(AnalysisRequest("good", n_steps=2), loaded)
    cache.compute(AnalysisRequest("bad", n_steps=2), loaded)
    assert len(cache) == 1
    tiny = AnalysisCache(max_bytes=1)  # an analysis larger than the whole budget is shown but never kept
    assert tiny.compute(AnalysisRequest("good", n_steps=2), loaded).request.text == "good" and len(tiny) == 0


def test_figures_are_built_once_per_analysis_and_view_and_die_with_the_analysis(tiny_models):
    loaded = tiny_models["encoder"]
    first = analyze(AnalysisRequest("good film", n_steps=2), loaded)
    second = analyze(AnalysisRequest("bad film", n_steps=2), loaded)
    cache = FigureCache(max_entries=3)
    builds = []

    def grid(result):
        builds.append(result.request.text)
        return attention_grid(result.attention.weights)

    a = cache.get(first, "grid", lambda: grid(first))
    assert cache.get(first, "grid", lambda: grid(first)) is a  # a rerun reuses the figure
    b = cache.get(second, "grid", lambda: grid(second))
    assert b is not a and builds == ["good film", "bad film"]
    ticks = b.layout.yaxis.ticktext
    assert list(ticks) == [f"layer {i}" for i in range(second.model.n_layers)]
    cache.get(first, ("head", 0, 1), lambda: prediction_figure(first.prediction))
    cache.get(first, ("head", 1, 0), lambda: prediction_figure(first.prediction))
    assert len(cache) == 3  # bounded: the oldest entry (first's grid) went
    assert cache.get(second, "grid", lambda: grid(second)) is b
    cache.get(first, "grid", lambda: grid(first))
    assert builds == ["good film", "bad film", "good film"]

    first = None  # the last reference: the analysis goes, and its figures with it
    gc.collect()
    assert len(cache) == 1  # only the second analysis's grid is left
    assert cache.get(second, "grid", lambda: grid(second)) is b


def test_one_folder_written_three_ways_is_one_cache_entry(tiny_dirs, tmp_path, monkeypatch):
    import shutil

    shutil.copytree(tiny_dirs["encoder"], tmp_path / "x")
    monkeypatch.chdir(tmp_path)
    cache = ModelCache(max_models=5, max_bytes=10**9)
    first = cache.get("x")
    assert cache.get("x/") is first and cache.get(".//x") is first and cache.get(str(tmp_path / "x")) is first
    assert len(cache.specs()) == 1


def test_a_model_larger_than_the_whole_bound_is_refused_before_it_loads(tiny_dirs, tiny_models):
    from explain import ModelLoadError

    size = param_bytes(tiny_models["encoder"])
    cache = ModelCache(max_models=5, max_bytes=size - 1)
    with pytest.raises(ModelLoadError, match="more than the .* this server allows for one model"):
        cache.get(tiny_dirs["encoder"])
    assert cache.specs() == [] and cache.total_bytes == 0


def test_room_is_made_before_the_weights_are_read(tiny_dirs, tiny_models, tmp_path):
    """The bound holds while a model loads, not only after: the least recently used model leaves before the
    next one's weights are read (seen here with a load that allocates and is then refused)."""
    import shutil

    from safetensors.torch import load_file, save_file

    from explain import ModelLoadError

    incomplete = shutil.copytree(tiny_dirs["encoder"], tmp_path / "incomplete")
    weights = load_file(incomplete / "model.safetensors")
    del weights["encoder.layer.1.output.dense.weight"]
    save_file(weights, incomplete / "model.safetensors", metadata={"format": "pt"})
    size = param_bytes(tiny_models["encoder"])
    cache = ModelCache(max_models=5, max_bytes=2 * size - 1)
    cache.get(tiny_dirs["encoder"])
    with pytest.raises(ModelLoadError, match="do not cover"):
        cache.get(str(incomplete))
    assert cache.specs() == [] and cache.total_bytes == 0


def test_a_later_visitor_sees_the_canonical_spec_not_the_first_visitors_string(tiny_dirs, tmp_path, monkeypatch):
    """A spec carrying Markdown that resolves to a real folder must not become every later visitor's model name."""
    import shutil

    from explain.models import canonical_spec

    shutil.copytree(tiny_dirs["encoder"], tmp_path / "x")
    monkeypatch.chdir(tmp_path)
    attack = f"{tmp_path}/x/![i](http://127.0.0.1:9/x)/../../.."
    assert canonical_spec(attack) == canonical_spec("x") == str((tmp_path / "x").resolve())
    cache = ModelCache(max_models=5, max_bytes=10**9)
    first = cache.get(attack)
    later = cache.get("x")
    assert first.spec == later.spec == str((tmp_path / "x").resolve())
    assert first.info.spec == later.spec
