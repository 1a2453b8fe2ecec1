from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest

from explain import AnalysisRequest, SchemaError, TargetSpec, analyze
from explain.compare import AttributionAgreement, Outcome, compare_analyses, sanity_check_verdict
from explain.document import Document, document_from_data, document_from_json
from explain.store import AnalysisStore


@pytest.fixture(scope="module")
def pair(tiny_models):
    text = "the movie was terrible but the food was great"
    left = analyze(AnalysisRequest(text, n_steps=8), tiny_models["encoder"])
    right = analyze(AnalysisRequest(text, n_steps=8), tiny_models["encoder_alt"])
    return left, right


def test_same_text_two_tokenizers_share_every_word(pair):
    left, right = pair
    assert left.tokens.tokens != right.tokens.tokens  # the alternative vocabulary splits words differently
    c = compare_analyses(left, right)
    assert c.words == left.words.words == right.words.words
    np.testing.assert_allclose(c.scores_left, left.word_scores)
    np.testing.assert_allclose(c.scores_right, right.word_scores)
    assert c.layer_distance.shape == (2,)
    assert np.all((c.layer_distance >= 0) & (c.layer_distance <= 1))
    np.testing.assert_allclose(c.rollout_left.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(c.rollout_right.sum(-1), 1.0, atol=1e-5)


def test_a_model_agrees_with_itself(pair):
    left, _ = pair
    c = compare_analyses(left, left)
    assert c.agreement.spearman == pytest.approx(1.0)
    np.testing.assert_allclose(c.layer_distance, 0.0, atol=1e-6)
    assert c.sanity_check().outcome is Outcome.FAILED


def test_two_texts_compare_on_shared_words(tiny_models):
    a = analyze(AnalysisRequest("the film was good", n_steps=6), tiny_models["encoder"])
    b = analyze(AnalysisRequest("the film was not good", n_steps=6), tiny_models["encoder"])
    c = compare_analyses(a, b)
    assert c.words == ["the", "film", "was", "good"]
    assert c.pairs.tolist() == [[0, 0], [1, 1], [2, 2], [3, 4]]


def test_sanity_verdict_uses_significance():
    chance = AttributionAgreement(0.6, 0.4, 5, 0.4, 0.6, 10, spearman_p=0.07)
    assert sanity_check_verdict(chance, np.array([0.2, 0.3])).outcome is Outcome.INCONCLUSIVE
    significant = AttributionAgreement(0.9, 0.8, 5, 1.0, 1.0, 20, spearman_p=1e-6)
    assert sanity_check_verdict(significant, np.array([0.2, 0.3])).outcome is Outcome.FAILED
    assert sanity_check_verdict(chance, np.array([0.01, 0.02])).outcome is Outcome.FAILED
    constant = AttributionAgreement(math.nan, math.nan, 5, 0, 0, 1, spearman_p=math.nan)
    assert sanity_check_verdict(constant, np.array([0.5])).outcome is Outcome.INCONCLUSIVE


def test_document_round_trip_through_store_is_byte_equal(pair, tmp_path):
    left, right = pair
    doc = Document(kind="compare", analyses=[left, right], view={"l": "1"})
    store = AnalysisStore(tmp_path / "s.sqlite3")
    analysis_id = store.save(doc.to_data(), kind=doc.kind, preview=doc.preview, models=doc.models).id
    back = document_from_data(store.load(analysis_id).document)
    assert back.kind == "compare" and back.view == {"l": "1"}
    assert [a.to_json() for a in back.analyses] == [left.to_json(), right.to_json()]
    assert store.save(doc.to_data(), kind=doc.kind, preview=doc.preview, models=doc.models).id == analysis_id


def test_bare_analysis_json_is_accepted(pair):
    doc = document_from_json(pair[0].to_json())
    assert doc.kind == "explore" and doc.analyses[0].to_json() == pair[0].to_json()


@pytest.mark.parametrize(
    "payload,message",
    [
        (b"\x89PNG not json", "not valid JSON"),
        (json.dumps({"hello": 1}), "not an analysis exported"),
        (json.dumps({"format": "explain.document", "version": 99}), "format version 99"),
        (json.dumps({"format": "explain.document", "version": 1, "kind": "compare", "analyses": []}), "damaged"),
        (json.dumps({"format": "explain.analysis", "schema_version": 1, "request": {}}), "damaged or incomplete"),
        (json.dumps([1, 2, 3]), "not an analysis exported"),
    ],
)
def test_foreign_or_corrupt_json_is_one_sentence(payload, message):
    with pytest.raises(SchemaError, match=message):
        document_from_json(payload)


def test_target_round_trips_in_documents(tiny_models):
    a = analyze(AnalysisRequest("good film", target=TargetSpec("similarity", reference="bad film"), n_steps=4),
                tiny_models["encoder"])
    back = document_from_json(Document(kind="explore", analyses=[a]).to_json()).analyses[0]
    assert back.request.target == a.request.target


# -- a typed, bounded reader (issue 10 item 4) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(pair) -> dict:
    """A real document as the Download JSON button writes it."""
    return json.loads(Document(kind="explore", analyses=[pair[0]]).to_json())


def edited(document: dict, path: tuple, value) -> dict:
    document = copy.deepcopy(document)
    target = document
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return document


def empty_array(dtype: str, shape: list[int]) -> dict:
    return {"__ndarray__": "", "dtype": dtype, "shape": shape}


def test_huge_declared_heads_over_no_tokens_are_refused(exported):
    """The issue's 2.3 KB document declaring 100000 x 100000 heads over 0 tokens (its link then needed 37 GiB)."""
    analysis = copy.deepcopy(exported["analyses"][0])
    analysis["model"].update(n_layers=100_000, n_heads=100_000)
    analysis["tokens"].update(tokens=[], offsets=empty_array("<i4", [0, 2]), special=empty_array("|b1", [0]))
    analysis["attention"]["weights"] = empty_array("<f4", [100_000, 100_000, 0, 0])
    analysis["attribution"]["scores"] = empty_array("<f8", [0])
    analysis["words"]["token_word"] = empty_array("<i4", [0])
    data = json.dumps({**exported, "analyses": [analysis]})
    assert len(data) < 20_000
    with pytest.raises(SchemaError, match="100000 layers, more than the 48"):
        document_from_json(data)


@pytest.mark.parametrize("field,value,bound", [
    (("model", "n_heads"), 65, "65 heads, more than the 64"),
    (("model", "n_layers"), 49, "49 layers, more than the 48"),
])
def test_layers_and_heads_are_bounded(exported, field, value, bound):
    with pytest.raises(SchemaError, match=bound):
        document_from_data(edited(exported, ("analyses", 0, *field), value))


def test_tokens_are_bounded_and_the_bounds_are_configurable(exported, monkeypatch):
    n_tokens = len(exported["analyses"][0]["tokens"]["tokens"])
    document_from_data(exported)
    monkeypatch.setenv("EXPLAIN_MAX_DOC_TOKENS", str(n_tokens - 1))
    with pytest.raises(SchemaError, match=f"{n_tokens} tokens, more than the {n_tokens - 1}"):
        document_from_data(exported)
    monkeypatch.delenv("EXPLAIN_MAX_DOC_TOKENS")
    monkeypatch.setenv("EXPLAIN_MAX_LAYERS", "1")
    with pytest.raises(SchemaError, match="2 layers, more than the 1 "):
        document_from_data(exported)


def test_a_declared_shape_must_match_its_data_before_it_is_decoded(exported):
    weights = exported["analyses"][0]["attention"]["weights"]
    short = {**weights, "__ndarray__": weights["__ndarray__"][:-8]}
    with pytest.raises(SchemaError, match=r"attention\.weights holds .* bytes where its shape needs"):
        document_from_data(edited(exported, ("analyses", 0, "attention", "weights"), short))


@pytest.mark.parametrize("path,value,message", [
    (("request", "target"), {"kind": "zero_shot", "labels": ["a", 3]}, r"request\.target\.labels\[1\] must be text"),
    (("request", "n_steps"), math.inf, r"request\.n_steps must be a whole number"),
    (("request", "n_steps"), True, r"request\.n_steps must be a whole number"),
    (("model", "n_layers"), 2.0, r"model\.n_layers must be a whole number"),
    (("tokens", "tokens"), "[CLS]", r"tokens\.tokens must be a list"),
    (("prediction", "description"), ["x"], r"prediction\.description must be text"),
    (("attribution", "delta"), "0.1", r"attribution\.delta must be a number"),
    (("timings",), {"total": math.inf}, r"timings\.total must be a finite number"),
    (("attention", "weights", "dtype"), "i4,i4", r"attention\.weights\.dtype"),
    (("schema_version",), True, r"schema version True"),
])
def test_every_field_is_typed_and_named(exported, path, value, message):
    with pytest.raises(SchemaError, match=message):
        document_from_json(json.dumps(edited(exported, ("analyses", 0, *path), value)))


def test_view_values_must_be_text(exported):
    with pytest.raises(SchemaError, match=r"view\.layer must be text"):
        document_from_data({**exported, "view": {"layer": {"deep": [1]}}})


@pytest.mark.parametrize("depth", [50, 100_000])
def test_deep_nesting_is_a_schema_error(exported, depth):
    deep = "[" * depth + "]" * depth
    with pytest.raises(SchemaError):
        document_from_json(deep)
    with pytest.raises(SchemaError):
        document_from_json(json.dumps(exported)[:-1] + ',"extra":' + deep + "}")  # unknown fields are ignored


def test_infinity_and_nan_where_numbers_are_whole_are_refused(exported):
    text = json.dumps(exported).replace('"n_tokens_full":', '"n_tokens_full":Infinity,"x":', 1)
    with pytest.raises(SchemaError, match=r"tokens\.n_tokens_full must be a whole number"):
        document_from_json(text)


def test_real_analyses_of_every_tiny_head_and_minilm_round_trip(tiny_models, minilm):
    for loaded in [*tiny_models.values(), minilm]:
        a = analyze(AnalysisRequest("the film was [MASK] good", n_steps=4), loaded)
        text = Document(kind="explore", analyses=[a]).to_json()
        assert document_from_json(text).to_json() == text


@pytest.mark.parametrize("path", [("request", "max_tokens"), ("model", "max_tokens"), ("tokens", "n_tokens_full"),
                                  ("attribution", "n_steps")])
def test_counts_are_bounded(exported, path):
    with pytest.raises(SchemaError, match="must be between"):
        document_from_data(edited(exported, ("analyses", 0, *path), 10**400))
