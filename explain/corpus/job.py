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

import dataclasses
import hashlib
import json
import math
import os
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from explain.corpus.batched import BATCHED
from explain.corpus.readers import BadRow, CorpusColumns, CorpusRow, ReaderLimits, read_rows
from explain.corpus.tables import CORPUS_SCHEMA_VERSION, SCHEMAS, part_path, read_table, write_part
from explain.costs import faithfulness_evaluations, method_evaluations, work_units
from explain.errors import ExplainError, InputError
from explain.evaluation.faithfulness import evaluate_context
from explain.inputs import count_units, encoded_request, read_words, token_segments
from explain.methods import AttributionContext, get_method
from explain.methods.base import FORWARD_PASS, MethodSettings, RawScores, method_settings
from explain.models import LoadedModel, load_model
from explain.records import APP_VERSION, AnalysisRequest, TargetSpec
from explain.scheduling import WorkBudget
from explain.targets import Target, resolve_target, target_kind
from explain.words import word_sums

DEFAULT_BATCH_SIZE = 64
ENGINES = ("local", "ray")
# Target kinds whose resolved target does not depend on the text: resolved once per job and batched across texts.
SHARED_TARGETS = ("class", "zero_shot", "similarity")
# Tokens of all texts in one padded pass (hidden size 768; scaled by the model's): short texts share passes.
GROUP_TOKEN_BUDGET = 4096
MANIFEST = "manifest.json"
FAILURES_IN_MANIFEST = 50


@dataclass(frozen=True)
class CorpusJob:
    """What a corpus run computes: the file and its columns, the model, target, methods and options.

    source: a file path, or "sample" for the built-in labelled sample. method_settings: ("method.setting", value)
    pairs as in AnalysisRequest; integrated gradients reads n_steps and integration from here.
    """

    source: str
    columns: CorpusColumns = field(default_factory=CorpusColumns)
    methods: tuple[str, ...] = ("gradient_x_input",)
    model: str = "minilm"
    target: TargetSpec | None = None
    method_settings: tuple[tuple[str, str], ...] = ()
    n_steps: int = 50
    integration: str = "adaptive_simpson"
    baseline: str = "pad"
    max_tokens: int = 128
    faithfulness: bool = False
    batch_size: int = DEFAULT_BATCH_SIZE
    file_format: str | None = None
    limits: ReaderLimits = field(default_factory=ReaderLimits)

    def __post_init__(self) -> None:
        if not self.methods:
            raise InputError("Choose at least one attribution method.")
        for name in self.methods:
            get_method(name)
        if len(set(self.methods)) != len(self.methods):
            raise InputError("Each method may be named only once.")
        if not isinstance(self.batch_size, int) or not 1 <= self.batch_size <= 100_000:
            raise InputError("The batch size must be a whole number from 1 to 100,000.")

    def request(self, row: CorpusRow | None = None) -> AnalysisRequest:
        """The analysis request of one row (or of the job's settings alone, with a stand-in text)."""
        return AnalysisRequest(
            text=row.text if row else "x", pair=(row.pair or "") if row else "",
            question=(row.question or "") if row else "", model=self.model, target=self.target,
            n_steps=self.n_steps, baseline=self.baseline, max_tokens=self.max_tokens,
            method=self.methods[0], method_settings=self.method_settings, integration=self.integration,
            tolerance=None)

    def settings(self) -> dict[str, MethodSettings]:
        request = self.request()
        return {name: method_settings(request, name) for name in self.methods}

    def as_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=str))

    def fingerprint(self) -> str:
        """What a resumed run must match: everything that changes the tables (the source by path, size, mtime)."""
        data = self.as_dict()
        source = Path(self.source)
        if source.is_file():
            stat = source.stat()
            data["source_file"] = [str(source.resolve()), stat.st_size, int(stat.st_mtime)]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class CorpusProgress:
    """Where a run stands: texts done (resumed ones included) of the total, failures, and the time left."""

    done: int
    total: int
    failed: int
    batches_done: int
    batches: int
    elapsed: float
    seconds_left: float  # nan until a batch has been timed

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


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


def normal_form(word: str) -> str:
    """A word's form for counting across texts: NFKC, case-folded, edge punctuation stripped (kept if all)."""
    text = unicodedata.normalize("NFKC", word).casefold()
    stripped = text.strip("".join(c for c in set(text) if unicodedata.category(c)[0] in "PS"))
    return stripped or text


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


def failure_table(failures: Sequence[tuple[int, str | None, str]], batch: int) -> pa.Table:
    return pa.Table.from_pylist([{"row": r, "text_id": i, "reason": m, "batch": batch} for r, i, m in failures],
                                schema=SCHEMAS["failures"])


def input_rows(folder: Path, batch: int) -> list[CorpusRow]:
    table = pq.read_table(part_path(folder, "input", batch))
    return [CorpusRow(row=r["row"], id=r["text_id"], text=r["text"], label=r["label"], pair=r["pair"],
                      question=r["question"]) for r in table.to_pylist()]


# ---- the batch function ----------------------------------------------------------------------------------------

@dataclass(eq=False)
class Prepared:
    """One row encoded for the model: its context (once the index is chosen), tokens and words."""

    row: CorpusRow
    request: AnalysisRequest
    inputs: dict[str, torch.Tensor]
    words: Any
    truncated: bool
    segments: np.ndarray
    target: Target | None = None
    scores: np.ndarray | None = None
    context: AttributionContext | None = None


class BatchRunner:
    """Runs `process_batch` for one job on one loaded model; keeps the text-independent target between batches."""

    def __init__(self, job: CorpusJob, loaded: LoadedModel) -> None:
        self.job = job
        self.loaded = loaded
        self.settings = job.settings()
        self.shared: Target | None = None

    def target(self, prepared: Prepared, shared: bool) -> Target:
        """The text's target: the job's one resolved target for text-independent kinds, else its own."""
        if shared and self.shared is not None:
            return self.shared
        target = resolve_target(self.loaded, self.job.target, prepared.inputs["input_ids"], prepared.segments,
                                prepared.inputs.get("token_type_ids"))
        if shared:
            self.shared = target
        return target

    def process(self, rows: Sequence[CorpusRow], batch: int) -> dict[str, pa.Table]:
        """The texts, words, faithfulness and failures tables of one batch of rows."""
        return process_batch(self, rows, batch)


def process_batch(runner: BatchRunner, rows: Sequence[CorpusRow], batch: int) -> dict[str, pa.Table]:
    job, loaded = runner.job, runner.loaded
    failures: list[tuple[int, str | None, str]] = []
    prepared: list[Prepared] = []
    max_tokens = min(int(job.max_tokens), loaded.max_tokens)
    kind = target_kind(loaded, job.target)
    shared = kind in SHARED_TARGETS
    with loaded.lock:
        for row in rows:
            request = job.request(row)
            try:
                inputs, tokens, _ = encoded_request(loaded, request, max_tokens)
                words = read_words(request.texts, tokens)
                if not len(words):
                    raise InputError("the text has no words the model reads")
                item = Prepared(row, request, inputs, words, bool(tokens.truncated), token_segments(tokens))
                item.target = runner.target(item, shared)
                prepared.append(item)
            except ExplainError as exc:
                failures.append((row.row, row.id, str(exc)))
        prepared.sort(key=lambda p: int(p.inputs["input_ids"].shape[1]))
        groups = length_groups(prepared, loaded) if shared else [[p] for p in prepared]
        for group in groups:
            predict(group)
        results: dict[str, list[tuple[RawScores, float]]] = {}
        for name in job.methods:
            results[name] = attribute_all(name, runner.settings[name], [p.context for p in prepared if p.context],
                                          groups if shared else [[p] for p in prepared])
        faithful: dict[int, Any] = {}
        if job.faithfulness:
            for i, item in enumerate(prepared):
                assert item.context is not None
                scores = {name: word_scores(item.context, results[name][i][0]) for name in job.methods}
                faithful[i] = evaluate_context(item.context, scores)
    return batch_tables(runner, prepared, results, faithful, failures, batch)


def length_groups(prepared: list[Prepared], loaded: LoadedModel) -> list[list[Prepared]]:
    """Consecutive (length-sorted) texts grouped so that texts x longest length stays within the token budget."""
    hidden = int(getattr(loaded.config, "hidden_size", 768) or 768)
    budget = GROUP_TOKEN_BUDGET * 768 / hidden
    groups: list[list[Prepared]] = []
    for item in prepared:
        n = int(item.inputs["input_ids"].shape[1])
        if groups and (len(groups[-1]) + 1) * n <= budget:
            groups[-1].append(item)
        else:
            groups.append([item])
    return groups


def predict(group: list[Prepared]) -> None:
    """Scores of each text in one padded pass; fixes each text's explained index and builds its context."""
    from explain.corpus.batched import Padded

    contexts = []
    for item in group:
        assert item.target is not None
        target = item.target if item.target.index >= 0 else dataclasses.replace(item.target, index=0)
        contexts.append(make_context(item, target))
    padded = Padded(contexts)
    with torch.no_grad():
        scores = padded.target.forward_embeddings(padded.inputs, padded.mask, padded.types, padded.positions)
    scores_np = scores.float().cpu().numpy()
    for i, item in enumerate(group):
        assert item.target is not None
        item.scores = scores_np[i]
        item.context = make_context(item, item.target.chosen(scores[i]))


def make_context(item: Prepared, target: Target) -> AttributionContext:
    inputs = item.inputs
    return AttributionContext(target=target, input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                              special=inputs["special"], token_word=item.words.token_word, n_words=len(item.words),
                              baseline=item.request.baseline, token_type_ids=inputs.get("token_type_ids"),
                              position_ids=inputs["position_ids"])


def attribute_all(name: str, settings: MethodSettings, contexts: list[AttributionContext],
                  groups: list[list[Prepared]]) -> list[tuple[RawScores, float]]:
    """(raw scores, seconds) of method `name` for every context, in order: batched where the method allows."""
    method = get_method(name)
    batched = BATCHED.get(name)
    out: list[tuple[RawScores, float]] = []
    for group in groups:
        group_contexts = [p.context for p in group if p.context is not None]
        start = time.perf_counter()
        raws = batched(group_contexts, settings) if batched is not None else None
        if raws is not None:
            seconds = (time.perf_counter() - start) / max(len(raws), 1)
            out += [(raw, seconds) for raw in raws]
            continue
        for context in group_contexts:
            start = time.perf_counter()
            result = method.attribute(context, settings)
            out.append((RawScores(scores=np.asarray(result.scores, dtype=np.float64), delta=result.delta,
                                  score_input=result.score_input, score_baseline=result.score_baseline),
                        time.perf_counter() - start))
    return out


def token_scores(context: AttributionContext, raw: RawScores) -> np.ndarray:
    """Scores with special tokens at 0, as `Method.attribute` records them."""
    return np.where(context.special[0].cpu().numpy(), 0.0, np.asarray(raw.scores, dtype=np.float64))


def word_scores(context: AttributionContext, raw: RawScores) -> np.ndarray:
    return word_sums(token_scores(context, raw), context.token_word, context.n_words)


def delta_of(name: str, context: AttributionContext, raw: RawScores) -> float:
    """The completeness gap of a complete method (nan for the others), as `Method.attribute` computes it."""
    if not get_method(name).complete:
        return math.nan
    if not math.isnan(raw.delta):
        return float(raw.delta)
    assert raw.score_input is not None and raw.score_baseline is not None
    return float(token_scores(context, raw).sum()) - (float(raw.score_input) - float(raw.score_baseline))


def batch_tables(runner: BatchRunner, prepared: list[Prepared], results: dict[str, list[tuple[RawScores, float]]],
                 faithful: dict[int, Any], failures: list[tuple[int, str | None, str]], batch: int
                 ) -> dict[str, pa.Table]:
    job = runner.job
    texts, words, faith = [], [], []
    complete = [n for n in job.methods if get_method(n).complete]
    for i in sorted(range(len(prepared)), key=lambda k: prepared[k].row.row):  # file order, not length order
        item = prepared[i]
        context = item.context
        assert context is not None and item.scores is not None
        target = context.target
        first = results[job.methods[0]][i][0]
        top = int(np.argmax(item.scores))
        prediction = target.labels[top] if top < len(target.labels) else str(top)
        gold = item.row.label
        texts.append({
            "text_id": item.row.id, "row": item.row.row, "text": item.row.text, "prediction": prediction,
            "prediction_score": float(item.scores[top]), "gold": gold,
            "correct": None if gold is None else gold.strip().casefold() == prediction.strip().casefold(),
            "explained": target.labels[target.index] if target.index < len(target.labels) else str(target.index),
            "explained_score": first.score_input, "baseline_score": first.score_baseline,
            "delta": delta_of(complete[0], context, results[complete[0]][i][0]) if complete else None,
            "n_tokens": context.n_tokens, "n_words": context.n_words, "truncated": item.truncated, "batch": batch,
        })
        for name in job.methods:
            scores = word_scores(context, results[name][i][0])
            words += [{"text_id": item.row.id, "method": name, "word_index": w, "word": word,
                       "form": normal_form(word), "score": float(scores[w])} for w, word in enumerate(item.words.words)]
            if i in faithful:
                metrics = faithful[i].methods[name]
                faith.append({"text_id": item.row.id, "method": name, "comprehensiveness": metrics.comprehensiveness,
                              "sufficiency": metrics.sufficiency, "naopc": None,
                              "loo_spearman": None if math.isnan(metrics.loo_spearman) else metrics.loo_spearman})
    return {
        "texts": pa.Table.from_pylist(texts, schema=SCHEMAS["texts"]),
        "words": pa.Table.from_pylist(words, schema=SCHEMAS["words"]),
        "faithfulness": pa.Table.from_pylist(faith, schema=SCHEMAS["faithfulness"]),
        "failures": failure_table(failures, batch),
    }


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
            actors: int = 1, turn: BatchTurn | None = None) -> CorpusOutcome:
    """Run (or resume) `job` into `folder` on `engine`; returns how it ended.

    progress: called after staging and after each batch; cancel: checked before each batch (a cancelled run
    keeps its finished batches and a rerun resumes); turn: entered around each local batch (a server's scheduler
    gives the model batch by batch, so other work on it takes turns with the run).
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

        run_ray(job, folder, pending, actors=actors, progress=progress, cancel=cancel)
        status = "done"
    else:
        status = run_local(job, folder, pending, batches, loaded, progress, cancel, start, turn)
    manifest = finish_manifest(folder, manifest, status)
    counts = manifest["counts"]
    return CorpusOutcome(status=status, folder=folder, texts=counts["texts_done"], failed=counts["failed"],
                         batches=batches, batches_run=len(pending), seconds=time.perf_counter() - start)


def run_local(job: CorpusJob, folder: Path, pending: list[int], batches: int, loaded: LoadedModel | None,
              progress: ProgressCallback | None, cancel: CancelCheck | None, start: float,
              turn: BatchTurn | None = None) -> str:
    loaded = loaded or load_model(job.model)
    runner = BatchRunner(job, loaded)
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
        for table in ("words", "faithfulness", "failures", "texts"):
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
    a caller checks it against a budget before running. rate: work units per second (the scheduler's default)."""
    rate = rate or WorkBudget.from_environment().rate
    texts, evaluations, work = 0, 0.0, 0.0
    for row in iter_rows(job):
        request = job.request(row)
        try:
            n_tokens, n_words = count_units(loaded, request)
        except ExplainError:
            continue
        n = FORWARD_PASS + sum(method_evaluations(request, name, n_tokens, n_words) for name in job.methods)
        if job.faithfulness:
            n += faithfulness_evaluations(len(job.methods), n_words)
        texts += 1
        evaluations += n
        work += work_units(n, loaded.config, n_tokens)
    return JobPrice(texts=texts, evaluations=evaluations, work=work, seconds=work / rate)
