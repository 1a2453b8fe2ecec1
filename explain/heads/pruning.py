"""Pruning curves: the explained score as heads are removed one by one.

Heads are removed cumulatively in the order of an importance map, and in random orders as the control;
every point of every curve is one gate set, and the gate sets run as batches of variants.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from explain.errors import InputError
from explain.heads.gating import adapter_of, check_mode, gated
from explain.heads.importance import HeadInputs, explained_scores, mean_outputs, variants_per_batch
from explain.models import LoadedModel
from explain.records.heads import PruningCurve

PRUNING_ORDERS = ("least", "most")

ProgressCallback = Callable[[float], None]


def removal_counts(n_total: int, n_points: int | None) -> np.ndarray:
    """0..n_total heads removed, or `n_points` of them spread evenly (both ends included)."""
    if n_points is None or n_points >= n_total + 1:
        return np.arange(n_total + 1)
    if n_points < 2:
        raise InputError("A pruning curve needs at least 2 points.")
    return np.unique(np.round(np.linspace(0, n_total, n_points)).astype(int))


def importance_order(importance: np.ndarray, order: str) -> np.ndarray:
    """Flat head indices, least (or most) important first; ties keep layer-major order."""
    if order not in PRUNING_ORDERS:
        raise InputError(f"Unknown pruning order '{order}'; choose one of {', '.join(PRUNING_ORDERS)}.")
    flat = np.asarray(importance, dtype=np.float64).ravel()
    keys = flat if order == "least" else -flat
    return np.argsort(keys, kind="stable")


def cumulative_gates(flat_order: np.ndarray, counts: np.ndarray, shape: tuple[int, int]) -> torch.Tensor:
    """[len(counts), layers, heads] gates: the first counts[k] heads of the order removed."""
    n = len(flat_order)
    rank = np.empty(n, dtype=np.int64)
    rank[flat_order] = np.arange(n)
    keep = rank[None, :] >= counts[:, None]
    return torch.as_tensor(keep.reshape(len(counts), *shape), dtype=torch.float32)


def pruning_curve(
    loaded: LoadedModel,
    inputs: HeadInputs,
    importance: np.ndarray,
    *,
    importance_name: str = "gradient",
    order: str = "least",
    n_random: int = 3,
    seed: int = 0,
    n_points: int | None = None,
    mode: str = "zero",
    progress: ProgressCallback | None = None,
) -> PruningCurve:
    """The explained score as heads are removed in importance order and in `n_random` random orders.

    Args:
        importance: [layers, heads] scores (e.g. `HeadImportance.map("gradient")`).
        order: "least" removes the least important head first (Michel et al.'s pruning), "most" the most.
        n_points: evaluate this many evenly spread numbers of removed heads (None: every number).
        seed: random orders use seeds seed, seed + 1, ...
    """
    check_mode(mode)
    if not isinstance(n_random, (int, np.integer)) or not 1 <= n_random <= 100:
        raise InputError("The number of random orders must be a whole number from 1 to 100.")
    adapter = adapter_of(loaded)
    shape = (adapter.n_layers, adapter.n_heads)
    importance = np.asarray(importance)
    if importance.shape != shape:
        raise InputError(f"The importance map is {importance.shape}, but this model has {shape[0]} x {shape[1]} heads.")
    n_total = shape[0] * shape[1]
    counts = removal_counts(n_total, n_points)
    ranked = importance_order(importance, order)
    seeds = tuple(range(seed, seed + int(n_random)))
    orders = [ranked] + [np.random.default_rng(s).permutation(n_total) for s in seeds]
    gates = torch.cat([cumulative_gates(o, counts, shape) for o in orders]).to(loaded.device)
    per_batch = variants_per_batch(inputs.n_tokens, loaded, len(gates))
    results = []
    with loaded.lock, torch.no_grad():
        means = mean_outputs(loaded, inputs, mode)
        for start in range(0, len(gates), per_batch):
            chunk = gates[start : start + per_batch]
            with gated(loaded, chunk, mode, means):
                results.append(explained_scores(inputs, len(chunk)).double().cpu().numpy())
            if progress is not None:
                progress(min(1.0, (start + len(chunk)) / len(gates)))
    scores = np.concatenate(results).reshape(len(orders), len(counts))
    return PruningCurve(
        removed=counts,
        scores=scores[0],
        random_scores=scores[1:],
        head_order=np.stack(np.unravel_index(ranked, shape), axis=1),
        importance_name=importance_name,
        order=order,
        mode=mode,
        seeds=seeds,
        score_name=inputs.target.score_name,
    )
