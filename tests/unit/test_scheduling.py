"""Fair use of a shared model: the work budget, the per-model queue, and cheap work that never waits.

Threads here wait on conditions (events, queue sizes) with generous safety timeouts, never on sleeps, so
a slow machine makes them slower, not wrong.
"""

from __future__ import annotations

import math
import threading
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.cached import AnalysisCache
from explain import AnalysisRequest, InputError, analyze
from explain.costs import estimate_work, evaluations
from explain.methods.quadrature import adaptive_levels
from explain.scheduling import (
    MAX_WORK_ENV,
    ModelScheduler,
    Replaced,
    ServerBusy,
    WorkBudget,
    WorkBudgetError,
    check_work_budget,
    has_foreign_hooks,
    queue_text,
)

SAFETY = 60  # seconds: a broken scheduler fails the test instead of hanging it


def wait_until(condition, what: str) -> None:
    done = threading.Event()
    for _ in range(SAFETY * 20):
        if condition():
            return
        done.wait(0.05)
    raise AssertionError(f"gave up waiting for {what}")


class Holder:
    """A thread that takes a turn on `scheduler` and keeps it until `release` is set."""

    def __init__(self, scheduler: ModelScheduler, name: str, *, light: bool = False, session=None,
                 log: list | None = None, pause: bool = False) -> None:
        self.name, self.release, self.entered = name, threading.Event(), threading.Event()
        self.ahead: list[int] = []
        self.error: Exception | None = None
        self.beside_paused = None
        self.log = log if log is not None else []

        def run() -> None:
            try:
                with scheduler.turn(light=light, session=session if session is not None else name,
                                    waiting=self.ahead.append) as turn:
                    self.beside_paused = turn.beside_paused
                    self.log.append(f"start {name}")
                    self.entered.set()
                    while not self.release.wait(0.01):
                        if pause:
                            turn.pause_point()
                    turn.check()
                    self.log.append(f"end {name}")
            except Exception as exc:  # noqa: BLE001 - the test reads it
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def finish(self) -> None:
        self.release.set()
        self.thread.join(SAFETY)
        assert not self.thread.is_alive(), f"{self.name} never finished"


# -- the queue ---------------------------------------------------------------------------------------------


def test_heavy_analyses_run_first_come_first_served_and_see_their_place():
    scheduler = ModelScheduler(max_waiting=4, poll_seconds=0.02)
    log: list[str] = []
    first = Holder(scheduler, "first", log=log)
    first.entered.wait(SAFETY)
    waiters = []
    for i, name in enumerate(["a", "b", "c"]):
        waiters.append(Holder(scheduler, name, log=log))
        wait_until(lambda i=i: scheduler.waiting() == i + 1, f"{name} queued")
    wait_until(lambda: waiters[2].ahead, "c's first report")
    assert waiters[2].ahead[0] == 3  # the running one and two waiting before it
    first.finish()
    for position, holder in enumerate(waiters):
        holder.entered.wait(SAFETY)
        if position < 2:
            wait_until(lambda p=position: waiters[2].ahead[-1] == 2 - p, "c's place moves up")
        holder.finish()
    assert log == ["start first", "end first", "start a", "end a", "start b", "end b", "start c", "end c"]
    assert waiters[2].ahead == sorted(waiters[2].ahead, reverse=True)
    assert {3, 2, 1} <= set(waiters[2].ahead)
    assert all(h.error is None for h in [first, *waiters])


def test_beyond_the_bound_the_server_is_busy():
    scheduler = ModelScheduler(max_waiting=2, poll_seconds=0.02)
    running = Holder(scheduler, "running")
    running.entered.wait(SAFETY)
    waiting = [Holder(scheduler, f"w{i}") for i in range(2)]
    wait_until(lambda: scheduler.waiting() == 2, "two waiting")
    with pytest.raises(ServerBusy) as refused:
        with scheduler.turn(light=False, session="late"):
            pass
    assert str(refused.value) == "The server is busy with 3 analyses on this model; try again in a minute."
    assert scheduler.waiting() == 2  # the refused one took no place
    running.finish()
    for holder in waiting:
        holder.finish()
    assert scheduler.active() == 0


def test_a_full_heavy_queue_leaves_room_for_light_work():
    """Light and heavy work are bounded apart: heavy pages that fill the queue do not refuse a quick question
    (the load test's 4 Heads sessions beside a light one), and light work has a bound of its own."""
    scheduler = ModelScheduler(max_waiting=2, poll_seconds=0.02)
    running = Holder(scheduler, "running", pause=True)
    running.entered.wait(SAFETY)
    heavy = [Holder(scheduler, f"h{i}") for i in range(2)]
    wait_until(lambda: scheduler.waiting() == 2, "two heavy waiting")
    light = Holder(scheduler, "light", light=True)
    light.entered.wait(SAFETY)
    assert light.error is None and light.entered.is_set()
    queued = [Holder(scheduler, f"l{i}", light=True) for i in range(2)]
    wait_until(lambda: scheduler.waiting() == 4, "two light waiting behind the running light one")
    with pytest.raises(ServerBusy):
        with scheduler.turn(light=True, session="late"):
            pass
    for holder in [light, *queued, running, *heavy]:
        holder.entered.wait(SAFETY)
        holder.finish()
    assert scheduler.active() == 0


def test_a_session_has_one_analysis_its_newer_request_replaces_the_older():
    scheduler = ModelScheduler(max_waiting=4, poll_seconds=0.02)
    other = Holder(scheduler, "other")
    other.entered.wait(SAFETY)
    old = Holder(scheduler, "old", session="tab-1")
    wait_until(lambda: scheduler.waiting() == 1, "old queued")
    new = Holder(scheduler, "new", session="tab-1")
    old.thread.join(SAFETY)
    assert isinstance(old.error, Replaced) and not old.entered.is_set()
    assert scheduler.waiting() == 1
    other.finish()
    new.entered.wait(SAFETY)
    newest = Holder(scheduler, "newest", session="tab-1")  # replaces the running one of the same tab
    new.finish()
    assert isinstance(new.error, Replaced)
    newest.entered.wait(SAFETY)
    newest.finish()
    assert newest.error is None and scheduler.active() == 0


def test_light_work_goes_first_while_heavy_work_pauses():
    scheduler = ModelScheduler(max_waiting=4, poll_seconds=0.02)
    log: list[str] = []
    heavy = Holder(scheduler, "heavy", log=log, pause=True)
    heavy.entered.wait(SAFETY)
    next_heavy = Holder(scheduler, "next heavy", log=log)
    wait_until(lambda: scheduler.waiting() == 1, "next heavy queued")
    light = Holder(scheduler, "light", light=True, log=log)
    light.entered.wait(SAFETY)
    assert light.beside_paused is True
    light.finish()
    heavy.finish()
    next_heavy.finish()
    assert log == ["start heavy", "start light", "end light", "end heavy", "start next heavy", "end next heavy"]


def test_queue_text_says_how_many_are_ahead():
    assert queue_text(1) == "1 analysis ahead of yours"
    assert queue_text(2) == "2 analyses ahead of yours"
    assert "ahead" not in queue_text(0)


# -- the budget --------------------------------------------------------------------------------------------


class Config:
    def __init__(self, layers: int, hidden: int, inner: int) -> None:
        self.num_hidden_layers, self.hidden_size, self.intermediate_size = layers, hidden, inner


MINILM = Config(6, 384, 1536)
BERT_BASE = Config(12, 768, 3072)


def test_a_request_over_the_budget_gets_one_sentence_saying_what_to_reduce():
    budget = WorkBudget(max_work=60_000, rate=2000)
    heavy = AnalysisRequest("x", n_steps=1000, max_tokens=512)
    with pytest.raises(WorkBudgetError) as over:
        budget.check(heavy, MINILM, 512)
    message = str(over.value)
    assert isinstance(over.value, InputError)
    assert message.startswith("This request needs about ") and "over this server's 30 s limit" in message
    assert message.endswith(".") and message.count(". ") == 0
    fit = int(message.split("up to ")[1].split(" ")[0])
    assert budget.check(replace(heavy, n_steps=fit), MINILM, 512) <= budget.max_work
    with pytest.raises(WorkBudgetError):
        budget.check(replace(heavy, n_steps=fit + 1), MINILM, 512)
    assert budget.check(AnalysisRequest("x"), MINILM, 12) < budget.max_work


def test_the_default_budget_keeps_the_default_request_light_and_refuses_the_ui_maximum(monkeypatch):
    monkeypatch.delenv(MAX_WORK_ENV, raising=False)
    default = AnalysisRequest("The film was good but far too long.", max_tokens=128)
    budget = WorkBudget.from_environment()
    assert budget.is_light(check_work_budget(default, 12, MINILM))
    with pytest.raises(WorkBudgetError):
        check_work_budget(AnalysisRequest("x", n_steps=1000, max_tokens=512), 512, MINILM)
    monkeypatch.setenv(MAX_WORK_ENV, "0")
    assert WorkBudget.from_environment().max_work == math.inf


@settings(max_examples=60, deadline=None)
@given(tokens=st.integers(3, 512), steps=st.integers(1, 1000), fast=st.booleans())
def test_work_grows_with_tokens_steps_and_model_size(tokens, steps, fast):
    request = AnalysisRequest("x", n_steps=steps, tolerance=1e-2 if fast else None,
                              integration="clenshaw_curtis" if fast else "gauss_legendre")
    work = estimate_work(request, MINILM, tokens)
    assert estimate_work(request, MINILM, tokens + 1) > work
    assert estimate_work(replace(request, n_steps=min(steps + 1, 1000)), MINILM, tokens) >= work
    assert estimate_work(request, BERT_BASE, tokens) > 4 * work  # 2x layers, 4x per-layer cost (less overhead)
    expected = steps if not fast or not adaptive_levels(steps) else adaptive_levels(steps)[-1] + 1
    assert evaluations(request) - 2 == expected
    assert evaluations(replace(request, tolerance=None, integration="adaptive_simpson")) - 2 == steps  # the cap


# -- the dashboard's analysis cache on a real model ----------------------------------------------------------


def test_a_cached_result_is_served_while_a_heavy_analysis_holds_the_model(tiny_models):
    loaded = tiny_models["classification"]
    cache = AnalysisCache()
    request = AnalysisRequest("the film was good", model=loaded.spec, n_steps=4)
    first = cache.compute(request, loaded)
    held, release = threading.Event(), threading.Event()

    def heavy() -> None:
        with cache.schedulers.get(loaded.spec).turn(light=False, session="heavy"), loaded.lock:
            held.set()
            release.wait(SAFETY)

    thread = threading.Thread(target=heavy, daemon=True)
    thread.start()
    held.wait(SAFETY)
    try:
        got = []
        reader = threading.Thread(target=lambda: got.append(cache.compute(request, loaded)), daemon=True)
        reader.start()
        reader.join(SAFETY)
        assert got and got[0] is first
    finally:
        release.set()
        thread.join(SAFETY)


def test_a_light_analysis_beside_a_paused_heavy_one_leaves_both_exact(tiny_models):
    loaded = tiny_models["classification"]
    heavy_request = AnalysisRequest("the film was good but too long", model=loaded.spec, n_steps=400)
    light_request = AnalysisRequest("bad service", model=loaded.spec, n_steps=8)
    heavy_work = estimate_work(heavy_request, loaded.config, 9)
    budget = WorkBudget(max_work=math.inf, rate=1.0, light_seconds=heavy_work / 2)
    cache = AnalysisCache(budget=budget)
    order: list[str] = []
    light_queued = threading.Event()

    def heavy_progress(stage, fraction) -> None:
        if stage == "attribution" and not light_queued.is_set():
            order.append("heavy in attribution")
            wait_until(lambda: cache.schedulers.get(loaded.spec).waiting() == 1, "the light request queued")
            light_queued.set()

    results = {}

    def run_heavy() -> None:
        results["heavy"] = cache.compute(heavy_request, loaded, heavy_progress, session="heavy")
        order.append("heavy done")

    heavy = threading.Thread(target=run_heavy, daemon=True)
    heavy.start()
    wait_until(lambda: order, "heavy in attribution")
    results["light"] = cache.compute(light_request, loaded, session="light")
    order.append("light done")
    heavy.join(SAFETY)
    assert order == ["heavy in attribution", "light done", "heavy done"]
    assert not budget.is_light(heavy_work) and budget.is_light(estimate_work(light_request, loaded.config, 4))
    for name, request in (("heavy", heavy_request), ("light", light_request)):
        alone = analyze(request, loaded)
        np.testing.assert_array_equal(results[name].attribution.scores, alone.attribution.scores)
        np.testing.assert_array_equal(results[name].attention.weights, alone.attention.weights)


def test_only_hooks_of_our_own_stop_a_model_being_lent(tiny_models):
    model = tiny_models["classification"].model
    analyze(AnalysisRequest("the film was good", model=tiny_models["classification"].spec, n_steps=2),
            tiny_models["classification"])  # transformers installs its output-capturing hooks for good
    assert not has_foreign_hooks(model)
    handle = model.base_model.encoder.layer[0].attention.register_forward_hook(lambda m, i, o: o)
    try:
        assert has_foreign_hooks(model)
    finally:
        handle.remove()
    assert not has_foreign_hooks(model)
