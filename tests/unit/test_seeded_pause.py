"""Seeded methods (LIME, KernelSHAP, SmoothGrad) pause at batch boundaries like every other heavy kind.

Captum draws their samples from torch's global generator, which every thread shares, so a seeded run holds
`SEEDED_RNG_LOCK`; it used to hold it (and never pause) for its whole run. Now each run goes in batches and calls
its progress callback between them with the lock released and its generator state kept: light work (itself
seeded or not) runs meanwhile, a closed tab stops it with batches left, and two sessions' runs interleave, each
giving the numbers of its run alone. Real threads on a tiny real model.
"""

from __future__ import annotations

import math
import threading
import time

import numpy as np
import pytest
import torch

from dashboard.cached import AnalysisCache, MethodResultCache
from explain import AnalysisRequest
from explain.methods import get_method
from explain.methods.base import SEEDED_RNG_LOCK, SeededRun
from explain.pipeline import explain_method
from explain.scheduling import Cancelled, Schedulers, WorkBudget
from testkit.contexts import build_context

SAFETY = 30  # seconds: a run that cannot pause fails the test instead of hanging it
TEXT = "the film was good but far too long and the ending made no sense at all"
SEEDED = ("lime", "kernel_shap", "smoothgrad")
# Enough samples for several batches; each is milliseconds on the tiny model.
HEAVY = {"lime": {"n_samples": 96}, "kernel_shap": {"n_samples": 96}, "smoothgrad": {"nt_samples": 48}}


def settings_of(name: str, seed: int) -> dict[str, str]:
    return {key: str(value) for key, value in {**HEAVY[name], "seed": seed}.items()}


def request_of(name: str, spec: str, seed: int = 3, text: str = TEXT) -> AnalysisRequest:
    pairs = tuple((f"{name}.{key}", value) for key, value in settings_of(name, seed).items())
    return AnalysisRequest(text, model=spec, n_steps=4, method=name, method_settings=pairs)


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + SAFETY
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


@pytest.mark.parametrize("name", SEEDED)
def test_light_seeded_work_goes_before_a_seeded_run_is_done_and_changes_none_of_its_numbers(tiny_models, name):
    """A heavy LIME/KernelSHAP/SmoothGrad never paused: light work waited out the whole run. The light work here is a
    seeded method too, which draws from the generator the paused run keeps its state of."""
    loaded = tiny_models["classification"]
    schedulers = Schedulers()
    light_request = AnalysisRequest("bad service", model=loaded.spec, n_steps=4, method="lime",
                                    method_settings=(("lime.n_samples", "8"), ("lime.seed", "11")))
    probe = AnalysisCache(budget=WorkBudget(max_work=math.inf, rate=1.0), schedulers=schedulers)
    budget = WorkBudget(max_work=math.inf, rate=1.0, light_seconds=probe.estimate(light_request, loaded) * 1.2)
    analyses = AnalysisCache(budget=budget, schedulers=schedulers)
    methods = MethodResultCache(budget=budget, schedulers=schedulers)
    request = request_of(name, loaded.spec)
    assert not budget.is_light(methods.estimate(request, loaded, name))

    events: list[tuple[str, float]] = []
    running = threading.Event()

    def heavy_progress(fraction: float) -> None:
        events.append(("heavy", fraction))
        if 0.0 < fraction < 1.0 and not running.is_set():
            running.set()  # the light request arrives now; the heavy run goes on once it is queued
            wait_until(lambda: schedulers.get(loaded.spec).waiting() == 1, "the light analysis queued")

    results: dict[str, object] = {}

    def run_heavy() -> None:
        results["heavy"] = methods.compute(request, loaded, name, progress=heavy_progress, session="heavy tab")

    thread = threading.Thread(target=run_heavy, daemon=True)
    thread.start()
    assert running.wait(SAFETY)
    light = analyses.compute(light_request, loaded, session="light tab")
    events.append(("light done", 1.0))
    thread.join(SAFETY)
    assert not thread.is_alive() and "heavy" in results
    after = events[events.index(("light done", 1.0)):]
    assert [f for kind, f in after if kind == "heavy" and f < 0.9], events  # batches left when the light one ended

    alone = explain_method(request, loaded, name)
    # exactly: on the tiny model another stream's samples change the scores by under 1e-6
    np.testing.assert_array_equal(results["heavy"].word_scores, alone.word_scores)  # type: ignore[attr-defined]
    light_alone = AnalysisCache(budget=WorkBudget(max_work=math.inf), schedulers=Schedulers()).compute(
        light_request, loaded, session="alone")
    np.testing.assert_array_equal(light.word_scores, light_alone.word_scores)


@pytest.mark.parametrize("name", SEEDED)
def test_a_cancelled_seeded_run_stops_with_batches_left_and_leaves_the_generator_as_it_was(tiny_models, name):
    """LIME and KernelSHAP evaluated every sample of a short text in one pass: their first progress report came when
    all the work was done, so a closed tab stopped nothing."""
    context = build_context(tiny_models["classification"], TEXT)
    method = get_method(name)
    settings = method.settings_type.parse(settings_of(name, 5))
    fractions: list[float] = []

    def stop(fraction: float) -> None:
        fractions.append(fraction)
        raise Cancelled("Nobody waits for this computation any more, so it was stopped.")

    torch.manual_seed(1234)
    before = torch.get_rng_state()
    with pytest.raises(Cancelled):
        method.attribute(context, settings, progress=stop)
    assert len(fractions) == 1 and fractions[0] <= 0.25, fractions
    assert torch.equal(torch.get_rng_state(), before)
    assert not SEEDED_RNG_LOCK.locked()


class Baton:
    """Two runs take turns at their progress reports: each hands over to the other and waits to be handed back."""

    def __init__(self, first: str, second: str) -> None:
        self.cond = threading.Condition()
        self.holder = first
        self.other = {first: second, second: first}
        self.finished: set[str] = set()
        self.order: list[str] = []

    def wait_turn(self, name: str) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: self.holder == name or self.other[name] in self.finished, SAFETY / 3):
                raise AssertionError(f"{name} waited in vain for the other run to reach its next pause")

    def report(self, name: str, fraction: float) -> None:
        if fraction >= 1.0:
            return
        with self.cond:
            self.order.append(name)
            self.holder = self.other[name]
            self.cond.notify_all()
        self.wait_turn(name)

    def finish(self, name: str) -> None:
        with self.cond:
            self.finished.add(name)
            self.holder = self.other[name]
            self.cond.notify_all()


@pytest.mark.parametrize("name", SEEDED)
def test_two_sessions_seeded_runs_interleave_and_each_gives_its_numbers_alone(tiny_models, name):
    """The second session's run waited for the lock the first held through its pauses (here: for ever)."""
    context = build_context(tiny_models["classification"], TEXT)
    method = get_method(name)
    seeds = {"a": 1, "b": 2}
    alone = {who: method.attribute(context, method.settings_type.parse(settings_of(name, seed))).scores
             for who, seed in seeds.items()}
    baton = Baton("a", "b")
    scores: dict[str, np.ndarray] = {}
    errors: list[BaseException] = []

    def run(who: str) -> None:
        try:
            baton.wait_turn(who)
            settings = method.settings_type.parse(settings_of(name, seeds[who]))
            scores[who] = method.attribute(context, settings, progress=lambda f: baton.report(who, f)).scores
        except BaseException as exc:  # noqa: BLE001 - failed in the test's thread below
            errors.append(exc)
        finally:
            baton.finish(who)

    threads = [threading.Thread(target=run, args=(who,), daemon=True) for who in seeds]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(SAFETY)
    assert not errors, errors
    switches = sum(a != b for a, b in zip(baton.order, baton.order[1:]))
    assert switches >= 4, baton.order
    for who in seeds:
        np.testing.assert_array_equal(scores[who], alone[who])


def test_a_run_that_steps_aside_lets_a_waiting_seeded_run_go_first():
    """A seeded run of another model (another scheduler) waited for the whole run: Python's lock let the run that
    stepped aside take it straight back."""
    order: list[str] = []
    asking = threading.Event()

    def other() -> None:
        asking.set()
        with SeededRun(2, torch.device("cpu")):
            order.append("other")

    with SeededRun(1, torch.device("cpu")) as run:
        thread = threading.Thread(target=other, daemon=True)
        thread.start()
        assert asking.wait(SAFETY)
        wait_until(lambda: len(SEEDED_RNG_LOCK._waiting) == 1, "the other run to wait for the lock")
        with run.pause():
            pass
        order.append("first")
    thread.join(SAFETY)
    assert order == ["other", "first"]
