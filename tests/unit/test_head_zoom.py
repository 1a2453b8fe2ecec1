"""The single-head map's zoom to a span of tokens and its offer to stretch a pale map (explain.viz.attention)."""

from __future__ import annotations

import numpy as np
import pytest

from dashboard.state import COMPARE_FIELDS, EXPLORE_FIELDS, SHARED_FIELDS, from_query, to_query
from explain.viz.attention import (
    PALE_MAP_PEAK,
    attention_heatmap,
    every_label_fits,
    most_labelled_tokens,
    pale_map_note,
    token_span,
)

N = 100


def near_uniform(n: int, seed: int = 0) -> np.ndarray:
    """Rows of a near-uniform head: every weight close to 1/n, as in a weak or randomised head."""
    logits = np.random.default_rng(seed).normal(scale=0.3, size=(n, n))
    w = np.exp(logits)
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def words(n: int) -> list[str]:
    return [f"w{i}" for i in range(n)]


def test_a_long_map_drawn_whole_labels_every_other_token():
    fig = attention_heatmap(near_uniform(N), words(N), words(N))
    assert len(fig.layout.xaxis.tickvals) < N and len(fig.layout.yaxis.tickvals) < N
    assert not every_label_fits(N)


def test_a_zoomed_100_token_map_labels_every_token_of_its_span():
    labels = words(N)
    first, last = 30, 30 + most_labelled_tokens() - 1
    fig = attention_heatmap(near_uniform(N), labels, labels, span=(first, last))
    shown = labels[first:last + 1]
    for axis in (fig.layout.xaxis, fig.layout.yaxis):
        assert list(axis.tickvals) == list(range(len(shown)))
        assert list(axis.ticktext) == shown
    assert np.asarray(fig.data[0].z).shape == (len(shown), len(shown))
    assert fig.data[0].text[0][1] == f"#{first} w{first} → #{first + 1} w{first + 1}"  # hover keeps real places


def test_the_zoom_keeps_the_weights_and_the_whole_maps_scale():
    w = near_uniform(N)
    fig = attention_heatmap(w, words(N), words(N), span=(10, 19))
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), w[10:20, 10:20])
    assert fig.data[0].zmax == 1.0
    assert attention_heatmap(w, words(N), words(N), span=(10, 19), stretch=True).data[0].zmax == pytest.approx(
        w[10:20, 10:20].max())


def test_a_span_counts_places_in_the_text_when_special_tokens_are_hidden():
    positions = list(range(1, N - 1))  # [CLS] and [SEP] dropped: the map's row 0 is token 1
    labels = words(N)[1:-1]
    fig = attention_heatmap(near_uniform(N - 2), labels, labels, positions=positions, span=(5, 9))
    assert list(fig.layout.xaxis.ticktext) == ["w5", "w6", "w7", "w8", "w9"]
    assert fig.data[0].text[4][0] == "#9 w9 → #5 w5"
    assert token_span(positions, 0, 3) == slice(0, 3)


def test_the_second_texts_line_moves_with_the_span_and_leaves_when_outside():
    w = near_uniform(N)
    inside = attention_heatmap(w, words(N), words(N), segment_start=50, span=(40, 59))
    lines = inside.layout.shapes
    assert {s.x0 for s in lines if s.x0 == s.x1} == {9.5} and {s.y0 for s in lines if s.y0 == s.y1} == {9.5}
    outside = attention_heatmap(w, words(N), words(N), segment_start=50, span=(60, 79))
    assert not outside.layout.shapes


@pytest.mark.parametrize("span", [(200, 300), (7, 3)])
def test_a_span_without_tokens_is_refused(span):
    with pytest.raises(ValueError, match="no token"):
        attention_heatmap(near_uniform(10), words(10), words(10), span=span)


def test_the_stretch_note_appears_only_when_the_largest_weight_is_small():
    pale = attention_heatmap(near_uniform(N), words(N), words(N))
    note = pale_map_note(pale)
    peak = float(near_uniform(N).max())
    assert peak < PALE_MAP_PEAK and note is not None
    assert f"{peak:.2g}" in note and "0–1" in note

    peaked = near_uniform(N)
    peaked[3, 7] = PALE_MAP_PEAK + 0.05
    assert pale_map_note(attention_heatmap(peaked, words(N), words(N))) is None
    assert pale_map_note(attention_heatmap(near_uniform(N), words(N), words(N), stretch=True)) is None


def test_the_stretch_note_reads_the_drawn_span():
    w = near_uniform(N)
    w[0, 0] = 0.9  # a strong weight outside the span shown
    assert pale_map_note(attention_heatmap(w, words(N), words(N))) is None
    assert pale_map_note(attention_heatmap(w, words(N), words(N), span=(10, 40))) is not None


def test_the_span_is_explores_own_url_field():
    state, notices = from_query({"zs": " 20 - 59 "})
    assert (state.span, notices) == ("20-59", [])
    assert to_query(state, include=EXPLORE_FIELDS)["zs"] == "20-59"
    assert "span" in EXPLORE_FIELDS and "span" not in COMPARE_FIELDS and "span" not in SHARED_FIELDS


@pytest.mark.parametrize("raw", ["59-20", "a-b", "20", "0-900"])
def test_a_bad_span_in_a_link_is_dropped_with_one_sentence(raw):
    state, notices = from_query({"zs": raw})
    assert state.span == ""
    assert len(notices) == 1 and "'zs'" in notices[0] and "not a span of tokens" in notices[0]
