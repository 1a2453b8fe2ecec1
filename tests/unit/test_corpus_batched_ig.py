"""Default (adaptive Simpson) integrated gradients batched across texts equals the per-text method, text by text:
the same scores, endpoints, delta, evaluation count and stopping, on tiny random models of three families."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from explain import load_model
from explain.corpus.batched import BATCHED
from explain.corpus.job import CorpusJob, run_job
from explain.corpus.readers import CorpusColumns
from explain.corpus.tables import read_table
from explain.methods import get_method
from explain.methods.base import method_settings
from explain.pipeline import attribution_context
from explain.records import AnalysisRequest
from testkit.families import save_tiny_family

TEXTS = ["the film was good", "bad service . too slow !", "it was not very good but the food was great",
         "terrible", "the movie is long and the service was slow but it was loved", "great film"]
PAIR = "the food was fine"


@pytest.fixture(scope="module")
def families(tmp_path_factory, tiny_models, tiny_roberta):
    root = tmp_path_factory.mktemp("ig_families")
    models = {"bert": tiny_models["classification"], "roberta": tiny_roberta["classification"]}
    models["distilbert"] = load_model(str(save_tiny_family(root / "distilbert", "distilbert")), device="cpu")
    return models


def per_text_and_batched(loaded, requests):
    settings = method_settings(requests[0], "integrated_gradients")
    with loaded.lock:
        contexts = [attribution_context(r, loaded) for r in requests]
        raws = BATCHED["integrated_gradients"](contexts, settings)
        expected = [get_method("integrated_gradients").attribute(c, settings) for c in contexts]
    assert raws is not None
    return contexts, raws, expected


@pytest.mark.parametrize("family,pair", [("bert", False), ("bert", True), ("roberta", False), ("roberta", True),
                                         ("distilbert", False)])  # DistilBERT: no segment ids
def test_batched_adaptive_ig_equals_the_per_text_method(families, family, pair):
    requests = [AnalysisRequest(text, pair=PAIR if pair else "", model="tiny") for text in TEXTS]
    assert requests[0].integration == "adaptive_simpson"  # the default is what this test batches
    contexts, raws, expected = per_text_and_batched(families[family], requests)
    assert len({c.n_tokens for c in contexts}) >= 4  # texts of different lengths share the padded passes
    for context, raw, alone in zip(contexts, raws, expected):
        got = np.where(context.special[0].numpy(), 0.0, raw.scores)
        largest = float(np.abs(alone.scores).max())
        np.testing.assert_allclose(got, alone.scores, rtol=1e-4, atol=1e-4 * largest)
        assert raw.quadrature is not None and alone.quadrature is not None
        assert raw.quadrature.evaluations == alone.quadrature.evaluations
        assert raw.quadrature.converged == alone.quadrature.converged
        assert raw.quadrature.tolerance == alone.quadrature.tolerance
        assert raw.score_input == pytest.approx(alone.score_input, abs=1e-6)
        assert raw.score_baseline == pytest.approx(alone.score_baseline, abs=1e-6)
        change = abs(alone.score_input - alone.score_baseline)
        assert raw.delta == pytest.approx(alone.delta, abs=1e-4 * change + 1e-7)
    if family in ("roberta", "distilbert"):  # (the tiny BERT's score hardly moves: every text stops at 9 points)
        assert len({r.quadrature.evaluations for r in raws}) > 1  # texts left the shared rounds at different times


def test_a_tight_tolerance_and_the_cap_hold_text_by_text(families):
    """Texts that run to the cap and texts that converge early share one batch and still match."""
    requests = [AnalysisRequest(text, model="tiny", tolerance=1e-3, delta_tolerance=1e-3, n_steps=25)
                for text in TEXTS]
    contexts, raws, expected = per_text_and_batched(families["roberta"], requests)
    assert {r.quadrature.converged for r in expected} == {True, False}
    for context, raw, alone in zip(contexts, raws, expected):
        assert raw.quadrature is not None and alone.quadrature is not None
        assert (raw.quadrature.evaluations, raw.quadrature.converged) == (alone.quadrature.evaluations,
                                                                          alone.quadrature.converged)
        np.testing.assert_allclose(np.where(context.special[0].numpy(), 0.0, raw.scores), alone.scores, rtol=1e-4,
                                   atol=1e-4 * float(np.abs(alone.scores).max()))


@pytest.mark.parametrize("change", [{"precision": "bf16"}, {"integration": "clenshaw_curtis", "tolerance": 0.05},
                                    {"n_steps": 4}])
def test_settings_without_a_batched_form_are_left_to_the_per_text_method(tiny_models, change):
    loaded = tiny_models["classification"]
    request = dataclasses.replace(AnalysisRequest("the film was good", model="tiny"), **change)
    with loaded.lock:
        context = attribution_context(request, loaded)
    assert BATCHED["integrated_gradients"]([context], method_settings(request, "integrated_gradients")) is None


def test_a_corpus_run_of_default_ig_gives_the_per_text_words_and_delta(tmp_path, tiny_roberta):
    loaded = tiny_roberta["classification"]
    source = tmp_path / "texts.csv"
    pairs = [PAIR if i % 2 else "fine" for i in range(len(TEXTS))]
    source.write_text("id,text,pair\n" + "".join(f"t{i},{t},{p}\n" for i, (t, p) in enumerate(zip(TEXTS, pairs))),
                      encoding="utf-8")
    job = CorpusJob(source=str(source), columns=CorpusColumns(text="text", pair="pair", id="id"), model="tiny",
                    methods=("integrated_gradients",), batch_size=len(TEXTS))
    outcome = run_job(job, tmp_path / "run", loaded=loaded)
    assert outcome.texts == len(TEXTS) and outcome.failed == 0
    words = read_table(tmp_path / "run", "words").to_pandas()
    texts = read_table(tmp_path / "run", "texts").to_pandas().set_index("text_id")
    method = get_method("integrated_gradients")
    for i, text in enumerate(TEXTS):
        request = AnalysisRequest(text, pair=pairs[i], model="tiny")
        with loaded.lock:
            alone = method.attribute(attribution_context(request, loaded), method_settings(request, method.name))
        got = words[words.text_id == f"t{i}"].sort_values("word_index").score.to_numpy()
        largest = float(np.abs(alone.word_scores).max())
        np.testing.assert_allclose(got, alone.word_scores, rtol=1e-4, atol=1e-4 * largest)
        change = abs(alone.score_input - alone.score_baseline)
        assert texts.loc[f"t{i}", "delta"] == pytest.approx(alone.delta, abs=1e-4 * change + 1e-7)
