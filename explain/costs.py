"""What work costs, read from what it runs: model evaluations from each method's declared cost (and the
faithfulness, head and depth computations' own counts), priced in work units for a model and a length.

The unit of work is one token through one forward and backward pass of minilm (6 layers, hidden 384,
intermediate 1536) in a 128-token sequence; `explain.scheduling.WorkBudget` turns work into seconds here.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from explain.evaluation.faithfulness import DEFAULT_RANDOM_RANKINGS, ERASER_BINS
from explain.evaluation.naopc import DEFAULT_NAOPC, NAOPCSettings, limit_variants, order_variants
from explain.methods import get_method
from explain.methods.base import FORWARD_PASS, method_settings
from explain.pacing import work_units
from explain.records import FIXED_INTEGRATION, AnalysisRequest

# The passes of an analysis besides its method's: the attention pass and the two endpoint scores.
EXTRA_EVALUATIONS = 2
# The heads page scores the pruning curve at this many evenly spread numbers of removed heads (every number on
# smaller models), in the importance order and in this many random orders.
PRUNING_POINTS = 49
PRUNING_RANDOM_ORDERS = 3


def method_evaluations(request: AnalysisRequest, name: str, n_tokens: int, n_words: int | None = None) -> float:
    """Model evaluations method `name` makes for `request`: its declared cost at its settings for this request
    (`n_words` defaults to `n_tokens`, which no text exceeds)."""
    words = n_tokens if n_words is None else n_words
    return get_method(name).evaluations(method_settings(request, name), n_tokens, words)


def evaluations(request: AnalysisRequest, n_tokens: int = 0, n_words: int | None = None) -> float:
    """Model evaluations of a whole analysis of `request`: its method's, the attention pass and the endpoints."""
    return method_evaluations(request, request.method, n_tokens, n_words) + EXTRA_EVALUATIONS


def estimate_work(request: AnalysisRequest, config: Any, n_tokens: int, n_words: int | None = None) -> float:
    """Work units of an analysis of `request` at `n_tokens` tokens (every text it reads) on this model."""
    return work_units(evaluations(request, n_tokens, n_words), config, n_tokens, request.precision)


def faithfulness_evaluations(n_methods: int, n_words: int, n_bins: int = len(ERASER_BINS),
                             n_random: int = DEFAULT_RANDOM_RANKINGS,
                             naopc: NAOPCSettings | None = DEFAULT_NAOPC) -> float:
    """At most this many evaluations score the faithfulness of `n_methods` methods: each removes and keeps
    the top words at each bin, as do the random rankings, besides leaving out each word once (forward passes).

    With `naopc`: up to its exact word limit every one of the 2^W word subsets, which holds all of the above;
    above it the beam's inputs and each ranking's words removed one at a time."""
    variants = 1 + n_words + 2 * n_bins * (n_methods + n_random)
    if naopc is not None:
        extra = limit_variants(n_words, naopc) + order_variants(n_methods + n_random, n_words, naopc)
        variants = extra if naopc.search(n_words) == "exact" else variants + extra
    return FORWARD_PASS * variants


def head_passes(n_layers: int, n_heads: int, what: str, n_points: int = PRUNING_POINTS,
                n_random: int = PRUNING_RANDOM_ORDERS) -> int:
    """Forward passes one heads computation makes: the importance maps (one per head, plus the gradient's
    forward and backward and the attention pass) or the pruning curve (each point in each order)."""
    n_total = n_layers * n_heads
    if what == "importance":
        return n_total + 3
    return (1 + n_random) * min(n_total + 1, n_points)


def head_work(n_layers: int, n_heads: int, what: str, config: Any, n_tokens: int) -> float:
    """Work units of a heads computation ("importance" or "pruning") at `n_tokens` tokens."""
    return work_units(FORWARD_PASS * head_passes(n_layers, n_heads, what), config, n_tokens)


def depth_work(request: AnalysisRequest, n_layers: int, config: Any, n_tokens: int, n_steps: int | None = None
               ) -> float:
    """Work units of both depth attributions (fixed-step integrated gradients in float32: the embedding parts
    once, then every layer)."""
    steps = request.n_steps if n_steps is None else n_steps
    one_pass = replace(request, method="integrated_gradients", n_steps=steps, tolerance=None, precision="fp32",
                       integration=FIXED_INTEGRATION)
    return estimate_work(one_pass, config, n_tokens) * (n_layers + 1)


def flow_work(config: Any, n_tokens: int) -> float:
    """Work units of the information-flow view's contributions: ALTI's declared cost (one forward pass)."""
    return work_units(get_method("alti").evaluations(None, n_tokens, n_tokens), config, n_tokens)
