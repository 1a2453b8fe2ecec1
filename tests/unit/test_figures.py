from __future__ import annotations

import html
import json
import re

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.components.selection import grid_cell_from_selection
from explain.pieces import continues_word, subword_pieces
from explain.records import Prediction
from explain.viz.attention import (
    attention_grid,
    attention_heatmap,
    downsample_attention,
    head_statistic_figure,
    mark_head,
    rollout_figure,
    token_by_layer_figure,
)
from explain.viz.highlights import attribution_note, score_colour, token_highlights_html
from explain.viz.prediction import prediction_bars_html, prediction_figure
from explain.viz.theme import format_score

EVIL = "<img src=x onerror=alert(1)>"


def softmax_attention(shape: tuple[int, ...], seed: int = 0, sharpness: float = 3.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=shape) * sharpness
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)


def fig_json(fig: go.Figure) -> str:
    return fig.to_json()


def rgb(hex_colour: str) -> tuple[int, int, int]:
    h = hex_colour.lstrip("#")
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


# -- prediction ----------------------------------------------------------------


def test_prediction_figure_top10_sorted_and_explained_highlighted():
    labels = [f"label{i}" for i in range(15)]
    scores = np.linspace(0.0, 1.0, 15).astype(np.float32)[::-1].copy()  # label0 best
    pred = Prediction(labels=labels, scores=scores, explained_index=14, description="P(x) <b>", score_name="logit")
    fig = prediction_figure(pred)
    bar = fig.data[0]
    assert len(bar.x) == 10
    assert list(np.asarray(bar.x)) == sorted(np.asarray(bar.x), reverse=True)
    ticktext = list(fig.layout.yaxis.ticktext)
    # the explained label is kept even though it is the lowest score
    assert any("label14" in t for t in ticktext)
    colours = list(bar.marker.color)
    assert len(set(colours)) == 2
    explained_pos = next(i for i, t in enumerate(ticktext) if "label14" in t)
    assert colours.count(colours[explained_pos]) == 1
    assert fig.layout.xaxis.title.text == "logit"
    assert fig.layout.title.text == "P(x) &lt;b&gt;"
    assert "6g" in bar.hovertemplate


def test_prediction_figure_escapes_labels():
    pred = Prediction(labels=[EVIL, "ok"], scores=np.array([0.3, 0.7]), explained_index=0, description="d")
    out = fig_json(prediction_figure(pred))
    assert "<img" not in out
    assert "&lt;img" in out


# -- highlights ----------------------------------------------------------------


def test_subword_pieces():
    assert subword_pieces(["[CLS]", "play", "##ing", "▁word", "[SEP]", "##"]) == [
        "[CLS]",
        "play",
        "ing",
        "word",
        "[SEP]",
        "##",
    ]


def test_continues_word_for_each_tokenizer_family():
    assert continues_word(["[CLS]", "un", "##bel", "##ie", "film", ".", "[SEP]"]) == [
        False, False, True, True, False, False, False]
    assert continues_word(["<s>", "▁un", "bel", "ie", "▁film", "</s>"]) == [False, False, True, True, False, False]
    assert continues_word(["<s>", "un", "bel", "Ġfilm", "</s>"]) == [False, False, True, False, False]
    assert continues_word(["##x"]) == [False]  # nothing to continue


def test_joined_pieces_are_drawn_as_one_word_that_never_wraps_apart():
    out = token_highlights_html(["un", "bel", "ie", "film"], np.array([0.1, -0.2, 0.3, 0.0]),
                                joined=[False, True, True, False])
    groups = re.findall(r'<span (?:dir="ltr" )?style="display:inline-block;white-space:nowrap;[^"]*">(.*?</span>)</span>',
                        out)
    assert len(groups) == 1  # a word of one piece is drawn as that piece alone, with no wrapper
    assert re.findall(r'title="(\w+):', groups[0]) == ["un", "bel", "ie"]
    radii = re.findall(r"border-radius:([^;]+);", groups[0])
    assert radii == ["4px 0 0 4px", "0 0 0 0", "0 4px 4px 0"]  # rounded only at the word's two ends
    film = re.search(r'<span title="film:[^>]*>', out)
    assert film and "border-radius:4px 4px 4px 4px" in film.group(0) and "margin:2px 1px" in film.group(0)
    plain = token_highlights_html(["un", "bel"], np.array([0.1, 0.2]))
    assert "white-space:nowrap" not in plain and plain.count("role=\"img\"") == 2  # each piece stands alone
    with pytest.raises(ValueError):
        token_highlights_html(["a", "b"], np.zeros(2), joined=[False])


def test_highlights_escape_user_text():
    out = token_highlights_html([EVIL, 'say "hi"', "ok"], np.array([0.5, -0.2, 0.0]), title="<b>t</b>")
    assert "<img" not in out
    assert "&lt;img src=x onerror=alert(1)&gt;" in out
    assert "<b>t</b>" not in out
    assert "<script" not in out
    # the quote cannot close the title attribute
    assert 'title="say &quot;hi&quot;:' in out


def test_highlight_colours_diverge_around_zero():
    out = token_highlights_html(["bad", "none", "good"], np.array([-0.8, 0.0, 0.8]))
    backgrounds = re.findall(r"background:(#[0-9a-f]{6});", out)
    assert len(backgrounds) == 3
    (r1, g1, b1), zero, (r3, g3, b3) = (rgb(c) for c in backgrounds)
    assert r1 > b1 + 60 and r1 > g1 + 60  # reddish
    assert b3 > r3 + 60  # bluish
    assert zero == (255, 255, 255)
    assert "lowers the score" in out and "raises the score" in out


def test_highlight_title_has_exact_score_and_scale_legend():
    out = token_highlights_html(["terrible", "fine"], np.array([-0.1234, 0.05]))
    assert 'title="terrible: -0.1234"' in out
    assert "-0.123" in out and "+0.123" in out  # legend ends at +-max|score|


def test_highlight_scale_saturates_and_text_turns_white():
    background, text = score_colour(-5.0, 1.0)
    assert background == score_colour(-1.0, 1.0)[0]
    assert text == "#ffffff"
    assert score_colour(0.05, 1.0)[1] != "#ffffff"


def test_highlight_explicit_scale_and_zero_scores():
    weak = token_highlights_html(["a"], np.array([0.1]), scale=1.0)
    strong = token_highlights_html(["a"], np.array([0.1]))
    w = rgb(re.findall(r"background:(#[0-9a-f]{6});", weak)[0])
    s = rgb(re.findall(r"background:(#[0-9a-f]{6});", strong)[0])
    assert w[0] > s[0]  # lighter with the larger scale
    zeros = token_highlights_html(["a", "b"], np.zeros(2))
    assert zeros.count("background:#ffffff;") == 2


def test_highlight_length_mismatch_raises():
    with pytest.raises(ValueError):
        token_highlights_html(["a", "b"], np.zeros(3))


# -- attention heatmap ---------------------------------------------------------


def test_heatmap_keeps_duplicate_tokens_separate_and_escapes():
    labels = ["[CLS]", "the", "cat", "the", EVIL, "[SEP]"]
    w = softmax_attention((6, 6))
    fig = attention_heatmap(w, labels, labels, title="t")
    assert len(fig.layout.xaxis.tickvals) == 6
    assert len(fig.layout.yaxis.tickvals) == 6
    assert list(fig.layout.xaxis.ticktext).count("the") == 2
    hm = fig.data[0]
    assert list(np.asarray(hm.x)) == list(range(6))
    out = fig_json(fig)
    assert "<img" not in out
    assert "&lt;img" in out
    assert hm.text[1][3] == "the → the"
    assert "%{text}" in hm.hovertemplate and "%{z" in hm.hovertemplate
    assert fig.layout.yaxis.range[0] > fig.layout.yaxis.range[1]  # first token on top
    assert fig.layout.xaxis.title.text == "to (key)"
    assert fig.layout.yaxis.title.text == "from (query)"
    assert hm.zmin == 0
    assert hm.colorbar.title.text == "attention (0–1)"
    z = json.loads(out)["data"][0]["z"]
    assert z["dtype"] == "f4" and "bdata" in z


def test_heatmap_shape_mismatch_raises():
    with pytest.raises(ValueError):
        attention_heatmap(np.zeros((3, 3)), ["a", "b"], ["a", "b", "c"])


def test_heatmap_height_grows_and_is_capped():
    small = attention_heatmap(softmax_attention((4, 4)), list("abcd"), list("abcd"))
    mid = attention_heatmap(softmax_attention((40, 40)), ["t"] * 40, ["t"] * 40)
    big = attention_heatmap(softmax_attention((300, 300)), ["t"] * 300, ["t"] * 300)
    assert small.layout.height <= mid.layout.height <= big.layout.height <= 900
    assert small.layout.template.layout.paper_bgcolor == "white"


def test_rollout_figure_titles():
    fig = rollout_figure(softmax_attention((5, 5)), list("abcde"))
    assert "rollout" in fig.layout.title.text
    assert fig.data[0].colorbar.title.text == "attention rollout (0–1)"


# -- grid ----------------------------------------------------------------------


def test_downsample_keeps_rows_summing_to_one():
    w = softmax_attention((2, 3, 50, 50))
    small = downsample_attention(w, 16)
    assert small.shape == (2, 3, 16, 16)
    np.testing.assert_allclose(small.sum(-1), 1.0, atol=1e-5)
    assert downsample_attention(w, 64).shape == (2, 3, 50, 50)


def test_grid_bert_base_size_is_small_and_typed():
    w = softmax_attention((12, 12, 128, 128), seed=1)
    fig = attention_grid(w)
    out = fig.to_json()
    assert len(out.encode()) < 2_000_000
    data = json.loads(out)["data"]
    assert data[0]["type"] == "heatmap"
    assert data[0]["z"]["dtype"] == "u1" and "bdata" in data[0]["z"]
    assert len(fig.layout.xaxis.ticktext) == 12 and fig.layout.xaxis.ticktext[0] == "head 0"
    assert fig.layout.yaxis.ticktext[11] == "layer 11"
    assert fig.data[0].colorbar.title.text == "attention (0–1)"


def test_grid_thumbnails_scaled_per_head_with_gaps():
    w = softmax_attention((2, 4, 6, 6))
    w[1, 2] *= 0.01  # stretched, a weak head still reaches full colour
    fig = attention_grid(w, stretch=True)
    z = np.asarray(fig.data[0].z)
    assert z.dtype == np.uint8
    assert z.shape == (2 * 7 - 1, 4 * 7 - 1)
    weak = z[7:13, 14:20]
    assert weak.max() == 255 and weak.min() >= 1
    assert (z[6, :] == 0).all() and (z[:, 6] == 0).all()  # gaps
    scatter = fig.data[1]
    assert scatter.type == "scatter"
    custom = np.asarray(scatter.customdata)
    assert custom.shape == (8, 2)
    assert custom[6].tolist() == [1, 2]
    # the marker for (1, 2) sits at the centre of that thumbnail
    assert scatter.x[6] == pytest.approx(14 + 2.5) and scatter.y[6] == pytest.approx(7 + 2.5)
    assert "layer %{customdata[0]}, head %{customdata[1]}" in scatter.hovertemplate


def test_grid_rejects_bad_shape():
    with pytest.raises(ValueError):
        attention_grid(np.zeros((2, 3, 4)))


def test_grid_cell_from_selection():
    assert grid_cell_from_selection({"selection": {"points": [{"customdata": [3, 7], "x": 1, "y": 2}]}}) == (3, 7)
    assert grid_cell_from_selection({"points": [{"customdata": (0, 1)}]}) == (0, 1)
    assert grid_cell_from_selection({"selection": {"points": []}}) is None
    assert grid_cell_from_selection({}) is None
    assert grid_cell_from_selection(None) is None
    by_index = {"selection": {"points": [{"point_index": 14, "curve_number": 1}]}}
    assert grid_cell_from_selection(by_index, grid_shape=(6, 12)) == (1, 2)
    assert grid_cell_from_selection(by_index) is None
    assert grid_cell_from_selection({"selection": {"points": [{"point_number": 99}]}}, grid_shape=(2, 2)) is None
    heatmap_click = {"selection": {"points": [{"point_index": [1, 2], "curve_number": 0}]}}
    assert grid_cell_from_selection(heatmap_click, grid_shape=(6, 12)) is None
    assert grid_cell_from_selection({"selection": {"points": [{"customdata": [9, 9]}]}}, grid_shape=(2, 2)) is None


def test_grid_cell_round_trip_through_figure():
    fig = attention_grid(softmax_attention((3, 5, 6, 6)))
    for index in (0, 7, 14):
        point = {"customdata": list(fig.data[1].customdata[index]), "point_index": index}
        assert grid_cell_from_selection({"selection": {"points": [point]}}) == divmod(index, 5)


# -- head statistics and token by layer ---------------------------------------


def test_head_statistic_figure():
    values = np.arange(12, dtype=np.float64).reshape(3, 4)
    fig = head_statistic_figure(values, name="entropy <i>", colorbar_title="bits")
    hm = fig.data[0]
    assert np.asarray(hm.z).shape == (3, 4)
    assert hm.hovertemplate.startswith("layer %{y}, head %{x}: %{z")
    assert fig.layout.xaxis.title.text == "head" and fig.layout.yaxis.title.text == "layer"
    assert fig.layout.title.text == "entropy &lt;i&gt;"
    assert hm.colorbar.title.text == "bits"
    assert fig.layout.yaxis.range[0] > fig.layout.yaxis.range[1]  # layer 0 on top


def test_token_by_layer_figure():
    labels = ["[CLS]", "the", "dog", "the", EVIL, "[SEP]"]
    rows = softmax_attention((4, 6))
    fig = token_by_layer_figure(rows, labels, source_label="<b>dog</b>")
    assert len(fig.layout.xaxis.tickvals) == 6
    assert fig.layout.title.text == "where «&lt;b&gt;dog&lt;/b&gt;» attends, by layer"
    out = fig.to_json()
    assert "<img" not in out and "<b>dog" not in out
    assert np.asarray(fig.data[0].z).shape == (4, 6)
    with pytest.raises(ValueError):
        token_by_layer_figure(rows, labels[:5], source_label="x")


# -- colour scales, honest highlights, layout (issue 9) -------------------------


def plot_size(fig: go.Figure) -> tuple[float, float]:
    """(width, height) of the plot area the figure asks for, margins taken off."""
    m = fig.layout.margin
    return fig.layout.width - m.l - m.r, fig.layout.height - m.t - m.b


def test_attention_maps_use_one_absolute_scale_by_default():
    labels = list("abcd")
    uniform = np.full((4, 4), 0.25, dtype=np.float32)  # a near-uniform (randomised) head
    peaked = softmax_attention((4, 4), sharpness=6.0)
    for fig in (attention_heatmap(uniform, labels, labels), attention_heatmap(peaked, labels, labels),
                rollout_figure(uniform, labels), token_by_layer_figure(uniform, labels, source_label="a")):
        hm = fig.data[0]
        assert (hm.zmin, hm.zmax) == (0, 1)
        assert "0–1" in hm.colorbar.title.text  # the range is printed on the colour bar
        assert hm.colorbar.ticktext[0] == "0" and hm.colorbar.ticktext[-1] == "1"


def test_stretch_scales_each_map_to_its_own_maximum():
    labels = list("abcd")
    uniform = np.full((4, 4), 0.25, dtype=np.float32)
    fig = attention_heatmap(uniform, labels, labels, stretch=True)
    hm = fig.data[0]
    assert hm.zmax == pytest.approx(0.25)
    assert "stretched" in hm.colorbar.title.text and hm.colorbar.ticktext[-1] == "0.25"
    assert rollout_figure(uniform, labels, stretch=True).data[0].zmax == pytest.approx(0.25)
    rows = token_by_layer_figure(uniform, labels, source_label="a", stretch=True)
    assert rows.data[0].zmax == pytest.approx(0.25)
    assert attention_heatmap(np.zeros((4, 4)), labels, labels, stretch=True).data[0].zmax > 0  # no 0-0 range


def test_grid_thumbnails_share_the_absolute_scale_unless_stretched():
    w = softmax_attention((2, 4, 6, 6))
    w[1, 2] = 1 / 6  # a uniform head: every weight 0.167
    z = np.asarray(attention_grid(w).data[0].z)
    uniform = z[7:13, 14:20]
    assert uniform.max() < 0.3 * 255  # drawn pale, not at full colour
    np.testing.assert_array_equal(uniform, 1 + np.rint(np.float32(1 / 6) * 254))
    assert attention_grid(w).data[0].colorbar.ticktext[-1] == "1"
    stretched = attention_grid(w, stretch=True)
    assert np.asarray(stretched.data[0].z)[7:13, 14:20].max() == 255
    assert stretched.data[0].colorbar.ticktext[-1] == "head max"


def test_grid_plot_area_is_the_mosaic_so_the_colour_bar_is_as_tall_as_the_grid():
    for shape in ((6, 12, 40, 40), (12, 12, 128, 128), (2, 4, 6, 6), (24, 16, 20, 20)):
        fig = attention_grid(softmax_attention(shape))
        rows, cols = np.asarray(fig.data[0].z).shape
        width, height = plot_size(fig)
        assert width / cols == pytest.approx(height / rows, rel=0.02)  # square cells that fill the plot exactly
        assert fig.layout.height <= 900
        bar = fig.data[0].colorbar
        assert bar.len in (None, 1) and bar.lenmode in (None, "fraction")


def test_grid_outline_follows_the_selected_head():
    fig = attention_grid(softmax_attention((3, 5, 6, 6)))
    assert not fig.layout.shapes
    first = mark_head(fig, 0, 0)
    other = mark_head(fig, 2, 3)
    assert not fig.layout.shapes  # the cached figure is left alone
    (a,), (b,) = first.layout.shapes, other.layout.shapes
    # thumbnails are 6 cells with a 1-cell gap: head 3 spans x 21..26, layer 2 spans y 14..19
    assert (a.x0, a.x1, a.y0, a.y1) == (-0.5, 5.5, -0.5, 5.5)
    assert (b.x0, b.x1, b.y0, b.y1) == (20.5, 26.5, 13.5, 19.5)
    np.testing.assert_array_equal(np.asarray(other.data[0].z), np.asarray(fig.data[0].z))
    with pytest.raises(ValueError):
        mark_head(fig, 3, 0)


def test_head_statistics_map_marks_the_current_head():
    fig = mark_head(head_statistic_figure(np.zeros((3, 4)), name="entropy", colorbar_title="bits"), 1, 2)
    (shape,) = fig.layout.shapes
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (1.5, 2.5, 0.5, 1.5)


def test_long_prediction_titles_wrap_instead_of_being_cut():
    description = "P(positive) under zero-shot labels (positive, negative, neutral, <mixed>)"
    pred = Prediction(labels=["positive", "negative"], scores=np.array([0.7, 0.3]), explained_index=0,
                      description=description)
    fig = prediction_figure(pred)
    title = fig.layout.title.text
    assert "<br>" in title
    lines = title.split("<br>")
    assert max(len(line) for line in lines) <= 48
    assert " ".join(lines) == description.replace("<", "&lt;").replace(">", "&gt;")
    assert fig.layout.margin.t >= 20 * len(lines) + 20  # room for every line
    short = prediction_figure(Prediction(labels=["a"], scores=np.array([1.0]), explained_index=0,
                                         description="P(a)"))
    assert "<br>" not in short.layout.title.text


def test_single_head_at_128_tokens_is_square_with_thinned_readable_labels():
    labels = [f"tok{i}" for i in range(128)]
    fig = attention_heatmap(softmax_attention((128, 128)), labels, labels, title="Layer 0, head 0")
    width, height = plot_size(fig)
    assert width == pytest.approx(height, rel=0.02) and width >= 400
    assert fig.layout.xaxis.tickfont.size >= 10 and fig.layout.yaxis.tickfont.size >= 10
    assert 1 < len(fig.layout.xaxis.tickvals) < 128  # every k-th label ...
    assert np.asarray(fig.data[0].text).shape == (128, 128)  # ... while hover names every token
    small = attention_heatmap(softmax_attention((6, 6)), list("abcdef"), list("abcdef"))
    assert plot_size(small)[0] == pytest.approx(plot_size(small)[1], rel=0.02)
    assert len(small.layout.xaxis.tickvals) == 6


def test_format_score_uses_significant_digits():
    fmt = format_score
    assert fmt(2e-5) == "2e-05"
    assert fmt(0.000123456) == "0.0001235"
    assert fmt(0.5) == "0.5" and fmt(0.0) == "0" and fmt(-0.0) == "0"
    assert fmt(-0.1234) == "-0.1234" and fmt(12345.678) == "1.235e+04"
    assert fmt(float("nan")) == "nan"
    out = token_highlights_html(["tiny"], np.array([2.1e-5]))
    assert 'title="tiny: 2.1e-05"' in out and "0.0000" not in out


def highlight_note(out: str) -> str:
    match = re.search(r'<div role="note"[^>]*>(.*?)</div>', out)
    return html.unescape(match.group(1)) if match else ""


def test_highlights_say_when_the_score_barely_changes_and_stay_faint():
    scores = np.array([2e-5, -1e-5, 0.5e-5])
    out = token_highlights_html(["a", "b", "c"], scores, score_input=0.50002, score_baseline=0.5)
    note = highlight_note(out)
    assert "barely changes" in note and note.count(".") >= 1 and "0.5" in note
    backgrounds = [rgb(c) for c in re.findall(r"background:(#[0-9a-f]{6});color:", out)]
    assert len(backgrounds) == 3 and all(min(c) > 240 for c in backgrounds)  # nearly white, not saturated noise
    plain = token_highlights_html(["a", "b", "c"], scores)  # without the endpoints: scaled to the largest score
    assert highlight_note(plain) == ""


def test_highlights_say_when_the_baseline_scores_higher_than_the_text():
    out = token_highlights_html(["a", "b"], np.array([-0.15, -0.04]), score_input=0.61, score_baseline=0.8)
    note = highlight_note(out)
    assert "baseline" in note and "higher" in note and "0.8" in note and "0.61" in note
    normal = token_highlights_html(["a", "b"], np.array([0.15, 0.04]), score_input=0.8, score_baseline=0.61)
    assert highlight_note(normal) == ""
    assert attribution_note(0.8, 0.61) is None
    assert attribution_note(0.61, 0.8) == note


def test_right_to_left_words_keep_their_own_direction():
    # an Arabic word in two WordPiece pieces, then a Latin word, in an English sentence
    out = token_highlights_html(["the", "مر", "حبا", "<3>"], np.array([0.1, 0.2, 0.3, 0.0]),
                                joined=[False, False, True, False])
    groups = re.findall(r'<span (dir="(?:rtl|ltr)" )?style="display:inline-block;white-space:nowrap;', out)
    assert groups == ['dir="rtl" ']  # the one word of two pieces; a word of one piece needs no wrapper
    # each piece isolates its own direction (dir="auto", as <bdi> would)
    assert out.count('tabindex="0" dir="auto"') == 4 and 'dir="auto" style="' in out and ">&lt;3&gt;</span>" in out
    assert re.search(r'<div dir="ltr" style="display:block;">', out)
    arabic = token_highlights_html(["[CLS]", "مرحبا", "بالعالم", "[SEP]"], np.zeros(4))
    assert re.search(r'<div dir="rtl" style="display:block;">', arabic)  # the text's direction, not [CLS]'s


def test_predictions_side_by_side_share_one_axis():
    from explain.viz.prediction import prediction_range

    probs = Prediction(labels=["a", "b"], scores=np.array([0.55, 0.45]), explained_index=0, description="P(a)")
    other = Prediction(labels=["a", "b"], scores=np.array([0.4, 0.6]), explained_index=1, description="P(b)")
    assert prediction_range(probs, other) == (0.0, 1.0)
    assert list(prediction_figure(probs).layout.xaxis.range) == [0.0, 1.0]  # probabilities alone: 0-1 as well
    logits = Prediction(labels=["a", "b"], scores=np.array([-2.0, 3.0]), explained_index=0, description="",
                        score_name="logit")
    low, high = prediction_range(logits, other)
    assert low < -2.0 and high > 3.0
    assert list(prediction_figure(other, x_range=(low, high)).layout.xaxis.range) == [low, high]


def test_prediction_bars_html_shows_each_score_as_text_and_escapes_labels():
    pred = Prediction(labels=["<b>bad</b>", "good"], scores=np.array([0.25, 0.75]), explained_index=0,
                      description="P(<b>bad</b>)", score_name="probability")
    out = prediction_bars_html(pred)
    assert "<b>bad</b>" not in out and "&lt;b&gt;bad&lt;/b&gt;" in out
    rows = out[out.index("<tbody>"):]
    assert rows.index("good") < rows.index("&lt;b&gt;bad")  # best first
    assert ">0.75</td>" in out and ">0.25</td>" in out  # the numbers are text, not only bar lengths
    assert out.count('tabindex="0"') == 1 and "good: 0.75; &lt;b&gt;bad&lt;/b&gt;: 0.25 (explained)" in out
    assert "width:25.00%" in out and "font-weight:700" in out  # 0-1 axis; the explained label bold
    logits = Prediction(labels=["a", "b"], scores=np.array([-2.0, 2.0]), explained_index=1, description="logit",
                        score_name="logit")
    bars = prediction_bars_html(logits, x_range=(-4.0, 4.0))
    assert "left:25.00%;width:25.00%" in bars and "left:50.00%;width:25.00%" in bars  # from zero, both ways
