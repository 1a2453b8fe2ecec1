"""The Heads page under Streamlit's AppTest: a link's selection, the pickers, bad links (real models, no mocks)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from explain.heads import MAP_NAMES, PRUNING_ORDERS, head_importance, neuron_view, prepare_inputs
from tests.app import test_fuzz as fuzz
from tests.app.running import assert_clean
from tests.app.shown import plain

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 300
TEXT = "The service was terrible but the food was great."


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(tmp_path / "analyses.sqlite3"))


def run_heads(params: dict[str, str]) -> AppTest:
    """Open the Heads page from a link (the app starts on Explore, so the link is handed to Heads afresh)."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params["t"] = "x"
    at.query_params["n"] = "1"
    at.run()
    at.switch_page("views/heads.py")
    at.session_state["_url_loaded_heads"] = False
    for key in list(at.query_params):
        del at.query_params[key]
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    return at


def array(value) -> np.ndarray:
    """A figure array from the chart's JSON (Plotly sends numpy arrays as base64 typed arrays)."""
    if isinstance(value, dict) and "bdata" in value:
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        return out.reshape([int(n) for n in str(shape).split(",")]) if shape is not None else out
    return np.asarray(value)


def charts(at: AppTest) -> dict[str, dict]:
    """The page's charts by title."""
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def neuron_chart(at: AppTest) -> dict:
    return next(c for title, c in charts(at).items() if title.startswith("Layer "))


def outline(chart: dict) -> tuple[int, int]:
    (shape,) = chart["layout"]["shapes"]
    return int(shape["y0"] + 0.5), int(shape["x0"] + 0.5)


def test_minilm_page_opens_the_linked_selection(minilm):
    at = run_heads({"t": TEXT, "hl": "2", "hh": "5", "hq": "4", "pm": "ablation", "po": "most"})
    assert_clean(at)
    assert not at.warning
    assert at.selectbox(key="w_heads_layer").value == 2 and at.selectbox(key="w_heads_head").value == 5
    assert at.selectbox(key="w_heads_token").value == 4
    assert at.segmented_control(key="w_prune_map").value == "ablation"
    assert at.segmented_control(key="w_prune_order").value == "most"
    shown = charts(at)
    inputs = prepare_inputs(minilm, TEXT)
    importance = head_importance(minilm, inputs)
    for title, values in (("Gradient importance", importance.gradient), ("Ablation effect", importance.ablation_effect),
                          ("Confidence", importance.confidence)):
        chart = shown[title]
        assert np.allclose(array(chart["data"][0]["z"]), values, rtol=1e-4, atol=1e-6), title
        assert outline(chart) == (2, 5)
    view = neuron_view(minilm, inputs, 2, 5, 4)
    neuron = neuron_chart(at)
    assert neuron["layout"]["title"]["text"].startswith("Layer 2, head 5: how «terrible» (#4)")
    keys = next(t for t in neuron["data"] if t.get("name") == "keys k")
    assert np.allclose(array(keys["z"]), view.keys, atol=1e-5)
    attention = next(t for t in neuron["data"] if t.get("name") == "attention")
    assert np.allclose(array(attention["x"]), view.attention, atol=1e-6)
    pruning = next(c for title, c in shown.items() if title.startswith("Pruning heads"))
    assert any("ablation effect order (most important first)" in t.get("name", "") for t in pruning["data"])
    assert at.dataframe[0].value.shape == (3, 4)  # the 3 x 3 rank correlations and the maps' names
    # The link keeps the selection.
    assert {k: at.query_params[k] for k in ("hl", "hh", "hq", "pm", "po")} == {
        "hl": "2", "hh": "5", "hq": "4", "pm": "ablation", "po": "most"}


def test_the_pickers_move_the_selection_the_outline_and_the_link(tiny_dirs):
    at = run_heads({"m": tiny_dirs["encoder"], "t": "the film was good"})
    assert_clean(at)
    assert "hl" not in at.query_params and outline(charts(at)["Gradient importance"]) == (0, 0)
    at.selectbox(key="w_heads_layer").set_value(1).run()
    at.selectbox(key="w_heads_head").set_value(3).run()
    at.selectbox(key="w_heads_token").set_value(2).run()
    assert_clean(at)
    assert (at.query_params["hl"], at.query_params["hh"], at.query_params["hq"]) == ("1", "3", "2")
    assert outline(charts(at)["Confidence"]) == (1, 3)
    assert neuron_chart(at)["layout"]["title"]["text"].startswith("Layer 1, head 3: how «film» (#2)")
    at.segmented_control(key="w_prune_order").set_value("most").run()
    assert_clean(at)
    assert at.query_params["po"] == "most"
    assert [b.proto.label for b in at.get("download_button")] == ["Download JSON"]
    at.button_group(key="heads_share_image_format").set_value("svg").run()
    assert_clean(at)
    formats = [json.loads(c.proto.config)["toImageButtonOptions"]["format"] for c in at.get("plotly_chart")]
    assert formats == ["svg"] * 5


@pytest.mark.parametrize("params,key,says", [
    ({"hl": "one"}, "'hl'", "whole number"),
    ({"hh": "-3"}, "'hh'", "whole number"),
    ({"hq": "1.5"}, "'hq'", "whole number"),
    ({"pm": "magic"}, "'pm'", "gradient, ablation, confidence"),
    ({"po": "sideways"}, "'po'", "least, most"),
])
def test_a_bad_value_in_the_link_is_one_sentence_and_the_rest_is_kept(tiny_dirs, params, key, says):
    good = {"m": tiny_dirs["encoder"], "t": "the film was bad", "hl": "1", "hh": "2", "hq": "3", "pm": "confidence",
            "po": "most"}
    at = run_heads({**good, **params})
    assert_clean(at)
    notices = [plain(w.value) for w in at.warning]
    assert len(notices) == 1, notices
    (notice,) = notices
    assert key in notice and says in notice and notice.count(". ") == 0 and notice.endswith(".")
    kept = {k: v for k, v in good.items() if k not in params and k in ("hl", "hh", "hq", "pm", "po")}
    for k, v in kept.items():
        assert at.query_params[k] == v
    assert at.text_area(key="w_text").value == "the film was bad"
    assert len(at.get("plotly_chart")) == 5  # the page still draws everything


def test_a_head_outside_the_model_is_clamped_with_a_sentence(tiny_dirs):
    at = run_heads({"m": tiny_dirs["encoder"], "t": "the film was bad", "hl": "9", "hh": "7", "hq": "99"})
    assert_clean(at)
    infos = [plain(i.value) for i in at.info]
    assert any("layer 9 does not exist" in i and "showing layer 1" in i for i in infos), infos
    assert any("head 7 does not exist" in i and "showing head 3" in i for i in infos), infos
    assert any("token 99 does not exist" in i for i in infos), infos
    assert neuron_chart(at)["layout"]["title"]["text"].startswith("Layer 1, head 3")


def heads_params() -> st.SearchStrategy[dict]:
    """Links to the Heads page: every key the other pages know, and the heads page's own, odd values included."""
    own = st.fixed_dictionaries({}, optional={
        "hl": fuzz.number(-2, 120), "hh": fuzz.number(-2, 120), "hq": fuzz.number(-2, 600),
        "pm": fuzz.choice(MAP_NAMES), "po": fuzz.choice(PRUNING_ORDERS)})
    return st.builds(lambda a, b: {**a, **b}, fuzz.url_params("heads"), own)


@settings(fuzz.SETTINGS, max_examples=max(1, fuzz.EXAMPLES * 2 // 5),
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                 HealthCheck.function_scoped_fixture])
@given(params=heads_params(), typed=st.none() | fuzz.odd_text(120))
def test_heads_survives_any_link_and_any_typed_text(tiny_dirs, params, typed):
    fuzz.check_page("heads", tiny_dirs, params, typed)


def test_a_sentence_pair_ranks_the_heads_for_the_pair(task_dirs, task_models):
    """Next-sentence prediction reads two texts: the page asks for the second, then ranks the heads on the pair
    exactly as the library does for the same two texts."""
    first, second = "the film was good .", "it was too long ."
    at = run_heads({"m": task_dirs["next_sentence"], "t": first})
    assert_clean(at)
    assert any("second text" in plain(i.value).lower() for i in at.info)
    at = run_heads({"m": task_dirs["next_sentence"], "t": first, "p2": second, "hl": "1", "hh": "2"})
    assert_clean(at)
    loaded = task_models["next_sentence"]
    inputs = prepare_inputs(loaded, (first, second), None, 128)
    assert "[SEP]" in inputs.tokens[1:-1]  # both texts in one input
    expected = head_importance(loaded, inputs)
    shown = charts(at)
    gradient = next(fig for title, fig in shown.items() if "Gradient" in title)
    np.testing.assert_allclose(array(gradient["data"][0]["z"]).astype(np.float64).reshape(expected.gradient.shape),
                               expected.gradient, rtol=1e-4, atol=1e-7)
