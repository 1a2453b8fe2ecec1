"""The embedding-parts and layers x tokens figures: rows, columns, a scale centred at 0, escaped hover."""

from __future__ import annotations

import numpy as np
import pytest

from explain.records import EmbeddingParts, LayerAttribution
from explain.viz.depth import (
    COLORBAR_TITLE,
    embedding_parts_figure,
    layer_caption,
    layer_figure,
    parts_caption,
    symmetric_range,
)

TOKENS = ["[CLS]", "<b>bold</b>", "##ly", "good", "[SEP]"]


def parts_record(scores) -> EmbeddingParts:
    scores = np.asarray(scores, dtype=np.float32)
    return EmbeddingParts(parts=("token", "position", "segment")[: len(scores)], scores=scores,
                          score_input=0.9, score_baseline=0.4, delta=float(scores.sum()) - 0.5, n_steps=50)


def layers_record(scores) -> LayerAttribution:
    scores = np.asarray(scores, dtype=np.float32)
    return LayerAttribution(scores=scores, delta=scores.sum(1) - 0.5, score_input=0.9, score_baseline=0.4, n_steps=50)


def test_parts_figure_rows_columns_and_a_scale_centred_at_zero():
    scores = [[0.0, 0.3, -0.05, 0.2, 0.0], [0.01, -0.02, 0.03, -0.04, 0.05], [0.001, 0.0, 0.0, 0.0, -0.002]]
    fig = embedding_parts_figure(TOKENS, parts_record(scores))
    heatmap = fig.data[0]
    z = np.asarray(heatmap.z)
    assert z.shape == (3, 5)
    # token at the top: the y axis runs upwards, so the token row is the last one, labelled so
    assert list(fig.layout.yaxis.ticktext) == ["segment", "position", "token"]
    np.testing.assert_allclose(z[-1], scores[0], rtol=1e-6)
    assert heatmap.zmid == 0 and heatmap.zmin == pytest.approx(-0.3) and heatmap.zmax == pytest.approx(0.3)
    assert heatmap.colorbar.title.text == COLORBAR_TITLE == "attribution<br>(score units)"
    assert list(heatmap.colorscale[0][1:]) != list(heatmap.colorscale[-1][1:])  # diverging: two different ends


def test_hover_names_token_part_and_value_at_four_significant_digits_escaped():
    fig = embedding_parts_figure(TOKENS, parts_record([[0.0, 0.123456, 0, 0, 0], [0, 0, 0, 0, 2.5e-05]]))
    text = np.asarray(fig.data[0].text)
    token_row = text[-1]  # the token part is drawn at the top
    assert token_row[1] == "&lt;b&gt;bold&lt;/b&gt; (token 1)<br>token: 0.1235"
    assert text[0][4] == "[SEP] (token 4)<br>position: 2.5e-05"
    assert "ly (token 2)" in token_row[2]  # word pieces as people read them
    assert all("<b>" not in t for t in fig.layout.xaxis.ticktext)


def test_layer_figure_one_row_per_layer_numbered_as_the_attention_views():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(6, 5))
    fig = layer_figure(TOKENS, layers_record(scores))
    heatmap = fig.data[0]
    assert np.asarray(heatmap.z).shape == (6, 5)
    np.testing.assert_allclose(np.asarray(heatmap.z)[0], scores[0], rtol=1e-6)  # layer 0 is the bottom row
    assert list(fig.layout.yaxis.ticktext) == ["0", "1", "2", "3", "4", "5"]
    top = float(np.abs(scores).max())
    assert heatmap.zmid == 0 and heatmap.zmax == pytest.approx(top, rel=1e-6) and heatmap.zmin == -heatmap.zmax
    assert np.asarray(heatmap.text)[5][3].startswith("good (token 3)<br>after layer 5: ")
    assert heatmap.colorbar.title.text == COLORBAR_TITLE


def test_figures_refuse_tokens_that_do_not_match_the_scores():
    with pytest.raises(ValueError, match="4 tokens"):
        layer_figure(TOKENS[:4], layers_record(np.zeros((2, 5))))


def test_symmetric_range_of_empty_or_zero_scores_is_one():
    assert symmetric_range(np.zeros((2, 3))) == 1.0
    assert symmetric_range(np.array([[np.nan, -2.0]])) == 2.0


def test_captions_report_the_integration_error_relative_to_the_change():
    parts = parts_record([[0.2, 0.2, 0.0, 0.0, 0.0], [0.05, 0.0, 0.0, 0.0, 0.0]])  # sums to 0.45 of 0.5
    assert "score change 0.5" in parts_caption(parts) and "-0.05, 10% of it" in parts_caption(parts)
    layers = layers_record([[0.5, 0, 0, 0, 0], [0.25, 0.25, 0.001, 0, 0]])
    assert "largest integration error 0.001, 0.2% of it" in layer_caption(layers)


def test_each_chart_says_what_its_cells_add_up_to_and_its_colour_bar_title_fits():
    parts = embedding_parts_figure(TOKENS, parts_record([[0.1, 0.2, 0.0, 0.0, 0.0]]))
    layers = layer_figure(TOKENS, layers_record(np.zeros((3, 5))))
    assert "All cells together add up to the score change 0.5" in parts.layout.title.text
    assert "Each row on its own adds up to the score change 0.5" in layers.layout.title.text
    for fig in (parts, layers):
        bar = fig.data[0].colorbar.title
        assert bar.side == "top"  # above the bar, in the right margin: a side title ran past short charts
        longest = max(len(line) for line in bar.text.split("<br>"))
        assert longest * 0.62 * bar.font.size < fig.layout.margin.r
