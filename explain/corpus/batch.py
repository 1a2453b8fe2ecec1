"""The one batch function both engines call: rows in, the texts, words, faithfulness and failures tables out.

Texts are encoded one by one, sorted by length and grouped so that one padded pass serves many
(`explain.corpus.batched`); methods without a batched form run text by text inside the batch. Each group's
prediction pass is also the gradient pass of the methods that read the gradient at the input.
"""

from __future__ import annotations

import dataclasses
import math
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from explain.corpus.batched import BATCHED, PASS_TOKENS, Padded, cheapest_spans, fast_attention
from explain.corpus.first_position import first_position_only
from explain.corpus.heads import check_heads, contexts_head_maps, heads_table
from explain.corpus.packed import PACKED_PAD_COST, packed_layers, real_tokens_only
from explain.corpus.readers import CorpusRow
from explain.corpus.request import CorpusJob
from explain.corpus.streams import run_streams, split_evenly, stream_count
from explain.corpus.tables import SCHEMAS
from explain.errors import ExplainError, InputError
from explain.evaluation.faithfulness import evaluate_context
from explain.evaluation.naopc import DEFAULT_NAOPC
from explain.inputs import encoded_request, read_words, token_segments
from explain.methods import AttributionContext, get_method
from explain.methods.base import MethodSettings, RawScores
from explain.models import LoadedModel
from explain.records import AnalysisRequest
from explain.targets import Target, resolve_target, target_kind
from explain.words import word_sums

SHARED_TARGETS = ("class", "zero_shot", "similarity")
# Tokens of all texts in one padded pass (hidden size 768; scaled by the model's): short texts share passes.
GROUP_TOKEN_BUDGET = 4096


@lru_cache(maxsize=1 << 16)
def normal_form(word: str) -> str:
    """A word's form for counting across texts: NFKC, case-folded, edge punctuation stripped (kept if all)."""
    text = unicodedata.normalize("NFKC", word).casefold()
    stripped = text.strip("".join(c for c in set(text) if unicodedata.category(c)[0] in "PS"))
    return stripped or text


def failure_table(failures: Sequence[tuple[int, str | None, str]], batch: int) -> pa.Table:
    return pa.Table.from_pylist([{"row": r, "text_id": i, "reason": m, "batch": batch} for r, i, m in failures],
                                schema=SCHEMAS["failures"])


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
    """Runs `process_batch` for one job on one loaded model; keeps the text-independent target between batches.
    streams: passes at once on a CPU (None: one per torch thread, `explain.corpus.streams`)."""

    def __init__(self, job: CorpusJob, loaded: LoadedModel, streams: int | None = None) -> None:
        self.job = job
        self.loaded = loaded
        self.most_streams = streams
        self.settings = job.settings()
        self.shared: Target | None = None
        if job.heads:
            check_heads(loaded)

    def target(self, prepared: Prepared, shared: bool) -> Target:
        """The text's target: the job's one resolved target for text-independent kinds, else its own."""
        if shared and self.shared is not None:
            return self.shared
        target = resolve_target(self.loaded, self.job.target, prepared.inputs["input_ids"], prepared.segments,
                                prepared.inputs.get("token_type_ids"))
        if shared:
            self.shared = target
        return target

    def streams(self, passes: int) -> int:
        """Passes of a batch that run at once."""
        found = stream_count(self.loaded, passes)
        return found if self.most_streams is None else max(1, min(self.most_streams, found))

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
        streams = runner.streams(len(prepared))
        groups = [part for group in (length_groups(prepared, loaded) if shared else [[p] for p in prepared])
                  for part in split_evenly(group, streams)]
        gradient = predicts_with_gradient(runner.settings)

        def passes(group: list[Prepared]) -> dict[str, list[tuple[RawScores, float]] | None]:
            padded = predict(group, gradient)
            return {name: batched_scores(name, runner.settings[name], padded) for name in job.methods}

        costs = [len(g) * int(g[-1].inputs["input_ids"].shape[1]) + PASS_TOKENS for g in groups]
        # Switched once per batch; per-text methods run after, on eager attention and the whole last layer.
        with fast_attention(loaded), first_position_only(loaded, runner.shared), real_tokens_only(loaded):
            found = run_streams(passes, groups, costs, streams)
        results: dict[str, list[tuple[RawScores, float]]] = {name: [] for name in job.methods}
        for group, done in zip(groups, found, strict=True):
            for name in job.methods:
                raws = done[name]
                if raws is None:
                    raws = per_text_scores(name, runner.settings[name], [p.context for p in group if p.context])
                results[name] += raws
        faithful: dict[int, Any] = {}
        if job.faithfulness:
            for i, item in enumerate(prepared):
                assert item.context is not None
                scores = {name: word_scores(item.context, results[name][i][0]) for name in job.methods}
                faithful[i] = evaluate_context(item.context, scores, naopc=DEFAULT_NAOPC if job.naopc else None)
        heads: dict[int, Any] = {}
        if job.heads:
            for group in groups:
                maps = contexts_head_maps([p.context for p in group if p.context], job.head_ablation)
                heads.update({id(p): m for p, m in zip(group, maps, strict=True)})
    tables = batch_tables(runner, prepared, results, faithful, failures, batch)
    in_order = sorted(prepared, key=lambda p: p.row.row)
    tables["heads"] = heads_table([(p.row.id, heads[id(p)]) for p in in_order if id(p) in heads])
    return tables


def predicts_with_gradient(settings: dict[str, MethodSettings]) -> bool:
    """Whether the prediction pass also takes the gradient at the inputs, being a method's gradient pass (so it costs
    nothing besides the method's own evaluations)."""
    return any(BATCHED[name].reads_input_gradient(s) for name, s in settings.items() if name in BATCHED)


def length_groups(prepared: list[Prepared], loaded: LoadedModel) -> list[list[Prepared]]:
    """Consecutive (length-sorted) texts grouped so that texts x longest length stays within the token budget, at the
    least work: a pass's fixed work against its padding, which costs less where layers run on real tokens only
    (`explain.corpus.batched.cheapest_spans`, `explain.corpus.packed`)."""
    hidden = int(getattr(loaded.config, "hidden_size", 768) or 768)
    lengths = [int(item.inputs["input_ids"].shape[1]) for item in prepared]
    pad_cost = PACKED_PAD_COST if packed_layers(loaded) is not None else 1.0
    spans = cheapest_spans(lengths, GROUP_TOKEN_BUDGET * 768 / hidden, PASS_TOKENS / pad_cost)
    return [prepared[a:b] for a, b in spans]


def predict(group: list[Prepared], gradient: bool) -> Padded:
    """Scores of each text in one padded pass (with `gradient`, also the gradient at the inputs); fixes each text's
    explained index and builds its context. The group's `Padded` keeps what the pass learnt for the methods."""
    contexts = []
    for item in group:
        assert item.target is not None
        target = item.target if item.target.index >= 0 else dataclasses.replace(item.target, index=0)
        contexts.append(make_context(item, target))
    padded = Padded(contexts)

    def choose(i: int, scores: torch.Tensor) -> AttributionContext:
        target = group[i].target
        assert target is not None
        return make_context(group[i], target.chosen(scores))

    scores = padded.predict(choose, gradient)
    scores_np = scores.float().cpu().numpy()
    for i, item in enumerate(group):
        item.scores = scores_np[i]
        item.context = padded.contexts[i]
    return padded


def make_context(item: Prepared, target: Target) -> AttributionContext:
    inputs = item.inputs
    return AttributionContext(target=target, input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                              special=inputs["special"], token_word=item.words.token_word, n_words=len(item.words),
                              baseline=item.request.baseline, token_type_ids=inputs.get("token_type_ids"),
                              position_ids=inputs["position_ids"])


def batched_scores(name: str, settings: MethodSettings, padded: Padded) -> list[tuple[RawScores, float]] | None:
    """(raw scores, seconds) of method `name` for every text of a group, in order, from its batched form; None where
    the method has none for these settings."""
    batched = BATCHED.get(name)
    if batched is None:
        return None
    start = time.perf_counter()
    raws = batched.compute(padded, settings)
    if raws is None:
        return None
    seconds = (time.perf_counter() - start) / max(len(raws), 1)
    return [(raw, seconds) for raw in raws]


def per_text_scores(name: str, settings: MethodSettings, contexts: Sequence[AttributionContext]
                    ) -> list[tuple[RawScores, float]]:
    """(raw scores, seconds) of method `name` text by text."""
    method = get_method(name)
    out: list[tuple[RawScores, float]] = []
    for context in contexts:
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
    texts, faith = [], []
    complete = [n for n in job.methods if get_method(n).complete]
    order = sorted(range(len(prepared)), key=lambda k: prepared[k].row.row)  # file order, not length order
    for i in order:
        item = prepared[i]
        context = item.context
        assert context is not None and item.scores is not None
        target = context.target
        found = [results[name][i][0] for name in job.methods]
        score_input = next((r.score_input for r in found if r.score_input is not None), None)
        score_baseline = next((r.score_baseline for r in found if r.score_baseline is not None), None)
        top = int(np.argmax(item.scores))
        prediction = target.labels[top] if top < len(target.labels) else str(top)
        gold = item.row.label
        texts.append({
            "text_id": item.row.id, "row": item.row.row, "text": item.row.text, "prediction": prediction,
            "prediction_score": float(item.scores[top]), "gold": gold,
            "correct": None if gold is None else gold.strip().casefold() == prediction.strip().casefold(),
            "explained": target.labels[target.index] if target.index < len(target.labels) else str(target.index),
            "explained_score": score_input, "baseline_score": score_baseline,
            "delta": delta_of(complete[0], context, results[complete[0]][i][0]) if complete else None,
            "n_tokens": context.n_tokens, "n_words": context.n_words, "truncated": item.truncated, "batch": batch,
        })
        for name in job.methods:
            if i in faithful:
                metrics = faithful[i].methods[name]
                faith.append({"text_id": item.row.id, "method": name, "comprehensiveness": metrics.comprehensiveness,
                              "sufficiency": metrics.sufficiency,
                              "naopc": None if math.isnan(metrics.naopc) else metrics.naopc,
                              "loo_spearman": None if math.isnan(metrics.loo_spearman) else metrics.loo_spearman})
    return {
        "texts": pa.Table.from_pylist(texts, schema=SCHEMAS["texts"]),
        "words": words_table(job.methods, [prepared[i] for i in order],
                             {name: [results[name][i][0] for i in order] for name in job.methods}),
        "faithfulness": pa.Table.from_pylist(faith, schema=SCHEMAS["faithfulness"]),
        "failures": failure_table(failures, batch),
    }




def words_table(methods: Sequence[str], items: Sequence[Prepared], raws: dict[str, list[RawScores]]) -> pa.Table:
    """The words rows of `items` (text, then method, then word), built as columns: each method's token scores of all
    texts are summed into their words at once (`word_sums` over the batch, adding in the same order)."""
    if not items:
        return SCHEMAS["words"].empty_table()
    contexts: list[AttributionContext] = []
    for item in items:
        assert item.context is not None
        contexts.append(item.context)
    counts = np.array([c.n_words for c in contexts], dtype=np.int64)
    starts = np.cumsum(counts) - counts
    total = int(counts.sum())
    token_word = np.concatenate([np.where(c.token_word >= 0, c.token_word + start, -1)
                                 for c, start in zip(contexts, starts)])
    keep = token_word >= 0
    sums = np.concatenate([
        np.bincount(token_word[keep], minlength=total,
                    weights=np.concatenate([token_scores(c, raw) for c, raw in zip(contexts, raws[name])])[keep])
        for name in methods])
    # Row r is text t, method m, word w (text-major); its score sits at sums[m * total + starts[t] + w].
    per_text = counts * len(methods)
    text = np.repeat(np.arange(len(items)), per_text)
    within = np.arange(int(per_text.sum())) - np.repeat(np.cumsum(per_text) - per_text, per_text)
    method, index = np.divmod(within, counts[text])
    word = starts[text] + index
    every = [w for item in items for w in item.words.words]
    return pa.table({
        "text_id": pa.array([item.row.id for item in items], pa.string()).take(text),
        "method": pa.array(list(methods), pa.string()).take(method),
        "word_index": pa.array(index, pa.int32()),
        "word": pa.array(every, pa.string()).take(word),
        "form": pa.array([normal_form(w) for w in every], pa.string()).take(word),
        "score": pa.array(sums[method * total + word], pa.float64()),
    }, schema=SCHEMAS["words"])
