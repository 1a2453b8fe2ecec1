"""The explore page under Streamlit's AppTest: real models, real widgets, no browser."""

from __future__ import annotations

import html
import json
import re

import pytest
from streamlit.testing.v1 import AppTest

from tests.app.running import assert_clean, run_app
from tests.app.shown import plain


def html_text(at: AppTest) -> str:
    return "\n".join(str(h.proto.body) for h in at.get("html"))


@pytest.mark.integration
def test_defaults_render_on_the_embedded_model():
    at = run_app({})
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 1  # one head (the prediction is HTML); the other views open on request
    body = html_text(at)
    assert "film" in body and "blue raises <b>P(" in body
    assert at.query_params["t"] == "The film was good but far too long."


@pytest.mark.parametrize(
    "head,text",
    [("classification", "the film was good"), ("masked_lm", "the film was [MASK] ."), ("encoder", "the food was bad")],
)
def test_each_head_type_renders(tiny_dirs, head, text):
    at = run_app({"m": tiny_dirs[head], "t": text, "n": "8", "ao": "1", "gr": "1"})
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 3  # one head, the rollout and all heads
    assert "food" in html_text(at) or "film" in html_text(at)


def test_url_parameters_set_the_view(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good film", "l": "1", "h": "3", "v": "subword", "sp": "1",
                  "n": "5"})
    assert_clean(at)
    assert at.selectbox(key="w_layer").value == 1
    assert at.selectbox(key="w_head").value == 3
    assert at.toggle(key="w_hide_special").value is True
    assert at.slider(key="w_steps").value == 5


def test_changing_the_head_updates_the_url(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good film", "n": "5"})
    at.selectbox(key="w_head").set_value(2).run()
    assert_clean(at)
    assert at.query_params["h"] == "2"


def test_bad_parameters_fall_back_with_notices(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good film", "n": "zillion", "b": "<script>", "l": "77",
                  "junk": "1"})
    assert_clean(at)
    warnings = " ".join(plain(w.value) for w in at.warning)
    assert "'n'" in warnings and "'b'" in warnings and "junk" in warnings
    assert any("layer 77 does not exist" in plain(i.value) for i in at.info)
    assert at.slider(key="w_steps").value == 50


def test_unknown_model_is_one_clear_error_and_the_page_survives():
    at = run_app({"m": "/no/such/folder", "t": "hello"})
    assert not at.exception
    assert len(at.error) == 1 and "does not exist" in plain(at.error[0].value)
    assert at.text_area(key="w_text").value == "hello"


def test_empty_text_asks_for_text(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good"})
    at.text_area(key="w_text").set_value("   ").run()
    assert not at.exception
    assert any("Type or paste" in plain(i.value) for i in at.info)


def test_html_in_text_is_escaped(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "<img src=x onerror=alert(1)> good", "n": "4"})
    assert_clean(at)
    body = html_text(at)
    assert "<img" not in body and "&lt;" in body


@pytest.mark.parametrize("aggregate,widget", [("stats", "w_stat"), ("token", "w_token")])
def test_aggregate_view_comes_from_the_url(tiny_dirs, aggregate, widget):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good film", "n": "4", "ag": aggregate, "st": "distance",
                  "tok": "2"})
    assert_clean(at)
    assert at.selectbox(key=widget).value == ("distance" if widget == "w_stat" else 2)
    # A link naming an aggregate view without `ao` comes from before the views could close: it opens them.
    assert at.session_state["w_show_aggregates"] is True and at.query_params["ao"] == "1"
    assert len(at.get("plotly_chart")) == 2  # one head, the aggregate view


def test_fast_mode_from_the_url_says_in_words_how_it_went(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "the food was great", "n": "65", "fa": "1"})
    assert_clean(at)
    assert at.toggle(key="w_fast").value is True
    caption = next(plain(c.value) for c in at.caption if "Fast mode" in c.value)
    assert re.search(r"(met its tolerance|did not meet its tolerance|float32 rounding)", caption), caption
    assert re.search(r"after \d+ model evaluations", caption) and "65" in caption and "bfloat16" in caption
    assert "At most" in at.slider(key="w_steps").label  # in fast mode the slider is the most steps allowed
    fixed = run_app({"m": tiny_dirs["encoder"], "t": "the food was great", "n": "65"})  # a link from before `ig`
    assert at.selectbox(key="w_integration").disabled and not fixed.selectbox(key="w_integration").disabled
    assert fixed.selectbox(key="w_integration").value == "gauss_legendre"
    assert fixed.slider(key="w_steps").label == "Integration steps"
    assert any("Integrated gradients: 65 steps" in plain(c.value) for c in fixed.caption)
    assert not any("Fast mode" in plain(c.value) for c in fixed.caption)


def test_adaptive_integration_is_the_default_and_the_slider_is_its_cap(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "the food was great", "n": "40", "ig": "adaptive_simpson"})
    assert_clean(at)
    assert at.selectbox(key="w_integration").value == "adaptive_simpson"
    assert at.slider(key="w_steps").label == "At most this many model evaluations"
    caption = next(plain(c.value) for c in at.caption if "Adaptive integrated gradients" in c.value)
    assert re.search(r"\d+ model evaluations \(the slider allows up to 40\)", caption) or "cap of 40" in caption
    assert at.query_params["ig"] == "adaptive_simpson"


def charts(at: AppTest) -> list[dict]:
    return [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]


def grid_chart(at: AppTest) -> dict:
    return next(c for c in charts(at) if len(c["data"]) == 2 and c["data"][1]["type"] == "scatter")


def head_chart(at: AppTest) -> dict:
    return next(c for c in charts(at) if c["layout"].get("title", {}).get("text", "").startswith("Layer"))


def test_stretch_each_map_is_a_labelled_checkbox_kept_in_the_url(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good film", "n": "4"})
    assert_clean(at)
    box = at.checkbox(key="w_stretch")
    assert box.label == "Stretch each map" and box.value is False
    assert head_chart(at)["data"][0]["zmax"] == 1  # one absolute scale by default
    assert "sc" not in at.query_params
    box.check().run()
    assert_clean(at)
    assert at.query_params["sc"] == "1"
    assert head_chart(at)["data"][0]["zmax"] < 1  # each map to its own maximum
    again = run_app({"m": tiny_dirs["encoder"], "t": "good film", "n": "4", "sc": "1"})
    assert again.checkbox(key="w_stretch").value is True


def test_grid_outline_follows_the_layer_and_head_pickers(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good film", "n": "4", "ag": "stats", "gr": "1"})
    assert_clean(at)

    def outlines() -> list[tuple[float, float]]:
        found = []
        for chart in (grid_chart(at), next(c for c in charts(at) if c["layout"].get("meta", {}).get("head_cells")
                                            and len(c["data"]) == 1)):
            cells = chart["layout"]["meta"]["head_cells"]
            (shape,) = chart["layout"]["shapes"]
            found.append(((shape["y0"] + 0.5) / cells["pitch"], (shape["x0"] + 0.5) / cells["pitch"]))
        return found

    assert outlines() == [(0, 0), (0, 0)]
    at.selectbox(key="w_layer").set_value(1).run()
    at.selectbox(key="w_head").set_value(3).run()
    assert_clean(at)
    assert outlines() == [(1, 3), (1, 3)]  # the all-heads grid and the head-statistics map


def test_highlights_say_when_the_explained_score_barely_changes(tiny_dirs):
    from explain import AnalysisRequest, analyze
    from explain.viz.highlights import attribution_note

    request = AnalysisRequest(text="the film was good", model=tiny_dirs["classification"], n_steps=8)
    a = analyze(request).attribution
    note = attribution_note(a.score_input, a.score_baseline)
    assert note is not None and "barely changes" in note  # a tiny random classifier hardly moves its score
    at = run_app({"m": tiny_dirs["classification"], "t": "the film was good", "n": "8"})
    assert_clean(at)
    assert html.escape(note) in html_text(at)
    caption = next(plain(c.value) for c in at.caption if "Integrated gradients" in c.value)
    assert "0.0000" not in caption and "e-0" in caption  # the tiny sum in significant digits


def test_the_delta_tolerance_control_follows_the_link_and_the_caption_says_what_was_checked(tiny_dirs):
    """Issue 21 B1: the largest delta allowed is a control; an old link without `dt` checks the tokens only."""
    at = run_app({"m": tiny_dirs["encoder"], "t": "the food was great", "n": "40", "ig": "adaptive_simpson",
                  "dt": "0.2"})
    assert_clean(at)
    assert at.number_input(key="w_delta_tolerance").value == 0.2
    assert at.query_params["dt"] == "0.2"
    caption = next(plain(c.value) for c in at.caption if "Adaptive integrated gradients" in c.value)
    assert "within 20% of the score change" in caption or "cap of 40" in caption
    old = run_app({"m": tiny_dirs["encoder"], "t": "the food was great", "n": "40", "ig": "adaptive_simpson"})
    assert_clean(old)
    assert old.number_input(key="w_delta_tolerance").value == 0.0 and old.query_params["dt"] == "0.0"
    caption = next(plain(c.value) for c in old.caption if "Adaptive integrated gradients" in c.value)
    assert "convergence delta within" not in caption


def test_the_other_views_open_from_their_expanders_and_the_link_reopens_them(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good film", "n": "4"})
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 1 and "ao" not in at.query_params and "gr" not in at.query_params
    assert any(e.label.startswith("All heads: the maps of all 2 x 4 heads") for e in at.expander)
    at.session_state["w_show_grid"] = True  # what a click on the expander sets
    at.run()
    at.session_state["w_show_aggregates"] = True
    at.run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 3 and at.query_params["gr"] == "1" and at.query_params["ao"] == "1"
    at.segmented_control(key="w_aggregate").set_value("token").run()
    at.session_state["w_show_aggregates"] = False
    at.run()
    assert_clean(at)
    assert len(at.get("plotly_chart")) == 2
    # The view chosen inside the closed section stays in the link, which says the section is closed.
    assert at.query_params["ag"] == "token" and at.query_params["ao"] == "0"
    again = run_app(dict(at.query_params))
    assert_clean(again)
    assert again.session_state["w_show_aggregates"] is False and again.session_state["w_show_grid"] is True
    assert len(again.get("plotly_chart")) == 2
    again.session_state["w_show_aggregates"] = True
    again.run()
    assert again.segmented_control(key="w_aggregate").value == "token"


@pytest.mark.integration
def test_the_score_table_is_sent_only_while_its_expander_is_open():
    """A closed expander's content is still drawn by the browser: the first screen sends no dataframe."""
    at = run_app({})
    assert_clean(at)
    assert [e.label for e in at.expander][0] == "Word scores as a table" and not at.dataframe
    at.session_state["score_table"] = True  # what a click on the expander sets
    at.run()
    assert_clean(at)
    (table,) = at.dataframe
    assert "film" in list(table.value["token"])
