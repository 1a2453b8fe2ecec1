"""Correctness (not timing) of the faster integrated-gradients modes: adaptive steps and bf16."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.stats import spearmanr

from explain import AnalysisRequest, TargetSpec, analyze
from explain.analysis import Analysis
from explain.attribution import adaptive_levels, clenshaw_curtis, gauss_legendre, rounding_floor
from explain.errors import InputError
from explain.pipeline import validate

TEXT = "The film was good but too long ."
LONG = (
    "the film was good but too long and the service was terrible , not great ! "
    "the food was slow but i loved it and this movie is very bad"
)
CASES = [
    ("classification", TargetSpec("class", label="positive")),
    ("masked_lm", TargetSpec("masked_token", label="good")),
    ("encoder", TargetSpec("zero_shot", label="positive")),
    ("encoder", TargetSpec("similarity", reference="the food was bad")),
]


def text_for(head: str, text: str = TEXT) -> str:
    return text.replace("good", "[MASK]") if head == "masked_lm" else text


def allowed_delta(a) -> float:
    return max(a.tolerance * abs(a.score_input - a.score_baseline), rounding_floor(a.score_input, a.score_baseline))


@pytest.mark.parametrize("n", [1, 2, 4, 8, 16, 32])
def test_clenshaw_curtis_is_exact_for_polynomials_and_nests(n):
    nodes, weights = clenshaw_curtis(n)
    assert nodes[0] == 0.0 and nodes[-1] == 1.0 and np.all(np.diff(nodes) > 0)
    for degree in range(n + 1):
        assert (weights * nodes**degree).sum() == pytest.approx(1 / (degree + 1), abs=1e-12)
    finer, _ = clenshaw_curtis(2 * n)
    np.testing.assert_allclose(finer[0::2], nodes, atol=1e-15)


def test_gauss_legendre_matches_captum():
    from captum.attr._utils.approximation_methods import approximation_parameters

    step_sizes, alphas = approximation_parameters("gausslegendre")
    nodes, weights = gauss_legendre(7)
    np.testing.assert_allclose(nodes, alphas(7))
    np.testing.assert_allclose(weights, step_sizes(7))


def test_adaptive_levels_fit_the_step_cap():
    assert adaptive_levels(50) == [8, 16, 32]  # 9, 17, 33 gradient evaluations at most
    assert adaptive_levels(1000)[-1] == 512
    assert adaptive_levels(9) == [8]
    assert adaptive_levels(5) == [4]
    assert adaptive_levels(2) == [1]
    assert adaptive_levels(1) == []


@pytest.mark.parametrize("head,target", CASES)
@pytest.mark.parametrize("baseline", ["pad", "zero"])
def test_adaptive_completeness_within_reported_delta_and_tolerance(tiny_models, head, target, baseline):
    request = AnalysisRequest(text_for(head), target=target, baseline=baseline, tolerance=1e-3)
    a = analyze(request, tiny_models[head]).attribution
    gap = float(a.scores.astype(np.float64).sum()) - (a.score_input - a.score_baseline)
    assert gap == pytest.approx(a.delta, abs=1e-6)
    assert a.tolerance == 1e-3 and a.precision == "fp32"
    assert a.n_steps in (9, 17, 33)  # the steps used are reported: a nested level within the 50 cap
    if a.converged:
        assert abs(a.delta) <= allowed_delta(a)
    else:
        assert a.n_steps == 33  # it says it stopped at the cap
        assert abs(a.delta) > allowed_delta(a)
    np.testing.assert_allclose(a.scores[np.asarray(analyze(request, tiny_models[head]).tokens.special)], 0, atol=1e-7)


def test_adaptive_reports_hitting_the_step_cap(tiny_models):
    # zero-shot on the tiny encoder: its score changes by ~0.02 and 5 points give a delta near 1e-4 of that
    request = AnalysisRequest(TEXT, target=TargetSpec("zero_shot", label="positive"), n_steps=5, tolerance=1e-9)
    a = analyze(request, tiny_models["encoder"]).attribution
    assert a.n_steps == 5 and a.converged is False
    assert abs(a.delta) > allowed_delta(a)
    assert float(a.scores.astype(np.float64).sum()) - (a.score_input - a.score_baseline) == pytest.approx(
        a.delta, abs=1e-6
    )


def test_adaptive_stops_early_on_an_easy_tolerance(tiny_models):
    a = analyze(AnalysisRequest(LONG, tolerance=1e-2), tiny_models["encoder"]).attribution
    assert a.converged is True and a.n_steps == 9


@pytest.mark.parametrize("head,target", CASES[:3])
def test_adaptive_agrees_with_many_fixed_steps(tiny_models, head, target):
    text = text_for(head, LONG)
    reference = analyze(AnalysisRequest(text, target=target, n_steps=300), tiny_models[head]).attribution.scores
    got = analyze(AnalysisRequest(text, target=target, tolerance=1e-4), tiny_models[head]).attribution.scores
    np.testing.assert_allclose(got, reference, atol=1e-4 * np.abs(reference).max() + 1e-9)


@pytest.mark.parametrize("head,target", CASES)
def test_bf16_attributions_follow_fp32(tiny_models, head, target):
    text = text_for(head, LONG)
    fp32 = analyze(AnalysisRequest(text, target=target), tiny_models[head])
    bf16 = analyze(AnalysisRequest(text, target=target, precision="bf16"), tiny_models[head])
    a, b = fp32.attribution, bf16.attribution
    assert b.precision == "bf16" and b.n_steps == 50 and b.converged is None
    # bfloat16 really ran: float32 engines agree to ~1e-6 of the largest score, bfloat16 to ~1e-2 ...
    assert np.abs(a.scores - b.scores).max() > 1e-4 * np.abs(a.scores).max()
    # ... and still ranks the tokens and words as float32 does: a broken or sign-flipped path fails these
    inner = ~np.asarray(fp32.tokens.special)
    assert spearmanr(a.scores[inner], b.scores[inner])[0] >= 0.95
    assert spearmanr(fp32.word_scores, bf16.word_scores)[0] >= 0.95
    assert np.abs(a.scores - b.scores).max() <= 0.1 * np.abs(a.scores).max()
    # endpoints stay float32, and the delta is still the exact completeness gap
    assert (b.score_input, b.score_baseline) == (a.score_input, a.score_baseline)
    assert float(b.scores.astype(np.float64).sum()) - (b.score_input - b.score_baseline) == pytest.approx(
        b.delta, abs=1e-6
    )


def test_bf16_adaptive_reports_steps(tiny_models):
    a = analyze(AnalysisRequest(LONG, tolerance=5e-2, precision="bf16"), tiny_models["encoder"]).attribution
    assert a.precision == "bf16" and a.n_steps in (9, 17, 33)
    assert a.converged is (abs(a.delta) <= allowed_delta(a))


def test_default_mode_is_unchanged(tiny_models):
    a = analyze(AnalysisRequest(TEXT), tiny_models["encoder"]).attribution
    assert (a.n_steps, a.precision, a.tolerance, a.converged) == (50, "fp32", None, None)


def test_adaptive_progress_is_monotonic_and_cancellable(tiny_models):
    seen = []
    request = AnalysisRequest(LONG, tolerance=1e-9, n_steps=17)  # runs both levels
    analyze(request, tiny_models["encoder"], progress=lambda s, f: seen.append((s, f)))
    fractions = [f for s, f in seen if s == "attribution"]
    assert len(fractions) >= 2 and fractions == sorted(fractions) and fractions[-1] == 1.0

    class Stop(Exception):
        pass

    def cancel(stage, fraction):
        if stage == "attribution":
            raise Stop

    for precision in ("fp32", "bf16"):
        with pytest.raises(Stop):
            analyze(AnalysisRequest(LONG, tolerance=1e-3, precision=precision), tiny_models["encoder"],
                    progress=cancel)
    # the model lock was released
    assert analyze(AnalysisRequest(TEXT, tolerance=1e-2), tiny_models["encoder"]).attribution.n_steps == 9


def test_options_survive_the_json_round_trip(tiny_models):
    request = AnalysisRequest(TEXT, tolerance=1e-3, precision="bf16", n_steps=33)
    result = analyze(request, tiny_models["encoder"])
    back = Analysis.from_json(result.to_json())
    assert back.request.tolerance == 1e-3 and back.request.precision == "bf16"
    a, b = result.attribution, back.attribution
    assert (b.precision, b.tolerance, b.converged, b.n_steps) == (a.precision, a.tolerance, a.converged, a.n_steps)
    # files written before these fields existed still load, with the old meaning
    data = json.loads(result.to_json())
    for record in (data["request"], data["attribution"]):
        for key in ("tolerance", "precision", "converged"):
            record.pop(key, None)
    old = Analysis.from_json(json.dumps(data))
    assert (old.request.tolerance, old.request.precision) == (None, "fp32")
    assert (old.attribution.tolerance, old.attribution.precision, old.attribution.converged) == (None, "fp32", None)


@pytest.mark.parametrize("tolerance", [0, -1e-3, 1.5, math.nan, math.inf, True, "0.01"])
def test_bad_tolerance_is_refused(tolerance):
    with pytest.raises(InputError, match="tolerance"):
        validate(AnalysisRequest(TEXT, tolerance=tolerance))


def test_bad_precision_is_refused():
    with pytest.raises(InputError, match="precision"):
        validate(AnalysisRequest(TEXT, precision="fp16"))
