"""The explained label is named beside the highlights' legend and can be pinned across texts (AppTest)."""

from __future__ import annotations

import html
import re

from tests.app.test_explore_page import assert_clean, html_text, run_app


def explained_tick(at) -> str:
    """The prediction bars' bold row: the explained label."""
    (bold,) = re.findall(r'<th scope="row" style="[^"]*font-weight:700;[^"]*"><bdi>(.*?)</bdi>', html_text(at))
    return html.unescape(bold)


def test_the_legend_names_the_explained_label(tiny_dirs):
    at = run_app({"m": tiny_dirs["classification"], "t": "the film was good", "n": "4"})
    assert_clean(at)
    label = explained_tick(at)
    body = html_text(at)
    assert f"blue raises <b>P({label})</b>" in body and f"red lowers <b>P({label})</b>" in body


def test_pinning_keeps_the_explained_label_across_texts(tiny_dirs):
    at = run_app({"m": tiny_dirs["classification"], "t": "the film was good", "n": "4"})
    assert_clean(at)
    label = explained_tick(at)
    pin = at.checkbox(key="pin_label")
    assert pin.value is False and label in pin.label
    pin.check().run()
    assert_clean(at)
    assert at.query_params["lb"] == label
    assert at.checkbox(key="pin_label").value is True
    for text in ("a dull and tedious mess", "wonderful", "the film was good"):
        at.text_area(key="w_text").set_value(text).run()
        assert_clean(at)
        assert explained_tick(at) == label and at.query_params["lb"] == label
    at.checkbox(key="pin_label").uncheck().run()
    assert_clean(at)
    assert "lb" not in at.query_params
