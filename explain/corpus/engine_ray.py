"""The Ray engine: the same batch function as the local engine, on Ray Data with one model per actor.

    read_parquet(pending input parts) -> map_batches(CorpusMapper, an actor pool, torch threads 1 per actor)
    -> write_parquet(one row per text, its words and faithfulness nested) -> split into the run's parts

A cluster is reached through RAY_ADDRESS (`ray start --head` on one machine, `ray start --address=...` on the
others; docs/corpus.md); without it a local Ray is started for the job and stopped after. The run folder must be
on storage every node can read and write. A Ray run that is killed reruns its unfinished batches whole.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from explain.corpus.batch import BatchRunner
from explain.corpus.readers import CorpusRow
from explain.corpus.request import CorpusJob, CorpusProgress
from explain.corpus.tables import FAITHFULNESS, SCHEMAS, TEXTS, WORDS, part_path, write_part

NESTED_WORDS = pa.list_(pa.struct([f for f in WORDS if f.name != "text_id"]))
NESTED_FAITHFULNESS = pa.list_(pa.struct([f for f in FAITHFULNESS if f.name != "text_id"]))
# One output row per text: the texts table's columns, the failure (if the text failed), its words and faithfulness.
OUTPUT = pa.schema(list(TEXTS) + [pa.field("failure", pa.string()), pa.field("words", NESTED_WORDS),
                                  pa.field("faithfulness", NESTED_FAITHFULNESS)])
# Object store of a local Ray started for a job: enough for batches of short texts, small on a laptop.
LOCAL_OBJECT_STORE_BYTES = 200 * 1024 * 1024


class CorpusMapper:
    """A Ray Data callable class: one loaded model per actor, rows of input parts in, nested result rows out."""

    def __init__(self, job: CorpusJob) -> None:
        import torch

        from explain.models import load_model

        torch.set_num_threads(1)
        self.runner = BatchRunner(job, load_model(job.model))

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        out: list[dict[str, Any]] = []
        for index in sorted({r["batch"] for r in rows}):
            mine = [CorpusRow(row=r["row"], id=r["text_id"], text=r["text"], label=r["label"], pair=r["pair"],
                              question=r["question"]) for r in rows if r["batch"] == index]
            out += nest(self.runner.process(mine, index), index)
        return pa.Table.from_pylist(out, schema=OUTPUT)


def nest(tables: dict[str, pa.Table], batch: int) -> list[dict[str, Any]]:
    """One batch's tables as one row per text (failed texts: a row with only the failure)."""
    words: dict[str, list[dict[str, Any]]] = {}
    for w in tables["words"].to_pylist():
        words.setdefault(w.pop("text_id"), []).append(w)
    faith: dict[str, list[dict[str, Any]]] = {}
    for f in tables["faithfulness"].to_pylist():
        faith.setdefault(f.pop("text_id"), []).append(f)
    rows = [{**t, "failure": None, "words": words.get(t["text_id"], []), "faithfulness": faith.get(t["text_id"], [])}
            for t in tables["texts"].to_pylist()]
    rows += [{"text_id": f["text_id"], "row": f["row"], "batch": batch, "failure": f["reason"], "words": [],
              "faithfulness": []} for f in tables["failures"].to_pylist()]
    return rows


def unnest(table: pa.Table, folder: Path, batches: list[int]) -> None:
    """Write each batch's parts from the nested rows (texts last, as the local engine does)."""
    rows = table.to_pylist()
    for batch in batches:
        mine = sorted((r for r in rows if r["batch"] == batch), key=lambda r: r["row"])
        texts = [r for r in mine if r["failure"] is None]
        tables = {
            "words": pa.Table.from_pylist([{"text_id": r["text_id"], **w} for r in texts for w in r["words"]],
                                          schema=SCHEMAS["words"]),
            "faithfulness": pa.Table.from_pylist([{"text_id": r["text_id"], **f} for r in texts
                                                  for f in r["faithfulness"]], schema=SCHEMAS["faithfulness"]),
            "failures": pa.Table.from_pylist([{"row": r["row"], "text_id": r["text_id"], "reason": r["failure"],
                                               "batch": batch} for r in mine if r["failure"] is not None],
                                             schema=SCHEMAS["failures"]),
            "texts": pa.Table.from_pylist([{k: r[k] for k in TEXTS.names} for r in texts], schema=SCHEMAS["texts"]),
        }
        for name in ("words", "faithfulness", "failures", "texts"):
            write_part(folder, name, batch, tables[name])


def run_ray(job: CorpusJob, folder: Path, pending: list[int], *, actors: int = 1,
            progress: Callable[[CorpusProgress], None] | None = None, cancel: Callable[[], bool] | None = None
            ) -> None:
    """Run the pending batches on Ray; starts a local Ray (and stops it after) when none is running."""
    import ray

    if not pending:
        return
    started = False
    if not ray.is_initialized():
        root = str(Path(__file__).resolve().parents[2])
        runtime_env = {"env_vars": {"PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}}
        if os.environ.get("RAY_ADDRESS"):
            ray.init(runtime_env=runtime_env)
        else:
            ray.init(num_cpus=max(actors, 1) + 1, object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False,
                     runtime_env=runtime_env)
        started = True
    start = time.perf_counter()
    output = folder / "ray" / f"attempt-{int(time.time() * 1000)}"
    try:
        inputs = [str(part_path(folder, "input", b)) for b in pending]
        # Reading and writing parts is light: it takes no CPU slot, so an actor on every slot cannot starve it.
        # Ray Data 2.60's threaded file listing (datasource v2) imports fsspec's HTTP module from several threads
        # at once and fails where aiohttp is absent; the v1 read path lists the few input parts in the driver.
        ray.data.DataContext.get_current().use_datasource_v2 = False
        dataset = ray.data.read_parquet(inputs, num_cpus=0)
        # Ray Data's file listing takes a whole CPU slot: the actors share the others (each still runs one thread).
        cpus = float(ray.cluster_resources().get("CPU", actors + 1))
        per_actor = min(1.0, max(0.1, (cpus - 1) / max(actors, 1)))
        result = dataset.map_batches(CorpusMapper, fn_constructor_kwargs={"job": job}, batch_size=job.batch_size,
                                     batch_format="pyarrow", concurrency=max(actors, 1), num_cpus=per_actor)
        result.write_parquet(str(output), ray_remote_args={"num_cpus": 0})
        unnest(pq.read_table(output, schema=OUTPUT), folder, pending)
    finally:
        shutil.rmtree(folder / "ray", ignore_errors=True)
        if started:
            ray.shutdown()
    if progress is not None:
        done = sum(pq.ParquetFile(part_path(folder, "texts", b)).metadata.num_rows for b in pending)
        progress(CorpusProgress(done, done, 0, len(pending), len(pending), time.perf_counter() - start, 0.0))
