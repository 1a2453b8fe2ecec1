"""The one JSON codec: head records round-trip in the typed array encoding, and a crafted array type is refused in
one sentence rather than with numpy's TypeError."""

from __future__ import annotations

import json

import numpy as np
import pytest

from explain import AnalysisRequest, SchemaError, analyze
from explain.records import (
    NeuronView,
    PruningCurve,
    analysis_from_dict,
    neuron_view_from_dict,
    pruning_curve_from_dict,
    to_jsonable,
)


@pytest.mark.parametrize("dtype", ["f1", "b2", "u16", "<f3", "c8", "O"])
def test_an_array_type_numpy_cannot_read_is_refused_in_one_sentence(tiny_models, dtype):
    result = analyze(AnalysisRequest("the film was good", model="tiny", n_steps=2), tiny_models["classification"])
    data = json.loads(result.to_json())
    data["attribution"]["scores"]["dtype"] = dtype
    with pytest.raises(SchemaError, match=r"^This analysis JSON is damaged or incomplete: attribution\.scores\.dtype"):
        analysis_from_dict(data)


def test_pruning_curves_and_neuron_views_round_trip():
    curve = PruningCurve(removed=np.arange(5), scores=np.linspace(1, 0, 5), random_scores=np.ones((3, 5)),
                         head_order=np.array([[0, 1], [1, 0]]), importance_name="gradient", order="least",
                         mode="zero", seeds=(0, 1, 2), score_name="P(positive)")
    again = pruning_curve_from_dict(json.loads(json.dumps(to_jsonable(curve))))
    assert again.seeds == curve.seeds and np.array_equal(again.random_scores, curve.random_scores)
    view = NeuronView(layer=1, head=2, query_token=0, tokens=("[CLS]", "good"), query=np.ones(4),
                      keys=np.ones((2, 4)), products=np.ones((2, 4)), scores=np.array([1.0, -np.inf]),
                      attention=np.array([1.0, 0.0]), scaling=0.5)
    back = neuron_view_from_dict(json.loads(json.dumps(to_jsonable(view))))
    assert back.tokens == view.tokens and np.array_equal(back.scores, view.scores)  # -inf survives the codec


def test_a_crafted_head_record_is_refused_in_one_sentence():
    view = NeuronView(layer=1, head=2, query_token=0, tokens=("a", "b"), query=np.ones(4), keys=np.ones((2, 4)),
                      products=np.ones((2, 4)), scores=np.ones(2), attention=np.ones(2), scaling=0.5)
    data = json.loads(json.dumps(to_jsonable(view)))
    data["keys"]["shape"] = [3, 4]
    with pytest.raises(SchemaError, match=r"neuron_view\.keys\.shape must be \[2, 4\]\.$"):
        neuron_view_from_dict(data)


@pytest.mark.parametrize("field, items", [("notices", 200_000), ("words", 200_000), ("timings", 200_000),
                                          ("methods", 200_000)])
def test_an_unbounded_list_is_refused_before_its_items_are_read(tiny_models, field, items):
    """The audit's upload with 200,000 notices took minutes per visitor; every list is bounded on read."""
    result = analyze(AnalysisRequest("the film was good", model="tiny", n_steps=2), tiny_models["classification"])
    data = json.loads(result.to_json())
    if field == "words":
        data["words"]["words"] = ["w"] * items
    elif field in ("timings", "methods"):
        data[field] = {f"k{i}": 0.0 for i in range(items)}
    else:
        data[field] = ["a notice"] * items
    with pytest.raises(SchemaError, match=r"holds 200,000 items, more than the [0-9,]+ an analysis can have\.$"):
        analysis_from_dict(data)
