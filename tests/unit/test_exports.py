"""CSV of word and token scores, and the chart image config (PNG or SVG)."""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explain.exports import (
    comparison_scores_csv,
    image_config,
    safe_cell,
    word_scores_csv,
)
from tests.unit.test_report import make_analysis

FORMULA_STARTS = "=+-@\t\r"
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def scores(rows: list[dict[str, str]]) -> np.ndarray:
    """The score column read back at the precision the scores were computed in (float32)."""
    return np.array([float(r["score"]) for r in rows], dtype=np.float32)


def read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_word_csv_round_trips():
    analysis = make_analysis('say "hi", then =SUM(A1) +1 -cmd @x 3,5 -2')
    rows = read(word_scores_csv(analysis))
    assert [r["word"] for r in rows] == [
        'say', '"hi",', 'then', "'=SUM(A1)", "+1", "'-cmd", "'@x", '3,5', '-2',
    ]
    np.testing.assert_array_equal(scores(rows), analysis.word_scores)
    for row, (start, end) in zip(rows, analysis.words.spans):
        assert (int(row["start"]), int(row["end"])) == (start, end)


def test_negative_scores_stay_numbers():
    analysis = make_analysis("good movie , bad ending")
    analysis.word_scores = np.array([-0.5, 0.25, -1e-7, 3.0, -2.0], dtype=np.float32)
    rows = read(word_scores_csv(analysis))
    assert [r["score"] for r in rows][0].startswith("-")
    np.testing.assert_array_equal(scores(rows), analysis.word_scores)


def test_token_csv_has_every_token_with_its_word():
    analysis = make_analysis("good movie , bad ending")
    rows = read(word_scores_csv(analysis, level="subword"))
    assert [r["token"] for r in rows] == analysis.tokens.tokens
    assert [r["special"] for r in rows] == ["1", "0", "0", "0", "0", "0", "1"]
    assert [r["word_index"] for r in rows] == ["", "0", "1", "2", "3", "4", ""]
    np.testing.assert_array_equal(scores(rows), analysis.attribution.scores)


def test_comparison_csv_names_the_sides():
    left = make_analysis("good movie", seed=1)
    right = make_analysis("bad movie here", seed=2)
    rows = read(comparison_scores_csv(left, right, names=("=left", "right")))
    assert [r["side"] for r in rows] == ["'=left"] * 2 + ["right"] * 3
    assert [r["word"] for r in rows] == ["good", "movie", "bad", "movie", "here"]


def test_unknown_level_is_refused():
    with pytest.raises(ValueError, match="level"):
        word_scores_csv(make_analysis("good movie"), level="sentence")


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=30))
def test_safe_cells_never_start_a_formula_and_keep_the_text(text):
    cell = safe_cell(text)
    assert cell == text or cell == "'" + text
    if text and text[0] in FORMULA_STARTS and not PLAIN_NUMBER.fullmatch(text):
        assert cell == "'" + text
    if cell != text:
        assert text[0] in FORMULA_STARTS


def test_image_config_saves_the_chosen_format():
    assert image_config("head", "svg")["toImageButtonOptions"] == {"format": "svg", "filename": "head"}
    png = image_config("head")["toImageButtonOptions"]
    assert png["format"] == "png" and png["scale"] == 2
    with pytest.raises(ValueError, match="format"):
        image_config("head", "gif")


def test_token_rows_add_up_to_the_word_rows_on_a_real_model(tiny_models):
    """A model whose vocabulary splits words into letters: each word's score is the sum of its tokens' rows."""
    from explain import AnalysisRequest, analyze

    analysis = analyze(AnalysisRequest("loving the slowly served food", n_steps=8), tiny_models["encoder_alt"])
    assert len(analysis.tokens) > len(analysis.words) + 2  # some words really are split
    words = read(word_scores_csv(analysis))
    tokens = read(word_scores_csv(analysis, level="subword"))
    text = analysis.request.text
    for index, word in enumerate(words):
        assert text[int(word["start"]):int(word["end"])] == word["word"]
        pieces = [t for t in tokens if t["word_index"] == str(index)]
        assert pieces and all(int(word["start"]) <= int(t["start"]) < int(t["end"]) <= int(word["end"])
                              for t in pieces)
        assert float(word["score"]) == pytest.approx(sum(float(t["score"]) for t in pieces), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("level", ["word", "subword"])
def test_every_row_names_the_model_target_label_and_method(level):
    analysis = make_analysis("good movie , bad ending", spec="=evil model")
    rows = read(word_scores_csv(analysis, level=level))
    assert list(rows[0])[-4:] == ["model", "target", "label", "method"]
    for row in rows:
        assert (row["model"], row["target"], row["label"], row["method"]) == (
            "'=evil model", "class", "positive <i>", "integrated_gradients")
    both = read(comparison_scores_csv(analysis, make_analysis("good movie , bad ending", spec="other"),
                                      level=level))
    assert {r["model"] for r in both} == {"'=evil model", "other"}


def test_chart_filenames_say_what_the_chart_shows():
    from explain.exports import chart_filename, model_short_name

    assert model_short_name("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert model_short_name("/tmp/models/tiny/") == "tiny"
    assert chart_filename("attention", "all-MiniLM-L6-v2", "layer 2", "head 5", "") == \
        "attention-all-minilm-l6-v2-layer-2-head-5"
    assert chart_filename("token 3", "<b>##ing", "by layer") == "token-3-b-ing-by-layer"
    assert chart_filename() == "chart" and len(chart_filename("x" * 300)) == 100
