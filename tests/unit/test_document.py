from __future__ import annotations

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
    analysis_id = store.save(doc.to_data(), kind=doc.kind, preview=doc.preview, models=doc.models)
    back = document_from_data(store.load(analysis_id).document)
    assert back.kind == "compare" and back.view == {"l": "1"}
    assert [a.to_json() for a in back.analyses] == [left.to_json(), right.to_json()]
    assert store.save(doc.to_data(), kind=doc.kind, preview=doc.preview, models=doc.models) == analysis_id


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
