"""Moving between pages: the text, the model, the target and the method travel; each page keeps its own settings."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.running import assert_clean
from tests.app.shown import plain

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 120
TEXT = "the food was great but slow"


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(tmp_path / "analyses.sqlite3"))


def go(at: AppTest, page: str) -> AppTest:
    """Open `page` as the sidebar does: Streamlit drops the address bar's parameters on a page change."""
    at.query_params.clear()
    at.switch_page(f"views/{page}.py")
    return at.run()


    assert "None" not in at.query_params.values(), at.query_params


def test_the_text_model_and_settings_survive_a_walk_through_every_page(tiny_dirs):
    model = tiny_dirs["classification"]
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"m": model, "n": "6", "ig": "adaptive_simpson", "dt": "0.05", "l": "1"})
    at.run()
    at.text_area(key="w_text").input(TEXT).run()
    assert_clean(at)
    for page in ("methods", "heads", "compare", "saved", "explore"):
        go(at, page)
        assert_clean(at)
        if page != "saved":
            assert at.text_area(key="w_text").value == TEXT, page
            assert at.query_params["t"] == TEXT and at.query_params["m"] == model, page
    # Explore's own settings are its own again, never a widget's minimum.
    assert at.slider(key="w_steps").value == 6
    assert at.selectbox(key="w_max_tokens").value == 128
    assert at.selectbox(key="w_layer").value == 1
    assert at.query_params["n"] == "6" and at.query_params["l"] == "1"
    assert at.segmented_control(key="w_level").value == "word"


def test_a_page_keeps_its_own_settings_and_starts_others_at_their_defaults(tiny_dirs):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"m": tiny_dirs["classification"], "t": TEXT, "n": "6", "l": "1"})
    at.run()
    go(at, "compare")
    assert_clean(at)
    assert at.selectbox(key="w_layer").value == 0  # compare's own layer: its default, not explore's
    at.selectbox(key="w_layer").set_value(1).run()
    go(at, "explore")
    go(at, "compare")
    assert at.selectbox(key="w_layer").value == 1


def test_heads_removed_on_compare_stay_on_compare(tiny_dirs):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"m": tiny_dirs["classification"], "t": TEXT, "n": "4"})
    at.run()
    at.query_params.clear()
    at.switch_page("views/compare.py")
    at.query_params.update({"m": tiny_dirs["classification"], "t": TEXT, "n": "4", "cm": "heads", "ab": "0:1"})
    at.run()
    assert_clean(at)
    assert at.query_params["ab"] == "0:1"
    go(at, "explore")
    assert_clean(at)
    assert "ab" not in at.query_params
    assert not [i for i in at.info if plain(i.value).startswith("Without heads")]


def test_a_hand_edited_none_falls_back_to_the_defaults(tiny_dirs):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"m": tiny_dirs["classification"], "t": TEXT, "n": "4", "v": "None", "ag": "None"})
    at.run()
    assert not at.exception and not at.error
    assert at.segmented_control(key="w_level").value == "word"
    assert "v" not in at.query_params and "ag" not in at.query_params
    at.segmented_control(key="w_level").set_value("subword").run()
    assert at.query_params["v"] == "subword"


def test_back_from_saved_by_the_sidebar_link_keeps_everything(tiny_dirs):
    """The Saved page draws no widgets of the others: Explore, opened again by its link, must not come back
    with its widgets at their minimum."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params.update({"m": tiny_dirs["classification"], "t": TEXT, "n": "6"})
    at.run()
    link = dict(at.query_params)
    go(at, "saved")
    at.query_params.update(link)  # the sidebar's link to Explore carries Explore's query
    at.switch_page("views/explore.py")
    at.run()
    assert_clean(at)
    assert at.slider(key="w_steps").value == 6 and at.query_params["m"] == tiny_dirs["classification"]
