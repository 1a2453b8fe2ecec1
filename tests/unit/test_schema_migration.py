"""Files written by the schema-1 code (commit 847e247, before methods) still open and show the same numbers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from explain.document import document_from_json
from explain.records import SCHEMA_VERSION, Analysis, analysis_from_dict

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schema_v1"
# Written by the schema-2 code (commit 8ac2b2e, before adaptive integration was the default): minilm, the default
# request at 32 tokens, so 50 fixed Gauss-Legendre steps.
V2_ANALYSIS = Path(__file__).resolve().parents[1] / "fixtures" / "schema_v2" / "analysis_v2.json"


def test_a_v1_analysis_export_opens_with_its_numbers():
    raw = json.loads((FIXTURES / "analysis_v1.json").read_text())
    assert raw["schema_version"] == 1
    analysis = Analysis.from_json((FIXTURES / "analysis_v1.json").read_text())
    assert analysis.words.words == ["The", "film", "was", "good", "but", "far", "too", "long", "."]
    assert analysis.prediction.description == "P(positive) under zero-shot labels (positive, negative)"
    assert analysis.request.max_tokens == 512  # what it was computed with, not today's default
    assert analysis.attribution.n_steps == 8 and analysis.attribution.method == "integrated_gradients"
    np.testing.assert_allclose(analysis.word_scores[3], 0.11627129, rtol=1e-6)
    assert analysis.attention.weights.shape == (6, 12, 11, 11)


@pytest.mark.parametrize("name, kind, n", [("explore_v1.json", "explore", 1), ("compare_v1.json", "compare", 2)])
def test_v1_documents_open_with_their_view(name, kind, n):
    document = document_from_json((FIXTURES / name).read_text())
    assert document.kind == kind and len(document.analyses) == n
    if kind == "explore":
        assert document.view == {"l": "2", "h": "3", "v": "subword"}
    assert [a.request.model for a in document.analyses] == ["minilm", "minilm-random"][:n]


def test_a_v1_analysis_reads_as_current_with_its_one_method():
    analysis = Analysis.from_json((FIXTURES / "analysis_v1.json").read_text())
    assert analysis.schema_version == SCHEMA_VERSION and analysis.request.method == "integrated_gradients"
    assert analysis.request.integration == "gauss_legendre"
    assert list(analysis.methods) == ["integrated_gradients"]
    np.testing.assert_array_equal(analysis.methods["integrated_gradients"].word_scores, analysis.word_scores)
    assert analysis.faithfulness is None
    again = Analysis.from_json(analysis.to_json())
    assert again.to_json() == analysis.to_json()


def test_a_v2_analysis_reopens_as_the_50_fixed_steps_it_ran():
    raw = json.loads(V2_ANALYSIS.read_text())
    assert raw["schema_version"] == 2 and "integration" not in raw["request"]
    analysis = Analysis.from_json(V2_ANALYSIS.read_text())
    assert analysis.schema_version == SCHEMA_VERSION
    request = analysis.request
    assert (request.integration, request.n_steps, request.tolerance) == ("gauss_legendre", 50, None)
    assert analysis.attribution.n_steps == 50 and analysis.attribution.tolerance is None
    np.testing.assert_allclose(analysis.word_scores[3], 0.12014963, rtol=1e-6)  # "good", as computed then
    again = Analysis.from_json(analysis.to_json())
    assert again.request == request and json.loads(analysis.to_json())["request"]["integration"] == "gauss_legendre"


@pytest.mark.parametrize("tolerance, rule", [(None, "gauss_legendre"), (0.01, "clenshaw_curtis")])
def test_a_v2_request_gets_the_rule_its_tolerance_implied(tolerance, rule):
    data = json.loads(V2_ANALYSIS.read_text())
    data["request"]["tolerance"] = tolerance
    assert analysis_from_dict(data).request.integration == rule


def test_a_v2_analysis_recomputes_as_it_was(minilm):
    """What a reopened v2 analysis recomputes (a changed view, a share link) is the fixed-step result it showed."""
    from explain.pipeline import analyze

    saved = Analysis.from_json(V2_ANALYSIS.read_text())
    again = analyze(saved.request, minilm)
    np.testing.assert_allclose(again.word_scores, saved.word_scores, rtol=1e-4, atol=1e-6)
    assert again.attribution.n_steps == 50
