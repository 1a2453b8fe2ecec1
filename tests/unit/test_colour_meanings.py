"""One meaning per colour: attribution sign, the explained label and vector signs never share a hue."""

from __future__ import annotations

import colorsys
from dataclasses import replace

import numpy as np
import pytest
from plotly.colors import get_colorscale, hex_to_rgb, unlabel_rgb

from explain import TargetSpec
from explain.heads import neuron_view, prepare_inputs
from explain.records import Prediction
from explain.viz.heads import neuron_view_figure
from explain.viz.highlights import score_colour
from explain.viz.prediction import prediction_figure, sigmoid_bars_figure

MIN_HUE_DEGREES = 40  # hues closer than this read as "the same colour, lighter or darker"


def hue(colour: str) -> float:
    rgb = hex_to_rgb(colour) if colour.startswith("#") else unlabel_rgb(colour)
    return colorsys.rgb_to_hls(*(c / 255 for c in rgb))[0] * 360


def apart(a: str, b: str) -> bool:
    d = abs(hue(a) - hue(b)) % 360
    return min(d, 360 - d) >= MIN_HUE_DEGREES


LOWERS, RAISES = score_colour(-1.0, 1.0)[0], score_colour(1.0, 1.0)[0]


def explained_colours(figure) -> set[str]:
    bar = figure.data[0]
    order = list(bar.customdata)
    return {bar.marker.color[order.index("positive")]}


PREDICTION = Prediction(labels=["negative", "positive"], scores=np.array([0.3, 0.7], dtype=np.float32),
                        explained_index=1, description="P(positive) from the classification head")


@pytest.mark.parametrize("figure", [prediction_figure(PREDICTION), sigmoid_bars_figure(PREDICTION)])
def test_the_explained_label_is_neither_the_red_nor_the_blue_of_the_highlights(figure):
    (colour,) = explained_colours(figure)
    assert apart(colour, LOWERS) and apart(colour, RAISES), colour
    others = set(figure.data[0].marker.color) - {colour}
    for other in others:  # the other labels' bars are not red or blue either
        assert apart(other, LOWERS) and apart(other, RAISES) or _grey(other), other


def _grey(colour: str) -> bool:
    r, g, b = hex_to_rgb(colour)
    return max(r, g, b) - min(r, g, b) < 40


def test_the_neuron_view_signs_use_their_own_pair(tiny_models):
    loaded = tiny_models["classification"]
    inputs = prepare_inputs(loaded, "the film was good .", TargetSpec("class", label="positive"))
    figure = neuron_view_figure(neuron_view(loaded, inputs, 0, 0, 1))
    for axis in (figure.layout.coloraxis, figure.layout.coloraxis2):
        scale = [c for _, c in axis.colorscale]
        for end in (scale[0], scale[-1]):
            assert apart(end, LOWERS) and apart(end, RAISES), end
        assert "<" in axis.colorbar.title.text  # says which end is below 0
    bars = next(t for t in figure.data if t.name == "scaled q·k")
    for colour in set(bars.marker.color):
        assert apart(colour, LOWERS) and apart(colour, RAISES), colour


def test_attribution_ends_are_red_and_blue_as_in_the_rdbu_charts():
    rdbu = [c for _, c in get_colorscale("RdBu")]
    assert not apart(LOWERS, rdbu[0]) and not apart(RAISES, rdbu[-1])
    assert not apart(LOWERS, "#ff0000") and not apart(RAISES, "#0000ff")


def test_the_legend_names_the_explained_score_escaped():
    from explain.viz.highlights import explained_name, token_highlights_html

    assert explained_name(PREDICTION) == "P(positive)"
    logit = Prediction(labels=["a", "<b>"], scores=np.array([1.0, 2.0]), explained_index=1, description="",
                       score_name="logit")
    assert explained_name(logit) == "the logit of «<b>»"
    out = token_highlights_html(["x"], np.array([0.5]), explained=explained_name(logit))
    assert "blue raises <b>the logit of «&lt;b&gt;»</b>" in out and "red lowers" in out


def test_the_legend_quotes_the_explained_token_of_a_question_answering_logit():
    """A QA head's labels are the text's tokens: "red lowers the start logit of the" read as a cut sentence; the
    token is quoted, and named by position where the text has it more than once."""
    from explain.viz.highlights import explained_name

    tokens = ["[CLS]", "was", "the", "food", "good", "?", "[SEP]", "the", "film", "[SEP]"]
    start = Prediction(labels=tokens, scores=np.arange(10.0), explained_index=7, description="", score_name="start logit")
    assert explained_name(start) == "the start logit of «the» (token 7)"
    assert explained_name(replace(start, explained_index=8)) == "the start logit of «film»"
