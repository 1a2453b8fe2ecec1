"""An analysis that ends a Jupyter cell shows itself: the standalone report in a frame, and each method's row."""

from __future__ import annotations

import html
import re

from explain import AnalysisRequest, analyze
from explain.methods import METHODS
from explain.pipeline import with_methods
from explain.viz.report import standalone_html


def frame_document(shown: str) -> str:
    match = re.fullmatch(r'<iframe srcdoc="([^"]*)" [^>]*></iframe>(.*)', shown, re.DOTALL)
    assert match, shown[:200]
    return html.unescape(match.group(1))


def test_an_analysis_shows_its_report_in_a_frame(tiny_models):
    result = analyze(AnalysisRequest("the film was <b>good</b>", model="tiny", n_steps=4), tiny_models["encoder"])
    shown = result._repr_html_()
    assert frame_document(shown) == standalone_html(result)
    outside = shown.split("</iframe>")[0].split('srcdoc="')[0] + shown.split("</iframe>", 1)[1]
    assert "<b>" not in shown and "<script" not in outside  # the report's markup stays inside the frame's text
    assert shown.endswith("</iframe>")  # one method: nothing below the report


def test_an_analysis_with_several_methods_adds_their_rows(tiny_models):
    loaded = tiny_models["classification"]
    result = analyze(AnalysisRequest("the film was good", model="tiny", n_steps=4), loaded)
    result = with_methods(result, loaded, ["occlusion", "saliency"])
    shown = result._repr_html_()
    below = shown.split("</iframe>", 1)[1]
    for name in ("integrated_gradients", "occlusion", "saliency"):
        assert html.escape(METHODS[name].title) in below
    assert below.count("<tr>") == 4  # the words, then one row per method
