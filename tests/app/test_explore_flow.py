"""The explore page's "Information flow (ALTI)" section under AppTest: from the URL, its expander and the threshold
slider, a hand-edited threshold, and a model ALTI refuses."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dashboard.state import KEY_ABLATE_MODE
from tests.app.running import assert_clean, run_app
from tests.app.shown import plain

HEADING = "Information flow (ALTI)"
PAGE_CHARTS = 1  # one head (the prediction is HTML; the other attention views are drawn when opened)


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(tmp_path / "store" / "analyses.sqlite3"))


def captions(at: AppTest) -> str:
    return "\n".join(plain(c.value) for c in at.caption)


def warnings(at: AppTest) -> list[str]:
    return [plain(w.value) for w in at.warning]


def test_the_url_turns_the_section_on_at_its_threshold(tiny_dirs):
    at = run_app({"m": tiny_dirs["classification"], "t": "the film was good", "n": "4", "me": "alti",
                  "fl": "1", "ft": "0.1"})
    assert_clean(at)
    assert any(e.label.startswith(HEADING) for e in at.expander)
    assert at.session_state["w_flow"] is True  # the section's expander is open
    assert at.slider(key="w_flow_threshold").value == pytest.approx(0.1)
    assert len(at.get("plotly_chart")) == PAGE_CHARTS + 1
    assert "more than 0.1 of its vector" in captions(at)
    assert at.query_params["fl"] == "1" and at.query_params["ft"] == "0.1"


def test_closed_by_default_then_its_expander_and_the_slider_write_the_url(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "the food was bad", "n": "4"})
    assert_clean(at)
    assert any(e.label.startswith(HEADING) for e in at.expander)
    assert at.session_state["w_flow"] is False and "fl" not in at.query_params and "ft" not in at.query_params
    assert len(at.get("plotly_chart")) == PAGE_CHARTS and not any(s.key == "w_flow_threshold" for s in at.slider)
    at.session_state["w_flow"] = True  # what a click on the expander sets
    at.run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == PAGE_CHARTS + 1 and at.query_params["fl"] == "1"
    assert "more than 0.05 of its vector" in captions(at)
    at.slider(key="w_flow_threshold").set_value(0.2).run()
    assert_clean(at)
    assert at.query_params["ft"] == "0.2" and "more than 0.2 of its vector" in captions(at)

    again = run_app(dict(at.query_params))  # the link reopens the same view
    assert_clean(again)
    assert again.slider(key="w_flow_threshold").value == pytest.approx(0.2)
    assert "more than 0.2 of its vector" in captions(again)


@pytest.mark.parametrize("bad", ["abc", "5", "-0.1", "0.1.2"])
def test_a_hand_edited_threshold_falls_back_to_the_default_with_one_sentence(tiny_dirs, bad):
    at = run_app({"m": tiny_dirs["encoder"], "t": "the food was bad", "n": "4", "fl": "1", "ft": bad})
    assert_clean(at)
    assert "The link's 'ft' value was ignored: expected a number from 0 to 1." in warnings(at)
    assert at.slider(key="w_flow_threshold").value == pytest.approx(0.05)
    assert len(at.get("plotly_chart")) == PAGE_CHARTS + 1
    assert "ft" not in at.query_params


def test_a_model_alti_refuses_gets_the_refusal_in_place_of_the_chart(tmp_path):
    from testkit.families import save_tiny_family

    folder = save_tiny_family(tmp_path / "deberta", "deberta")
    at = run_app({"m": str(folder), "t": "the film was good", "n": "4", "fl": "1"})
    assert_clean(at)
    infos = [plain(i.value) for i in at.info]
    assert any(i.startswith("ALTI needs plain dot-product attention") for i in infos), infos
    assert len(at.get("plotly_chart")) == PAGE_CHARTS
    assert not at.get("slider") or all(s.key != "w_flow_threshold" for s in at.slider)


def test_a_saved_analysis_says_the_flow_needs_a_live_analysis(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "the food was great", "n": "4", "fl": "1"})
    assert_clean(at)
    at.button(key="share_save").click().run()
    assert_clean(at)
    again = run_app({"analysis": at.query_params["analysis"], "fl": "1"})
    assert_clean(again)
    assert any("has no flow stored" in plain(i.value) for i in again.info)
    assert len(again.get("plotly_chart")) == PAGE_CHARTS


def test_with_heads_set_to_zero_the_flow_follows_the_ablated_model(tiny_dirs):
    at = run_app({"m": tiny_dirs["classification"], "t": "the film was good", "n": "4", "fl": "1", "ab": "0:1"})
    assert_clean(at)
    assert any(s.key == "w_flow_threshold" for s in at.slider)
    assert not any("information flow" in plain(i.value) for i in at.info)


def test_with_heads_set_to_their_mean_the_section_says_why_instead_of_drawing(tiny_dirs):
    at = run_app({"m": tiny_dirs["classification"], "t": "the film was good", "n": "4", "fl": "1", "ab": "0:1",
                  KEY_ABLATE_MODE: "mean"})
    assert_clean(at)
    assert any(plain(i.value).startswith("The information flow follows removed heads only when they are set to zero")
               for i in at.info)
    assert all(s.key != "w_flow_threshold" for s in at.slider)
