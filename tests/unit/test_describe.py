"""Charts' text alternatives (explain.viz.describe) read from the figures the dashboard draws."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from explain.records import Prediction
from explain.viz.attention import attention_grid, attention_heatmap, head_statistic_figure
from explain.viz.describe import describe_figure, set_description
from explain.viz.prediction import prediction_figure


def test_bars_name_the_largest_labels_with_their_scores():
    prediction = Prediction(labels=["negative", "<b>neutral</b>", "positive"], scores=np.array([0.2, 0.1, 0.7]),
                            explained_index=2, description="P(positive) from the classification head")
    text = describe_figure(prediction_figure(prediction))
    assert text.startswith("Chart: P(positive) from the classification head. 3 bars from 0.1 to 0.7")
    # the explained label's bold is dropped; a label's own "<b>" is its text (escaped where it is shown)
    assert "largest: positive 0.7, negative 0.2, <b>neutral</b> 0.1" in text


def test_a_heatmap_gives_its_size_range_and_largest_cells_by_their_tokens():
    weights = np.full((3, 3), 0.1)
    weights[2, 0] = 0.8
    text = describe_figure(attention_heatmap(weights, ["[CLS]", "good", "[SEP]"], ["[CLS]", "good", "[SEP]"]))
    assert "A 3 by 3 grid of values from 0.1 to 0.8" in text
    assert "largest: [SEP] with [CLS] 0.8" in text


def test_unlabelled_positions_take_the_axis_title():
    text = describe_figure(head_statistic_figure(np.array([[0.1, 0.9], [0.3, 0.2]]), name="entropy",
                                                 colorbar_title="bits"))
    assert "largest: layer 0 with head 1 0.9" in text, text


def test_the_all_heads_mosaic_describes_heads_not_colour_codes():
    weights = np.full((2, 3, 4, 4), 0.25)
    weights[1, 2, :, 0], weights[1, 2, :, 1:] = 0.97, 0.01
    text = describe_figure(attention_grid(weights))
    assert "2 layers by 3 heads" in text
    assert "the most peaked is layer 1 head 2 (largest weight 0.97)" in text


def test_a_builder_sentence_wins_and_an_empty_figure_still_reads():
    assert describe_figure(set_description(go.Figure(), "ten heads")) == "Chart. Ten heads."
    assert describe_figure(go.Figure()) == "Chart. No values."
