"""Explore's single-head map on a long text: the "Tokens shown" span (in the URL) and the offer to stretch."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from tests.app.running import run_app
from tests.app.shown import plain

WORDS = "the film was good but far too long".split()
LONG_TEXT = " ".join(WORDS * 7)  # 56 words: 58 tokens with [CLS] and [SEP], (more where words split), too many to label every one


def head_map(at: AppTest) -> dict:
    figures = [json.loads(chart.proto.spec) for chart in at.get("plotly_chart")]
    (figure,) = [f for f in figures if str(f["layout"].get("title", {}).get("text", "")).startswith("Layer 0, head 0")]
    return figure


def captions(at: AppTest) -> str:
    return " ".join(plain(c.value) for c in at.caption)


def test_setting_the_span_zooms_the_map_with_every_label_and_keeps_it_in_the_link(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": LONG_TEXT, "n": "5"})
    assert not at.exception
    whole = head_map(at)["layout"]["xaxis"]
    assert len(whole["tickvals"]) < 58  # the whole map labels every other token

    slider = at.select_slider(key="head_span_pick")
    names = dict(option.split(": ", 1) for option in slider.options)  # "12: film": place in the text, token
    assert len(names) >= 58
    slider.set_range(10, 29).run()
    assert not at.exception
    assert at.query_params["zs"] == "10-29"
    figure = head_map(at)
    assert "tokens 10–29" in figure["layout"]["title"]["text"]
    expected = [names[str(p)] for p in range(10, 30)]
    for axis in ("xaxis", "yaxis"):
        assert figure["layout"][axis]["tickvals"] == list(range(20))
        assert figure["layout"][axis]["ticktext"] == expected
    assert figure["data"][0]["text"][0][0].startswith("#10 ")

    reopened = run_app({"m": tiny_dirs["encoder"], "t": LONG_TEXT, "n": "5", "zs": "10-29"})
    assert reopened.select_slider(key="head_span_pick").value == (10, 29)
    assert head_map(reopened)["layout"]["xaxis"]["ticktext"] == expected


def test_the_whole_span_is_no_zoom_and_a_span_past_the_text_says_so(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": LONG_TEXT, "n": "5", "zs": "300-400"})
    assert not at.exception
    assert any("no tokens 300–400" in plain(i.value) for i in at.info)
    assert "zs" not in at.query_params
    bad = run_app({"m": tiny_dirs["encoder"], "t": LONG_TEXT, "n": "5", "zs": "9-2"})
    assert any("'zs'" in plain(w.value) and "not a span" in plain(w.value) for w in bad.warning)


def test_a_short_text_gets_no_span_control(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good film", "n": "5"})
    assert not at.exception
    assert not [s for s in at.get("select_slider") if s.key == "head_span_pick"]


def test_a_pale_map_offers_the_stretch_and_the_button_applies_it(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": LONG_TEXT, "n": "5"})
    assert "so on the 0–1 scale it looks almost white" in captions(at)
    at.button(key="head_map_stretch").click().run()
    assert not at.exception
    assert at.checkbox(key="w_stretch").value is True and at.query_params["sc"] == "1"
    assert "looks almost white" not in captions(at)
    assert head_map(at)["data"][0]["zmax"] < 0.3
