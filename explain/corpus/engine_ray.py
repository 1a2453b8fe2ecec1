"""The Ray engine: the same batch function as the local engine, on Ray Data with one model per actor.

    read_parquet(pending input parts) -> map_batches(CorpusMapper, an actor pool, torch threads 1 per actor)
    -> iter_batches in the driver (one row per text, its words, faithfulness and heads nested)
    -> each batch's parts written as soon as all its rows are back, with progress (texts done, total, time left)

A cluster is reached through RAY_ADDRESS (`ray start --head` on one machine, `ray start --address=...` on the
others; docs/corpus.md); without it a local Ray is started for the job and stopped after. The run folder must be
on storage the driver can write and every node can read. A Ray run that is killed keeps its finished batches.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from explain.corpus.batch import BatchRunner
from explain.corpus.readers import CorpusRow
from explain.corpus.request import CorpusJob, CorpusProgress
from explain.corpus.tables import OUTPUT_TABLES, SCHEMAS, TEXTS, part_path, write_part

# Tables nested in each text's output row (their text_id column is the row's).
NESTED = ("words", "faithfulness", "heads")
# One output row per input row: the texts table's columns, the failure (if the text failed), and its nested tables.
OUTPUT = pa.schema(list(TEXTS) + [pa.field("failure", pa.string())] + [
    pa.field(name, pa.list_(pa.struct([f for f in SCHEMAS[name] if f.name != "text_id"]))) for name in NESTED])
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
    nested: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name in NESTED:
        per_text: dict[str, list[dict[str, Any]]] = {}
        nested[name] = per_text
        for item in tables[name].to_pylist():
            per_text.setdefault(item.pop("text_id"), []).append(item)
    rows = [{**t, "failure": None, **{name: nested[name].get(t["text_id"], []) for name in NESTED}}
            for t in tables["texts"].to_pylist()]
    rows += [{"text_id": f["text_id"], "row": f["row"], "batch": batch, "failure": f["reason"],
              **{name: [] for name in NESTED}} for f in tables["failures"].to_pylist()]
    return rows


def write_batch(folder: Path, batch: int, rows: list[dict[str, Any]]) -> int:
    """Write one batch's parts from its nested rows (texts last, as the local engine does); returns its failures."""
    mine = sorted(rows, key=lambda r: r["row"])
    texts = [r for r in mine if r["failure"] is None]
    tables = {name: pa.Table.from_pylist([{"text_id": r["text_id"], **item} for r in texts for item in r[name]],
                                         schema=SCHEMAS[name]) for name in NESTED}
    tables["failures"] = pa.Table.from_pylist([{"row": r["row"], "text_id": r["text_id"], "reason": r["failure"],
                                                "batch": batch} for r in mine if r["failure"] is not None],
                                              schema=SCHEMAS["failures"])
    tables["texts"] = pa.Table.from_pylist([{k: r[k] for k in TEXTS.names} for r in texts], schema=SCHEMAS["texts"])
    for name in OUTPUT_TABLES:
        write_part(folder, name, batch, tables[name])
    return tables["failures"].num_rows


class Tracker:
    """Texts and batches done of the whole run, and the time left from the pace since the first batch finished."""

    def __init__(self, total: int, done: int, batches: int, batches_done: int,
                 progress: Callable[[CorpusProgress], None] | None) -> None:
        self.total, self.done, self.batches, self.batches_done = total, done, batches, batches_done
        self.failed = 0
        self.start = time.perf_counter()
        self.first: tuple[float, int] | None = None  # (time, texts done) when the first batch finished
        self.report = progress or (lambda p: None)
        self.report(CorpusProgress(done, total, 0, batches_done, batches, 0.0, math.nan))

    def finished(self, texts: int, failed: int) -> None:
        now = time.perf_counter()
        self.done += texts
        self.failed += failed
        self.batches_done += 1
        left = self.total - self.done
        if self.first is None:
            self.first = (now, self.done)
            pace = (now - self.start) / max(texts, 1)
        else:
            pace = (now - self.first[0]) / max(self.done - self.first[1], 1)
        self.report(CorpusProgress(self.done, self.total, self.failed, self.batches_done, self.batches,
                                   now - self.start, pace * left))


def run_ray(job: CorpusJob, folder: Path, pending: list[int], *, actors: int = 1,
            progress: Callable[[CorpusProgress], None] | None = None, cancel: Callable[[], bool] | None = None,
            total: int | None = None, batches: int | None = None) -> str:
    """Run the pending batches on Ray; "done", or "cancelled" when `cancel` said so between finished batches.

    Starts a local Ray (and stops it after) when none is running. The driver streams the actors' results
    (`iter_batches`) and writes each batch's parts as soon as all its rows are back, reporting progress then
    (`total` texts and `batches` of the whole run; by default the pending ones), so a killed run keeps its
    finished batches.
    """
    import ray

    expected = {b: pq.ParquetFile(part_path(folder, "input", b)).metadata.num_rows for b in pending}
    todo = sum(expected.values())
    total = todo if total is None else total
    tracker = Tracker(total, total - todo, len(pending) if batches is None else batches,
                      (len(pending) if batches is None else batches) - len(pending), progress)
    for batch in [b for b in pending if not expected[b]]:
        write_batch(folder, batch, [])
        tracker.finished(0, 0)
    pending = [b for b in pending if expected[b]]
    if not pending:
        return "done"
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
    try:
        inputs = [str(part_path(folder, "input", b)) for b in pending]
        # Reading parts is light: it takes no CPU slot, so an actor on every slot cannot starve it.
        # Ray Data 2.60's threaded file listing (datasource v2) imports fsspec's HTTP module from several threads
        # at once and fails where aiohttp is absent; the v1 read path lists the few input parts in the driver.
        ray.data.DataContext.get_current().use_datasource_v2 = False
        dataset = ray.data.read_parquet(inputs, num_cpus=0)
        # Ray Data's file listing takes a whole CPU slot: the actors share the others (each still runs one thread).
        cpus = float(ray.cluster_resources().get("CPU", actors + 1))
        per_actor = min(1.0, max(0.1, (cpus - 1) / max(actors, 1)))
        result = dataset.map_batches(CorpusMapper, fn_constructor_kwargs={"job": job}, batch_size=job.batch_size,
                                     batch_format="pyarrow", concurrency=max(actors, 1), num_cpus=per_actor)
        waiting: dict[int, list[dict[str, Any]]] = {}
        for block in result.iter_batches(batch_size=None, batch_format="pyarrow"):
            assert isinstance(block, pa.Table)
            for row in block.cast(OUTPUT).to_pylist():
                waiting.setdefault(row["batch"], []).append(row)
            for batch in [b for b, rows in waiting.items() if len(rows) >= expected[b]]:
                tracker.finished(expected[batch], write_batch(folder, batch, waiting.pop(batch)))
            if cancel is not None and cancel():
                return "cancelled"
    finally:
        if started:
            ray.shutdown()
    return "done"
