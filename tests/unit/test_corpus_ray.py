"""The Ray engine gives the local engine's tables, heads included, reports progress batch by batch, and spreads one
big batch over every actor (a local Ray with 2 CPUs, a small object store, no dashboard; one Ray start for the whole
file, as it is slow)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from explain.corpus.job import CorpusJob, read_manifest, run_job
from explain.corpus.readers import CorpusColumns
from explain.corpus.tables import read_table

pytestmark = [pytest.mark.ray, pytest.mark.slow, pytest.mark.serial]  # one local Ray at a time


@pytest.fixture(scope="module")
def local_ray():
    """Started as the engine starts its own: workers get a PYTHONPATH runtime_env only where they would not import
    this checkout's `explain` (a runtime_env starts each worker process twice)."""
    ray = pytest.importorskip("ray")
    from explain.corpus.engine_ray import worker_runtime_env

    ray.init(num_cpus=2, object_store_memory=100 * 1024 * 1024, include_dashboard=False,
             runtime_env=worker_runtime_env(local=True, root=Path(__file__).resolve().parents[2]))
    yield ray
    ray.shutdown()


def test_ray_and_local_engines_write_the_same_tables(tmp_path, tiny_dirs, local_ray):
    source = tmp_path / "texts.csv"
    # Two batches of two rows (one empty, so one failure): progress between batches, and each engine's every table.
    # Each text costs both engines heads, head ablation, faithfulness and occlusion, so the texts are few.
    texts = ["the film was good", "", "not very good but the food was great", "terrible"]
    source.write_text("text,label\n" + "".join(f"{t},{'positive' if i % 2 else 'negative'}\n"
                                               for i, t in enumerate(texts)), encoding="utf-8")
    job = CorpusJob(source=str(source), columns=CorpusColumns(text="text", label="label"),
                    model=tiny_dirs["classification"], methods=("gradient_x_input", "occlusion"), faithfulness=True,
                    heads=True, head_ablation=True, batch_size=2)
    run_job(job, tmp_path / "local")
    seen = []
    outcome = run_job(job, tmp_path / "ray", engine="ray", actors=2, progress=seen.append)
    assert outcome.status == "done" and outcome.texts == 3 and outcome.failed == 1
    done = [p.done for p in seen]
    assert done[0] == 0 and done[-1] == seen[-1].total == 3 and done == sorted(done)
    assert len([p for p in seen if 0 < p.done < p.total]) >= 1, "no progress between the first and the last batch"
    assert [p.batches_done for p in seen][-1] == seen[-1].batches == 2 and seen[-1].seconds_left == 0
    for table, column in (("texts", "explained_score"), ("words", "score"), ("faithfulness", "comprehensiveness"),
                          ("heads", "gradient"), ("heads", "ablation"), ("heads", "entropy")):
        local = read_table(tmp_path / "local", table).to_pandas()
        remote = read_table(tmp_path / "ray", table).to_pandas()
        assert list(local.text_id) == list(remote.text_id)
        if table == "heads":
            assert list(local.layer) == list(remote.layer) and list(local["head"]) == list(remote["head"])
        if table == "words":
            assert list(local.method) == list(remote.method) and list(local.word) == list(remote.word)
        np.testing.assert_allclose(local[column], remote[column], rtol=1e-4, atol=1e-6)
    assert not (tmp_path / "ray" / "ray").exists()


def test_one_big_batch_is_spread_over_one_actor_per_cpu(tmp_path, tiny_dirs, local_ray):
    """Eight texts in one batch, no actor count given: 2 actors (the 2 CPUs), each computing some of the texts."""
    source = tmp_path / "texts.csv"
    source.write_text("text\n" + "".join(f"text number {i} is fine\n" for i in range(8)), encoding="utf-8")
    job = CorpusJob(source=str(source), columns=CorpusColumns(text="text"), model=tiny_dirs["classification"],
                    methods=("gradient_x_input",), batch_size=64)
    outcome = run_job(job, tmp_path / "ray", engine="ray")
    assert outcome.status == "done" and outcome.texts == 8 and outcome.batches == 1
    spread = read_manifest(tmp_path / "ray")["ray"]
    assert spread["actors"] == 2 and spread["torch_threads"] == 1 and spread["blocks"] >= 4
    per_actor = spread["texts_per_actor"]
    assert len(per_actor) == 2 and min(per_actor.values()) >= 1 and sum(per_actor.values()) == 8, per_actor
    assert list(read_table(tmp_path / "ray", "texts").to_pandas().row) == list(range(1, 9))


def test_small_input_goes_to_ray_data_as_tables_and_big_input_is_read_in_a_task(tmp_path, local_ray):
    """Parts of 3, 5 and 2 rows in 4 blocks: under the size limit the driver hands Ray Data the tables (a
    materialized dataset, no read task), over it Ray Data reads the parts; the same rows either way."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from ray.data.dataset import MaterializedDataset

    from explain.corpus.engine_ray import read_input

    paths, row = [], 0
    for n in (3, 5, 2):
        paths.append(str(tmp_path / f"part-{len(paths)}.parquet"))
        pq.write_table(pa.table({"row": list(range(row, row + n)), "text": [f"text {i}" for i in range(row, row + n)]}),
                       paths[-1])
        row += n
    inline = read_input(paths, 4)
    assert isinstance(inline, MaterializedDataset) and inline.num_blocks() == 4
    assert [r["row"] for r in inline.take_all()] == list(range(10))
    streamed = read_input(paths, 4, inline_bytes=0)
    assert not isinstance(streamed, MaterializedDataset)
    assert sorted(r["row"] for r in streamed.take_all()) == list(range(10))
