"""Light work does not wait out heavy work: every heavy kind reaches a pause point after each short batch.

Real threads on tiny models: a heavy piece runs in its scheduled turn, a light analysis arrives while it runs, and
the light one must finish while the heavy one still has batches to go (a progress report below 1 after it), not
only at the heavy one's end. One-pass methods (Value Zeroing, DecompX) report progress inside their pass, at least
once per layer, and stop there when nobody waits any more.
"""

from __future__ import annotations

import math
import platform
import threading
import time

import numpy as np
import pytest

from dashboard.cached import AnalysisCache, DepthResults, HeadResultCache
from explain import AnalysisRequest, analyze, load_model
from explain.costs import FORWARD_PASS, depth_work, work_units
from explain.heads.importance import variants_per_batch
from explain.methods import get_method
from explain.models import embedded_model_path
from explain.pacing import PAUSE_SECONDS
from explain.records import HeadsRequest
from explain.scheduling import DEFAULT_WORK_RATE, Cancelled, Schedulers, WorkBudget, release_memory
from testkit.contexts import build_context

SAFETY = 60
TEXT = "the film was good but far too long and the ending made no sense at all"


def wait_until(condition, what: str) -> None:
    for _ in range(SAFETY * 20):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


class Timeline:
    """What happened in which order: the heavy piece's progress (as its page sees it) and the light analysis."""

    def __init__(self, schedulers: Schedulers, spec: str, start_at: float) -> None:
        self.events: list[tuple[str, float]] = []
        self.schedulers, self.spec, self.start_at = schedulers, spec, start_at
        self.queued = threading.Event()
        self.heavy_running = threading.Event()

    def heavy_progress(self, stage: str, fraction: float | None) -> None:
        if fraction is None:
            return
        self.events.append(("heavy", fraction))
        if fraction >= self.start_at and not self.heavy_running.is_set():
            self.heavy_running.set()  # the light request now arrives; the heavy piece goes on once it is queued
            wait_until(lambda: self.schedulers.get(self.spec).waiting() == 1, "the light analysis queued")
            self.queued.set()

    def heavy_left_after_light(self) -> list[float]:
        light = self.events.index(("light done", 1.0))
        return [fraction for name, fraction in self.events[light:] if name == "heavy" and fraction < 1.0]


def light_setup(loaded):
    schedulers = Schedulers()
    light_request = AnalysisRequest("bad service", model=loaded.spec, n_steps=4)
    probe = AnalysisCache(budget=WorkBudget(max_work=math.inf, rate=1.0), schedulers=schedulers)
    budget = WorkBudget(max_work=math.inf, rate=1.0, light_seconds=probe.estimate(light_request, loaded) * 1.2)
    return schedulers, budget, light_request, AnalysisCache(budget=budget, schedulers=schedulers)


def run_beside(timeline: Timeline, heavy, light) -> dict[str, object]:
    results: dict[str, object] = {}

    def run_heavy() -> None:
        results["heavy"] = heavy(timeline.heavy_progress)
        timeline.events.append(("heavy done", 1.0))

    thread = threading.Thread(target=run_heavy, daemon=True)
    thread.start()
    assert timeline.heavy_running.wait(SAFETY)
    results["light"] = light()
    timeline.events.append(("light done", 1.0))
    thread.join(SAFETY)
    assert not thread.is_alive()
    return results


def test_a_light_analysis_goes_before_a_pruning_run_is_half_done(tiny_models):
    """A tiny model's whole pruning curve fitted one batch, so light work waited for all of it."""
    loaded = tiny_models["classification"]
    schedulers, budget, light_request, analyses = light_setup(loaded)
    heads = HeadResultCache(budget=budget, schedulers=schedulers)
    request = HeadsRequest(loaded.spec, TEXT, None, 64)
    inputs = heads.inputs(request, loaded)
    importance = heads.importance(request, loaded, inputs)
    assert not budget.is_light(heads.heads_work(loaded, inputs, "pruning"))
    timeline = Timeline(schedulers, loaded.spec, start_at=0.0)
    results = run_beside(
        timeline, lambda progress: heads.pruning(request, loaded, inputs, importance, "gradient", "least", progress),
        lambda: analyses.compute(light_request, loaded, session="light tab"))
    left = timeline.heavy_left_after_light()
    assert left and min(left) < 0.5, timeline.events  # the light one ran before half the batches
    alone = HeadResultCache(budget=WorkBudget(max_work=math.inf), schedulers=Schedulers())
    again = alone.pruning(request, loaded, alone.inputs(request, loaded), importance, "gradient", "least")
    assert np.array_equal(again.scores, results["heavy"].scores)  # type: ignore[attr-defined]


def test_a_light_analysis_goes_before_the_importance_maps_are_done(tiny_models):
    loaded = tiny_models["classification"]
    schedulers, budget, light_request, analyses = light_setup(loaded)
    heads = HeadResultCache(budget=budget, schedulers=schedulers)
    request = HeadsRequest(loaded.spec, TEXT, None, 64)
    inputs = heads.inputs(request, loaded)
    assert not budget.is_light(heads.heads_work(loaded, inputs, "importance"))
    timeline = Timeline(schedulers, loaded.spec, start_at=0.06)  # inside the ablation effect's batches
    run_beside(timeline, lambda progress: heads.importance(request, loaded, inputs, progress),
               lambda: analyses.compute(light_request, loaded, session="light tab"))
    assert min(timeline.heavy_left_after_light(), default=1.0) < 0.9, timeline.events


def test_a_light_analysis_goes_before_the_layer_wise_attribution_is_done(tiny_models):
    """Layer integrated gradients reported progress only with its hook on the layer, where the model cannot be lent
    out: light work waited for every layer."""
    loaded = tiny_models["classification"]
    schedulers, budget, light_request, analyses = light_setup(loaded)
    depth = DepthResults(budget=budget, schedulers=schedulers)
    analysis = analyze(AnalysisRequest(TEXT, model=loaded.spec, n_steps=16), loaded)
    assert not budget.is_light(depth_work(analysis.request, analysis.model.n_layers, loaded.config, len(analysis.tokens)))
    share = 1.0 / (analysis.model.n_layers + 1)  # the embedding parts come first
    timeline = Timeline(schedulers, loaded.spec, start_at=share + 0.01)
    results = run_beside(timeline, lambda progress: depth.with_depth(analysis, loaded, progress),
                         lambda: analyses.compute(light_request, loaded, session="light tab"))
    left = timeline.heavy_left_after_light()
    assert left and min(left) < 0.9, timeline.events
    alone = DepthResults(budget=WorkBudget(max_work=math.inf), schedulers=Schedulers())
    again = alone.with_depth(analysis, loaded)
    np.testing.assert_allclose(again.layer_attribution.scores,  # type: ignore[union-attr]
                               results["heavy"].layer_attribution.scores, atol=1e-6)  # type: ignore[attr-defined]


def test_heads_batches_on_minilm_at_256_tokens_are_short():
    """At 256 tokens minilm ran 32 variants per batch (about 5,400 work units, seconds on a busy machine)."""
    loaded = load_model(str(embedded_model_path()))
    per_batch = variants_per_batch(256, loaded, total=4 * 49)
    assert per_batch * work_units(FORWARD_PASS, loaded.config, 256) <= PAUSE_SECONDS * DEFAULT_WORK_RATE
    assert variants_per_batch(256, loaded, total=4 * 49) >= 1


@pytest.mark.parametrize("name", ["value_zeroing", "decompx"])
def test_one_pass_methods_report_every_layer_and_stop_when_told(tiny_models, name):
    loaded = tiny_models["classification"]
    context = build_context(loaded, TEXT)
    method = get_method(name)
    fractions: list[float] = []
    method.attribute(context, method.settings_type.parse({}), progress=fractions.append)
    inside = [f for f in fractions if f < 1.0]
    assert len(inside) >= loaded.info.n_layers and inside == sorted(inside)

    def stop(fraction: float) -> None:
        fractions.append(fraction)
        raise Cancelled("Nobody waits for this computation any more, so it was stopped.")

    fractions.clear()
    with pytest.raises(Cancelled):
        method.attribute(context, method.settings_type.parse({}), progress=stop)
    assert fractions == [fractions[0]] and fractions[0] < 1.0


def test_freed_heap_goes_back_to_the_system_where_there_is_glibc():
    assert release_memory() is (platform.libc_ver()[0] == "glibc")


def test_depth_results_keep_within_their_byte_budget(tiny_models):
    """Each depth result keeps its analysis's attention maps (75 MB at 512 tokens on minilm); 16 of them were kept
    whatever their size."""
    loaded = tiny_models["classification"]
    analysis = analyze(AnalysisRequest(TEXT, model=loaded.spec, n_steps=4), loaded)
    small = DepthResults(budget=WorkBudget(max_work=math.inf), schedulers=Schedulers(), max_bytes=1024)
    found = small.with_depth(analysis, loaded)
    assert found.layer_attribution is not None and small.get(small.key(analysis, loaded.spec)) is None
    roomy = DepthResults(budget=WorkBudget(max_work=math.inf), schedulers=Schedulers())
    roomy.with_depth(analysis, loaded)
    assert roomy.get(roomy.key(analysis, loaded.spec)) is not None
