"""The Ray engine: the same batch function as the local engine, on Ray Data with one model per actor.

    pending input parts (small: tables from the driver; else read_parquet), split into blocks: at least 2 per actor
    -> map_batches(CorpusMapper, an actor pool, one block per call, torch threads = CPUs per actor: 1 by default)
    -> iter_batches in the driver (one row per text, its words, faithfulness and heads nested)
    -> each batch's parts written as soon as all its rows are back, with progress (texts done, total, time left)

By default there is one actor per CPU of the cluster (`plan_ray`), and never more actors than blocks of work.

A cluster is reached through RAY_ADDRESS (`ray start --head` on one machine, `ray start --address=...` on the
others; docs/corpus.md); without it a local Ray is started for the job and stopped after. The run folder must be
on storage the driver can write and every node can read. A Ray run that is killed keeps its finished batches.
"""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
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
# One output row per input row: the texts table's columns, the failure (if the text failed), its nested tables,
# and the actor that computed it (host:pid; counted in the manifest, not written to the tables).
OUTPUT = pa.schema(list(TEXTS) + [pa.field("failure", pa.string())] + [
    pa.field(name, pa.list_(pa.struct([f for f in SCHEMAS[name] if f.name != "text_id"]))) for name in NESTED] + [
    pa.field("worker", pa.string())])
# Object store of a local Ray started for a job: enough for batches of short texts, small on a laptop.
LOCAL_OBJECT_STORE_BYTES = 200 * 1024 * 1024
# CPUs per actor when the actor count is not given: one actor per CPU, each with one torch thread.
CPUS_PER_ACTOR = 1.0
# Blocks of work per actor at least (where the job has the texts): an actor that finishes early takes another.
BLOCKS_PER_ACTOR = 2
# Pending input up to this size (the parts on disk) is read by the driver and handed to Ray Data as tables.
INLINE_INPUT_BYTES = 32 * 1024 * 1024
# Seconds to wait for every actor to start (its model loads after, while the input is read) before Ray Data gives up.
ACTOR_START_SECONDS = 600


@dataclass(frozen=True)
class RayPlan:
    """How a Ray run spreads its texts: actors, the CPUs each holds and its torch threads, and blocks of rows."""

    actors: int
    cpus_per_actor: float
    threads: int
    blocks: int


def plan_ray(texts: int, parts: int, cpus: float, node_cpus: float, actors: int | None = None) -> RayPlan:
    """Actors (given, or one per CPU of the cluster), never more than the blocks of work; blocks: the input parts,
    split so that each actor gets at least BLOCKS_PER_ACTOR where there are texts enough; CPUs per actor: the
    cluster's shared out (at most one node's), so 1 actor on 2 CPUs runs 2 torch threads."""
    wanted = actors if actors is not None and actors > 0 else max(1, int(cpus // CPUS_PER_ACTOR))
    blocks = max(parts, min(texts, BLOCKS_PER_ACTOR * wanted))
    n = max(1, min(wanted, blocks))
    per_actor = min(max(cpus, 1.0) / n, max(node_cpus, 1.0))
    return RayPlan(actors=n, cpus_per_actor=per_actor, threads=max(1, int(per_actor)), blocks=blocks)


@dataclass(frozen=True)
class RayOutcome:
    """How a Ray run ended ("done" or "cancelled"), its plan, and the texts each actor (host:pid) computed."""

    status: str
    plan: RayPlan | None
    texts_per_actor: tuple[tuple[str, int], ...] = ()

    def manifest(self) -> dict[str, Any]:
        """The run's Ray figures for its manifest."""
        if self.plan is None:
            return {}
        return {"actors": self.plan.actors, "cpus_per_actor": self.plan.cpus_per_actor,
                "torch_threads": self.plan.threads, "blocks": self.plan.blocks,
                "texts_per_actor": dict(self.texts_per_actor)}


class CorpusMapper:
    """A Ray Data callable class: one loaded model per actor, rows of input parts in, nested result rows out."""

    def __init__(self, job: CorpusJob, threads: int = 1) -> None:
        import torch

        from explain.models import load_model

        torch.set_num_threads(threads)
        self.job = job
        # The model loads in the background: Ray Data reads the input once every actor is constructed, so the
        # reading overlaps the loads; the first call waits for this actor's model (and raises its load error).
        loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-model")
        self.loading = loader.submit(load_model, job.model)
        loader.shutdown(wait=False)
        self.runner: BatchRunner | None = None
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def __call__(self, batch: pa.Table) -> pa.Table:
        if self.runner is None:
            self.runner = BatchRunner(self.job, self.loading.result())
        rows = batch.to_pylist()
        out: list[dict[str, Any]] = []
        for index in sorted({r["batch"] for r in rows}):
            mine = [CorpusRow(row=r["row"], id=r["text_id"], text=r["text"], label=r["label"], pair=r["pair"],
                              question=r["question"]) for r in rows if r["batch"] == index]
            out += nest(self.runner.process(mine, index), index)
        return pa.Table.from_pylist([{**r, "worker": self.worker} for r in out], schema=OUTPUT)


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


def read_input(inputs: list[str], blocks: int, inline_bytes: int = INLINE_INPUT_BYTES) -> Any:
    """The pending input parts as a Ray dataset of `blocks` blocks (more blocks than parts: parts split, so that one
    big batch still reaches every actor). Up to inline_bytes of parts the driver reads them and hands Ray Data the
    tables: no read task, so no worker process started (and importing Ray Data) for it; bigger inputs are read by
    Ray Data in a task that takes no CPU slot (actors on every slot cannot starve it), streamed."""
    import ray

    if sum(os.path.getsize(path) for path in inputs) > inline_bytes:
        return ray.data.read_parquet(inputs, num_cpus=0, override_num_blocks=blocks)
    table = pa.concat_tables([pq.read_table(path) for path in inputs])
    n = max(1, min(blocks, table.num_rows))
    bounds = [round(i * table.num_rows / n) for i in range(n + 1)]
    return ray.data.from_arrow([table.slice(a, b - a) for a, b in zip(bounds, bounds[1:], strict=False)])


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


def worker_runtime_env(local: bool = False, root: Path | None = None) -> dict[str, Any] | None:
    """The runtime_env that lets Ray workers import this `explain`: PYTHONPATH with its folder first.

    local: for a Ray started on this machine by this process, whose workers inherit its environment; there it is
    None when a fresh interpreter already imports `explain` from this folder (an installed package), as a
    runtime_env starts every worker process twice (a setup process, then the worker: about a CPU second each).
    root: the folder holding `explain` (by default this one's).
    """
    folder = (root or Path(__file__).parents[2]).resolve()
    if local:
        found = subprocess.run([sys.executable, "-P", "-c",
                                "import importlib.util as u; print(u.find_spec('explain').origin)"],
                               capture_output=True, text=True, check=False, cwd=tempfile.gettempdir())
        if found.returncode == 0 and Path(found.stdout.strip()).resolve().parents[1] == folder:
            return None
    return {"env_vars": {"PYTHONPATH": str(folder) + os.pathsep + os.environ.get("PYTHONPATH", "")}}


def run_ray(job: CorpusJob, folder: Path, pending: list[int], *, actors: int | None = None,
            progress: Callable[[CorpusProgress], None] | None = None, cancel: Callable[[], bool] | None = None,
            total: int | None = None, batches: int | None = None) -> RayOutcome:
    """Run the pending batches on Ray; status "done", or "cancelled" when `cancel` said so between finished batches.

    Starts a local Ray on this machine's CPUs (and stops it after) when none is running. actors: None for one per
    CPU of the cluster (`plan_ray`). The driver streams the actors' results (`iter_batches`) and writes each
    batch's parts as soon as all its rows are back, reporting progress then (`total` texts and `batches` of the
    whole run; by default the pending ones), so a killed run keeps its finished batches.
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
        return RayOutcome("done", None)
    started = False
    if not ray.is_initialized():
        if os.environ.get("RAY_ADDRESS"):
            ray.init(runtime_env=worker_runtime_env())
        else:
            ray.init(object_store_memory=LOCAL_OBJECT_STORE_BYTES, include_dashboard=False,
                     runtime_env=worker_runtime_env(local=True))
        started = True
    try:
        nodes = [n["Resources"].get("CPU", 0.0) for n in ray.nodes() if n.get("Alive")]
        plan = plan_ray(todo, len(pending), float(ray.cluster_resources().get("CPU", 1.0)), max(nodes, default=1.0),
                        actors)
        inputs = [str(part_path(folder, "input", b)) for b in pending]
        # Ray Data 2.60's threaded file listing (datasource v2) imports fsspec's HTTP module from several threads
        # at once and fails where aiohttp is absent; the v1 read path lists the few input parts in the driver.
        context = ray.data.DataContext.get_current()
        context.use_datasource_v2 = False
        # Work starts once every actor is up (constructed; models still loading): otherwise the first actor ready
        # takes the blocks of a short job alone.
        context.wait_for_min_actors_s = ACTOR_START_SECONDS
        context.enable_progress_bars = False
        dataset = read_input(inputs, plan.blocks)
        # batch_size=None: one call per block, and no bundling of blocks back into bigger ones. One block in flight
        # per actor: an actor takes the next block when it is free, so a fast actor is not left idle at the end.
        pool = ray.data.ActorPoolStrategy(size=plan.actors, max_tasks_in_flight_per_actor=1)
        result = dataset.map_batches(CorpusMapper, fn_constructor_kwargs={"job": job, "threads": plan.threads},
                                     batch_size=None, batch_format="pyarrow", compute=pool,
                                     num_cpus=plan.cpus_per_actor)
        waiting: dict[int, list[dict[str, Any]]] = {}
        per_actor: dict[str, int] = {}
        for block in result.iter_batches(batch_size=None, batch_format="pyarrow"):
            assert isinstance(block, pa.Table)
            for row in block.cast(OUTPUT).to_pylist():
                waiting.setdefault(row["batch"], []).append(row)
                per_actor[row["worker"]] = per_actor.get(row["worker"], 0) + 1
            for batch in [b for b, rows in waiting.items() if len(rows) >= expected[b]]:
                tracker.finished(expected[batch], write_batch(folder, batch, waiting.pop(batch)))
            if cancel is not None and cancel():
                return RayOutcome("cancelled", plan, tuple(sorted(per_actor.items())))
    finally:
        if started:
            ray.shutdown()
    return RayOutcome("done", plan, tuple(sorted(per_actor.items())))
