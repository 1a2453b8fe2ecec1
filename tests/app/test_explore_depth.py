"""The explore page's "Where the score comes from" section under AppTest: from the URL, its expander, save and reopen."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explain.document import document_from_data
from explain.store import AnalysisStore
from tests.app.running import assert_clean, run_app
from tests.app.shown import plain

HEADING = "Where the score comes from"


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch):
    path = tmp_path / "store" / "analyses.sqlite3"
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(path))
    return path


def captions(at: AppTest) -> str:
    return "\n".join(plain(c.value) for c in at.caption)


def test_the_url_key_turns_the_section_on_and_shows_both_figures(tiny_dirs):
    at = run_app({"m": tiny_dirs["classification"], "t": "the film was good", "n": "6", "dp": "1"})
    assert_clean(at)
    assert any(e.label.startswith(HEADING) for e in at.expander)
    assert at.session_state["w_depth"] is True  # the section's expander is open
    assert len(at.get("plotly_chart")) == 3  # the page's one head, the embedding parts and the layers
    text = captions(at)
    assert "split over the three embeddings" in text and "every row adds up to the score change" in text
    assert at.query_params["dp"] == "1"


def test_closed_by_default_and_opened_by_its_expander(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "the food was bad", "n": "6"})
    assert_clean(at)
    assert at.session_state["w_depth"] is False
    assert len(at.get("plotly_chart")) == 1 and "every encoder layer" not in captions(at)  # nothing of it sent
    assert "dp" not in at.query_params
    at.session_state["w_depth"] = True  # what a click on the expander sets
    at.run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 3
    assert at.query_params["dp"] == "1"


def test_a_saved_analysis_keeps_its_depth_and_reopens_without_the_model(tiny_dirs, tmp_path, store_path):
    folder = Path(shutil.copytree(tiny_dirs["encoder"], tmp_path / "model"))
    at = run_app({"m": str(folder), "t": "the food was great", "n": "6", "dp": "1"})
    assert_clean(at)
    before = captions(at)
    at.button(key="share_save").click().run()
    assert_clean(at)
    analysis_id = at.query_params["analysis"]
    saved = document_from_data(AnalysisStore(store_path).load(analysis_id).document).analyses[0]
    assert saved.embedding_parts is not None and saved.layer_attribution is not None
    np.testing.assert_allclose(saved.layer_attribution.scores.sum(1),
                               saved.layer_attribution.score_input - saved.layer_attribution.score_baseline,
                               rtol=1e-2, atol=1e-6)

    shutil.rmtree(folder)  # the link reopens the saved numbers; nothing is recomputed
    again = run_app({"analysis": analysis_id})
    assert_clean(again)
    assert len(again.get("plotly_chart")) == 3
    saved_only = "Change the text or a setting to analyse live, then choose heads to remove."  # the sidebar's
    assert "\n".join(c for c in captions(again).split("\n") if c != saved_only) == before
