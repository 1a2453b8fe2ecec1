"""Issue 21 B1: adaptive integration also checks the delta (a setting, 5% by default), and the words match what ran."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from explain import AnalysisRequest, TargetSpec
from explain.cli import build_parser, request_from_args
from explain.completeness import completeness
from explain.errors import InputError
from explain.methods import METHODS
from explain.methods.base import method_settings
from explain.methods.quadrature import adaptive_simpson, rounding_floor
from explain.pipeline import validate
from explain.records import DEFAULT_DELTA_TOLERANCE, TokenAttribution, request_from_dict, to_jsonable
from tests.unit.test_attribution_speed import LONG, simpson_runner

V3_REQUEST = Path(__file__).resolve().parents[1] / "fixtures" / "schema_v3" / "request_v3_adaptive.json"


def lorentzians(centres, widths, amplitudes):
    """Signed Lorentzian peaks, one per token, and their exact integrals over [0, 1]."""
    c, w, a = (np.asarray(v, float) for v in (centres, widths, amplitudes))

    def f(alphas):
        return a * w / ((alphas[:, None] - c) ** 2 + w**2)

    return f, a * (np.arctan((1 - c) / w) - np.arctan(-c / w))


def test_token_errors_within_tolerance_can_leave_a_large_share_of_a_cancelling_sum():
    # two tokens that nearly cancel: each within 1.5% of the largest, the sum off by 15% of itself
    f, exact = lorentzians([0.35, 0.5], [0.06, 0.12], [1.0, -0.95])
    value, used, converged = adaptive_simpson(f, 1.5e-2, 1000)
    assert converged and abs(value.sum() - exact.sum()) > 0.1 * abs(exact.sum())
    checked, more, converged = adaptive_simpson(f, 1.5e-2, 1000, total=exact.sum(),
                                                total_allowed=0.05 * abs(exact.sum()))
    assert converged and more > used
    assert abs(checked.sum() - exact.sum()) <= 0.05 * abs(exact.sum())
    assert np.abs(checked - exact).max() <= 1.5e-2 * np.abs(exact).max()  # the token test still holds


@settings(max_examples=40, deadline=None)
@given(
    centres=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=4),
    widths=st.lists(st.floats(0.02, 0.3), min_size=4, max_size=4),
    amplitudes=st.lists(st.floats(-1.0, 1.0).filter(lambda a: abs(a) > 0.05), min_size=4, max_size=4),
    share=st.sampled_from([0.01, 0.05, 0.2]),
    cap=st.sampled_from([9, 29, 50, 200]),
)
def test_a_converged_run_meets_the_total_and_an_unconverged_one_used_its_cap(centres, widths, amplitudes, share,
                                                                             cap):
    n = len(centres)
    f, exact = lorentzians(centres, widths[:n], amplitudes[:n])
    allowed = share * abs(exact.sum())
    value, used, converged = adaptive_simpson(f, 1.5e-2, cap, total=exact.sum(), total_allowed=allowed)
    assert used <= cap
    if converged:
        assert abs(value.sum() - exact.sum()) <= allowed + 1e-12
    else:
        assert used > cap - 4  # no room for one more panel


def test_the_total_is_measured_not_estimated_so_a_wrong_one_runs_to_the_cap():
    f, exact = lorentzians([0.3, 0.7], [0.2, 0.2], [1.0, 1.0])
    _, used, converged = adaptive_simpson(f, 1.5e-2, 41, total=exact.sum() + 1.0, total_allowed=1e-3)
    assert (used, converged) == (41, False)


def test_the_default_run_checks_the_delta_and_none_checks_tokens_only(tiny_models):
    run, _, _ = simpson_runner(tiny_models["encoder"], LONG, TargetSpec("zero_shot", label="positive"))
    strict = run(delta_tolerance=1e-3, n_steps=400)
    floor = rounding_floor(strict.score_input, strict.score_baseline)
    if strict.converged:
        assert abs(strict.delta) <= max(1e-3 * abs(strict.score_input - strict.score_baseline), floor)
    else:
        assert strict.n_steps > 400 - 4
    tokens_only = run(delta_tolerance=None)
    default = run()
    assert default.n_steps >= tokens_only.n_steps
    if tokens_only.relative_delta <= DEFAULT_DELTA_TOLERANCE:  # the first stop already met the delta: same run
        assert np.array_equal(default.scores, tokens_only.scores)


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, float("nan"), True, "0.1"])
def test_a_bad_delta_tolerance_is_refused_in_one_sentence(bad):
    with pytest.raises(InputError, match="delta tolerance"):
        validate(AnalysisRequest("a film", delta_tolerance=bad))


def test_the_request_default_and_the_declared_setting_agree():
    assert AnalysisRequest("x").delta_tolerance == DEFAULT_DELTA_TOLERANCE == 0.05
    ig = {s.name: s for s in METHODS["integrated_gradients"].settings_type.specs()}
    assert ig["delta_tolerance"].default == DEFAULT_DELTA_TOLERANCE
    assert method_settings(AnalysisRequest("x"), "integrated_gradients").as_dict()["delta_tolerance"] == 0.05
    assert method_settings(AnalysisRequest("x", delta_tolerance=None), "integrated_gradients").as_dict()[
        "delta_tolerance"] == 0.0


def test_a_stored_request_without_the_key_decodes_to_tokens_only():
    saved = json.loads(V3_REQUEST.read_text())
    assert "delta_tolerance" not in saved["request"]
    request = request_from_dict(saved["request"])
    assert request.integration == "adaptive_simpson" and request.delta_tolerance is None
    again = request_from_dict(to_jsonable(AnalysisRequest("x", delta_tolerance=0.2)))
    assert again.delta_tolerance == 0.2


def test_the_cli_flag_sets_the_delta_tolerance():
    parser = build_parser()
    assert request_from_args(parser.parse_args(["a film"])).delta_tolerance == 0.05
    assert request_from_args(parser.parse_args(["a film", "--delta-tolerance", "0.2"])).delta_tolerance == 0.2
    assert request_from_args(parser.parse_args(["a film", "--delta-tolerance", "0"])).delta_tolerance is None
    with pytest.raises(SystemExit):
        parser.parse_args(["a film", "--delta-tolerance", "2"])


def attribution(relative: float, *, n_steps: int, converged: bool | None, tolerance: float | None = 0.015,
                method: str = "integrated_gradients") -> TokenAttribution:
    return TokenAttribution(scores=np.array([0.0, 1.0 + relative], np.float32), score_input=1.0, score_baseline=0.0,
                            delta=relative, n_steps=n_steps, baseline="pad", tolerance=tolerance,
                            converged=converged, method=method)


def test_more_steps_are_advised_only_when_the_cap_was_reached():
    request = AnalysisRequest("x", n_steps=50)
    stopped = completeness(request, attribution(0.062, n_steps=13, converged=True))
    assert not stopped.ok and not stopped.more_steps and "6%" in stopped.text and "more steps" not in stopped.text
    assert "higher cap would stop at the same point" in stopped.text
    old = completeness(AnalysisRequest("x", delta_tolerance=None), attribution(0.062, n_steps=13, converged=True))
    assert not old.more_steps and "did not check the delta" in old.text
    capped = completeness(request, attribution(0.062, n_steps=49, converged=False))
    assert capped.more_steps and "cap of 50" in capped.text
    fixed = completeness(AnalysisRequest("x", integration="gauss_legendre"),
                         attribution(0.062, n_steps=50, converged=None, tolerance=None))
    assert fixed.more_steps and "more integration steps" in fixed.text
    assert completeness(request, attribution(0.01, n_steps=13, converged=True)).ok
    shap = completeness(request, attribution(0.2, n_steps=0, converged=None, tolerance=None, method="kernel_shap"))
    assert not shap.more_steps and "steps" not in shap.text
