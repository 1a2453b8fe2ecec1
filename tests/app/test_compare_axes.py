"""Compare's two prediction charts share one score axis (AppTest)."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from tests.app.test_compare_and_saved import APP, TIMEOUT, assert_clean


def x_range(chart) -> list[float]:
    return json.loads(chart.proto.spec)["layout"]["xaxis"].get("range")


def test_both_prediction_charts_run_from_0_to_1(tiny_dirs):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/compare.py")
    at.query_params.update({"m": tiny_dirs["classification"], "m2": tiny_dirs["encoder"],
                            "t": "the film was good", "n": "4"})
    at.session_state["_url_loaded_compare"] = False
    at.run()
    assert_clean(at)
    predictions = [c for c in at.get("plotly_chart") if "pred_" in c.proto.id]
    assert len(predictions) == 2
    assert [x_range(c) for c in predictions] == [[0.0, 1.0], [0.0, 1.0]]
