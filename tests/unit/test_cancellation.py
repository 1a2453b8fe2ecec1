"""Closing the tab cancels work nobody waits for: a scheduled computation stops at its next progress point once
every session waiting for it has gone, goes on while any remains, and is never cached as a result; heavy methods
report progress often enough for that.

A waiter is a thread calling `ScheduledCache.compute` as a page's script run does. When a tab closes, Streamlit
asks that run to stop and raises StopException at its next element update, which is the waiter's progress call;
the waiters here raise the same exception once told that their tab closed.
"""

from __future__ import annotations

import math
import threading

import pytest
import torch
from streamlit.runtime.scriptrunner_utils.exceptions import StopException

from explain import AnalysisRequest
from explain.methods import get_method
from explain.pipeline import attribution_context, evaluate_faithfulness, explain_method
from explain.scheduling import ScheduledCache, Schedulers, WorkBudget
from testkit.contexts import build_context

SAFETY = 60  # seconds: a broken cache fails the test instead of hanging it
PASSES = 30  # forward passes of the slow computation
GATE, LATER_GATE = 3, 10  # the computation waits before these passes until the test opens their gates
TEXT = "the film was good but far too long and the ending made no sense at all"


def wait_until(condition, what: str, seconds: float = SAFETY) -> None:
    pause = threading.Event()
    for _ in range(int(seconds * 20)):
        if condition():
            return
        pause.wait(0.05)
    raise AssertionError(f"gave up waiting for {what}")


class SlowWork:
    """A real computation on a tiny model: one forward pass at a time, a progress report after each."""

    def __init__(self, loaded, gated: bool = True) -> None:
        self.inputs = loaded.tokenizer(TEXT, return_tensors="pt")
        self.passes: list[int] = []
        self.starts = 0
        self.at_gate, self.gate = threading.Event(), threading.Event()
        self.at_later_gate, self.later_gate = threading.Event(), threading.Event()
        if not gated:
            self.gate.set()
        self.later_gate.set()

    def __call__(self, loaded, step) -> str:
        self.starts += 1
        for i in range(PASSES):
            if i == GATE:
                self.at_gate.set()
                assert self.gate.wait(SAFETY)
            if i == LATER_GATE:
                self.at_later_gate.set()
                assert self.later_gate.wait(SAFETY)
            with torch.no_grad():
                loaded.model(**self.inputs)
            self.passes.append(i)
            step("working", (i + 1) / PASSES)
        return "finished"


class Waiter(threading.Thread):
    """A page's script run waiting for `key`; `close()` closes its tab."""

    def __init__(self, cache: ScheduledCache, key, loaded, work: SlowWork, session: str) -> None:
        super().__init__(daemon=True)
        self.cache, self.key, self.loaded, self.work, self.session = cache, key, loaded, work, session
        self.closed = threading.Event()
        self.reports: list[float | None] = []
        self.outcome: object = None

    def close(self) -> None:
        self.closed.set()

    def progress(self, stage: str, fraction: float | None) -> None:
        self.reports.append(fraction)
        if self.closed.is_set():
            raise StopException()

    def run(self) -> None:
        try:
            self.outcome = self.cache.compute(self.key, self.loaded, self.work, work=1e6, what="Slow work",
                                              advice="", progress=self.progress, session=self.session)
        except BaseException as exc:  # noqa: BLE001 - the test reads what ended the wait
            self.outcome = exc


def slow_cache() -> ScheduledCache:
    return ScheduledCache(budget=WorkBudget(max_work=math.inf, rate=1.0, light_seconds=0.0), schedulers=Schedulers())


def test_work_nobody_waits_for_stops_at_its_next_progress_point_and_is_not_cached(tiny_models):
    loaded = tiny_models["classification"]
    cache, work = slow_cache(), SlowWork(loaded)
    tab = Waiter(cache, "key", loaded, work, "tab A")
    tab.start()
    assert work.at_gate.wait(SAFETY)
    tab.close()  # the tab closes during a stretch of work without a progress report
    work.gate.set()
    tab.join(SAFETY)
    assert isinstance(tab.outcome, StopException)
    scheduler = cache.schedulers.get(loaded.spec)
    wait_until(lambda: scheduler.active() == 0, "the cancelled work to give its turn back")
    assert work.passes == list(range(GATE + 1))  # stopped at the first progress point after the tab left
    assert cache.get("key") is None and len(cache) == 0
    again = SlowWork(loaded, gated=False)
    assert cache.compute("key", loaded, again, work=1e6, what="", advice="") == "finished"
    assert again.passes == list(range(PASSES)) and cache.get("key") == "finished"
    assert work.passes == list(range(GATE + 1))  # the cancelled run never went on


def test_shared_work_goes_on_while_any_waiter_remains(tiny_models):
    """Tab A starts the work and tab B waits for it too; A moves on to another request on the same model (its
    older turn would be replaced), and the work goes on for B without starting over."""
    loaded = tiny_models["classification"]
    cache, work = slow_cache(), SlowWork(loaded)
    work.later_gate.clear()
    first = Waiter(cache, "key", loaded, work, "tab A")
    first.start()
    assert work.at_gate.wait(SAFETY)
    second = Waiter(cache, "key", loaded, work, "tab B")
    second.start()
    wait_until(lambda: second.reports, "the second tab to see the shared progress", seconds=10)
    first.close()
    work.gate.set()
    first.join(SAFETY)
    assert isinstance(first.outcome, StopException)
    assert work.at_later_gate.wait(SAFETY)
    scheduler = cache.schedulers.get(loaded.spec)
    next_request = Waiter(cache, "other key", loaded, SlowWork(loaded, gated=False), "tab A")
    next_request.start()
    wait_until(lambda: scheduler.waiting() == 1, "tab A's next request in the queue")
    work.later_gate.set()
    second.join(SAFETY)
    next_request.join(SAFETY)
    assert second.outcome == "finished" and next_request.outcome == "finished"
    assert work.starts == 1 and work.passes == list(range(PASSES))  # one run, not restarted for the second tab
    assert cache.get("key") == "finished"


def test_smoothgrad_with_many_samples_reports_progress_as_it_goes(tiny_models):
    context = build_context(tiny_models["classification"], TEXT)
    method = get_method("smoothgrad")
    for over in ("saliency", "gradient_x_input", "integrated_gradients"):
        fractions: list[float] = []
        settings = method.settings_type.parse({"over": over, "nt_samples": 64, "ig_steps": 4})
        method.attribute(context, settings, progress=fractions.append)
        during = [f for f in fractions if f < 1.0]
        assert len(during) > 1, over
        assert during == sorted(during) and fractions[-1] == 1.0


def test_a_stopped_smoothgrad_run_stops_inside_its_samples(tiny_models):
    context = build_context(tiny_models["classification"], TEXT)
    settings = get_method("smoothgrad").settings_type.parse({"nt_samples": 64})
    fractions: list[float] = []

    class Left(Exception):
        pass

    def progress(fraction: float) -> None:
        fractions.append(fraction)
        raise Left

    with pytest.raises(Left):
        get_method("smoothgrad").attribute(context, settings, progress=progress)
    assert fractions == [fractions[0]] and fractions[0] < 0.5


def test_faithfulness_reports_progress(tiny_models):
    loaded = tiny_models["classification"]
    request = AnalysisRequest(TEXT, model=loaded.spec)
    context = attribution_context(request, loaded)
    results = {"occlusion": explain_method(request, loaded, "occlusion", context=context)}
    fractions: list[float] = []
    evaluate_faithfulness(request, loaded, results, progress=fractions.append)
    assert fractions and fractions[-1] == 1.0 and fractions == sorted(fractions)
