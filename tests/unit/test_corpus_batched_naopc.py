"""NAOPC in corpus runs: the faithfulness table's column equals the per-text NAOPC (exact up to 12 words, a beam
above), `naopc=False` (the CLI's --no-naopc) leaves it null, and the summary gives its mean with an interval."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from explain.corpus import summary
from explain.corpus.job import CorpusJob, price_job, run_job
from explain.corpus.readers import CorpusColumns
from explain.corpus.tables import read_table
from explain.evaluation.faithfulness import evaluate_context
from explain.evaluation.naopc import DEFAULT_NAOPC
from explain.methods import get_method
from explain.methods.base import method_settings
from explain.pipeline import attribution_context
from explain.records import AnalysisRequest

# 4, 6 and 13 words: exact limits for the first two, the beam for the last (above 12 words).
TEXTS = ["the film was good", "bad service . too slow !",
         "the movie is long and the service was slow but it was loved"]
METHODS = ("gradient_x_input", "saliency")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_dirs):
    folder = tmp_path_factory.mktemp("naopc")
    source = folder / "texts.csv"
    source.write_text("id,text\n" + "".join(f"t{i},{t}\n" for i, t in enumerate(TEXTS)), encoding="utf-8")
    job = CorpusJob(source=str(source), columns=CorpusColumns(text="text", id="id"), model=tiny_dirs["classification"],
                    methods=METHODS, faithfulness=True, batch_size=len(TEXTS))
    run_job(job, folder / "with")
    run_job(replace(job, naopc=False), folder / "without")
    return job, folder


def test_the_naopc_column_equals_the_per_text_naopc(runs, tiny_models):
    job, folder = runs
    faith = read_table(folder / "with", "faithfulness").to_pandas()
    assert len(faith) == len(TEXTS) * len(METHODS) and faith.naopc.notna().all()
    assert faith.naopc.between(0, 1).all()
    loaded = tiny_models["classification"]
    for i, text in enumerate(TEXTS):
        request = AnalysisRequest(text, model=job.model)
        with loaded.lock:
            context = attribution_context(request, loaded)
            scores = {name: get_method(name).attribute(context, method_settings(request, name)).word_scores
                      for name in METHODS}
            report = evaluate_context(context, scores, naopc=DEFAULT_NAOPC)
        assert report.limits is not None
        assert report.limits.search == ("beam" if len(text.split()) > 12 else "exact")
        for name in METHODS:
            row = faith[(faith.text_id == f"t{i}") & (faith.method == name)].iloc[0]
            assert row.naopc == pytest.approx(report.methods[name].naopc, rel=1e-4, abs=1e-6)
            assert row.comprehensiveness == pytest.approx(report.methods[name].comprehensiveness, rel=1e-4, abs=1e-6)


def test_no_naopc_leaves_the_column_null_and_costs_less(runs, tiny_models):
    job, folder = runs
    without = read_table(folder / "without", "faithfulness").to_pandas()
    with_naopc = read_table(folder / "with", "faithfulness").to_pandas()
    assert without.naopc.isna().all() and without.comprehensiveness.notna().all()
    np.testing.assert_allclose(without.comprehensiveness, with_naopc.comprehensiveness, rtol=1e-6)
    loaded = tiny_models["classification"]
    assert price_job(replace(job, naopc=False), loaded).evaluations < price_job(job, loaded).evaluations
    # Without faithfulness the option changes nothing, so such runs resume whichever it is.
    plain = replace(job, faithfulness=False)
    assert plain.fingerprint() == replace(plain, naopc=False).fingerprint() != job.fingerprint()


def test_the_summary_gives_mean_naopc_with_a_bootstrap_interval(runs):
    _, folder = runs
    table = summary.method_ranking(summary.open_run(folder / "with")).table().to_pylist()
    faith = read_table(folder / "with", "faithfulness").to_pandas()
    for row in table:
        assert row["naopc"] == pytest.approx(faith[faith.method == row["method"]].naopc.mean())
        assert row["naopc_low"] <= row["naopc"] <= row["naopc_high"]
    absent = summary.method_ranking(summary.open_run(folder / "without")).table().to_pylist()
    assert all(np.isnan(row["naopc"]) and np.isnan(row["naopc_low"]) for row in absent)
