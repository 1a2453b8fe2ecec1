"""Knocking heads out on the Explore and Compare pages: from the URL, from the pickers, and through saved links."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from streamlit.proto.Metric_pb2 import Metric as MetricProto
from streamlit.testing.v1 import AppTest

from explain import AnalysisRequest, TargetSpec, analyze, load_model
from explain.heads import HeadSet
from explain.pipeline import analyze_ablated
from tests.app.running import assert_clean
from tests.app.shown import plain

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 120
TEXT = "the film was good but too long ."


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch):
    path = tmp_path / "store" / "analyses.sqlite3"
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(path))
    return path


def open_page(page: str, params: dict[str, str]) -> AppTest:
    """The page opened from a link holding `params` (the app starts on Explore, which rewrites the URL)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if page == "explore":
        at.query_params.update(params)
        return at.run()
    at.run()
    at.switch_page(f"views/{page}.py")
    at.query_params.clear()
    at.query_params.update(params)
    at.session_state[f"_url_loaded_{page}"] = False
    return at.run()


def banner(at: AppTest) -> str:
    return next((plain(i.value) for i in at.info if plain(i.value).startswith("Without heads")), "")


def chart_specs(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def removed_marks(spec: dict) -> int:
    return sum(1 for a in spec["layout"].get("annotations", []) if a.get("text") == "removed")


def test_explore_from_the_url_runs_without_the_heads_and_says_so(tiny_dirs):
    at = open_page("explore", {"m": tiny_dirs["classification"], "t": TEXT, "n": "8", "ab": "1:*,0:2,7:1",
                               "am": "mean", "tg": "class", "lb": "positive", "gr": "1"})
    assert_clean(at)
    assert banner(at).startswith("Without heads 0:2, 1:* — 5 of 8 heads removed (set to their mean output")
    assert any("Layer 7 does not exist" in plain(w.value) for w in at.warning)  # the link's bad entry, dropped
    assert at.query_params["ab"] == "0:2,1:*" and at.query_params["am"] == "mean"
    assert at.multiselect(key="ablate_pick_heads").value == ["0:2"]
    assert at.multiselect(key="ablate_pick_layers").value == [1]
    assert at.radio(key="w_ablate_mode").value == "mean"
    [metric] = at.metric
    loaded = load_model(tiny_dirs["classification"])
    request = AnalysisRequest(TEXT, model=tiny_dirs["classification"], n_steps=8,
                              target=TargetSpec("class", label="positive"))
    full = analyze(request, loaded)
    ablated = analyze_ablated(request, loaded, HeadSet.parse("0:2,1:*", 2, 4), "mean")
    p, q = ablated.prediction, full.prediction
    assert plain(metric.label).startswith("P(positive) from the classification head, without 5 of 8 heads")
    assert float(metric.value) == pytest.approx(float(p.scores[p.explained_index]), rel=1e-2)
    assert f"({float(q.scores[q.explained_index]):.4g})" in plain(metric.proto.delta)
    grid = [spec for spec in chart_specs(at) if removed_marks(spec)]
    assert len(grid) == 1 and removed_marks(grid[0]) == 5  # the all-heads grid crosses out the removed heads


def test_the_change_against_the_full_model_points_the_way_the_score_moved(tiny_dirs):
    """The three classes' probabilities sum to 1, so removing heads raises one and lowers another: some link
    shows a fall, and its arrow must point down (a "-" escaped for Markdown once read as a rise)."""
    directions = {}
    for label in ("negative", "neutral", "positive"):
        at = open_page("explore", {"m": tiny_dirs["classification"], "t": TEXT, "n": "8", "ab": "1:*,0:2",
                                   "am": "zero", "tg": "class", "lb": label})
        assert_clean(at)
        [metric] = at.metric
        change = float(plain(metric.proto.delta).split()[0])
        assert change != 0
        directions[label] = (change < 0, metric.proto.direction)
    assert {falls for falls, _ in directions.values()} == {True, False}
    for falls, direction in directions.values():
        assert direction == (MetricProto.MetricDirection.DOWN if falls else MetricProto.MetricDirection.UP)


def test_explore_pickers_and_buttons_edit_the_link(tiny_dirs):
    at = open_page("explore", {"m": tiny_dirs["encoder"], "t": TEXT, "n": "4", "l": "1", "h": "3"})
    assert_clean(at)
    assert not banner(at) and "ab" not in at.query_params
    at.multiselect(key="ablate_pick_heads").select("0:1").run()
    assert_clean(at)
    assert at.query_params["ab"] == "0:1" and banner(at).startswith("Without heads 0:1 — 1 of 8 heads")
    at.button(key="ablate_add_outlined").click().run()  # the head shown: layer 1, head 3
    assert at.query_params["ab"] == "0:1,1:3"
    at.multiselect(key="ablate_pick_layers").select(0).run()
    assert at.query_params["ab"] == "0:*,1:3"
    titles = [spec["layout"]["title"]["text"].replace("<br>", " ") for spec in chart_specs(at)
              if isinstance(spec["layout"].get("title"), dict) and "text" in spec["layout"]["title"]]
    assert any(t.startswith("Layer 1, head 3 — removed") for t in titles), titles
    assert any("Head 1:3 is removed in this analysis" in plain(c.value) for c in at.caption)
    at.button(key="ablate_clear").click().run()
    assert_clean(at)
    assert "ab" not in at.query_params and not banner(at) and not at.metric


def test_compare_the_model_against_itself_without_heads(tiny_dirs):
    at = open_page("compare", {"m": tiny_dirs["classification"], "t": TEXT, "n": "8", "cm": "heads", "ab": "0:*"})
    assert_clean(at)
    assert banner(at).startswith("Without heads 0:* — 4 of 8 heads removed (set to zero)")
    assert at.segmented_control(key="w_mode").value == "heads"
    labels = [plain(m.label) for m in at.metric]
    assert "Spearman" in labels and any("without 4 of 8 heads" in label for label in labels)
    shown = "\n".join(plain(m.value) for m in at.markdown)
    assert "without heads 0:*" in shown
    at.segmented_control(key="w_mode").set_value("texts").run()  # another mode removes nothing
    assert_clean(at)
    assert not banner(at)


def test_compare_heads_mode_asks_for_heads_first(tiny_dirs):
    at = open_page("compare", {"m": tiny_dirs["classification"], "t": TEXT, "n": "4", "cm": "heads"})
    assert_clean(at)
    assert any("Choose the heads to remove" in plain(i.value) for i in at.info)
    at.multiselect(key="ablate_pick_heads").select("1:2").run()
    assert_clean(at)
    assert at.query_params["ab"] == "1:2" and banner(at).startswith("Without heads 1:2")


@pytest.mark.parametrize("page", ["explore", "compare"])
def test_a_saved_link_reopens_the_ablation(tiny_dirs, page):
    params = {"m": tiny_dirs["classification"], "t": TEXT, "n": "4", "ab": "1:0,1:3", "am": "mean"}
    if page == "compare":
        params["cm"] = "heads"
    at = open_page(page, params)
    assert_clean(at)
    before = banner(at)
    at.button(key="share_save" if page == "explore" else "share_cmp_save").click().run()
    assert_clean(at)
    again = open_page(page, {"analysis": at.query_params["analysis"]})
    assert_clean(again)
    assert banner(again) == before
    if page == "compare":
        assert again.segmented_control(key="w_mode").value == "heads"
        assert any("without 2 of 8 heads" in plain(m.label) for m in again.metric)
    else:
        assert any("not part of this saved analysis" in plain(c.value) for c in again.caption)
