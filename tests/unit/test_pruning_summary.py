"""The pruning curve's one number (mean gap to the random orders) and its comment on a rising score."""

from __future__ import annotations

import numpy as np
import pytest

from explain.heads.pruning_summary import pruning_reading, pruning_summary
from explain.records.heads import PruningCurve
from explain.viz.heads import pruning_curve_figure


def curve(scores, order="least") -> PruningCurve:
    removed = np.array([0, 2, 4, 6])
    random = np.array([[0.8, 0.6, 0.4, 0.2], [0.8, 0.6, 0.4, 0.2]]) + np.array([[0.01], [-0.01]])
    return PruningCurve(removed=removed, scores=np.asarray(scores, dtype=np.float32), random_scores=random,
                        head_order=np.zeros((6, 2)), importance_name="ablation", order=order, mode="zero",
                        seeds=(0, 1), score_name="probability")


def test_the_gap_is_the_area_between_the_curve_and_the_random_mean_per_head():
    held = curve([0.8, 0.8, 0.6, 0.2])  # gaps 0, .2, .2, 0 -> trapezoids (0.1+0.2+0.1)*2 = 0.8 over 6 heads
    summary = pruning_summary(held)
    assert summary.gap == pytest.approx(0.8 / 6, rel=1e-5)
    assert summary.outside == 0.5 and summary.rise == 0
    assert "keeps the score above the random orders" in pruning_reading(held)
    figure = pruning_curve_figure(held)
    assert any("mean gap to random: +0.133" in a.text for a in figure.layout.annotations)


def test_most_important_first_that_raises_the_score_gets_a_comment():
    rising = curve([0.5, 0.7, 0.3, 0.1], order="most")
    summary = pruning_summary(rising)
    assert summary.rise == pytest.approx(0.2, rel=1e-5) and summary.rise_at == 2
    reading = pruning_reading(rising)
    assert "raises the score (by 0.2 after 2 heads)" in reading
    assert any("rises by 0.2" in a.text for a in pruning_curve_figure(rising).layout.annotations)
    falling = curve([0.5, 0.3, 0.2, 0.1], order="most")
    assert pruning_summary(falling).rise == 0 and "raises" not in pruning_reading(falling)
    assert "takes the score below the random orders sooner" in pruning_reading(falling)
