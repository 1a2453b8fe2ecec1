"""One number for a pruning curve, and what it says: how far the importance order departs from random orders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explain.records.heads import PruningCurve

# A rise of the score above its start smaller than this share of the score's range is noise, not a rise.
RISE_SHARE = 0.02


@dataclass(frozen=True)
class PruningSummary:
    """gap: the signed area between the importance-order curve and the random orders' mean, divided by the
    heads removed (the mean vertical gap, in score units); outside: the share of points outside the random band
    (mean ± 1 sd); rise: the largest score above the first point, for "most important first" (0 otherwise)."""

    gap: float
    outside: float
    rise: float
    rise_at: int


def pruning_summary(curve: PruningCurve) -> PruningSummary:
    x = np.asarray(curve.removed, dtype=np.float64)
    ranked = np.asarray(curve.scores, dtype=np.float64)
    mean = np.asarray(curve.random_mean, dtype=np.float64)
    spread = np.asarray(curve.random_std, dtype=np.float64)
    diff = ranked - mean
    width = float(x[-1] - x[0]) if x.size > 1 else 0.0
    if width > 0:
        gap = float(np.sum((diff[1:] + diff[:-1]) / 2 * np.diff(x)) / width)
    else:
        gap = float(diff.mean()) if diff.size else 0.0
    outside = float(np.mean(np.abs(diff) > spread)) if diff.size else 0.0
    rise, rise_at = 0.0, 0
    if curve.order == "most" and ranked.size > 1:
        span = float(max(np.ptp(ranked), np.ptp(mean), 1e-12))
        k = int(np.argmax(ranked))
        if ranked[k] - ranked[0] > RISE_SHARE * span:
            rise, rise_at = float(ranked[k] - ranked[0]), int(x[k])
    return PruningSummary(gap=gap, outside=outside, rise=rise, rise_at=rise_at)


def pruning_reading(curve: PruningCurve, summary: PruningSummary | None = None) -> str:
    """Plain sentences on the summary: better or no better than random, and a comment on a rising score."""
    s = summary or pruning_summary(curve)
    gap = f"{s.gap:+.3g}"
    if curve.order == "least":
        verdict = ("keeps the score above the random orders" if s.gap > 0 else
                   "does not keep the score above the random orders")
    else:
        verdict = ("takes the score below the random orders sooner" if s.gap < 0 else
                   "does not take the score down faster than the random orders")
    text = (f"Mean gap to the random orders: {gap} ({curve.score_name}); the importance order {verdict}, "
            f"outside the random band at {s.outside:.0%} of the points.")
    if s.rise > 0:
        text += (f" Removing the most important heads first raises the score (by {s.rise:.3g} after {s.rise_at} "
                 "heads): the map ranks heads by how much they move the score either way, and some of the first "
                 "ones held it down.")
    return text
