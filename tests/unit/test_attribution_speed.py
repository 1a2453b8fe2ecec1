"""Correctness (not timing) of the faster integrated-gradients modes: adaptive steps and bf16."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import spearmanr

from explain import AnalysisRequest, TargetSpec, analyze
from explain.errors import InputError
from explain.methods.quadrature import (
    SIMPSON_TOLERANCE,
    adaptive_levels,
    adaptive_simpson,
    check_method,
    clenshaw_curtis,
    gauss_legendre,
    integrated_gradients,
    rounding_floor,
)
from explain.pipeline import validate
from explain.records import Analysis
from explain.targets import choose_index, resolve_target

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
    request = AnalysisRequest(text_for(head), target=target, baseline=baseline, tolerance=1e-3, integration="clenshaw_curtis")
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
    request = AnalysisRequest(TEXT, target=TargetSpec("zero_shot", label="positive"), n_steps=5, tolerance=1e-9,
                              integration="clenshaw_curtis")
    a = analyze(request, tiny_models["encoder"]).attribution
    assert a.n_steps == 5 and a.converged is False
    assert abs(a.delta) > allowed_delta(a)
    assert float(a.scores.astype(np.float64).sum()) - (a.score_input - a.score_baseline) == pytest.approx(
        a.delta, abs=1e-6
    )


def test_adaptive_stops_early_on_an_easy_tolerance(tiny_models):
    a = analyze(AnalysisRequest(LONG, tolerance=1e-2, integration="clenshaw_curtis"), tiny_models["encoder"]).attribution
    assert a.converged is True and a.n_steps == 9


@pytest.mark.parametrize("head,target", CASES[:3])
def test_adaptive_agrees_with_many_fixed_steps(tiny_models, head, target):
    text = text_for(head, LONG)
    reference = analyze(AnalysisRequest(text, target=target, n_steps=300, integration="gauss_legendre"), tiny_models[head]).attribution.scores
    got = analyze(AnalysisRequest(text, target=target, tolerance=1e-4, integration="clenshaw_curtis"), tiny_models[head]).attribution.scores
    np.testing.assert_allclose(got, reference, atol=1e-4 * np.abs(reference).max() + 1e-9)


@pytest.mark.parametrize("head,target", CASES)
def test_bf16_attributions_follow_fp32(tiny_models, head, target):
    text = text_for(head, LONG)
    fp32 = analyze(AnalysisRequest(text, target=target, integration="gauss_legendre"), tiny_models[head])
    bf16 = analyze(AnalysisRequest(text, target=target, precision="bf16", integration="gauss_legendre"), tiny_models[head])
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
    a = analyze(AnalysisRequest(LONG, tolerance=5e-2, precision="bf16", integration="clenshaw_curtis"), tiny_models["encoder"]).attribution
    assert a.precision == "bf16" and a.n_steps in (9, 17, 33)
    assert a.converged is (abs(a.delta) <= allowed_delta(a))


def test_the_default_is_adaptive_simpson_capped_by_the_steps_and_fixed_steps_stay_available(tiny_models):
    request = AnalysisRequest(LONG)
    a = analyze(request, tiny_models["encoder"]).attribution
    assert request.integration == "adaptive_simpson" and a.settings["integration"] == "adaptive_simpson"
    assert a.precision == "fp32" and a.tolerance == SIMPSON_TOLERANCE and isinstance(a.converged, bool)
    assert 9 <= a.n_steps <= 50 and (a.n_steps - 9) % 4 == 0
    capped = analyze(AnalysisRequest(LONG, n_steps=13), tiny_models["encoder"]).attribution
    assert capped.n_steps <= 13
    fixed = analyze(AnalysisRequest(LONG, integration="gauss_legendre"), tiny_models["encoder"]).attribution
    assert (fixed.n_steps, fixed.precision, fixed.tolerance, fixed.converged) == (50, "fp32", None, None)
    # both integrate the same path: the adaptive answer is the 50-step one within its tolerance
    np.testing.assert_allclose(a.scores, fixed.scores, atol=3 * SIMPSON_TOLERANCE * np.abs(fixed.scores).max())


def test_a_fixed_rule_with_a_tolerance_and_an_unknown_rule_are_refused():
    with pytest.raises(InputError, match="fixed number of steps"):
        validate(AnalysisRequest(TEXT, integration="gauss_legendre", tolerance=1e-2))
    with pytest.raises(InputError, match="integration method"):
        validate(AnalysisRequest(TEXT, integration="trapezoid"))


def test_adaptive_progress_is_monotonic_and_cancellable(tiny_models):
    seen = []
    request = AnalysisRequest(LONG, tolerance=1e-9, n_steps=17, integration="clenshaw_curtis")  # runs both levels
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
            analyze(AnalysisRequest(LONG, tolerance=1e-3, precision=precision, integration="clenshaw_curtis"), tiny_models["encoder"],
                    progress=cancel)
    # the model lock was released
    assert analyze(AnalysisRequest(TEXT, tolerance=1e-2, integration="clenshaw_curtis"), tiny_models["encoder"]).attribution.n_steps == 9


def test_options_survive_the_json_round_trip(tiny_models):
    request = AnalysisRequest(TEXT, tolerance=1e-3, precision="bf16", n_steps=33, integration="clenshaw_curtis")
    result = analyze(request, tiny_models["encoder"])
    back = Analysis.from_json(result.to_json())
    assert back.request.tolerance == 1e-3 and back.request.precision == "bf16"
    a, b = result.attribution, back.attribution
    assert (b.precision, b.tolerance, b.converged, b.n_steps) == (a.precision, a.tolerance, a.converged, a.n_steps)
    # files written before these fields existed still load, with the old meaning
    data = json.loads(result.to_json())
    for record in (data["request"], data["attribution"]):
        for key in ("tolerance", "precision", "converged", "integration"):
            record.pop(key, None)
    old = Analysis.from_json(json.dumps(data))
    assert (old.request.tolerance, old.request.precision, old.request.integration) == (None, "fp32", "gauss_legendre")
    assert (old.attribution.tolerance, old.attribution.precision, old.attribution.converged) == (None, "fp32", None)


@pytest.mark.parametrize("tolerance", [0, -1e-3, 1.5, math.nan, math.inf, True, "0.01"])
def test_bad_tolerance_is_refused(tolerance):
    with pytest.raises(InputError, match="tolerance"):
        validate(AnalysisRequest(TEXT, tolerance=tolerance))


def test_bad_precision_is_refused():
    with pytest.raises(InputError, match="precision"):
        validate(AnalysisRequest(TEXT, precision="fp16"))


# --- adaptive Simpson panels (issue 11: a default with fewer evaluations at equal word ranking) ---


def recording(integrand):
    """The integrand, and the list of every alpha it was asked for."""
    seen: list[float] = []

    def f(alphas):
        seen.extend(np.asarray(alphas).tolist())
        return integrand(np.asarray(alphas))

    return f, seen


def peaks(centres, widths):
    """Lorentzian peaks, one per token, and their exact integrals over [0, 1]."""
    c, w = np.asarray(centres, float), np.asarray(widths, float)

    def f(alphas):
        return w / ((alphas[:, None] - c) ** 2 + w**2)

    exact = np.arctan((1 - c) / w) - np.arctan(-c / w)
    return f, exact


def test_adaptive_simpson_stops_at_the_first_level_when_the_integrand_is_linear():
    slope, offset = np.array([0.5, -2.0, 3.0]), np.array([1.0, 0.0, -0.25])
    f, seen = recording(lambda a: offset + a[:, None] * slope)
    value, used, converged = adaptive_simpson(f, 1e-6, 50)
    assert (used, converged) == (9, True) and len(seen) == 9
    np.testing.assert_allclose(value, offset + slope / 2, rtol=1e-12)
    assert sorted(seen) == [j / 8 for j in range(9)]


def test_adaptive_simpson_is_boole_on_each_panel():
    # Boole's rule is exact to degree 5; one level (tolerance 1) is 2 panels of it
    f, _ = recording(lambda a: np.stack([a**5, 1 - 3 * a**4 + a**2], axis=1))
    value, used, _ = adaptive_simpson(f, 1.0, 50)
    assert used == 9
    np.testing.assert_allclose(value, [1 / 6, 1 - 3 / 5 + 1 / 3], rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(
    centre=st.floats(0.05, 0.95),
    width=st.floats(0.02, 0.3),
    tolerance=st.sampled_from([1.5e-2, 1e-2, 3e-3]),
)
def test_adaptive_simpson_error_near_its_tolerance_and_points_follow_the_peak(centre, width, tolerance):
    # the error is estimated, not bounded: on peaks of these widths it stays within a few tolerances
    # (up to 6.5 in a scan of centres; a tolerance of 3e-2 let peaks narrower than 0.05 slip to 20)
    f, exact = peaks([centre, 0.5], [width, 1.0])
    g, seen = recording(f)
    value, used, converged = adaptive_simpson(g, tolerance, 1000)
    assert converged and used == len(seen) == len(set(seen)) and (used - 9) % 4 == 0
    assert np.abs(value - exact).max() <= 10 * tolerance * np.abs(exact).max()
    distance = np.abs(np.array(seen) - centre)
    if used > 9:  # the refinement went towards the peak: its points are no farther from it than the first level's
        assert distance[9:].mean() <= distance[:9].mean()  # equal when the peak sits on a grid point, symmetric


def test_adaptive_simpson_respects_the_cap_and_is_deterministic():
    f, _ = peaks([0.4, 0.3], [0.01, 0.05])
    g, seen = recording(f)
    first = adaptive_simpson(g, 1e-9, 30)
    second = adaptive_simpson(f, 1e-9, 30)
    assert first[1] <= 30 and first[2] is False and len(seen) == first[1]
    assert first[1] == second[1] and np.array_equal(first[0], second[0])
    assert adaptive_simpson(f, 1e-9, 8)[1] == 5  # below 9 points: one panel of 5


def independent_boole(loaded, text, label_index):
    """IG by composite Boole's rule on 9 equally spaced points, with a loop written here (not explain's)."""
    tok = loaded.tokenizer
    enc = tok(text, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    special = torch.tensor(tok.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)).bool()
    embed = loaded.model.bert.embeddings.word_embeddings
    x = embed.weight[ids[0]].detach()
    b = embed.weight[torch.where(special, ids[0], torch.full_like(ids[0], tok.pad_token_id))].detach()
    weights = np.array([7, 32, 12, 32, 14, 32, 12, 32, 7]) / 180  # Boole on [0, 1/2] and [1/2, 1]
    total = torch.zeros(ids.shape[1], dtype=torch.float64)
    for j, w in enumerate(weights):
        point = (b + j / 8 * (x - b)).unsqueeze(0).requires_grad_(True)
        prob = torch.softmax(loaded.model(inputs_embeds=point, attention_mask=mask).logits, -1)[0, label_index]
        (grad,) = torch.autograd.grad(prob, point)
        total += w * ((x - b) * grad[0]).sum(-1).double()
    return total.numpy()


def test_adaptive_simpson_equals_an_independent_sum_on_the_same_points(tiny_models):
    loaded = tiny_models["classification"]
    request = AnalysisRequest(TEXT, target=TargetSpec("class", label="positive"))
    enc = loaded.tokenizer(TEXT, return_tensors="pt")
    ids, mask = enc["input_ids"], enc["attention_mask"]
    special = torch.tensor(
        loaded.tokenizer.get_special_tokens_mask(ids[0].tolist(), already_has_special_tokens=True)
    ).bool().unsqueeze(0)
    target = resolve_target(loaded, request.target, ids)
    a = integrated_gradients(target, ids, mask, special, method="adaptive_simpson", tolerance=1.0)
    assert a.n_steps == 9 and a.converged is True and a.tolerance == 1.0
    expected = independent_boole(loaded, TEXT, target.index)
    np.testing.assert_allclose(a.scores, expected, atol=1e-6 * np.abs(expected).max())


@pytest.mark.parametrize("head,target", CASES)
@pytest.mark.parametrize("baseline", ["pad", "zero"])
def test_adaptive_simpson_completeness_and_recorded_settings(tiny_models, head, target, baseline):
    loaded = tiny_models[head]
    run, _, _ = simpson_runner(loaded, text_for(head, LONG), target, baseline)
    a = run()
    gap = float(a.scores.astype(np.float64).sum()) - (a.score_input - a.score_baseline)
    assert gap == pytest.approx(a.delta, abs=1e-6)
    assert a.tolerance == SIMPSON_TOLERANCE and a.precision == "fp32" and a.n_steps <= 50
    assert a.n_steps >= 9 and (a.n_steps - 9) % 4 == 0
    if a.converged:  # the estimated token errors are within tolerance; the summed ones bound the delta
        assert abs(a.delta) <= len(a.scores) * 3 * SIMPSON_TOLERANCE * np.abs(a.scores).max() + 1e-6
    reference = analyze(AnalysisRequest(text_for(head, LONG), target=target, baseline=baseline, n_steps=300,
                                        integration="gauss_legendre"),
                        loaded).attribution.scores
    np.testing.assert_allclose(a.scores, reference, atol=3 * SIMPSON_TOLERANCE * np.abs(reference).max() + 1e-7)


def simpson_runner(loaded, text, target_spec, baseline="pad"):
    """integrated_gradients with method="adaptive_simpson" on `text`, as the pipeline calls it."""
    from explain.inputs import tokenize

    kind = target_spec.kind
    inputs, tokens = tokenize(loaded, text, 64, keep_mask=kind == "masked_token")
    ids, mask, special = inputs["input_ids"], inputs["attention_mask"], inputs["special"]
    target = resolve_target(loaded, target_spec, ids)
    with torch.no_grad():
        out = target.module(input_ids=ids, attention_mask=mask, position_ids=inputs["position_ids"],
                            **({"token_type_ids": inputs["token_type_ids"]} if "token_type_ids" in inputs else {}))
        target = choose_index(target, target.scores_from_output(out, mask)[0].float())

    def run(**kw):
        return integrated_gradients(target, ids, mask, special, token_type_ids=inputs.get("token_type_ids"),
                                    position_ids=inputs["position_ids"], baseline=baseline,
                                    method="adaptive_simpson", **kw)

    return run, target, tokens


def test_adaptive_simpson_progress_reaches_one_and_runs_are_deterministic(tiny_models):
    run, _, _ = simpson_runner(tiny_models["encoder"], LONG, TargetSpec("zero_shot", label="positive"))
    seen: list[float] = []
    a = run(progress=seen.append, tolerance=1e-6)
    assert len(seen) >= 2 and seen == sorted(seen) and seen[-1] == 1.0 and a.n_steps > 9
    b = run(tolerance=1e-6)
    assert np.array_equal(a.scores, b.scores) and (a.n_steps, a.delta) == (b.n_steps, b.delta)

    class Stop(Exception):
        pass

    def cancel(fraction):
        raise Stop

    with pytest.raises(Stop):
        run(progress=cancel)


def test_adaptive_simpson_small_caps(tiny_models):
    run, _, _ = simpson_runner(tiny_models["encoder"], LONG, TargetSpec("zero_shot", label="positive"))
    assert run(n_steps=8, tolerance=1.0).n_steps == 5
    tiny = run(n_steps=4)
    assert tiny.n_steps == 4 and tiny.converged is False


@pytest.mark.parametrize(
    "method,tolerance,match",
    [("simpson", None, "method"), ("clenshaw_curtis", None, "tolerance"), ("gauss_legendre", 1e-2, "tolerance")],
)
def test_bad_method_is_refused(method, tolerance, match):
    with pytest.raises(InputError, match=match):
        check_method(method, tolerance)


def test_method_defaults_keep_todays_engines():
    assert check_method(None, None) == "gauss_legendre" and check_method(None, 1e-2) == "clenshaw_curtis"
    assert check_method("adaptive_simpson", None) == "adaptive_simpson"


def test_adaptive_simpson_in_bf16_reports_what_it_did(tiny_models):
    run, _, _ = simpson_runner(tiny_models["encoder"], LONG, TargetSpec("zero_shot", label="positive"))
    fp32, bf16 = run(), run(precision="bf16")
    assert bf16.precision == "bf16" and isinstance(bf16.converged, bool) and 9 <= bf16.n_steps <= 50
    assert float(bf16.scores.astype(np.float64).sum()) - (bf16.score_input - bf16.score_baseline) == pytest.approx(
        bf16.delta, abs=1e-6
    )
    assert spearmanr(fp32.scores, bf16.scores)[0] >= 0.95
