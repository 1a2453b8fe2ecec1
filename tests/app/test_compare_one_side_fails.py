"""A second model that cannot be loaded leaves the first side on the Compare page (AppTest)."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app.shown import plain
from tests.app.test_compare_and_saved import APP, TIMEOUT, html_text
from tests.app.test_compare_axes import prediction_bars


def test_an_unreachable_second_model_fails_alone(tiny_dirs, tmp_path):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/compare.py")
    at.query_params.update({"m": tiny_dirs["encoder"], "m2": str(tmp_path / "no-such-model"),
                            "t": "the food was great", "n": "4"})
    at.session_state["_url_loaded_compare"] = False
    at.run()
    assert not at.exception
    errors = [plain(e.value) for e in at.error]
    assert len(errors) == 1 and errors[0].startswith("Second side"), errors
    assert "food" in html_text(at)  # the first side's highlights
    assert len(prediction_bars(at)) == 1  # the first side's prediction
    assert any("second side could not be analysed" in plain(i.value) for i in at.info)
