"""Fuzz of the document reader: mutated real exports and random JSON only ever give a SchemaError.

Never TypeError, RecursionError, OverflowError, MemoryError or anything else, and a
document that is read back is one the figures can draw (its parts fit together).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import typing

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explain import AnalysisRequest, SchemaError, analyze
from explain.document import Document, document_from_data, document_from_json
from explain.records import check_consistent

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=12)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)


@pytest.fixture(scope="module")
def seeds(tiny_models) -> list[dict]:
    """Real exports: one analysis of each tiny head, and a comparison."""
    text = "the film was [MASK] good"
    analyses = [analyze(AnalysisRequest(text, n_steps=2), m) for m in tiny_models.values()]
    documents = [Document(kind="explore", analyses=[a]) for a in analyses]
    documents.append(Document(kind="compare", analyses=analyses[:2], view={"l": "1"}))
    return [json.loads(d.to_json()) for d in documents]


def paths(value, prefix=()):
    """Every path into JSON data (keys and list indices)."""
    yield prefix
    if isinstance(value, dict):
        for key, child in value.items():
            yield from paths(child, (*prefix, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from paths(child, (*prefix, i))


def replaced(document, path, value):
    if not path:
        return value
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


def assert_typed(record) -> None:
    """Every field of a record (recursively) holds the type its annotation names."""
    hints = typing.get_type_hints(type(record))
    for f in dataclasses.fields(record):
        value, hint = getattr(record, f.name), hints[f.name]
        if dataclasses.is_dataclass(value):
            assert_typed(value)
            continue
        allowed = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, type(int | None)) else (hint,)
        assert any(matches(value, a) for a in allowed), f"{type(record).__name__}.{f.name} = {value!r}"


def matches(value, hint) -> bool:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is type(None):
        return value is None
    if hint is np.ndarray:
        return isinstance(value, np.ndarray) and value.dtype.kind in "biuf"
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, float)
    if hint is typing.Any:
        return True
    if origin in (list, tuple):
        if not isinstance(value, origin):
            return False
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            return all(matches(v, args[0]) for v in value)
        return len(value) == len(args) and all(matches(v, a) for v, a in zip(value, args))
    if origin is dict:
        return isinstance(value, dict) and all(matches(k, args[0]) and matches(v, args[1])
                                               for k, v in value.items())
    if origin in (typing.Union, type(int | None)):
        return any(matches(value, a) for a in args)
    if dataclasses.is_dataclass(hint):
        return isinstance(value, hint)
    return isinstance(value, hint)


def read_or_schema_error(data) -> None:
    try:
        document = document_from_data(data)
    except SchemaError as exc:
        assert str(exc).endswith("."), str(exc)
        return
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in document.view.items())
    for analysis in document.analyses:
        assert_typed(analysis)
        check_consistent(analysis)
        assert math.isfinite(sum(analysis.timings.values()))


@FUZZ
@given(data=st.data())
def test_a_real_export_with_one_field_replaced_is_read_or_refused(seeds, data):
    seed = data.draw(st.sampled_from(seeds))
    path = data.draw(st.sampled_from(list(paths(seed))))
    value = data.draw(json_values | st.integers(0, 2**63) | st.lists(st.integers(0, 100_000), max_size=4))
    read_or_schema_error(replaced(seed, path, value))


@FUZZ
@given(data=st.data())
def test_a_real_export_with_a_field_removed_is_refused(seeds, data):
    seed = data.draw(st.sampled_from(seeds))
    path = data.draw(st.sampled_from([p for p in paths(seed) if p and isinstance(p[-1], str)]))
    document = copy.deepcopy(seed)
    target = document
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    read_or_schema_error(document)


@FUZZ
@given(data=st.data())
def test_cut_or_corrupted_json_text_is_refused(seeds, data):
    text = json.dumps(data.draw(st.sampled_from(seeds)))
    cut = data.draw(st.integers(0, len(text) - 1))
    junk = data.draw(st.sampled_from(["", "Infinity", "NaN", "-Infinity", "[" * 5000, "1e999", '"\\ud800"', "\x00"]))
    with pytest.raises(SchemaError):
        document_from_json(text[:cut] + junk)


@FUZZ
@given(value=json_values)
def test_random_json_is_refused(value):
    with pytest.raises(SchemaError):
        document_from_json(json.dumps(value))
