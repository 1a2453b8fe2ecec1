from __future__ import annotations

import html
import re

import numpy as np

from explain.analysis import (
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
from explain.report import comparison_html, standalone_html

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
    # three figures: prediction, head heatmap, grid
    assert page.count("Plotly.newPlot(") == 3


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
    page = standalone_html(analysis, title="My <report>")
    assert "<title>My &lt;report&gt;</title>" in page
    assert 'title="good: ' in page and 'title="[CLS]: ' in page
    assert "lowers the score" in page and "raises the score" in page
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
    assert page.count("Plotly.newPlot(") == 2
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
