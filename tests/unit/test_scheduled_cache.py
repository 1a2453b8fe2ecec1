"""One scheduled cache for every page: no order of turns deadlocks on the model's lock, a turn stuck past its
allowance is stopped without holding the queue, and all work is priced from the declared cost of what it runs,
over every text it reads, before it starts."""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest

from dashboard.cached import AnalysisCache, MethodResultCache
from explain import AnalysisRequest
from explain.costs import method_evaluations, work_units
from explain.scheduling import (
    ModelScheduler,
    ScheduledCache,
    Schedulers,
    TurnExpired,
    WorkBudget,
    WorkBudgetError,
)

SAFETY = 60  # seconds: a deadlock fails the test instead of hanging it
TEXT = "the film was good but far too long and the ending made no sense at all"


def wait_until(condition, what: str) -> None:
    for _ in range(SAFETY * 20):
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


def test_light_method_work_beside_a_paused_analysis_finishes(tiny_models):
    """The audit's deadlock: a heavy analysis pauses in its attribution (holding the model's lock) while the
    Methods page computes a light method on the same model; both must finish."""
    loaded = tiny_models["classification"]
    schedulers = Schedulers()
    heavy_request = AnalysisRequest(TEXT, model=loaded.spec, n_steps=400, integration="gauss_legendre")
    light_request = AnalysisRequest("bad service", model=loaded.spec)
    methods = MethodResultCache(budget=WorkBudget(max_work=math.inf, rate=1.0), schedulers=schedulers)
    light_work = methods.estimate(light_request, loaded, "saliency")
    budget = WorkBudget(max_work=math.inf, rate=1.0, light_seconds=light_work * 2)
    analyses = AnalysisCache(budget=budget, schedulers=schedulers)
    methods = MethodResultCache(budget=budget, schedulers=schedulers)
    assert not budget.is_light(analyses.estimate(heavy_request, loaded))
    queued = threading.Event()
    done: dict[str, object] = {}

    def heavy_progress(stage, fraction) -> None:
        if stage == "attribution" and not queued.is_set():
            done["heavy in attribution"] = True
            wait_until(lambda: schedulers.get(loaded.spec).waiting() == 1, "the light method queued")
            queued.set()

    def run_heavy() -> None:
        done["heavy"] = analyses.compute(heavy_request, loaded, heavy_progress, session="tab A")

    def run_light() -> None:
        done["light"] = methods.compute(light_request, loaded, "saliency", session="tab B")
        done["light faithfulness"] = methods.faithfulness(light_request, loaded, {"saliency": done["light"]},
                                                          "replace", session="tab B")

    heavy = threading.Thread(target=run_heavy, daemon=True)
    heavy.start()
    wait_until(lambda: "heavy in attribution" in done, "the heavy analysis in its attribution")
    light = threading.Thread(target=run_light, daemon=True)
    light.start()
    light.join(SAFETY)
    heavy.join(SAFETY)
    assert not light.is_alive() and not heavy.is_alive(), "deadlock: a turn waits on a lock a paused turn holds"
    assert {"heavy", "light", "light faithfulness"} <= set(done)
    assert not loaded.lock._is_owned()  # type: ignore[attr-defined]  # both gave the model's lock back


def test_the_watchdog_stops_a_stuck_turn_without_holding_the_queue():
    scheduler = ModelScheduler(max_waiting=4, poll_seconds=0.05)
    stuck_entered, release = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def stuck() -> None:
        try:
            with scheduler.turn(light=False, session="stuck", allowed=0.3) as turn:
                stuck_entered.set()
                release.wait(SAFETY)  # stuck: no progress report for far longer than its allowance
                turn.check()
        except Exception as exc:  # noqa: BLE001 - the test reads what it raised
            errors.append(exc)

    thread = threading.Thread(target=stuck, daemon=True)
    thread.start()
    assert stuck_entered.wait(SAFETY)
    start = time.monotonic()
    with scheduler.turn(light=False, session="next", allowed=SAFETY):
        waited = time.monotonic() - start
    assert waited < SAFETY / 2  # the queue went on once the stuck turn passed its allowance
    release.set()
    thread.join(SAFETY)
    assert len(errors) == 1 and isinstance(errors[0], TurnExpired)
    assert str(errors[0]).endswith("can go on.") and "ran past" in str(errors[0])


def test_work_over_the_budget_is_refused_before_it_starts(tiny_models):
    loaded = tiny_models["classification"]
    cache = ScheduledCache(budget=WorkBudget(max_work=10.0, rate=1.0))
    ran: list[bool] = []
    with pytest.raises(WorkBudgetError, match=r"^Pruning needs about 20 s of computation, over this server's "
                                              r"10 s limit: use a shorter text\.$"):
        cache.compute("key", loaded, lambda model, step: ran.append(True), work=20.0, what="Pruning",
                      advice="use a shorter text")
    assert not ran and len(cache) == 0
    assert cache.compute("key", loaded, lambda model, step: "done", work=5.0, what="Pruning", advice="") == "done"


def smoothgrad_over_ig(**extra) -> AnalysisRequest:
    settings = (("smoothgrad.ig_steps", "200"), ("smoothgrad.nt_samples", "500"),
                ("smoothgrad.over", "integrated_gradients"))
    return AnalysisRequest(TEXT, method="smoothgrad", method_settings=settings, **extra)


def test_an_analysis_is_priced_from_its_own_method_not_from_integration_steps(tiny_models):
    """The audit's bypass: SmoothGrad over IG (500 x 200 evaluations) and LIME with 5000 samples were priced as
    50 integration steps on the Explore page."""
    loaded = tiny_models["classification"]
    cache = AnalysisCache(budget=WorkBudget(max_work=math.inf, rate=2000.0))
    plain = cache.estimate(AnalysisRequest(TEXT), loaded)
    smooth = cache.estimate(smoothgrad_over_ig(), loaded)
    lime = cache.estimate(AnalysisRequest(TEXT, method="lime", method_settings=(("lime.n_samples", "5000"),)), loaded)
    assert smooth / plain > 1000 and lime / plain > 30
    with pytest.raises(WorkBudgetError, match="over this server's"):
        AnalysisCache(budget=WorkBudget(max_work=plain * 10, rate=2000.0)).estimate(smoothgrad_over_ig(), loaded)


def test_a_second_text_counts_in_the_price(tiny_models):
    loaded = tiny_models["classification"]
    cache = AnalysisCache(budget=WorkBudget(max_work=math.inf))
    alone = cache.estimate(AnalysisRequest(TEXT), loaded)
    assert cache.estimate(AnalysisRequest(TEXT, pair=TEXT), loaded) > 1.5 * alone
    assert cache.estimate(AnalysisRequest(TEXT, question=TEXT), loaded) > 1.5 * alone


def test_faithfulness_is_priced_and_refused_over_the_budget(tiny_models):
    loaded = tiny_models["classification"]
    request = AnalysisRequest(TEXT)
    free = MethodResultCache(budget=WorkBudget(max_work=math.inf), schedulers=Schedulers())
    results = {"saliency": free.compute(request, loaded, "saliency", session="s")}
    tight = MethodResultCache(budget=WorkBudget(max_work=free.estimate(request, loaded, "saliency") * 2),
                              schedulers=Schedulers())
    with pytest.raises(WorkBudgetError, match=r"^Scoring the methods' faithfulness needs about"):
        tight.faithfulness(request, loaded, results, "replace", session="s")


def test_every_methods_price_grows_with_its_declared_cost(tiny_models):
    loaded = tiny_models["classification"]
    few = AnalysisRequest(TEXT, method_settings=(("lime.n_samples", "50"),))
    many = AnalysisRequest(TEXT, method_settings=(("lime.n_samples", "500"),))
    assert method_evaluations(many, "lime", 16, 14) == 10 * method_evaluations(few, "lime", 16, 14)
    assert work_units(2.0, loaded.config, 16) == pytest.approx(2 * work_units(1.0, loaded.config, 16))


def test_the_cache_keeps_nothing_larger_than_its_byte_budget(tiny_models):
    loaded = tiny_models["classification"]
    cache = ScheduledCache(max_bytes=100, size=len, budget=WorkBudget(max_work=math.inf))
    assert cache.compute("small", loaded, lambda model, step: "x" * 60, work=1.0, what="", advice="") == "x" * 60
    big = cache.compute("big", loaded, lambda model, step: "y" * 101, work=1.0, what="", advice="")
    assert big == "y" * 101 and cache.get("big") is None and cache.get("small") == "x" * 60
    cache.compute("other", loaded, lambda model, step: "z" * 60, work=1.0, what="", advice="")
    assert cache.get("small") is None and len(cache) == 1  # least recently used made room


def test_light_work_goes_first_while_a_pruning_run_is_between_batches(tiny_models):
    """The audit's fairness gap: only analyses paused for light work; the heads page's pruning runs now pause
    between batches (when their gates are off the model), and both results stay exact."""
    from dashboard.cached import HeadResultCache
    from explain.records import HeadsRequest

    loaded = tiny_models["classification"]
    schedulers = Schedulers()
    light_request = AnalysisRequest("bad service", model=loaded.spec, n_steps=4)
    probe = AnalysisCache(budget=WorkBudget(max_work=math.inf, rate=1.0), schedulers=schedulers)
    budget = WorkBudget(max_work=math.inf, rate=1.0, light_seconds=probe.estimate(light_request, loaded) * 2)
    heads = HeadResultCache(budget=budget, schedulers=schedulers)
    analyses = AnalysisCache(budget=budget, schedulers=schedulers)
    request = HeadsRequest(loaded.spec, TEXT, None, 64)
    inputs = heads.inputs(request, loaded)
    importance = heads.importance(request, loaded, inputs)
    assert not budget.is_light(heads.heads_work(loaded, inputs, "pruning"))
    order: list[str] = []
    queued = threading.Event()

    def pruning_progress(stage, fraction) -> None:
        if fraction and not queued.is_set():
            order.append("pruning between batches")
            wait_until(lambda: schedulers.get(loaded.spec).waiting() == 1, "the light analysis queued")
            queued.set()

    results: dict[str, object] = {}

    def run_pruning() -> None:
        results["curve"] = heads.pruning(request, loaded, inputs, importance, "gradient", "least",
                                         progress=pruning_progress)
        order.append("pruning done")

    thread = threading.Thread(target=run_pruning, daemon=True)
    thread.start()
    wait_until(lambda: order, "the pruning run between batches")
    results["light"] = analyses.compute(light_request, loaded, session="light tab")
    order.append("light done")
    thread.join(SAFETY)
    assert order == ["pruning between batches", "light done", "pruning done"]
    alone = HeadResultCache(budget=WorkBudget(max_work=math.inf), schedulers=Schedulers())
    again = alone.pruning(request, loaded, alone.inputs(request, loaded), importance, "gradient", "least")
    assert np.array_equal(again.scores, results["curve"].scores)  # type: ignore[attr-defined]
