"""Heads over a corpus: the per-text rows equal the single-text head analyses, the summaries equal numpy, and the
figure and the report show them."""

from __future__ import annotations

import numpy as np
import pytest

from explain import AnalysisRequest, analyze, head_statistics
from explain.attention import HEAD_STATISTICS
from explain.cli import main
from explain.corpus import summary
from explain.corpus.job import CorpusJob, price_job, run_job
from explain.corpus.readers import CorpusColumns
from explain.corpus.tables import read_table
from explain.errors import InputError
from explain.heads import ablation_effect, confidence, gradient_importance, prepare_inputs
from explain.viz.corpus import head_importance_figure

TEXTS = ["the film was good", "bad service . too slow !", "it was not very good but the food was great",
         "terrible", "a very very long film that i hated and hated", "fast service"]


def write_texts(folder, texts=TEXTS):
    path = folder / "texts.jsonl"
    import json

    path.write_text("\n".join(json.dumps({"text": t, "id": f"t{i}"}) for i, t in enumerate(texts)), encoding="utf-8")
    return path


@pytest.mark.parametrize("family", ["bert", "roberta"])
def test_per_text_head_rows_equal_the_single_text_head_analyses(tmp_path, tiny_models, tiny_roberta, family):
    loaded = (tiny_models if family == "bert" else tiny_roberta)["classification"]
    job = CorpusJob(source=str(write_texts(tmp_path)), columns=CorpusColumns(text="text", id="id"), model="tiny",
                    methods=("gradient_x_input",), heads=True, head_ablation=family == "bert", batch_size=4)
    run_job(job, tmp_path / "run", loaded=loaded)
    table = read_table(tmp_path / "run", "heads").to_pandas()
    n_layers, n_heads = loaded.info.n_layers, loaded.info.n_heads
    assert len(table) == len(TEXTS) * n_layers * n_heads
    assert list(dict.fromkeys(table.text_id)) == [f"t{i}" for i in range(len(TEXTS))]
    for i, text in enumerate(TEXTS):
        rows = table[table.text_id == f"t{i}"].sort_values(["layer", "head"])

        def column(name: str, rows=rows) -> np.ndarray:
            return rows[name].to_numpy(dtype=np.float64).reshape(n_layers, n_heads)

        inputs = prepare_inputs(loaded, text)
        np.testing.assert_allclose(column("gradient"), gradient_importance(loaded, inputs), rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(column("confidence"), confidence(loaded, inputs), rtol=1e-4, atol=1e-6)
        if family == "bert":
            np.testing.assert_allclose(column("ablation"), ablation_effect(loaded, inputs)[1], rtol=1e-4, atol=1e-6)
        else:
            assert rows.ablation.isna().all()
        analysis = analyze(AnalysisRequest(text, model="tiny"), loaded)
        stats = head_statistics(analysis.attention, analysis.tokens.special, list(analysis.tokens.tokens))
        for name in HEAD_STATISTICS:
            np.testing.assert_allclose(column(name), stats[name], rtol=1e-4, atol=1e-6, err_msg=name)


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_dirs):
    folder = tmp_path_factory.mktemp("heads")
    job = CorpusJob(source=str(write_texts(folder)), columns=CorpusColumns(text="text", id="id"),
                    model=tiny_dirs["classification"], methods=("saliency",), heads=True, head_ablation=True,
                    batch_size=4)
    run_job(job, folder / "run")
    return summary.open_run(folder / "run")


def test_head_summary_equals_numpy(run):
    rows = read_table(run.folder, "heads").to_pandas()
    texts = rows.text_id.nunique()
    got = summary.head_summary(run).to_pandas()
    n_layers, n_heads = rows["layer"].max() + 1, rows["head"].max() + 1
    assert len(got) == n_layers * n_heads and (got.texts == texts).all()
    for name in ("gradient", "ablation", "entropy", "cls"):
        cube = np.stack([rows[rows.text_id == t].sort_values(["layer", "head"])[name].to_numpy()
                         .reshape(n_layers, n_heads) for t in rows.text_id.unique()])
        np.testing.assert_allclose(got[name].to_numpy().reshape(n_layers, n_heads), cube.mean(0), rtol=1e-9)
        np.testing.assert_allclose(got[f"{name}_std"].to_numpy().reshape(n_layers, n_heads), cube.std(0, ddof=1),
                                   rtol=1e-9, atol=1e-12)
        if name == "gradient":
            means = cube.mean(0)
            normalised = means / np.linalg.norm(means, axis=1, keepdims=True)
            np.testing.assert_allclose(got.gradient_normalised.to_numpy().reshape(n_layers, n_heads), normalised,
                                       rtol=1e-9)
    top = summary.top_heads(run, top=3).to_pandas()
    assert len(top) == 3 and list(top.gradient_normalised) == sorted(got.gradient_normalised, reverse=True)[:3]
    by_ablation = summary.top_heads(run, by="ablation", top=2).to_pandas()
    assert list(by_ablation.ablation.abs()) == sorted(got.ablation.abs(), reverse=True)[:2]
    with pytest.raises(InputError, match="Rank heads by"):
        summary.top_heads(run, by="nonsense")


def test_head_figure_and_report(run, tmp_path, capsys):
    fig = head_importance_figure(summary.head_summary(run))
    heatmap = fig.data[0]
    assert heatmap.type == "heatmap" and heatmap.colorbar.title.text
    assert fig.layout.xaxis.title.text == "head" and fig.layout.yaxis.title.text == "layer"
    assert "±" in heatmap.hovertemplate or any("±" in t for row in heatmap.text for t in row)
    assert main(["corpus-report", str(run.folder), "--html", str(tmp_path / "r.html")]) == 0
    printed = capsys.readouterr().out
    assert "heads over the data" in printed and "±" in printed
    page = (tmp_path / "r.html").read_text(encoding="utf-8")
    assert "heads over the data" in page and "Head importance over the data" in page


def test_heads_are_priced_and_checked(tmp_path, tiny_models, tiny_dirs):
    source = str(write_texts(tmp_path))
    base = CorpusJob(source=source, columns=CorpusColumns(text="text"), model=tiny_dirs["classification"])
    loaded = tiny_models["classification"]
    plain = price_job(base, loaded, rate=1.0)
    heads = price_job(CorpusJob(**{**base.__dict__, "heads": True}), loaded, rate=1.0)
    ablation = price_job(CorpusJob(**{**base.__dict__, "heads": True, "head_ablation": True}), loaded, rate=1.0)
    per_head = loaded.info.n_layers * loaded.info.n_heads
    assert heads.evaluations == pytest.approx(plain.evaluations + len(TEXTS) * 1.5)
    assert ablation.evaluations == pytest.approx(plain.evaluations + len(TEXTS) * 0.5 * (per_head + 3))
    assert base.fingerprint() != CorpusJob(**{**base.__dict__, "heads": True}).fingerprint()
    with pytest.raises(InputError, match="needs the heads option"):
        CorpusJob(source=source, head_ablation=True)


def test_cli_heads_option(tmp_path, tiny_dirs, capsys):
    source = str(write_texts(tmp_path, TEXTS[:2]))
    args = ["corpus", source, "--format", "jsonl", "--model", tiny_dirs["classification"], "--method", "saliency"]
    assert main([*args, "--head-ablation", "--out", str(tmp_path / "bad")]) == 2
    assert "needs the heads option" in capsys.readouterr().err
    assert main([*args, "--heads", "--out", str(tmp_path / "out")]) == 0
    heads = read_table(tmp_path / "out", "heads").to_pandas()
    assert heads.text_id.nunique() == 2 and heads.gradient.notna().all() and heads.ablation.isna().all()
