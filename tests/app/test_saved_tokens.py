"""Who may delete a saved analysis, what the Saved page lists in team mode, and the upload size limit."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explain import AnalysisRequest, analyze
from explain.document import Document
from explain.store import AnalysisStore
from tests.app.shown import plain

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 120


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "store" / "analyses.sqlite3"
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(path))
    monkeypatch.delenv("EXPLAIN_TEAM_MODE", raising=False)
    return path


@pytest.fixture(scope="module")
def exported(tiny_dirs, tiny_models) -> bytes:
    request = AnalysisRequest("the film was good", model=tiny_dirs["encoder"], n_steps=4)
    return Document(kind="explore", analyses=[analyze(request, tiny_models["encoder"])]).to_json().encode()


def open_page(page: str, params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in (params or {}).items():
        at.query_params[key] = value
    if page != "explore":
        at.switch_page(f"views/{page}.py")
    return at.run()


def delete_buttons(at: AppTest) -> list[str]:
    return [b.key for b in at.button if b.key and b.key.startswith("del_")]


def texts(at: AppTest) -> str:
    return "\n".join(t.value for t in at.text)


def test_only_the_saver_can_delete_and_the_token_is_shown_once(tiny_dirs, store_path):
    saver = open_page("explore", {"m": tiny_dirs["encoder"], "t": "the food was great", "n": "4"})
    saver.button(key="share_save").click().run()
    assert not saver.exception and not saver.error
    analysis_id = saver.query_params["analysis"]
    token = saver.session_state["saved_delete_token"]
    assert any(token == c.value for c in saver.get("code"))
    saver.run()
    assert not any(token in plain(c.value) for c in saver.get("code"))  # shown once

    visitor = open_page("saved")
    assert "the food was great" in texts(visitor)  # others can view ...
    assert delete_buttons(visitor) == []  # ... but have no Delete button
    visitor.text_input(key="delete_id").set_value(analysis_id)
    visitor.text_input(key="delete_token_input").set_value("not-the-token")
    visitor.button(key="delete_with_token").click().run()
    assert [plain(e.value) for e in visitor.error] == [
        f"That delete token does not belong to the saved analysis '{analysis_id}', so nothing was deleted."]
    assert AnalysisStore(store_path).count() == 1

    visitor.text_input(key="delete_token_input").set_value(token)
    visitor.button(key="delete_with_token").click().run()
    assert not visitor.error and not visitor.exception
    assert AnalysisStore(store_path).count() == 0


def test_the_saver_deletes_from_the_saved_page(exported, store_path):
    AnalysisStore(store_path).save({"n": 1}, kind="explore", preview="someone else's text", models=["x"])
    at = open_page("saved")
    at.file_uploader(key="upload").set_value(("good.json", exported, "application/json")).run()
    assert not at.error and not at.exception
    own = next(s.id for s in AnalysisStore(store_path).list() if s.preview == "the film was good")
    at.run()
    assert delete_buttons(at) == [f"del_{own}"]
    at.button(key=f"del_{own}").click().run()
    assert not at.error and not at.exception
    assert [s.preview for s in AnalysisStore(store_path).list()] == ["someone else's text"]


def test_team_mode_lists_only_the_visitors_own_analyses(exported, store_path, monkeypatch):
    AnalysisStore(store_path).save({"n": 1}, kind="explore", preview="someone else's text", models=["x"])
    assert "someone else's text" in texts(open_page("saved"))
    monkeypatch.setenv("EXPLAIN_TEAM_MODE", "1")
    at = open_page("saved")
    assert "someone else's text" not in texts(at)
    assert any("Nothing saved yet" in plain(i.value) for i in at.info)
    at.file_uploader(key="upload").set_value(("good.json", exported, "application/json")).run()
    at.run()
    assert texts(at) == "the film was good"
    assert len(delete_buttons(at)) == 1


def test_an_upload_over_the_document_limit_is_one_error(exported, store_path, monkeypatch):
    monkeypatch.setenv("EXPLAIN_MAX_DOCUMENT_MB", str(1000 / 2**20))
    at = open_page("saved")
    at.file_uploader(key="upload").set_value(("big.json", exported, "application/json")).run()
    assert [plain(e.value) for e in at.error] == [
        f"big.json: The file is {len(exported)} bytes, more than the 1000 bytes an upload may be."]
    assert AnalysisStore(store_path).count() == 0
