from __future__ import annotations

import base64
import html
import json
import re

import numpy as np
import pytest

from explain.compare import compare_analyses
from explain.records import (
    Analysis,
    AnalysisRequest,
    AttentionMaps,
    ModelInfo,
    Prediction,
    TargetSpec,
    TokenAttribution,
    Tokens,
    Words,
)
from explain.viz.report import ReportView, comparison_html, standalone_html

EVIL_TEXT = "The <script>alert(1)</script> film & <img src=x onerror=alert(1)> was great"
PLOTLY_JS_MARKER = "plotly.js v"  # appears once in the bundled library's licence header


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def make_analysis(
    text: str = EVIL_TEXT, *, spec: str = "tiny<b>", layers: int = 2, heads: int = 4, seed: int = 0
) -> Analysis:
    """A hand-made analysis: whitespace words, one token per word plus [CLS]/[SEP]."""
    rng = np.random.default_rng(seed)
    words = text.split()
    spans, start = [], 0
    for word in words:
        start = text.index(word, start)
        spans.append((start, start + len(word)))
        start += len(word)
    tokens = ["[CLS]", *words, "[SEP]"]
    n = len(tokens)
    offsets = np.array([(0, 0), *spans, (0, 0)], dtype=np.int32)
    special = np.array([True] + [False] * len(words) + [True])
    token_word = np.array([-1, *range(len(words)), -1], dtype=np.int32)
    scores = rng.normal(size=n).astype(np.float32) * 0.1
    scores[0] = scores[-1] = 0.0
    weights = softmax(rng.normal(size=(layers, heads, n, n)) * 2).astype(np.float32)
    return Analysis(
        request=AnalysisRequest(text=text, model=spec, target=TargetSpec(kind="class", label="positive")),
        model=ModelInfo(
            spec=spec,
            name="tiny-bert",
            head="classification",
            n_layers=layers,
            n_heads=heads,
            max_tokens=512,
            targets=("class",),
        ),
        tokens=Tokens(tokens=tokens, offsets=offsets, special=special, n_tokens_full=n),
        words=Words(words=words, spans=np.array(spans, dtype=np.int32), token_word=token_word),
        attention=AttentionMaps(weights=weights),
        prediction=Prediction(
            labels=["negative", "positive <i>"],
            scores=np.array([0.2, 0.8], dtype=np.float32),
            explained_index=1,
            description="P(positive <i>)",
        ),
        attribution=TokenAttribution(
            scores=scores,
            score_input=0.8,
            score_baseline=0.8 - float(scores.sum()) + 0.001,
            delta=-0.001,
            n_steps=50,
            baseline="pad",
        ),
        word_scores=scores[1:-1].copy(),
    )


def test_standalone_is_a_complete_offline_page():
    page = standalone_html(make_analysis())
    assert page.lstrip().startswith("<!DOCTYPE html>")
    assert "<html" in page and "</html>" in page
    assert page.count(PLOTLY_JS_MARKER) == 1  # plotly.js inlined exactly once
    assert not re.search(r"<script[^>]*\bsrc=", page)  # nothing loaded from the network
    # four figures: prediction, head heatmap, the default aggregate (rollout), grid
    assert page.count("Plotly.newPlot(") == 4


def test_standalone_escapes_user_text():
    page = standalone_html(make_analysis())
    assert html.escape(EVIL_TEXT) in page
    assert "<script>alert" not in page
    assert "<img" not in page
    assert "tiny<b>" not in page and "tiny&lt;b&gt;" in page
    assert "P(positive <i>)" not in page
    # every <script tag is a plotly one: library or a figure call
    scripts = re.findall(r"<script[^>]*>(.{0,80})", page, flags=re.S)
    assert scripts and all("alert" not in s for s in scripts)


def test_standalone_shows_highlights_convergence_and_title():
    analysis = make_analysis("good movie , bad ending")
    page = standalone_html(analysis, title="My <report>", view=ReportView(level="subword"))
    assert "<title>My &lt;report&gt;</title>" in page
    assert 'title="good: ' in page and 'title="[CLS]: ' in page
    assert "red lowers <b>P(positive &lt;i&gt;)</b>" in page and "blue raises <b>P(positive &lt;i&gt;)</b>" in page
    assert "convergence delta" in page
    assert "-1.00e-03" in page
    assert "50 steps" in page


def test_standalone_without_matching_attention_still_renders():
    analysis = make_analysis("short text")
    analysis.attention = AttentionMaps(weights=np.zeros((0, 0, 0, 0), dtype=np.float32))
    page = standalone_html(analysis)
    assert page.count(PLOTLY_JS_MARKER) == 1
    assert page.count("Plotly.newPlot(") == 1


def test_comparison_side_by_side_with_extra_sections():
    left = make_analysis(spec="left<model>", seed=1)
    right = make_analysis(spec="right-model", layers=3, heads=2, seed=2)
    page = comparison_html(left, right, extra_sections=[("Agreement <3", "<p>spearman 0.5</p>")])
    assert "<html" in page
    assert page.count(PLOTLY_JS_MARKER) == 1
    assert page.count("Plotly.newPlot(") == 4  # each side: prediction and attention head
    assert "left&lt;model&gt;" in page and "left<model>" not in page
    assert "right-model" in page
    assert "<h2>Agreement &lt;3</h2><p>spearman 0.5</p>" in page
    assert "<script>alert" not in page and "<img" not in page
    assert page.count(html.escape(EVIL_TEXT)) == 1  # same text shown once


def test_comparison_different_texts_shows_both():
    left = make_analysis("one text here")
    right = make_analysis("another text")
    page = comparison_html(left, right)
    assert "one text here" in page and "another text" in page


# -- exports that match the view -------------------------------------------------------------------------------


def plotly_figures(page: str) -> list[dict]:
    """Every figure drawn on the page: {"id", "data", "layout", "config"} read from its Plotly.newPlot call."""
    decoder = json.JSONDecoder()
    out = []
    for match in re.finditer(r"Plotly\.newPlot\(\s*", page):
        position = match.end()
        args = []
        for _ in range(4):
            value, position = decoder.raw_decode(page, position)
            args.append(value)
            position = re.compile(r"\s*,?\s*").match(page, position).end()
        out.append(dict(zip(("id", "data", "layout", "config"), args)))
    return out


def heatmap_z(trace: dict) -> np.ndarray:
    """A heatmap's z as plotly.py sends it (a base64 typed array) or as plain lists."""
    z = trace["z"]
    if isinstance(z, dict):
        values = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
        return values.reshape([int(s) for s in str(z["shape"]).split(",")])
    return np.asarray(z, dtype=np.float32)


def titled(page: str, text: str) -> list[dict]:
    """The page's figures whose title holds `text` (a title wrapped to fit a phone read as one line)."""
    return [f for f in plotly_figures(page)
            if text in f["layout"].get("title", {}).get("text", "").replace("<br>", " ")]


def legend_scales(page: str) -> list[float]:
    """The full-colour |score| of every highlight legend on the page ("+0.123" at its right end)."""
    return [float(v) for v in re.findall(r"<span>0</span><span>\+([^<]+)</span>", page)]


def test_standalone_shows_the_chosen_layer_and_head():
    analysis = make_analysis("good movie , bad ending", layers=4, heads=6)
    page = standalone_html(analysis, view=ReportView(layer=3, head=5))
    [head] = titled(page, "Layer 3, head 5")
    np.testing.assert_array_equal(heatmap_z(head["data"][0]), analysis.attention.weights[3, 5])
    assert not titled(page, "Layer 0, head 0")


def test_standalone_hides_special_tokens_like_the_page():
    analysis = make_analysis("good movie , bad ending", layers=4, heads=6)
    page = standalone_html(analysis, view=ReportView(layer=2, head=1, hide_special=True))
    [head] = titled(page, "Layer 2, head 1")
    inner = analysis.attention.weights[2, 1][1:-1, 1:-1].astype(np.float64)
    np.testing.assert_allclose(heatmap_z(head["data"][0]), inner / inner.sum(-1, keepdims=True), rtol=1e-5)
    assert "[CLS]" not in head["layout"]["xaxis"]["ticktext"]


@pytest.mark.parametrize(
    "view,title",
    [
        (ReportView(), "attention rollout"),
        (ReportView(aggregate="stats", stat="entropy"), "entropy"),
        (ReportView(aggregate="token", token=2), "where «movie» attends"),
    ],
)
def test_standalone_shows_the_chosen_aggregate(view, title):
    page = standalone_html(make_analysis("good movie , bad ending"), view=view)
    assert len(titled(page, title)) == 1
    assert len(plotly_figures(page)) == 4  # prediction, head, aggregate, grid
    others = {"attention rollout", "entropy", "attends"} - {title.split()[-1] if "attends" in title else title}
    assert not any(titled(page, other) for other in others)


def test_token_view_names_the_token_the_page_names():
    analysis = make_analysis("good movie , bad ending")
    page = standalone_html(analysis, view=ReportView(aggregate="token", token=99))  # clamped like the page
    assert len(titled(page, "where «[SEP]» attends")) == 1


def test_standalone_highlights_at_the_chosen_level():
    analysis = make_analysis("good movie , bad ending")
    words = standalone_html(analysis, view=ReportView(level="word"))
    assert 'title="good: ' in words and 'title="[CLS]: ' not in words
    pieces = standalone_html(analysis, view=ReportView(level="subword"))
    assert 'title="[CLS]: ' in pieces and 'title="good: ' in pieces


def test_report_view_refuses_unknown_choices():
    with pytest.raises(ValueError, match="level"):
        ReportView(level="sentence")
    with pytest.raises(ValueError, match="aggregate"):
        ReportView(aggregate="everything")


def test_comparison_of_two_models_names_each_side_by_its_own_model():
    left = make_analysis("good movie", spec="model-a", seed=1)
    right = make_analysis("good movie", spec="model-b", seed=2)
    page = comparison_html(left, right)
    assert "<title>Comparison: model-a vs model-b</title>" in page
    assert "<h2>model-a</h2>" in page and "<h2>model-b</h2>" in page


def test_comparison_of_two_texts_names_each_side_by_its_text():
    left = make_analysis("the film was good", spec="minilm", seed=1)
    right = make_analysis("the film was bad", spec="minilm", seed=2)
    page = comparison_html(left, right, view=ReportView(mode="texts"))
    assert "minilm vs minilm" not in page
    title = re.search(r"<title>(.*)</title>", page).group(1)
    assert "«the film was good» vs «the film was bad»" in title and "minilm" in title
    assert "<h2>«the film was good»</h2>" in page and "<h2>«the film was bad»</h2>" in page


def test_comparison_uses_one_colour_scale_on_both_sides():
    left = make_analysis("good movie , bad ending", seed=1)
    right = make_analysis("good movie , bad ending", seed=2)
    right.word_scores = right.word_scores * 7  # very different magnitudes
    page = comparison_html(left, right)
    scales = legend_scales(page)
    shared = max(np.abs(left.word_scores).max(), np.abs(right.word_scores).max())
    assert len(scales) == 2 and scales[0] == scales[1] == pytest.approx(shared, rel=1e-2)


def test_comparison_shows_the_chosen_head_of_each_side_on_one_absolute_scale():
    left = make_analysis("good movie , bad ending", spec="model-a", layers=4, heads=6, seed=1)
    right = make_analysis("good movie , bad ending", spec="model-b", layers=3, heads=2, seed=2)
    page = comparison_html(left, right, view=ReportView(layer=3, head=5, layer_b=2, head_b=1))
    [head_a] = titled(page, "model-a: layer 3, head 5")
    [head_b] = titled(page, "model-b: layer 2, head 1")
    np.testing.assert_array_equal(heatmap_z(head_a["data"][0]), left.attention.weights[3, 5])
    np.testing.assert_array_equal(heatmap_z(head_b["data"][0]), right.attention.weights[2, 1])
    for figure in (head_a, head_b):
        assert (figure["data"][0]["zmin"], figure["data"][0]["zmax"]) == (0, 1)


def test_every_html_figure_saves_png_and_svg():
    page = standalone_html(make_analysis("good movie"))
    library_end = page.index("</script>", page.index(PLOTLY_JS_MARKER))
    setup = page[library_end:page.index("Plotly.newPlot(")]
    assert "Plotly.setPlotConfig(" in setup and "Plotly.downloadImage(" in setup
    assert re.search(r"format:\s*['\"]svg['\"]", setup)
    figures = plotly_figures(page)
    assert figures and all(f["config"]["toImageButtonOptions"]["format"] == "png" for f in figures)
    assert all("modeBarButtonsToAdd" not in f["config"] for f in figures)  # would replace the SVG button
    assert len({f["id"] for f in figures}) == len(figures)


def test_comparison_shows_the_shared_word_rollouts_and_distance_when_given():
    left = make_analysis("good movie , bad ending", spec="model-a", seed=1)
    right = make_analysis("good movie , bad ending", spec="model-b", layers=3, heads=2, seed=2)
    comparison = compare_analyses(left, right)
    page = comparison_html(left, right, comparison=comparison)
    [rollout_a] = titled(page, "Rollout, model-a")
    [rollout_b] = titled(page, "Rollout, model-b")
    np.testing.assert_allclose(heatmap_z(rollout_b["data"][0]), comparison.rollout_right, rtol=1e-6)
    assert all((f["data"][0]["zmin"], f["data"][0]["zmax"]) == (0, 1) for f in (rollout_a, rollout_b))
    assert len(titled(page, "Attention distance by layer: model-a vs model-b")) == 1
    assert not titled(comparison_html(left, right), "Rollout")
