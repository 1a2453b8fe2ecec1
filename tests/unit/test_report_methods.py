"""The HTML export names each method by its own title and prints only the numbers that method has."""

from __future__ import annotations

import math
import re
from dataclasses import replace

import pytest

from explain.methods import METHODS
from explain.viz.report import ReportView, standalone_html
from tests.unit.test_report import make_analysis


def visible(page: str) -> str:
    """The page without its scripts (plotly.js holds every word), tags taken out."""
    body = re.sub(r"<script.*?</script>", "", page, flags=re.S)
    return re.sub(r"<[^>]+>", " ", body)


@pytest.mark.parametrize("method", ["lime", "attention_rollout", "occlusion"])
def test_another_method_is_titled_as_itself_without_nan_or_steps_advice(method):
    base = make_analysis("good movie , bad ending")
    analysis = replace(base, attribution=replace(base.attribution, method=method, delta=math.nan, n_steps=0))
    text = visible(standalone_html(analysis, view=ReportView()))
    assert METHODS[method].title in text
    assert "Integrated-gradients" not in text and "Integrated gradients" not in text
    assert "nan" not in text.lower().split() and "nan (" not in text and "nan%" not in text
    assert "convergence delta" not in text
    assert "steps would help" not in text


def test_integrated_gradients_keeps_its_delta_and_advises_steps_only_when_true():
    analysis = make_analysis("good movie , bad ending")
    text = visible(standalone_html(analysis))
    assert "Integrated gradients" in text and "convergence delta" in text
    assert "steps would help" not in text  # the delta is 0.1% of the change
    a = analysis.attribution
    far = replace(analysis, attribution=replace(a, delta=0.5 * (a.score_input - a.score_baseline)))
    assert "more integration steps would help" in visible(standalone_html(far))


def test_the_all_heads_caption_tells_the_scale_it_uses():
    text = visible(standalone_html(make_analysis("good movie")))
    assert "scaled to its own maximum" not in text and "0–1" in text


@pytest.mark.parametrize("method,named", [("attention_rollout", False), ("alti", False), ("occlusion", True)])
def test_the_method_row_names_the_baseline_only_for_methods_that_use_one(method, named):
    base = make_analysis("good movie , bad ending")
    analysis = replace(base, attribution=replace(base.attribution, method=method, delta=math.nan, n_steps=0,
                                                 settings={}))
    text = visible(standalone_html(analysis, view=ReportView()))
    assert (f"{base.attribution.baseline} baseline" in text) == named
