"""Corpus summaries (DuckDB over the parts), figures and the two CLI commands, on a tiny random model."""

from __future__ import annotations

import math

import numpy as np
import pytest

from explain.cli import main
from explain.corpus import summary
from explain.corpus.job import CorpusJob, run_job
from explain.corpus.readers import CorpusColumns
from explain.corpus.summary import bootstrap
from explain.viz.corpus import method_ranking_figure, shortcut_figure, slices_figure

LINES = ["the film was good", "the film was bad", "=HYPERLINK(\"http://x\") good film", "not bad", "great film",
         "the food was terrible", "service was slow", "a very good movie", "it was bad", "loved the food"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_dirs):
    folder = tmp_path_factory.mktemp("corpus")
    source = folder / "texts.jsonl"
    import json

    source.write_text("\n".join(json.dumps({"text": t, "y": "positive" if i % 2 == 0 else "negative", "id": f"r{i}"})
                                for i, t in enumerate(LINES)), encoding="utf-8")
    job = CorpusJob(source=str(source), columns=CorpusColumns(text="text", label="y", id="id"),
                    model=tiny_dirs["classification"], methods=("gradient_x_input", "saliency"), faithfulness=True,
                    batch_size=4)
    run_job(job, folder / "run")
    return summary.open_run(folder / "run")


def test_bootstrap_interval_brackets_the_mean():
    values = np.random.default_rng(1).normal(2.0, 1.0, 400)
    interval = bootstrap(values)
    assert interval.low < interval.mean < interval.high and interval.high - interval.low < 0.3
    assert math.isnan(bootstrap(np.array([np.nan])).mean)


def test_method_ranking_and_paired_test(run):
    ranking = summary.method_ranking(run)
    assert {m.method for m in ranking.methods} == {"gradient_x_input", "saliency"}
    means = [m.comprehensiveness.mean for m in ranking.methods]
    assert means == sorted(means, reverse=True) and all(m.texts == 10 for m in ranking.methods)
    assert ranking.paired is not None and ranking.paired.texts == 10 and 0 <= ranking.paired.p_value <= 1
    assert ranking.table().num_rows == 2 and {"naopc", "naopc_low", "naopc_high"} <= set(ranking.table().column_names)
    naopc = ranking.methods[0].naopc
    assert 0 <= naopc.low <= naopc.mean <= naopc.high <= 1


def test_words_slices_and_finders(run):
    words = summary.word_attributions(run, "gradient_x_input", by="gold").to_pylist()
    film = [w for w in words if w["form"] == "film"]
    assert sum(w["texts"] for w in film) == 4 and all(w["mean_abs"] >= abs(w["mean_signed"]) for w in film)
    flagged = summary.shortcuts(run, "gradient_x_input", min_texts=2).to_pylist()
    assert {"form", "share", "flagged"} <= set(flagged[0]) and all(r["texts"] >= 2 for r in flagged)
    slices = {(r["slice"], r["value"]): r for r in summary.slices(run).to_pylist()}
    assert slices[("all", "all")]["texts"] == 10 and slices[("gold", "positive")]["texts"] == 5
    assert 0 <= slices[("all", "all")]["accuracy"] <= 1
    assert summary.disagreements(run, "gradient_x_input", "saliency", 3).num_rows == 3
    assert summary.least_faithful(run, "saliency", 2).num_rows == 2
    wrong = summary.misclassified(run, "gradient_x_input").to_pylist()
    assert all(r["gold"] != r["prediction"] for r in wrong)
    assert summary.where_word_matters(run, "Film", "saliency").num_rows == 4


def test_figures_escape_words(run):
    fig = shortcut_figure(summary.shortcuts(run, "gradient_x_input", min_texts=1))
    assert not any("<" in label and "HYPERLINK" in label for label in fig.data[0].y)
    method_ranking_figure(summary.method_ranking(run).table())
    slices_figure(summary.slices(run))


def test_cli_runs_and_reports(tmp_path, tiny_dirs, run, capsys):
    source = tmp_path / "texts.txt"
    source.write_text("the film was good\n\nbad service\n", encoding="utf-8")
    code = main(["corpus", str(source), "--model", tiny_dirs["classification"], "--method", "saliency",
                 "--out", str(tmp_path / "out")])
    out = capsys.readouterr()
    assert code == 0 and "2 texts explained, 1 skipped" in out.out and "2/2 texts" in out.err
    assert main(["corpus-report", str(run.folder), "--html", str(tmp_path / "r.html")]) == 0
    printed = capsys.readouterr().out
    assert "faithfulness by method" in printed and "'=HYPERLINK" in printed
    assert "HYPERLINK" in (tmp_path / "r.html").read_text() and "plotly" in (tmp_path / "r.html").read_text()
    assert main(["corpus", str(source), "--text-column", "x", "--format", "csv", "--out", str(tmp_path / "o2"),
                 "--model", tiny_dirs["classification"]]) == 2
    assert "no column 'x'" in capsys.readouterr().err
    assert main(["corpus-report", str(tmp_path)]) == 2
