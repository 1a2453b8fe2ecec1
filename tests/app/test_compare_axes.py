"""Compare draws each side's prediction as Explore does (the HTML bars), both on one 0-1 probability axis (AppTest)."""

from __future__ import annotations

import re

from streamlit.testing.v1 import AppTest

from tests.app.test_compare_and_saved import APP, TIMEOUT, assert_clean

BAR = re.compile(r"width:([\d.]+)%;background:[^;]+;border-radius:3px;\"></div></div></td><td[^>]*>([^<]+)</td>")


def prediction_bars(at: AppTest) -> list[str]:
    """The bodies of the prediction's HTML bars on the page, in order."""
    return [str(h.proto.body) for h in at.get("html") if "</tbody></table>" in str(h.proto.body)
            and "bars from" in str(h.proto.body)]


def test_both_predictions_are_the_explore_bars_on_one_0_to_1_axis(tiny_dirs):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/compare.py")
    at.query_params.update({"m": tiny_dirs["classification"], "m2": tiny_dirs["encoder"],
                            "t": "the film was good", "n": "4"})
    at.session_state["_url_loaded_compare"] = False
    at.run()
    assert_clean(at)
    assert not [c for c in at.get("plotly_chart") if "pred_" in c.proto.id]  # no chart: the bars Explore draws
    bars = prediction_bars(at)
    assert len(bars) == 2
    for body in bars:
        assert "probability, bars from 0 to 1" in body
        drawn = [(float(width), float(score)) for width, score in BAR.findall(body)]
        assert drawn and all(abs(width - 100 * score) < 0.01 for width, score in drawn)  # one axis: 0 to 1
