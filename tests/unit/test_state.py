from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dashboard.state import COMPARE_FIELDS, DEFAULTS, EXPLORE_FIELDS, ViewState, from_query, to_query
from explain import TargetSpec
from explain.methods import METHODS


def test_defaults_give_a_short_link_and_round_trip():
    assert to_query(DEFAULTS) == {"t": DEFAULTS.text, "ig": "adaptive_simpson", "dt": "0.05"}
    state, notices = from_query(to_query(DEFAULTS))
    assert state == DEFAULTS and notices == []


def test_every_field_round_trips():
    state = ViewState(
        text="Über <b>bold</b> & 😀", model="some-org/model", target="zero_shot", label="joy",
        labels="joy, anger", prompts="I am happy.|I am angry.", reference="", steps=120, baseline="mask",
        max_tokens=256, level="subword", layer=3, head=7, hide_special=True, token=4, stat="distance",
        model_b="minilm", text_b="Other text", layer_b=1, head_b=2, mode="texts", analysis="abc123", stretch=True,
    )
    back, notices = from_query(to_query(state))
    assert back == state and notices == []


@pytest.mark.parametrize(
    "params,field,key",
    [
        ({"n": "0"}, "steps", "n"),
        ({"n": "lots"}, "steps", "n"),
        ({"n": "1001"}, "steps", "n"),
        ({"b": "noise"}, "baseline", "b"),
        ({"v": "letters"}, "level", "v"),
        ({"l": "-1"}, "layer", "l"),
        ({"h": "1e3"}, "head", "h"),
        ({"sp": "yes"}, "hide_special", "sp"),
        ({"sc": "true"}, "stretch", "sc"),
        ({"st": "magic"}, "stat", "st"),
        ({"tg": "regression"}, "target", "tg"),
        ({"t": "   "}, "text", "t"),
        ({"t": "x" * 6000}, "text", "t"),
        ({"m": "a\x00b"}, "model", "m"),
        ({"mx": "100000"}, "max_tokens", "mx"),
        ({"me": "magic"}, "method", "me"),
        ({"me": "Occlusion"}, "method", "me"),
        ({"ms": "lime.n_samples=3"}, "method_settings", "ms"),
        ({"ms": "lime.n_samples=many"}, "method_settings", "ms"),
        ({"ms": "lime.colour=red"}, "method_settings", "ms"),
        ({"ms": "magic.n=1"}, "method_settings", "ms"),
        ({"ms": "integrated_gradients.n_steps=5"}, "method_settings", "ms"),
        ({"ms": "lime"}, "method_settings", "ms"),
        ({"mf": "shuffle"}, "removal", "mf"),
    ],
)
def test_bad_values_fall_back_with_a_notice(params, field, key):
    state, notices = from_query(params)
    assert getattr(state, field) == getattr(DEFAULTS, field)
    assert len(notices) == 1 and f"'{key}'" in notices[0]


def test_unknown_params_are_reported():
    state, notices = from_query({"zzz": "1", "t": "hello"})
    assert state.text == "hello"
    assert len(notices) == 1 and "zzz" in notices[0]


def test_target_spec_from_state():
    assert DEFAULTS.target_spec() is None
    spec = replace(DEFAULTS, target="zero_shot", labels="a, b ,", prompts="A.|B.", label="a").target_spec()
    assert spec == TargetSpec(kind="zero_shot", label="a", labels=("a", "b"), prompts=("A.", "B."))
    request = replace(DEFAULTS, target="class", model_b="x").request(second=True)
    assert request.model == "x" and request.target is None
    texts = replace(DEFAULTS, mode="texts", text_b="other").request(second=True)
    assert texts.text == "other" and texts.model == DEFAULTS.model


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(["t", "m", "n", "b", "l", "h", "sp", "v", "tok", "st", "mx", "x", "tg", "me",
                                        "ms", "mf"]),
                       st.text(max_size=40)))
def test_any_query_parses_to_a_valid_state(params):
    state, notices = from_query(params)
    assert isinstance(state, ViewState)
    assert 1 <= state.steps <= 1000 and state.baseline in ("pad", "mask", "zero")
    assert state.text.strip()
    back, _ = from_query(to_query(state))
    assert back == state
    request = state.request()
    for key, value in request.method_settings:  # every setting a link keeps is one its method accepts
        name, setting_name = key.split(".", 1)
        METHODS[name].settings_type.parse({setting_name: value})


def test_stretching_each_map_is_off_by_default_and_kept_in_the_link():
    assert DEFAULTS.stretch is False
    assert "sc" not in to_query(DEFAULTS)
    state, notices = from_query({"sc": "1"})
    assert state.stretch is True and notices == []
    assert to_query(state)["sc"] == "1"
    assert "stretch" in EXPLORE_FIELDS and "stretch" in COMPARE_FIELDS


def test_the_dashboard_and_the_library_share_one_token_limit():
    from explain.records import DEFAULT_MAX_TOKENS

    assert DEFAULTS.max_tokens == DEFAULT_MAX_TOKENS == 128


def test_the_url_table_declares_every_field_once():
    from dashboard.state import URL_FIELDS

    keys = [f.key for f in URL_FIELDS]
    assert len(keys) == len(set(keys))
    assert {f.name for f in URL_FIELDS} == set(ViewState.__dataclass_fields__)
    assert EXPLORE_FIELDS - {"span"} < COMPARE_FIELDS  # the single-head map's zoom is Explore's own


def test_the_method_and_its_settings_reach_the_request_on_both_compare_sides():
    state, notices = from_query({"me": "lime", "ms": "lime.seed=3;lime.n_samples=300"})
    assert notices == []
    assert state.method_settings == "lime.n_samples=300;lime.seed=3"  # sorted: one choice, one link
    for request in (state.request(), replace(state, mode="models").request(second=True),
                    replace(state, mode="texts").request(second=True)):
        assert request.method == "lime"
        assert request.method_settings == (("lime.n_samples", "300"), ("lime.seed", "3"))
    assert to_query(state)["me"] == "lime" and "me" not in to_query(DEFAULTS)


def test_a_bad_setting_costs_only_itself():
    state, notices = from_query({"me": "smoothgrad", "ms": "smoothgrad.noise=0.5;smoothgrad.noise_x=1;lime.seed=-4"})
    assert state.method == "smoothgrad"
    assert state.method_settings == "smoothgrad.noise=0.5"
    assert len(notices) == 2 and all("'ms'" in n for n in notices)
    assert "noise_x" in notices[0] and "seed" in notices[1]


def test_the_methods_page_has_the_request_fields_and_its_own():
    from dashboard.state import METHODS_FIELDS

    assert {"text", "model", "target", "steps", "baseline", "max_tokens", "method", "method_settings",
            "removal"} <= METHODS_FIELDS
    assert not {"layer", "head", "analysis", "model_b"} & METHODS_FIELDS
    assert "removal" not in EXPLORE_FIELDS and "method" in EXPLORE_FIELDS and "method" in COMPARE_FIELDS


def test_reopening_a_saved_analysis_restores_its_method():
    from dashboard.state import state_from_saved
    from explain import AnalysisRequest

    request = AnalysisRequest("good film", method="kernel_shap", method_settings=(("kernel_shap.n_samples", "64"),))
    state, notices = state_from_saved([request], {}, {})
    assert notices == [] and state.method == "kernel_shap"
    assert state.request().method_settings == (("kernel_shap.n_samples", "64"),)


def setting_entries():
    """("method.setting", value text) entries each method accepts, drawn from the declared specs."""
    entries = []
    for name, method in METHODS.items():
        if name == "integrated_gradients":
            continue
        for spec in method.settings_type.specs():
            key = f"{name}.{spec.name}"
            if spec.choices:
                entries.append(st.sampled_from(spec.choices).map(lambda v, k=key: (k, v)))
            elif spec.kind is int:
                entries.append(st.integers(int(spec.minimum), int(spec.maximum)).map(lambda v, k=key: (k, str(v))))
            elif spec.kind is float:
                entries.append(st.floats(spec.minimum, spec.maximum).map(lambda v, k=key: (k, repr(v))))
    return st.one_of(entries)


@settings(max_examples=200, deadline=None)
@given(st.lists(setting_entries(), max_size=6), st.sampled_from(list(METHODS)))
def test_valid_settings_survive_the_link(entries, method):
    text = ";".join(f"{k}={v}" for k, v in entries)
    state, notices = from_query({"me": method, "ms": text})
    assert notices == []
    assert state.method == method
    assert dict(state.request().method_settings) == dict(entries)  # the last value of a repeated setting wins
    back, again = from_query(to_query(state))
    assert back == state and again == []


@pytest.mark.parametrize("params", [{"t": "good film"}, {"t": "good film", "n": "50"}, {"t": "good film", "l": "2"},
                                    {"t": "good film", "fa": "0", "me": "integrated_gradients"}])
def test_a_link_from_before_adaptive_integration_still_runs_fixed_50_steps(params):
    """Links written before the `ig` key existed ran 50 fixed steps (their default); a missing key must not turn
    them adaptive when they reopen."""
    state, notices = from_query(params)
    request = state.request()
    assert notices == []
    assert request.integration == "gauss_legendre" and request.n_steps == 50 and request.tolerance is None
    assert to_query(state)["ig"] == "gauss_legendre"  # and the link it writes back says so


def test_a_fresh_visit_and_a_new_link_run_adaptive_integration_capped_by_the_steps():
    state, notices = from_query({})
    assert notices == [] and state.request().integration == "adaptive_simpson" and state.request().n_steps == 50
    link = to_query(replace(DEFAULTS, steps=80))
    assert link["ig"] == "adaptive_simpson"
    back, _ = from_query(link)
    assert back.request().integration == "adaptive_simpson" and back.request().n_steps == 80


def test_fast_mode_keeps_its_own_rule_and_an_old_fast_link_reads_the_same():
    state, _ = from_query({"t": "good film", "fa": "1"})
    request = state.request()
    assert (request.integration, request.tolerance, request.precision) == ("clenshaw_curtis", 1e-2, "bf16")


def test_reopening_a_saved_fixed_step_analysis_keeps_fixed_steps():
    from dashboard.state import state_from_saved
    from explain import AnalysisRequest

    state, _ = state_from_saved([AnalysisRequest("good film", n_steps=30, integration="gauss_legendre")], {},
                                {"analysis": "abc"})
    assert state.request().integration == "gauss_legendre" and state.request().n_steps == 30


def test_a_link_from_before_the_delta_check_reopens_with_tokens_only_and_new_links_carry_the_check():
    """Issue 21 B1: a link with `ig=adaptive_simpson` but no `dt` ran the token test alone; it must reopen with the
    same numbers, so it gets no delta check. A fresh visit and every new link check the delta (5%)."""
    old, notices = from_query({"t": "good film", "ig": "adaptive_simpson"})
    assert notices == [] and old.request().delta_tolerance is None
    assert to_query(old)["dt"] == "0.0"  # and the link it writes back says so
    fresh, _ = from_query({})
    assert fresh.request().delta_tolerance == 0.05 and to_query(fresh)["dt"] == "0.05"
    chosen, notices = from_query({"t": "good film", "ig": "adaptive_simpson", "dt": "0.2"})
    assert notices == [] and chosen.request().delta_tolerance == 0.2
    bad, notices = from_query({"t": "good film", "ig": "adaptive_simpson", "dt": "5"})
    assert bad.delta_tolerance == 0.05 and notices and "'dt'" in notices[0]


def test_reopening_a_saved_analysis_keeps_its_delta_tolerance():
    from dashboard.state import state_from_saved
    from explain import AnalysisRequest

    for delta in (None, 0.05, 0.2):
        state, _ = state_from_saved([AnalysisRequest("good film", delta_tolerance=delta)], {}, {"analysis": "abc"})
        assert state.request().delta_tolerance == delta
