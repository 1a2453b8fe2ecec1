"""The Corpus page under Streamlit's AppTest: the built-in sample on the embedded model (a few texts), its tables,
charts and finder links, the reopen link, a bad upload and a bad run id in the URL."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import state as url_keys
from explain.corpus.runs import RUN_ID, prune_runs
from explain.methods import METHODS
from tests.app.shown import plain

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 900
ROWS = 4


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(tmp_path / "analyses.sqlite3"))


def corpus_page(params: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/corpus.py")
    at.session_state["_url_loaded_corpus"] = False
    for key, value in (params or {}).items():
        at.query_params[key] = value
    at.run()
    assert not at.exception, at.exception
    return at


def run_sample(at: AppTest, heads: bool = False) -> AppTest:
    at.number_input(key="corpus_rows").set_value(ROWS)
    if heads:
        at.checkbox(key="corpus_heads").check()
    at.button(key="corpus_run").click()
    at.run()
    assert not at.exception, at.exception
    return at


def link_of(at: AppTest) -> str:
    links = [c.value for c in at.code if "corpus?run=" in c.value]
    assert links, "no reopen link was shown"
    return links[0]


@pytest.mark.slow
def test_the_sample_runs_and_its_link_reopens_it(tmp_path):
    at = run_sample(corpus_page(), heads=True)
    assert not at.error, [e.value for e in at.error]
    assert [m.value for m in at.metric][:1] == [f"{ROWS} of {ROWS}"]
    charts = at.get("plotly_chart")
    assert len(charts) >= 3, "ranking, words and slices charts"
    frames = at.dataframe
    assert len(frames) >= 5
    ranking = frames[0].value
    assert set(ranking["method"]) == {METHODS["gradient_x_input"].title, METHODS["saliency"].title}
    assert (ranking["comprehensiveness_low"] <= ranking["comprehensiveness"]).all()
    assert any("flagged" in f.value.columns for f in frames), "the candidate shortcuts table"
    assert "Heads over the data" in [h.value for h in at.subheader]
    heatmaps = [json.loads(c.proto.spec) for c in charts]
    heatmap = next(f for f in heatmaps if f["data"][0]["type"] == "heatmap")
    assert heatmap["layout"]["xaxis"]["title"]["text"] == "head" and heatmap["layout"]["yaxis"]["title"]["text"] == "layer"
    assert heatmap["data"][0]["colorbar"]["title"]["text"] and "±" in heatmap["data"][0]["text"][0][0]
    top = next(f.value for f in frames if "importance" in f.value.columns)
    assert len(top) == 10 and top["texts"].eq(ROWS).all() and top["gradient"].str.contains("±").all()
    finders = [f.value for f in frames if "open" in f.value.columns]
    assert finders, "no finder table"
    finder = finders[-1]
    url = urlparse(finder["open"].iloc[0])
    query = parse_qs(url.query)
    assert url.path == "/"
    assert query[url_keys.KEY_TEXT] == [finder["text"].iloc[0]]
    assert query[url_keys.KEY_METHOD] == ["gradient_x_input"]
    link = link_of(at)
    identity = parse_qs(urlparse(link).query)["run"][0]
    assert RUN_ID.fullmatch(identity)
    assert at.query_params[url_keys.KEY_RUN] == identity

    reopened = corpus_page({url_keys.KEY_RUN: identity})
    assert not reopened.error
    assert [m.value for m in reopened.metric][:1] == [f"{ROWS} of {ROWS}"]
    assert link_of(reopened) == link


def test_a_bad_run_id_in_the_url_gets_one_sentence():
    at = corpus_page({url_keys.KEY_RUN: "../../etc"})
    assert [plain(e.value) for e in at.error] == ["The link's run id is not one this page makes (16 hexadecimal characters); "
                                           "start a run below."]
    at = corpus_page({url_keys.KEY_RUN: "0123456789abcdef"})
    assert len(at.error) == 1 and "No corpus run has the id 0123456789abcdef" in plain(at.error[0].value)
    assert not at.metric


@pytest.mark.parametrize("name, data, expected", [
    ("data.csv", b"x" * (2 * 2 ** 20), "over this server's 1 MB limit for uploads"),
    ("data.jsonl", b"[1, 2]\n", "not a JSON object"),
])
def test_a_bad_upload_gets_one_sentence(monkeypatch, name, data, expected):
    monkeypatch.setenv("EXPLAIN_CORPUS_UPLOAD_MB", "1")
    at = corpus_page()
    at.radio(key="corpus_source").set_value("upload").run()
    at.get("file_uploader")[0].set_value((name, data, "text/plain")).run()
    assert not at.exception, at.exception
    assert len(at.error) == 1 and expected in plain(at.error[0].value)
    assert at.button(key="corpus_run").disabled


def test_only_the_newest_runs_are_kept(tmp_path):
    import os

    for i in range(5):
        folder = tmp_path / f"{i:016x}"
        folder.mkdir()
        os.utime(folder, (1000 + i, 1000 + i))
    (tmp_path / "not-a-run").mkdir()
    assert prune_runs(tmp_path, 3, protect=f"{0:016x}") == [f"{1:016x}", f"{2:016x}"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i:016x}" for i in (0, 3, 4)] + ["not-a-run"]
