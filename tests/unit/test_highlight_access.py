"""Highlights that keyboards, screen readers and dark pages can use: focusable pieces named with their scores,
WCAG AA text on every cell colour in both schemes, and the same numbers as table rows."""

from __future__ import annotations

import html
import re

import numpy as np
import pytest

from explain.viz.highlights import (
    contrast_ratio,
    score_colour,
    score_colour_dark,
    score_label,
    score_rows,
    token_highlights_html,
)


@pytest.mark.parametrize("colour", [score_colour, score_colour_dark])
def test_every_cell_colour_keeps_its_text_at_aa_contrast(colour):
    for score in np.linspace(-1.0, 1.0, 401):
        background, text = colour(float(score), 1.0)
        assert contrast_ratio(background, text) >= 4.5, (score, background, text)


def test_the_dark_cells_keep_red_lowers_and_blue_raises():
    (r, g, b), (r2, g2, b2) = ([int(c[i:i + 2], 16) for i in (1, 3, 5)]
                               for c in (score_colour_dark(-1, 1)[0], score_colour_dark(1, 1)[0]))
    assert r > b + 60 and b2 > r2 + 60
    assert score_colour_dark(0, 1)[0] == "#171614"  # no score fades into the dark page


def test_each_piece_takes_focus_and_is_named_with_its_score():
    out = token_highlights_html(["film", "dull"], np.array([0.42, -0.1]), explained="P(positive)")
    spans = re.findall(r'<span title="[^"]*" role="img" aria-label="([^"]*)" tabindex="0"', out)
    assert [html.unescape(s) for s in spans] == ["film: +0.42, raises P(positive)", "dull: -0.1, lowers P(positive)"]
    assert "light-dark(" in out and "color:#1f2933" not in out.split("<span", 1)[0]  # text follows the page


def test_labels_and_rows_say_the_same_numbers():
    assert score_label("a", 0.0) == "a: 0"
    assert score_label("<b>", 2e-5) == "<b>: +2e-05, raises the score"
    rows = score_rows(["good", "film"], np.array([0.5, -0.25]), "P(positive)")
    assert rows == [{"#": 0, "token": "good", "score": 0.5, "effect": "raises P(positive)"},
                    {"#": 1, "token": "film", "score": -0.25, "effect": "lowers P(positive)"}]
    with pytest.raises(ValueError):
        score_rows(["a"], np.zeros(2))
