"""Per-head attention statistics and aggregates (attention rollout).

Extraction happens in `explain.pipeline` in the same forward pass as the
prediction; everything here is numpy on `AttentionMaps`.
"""

from __future__ import annotations

import numpy as np

from explain.records import AttentionMaps

HEAD_STATISTICS = {
    "entropy": "entropy of each row (bits), averaged over query tokens",
    "distance": "mean |query - key| position distance, weighted by attention",
    "cls": "share of attention on the first special token ([CLS])",
    "sep": "share of attention on separator tokens ([SEP])",
    "self": "share of attention on the token itself",
    "previous": "share of attention on the previous token",
    "next": "share of attention on the next token",
}


def head_statistics(maps: AttentionMaps, special: np.ndarray, tokens: list[str]) -> dict[str, np.ndarray]:
    """Each statistic in HEAD_STATISTICS as a [layers, heads] array, averaged over query rows."""
    w = maps.weights.astype(np.float64)
    n = w.shape[-1]
    idx = np.arange(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        plogp = np.where(w > 0, w * np.log2(w), 0.0)
    stats = {
        "entropy": -plogp.sum(-1).mean(-1),
        "distance": (w * np.abs(idx[:, None] - idx[None, :])).sum(-1).mean(-1),
        "self": np.diagonal(w, axis1=-2, axis2=-1).mean(-1),
        "previous": np.concatenate([np.zeros(w.shape[:2] + (1,)), np.diagonal(w, offset=-1, axis1=-2, axis2=-1)], -1).mean(-1),
        "next": np.concatenate([np.diagonal(w, offset=1, axis1=-2, axis2=-1), np.zeros(w.shape[:2] + (1,))], -1).mean(-1),
    }
    cls_cols = np.zeros(n, dtype=bool)
    if n and special[0]:
        cls_cols[0] = True
    sep_cols = np.array([bool(special[i]) and i > 0 for i in range(n)])
    stats["cls"] = w[..., cls_cols].sum(-1).mean(-1)
    stats["sep"] = w[..., sep_cols].sum(-1).mean(-1)
    return {k: stats[k].astype(np.float32) for k in HEAD_STATISTICS}


def renormalise_without(weights: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """Remove the rows and columns flagged in `drop` and rescale each row to sum to 1."""
    keep = ~np.asarray(drop, dtype=bool)
    sub = weights[..., keep, :][..., :, keep].astype(np.float64)
    sums = sub.sum(-1, keepdims=True)
    uniform = np.full_like(sub, 1.0 / max(sub.shape[-1], 1))
    return np.where(sums > 0, sub / np.where(sums > 0, sums, 1.0), uniform).astype(np.float32)


def rollout(maps: AttentionMaps, *, upto_layer: int | None = None) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020): heads averaged, identity added, rows renormalised,
    multiplied from the first layer up. Returns [tokens, tokens]; rows sum to 1."""
    w = maps.weights.astype(np.float64).mean(1)
    last = w.shape[0] if upto_layer is None else upto_layer + 1
    n = w.shape[-1]
    result = np.eye(n)
    for layer in range(last):
        a = w[layer] + np.eye(n)
        a /= a.sum(-1, keepdims=True)
        result = a @ result
    return result.astype(np.float32)


def token_by_layer(maps: AttentionMaps, token: int) -> np.ndarray:
    """Where `token` attends in every layer, heads averaged: [layers, tokens]."""
    return maps.weights[:, :, token, :].mean(1).astype(np.float32)
