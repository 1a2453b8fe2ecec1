"""A corpus job: one model, target and set of methods run over every text of a file, written as it goes.

    job = CorpusJob(source="sample", columns=sample_columns(), methods=("gradient_x_input",))
    outcome = run_job(job, Path("runs/sample"), progress=print)

The rows are first staged into input parts (one per batch of `batch_size` rows, bad rows
reported with their row numbers); each batch then becomes one Parquet part per table
(`explain.corpus.tables`). A run folder holds a manifest (the request, schema and app
versions, counts, failures). Rerunning the same job resumes: finished batches are skipped,
so a killed run loses at most the batch in flight. `process_batch` is the one batch function
that both engines call, so their tables agree.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from explain.corpus.batch import BatchRunner, failure_table, normal_form, predicts_with_gradient, process_batch
from explain.corpus.readers import BadRow, CorpusRow, read_rows
from explain.corpus.request import DEFAULT_BATCH_SIZE, ENGINES, CorpusJob, CorpusProgress
from explain.corpus.tables import CORPUS_SCHEMA_VERSION, OUTPUT_TABLES, SCHEMAS, part_path, read_table, write_part
from explain.costs import faithfulness_evaluations, head_passes, method_evaluations, work_units
from explain.errors import ExplainError, InputError
from explain.evaluation.naopc import DEFAULT_NAOPC
from explain.inputs import count_units
from explain.methods.base import FORWARD_PASS
from explain.models import LoadedModel, load_model
from explain.records import APP_VERSION
from explain.scheduling import WorkBudget

MANIFEST = "manifest.json"
FAILURES_IN_MANIFEST = 50

@dataclass(frozen=True)
class CorpusOutcome:
    """How a run ended: "done" or "cancelled", its folder, counts and seconds."""

    status: str
    folder: Path
    texts: int
    failed: int
    batches: int
    batches_run: int
    seconds: float


@dataclass(frozen=True)
class JobPrice:
    """The work a job asks for: texts, model evaluations and work units (`explain.costs`), and seconds at `rate`."""

    texts: int
    evaluations: float
    work: float
    seconds: float


ProgressCallback = Callable[[CorpusProgress], None]
CancelCheck = Callable[[], bool]
BatchTurn = Callable[[], AbstractContextManager[Any]]


class Cancelled(ExplainError):
    """The run was cancelled; finished batches stay and a rerun resumes from them."""


# ---- staging ---------------------------------------------------------------------------------------------------

def stage(job: CorpusJob, folder: Path) -> dict[str, int]:
    """Read the file once into input parts of `batch_size` rows (and bad rows into read-failure parts)."""
    batch: list[CorpusRow] = []
    bad: list[BadRow] = []
    counts = {"rows": 0, "texts": 0, "bad": 0, "batches": 0}

    def flush() -> None:
        index = counts["batches"]
        write_part(folder, "input", index, pa.Table.from_pylist(
            [{"row": r.row, "text_id": r.id, "text": r.text, "label": r.label, "pair": r.pair,
              "question": r.question, "batch": index} for r in batch], schema=SCHEMAS["input"]))
        write_part(folder, "read_failures", index, failure_table(
            [(b.row, None, b.reason) for b in bad], index))
        counts["batches"] += 1
        batch.clear()
        bad.clear()

    for item in read_rows(job.source, job.columns, job.limits, job.file_format):
        counts["rows"] += 1
        if isinstance(item, BadRow):
            bad.append(item)
            counts["bad"] += 1
            continue
        batch.append(item)
        counts["texts"] += 1
        if len(batch) >= job.batch_size:
            flush()
    if batch or bad or counts["batches"] == 0:
        flush()
    return counts


def input_rows(folder: Path, batch: int) -> list[CorpusRow]:
    table = pq.read_table(part_path(folder, "input", batch))
    return [CorpusRow(row=r["row"], id=r["text_id"], text=r["text"], label=r["label"], pair=r["pair"],
                      question=r["question"]) for r in table.to_pylist()]


# ---- the run ---------------------------------------------------------------------------------------------------

def read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        raise InputError(f"The manifest of '{folder}' cannot be read; choose another output folder.") from None


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    path = folder / MANIFEST
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    temporary.write_text(json.dumps(manifest, indent=2, default=str), encoding="utf-8")
    os.replace(temporary, path)


def open_run(job: CorpusJob, folder: Path, engine: str) -> dict[str, Any]:
    """The run's manifest: a new one (staging the input), or the existing one of the same job (resuming)."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = read_manifest(folder)
    fingerprint = job.fingerprint()
    if manifest is not None and manifest.get("fingerprint") != fingerprint:
        raise InputError(f"The folder '{folder}' holds a run of another job; choose another output folder.")
    if manifest is None or not manifest.get("staged"):
        counts = stage(job, folder)
        manifest = {
            "schema_version": CORPUS_SCHEMA_VERSION, "app_version": APP_VERSION, "fingerprint": fingerprint,
            "request": job.as_dict(), "engine": engine, "staged": True, "status": "running",
            "counts": {"rows_read": counts["rows"], "texts": counts["texts"], "bad_rows": counts["bad"],
                       "batches": counts["batches"], "batches_done": 0, "failed": counts["bad"]},
            "failures": [],
        }
        write_manifest(folder, manifest)
    manifest["engine"] = engine
    return manifest


def batch_done(folder: Path, batch: int) -> bool:
    return part_path(folder, "texts", batch).is_file()


def finish_manifest(folder: Path, manifest: dict[str, Any], status: str) -> dict[str, Any]:
    """Counts and the first failures from the parts on disk, and the status."""
    failures = pa.concat_tables([read_table(folder, "read_failures"), read_table(folder, "failures")])
    texts = read_table(folder, "texts")
    counts = manifest["counts"]
    counts["batches_done"] = sum(batch_done(folder, b) for b in range(counts["batches"]))
    counts["texts_done"] = texts.num_rows
    counts["failed"] = failures.num_rows
    manifest["failures"] = [{"row": r["row"], "text_id": r["text_id"], "reason": r["reason"]}
                            for r in failures.slice(0, FAILURES_IN_MANIFEST).to_pylist()]
    manifest["status"] = status
    write_manifest(folder, manifest)
    return manifest


def run_job(job: CorpusJob, folder: str | Path, *, engine: str = "local", loaded: LoadedModel | None = None,
            progress: ProgressCallback | None = None, cancel: CancelCheck | None = None,
            actors: int | None = None, turn: BatchTurn | None = None, streams: int | None = None) -> CorpusOutcome:
    """Run (or resume) `job` into `folder` on `engine`; returns how it ended.

    progress: called after staging and after each batch; cancel: checked before each batch (a cancelled run
    keeps its finished batches and a rerun resumes); actors: ray, model copies at once (None: one per CPU of the
    cluster); turn: entered around each local batch (a server's scheduler gives the model batch by batch, so other
    work on it takes turns with the run); streams: local, a batch's passes at once (`explain.corpus.streams`; None:
    one per torch thread on a CPU).
    """
    if engine not in ENGINES:
        raise InputError(f"Unknown engine '{engine}'; choose one of {', '.join(ENGINES)}.")
    folder = Path(folder)
    start = time.perf_counter()
    manifest = open_run(job, folder, engine)
    batches = int(manifest["counts"]["batches"])
    pending = [b for b in range(batches) if not batch_done(folder, b)]
    if engine == "ray":
        from explain.corpus.engine_ray import run_ray

        ray_run = run_ray(job, folder, pending, actors=actors, progress=progress, cancel=cancel,
                          total=int(manifest["counts"]["texts"]), batches=batches)
        status = ray_run.status
        if ray_run.plan is not None:
            manifest["ray"] = ray_run.manifest()
    else:
        status = run_local(job, folder, pending, batches, loaded, progress, cancel, start, turn, streams)
    manifest = finish_manifest(folder, manifest, status)
    counts = manifest["counts"]
    return CorpusOutcome(status=status, folder=folder, texts=counts["texts_done"], failed=counts["failed"],
                         batches=batches, batches_run=len(pending), seconds=time.perf_counter() - start)


def run_local(job: CorpusJob, folder: Path, pending: list[int], batches: int, loaded: LoadedModel | None,
              progress: ProgressCallback | None, cancel: CancelCheck | None, start: float,
              turn: BatchTurn | None = None, streams: int | None = None) -> str:
    loaded = loaded or load_model(job.model)
    runner = BatchRunner(job, loaded, streams)
    total = int(read_manifest(folder)["counts"]["texts"])  # type: ignore[index]
    done = total - sum(pq.ParquetFile(part_path(folder, "input", b)).metadata.num_rows for b in pending)
    failed = 0
    timed_texts, timed_seconds = 0, 0.0
    report = progress or (lambda p: None)
    report(CorpusProgress(done, total, failed, batches - len(pending), batches, time.perf_counter() - start,
                          math.nan))
    for n, batch in enumerate(pending):
        if cancel is not None and cancel():
            return "cancelled"
        t0 = time.perf_counter()
        rows = input_rows(folder, batch)
        with turn() if turn is not None else nullcontext():
            tables = runner.process(rows, batch)
        for table in OUTPUT_TABLES:
            write_part(folder, table, batch, tables[table])
        done += len(rows)
        failed += tables["failures"].num_rows
        timed_texts += len(rows)
        timed_seconds += time.perf_counter() - t0
        rate = timed_seconds / max(timed_texts, 1)
        report(CorpusProgress(done, total, failed, batches - len(pending) + n + 1, batches,
                              time.perf_counter() - start, rate * (total - done)))
    return "done"


def iter_rows(job: CorpusJob) -> Iterator[CorpusRow]:
    for item in read_rows(job.source, job.columns, job.limits, job.file_format):
        if isinstance(item, CorpusRow):
            yield item


def price_job(job: CorpusJob, loaded: LoadedModel, rate: float | None = None) -> JobPrice:
    """The job's work from each method's declared cost (`explain.costs`), text by text from the tokenizer alone:
    a caller checks it against a budget before running. rate: work units per second (the scheduler's default).
    The prediction pass costs a forward pass only where no method's gradient pass is also the prediction pass."""
    rate = rate or WorkBudget.from_environment().rate
    texts, evaluations, work = 0, 0.0, 0.0
    prediction = 0.0 if predicts_with_gradient(job.settings()) else FORWARD_PASS
    for row in iter_rows(job):
        request = job.request(row)
        try:
            n_tokens, n_words = count_units(loaded, request)
        except ExplainError:
            continue
        n = prediction + sum(method_evaluations(request, name, n_tokens, n_words) for name in job.methods)
        if job.faithfulness:
            n += faithfulness_evaluations(len(job.methods), n_words, naopc=DEFAULT_NAOPC if job.naopc else None)
        n += head_evaluations(job, loaded)
        texts += 1
        evaluations += n
        work += work_units(n, loaded.config, n_tokens)
    return JobPrice(texts=texts, evaluations=evaluations, work=work, seconds=work / rate)


def head_evaluations(job: CorpusJob, loaded: LoadedModel) -> float:
    """Evaluations of one text's heads table: the attention pass and the gradient's forward and backward (3 forward
    passes), and with the ablation effect one forward pass per head besides (`explain.costs.head_passes`)."""
    if not job.heads:
        return 0.0
    if job.head_ablation:
        return FORWARD_PASS * head_passes(loaded.info.n_layers, loaded.info.n_heads, "importance")
    return FORWARD_PASS * 3


__all__ = ["DEFAULT_BATCH_SIZE", "ENGINES", "BatchRunner", "CorpusJob", "CorpusProgress", "normal_form",
           "process_batch", "run_job", "price_job"]
