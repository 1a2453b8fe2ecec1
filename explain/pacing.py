"""What one model evaluation costs in work units, and how many items heavy work runs between two pause points.

Plain arithmetic on a model's config that imports no method, so that the methods themselves (which
`explain.costs` and `explain.scheduling` read) can size their batches for the scheduler's pause points.
The unit of work is one token through one forward and backward pass of minilm (6 layers, hidden 384,
intermediate 1536) in a 128-token sequence; `explain.scheduling.WorkBudget` turns work into seconds here.
"""

from __future__ import annotations

import math
import os
from typing import Any

from explain.families import model_shape as shape_by_family

WORK_RATE_ENV = "EXPLAIN_WORK_RATE"
DEFAULT_WORK_RATE = 2000.0  # work units per second here (explain.costs: the unit and where the rate comes from)

# The rate behind DEFAULT_WORK_RATE was measured on this project's 2-core machine (AMD EPYC, torch threads 2):
# 512 tokens x 1000 steps took about 340 s (issue 10), 128 x 200 and 11 x 50 agree within 10%
# (benchmarks/work_budget.py, docs/load-test.md).
REFERENCE_SHAPE = (6, 384, 1536)
REFERENCE_TOKENS = 128
# Fixed cost of one evaluation in token units (tensor set-up, per-layer overhead), which dominates short texts.
EVALUATION_OVERHEAD_TOKENS = 64
# bfloat16 autocast (fast mode) relative to float32, per evaluation: counted as float32 (not measured apart).
PRECISION_COST = {"fp32": 1.0, "bf16": 1.0}

# Heavy work runs in batches with a progress report after each, where it pauses for light work and stops when
# nobody waits for it: a batch is priced at most PAUSE_SECONDS here (a light request waits about that long for the
# heavy piece in its way to pause), and a run has at least MIN_PAUSE_POINTS batches (it stops within that share of
# its work once its tabs have closed).
PAUSE_SECONDS = 0.5
MIN_PAUSE_POINTS = 8


def env_float(name: str, default: float) -> float:
    """The environment variable `name` as a number; `default` when unset or not a number."""
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


def model_shape(config: Any) -> tuple[int, int, int]:
    """(layers, hidden size, feed-forward size) of a transformers config, by its family's names."""
    return shape_by_family(config, REFERENCE_SHAPE)


def token_cost(shape: tuple[int, int, int], n_tokens: int) -> float:
    """Multiply-adds per token of one pass: projections, feed-forward and attention over `n_tokens`."""
    layers, hidden, inner = shape
    return float(layers * (4 * hidden * hidden + 2 * hidden * inner + 2 * n_tokens * hidden))


def work_units(evaluations: float, config: Any, n_tokens: int, precision: str = "fp32") -> float:
    """Work units of `evaluations` model evaluations at `n_tokens` tokens on a model with this config."""
    relative = token_cost(model_shape(config), n_tokens) / token_cost(REFERENCE_SHAPE, REFERENCE_TOKENS)
    return evaluations * (n_tokens + EVALUATION_OVERHEAD_TOKENS) * relative * PRECISION_COST.get(precision, 1.0)


def batch_between_pauses(total: int, item_work: float, rate: float | None = None) -> int:
    """How many of `total` items, each `item_work` work units, to run between two pause points (at least 1)."""
    rate = env_float(WORK_RATE_ENV, DEFAULT_WORK_RATE) if rate is None else rate
    by_time = int(PAUSE_SECONDS * rate // max(item_work, 1e-9))
    return max(1, min(by_time, math.ceil(total / MIN_PAUSE_POINTS)))
