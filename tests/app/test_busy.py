"""One user cannot stall everyone (AppTest, real tiny model): a full queue is one clear sentence, and
cached results and saved analyses are served while someone else's analysis holds the model."""

from __future__ import annotations

import threading
from contextlib import ExitStack
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import cached
from explain.document import Document
from tests.app.running import run_app
from tests.app.shown import plain

SAFETY = 60


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "store" / "analyses.sqlite3"
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(path))
    return path


def n_charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


class Occupied:
    """Other sessions' analyses on a model: one heavy running (holding the model's lock) and `waiting` queued,
    light ones when `light` (light and heavy work are bounded apart in the queue)."""

    def __init__(self, spec: str, waiting: int = 0, light: bool = False) -> None:
        loaded = cached.get_model(spec)
        self.scheduler = cached.analysis_cache().schedulers.get(loaded.spec)
        self.release = threading.Event()
        running = threading.Event()

        def hold(name: str, lock, light: bool = False) -> None:
            with self.scheduler.turn(light=light, session=name), ExitStack() as stack:
                if lock is not None:
                    stack.enter_context(lock)
                running.set()
                self.release.wait(SAFETY)

        self.threads = [threading.Thread(target=hold, args=("running", loaded.lock), daemon=True)]
        self.threads[0].start()
        running.wait(SAFETY)
        for i in range(waiting):
            self.threads.append(threading.Thread(target=hold, args=(f"waiting-{i}", None, light), daemon=True))
            self.threads[-1].start()
        for _ in range(SAFETY * 20):
            if self.scheduler.waiting() == waiting:
                break
            self.release.wait(0.05)

    def __enter__(self) -> Occupied:
        return self

    def __exit__(self, *exc) -> None:
        self.release.set()
        for thread in self.threads:
            thread.join(SAFETY)


def test_a_full_queue_is_one_busy_sentence_and_the_page_works_once_it_drains(tiny_dirs):
    spec = tiny_dirs["classification"]
    params = {"m": spec, "t": "the film was good and not too long", "n": "4"}
    with Occupied(spec, waiting=cached.analysis_cache().schedulers.max_waiting, light=True) as occupied:
        at = run_app(params)
        assert not at.exception
        assert [plain(e.value) for e in at.error] == [
            f"The server is busy with {occupied.scheduler.max_waiting + 1} analyses on this model; "
            "try again in a minute."]
        assert at.text_area(key="w_text").value == params["t"]
    at.run()
    assert not at.exception and not at.error
    assert n_charts(at) >= 1


def test_cached_results_and_saved_analyses_do_not_wait_for_a_running_analysis(tiny_dirs):
    spec = tiny_dirs["classification"]
    params = {"m": spec, "t": "the service was slow but the food was great", "n": "4"}
    first = run_app(params)
    assert not first.exception and not first.error and n_charts(first) >= 1
    loaded = cached.get_model(spec)
    result = cached.analysis_cache().get(cached.AnalysisCache.key(first_request(params, loaded), loaded.spec))
    assert result is not None
    document = Document(kind="explore", analyses=[result], view={})
    saved_id = cached.get_store().save(document.to_data(), kind=document.kind, preview=document.preview,
                                       models=document.models)
    with Occupied(spec):
        again = run_app(params)  # another session, same request: the shared cache answers
        assert not again.exception and not again.error and n_charts(again) >= 1
        reopened = run_app({"analysis": saved_id})
        assert not reopened.exception and not reopened.error and n_charts(reopened) >= 1


def first_request(params: dict[str, str], loaded):
    """The request the page makes for these link params (read as the page reads them, link migrations included)."""
    from dashboard.state import from_query

    state, _ = from_query(params)
    return state.request()
