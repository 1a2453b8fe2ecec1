"""Corpus jobs on tiny random models: batched methods equal per-text ones, tables, resume, kill -9, price."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from explain.corpus.batched import BATCHED
from explain.corpus.job import CorpusJob, JobPrice, normal_form, price_job, run_job
from explain.corpus.readers import CorpusColumns
from explain.corpus.tables import part_path, read_table
from explain.errors import InputError
from explain.methods import get_method
from explain.methods.base import method_settings
from explain.pipeline import attribution_context
from explain.records import AnalysisRequest

TEXTS = ["the film was good", "bad service . too slow !", "it was not very good but the food was great",
         "terrible", "the movie is long and the service was slow but it was loved", "great film",
         "this food was bad", "a very very long film that i hated and hated", "fast service", "not bad"]


def write_csv(folder: Path, n: int = len(TEXTS)) -> Path:
    path = folder / "texts.csv"
    lines = ["id,text,label"] + [f"t{i},{TEXTS[i % len(TEXTS)]},{'positive' if i % 2 else 'negative'}"
                                 for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


COLUMNS = CorpusColumns(text="text", label="label", id="id")


@pytest.mark.parametrize("family", ["bert", "roberta"])
@pytest.mark.parametrize("name,settings", [
    ("gradient_x_input", ()), ("saliency", ()), ("integrated_gradients", "gauss_legendre")])
def test_batched_methods_equal_the_per_text_methods(tiny_models, tiny_roberta, family, name, settings):
    loaded = (tiny_models if family == "bert" else tiny_roberta)["classification"]
    requests = [AnalysisRequest(text, model="tiny", integration="gauss_legendre", n_steps=8) for text in TEXTS[:5]]
    with loaded.lock:
        contexts = [attribution_context(r, loaded) for r in requests]
        chosen = method_settings(requests[0], name)
        raws = BATCHED[name](contexts, chosen)
        assert raws is not None
        for context, raw in zip(contexts, raws):
            expected = get_method(name).attribute(context, chosen)
            got = np.where(context.special[0].numpy(), 0.0, raw.scores)
            np.testing.assert_allclose(got, expected.scores, rtol=1e-4, atol=1e-6)
            assert raw.score_input == pytest.approx(expected.score_input, abs=1e-6)
            if get_method(name).complete:
                assert raw.score_baseline == pytest.approx(expected.score_baseline, abs=1e-6)
            else:  # not needed for the output: not computed
                assert raw.score_baseline is None


def test_a_job_writes_its_tables_and_a_rerun_resumes(tmp_path, tiny_dirs):
    source = write_csv(tmp_path)
    (tmp_path / "texts.csv").write_text(source.read_text() + "t99,,positive\n", encoding="utf-8")
    job = CorpusJob(source=str(source), columns=COLUMNS, model=tiny_dirs["classification"],
                    methods=("gradient_x_input", "occlusion"), faithfulness=True, batch_size=4)
    seen = []
    outcome = run_job(job, tmp_path / "run", progress=seen.append)
    assert outcome.status == "done" and outcome.texts == 10 and outcome.failed == 1 and outcome.batches == 3
    assert seen[-1].done == seen[-1].total == 10 and seen[-1].seconds_left == 0
    texts = read_table(tmp_path / "run", "texts").to_pandas()
    assert list(texts.text_id) == [f"t{i}" for i in range(10)]
    assert set(texts.prediction) <= {"negative", "neutral", "positive"}
    assert (texts.correct == (texts.gold == texts.prediction)).all()
    words = read_table(tmp_path / "run", "words").to_pandas()
    assert len(words) == 2 * texts.n_words.sum() and set(words.method) == {"gradient_x_input", "occlusion"}
    faith = read_table(tmp_path / "run", "faithfulness").to_pandas()
    assert len(faith) == 20 and faith.comprehensiveness.notna().all()
    failures = read_table(tmp_path / "run", "read_failures").to_pylist()
    assert failures[0]["row"] == 11 and "empty" in failures[0]["reason"]
    again = run_job(job, tmp_path / "run")
    assert again.batches_run == 0 and again.texts == 10
    with pytest.raises(InputError, match="another job"):
        run_job(replace(job, methods=("saliency",)), tmp_path / "run")


def test_the_per_text_and_batched_paths_give_the_same_tables(tmp_path, tiny_dirs):
    source = write_csv(tmp_path)
    job = CorpusJob(source=str(source), columns=COLUMNS, model=tiny_dirs["classification"],
                    methods=("gradient_x_input",), batch_size=10)
    run_job(job, tmp_path / "together")
    run_job(replace(job, batch_size=1), tmp_path / "alone")
    together = read_table(tmp_path / "together", "words").to_pandas()
    alone = read_table(tmp_path / "alone", "words").to_pandas()
    assert list(together.word) == list(alone.word)
    np.testing.assert_allclose(together.score, alone.score, rtol=1e-4, atol=1e-6)


def test_cancel_keeps_finished_batches(tmp_path, tiny_dirs):
    job = CorpusJob(source=str(write_csv(tmp_path)), columns=COLUMNS, model=tiny_dirs["classification"],
                    batch_size=3)
    calls = []
    outcome = run_job(job, tmp_path / "run", progress=calls.append, cancel=lambda: len(calls) > 2)
    assert outcome.status == "cancelled" and outcome.texts == 6
    assert run_job(job, tmp_path / "run").texts == 10


KILLED_RUN = """
import sys, time
from explain.corpus.job import CorpusJob, run_job
from explain.corpus.readers import CorpusColumns
job = CorpusJob(source=sys.argv[1], columns=CorpusColumns(text="text", label="label", id="id"), model=sys.argv[2],
                methods=("gradient_x_input",), batch_size=2)
run_job(job, sys.argv[3], progress=lambda p: time.sleep(0.5))
"""


@pytest.mark.slow
def test_kill_9_loses_at_most_the_batch_in_flight(tmp_path, tiny_dirs):
    source = write_csv(tmp_path, 20)
    folder = tmp_path / "killed"
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(source), tiny_dirs["classification"],
                                str(folder)], env=env)
    deadline = time.monotonic() + 120
    while not part_path(folder, "texts", 2).exists():
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    finished = sorted((folder / "parts" / "texts").glob("part-*.parquet"))
    assert 3 <= len(finished) < 10
    job = CorpusJob(source=str(source), columns=COLUMNS, model=tiny_dirs["classification"],
                    methods=("gradient_x_input",), batch_size=2)
    resumed = run_job(job, folder)
    assert resumed.batches_run == 10 - len(finished) and resumed.texts == 20
    run_job(job, tmp_path / "whole")
    for table in ("texts", "words"):
        a = read_table(folder, table).to_pandas()
        b = read_table(tmp_path / "whole", table).to_pandas()
        assert list(a.text_id) == list(b.text_id)
        column = "explained_score" if table == "texts" else "score"
        np.testing.assert_allclose(a[column], b[column], rtol=1e-5, atol=1e-7)


def test_a_job_is_priced_from_the_methods_declared_costs(tmp_path, tiny_models, tiny_dirs):
    job = CorpusJob(source=str(write_csv(tmp_path)), columns=COLUMNS, model=tiny_dirs["classification"],
                    methods=("gradient_x_input", "integrated_gradients"), n_steps=20)
    price = price_job(job, tiny_models["classification"], rate=1000.0)
    assert isinstance(price, JobPrice) and price.texts == 10
    assert price.evaluations == pytest.approx(10 * (1 + 20))  # the prediction pass is gradient x input's pass
    more = price_job(replace(job, faithfulness=True), tiny_models["classification"], rate=1000.0)
    assert more.work > price.work and price.seconds == pytest.approx(price.work / 1000.0)


def test_the_prediction_pass_is_priced_only_where_no_method_takes_the_gradient_there(tmp_path, tiny_models, tiny_dirs):
    loaded = tiny_models["classification"]
    job = CorpusJob(source=str(write_csv(tmp_path)), columns=COLUMNS, model=tiny_dirs["classification"],
                    methods=("gradient_x_input",))
    assert price_job(job, loaded, rate=1000.0).evaluations == pytest.approx(10 * 1.0)
    occlusion = replace(job, methods=("occlusion",))
    alone = sum(get_method("occlusion").evaluations(method_settings(occlusion.request(), "occlusion"), n, w)
                for n, w in units(occlusion, loaded))
    assert price_job(occlusion, loaded, rate=1000.0).evaluations == pytest.approx(10 * 0.5 + alone)


def units(job: CorpusJob, loaded) -> list[tuple[int, int]]:
    from explain.corpus.job import iter_rows
    from explain.inputs import count_units

    return [count_units(loaded, job.request(row)) for row in iter_rows(job)]


def test_word_forms_fold_case_and_edge_punctuation():
    assert normal_form("Film,") == "film" and normal_form("«Great»") == "great"
    assert normal_form("!") == "!" and normal_form("ＡＢＣ") == "abc" and normal_form("don't") == "don't"
