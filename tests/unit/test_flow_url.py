"""The flow's URL keys: declared like every other field, round-tripped, and a bad value falls back with a notice."""

from __future__ import annotations

from dashboard.state import DEFAULTS, EXPLORE_FIELDS, FIELDS_BY_NAME, from_query, to_query
from explain.flow import DEFAULT_THRESHOLD


def test_the_threshold_round_trips_and_the_default_is_left_out():
    state, notices = from_query({"t": "x", "ig": "adaptive_simpson", "dt": "0.05", "fl": "1", "ft": "0.12"})
    assert notices == [] and state.flow is True and state.flow_threshold == 0.12
    query = to_query(state, include=EXPLORE_FIELDS)
    assert query["fl"] == "1" and query["ft"] == "0.12"
    assert from_query(query)[0] == state
    assert "ft" not in to_query(DEFAULTS, include=EXPLORE_FIELDS) and DEFAULTS.flow_threshold == DEFAULT_THRESHOLD
    assert {"flow", "flow_threshold"} <= EXPLORE_FIELDS and FIELDS_BY_NAME["flow_threshold"].key == "ft"


def test_a_bad_threshold_is_the_default_with_one_notice():
    for bad in ("abc", "1.5", "-1", "nan", "0.1; drop"):
        state, notices = from_query({"ft": bad, "ig": "adaptive_simpson", "dt": "0.05"})
        assert state.flow_threshold == DEFAULT_THRESHOLD
        assert notices == ["The link's 'ft' value was ignored: expected a number from 0 to 1."]
