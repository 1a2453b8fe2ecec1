"""Corpus runs a server keeps: their folder (beside the saved-analyses store), their ids, their bounds, the limits a
dashboard run must fit, run folders the CLI wrote (only inside the configured roots), and batch-by-batch turns on
a model's scheduler.

A server run lives in `<store folder>/corpus-runs/<run id>/`; the run id is a hash of the job with its input's
content hash in place of its path, so the same file and settings reopen (or resume) the same run. At most
EXPLAIN_MAX_CORPUS_RUNS (default 20) run folders are kept; starting one more removes the oldest.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from explain.corpus.job import MANIFEST, BatchTurn, CorpusJob, JobPrice
from explain.corpus.readers import SAMPLE, file_format
from explain.errors import InputError
from explain.models import configured_roots, inside_roots
from explain.scheduling import Schedulers, about, queue_text, watchdog_seconds
from explain.store import default_store_path

RUNS_FOLDER = "corpus-runs"
MAX_RUNS_ENV = "EXPLAIN_MAX_CORPUS_RUNS"
DEFAULT_MAX_RUNS = 20
UPLOAD_MB_ENV = "EXPLAIN_CORPUS_UPLOAD_MB"
DEFAULT_UPLOAD_MB = 20
ROWS_ENV = "EXPLAIN_CORPUS_MAX_ROWS"
DEFAULT_ROWS = 2000
WORK_ENV = "EXPLAIN_CORPUS_MAX_SECONDS"
DEFAULT_WORK_SECONDS = 600.0
ROOTS_ENV = "EXPLAIN_CORPUS_ROOTS"
RUN_ID = re.compile(r"[0-9a-f]{16}")
INPUT_STEM = "input"


def env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True)
class PageLimits:
    """What a dashboard run may ask for: upload bytes, rows read, and seconds of work at the server's rate."""

    upload_bytes: int
    max_rows: int
    max_seconds: float
    max_runs: int

    @classmethod
    def from_environment(cls) -> PageLimits:
        """EXPLAIN_CORPUS_UPLOAD_MB, EXPLAIN_CORPUS_MAX_ROWS, EXPLAIN_CORPUS_MAX_SECONDS, EXPLAIN_MAX_CORPUS_RUNS."""
        return cls(upload_bytes=int(env_number(UPLOAD_MB_ENV, DEFAULT_UPLOAD_MB) * 2 ** 20),
                   max_rows=int(env_number(ROWS_ENV, DEFAULT_ROWS)),
                   max_seconds=env_number(WORK_ENV, DEFAULT_WORK_SECONDS),
                   max_runs=int(env_number(MAX_RUNS_ENV, DEFAULT_MAX_RUNS)))


def cli_command(job: CorpusJob, name: str = "FILE") -> str:
    """The CLI command that runs `job` without the dashboard's limits."""
    source = "--sample" if job.source == SAMPLE else name
    columns = "" if job.source == SAMPLE else f" --text-column {job.columns.text}" + (
        f" --label-column {job.columns.label}" if job.columns.label else "")
    methods = "".join(f" --method {m}" for m in job.methods)
    return (f"python -m explain corpus {source}{columns}{methods}" + (" --faithfulness" if job.faithfulness else "")
            + (" --heads" if job.heads else "") + (" --head-ablation" if job.head_ablation else "") + " --out runs/mine")


def check_upload_size(size: int, limits: PageLimits) -> None:
    if size > limits.upload_bytes:
        raise InputError(f"The file is {about(size / 2 ** 20)} MB, over this server's {about(limits.upload_bytes / 2 ** 20)}"
                         " MB limit for uploads: run it with `python -m explain corpus FILE --out DIR` instead.")


def check_price(price: JobPrice, job: CorpusJob, limits: PageLimits) -> None:
    """InputError (one sentence naming the CLI command) when the job is over the page's work limit."""
    if price.seconds > limits.max_seconds:
        raise InputError(f"This run needs about {about(price.seconds)} s of computation ({price.texts} texts), over "
                         f"this server's {about(limits.max_seconds)} s limit for the dashboard: run it with "
                         f"`{cli_command(job)}` instead.")


def runs_folder() -> Path:
    """Where the server keeps corpus runs: beside the saved-analyses store."""
    return default_store_path().parent / RUNS_FOLDER


def content_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def run_id(job: CorpusJob, digest: str) -> str:
    """The id of `job` on an input whose content hash is `digest` (the source's path left out)."""
    data = job.as_dict()
    data["source"] = "sample" if job.source == SAMPLE else digest
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def check_run_id(value: str) -> str:
    """`value` if it is a run id; InputError (one sentence) otherwise."""
    if not RUN_ID.fullmatch(value or ""):
        raise InputError("The link's run id is not one this page makes (16 hexadecimal characters); start a run below.")
    return value


def run_path(value: str, folder: Path | None = None) -> Path:
    """The folder of run `value`; InputError when the id is malformed or no run has it (any more)."""
    path = (folder or runs_folder()) / check_run_id(value)
    if not (path / MANIFEST).is_file():
        raise InputError(f"No corpus run has the id {value}; it may have been removed to make room for newer runs.")
    return path


def stage_upload(data: bytes, name: str, runs: Path, job_for: Callable[[str], CorpusJob]) -> tuple[str, CorpusJob]:
    """Keep an uploaded file in its run's folder; the run id and the job reading that copy.

    job_for(path) makes the job from the copy's path (the format is read from the upload's name)."""
    suffix = Path(name).suffix.lower()
    file_format(name)  # InputError for a name whose format cannot be told
    digest = hashlib.sha256(data).hexdigest()
    identity = run_id(job_for(f"upload{suffix}"), digest)
    folder = runs / identity
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{INPUT_STEM}{suffix}"
    if not path.is_file():
        temporary = path.with_suffix(f".tmp{os.getpid()}")
        temporary.write_bytes(data)
        os.replace(temporary, path)
    return identity, job_for(str(path))


def prune_runs(runs: Path, keep: int, protect: str = "") -> list[str]:
    """Remove the oldest run folders (by last change) until at most `keep` remain; `protect` stays. Returns ids."""
    if not runs.is_dir():
        return []
    found = [p for p in runs.iterdir() if p.is_dir() and RUN_ID.fullmatch(p.name)]
    found.sort(key=lambda p: p.stat().st_mtime)
    removed: list[str] = []
    for path in found:
        if len(found) - len(removed) <= keep:
            break
        if path.name == protect:
            continue
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path.name)
    return removed


def corpus_roots() -> list[Path]:
    """Folders whose run folders the page may open: EXPLAIN_CORPUS_ROOTS, else EXPLAIN_MODEL_ROOTS, else the
    server's working folder (os.pathsep-separated)."""
    raw = os.environ.get(ROOTS_ENV, "").strip()
    if raw:
        return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p.strip()]
    return configured_roots() or [Path.cwd().resolve()]


def check_cli_folder(value: str, roots: list[Path] | None = None) -> Path:
    """A run folder the CLI wrote, resolved, inside the roots; InputError (the same sentence whether or not a
    folder outside them exists, so visitors cannot probe the disk)."""
    outside = "That folder is outside the folders this server allows, or holds no corpus run."
    try:
        real = Path(value.strip()).expanduser().resolve()
    except (OSError, RuntimeError, ValueError):
        raise InputError(outside) from None
    if not value.strip() or not inside_roots(real, roots or corpus_roots()):
        raise InputError(outside)
    if not (real / MANIFEST).is_file():
        raise InputError(outside)
    return real


def file_columns(path: Path, fmt: str | None = None) -> list[str]:
    """The column names of a data file, read from its first record (plain text has one: "text")."""
    kind = file_format(path, fmt)
    if kind == "text":
        return ["text"]
    if kind == "parquet":
        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except Exception:  # noqa: BLE001 - any unreadable Parquet file gets the same sentence
            raise InputError("The file cannot be read as Parquet.") from None
    with path.open("rb") as handle:
        first = handle.readline(1 << 20).decode("utf-8-sig", errors="replace").strip()
    if kind == "jsonl":
        try:
            record = json.loads(first)
        except ValueError:
            raise InputError("The file's first line is not a JSON object.") from None
        if not isinstance(record, dict):
            raise InputError("The file's first line is not a JSON object.")
        return [str(k) for k in record]
    import csv

    return next(csv.reader([first], delimiter="\t" if kind == "tsv" else ","), [])


def batch_turns(schedulers: Schedulers, loaded: Any, price: JobPrice, batch_size: int, *,
                session: Hashable | None, waiting: Callable[[str], None] | None = None) -> BatchTurn:
    """A `run_job` turn: each batch waits for a heavy turn on the model's scheduler (so light work from other
    visitors goes first between batches, and a busy queue says where this run stands)."""
    per_batch = price.seconds * min(batch_size, max(price.texts, 1)) / max(price.texts, 1)
    scheduler = schedulers.get(loaded.spec)

    @contextmanager
    def turn() -> Iterator[None]:
        report = (lambda ahead: waiting(queue_text(ahead))) if waiting is not None else None
        allowed = watchdog_seconds(per_batch) if math.isfinite(per_batch) else math.inf
        with scheduler.turn(light=False, session=session, waiting=report, allowed=allowed) as held, \
                held.hold(loaded):
            yield

    return turn
