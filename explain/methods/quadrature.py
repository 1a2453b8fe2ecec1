"""Integrated gradients on the word embeddings: the quadrature engine of the integrated-gradients method.

Two engines compute the same path integral (from the baseline's word embeddings
to the input's) of the explained score's gradient:

- fixed Gauss-Legendre steps in float32 (this function's rule when given no
  `method` and no `tolerance`, and the rule of analyses saved before adaptive
  integration became the requests' default) is Captum's
  `IntegratedGradients` run on the word embeddings passed as `inputs_embeds`, so
  the path is the same as `LayerIntegratedGradients` on the word-embedding layer,
  but no hook is put on the (shared, cached) model and the baseline may be any
  embedding, zeros included;
- with a `tolerance` (adaptive number of steps) or `precision="bf16"`, a small
  quadrature loop here evaluates the same gradients at chosen points of the path.
  Adaptive mode uses nested Clenshaw-Curtis rules (9, 17, 33, ... points on
  [0, 1]; each level reuses every gradient of the level before, so doubling
  wastes nothing) and stops at the first level whose convergence delta is within
  `tolerance` of the score change it explains (or within the float32 rounding of
  the scores, which no number of steps can beat), or at the `n_steps` cap. bf16 mode
  runs the forward and backward passes under bfloat16 autocast (several times
  faster on CPUs and GPUs with bf16 matrix units); the endpoint scores, and so the
  reported delta, stay float32.
- `method="adaptive_simpson"` (the default of requests, the registry method and the CLI) puts its points where
  the integrand varies. On a pretrained encoder the gradient along the path has a
  narrow peak (near alpha 0.3-0.5), which rules with fixed nodes clustered at the ends
  (Gauss-Legendre, Clenshaw-Curtis) resolve only with many points. It starts from 2
  panels of 5 equally spaced points (9 evaluations), estimates each panel's error vector
  over the tokens (`simpson_panel`), and halves the panels with the largest estimates
  (4 new points each, every earlier point kept) until the summed estimate is within
  `tolerance` times the largest token attribution on every token (or the float32
  rounding of the scores), or the `n_steps` cap. The answer is Boole's rule on each panel.
  The token test looks at the attribution vector, not at the delta: a small delta can
  come from token errors that cancel. Its error estimate is a heuristic that a narrow peak
  can fool (`THIRD_DIFFERENCE_WEIGHT`), and when the tokens' attributions largely cancel, a
  token error of 1.5% of the largest token can still be a large share of the score change;
  so the run also checks the delta, which is exact for the sum: with a `delta_tolerance`
  (`DEFAULT_DELTA_TOLERANCE`, 5%, by default) it keeps refining until |delta| is within that
  share of the score change too (or the float32 rounding, or the cap).

Every engine reports the convergence delta against the same float32 endpoint
scores, so deltas of different modes can be compared directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator

import numpy as np
import torch

from explain.errors import InputError
from explain.methods.baselines import baseline_embeddings, endpoint_scores
from explain.records import (
    DEFAULT_DELTA_TOLERANCE,
    INTEGRATIONS,
    MAX_STEPS,
    MIN_STEPS,
    TokenAttribution,
    implied_integration,
)
from explain.targets import Target, model_position_ids

# Tokens x steps processed in one batch, for a hidden size of 768: keeps bert-base at
# 128 tokens near 2 GB instead of 6 GB for all 50 steps at once.
TOKEN_STEP_BUDGET = 1280
PRECISIONS = ("fp32", "bf16")
# adaptive_simpson's tolerance when none is given: estimated largest token error as a fraction of the
# largest token attribution. On the pretrained minilm it ranks the words of 20 sentences as a 500-step
# reference does (Spearman >= 0.99 on each) with about 2x fewer evaluations than 50 steps (docs/benchmarks.md).
SIMPSON_TOLERANCE = 1.5e-2
# Weight of the third-difference error estimate of a panel (`simpson_panel`), against peaks it does not
# resolve. What holds (tests/unit/test_adaptive_claims.py): on sums of 1-3 Lorentzian peaks of widths 0.15-0.3
# the error stays within 4x the tolerance, for tolerances 5e-3 to 0.1; narrower peaks can be under-resolved
# while the run reports converged (18% on one peak of width 0.025 at the default tolerance; see
# docs/benchmarks.md). The delta test (`adaptive_simpson`'s `total`) bounds the error of the sum exactly.
THIRD_DIFFERENCE_WEIGHT = 4.0
# Panels of the first adaptive_simpson level (2 panels, 9 points); a cap below 9 points starts from 1 panel.
SIMPSON_START_PANELS = 2
# Intervals of the first adaptive level (Clenshaw-Curtis, 9 points); each further level doubles them.
ADAPTIVE_START_INTERVALS = 8

ProgressCallback = Callable[[float], None]


def check_steps(n_steps: int) -> int:
    if not isinstance(n_steps, (int, np.integer)) or not MIN_STEPS <= int(n_steps) <= MAX_STEPS:
        raise InputError(f"The number of integration steps must be a whole number from {MIN_STEPS} to {MAX_STEPS}.")
    return int(n_steps)


def optional_fraction(value: float | None, message: str) -> float | None:
    """None, or `value` as a float in (0, 1]; InputError(`message`) for anything else."""
    if value is None:
        return None
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(float(value))
        or not 0 < float(value) <= 1
    ):
        raise InputError(message)
    return float(value)


def check_tolerance(tolerance: float | None) -> float | None:
    """None (a fixed number of steps) or a tolerance relative to the score change, in (0, 1]."""
    return optional_fraction(tolerance, "The convergence tolerance must be a number above 0 and at most 1 (a "
                             "fraction of the score change), or left empty for a fixed number of steps.")


def check_delta_tolerance(delta_tolerance: float | None) -> float | None:
    """None (do not check the delta) or the largest |delta| allowed as a fraction of the score change, in (0, 1]."""
    return optional_fraction(delta_tolerance, "The delta tolerance must be a number above 0 and at most 1 (a "
                             "fraction of the score change), or left empty to check only the tokens' estimated "
                             "errors.")


def check_method(method: str | None, tolerance: float | None) -> str:
    """The quadrature rule to run: `method`, or when None the one `tolerance` implies (today's default)."""
    if method is None:
        return implied_integration(tolerance)
    if method not in INTEGRATIONS:
        raise InputError(f"Unknown integration method '{method}'; choose one of {', '.join(INTEGRATIONS)}.")
    if method == "clenshaw_curtis" and tolerance is None:
        raise InputError("The clenshaw_curtis method needs a convergence tolerance.")
    if method == "gauss_legendre" and tolerance is not None:
        raise InputError("The gauss_legendre method runs a fixed number of steps and takes no tolerance.")
    return method


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise InputError(f"Unknown precision '{precision}'; choose one of {', '.join(PRECISIONS)}.")
    return precision


def internal_batch_size(n_tokens: int, n_steps: int, hidden_size: int) -> int:
    """How many interpolation steps go through the model at once, from the input size."""
    budget = TOKEN_STEP_BUDGET * 768 / max(hidden_size, 1)
    return int(max(1, min(n_steps, budget // max(n_tokens, 1))))


def gauss_legendre(n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights on [0, 1]: the same rule as Captum's "gausslegendre" method."""
    x, w = np.polynomial.legendre.leggauss(int(n_points))
    return 0.5 * (1 + x), 0.5 * w


def clenshaw_curtis(n_intervals: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes (1 - cos(j pi / n)) / 2 for j = 0..n, and weights, on [0, 1].

    Exact for polynomials of degree n (n + 1 when n is even). The nodes of n
    intervals are every second node of 2n intervals, so the levels nest.

    Args:
        n_intervals: 1 (the trapezoid rule) or an even number.
    """
    n = int(n_intervals)
    if n == 1:
        return np.array([0.0, 1.0]), np.array([0.5, 0.5])
    if n < 1 or n % 2:
        raise ValueError("Clenshaw-Curtis here takes 1 or an even number of intervals")
    theta = np.pi * np.arange(n + 1) / n
    nodes = 0.5 * (1 - np.cos(theta))
    nodes[0], nodes[-1] = 0.0, 1.0
    total = np.ones(n - 1)
    for k in range(1, n // 2 + 1):
        b = 1.0 if 2 * k == n else 2.0
        total -= b / (4 * k * k - 1) * np.cos(2 * k * theta[1:-1])
    weights = np.empty(n + 1)
    weights[1:-1] = 2 * total / n
    weights[0] = weights[-1] = 1.0 / (n * n - 1)
    return nodes, 0.5 * weights  # from [-1, 1] to [0, 1]


def adaptive_levels(max_points: int) -> list[int]:
    """Interval counts of the adaptive levels whose points (intervals + 1) fit in `max_points`.

    Starts at 8 intervals (9 points), or lower when the cap is below 9 points.
    """
    levels = [n for n in (1, 2, 4) if n + 1 <= max_points]
    n = ADAPTIVE_START_INTERVALS
    while n + 1 <= max_points:
        levels.append(n)
        n *= 2
    if not levels:
        return []
    start = max(i for i, n in enumerate(levels) if n <= ADAPTIVE_START_INTERVALS)
    return levels[start:]


def simpson_panel(values: np.ndarray, width: float) -> tuple[np.ndarray, np.ndarray]:
    """Boole's rule and the error estimate of one panel from its 5 equally spaced values [5, tokens].

    S1 is Simpson's rule on the whole panel, S2 on its two halves; S2 + (S2 - S1) / 15 is
    Boole's rule (exact to degree 5). The error estimate per token is the larger of
    Richardson's |S2 - S1| / 15 (a fourth difference) and `THIRD_DIFFERENCE_WEIGHT` times the
    same scale of the larger third difference: on a peak the panel does not resolve, the
    fourth difference can cancel by chance while the third differences stay large.
    """
    v = values
    s1 = width / 6 * (v[0] + 4 * v[2] + v[4])
    s2 = width / 12 * (v[0] + 4 * v[1] + 2 * v[2] + 4 * v[3] + v[4])
    third = np.maximum(np.abs(v[3] - 3 * v[2] + 3 * v[1] - v[0]), np.abs(v[4] - 3 * v[3] + 3 * v[2] - v[1]))
    return s2 + (s2 - s1) / 15, np.maximum(np.abs(s2 - s1) / 15, THIRD_DIFFERENCE_WEIGHT * width / 180 * third)


def adaptive_simpson(
    integrand: Callable[[np.ndarray], np.ndarray],
    tolerance: float,
    max_points: int,
    floor: float = 0.0,
    total: float | None = None,
    total_allowed: float = 0.0,
) -> tuple[np.ndarray, int, bool]:
    """Integral over [0, 1] of a vector-valued integrand by locally adaptive Simpson panels.

    Returns (integral [tokens], points evaluated, converged). Starts from 2 panels of 5
    equally spaced points (1 panel when `max_points` < 9); while the summed error estimates
    (`simpson_panel`) exceed max(tolerance * the largest |integral| entry, floor) on some
    token, halves the panels with the largest estimates (4 new points each, every earlier
    point kept), as many per round as needed to get under it and as fit in `max_points`.

    Args:
        integrand: alphas [points] -> values [points, tokens], float64; called once per round.
        total: the known integral of the summed integrand (integrated gradients: the score change),
            or None. With it, a run also refines until |sum of the integral - total| <= max(total_allowed,
            floor), halving the panels whose error estimate of the sum, scaled up to the error actually
            measured, is largest.
    """
    return run_rounds(simpson_rounds(tolerance, max_points, floor, total, total_allowed), integrand)


SimpsonRounds = Generator[np.ndarray, np.ndarray, tuple[np.ndarray, int, bool]]


def run_rounds(rounds: SimpsonRounds, integrand: Callable[[np.ndarray], np.ndarray]) -> tuple[np.ndarray, int, bool]:
    """Drive `simpson_rounds` with one integrand: each round's alphas in, its values back, the result at the end."""
    try:
        alphas = next(rounds)
        while True:
            alphas = rounds.send(integrand(alphas))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def simpson_rounds(tolerance: float, max_points: int, floor: float = 0.0, total: float | None = None,
                   total_allowed: float = 0.0) -> SimpsonRounds:
    """`adaptive_simpson` as a generator: yields each round's alphas, is sent their values [points, tokens], and
    returns (integral, points evaluated, converged). A caller can so advance many integrals together and evaluate
    all their rounds' points at once (`explain.corpus.batched` stacks the texts of a corpus batch)."""
    n_panels = SIMPSON_START_PANELS if max_points >= 4 * SIMPSON_START_PANELS + 1 else 1
    if max_points < 4 * n_panels + 1:
        raise ValueError("adaptive Simpson needs at least 5 points")
    alphas = np.arange(4 * n_panels + 1) / (4 * n_panels)
    known = dict(zip(alphas.tolist(), (yield alphas)))
    panels = [(j / n_panels, (j + 1) / n_panels) for j in range(n_panels)]
    while True:
        values = {p: np.stack([known[p[0] + (p[1] - p[0]) * j / 4] for j in range(5)]) for p in panels}
        rules = {p: simpson_panel(values[p], p[1] - p[0]) for p in panels}
        integral = np.sum([rule[0] for rule in rules.values()], axis=0)
        error = np.sum([rule[1] for rule in rules.values()], axis=0)
        allowed = max(tolerance * float(np.abs(integral).max()), floor)
        if float(error.max()) > allowed:
            estimates = {p: float(rules[p][1].max()) for p in panels}
            excess, limit = float(error.max()), allowed
        elif total is not None and abs(float(integral.sum()) - total) > max(total_allowed, floor):
            estimates = {p: float(simpson_panel(values[p].sum(axis=1), p[1] - p[0])[1]) for p in panels}
            excess, limit = abs(float(integral.sum()) - total), max(total_allowed, floor)
            scale = max(1.0, excess / max(sum(estimates.values()), 1e-300))  # the estimates missed this much
            estimates = {p: e * scale for p, e in estimates.items()}
        else:
            return integral, len(known), True
        room = (max_points - len(known)) // 4
        if room == 0:
            return integral, len(known), False
        chosen, left = [], excess
        for panel in sorted(panels, key=lambda p: (-estimates[p], p))[:room]:
            chosen.append(panel)
            left -= estimates[panel]
            if left <= limit:
                break
        new = np.array([a + (b - a) * j / 8 for a, b in chosen for j in (1, 3, 5, 7)])
        known.update(zip(new.tolist(), (yield new)))
        panels = sorted([p for p in panels if p not in chosen] + [h for a, b in chosen for h in ((a, (a + b) / 2),
                                                                                               ((a + b) / 2, b))])


def rounding_floor(score_input: float, score_baseline: float) -> float:
    """The smallest |delta| float32 endpoint scores can tell apart from 0: two units in the last place.

    Each endpoint score is rounded to half a unit, so no number of steps brings the
    measured delta reliably below this; adaptive runs stop there.
    """
    return 2.0 * float(np.spacing(np.float32(max(abs(score_input), abs(score_baseline)))))


def integrated_gradients(
    target: Target,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    special: torch.Tensor,
    *,
    token_type_ids: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
    n_steps: int = 50,
    baseline: str = "pad",
    progress: ProgressCallback | None = None,
    tolerance: float | None = None,
    precision: str = "fp32",
    method: str | None = None,
    delta_tolerance: float | None = DEFAULT_DELTA_TOLERANCE,
) -> TokenAttribution:
    """Attribute `target`'s explained score to each token.

    Args:
        input_ids, attention_mask, special: [1, tokens] tensors on the model's device.
        position_ids: the positions the prediction shown used; None derives them from
            `input_ids` by the model's own rule (`model_position_ids`). The input and the
            baseline share them, so only the word embeddings change along the path.
        n_steps: the number of Gauss-Legendre steps; with a `tolerance`, the most
            gradient evaluations allowed (levels of 9, 17, 33, ... points up to it).
        progress: called with the finished fraction after each batch of steps; it may
            raise to cancel the computation. Adaptive runs may jump to 1.0 when they
            converge before the cap.
        tolerance: None for a fixed number of steps; else stop at the first level with
            |delta| <= tolerance * |score_input - score_baseline|, or within the float32
            rounding of the scores (`rounding_floor`), below which no number of steps
            can bring it; `converged` says whether that happened before the cap.
        precision: "fp32", or "bf16" for bfloat16 autocast of the model's passes.
        method: None (the rule `tolerance` implies: "gauss_legendre" without one,
            "clenshaw_curtis" with one) or one of `INTEGRATIONS`. "adaptive_simpson" treats
            `n_steps` as the cap on gradient evaluations and `tolerance` (default
            `SIMPSON_TOLERANCE`) as the estimated largest token error allowed, as a fraction
            of the largest token attribution; `converged` says whether it got there.
        delta_tolerance: "adaptive_simpson" only: also refine until |delta| <= delta_tolerance *
            |score_input - score_baseline| (or the float32 rounding), and count that in `converged`;
            None checks only the tokens (the rule of analyses saved before the check existed).
    """
    n_steps = check_steps(n_steps)
    tolerance = check_tolerance(tolerance)
    precision = check_precision(precision)
    method = check_method(method, tolerance)
    delta_tolerance = check_delta_tolerance(delta_tolerance)
    embed = target.loaded.word_embeddings
    with torch.no_grad():
        inputs = embed(input_ids).detach()
    baselines = baseline_embeddings(target, input_ids, special, baseline)
    if position_ids is None:
        position_ids = model_position_ids(target.loaded, input_ids)
    context = (attention_mask, token_type_ids, position_ids)
    if method == "gauss_legendre" and precision == "fp32":
        scores, delta = _captum_ig(target, inputs, baselines, context, n_steps, progress)
        score_input, score_baseline = endpoint_scores(target, inputs, baselines, *context)
        return TokenAttribution(
            scores=scores,
            score_input=score_input,
            score_baseline=score_baseline,
            delta=delta,
            n_steps=n_steps,
            baseline=baseline,
        )

    path = _Path(target, inputs, baselines, context, precision, progress)
    score_input, score_baseline = endpoint_scores(target, inputs, baselines, *context)
    change = score_input - score_baseline
    floor = rounding_floor(score_input, score_baseline)
    if method == "adaptive_simpson" and n_steps >= 5:
        tolerance = SIMPSON_TOLERANCE if tolerance is None else tolerance
        path.total = n_steps
        integral, used, converged = adaptive_simpson(
            path.contributions, tolerance, n_steps, floor, total=None if delta_tolerance is None else change,
            total_allowed=0.0 if delta_tolerance is None else delta_tolerance * abs(change))
        scores = integral.astype(np.float32)
        if progress is not None:
            progress(1.0)
        return TokenAttribution(
            scores=scores,
            score_input=score_input,
            score_baseline=score_baseline,
            delta=float(scores.astype(np.float64).sum() - change),
            n_steps=used,
            baseline=baseline,
            precision=precision,
            tolerance=tolerance,
            converged=converged,
        )
    if method == "adaptive_simpson":  # a cap below one panel: fixed steps, never converged
        tolerance = SIMPSON_TOLERANCE if tolerance is None else tolerance
    allowed = None if tolerance is None else max(tolerance * abs(change), floor)
    levels = adaptive_levels(n_steps) if method == "clenshaw_curtis" else []
    if not levels:  # fixed steps (bf16), or a cap too small for any adaptive level
        path.total = n_steps
        nodes, weights = gauss_legendre(n_steps)
        per_node = path.contributions(nodes)
        used = n_steps
    else:
        path.total = levels[-1] + 1
        per_node = None
        for n in levels:
            nodes, weights = clenshaw_curtis(n)
            if per_node is None:
                per_node = path.contributions(nodes)
            else:  # the previous level's nodes are the even ones of this level
                refined = np.empty((n + 1, per_node.shape[1]))
                refined[0::2] = per_node
                refined[1::2] = path.contributions(nodes[1::2])
                per_node = refined
            scores = (weights @ per_node).astype(np.float32)
            if allowed is not None and abs(float(scores.astype(np.float64).sum() - change)) <= allowed:
                break
        used = n + 1
    scores = (weights @ per_node).astype(np.float32)
    delta = float(scores.astype(np.float64).sum() - change)
    if progress is not None:
        progress(1.0)
    return TokenAttribution(
        scores=scores,
        score_input=score_input,
        score_baseline=score_baseline,
        delta=delta,
        n_steps=used,
        baseline=baseline,
        precision=precision,
        tolerance=tolerance,
        converged=None if allowed is None else method == "clenshaw_curtis" and abs(delta) <= allowed,
    )


def _captum_ig(
    target: Target,
    inputs: torch.Tensor,
    baselines: torch.Tensor,
    context: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor],
    n_steps: int,
    progress: ProgressCallback | None,
) -> tuple[np.ndarray, float]:
    """Fixed Gauss-Legendre steps in float32, with Captum; returns (token scores, delta).

    context: (attention_mask, token_type_ids, position_ids) of the text, the same at every step.
    """
    batch = internal_batch_size(inputs.shape[1], n_steps, inputs.shape[-1])
    done = [0]

    def forward(
        emb: torch.Tensor, mask: torch.Tensor, types: torch.Tensor | None, positions: torch.Tensor
    ) -> torch.Tensor:
        scores = target.forward_embeddings(emb, mask, types, positions)
        if emb.requires_grad and progress is not None:
            done[0] += emb.shape[0]
            progress(min(1.0, done[0] / n_steps))
        return scores

    from captum.attr import IntegratedGradients  # lazy: Captum imports IPython and matplotlib (~2 s)

    with torch.enable_grad():
        ig = IntegratedGradients(forward)
        attributions, delta = ig.attribute(
            inputs,
            baselines=baselines,
            target=target.index,
            additional_forward_args=context,
            n_steps=n_steps,
            internal_batch_size=batch,
            return_convergence_delta=True,
        )
    scores = attributions.sum(-1)[0].detach().float().cpu().numpy().astype(np.float32)
    return scores, float(delta.reshape(-1)[0])


class _Path:
    """Gradients of the explained score along the straight path, in batches of points."""

    def __init__(
        self,
        target: Target,
        inputs: torch.Tensor,
        baselines: torch.Tensor,
        context: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor],
        precision: str,
        progress: ProgressCallback | None,
    ) -> None:
        self.target = target
        self.inputs, self.baselines = inputs, baselines
        self.diff = inputs - baselines
        self.mask, self.types, self.positions = context
        self.device_type = inputs.device.type
        self.autocast = precision == "bf16"
        if self.autocast and self.device_type == "cuda" and not torch.cuda.is_bf16_supported():
            raise InputError("This GPU has no bfloat16 support; use the fp32 precision.")
        self.progress = progress
        self.total = 1
        self.done = 0

    def contributions(self, alphas: np.ndarray) -> np.ndarray:
        """[points, tokens] float64: (input - baseline) . gradient at each alpha, summed over the hidden size."""
        n_tokens, hidden = self.inputs.shape[1], self.inputs.shape[-1]
        batch = internal_batch_size(n_tokens, len(alphas), hidden)
        out = []
        for start in range(0, len(alphas), batch):
            out.append(self._batch(alphas[start : start + batch]))
            self.done += len(alphas[start : start + batch])
            if self.progress is not None:
                self.progress(min(1.0, self.done / max(self.total, 1)))
        return np.concatenate(out)

    def _batch(self, alphas: np.ndarray) -> np.ndarray:
        k = len(alphas)
        a = torch.as_tensor(alphas, dtype=self.inputs.dtype, device=self.inputs.device).view(-1, 1, 1)
        points = torch.where(a == 1, self.inputs, self.baselines + a * self.diff)  # alpha 1 is the input exactly
        points.requires_grad_(True)
        types = None if self.types is None else self.types.expand(k, -1)
        with torch.enable_grad(), torch.autocast(self.device_type, dtype=torch.bfloat16, enabled=self.autocast):
            scores = self.target.forward_embeddings(points, self.mask.expand(k, -1), types,
                                                    self.positions.expand(k, -1))
            (grad,) = torch.autograd.grad(scores[:, self.target.index].sum(), points)
        return (grad.float() * self.diff).sum(-1).double().cpu().numpy()

