"""The methods view's figures: per-row highlight scaling, escaping, and the rank-agreement matrix."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from explain.viz.highlights import score_colour
from explain.viz.methods import (
    MethodRow,
    methods_highlights_html,
    rank_agreement,
    rank_agreement_figure,
    relevance_colour,
)

CELL = re.compile(r'<td title="[^"]*" style="[^"]*background:(#[0-9a-f]{6});')


def cell_colours(page: str) -> list[str]:
    return CELL.findall(page)


def test_each_row_is_scaled_to_its_own_largest_score():
    words = ["the", "film", "was", "good"]
    small = MethodRow("small", np.array([0.0, 0.001, -0.0005, 0.0002]))
    large = MethodRow("large", np.array([0.0, 50.0, -25.0, 10.0]))
    colours = cell_colours(methods_highlights_html(words, [small, large]))
    assert len(colours) == 8
    # Same shape, units a factor 50,000 apart: the same colours in each row.
    assert colours[:4] == colours[4:]
    assert colours[1] == score_colour(1.0, 1.0)[0]  # the row's largest |score| gets the full colour
    assert colours[2] == score_colour(-0.5, 1.0)[0]
    assert colours[0] == "#ffffff"


def test_unsigned_methods_are_drawn_in_one_hue():
    page = methods_highlights_html(["a", "b"], [MethodRow("relevance", np.array([2.0, 1.0]), signed=False)])
    colours = cell_colours(page)
    assert colours == [relevance_colour(1.0, 1.0)[0], relevance_colour(0.5, 1.0)[0]]
    assert colours[0] not in (score_colour(1.0, 1.0)[0], score_colour(-1.0, 1.0)[0])
    assert "(unsigned)" in page


def test_words_and_titles_are_escaped():
    page = methods_highlights_html(["<b>bold</b>", '"q"&'], [MethodRow("<i>m</i>", np.array([1.0, -1.0]))])
    assert "<b>" not in page and "<i>" not in page
    assert "&lt;b&gt;bold&lt;/b&gt;" in page and "&lt;i&gt;m&lt;/i&gt;" in page
    assert 'title="&lt;b&gt;bold&lt;/b&gt;: 1"' in page


def test_a_row_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="3 scores for 2 words"):
        methods_highlights_html(["a", "b"], [MethodRow("m", np.zeros(3))])


def independent_spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation of average ranks, written here without scipy."""

    def ranks(x: np.ndarray) -> np.ndarray:
        order = np.argsort(x, kind="stable")
        r = np.empty(len(x))
        r[order] = np.arange(len(x), dtype=np.float64)
        for value in np.unique(x):
            tied = x == value
            r[tied] = r[tied].mean()
        return r

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / math.sqrt((ra * ra).sum() * (rb * rb).sum()))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 5).flatmap(lambda k: st.lists(
    hnp.arrays(np.float64, 6, elements=st.floats(-5, 5, allow_nan=False).map(lambda v: round(v, 1))),
    min_size=k, max_size=k)))
def test_rank_agreement_is_symmetric_with_a_unit_diagonal_and_matches_spearman(columns):
    scores = {f"m{i}": c for i, c in enumerate(columns)}
    matrix = rank_agreement(scores)
    n = len(columns)
    assert matrix.shape == (n, n)
    assert np.array_equal(np.diag(matrix), np.ones(n))
    assert np.array_equal(matrix, matrix.T, equal_nan=True)
    for i in range(n):
        for j in range(n):
            if i == j:
                continue
            if np.ptp(columns[i]) == 0 or np.ptp(columns[j]) == 0:
                assert math.isnan(matrix[i, j])
            else:
                assert matrix[i, j] == pytest.approx(independent_spearman(columns[i], columns[j]), abs=1e-9)


def test_reversed_rankings_disagree_completely():
    a = np.array([0.1, 0.5, 0.9, 0.3])
    matrix = rank_agreement({"a": a, "b": -a, "c": a * 10})
    assert matrix[0, 1] == pytest.approx(-1.0) and matrix[0, 2] == pytest.approx(1.0)


def test_agreement_figure_has_a_fixed_range_titles_and_hover_values():
    matrix = rank_agreement({"a": np.array([1.0, 2, 3]), "b": np.array([3.0, 1, 2]), "c": np.zeros(3)})
    fig = rank_agreement_figure(["Integrated <b>gradients</b>", "LIME", "Flat"], matrix)
    heatmap = fig.data[0]
    assert (heatmap.zmin, heatmap.zmax) == (-1.0, 1.0)
    assert "-1 to 1" in heatmap.colorbar.title.text
    assert list(heatmap.x) == ["Integrated &lt;b&gt;gradients&lt;/b&gt;", "LIME", "Flat"] == list(heatmap.y)
    assert heatmap.text[0][1] == f"{matrix[0, 1]:.2f}" and heatmap.text[0][2] == "n/a"
    assert "%{text}" in heatmap.hovertemplate
    with pytest.raises(ValueError):
        rank_agreement_figure(["a"], matrix)


def test_the_naopc_random_band_label_sits_above_the_bars(tiny_models):
    """The "random ± 1 sd" label goes above the plot area (seen on the screenshot: inside the band it was written
    over the top method's bar), and the top margin leaves it room under the title."""
    from explain import AnalysisRequest
    from explain.pipeline import analyze, with_methods
    from explain.viz.methods import naopc_figure

    loaded = tiny_models["classification"]
    analysis = analyze(AnalysisRequest("the film was good", model=loaded.spec, max_tokens=loaded.max_tokens), loaded)
    analysis = with_methods(analysis, loaded, ["occlusion", "gradient_x_input"], faithfulness=True)
    fig = naopc_figure(analysis)
    (label,) = [a for a in fig.layout.annotations if a.text == "random ± 1 sd"]
    assert label.yref.endswith("domain") or label.yref == "paper"
    assert label.y >= 1 and label.yanchor == "bottom"
    assert fig.layout.margin.t >= 80
