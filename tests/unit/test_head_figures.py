"""The heads page's figures: what they show is the records' numbers, labelled (axis titles, colour bars, hover)."""

from __future__ import annotations

import html
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from dashboard.components.selection import grid_cell_from_selection
from explain import TargetSpec
from explain.heads import MAP_NAMES, HeadImportance, head_importance, neuron_view, prepare_inputs, pruning_curve
from explain.viz.attention import mark_head
from explain.viz.heads import (
    MAP_TITLES,
    correlation_rows,
    importance_map_figure,
    neuron_view_figure,
    pruning_curve_figure,
)
from explain.viz.theme import format_score

TEXT = "the film was <b>good</b> but too long ."


@pytest.fixture(scope="module")
def computed(tiny_models):
    loaded = tiny_models["classification"]
    inputs = prepare_inputs(loaded, TEXT, TargetSpec("class", label="positive"))
    importance = head_importance(loaded, inputs)
    return loaded, inputs, importance


def heatmap(figure):
    return next(t for t in figure.data if t.type == "heatmap")


def cells(figure):
    return next(t for t in figure.data if t.type == "scatter")


def expected_values(importance: HeadImportance, name: str) -> np.ndarray:
    return {"gradient": importance.gradient, "ablation": importance.ablation_effect,
            "confidence": importance.confidence}[name]


@pytest.mark.parametrize("name", MAP_NAMES)
def test_importance_map_shows_the_record_with_titles_colour_bar_and_hover(computed, name):
    _, _, importance = computed
    figure = importance_map_figure(importance, name)
    z = np.asarray(heatmap(figure).z)
    assert np.array_equal(z, expected_values(importance, name))
    assert figure.layout.xaxis.title.text == "head" and figure.layout.yaxis.title.text == "layer"
    assert figure.layout.title.text == MAP_TITLES[name]
    colorbar = heatmap(figure).colorbar.title.text
    assert colorbar and {"gradient": "probability per unit of gate", "ablation": "(probability)",
                         "confidence": "(0–1)"}[name] in colorbar.replace("<br>", " ")
    # Every cell carries its (layer, head) and its value with 4 significant digits for the hover.
    scatter = cells(figure)
    assert "layer %{customdata[0]}, head %{customdata[1]}" in scatter.hovertemplate
    assert "%{text}" in scatter.hovertemplate
    n_layers, n_heads = z.shape
    for (layer, head), text in zip(np.asarray(scatter.customdata).tolist(), scatter.text):
        assert text == format_score(float(z[layer, head]))
    assert len(scatter.text) == n_layers * n_heads


def test_colour_scales_start_at_zero_and_the_ablation_map_is_centred_on_it(computed):
    _, _, importance = computed
    ablation = heatmap(importance_map_figure(importance, "ablation"))
    top = float(np.abs(importance.ablation_effect).max())
    assert ablation.zmid == 0 and ablation.zmin == pytest.approx(-top) and ablation.zmax == pytest.approx(top)
    confidence = heatmap(importance_map_figure(importance, "confidence"))
    assert (confidence.zmin, confidence.zmax) == (0, 1)
    gradient = heatmap(importance_map_figure(importance, "gradient"))
    assert (gradient.zmin, gradient.zmax) == (0, pytest.approx(float(importance.gradient.max())))


def test_a_clicked_cell_reads_back_as_its_head_and_can_be_outlined(computed):
    _, _, importance = computed
    figure = importance_map_figure(importance, "gradient")
    shape = importance.gradient.shape
    custom = np.asarray(cells(figure).customdata)
    index = 6  # the point Plotly reports: its customdata is what Streamlit's selection carries
    selection = {"selection": {"points": [{"curve_number": 1, "point_index": index,
                                           "customdata": custom[index].tolist()}]}}
    assert grid_cell_from_selection(selection, shape) == divmod(index, shape[1])
    marked = mark_head(figure, 1, 2)
    (outline,) = marked.layout.shapes
    assert (outline.x0 + 0.5, outline.y0 + 0.5) == (2, 1)
    assert not figure.layout.shapes  # the cached figure is left as it was


def test_score_names_are_escaped_in_the_colour_bar(computed):
    _, _, importance = computed
    strange = HeadImportance(importance.gradient, importance.ablation_effect, importance.confidence,
                             importance.rank_correlation, importance.score, "<b>score</b>", "d", "zero")
    title = heatmap(importance_map_figure(strange, "gradient")).colorbar.title.text
    assert "<b>" not in title and html.escape("<b>score</b>", quote=False) in title.replace("<br>", " ")


@settings(max_examples=30, deadline=None)
@given(arrays(np.float32, (3, 3), elements=st.floats(-1, 1, width=32)))
def test_correlation_rows_are_the_matrix_by_name_with_empty_cells_for_nan(values):
    matrix = (values + values.T) / 2
    matrix[0, 1] = matrix[1, 0] = np.nan
    zeros = np.zeros((2, 2), np.float32)
    importance = HeadImportance(zeros, zeros, zeros, matrix, 0.5, "probability", "d", "zero")
    rows = correlation_rows(importance)
    titles = [MAP_TITLES[n] for n in MAP_NAMES]
    assert [r["map"] for r in rows] == titles
    for i, row in enumerate(rows):
        for j, title in enumerate(titles):
            value = importance.rank_correlation[i, j]
            assert row[title] is None if math.isnan(value) else row[title] == pytest.approx(float(value))


def test_pruning_curve_figure_draws_the_ranked_order_and_the_random_band(computed):
    loaded, inputs, importance = computed
    curve = pruning_curve(loaded, inputs, importance.map("ablation"), importance_name="ablation", order="most",
                          n_random=4, n_points=5)
    figure = pruning_curve_figure(curve, description=importance.description)
    upper, lower, mean, ranked = figure.data
    assert np.array_equal(np.asarray(ranked.x), curve.removed)
    assert np.allclose(np.asarray(ranked.y), curve.scores)
    random = np.asarray(curve.random_scores, dtype=np.float64)  # [seeds, points]
    assert np.allclose(np.asarray(mean.y), random.mean(0), atol=1e-6)
    assert np.allclose(np.asarray(upper.y), random.mean(0) + random.std(0), atol=1e-6)
    assert np.allclose(np.asarray(lower.y), random.mean(0) - random.std(0), atol=1e-6)
    assert lower.fill == "tonexty"
    assert "ablation effect order (most important first)" in ranked.name and "random" in mean.name
    assert [t.showlegend for t in (lower, mean, ranked)] != [False] * 3
    assert figure.layout.xaxis.title.text == "number of heads removed"
    assert curve.score_name in figure.layout.yaxis.title.text
    assert ranked.text == tuple(format_score(v) for v in curve.scores)


def test_neuron_view_figure_shows_the_parts_one_row_per_key_token(computed):
    loaded, inputs, _ = computed
    view = neuron_view(loaded, inputs, 1, 2, 3)
    figure = neuron_view_figure(view)
    query, keys, products = (t for t in figure.data if t.type == "heatmap")
    scores, attention = (t for t in figure.data if t.type == "bar")
    assert np.allclose(np.asarray(query.z)[0], view.query)
    assert np.allclose(np.asarray(keys.z), view.keys)
    assert np.allclose(np.asarray(products.z), view.products)
    # Each row of q∘k sums to the dot product; scaled, that is the score the bars show; softmax of those is the row.
    row_sums = np.asarray(products.z, dtype=np.float64).sum(1) * view.scaling
    assert np.allclose(np.asarray(scores.x), row_sums, rtol=1e-4, atol=1e-5)
    shown = np.asarray(scores.x, dtype=np.float64)
    assert np.allclose(np.asarray(attention.x), np.exp(shown - shown.max()) / np.exp(shown - shown.max()).sum(),
                       atol=1e-5)
    assert sum(attention.x) == pytest.approx(1.0, abs=1e-5)
    for trace in (query, keys, products, scores, attention):
        assert trace.hovertemplate and "<extra></extra>" in trace.hovertemplate
    assert list(attention.text) == [format_score(a) for a in view.attention]
    # Token labels are escaped; the query token's row is outlined in each of the four panels.
    ticks = figure.layout.yaxis2.ticktext
    assert "&lt;" in "".join(ticks) and "<b>" not in "".join(ticks)
    outlines = [s for s in figure.layout.shapes if s.type == "rect"]
    assert len(outlines) == 4 and all((s.y0, s.y1) == (2.5, 3.5) for s in outlines)
    titles = [a.text for a in figure.layout.annotations]
    assert titles == ["query q", "keys k", "q∘k", "q·k / √d", "softmax"]
    assert figure.layout.coloraxis.colorbar.title.text and figure.layout.coloraxis2.colorbar.title.text
    assert figure.layout.coloraxis.cmin == -figure.layout.coloraxis.cmax  # symmetric around 0


def test_neuron_view_colour_bars_are_labelled_at_both_ends_and_no_dimension_label_sits_at_the_right_end(computed):
    """At a phone's width the keys' "30" met the products' "0", and the q, k colour bar showed only "0"."""
    loaded, inputs, _ = computed
    view = neuron_view(loaded, inputs, 1, 2, 3)
    figure = neuron_view_figure(view)
    head_dim = view.keys.shape[1]
    for axis in (figure.layout.coloraxis, figure.layout.coloraxis2):
        assert list(axis.colorbar.tickvals) == [axis.cmin, 0, axis.cmax]
    for axis in (figure.layout.xaxis2, figure.layout.xaxis3):
        assert max(axis.tickvals) <= head_dim - 1 - head_dim / 8
