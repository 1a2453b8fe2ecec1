"""Exports on the pages under AppTest: the chart image format, the CSV button, the view handed to the HTML export."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard.components.share import IMAGE_FORMAT_KEY, report_view
from dashboard.state import ViewState
from explain.viz.report import ReportView

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 120


def run_app(params: dict[str, str], page: str = "") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    if page:
        at.switch_page(f"views/{page}.py")
    return at.run()


def chart_formats(at: AppTest) -> list[str]:
    return [json.loads(c.proto.config)["toImageButtonOptions"]["format"] for c in at.get("plotly_chart")]


def download_labels(at: AppTest) -> list[str]:
    return [b.proto.label for b in at.get("download_button")]


def test_every_explore_chart_saves_the_chosen_format(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good film", "n": "4", "ao": "1", "gr": "1"})
    assert not at.exception
    # The head map, the aggregate view and the all-heads grid (the prediction is HTML bars, not a chart).
    assert chart_formats(at) == ["png"] * 3
    at.session_state["share_downloads"] = True  # the downloads and the format are sent once their expander opens
    at.run()
    at.button_group(key="share_image_format").set_value("svg").run()
    assert not at.exception
    assert at.session_state[IMAGE_FORMAT_KEY] == "svg"
    assert chart_formats(at) == ["svg"] * 3
    assert "Download CSV" in download_labels(at)


def test_every_compare_chart_saves_the_chosen_format(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "m2": tiny_dirs["encoder"], "t": "good film", "n": "4"}, "compare")
    assert not at.exception
    at.session_state["share_cmp_downloads"] = True
    at.run()
    at.button_group(key="share_cmp_image_format").set_value("svg").run()
    assert not at.exception
    formats = chart_formats(at)
    # two head maps, two rollouts and the distance chart; the predictions are HTML bars, not charts
    assert len(formats) == 5 and set(formats) == {"svg"}
    assert "Download CSV" in download_labels(at)


def test_report_view_carries_every_view_field_of_the_page():
    state = ViewState(level="subword", layer=3, head=5, hide_special=True, aggregate="token", stat="distance",
                      token=4, layer_b=2, head_b=1, mode="texts")
    view = report_view(state)
    for f in fields(ReportView):
        assert getattr(view, f.name) == getattr(state, f.name), f.name
    assert report_view(state, level="word").level == "word"
