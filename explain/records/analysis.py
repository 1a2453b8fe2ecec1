"""Request and result records, and their JSON form (with a schema version).

Results hold numpy arrays and plain strings only, so the same object feeds the
dashboard, the CLI, the JSON and HTML exports and the tests.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explain.errors import ExplainError, SchemaError
from explain.records.migrations import migrate
from explain.records.requests import (
    APP_VERSION,
    LEGACY_MAX_TOKENS,
    MAX_STEPS,
    MIN_STEPS,
    SCHEMA_VERSION,
    AnalysisRequest,
    TargetSpec,
    implied_integration,
)


@dataclass(frozen=True)
class ModelInfo:
    """What was loaded for a spec."""

    spec: str
    name: str
    head: str  # "classification" | "masked_lm" | "encoder"
    n_layers: int
    n_heads: int
    max_tokens: int
    targets: tuple[str, ...]  # target kinds this model can explain


@dataclass
class Tokens:
    """The tokens the model saw, with character spans into the request text.

    offsets: int32 [tokens, 2] (start, end); special tokens have (0, 0) and special=True.
    n_tokens_full: the whole text's length in tokens, special tokens included; a lower
    bound when `n_tokens_full_at_least` (a text too long to count whole).
    segments: int8 [tokens], the index in `AnalysisRequest.texts` of the text each token
    comes from (offsets point into that text), -1 for special tokens; None: one text.
    """

    tokens: list[str]
    offsets: np.ndarray
    special: np.ndarray
    truncated: bool = False
    n_tokens_full: int = 0
    n_tokens_full_at_least: bool = False
    segments: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class AttentionMaps:
    """Attention weights: float32 [layers, heads, query, key]; each row sums to 1."""

    weights: np.ndarray

    @property
    def n_layers(self) -> int:
        return int(self.weights.shape[0])

    @property
    def n_heads(self) -> int:
        return int(self.weights.shape[1])


@dataclass(frozen=True)
class Span:
    """Consecutive tokens the model marks as one unit: a named entity, or the answer to a question."""

    label: str
    first_token: int
    last_token: int
    score: float  # entities: the mean probability of their tokens' labels; answers: start + end logit


@dataclass
class Prediction:
    """The model's output for the target: one score per label, and which one is explained.

    spans: the entities (token classification) or the answer (question answering) predicted.
    independent: each label's score is its own sigmoid (multi-label heads), so several may be high at once and
    they need not sum to 1.
    """

    labels: list[str]
    scores: np.ndarray
    explained_index: int
    description: str  # e.g. "P(positive) under zero-shot labels"
    score_name: str = "probability"
    spans: tuple[Span, ...] = ()
    independent: bool = False


@dataclass
class TokenAttribution:
    """Per-token attribution of the explained score.

    Completeness: scores.sum() == score_input - score_baseline + delta.
    """

    scores: np.ndarray
    score_input: float
    score_baseline: float
    delta: float
    n_steps: int
    baseline: str
    method: str = "integrated_gradients"
    precision: str = "fp32"  # "bf16": the model's passes ran under bfloat16 autocast
    tolerance: float | None = None  # None: a fixed number of steps
    converged: bool | None = None  # adaptive runs: whether |delta| met the tolerance before the step cap
    settings: dict[str, Any] = field(default_factory=dict)  # the method's settings, as it ran
    seconds: float = math.nan  # what it cost
    signed: bool = True  # False: relevances that are never negative (attention-based methods)

    @property
    def relative_delta(self) -> float:
        """|delta| relative to the score change it should explain."""
        change = abs(self.score_input - self.score_baseline)
        return abs(self.delta) / max(change, 1e-12)


@dataclass
class Words:
    """Words of the text (tokenizer independent), with the tokens that fall in each.

    spans: int32 [words, 2]; token_word: int32 [tokens], -1 for special tokens.
    segments: int8 [words], the text (index in `AnalysisRequest.texts`) each word's span
    points into; None: one text.
    """

    words: list[str]
    spans: np.ndarray
    token_word: np.ndarray
    segments: np.ndarray | None = None

    def segment_of(self, word: int) -> int:
        return 0 if self.segments is None else int(self.segments[word])

    def __len__(self) -> int:
        return len(self.words)


@dataclass
class MethodResult:
    """One method's attribution of an analysis's explained score, on the analysis's tokens and words.

    comprehensiveness / sufficiency: ERASER AOPC (explain.evaluation.faithfulness), nan until evaluated;
    loo_spearman: rank correlation of the word scores with leave-one-word-out; aopc: comprehensiveness removing
    the words one at a time, naopc: that AOPC between the text's worst (0) and best (1) orders
    (explain.evaluation.naopc), nan until evaluated or where the limits were not computed.
    """

    attribution: TokenAttribution
    word_scores: np.ndarray
    comprehensiveness: float = math.nan
    sufficiency: float = math.nan
    loo_spearman: float = math.nan
    aopc: float = math.nan
    naopc: float = math.nan


@dataclass
class FaithfulnessSummary:
    """How the methods' faithfulness was measured, and the random-ranking floor it is read against.

    NAOPC (fields with defaults, absent from documents written before it): aopc_upper / aopc_lower, the best and
    worst orders' AOPC on the text; aopc_limits, how they were found ("exact", "beam", or "" when not computed,
    with naopc_note saying why); random_aopc / random_naopc, the random rankings' mean and spread.
    """

    bins: tuple[float, ...]
    removal: str  # "replace" (words become the baseline token) or "remove"
    random_comprehensiveness: float
    random_comprehensiveness_std: float
    random_sufficiency: float
    random_sufficiency_std: float
    n_random: int
    n_variants: int
    aopc_upper: float = math.nan
    aopc_lower: float = math.nan
    aopc_limits: str = ""
    beam_width: int = 0
    random_aopc: float = math.nan
    random_aopc_std: float = math.nan
    random_naopc: float = math.nan
    random_naopc_std: float = math.nan
    naopc_note: str = ""


# depth: where in the input representation and where in the model's depth the score comes from
EMBEDDING_PARTS = ("token", "position", "segment")


def frozen_array(value: np.ndarray, dtype: type) -> np.ndarray:
    array: np.ndarray = np.array(value, dtype=dtype)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class EmbeddingParts:
    """Integrated gradients split over the parts that BERT sums into its input representation.

    parts: names from EMBEDDING_PARTS, in that order ("segment" only when the model has token-type
    embeddings); scores: float32 [parts, tokens]. The token part starts from the request's baseline
    tokens (special tokens kept, so theirs is 0); the position and segment parts start from the mean row of
    their embedding tables (see explain.depth).
    Completeness: scores.sum() == score_input - score_baseline + delta (score_baseline: all parts at
    their baselines at once).
    """

    parts: tuple[str, ...]
    scores: np.ndarray
    score_input: float
    score_baseline: float
    delta: float
    n_steps: int
    baseline: str = "pad"
    seconds: float = math.nan

    def __post_init__(self) -> None:
        object.__setattr__(self, "parts", tuple(self.parts))
        object.__setattr__(self, "scores", frozen_array(self.scores, np.float32))


@dataclass(frozen=True, eq=False)
class LayerAttribution:
    """Layer integrated gradients at each encoder layer's output, summed over the hidden size.

    scores: float32 [layers, tokens], row l for layer l + 1; each row's path runs from that layer's
    output on the baseline input to its output on the text, so every row on its own satisfies
    scores[l].sum() == score_input - score_baseline + delta[l] (delta: float64 [layers]).
    """

    scores: np.ndarray
    delta: np.ndarray
    score_input: float
    score_baseline: float
    n_steps: int
    baseline: str = "pad"
    seconds: float = math.nan

    def __post_init__(self) -> None:
        object.__setattr__(self, "scores", frozen_array(self.scores, np.float32))
        object.__setattr__(self, "delta", frozen_array(self.delta, np.float64))


@dataclass(frozen=True, eq=False)
class EntityExplanation:
    """One predicted entity explained: its label at its first token, attributed to the analysis's words.

    label: the entity type ("PER"); token_label: the label explained at `first_token` ("B-PER");
    words: the words the entity covers; score: the entity's mean token probability;
    explained: the explained score (P(token_label) at first_token, or its logit); word_scores: float32 [words].
    """

    label: str
    token_label: str
    first_token: int
    last_token: int
    words: tuple[str, ...]
    score: float
    explained: float
    method: str
    word_scores: np.ndarray


@dataclass
class Analysis:
    """One model's full analysis of one text."""

    request: AnalysisRequest
    model: ModelInfo
    tokens: Tokens
    words: Words
    attention: AttentionMaps
    prediction: Prediction
    attribution: TokenAttribution
    word_scores: np.ndarray  # attribution summed per word, [words]
    timings: dict[str, float] = field(default_factory=dict)
    notices: tuple[str, ...] = ()  # one sentence each on how the text was read (truncation, a mask token as text)
    methods: dict[str, MethodResult] = field(default_factory=dict)  # by method name, the shown one included
    faithfulness: FaithfulnessSummary | None = None
    embedding_parts: EmbeddingParts | None = None  # depth: computed on request (explain.pipeline.with_depth)
    layer_attribution: LayerAttribution | None = None
    entities: tuple[EntityExplanation, ...] = ()  # token classification: every predicted entity explained
    schema_version: int = SCHEMA_VERSION
    app_version: str = APP_VERSION

    def to_json(self) -> str:
        return json.dumps(to_jsonable(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Analysis:
        return analysis_from_dict(parse_json(text))


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        arr = np.ascontiguousarray(value)
        return {
            "__ndarray__": base64.b64encode(arr.tobytes()).decode("ascii"),
            "dtype": arr.dtype.str,
            "shape": list(arr.shape),
        }
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    if isinstance(value, dict):  # sorted, as the store keeps documents, so a saved analysis reads back byte-equal
        return {str(k): _encode(v) for k, v in sorted(value.items(), key=lambda item: str(item[0]))}
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


OPTIONAL_KEYS = ("embedding_parts", "layer_attribution")


def to_jsonable(obj: Any) -> Any:
    """Plain JSON data for any result record; arrays become base64 with dtype and shape."""
    data = _encode(obj)
    if isinstance(obj, Analysis):  # "task": the model's head, for readers of the file (derived, not read back)
        data = {"format": "explain.analysis", "task": obj.model.head, **data}
        for key in OPTIONAL_KEYS:  # absent rather than null, so an analysis without them writes as before
            if data.get(key) is None:
                data.pop(key, None)
    return data


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise ValueError(what)


def check_consistent(a: Analysis) -> Analysis:
    """Raise ValueError when the parts of an analysis do not fit together (types, shapes, indices)."""
    n_tokens = len(a.tokens.tokens)
    n_words = len(a.words.words)
    _check(isinstance(a.request.text, str) and isinstance(a.request.model, str), "the request text or model is not text")
    _check(all(isinstance(t, str) for t in a.tokens.tokens), "tokens are not text")
    _check(all(isinstance(w, str) for w in a.words.words), "words are not text")
    _check(a.tokens.offsets.shape == (n_tokens, 2), "token offsets do not match the tokens")
    _check(a.tokens.special.shape == (n_tokens,), "the special-token flags do not match the tokens")
    w = a.attention.weights
    _check(w.ndim == 4 and w.shape[2:] == (n_tokens, n_tokens), "the attention does not match the tokens")
    _check(w.shape[:2] == (a.model.n_layers, a.model.n_heads), "the attention does not match the model's layers and heads")
    _check(a.attribution.scores.shape == (n_tokens,), "the attribution scores do not match the tokens")
    _check(a.words.spans.shape == (n_words, 2), "word spans do not match the words")
    tw = a.words.token_word
    _check(tw.shape == (n_tokens,) and (n_tokens == 0 or (tw.min() >= -1 and tw.max() < n_words)),
           "the token-to-word map does not match")
    _check(a.word_scores.shape == (n_words,), "word scores do not match the words")
    p = a.prediction
    _check(all(isinstance(label, str) for label in p.labels), "prediction labels are not text")
    _check(p.scores.shape == (len(p.labels),) and 0 <= p.explained_index < len(p.labels),
           "the prediction does not match its labels")
    _check(isinstance(p.description, str) and isinstance(a.attribution.baseline, str), "descriptions are not text")
    n_texts = len(a.request.texts)
    for name, segments, n in (("token", a.tokens.segments, n_tokens), ("word", a.words.segments, n_words)):
        _check(segments is None or (segments.shape == (n,) and (n == 0 or (segments.min() >= -1
                                                                            and segments.max() < n_texts))),
               f"the {name} segments do not match the texts")
    _check(all(0 <= s.first_token <= s.last_token < n_tokens for s in p.spans), "a predicted span is outside the text")
    _check(all(0 <= e.first_token <= e.last_token < n_tokens and e.word_scores.shape == (n_words,)
               for e in a.entities), "an explained entity does not match the tokens and words")
    return a


# -- reading: a typed schema with bounds, checked before any array is decoded ---------------------------------------

DEFAULT_MAX_LAYERS = 48  # above every BERT-family model (bert-large 24, deberta-v2-xxlarge 48)
DEFAULT_MAX_HEADS = 64  # bert-large 16, deberta-v2-xxlarge 24
DEFAULT_MAX_DOC_TOKENS = 1024  # the dashboard offers up to 512; BERT-family position tables hold 512
MAX_JSON_DEPTH = 32  # a real document nests 7 deep
MAX_COUNT = 10**6  # the largest whole number a count field (steps, token limits) may hold
# The longest list any field of a real analysis holds (labels of a masked-LM head's candidates, prompts, ...);
# lists tied to the tokens (words, spans, entities) are bounded by the token count instead.
MAX_LIST_ITEMS = 4096
MAX_NOTICES = 16
MAX_TIMINGS = 64
MAX_METHODS = 64  # attributions one analysis holds: every registered method, with room
_DAMAGED = "This analysis JSON is damaged or incomplete"
_DTYPE_PATTERN = re.compile(r"[<>|=]?[biuf][1248]")
_MISSING = object()


@dataclass(frozen=True)
class ReadLimits:
    """The largest analysis the reader accepts (from EXPLAIN_MAX_LAYERS, EXPLAIN_MAX_HEADS, EXPLAIN_MAX_DOC_TOKENS)."""

    layers: int = DEFAULT_MAX_LAYERS
    heads: int = DEFAULT_MAX_HEADS
    tokens: int = DEFAULT_MAX_DOC_TOKENS

    @classmethod
    def from_env(cls) -> ReadLimits:
        return cls(
            layers=_env_int("EXPLAIN_MAX_LAYERS", DEFAULT_MAX_LAYERS),
            heads=_env_int("EXPLAIN_MAX_HEADS", DEFAULT_MAX_HEADS),
            tokens=_env_int("EXPLAIN_MAX_DOC_TOKENS", DEFAULT_MAX_DOC_TOKENS),
        )


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise ExplainError(f"{name}={raw!r} is not a positive whole number.")
    return value


def parse_json(text: str | bytes) -> Any:
    """JSON data from text, SchemaError when it is not JSON or nests deeper than MAX_JSON_DEPTH."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SchemaError("The file is not valid JSON.") from exc
    except RecursionError as exc:
        raise SchemaError(f"The file nests deeper than the {MAX_JSON_DEPTH} levels an export has.") from exc
    check_depth(data)
    return data


def check_depth(data: Any, limit: int = MAX_JSON_DEPTH) -> None:
    """SchemaError when JSON data nests deeper than `limit` (walked without recursion)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children: Any = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > limit:
            raise SchemaError(f"The file nests deeper than the {limit} levels an export has.")
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))


def damaged(path: str, problem: str) -> SchemaError:
    """The one-sentence error for a bad field at `path`."""
    return SchemaError(f"{_DAMAGED}: {path} {problem}.")


def read_field(obj: dict, key: str, path: str, default: Any = _MISSING) -> Any:
    if key in obj:
        return obj[key]
    if default is _MISSING:
        raise damaged(_join(path, key), "is missing")
    return default


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def record_object(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise damaged(path, "must be an object")
    return value


def read_text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise damaged(path, "must be text")
    return value


def read_texts(value: Any, path: str, limit: int = MAX_LIST_ITEMS) -> list[str]:
    if not isinstance(value, list):
        raise damaged(path, "must be a list of texts")
    bounded_list(value, path, limit)
    return [read_text(item, f"{path}[{i}]") for i, item in enumerate(value)]


def bounded_list(value: list | dict, path: str, limit: int) -> None:
    """SchemaError when a list (or an object's keys) is longer than `limit`: checked before any item is read, so
    a crafted document cannot cost time in proportion to its length."""
    if len(value) > limit:
        raise damaged(path, f"holds {len(value):,} items, more than the {limit:,} an analysis can have")


def read_whole(value: Any, path: str, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise damaged(path, "must be a whole number")
    if value < low or (high is not None and value > high):
        raise damaged(path, f"must be between {low} and {high}" if high is not None else f"must be at least {low}")
    return value


def read_number(value: Any, path: str, *, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise damaged(path, "must be a number")
    if finite and not math.isfinite(value):
        raise damaged(path, "must be a finite number")
    return float(value)


def _flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise damaged(path, "must be true or false")
    return value


def _bounded(count: int, limit: int, what: str, env: str) -> None:
    if count > limit:
        raise SchemaError(f"This analysis has {count} {what}, more than the {limit} this dashboard reads ({env}).")


def read_array(value: Any, path: str, kinds: str, shape: tuple[int | None, ...],
               max_elements: int | None = None) -> np.ndarray:
    """A base64 array whose dtype kind is one of `kinds` and whose shape is `shape` (None: any length, within
    `max_elements` in all), checked before decoding."""
    obj = record_object(value, path)
    dtype_text = read_text(read_field(obj, "dtype", path), f"{path}.dtype")
    try:
        dtype = np.dtype(dtype_text) if _DTYPE_PATTERN.fullmatch(dtype_text) else None
    except TypeError:  # a pattern numpy has no type for ("f1", "b2")
        dtype = None
    if dtype is None or dtype.kind not in kinds:
        raise damaged(f"{path}.dtype", f"{dtype_text[:20]!r} is not a supported number type")
    declared = read_field(obj, "shape", path)
    if not isinstance(declared, list) or len(declared) != len(shape):
        raise damaged(f"{path}.shape", f"must have {len(shape)} dimensions")
    dims = [read_whole(n, f"{path}.shape[{i}]", 0, MAX_COUNT) for i, n in enumerate(declared)]
    if any(want is not None and got != want for got, want in zip(dims, shape)):
        raise damaged(f"{path}.shape", f"must be {[d if d is not None else 'n' for d in shape]}")
    if max_elements is not None and math.prod(dims) > max_elements:
        raise damaged(f"{path}.shape", f"holds more than {max_elements:,} numbers")
    encoded = read_text(read_field(obj, "__ndarray__", path), f"{path}.__ndarray__")
    n_bytes = math.prod(dims) * dtype.itemsize
    if len(encoded) != 4 * math.ceil(n_bytes / 3):
        raise damaged(path, f"holds {len(encoded) * 3 // 4} bytes where its shape needs {n_bytes}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise damaged(f"{path}.__ndarray__", "is not base64") from exc
    if len(raw) != n_bytes:
        raise damaged(path, f"holds {len(raw)} bytes where its shape needs {n_bytes}")
    return np.frombuffer(raw, dtype=dtype).reshape(dims).copy()


def _target(value: Any, path: str) -> TargetSpec | None:
    if value is None:
        return None
    obj = record_object(value, path)
    return TargetSpec(
        kind=read_text(read_field(obj, "kind", path), f"{path}.kind"),
        label=read_text(read_field(obj, "label", path, ""), f"{path}.label"),
        labels=tuple(read_texts(read_field(obj, "labels", path, []), f"{path}.labels")),
        prompts=tuple(read_texts(read_field(obj, "prompts", path, []), f"{path}.prompts")),
        reference=read_text(read_field(obj, "reference", path, ""), f"{path}.reference"),
        token=read_whole(read_field(obj, "token", path, -1), f"{path}.token", -1, MAX_COUNT),
        part=read_text(read_field(obj, "part", path, ""), f"{path}.part"),
        logit=_flag(read_field(obj, "logit", path, False), f"{path}.logit"),
    )


def _optional_array(value: Any, path: str, kinds: str, shape: tuple[int, ...]) -> np.ndarray | None:
    return None if value is None else read_array(value, path, kinds, shape)


def _spans(value: Any, path: str, n_tokens: int) -> tuple[Span, ...]:
    if not isinstance(value, list):
        raise damaged(path, "is not a list")
    bounded_list(value, path, n_tokens)
    spans = []
    for i, item in enumerate(value):
        at = f"{path}[{i}]"
        obj = record_object(item, at)
        first = read_whole(read_field(obj, "first_token", at), f"{at}.first_token", 0, max(0, n_tokens - 1))
        last = read_whole(read_field(obj, "last_token", at), f"{at}.last_token", first, max(0, n_tokens - 1))
        spans.append(Span(label=read_text(read_field(obj, "label", at), f"{at}.label"), first_token=first, last_token=last,
                          score=read_number(read_field(obj, "score", at), f"{at}.score")))
    return tuple(spans)


def _entities(value: Any, path: str, n_tokens: int, n_words: int) -> tuple[EntityExplanation, ...]:
    if not isinstance(value, list):
        raise damaged(path, "is not a list")
    bounded_list(value, path, n_tokens)
    out = []
    for i, item in enumerate(value):
        at = f"{path}[{i}]"
        obj = record_object(item, at)
        first = read_whole(read_field(obj, "first_token", at), f"{at}.first_token", 0, max(0, n_tokens - 1))
        out.append(EntityExplanation(
            label=read_text(read_field(obj, "label", at), f"{at}.label"),
            token_label=read_text(read_field(obj, "token_label", at), f"{at}.token_label"),
            first_token=first,
            last_token=read_whole(read_field(obj, "last_token", at), f"{at}.last_token", first, max(0, n_tokens - 1)),
            words=tuple(read_texts(read_field(obj, "words", at), f"{at}.words", n_words)),
            score=read_number(read_field(obj, "score", at), f"{at}.score", finite=False),
            explained=read_number(read_field(obj, "explained", at), f"{at}.explained", finite=False),
            method=read_text(read_field(obj, "method", at), f"{at}.method"),
            word_scores=read_array(read_field(obj, "word_scores", at), f"{at}.word_scores", "f", (n_words,)),
        ))
    return tuple(out)


def _optional_number(obj: dict, key: str, path: str) -> float | None:
    value = read_field(obj, key, path, None)
    return None if value is None else read_number(value, _join(path, key))


def request_from_dict(data: Any, path: str = "request") -> AnalysisRequest:
    """A request from its JSON form; one without `integration` ran the rule its tolerance implied then."""
    obj = record_object(data, path)
    tolerance = _optional_number(obj, "tolerance", path)
    return AnalysisRequest(
        text=read_text(read_field(obj, "text", path), f"{path}.text"),
        model=read_text(read_field(obj, "model", path), f"{path}.model"),
        target=_target(read_field(obj, "target", path, None), f"{path}.target"),
        n_steps=read_whole(read_field(obj, "n_steps", path), f"{path}.n_steps", MIN_STEPS, MAX_STEPS),
        baseline=read_text(read_field(obj, "baseline", path), f"{path}.baseline"),
        max_tokens=read_whole(read_field(obj, "max_tokens", path, LEGACY_MAX_TOKENS), f"{path}.max_tokens", 1, MAX_COUNT),
        tolerance=tolerance,
        precision=read_text(read_field(obj, "precision", path, "fp32"), f"{path}.precision"),
        method=read_text(read_field(obj, "method", path, "integrated_gradients"), f"{path}.method"),
        method_settings=_setting_pairs(read_field(obj, "method_settings", path, []), f"{path}.method_settings"),
        pair=read_text(read_field(obj, "pair", path, ""), f"{path}.pair"),
        question=read_text(read_field(obj, "question", path, ""), f"{path}.question"),
        ablate=read_text(read_field(obj, "ablate", path, ""), f"{path}.ablate"),
        ablate_mode=read_text(read_field(obj, "ablate_mode", path, "zero"), f"{path}.ablate_mode"),
        integration=read_text(read_field(obj, "integration", path, implied_integration(tolerance)), f"{path}.integration"),
        delta_tolerance=_optional_number(obj, "delta_tolerance", path),
    )


def _setting_pairs(value: Any, path: str) -> tuple[tuple[str, str], ...]:
    """A request's method settings: [[name, value], ...] as written (an object is read too)."""
    items: list[Any] = list(record_object(value, path).items()) if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise damaged(path, "is not a list of [name, value] pairs")
    bounded_list(items, path, MAX_LIST_ITEMS)
    pairs = []
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise damaged(path, "is not a list of [name, value] pairs")
        pairs.append((read_text(item[0], path), read_text(item[1], f"{path}.{item[0]}")))
    return tuple(sorted(pairs))


def _settings(value: Any, path: str) -> dict[str, Any]:
    """A method's settings as it ran: names to numbers, text or flags."""
    out: dict[str, Any] = {}
    for key, item in record_object(value, path).items():
        if isinstance(item, bool) or isinstance(item, str):
            out[key] = item
        elif isinstance(item, int):
            out[key] = read_whole(item, _join(path, key), -MAX_COUNT, MAX_COUNT)
        else:
            out[key] = read_number(item, _join(path, key))
    return out


def _token_attribution(value: Any, path: str, n_tokens: int) -> TokenAttribution:
    a = record_object(value, path)
    converged = read_field(a, "converged", path, None)
    seconds = read_field(a, "seconds", path, None)
    return TokenAttribution(
        scores=read_array(read_field(a, "scores", path), f"{path}.scores", "f", (n_tokens,)),
        # A model can output NaN or an infinity; the record keeps what it computed.
        score_input=read_number(read_field(a, "score_input", path), f"{path}.score_input", finite=False),
        score_baseline=read_number(read_field(a, "score_baseline", path), f"{path}.score_baseline", finite=False),
        delta=read_number(read_field(a, "delta", path), f"{path}.delta", finite=False),
        n_steps=read_whole(read_field(a, "n_steps", path), f"{path}.n_steps", 0, MAX_COUNT),
        baseline=read_text(read_field(a, "baseline", path), f"{path}.baseline"),
        method=read_text(read_field(a, "method", path, "integrated_gradients"), f"{path}.method"),
        precision=read_text(read_field(a, "precision", path, "fp32"), f"{path}.precision"),
        tolerance=_optional_number(a, "tolerance", path),
        converged=None if converged is None else _flag(converged, f"{path}.converged"),
        settings=_settings(read_field(a, "settings", path, {}), f"{path}.settings"),
        seconds=math.nan if seconds is None else read_number(seconds, f"{path}.seconds", finite=False),
        signed=_flag(read_field(a, "signed", path, True), f"{path}.signed"),
    )


def _optional_float(obj: dict, key: str, path: str) -> float:
    value = read_field(obj, key, path, None)
    return math.nan if value is None else read_number(value, _join(path, key), finite=False)


def _method_results(value: Any, path: str, n_tokens: int, n_words: int) -> dict[str, MethodResult]:
    out: dict[str, MethodResult] = {}
    methods = record_object(value, path)
    bounded_list(methods, path, MAX_METHODS)
    for name, item in methods.items():
        where = _join(path, name)
        obj = record_object(item, where)
        out[name] = MethodResult(
            attribution=_token_attribution(read_field(obj, "attribution", where), f"{where}.attribution", n_tokens),
            word_scores=read_array(read_field(obj, "word_scores", where), f"{where}.word_scores", "f", (n_words,)),
            comprehensiveness=_optional_float(obj, "comprehensiveness", where),
            sufficiency=_optional_float(obj, "sufficiency", where),
            loo_spearman=_optional_float(obj, "loo_spearman", where),
            aopc=_optional_float(obj, "aopc", where),
            naopc=_optional_float(obj, "naopc", where),
        )
    return out


def _faithfulness(value: Any, path: str) -> FaithfulnessSummary | None:
    if value is None:
        return None
    f = record_object(value, path)
    bins = read_field(f, "bins", path)
    if not isinstance(bins, list) or not bins:
        raise damaged(f"{path}.bins", "is not a list of numbers")
    return FaithfulnessSummary(
        bins=tuple(read_number(b, f"{path}.bins") for b in bins),
        removal=read_text(read_field(f, "removal", path), f"{path}.removal"),
        random_comprehensiveness=read_number(read_field(f, "random_comprehensiveness", path), f"{path}.random_comprehensiveness",
                                         finite=False),
        random_comprehensiveness_std=read_number(read_field(f, "random_comprehensiveness_std", path),
                                             f"{path}.random_comprehensiveness_std", finite=False),
        random_sufficiency=read_number(read_field(f, "random_sufficiency", path), f"{path}.random_sufficiency", finite=False),
        random_sufficiency_std=read_number(read_field(f, "random_sufficiency_std", path), f"{path}.random_sufficiency_std",
                                       finite=False),
        n_random=read_whole(read_field(f, "n_random", path), f"{path}.n_random", 0, MAX_COUNT),
        n_variants=read_whole(read_field(f, "n_variants", path), f"{path}.n_variants", 0, MAX_COUNT),
        aopc_upper=_optional_float(f, "aopc_upper", path),
        aopc_lower=_optional_float(f, "aopc_lower", path),
        aopc_limits=_aopc_search(read_field(f, "aopc_limits", path, ""), f"{path}.aopc_limits"),
        beam_width=read_whole(read_field(f, "beam_width", path, 0), f"{path}.beam_width", 0, MAX_COUNT),
        random_aopc=_optional_float(f, "random_aopc", path),
        random_aopc_std=_optional_float(f, "random_aopc_std", path),
        random_naopc=_optional_float(f, "random_naopc", path),
        random_naopc_std=_optional_float(f, "random_naopc_std", path),
        naopc_note=read_text(read_field(f, "naopc_note", path, ""), f"{path}.naopc_note"),
    )


def _aopc_search(value: Any, path: str) -> str:
    search = read_text(value, path)
    if search not in ("", "exact", "beam"):
        raise damaged(path, "must be exact, beam or empty")
    return search


def _embedding_parts(value: Any, path: str, n_tokens: int) -> EmbeddingParts | None:
    if value is None:
        return None
    obj = record_object(value, path)
    parts = tuple(read_texts(read_field(obj, "parts", path), f"{path}.parts"))
    if not parts or len(set(parts)) != len(parts) or not set(parts) <= set(EMBEDDING_PARTS):
        raise damaged(f"{path}.parts", f"must be distinct names from {', '.join(EMBEDDING_PARTS)}")
    seconds = read_field(obj, "seconds", path, None)
    return EmbeddingParts(
        parts=parts,
        scores=read_array(read_field(obj, "scores", path), f"{path}.scores", "f", (len(parts), n_tokens)),
        score_input=read_number(read_field(obj, "score_input", path), f"{path}.score_input", finite=False),
        score_baseline=read_number(read_field(obj, "score_baseline", path), f"{path}.score_baseline", finite=False),
        delta=read_number(read_field(obj, "delta", path), f"{path}.delta", finite=False),
        n_steps=read_whole(read_field(obj, "n_steps", path), f"{path}.n_steps", 0, MAX_COUNT),
        baseline=read_text(read_field(obj, "baseline", path, "pad"), f"{path}.baseline"),
        seconds=math.nan if seconds is None else read_number(seconds, f"{path}.seconds", finite=False),
    )


def _layer_attribution(value: Any, path: str, n_layers: int, n_tokens: int) -> LayerAttribution | None:
    if value is None:
        return None
    obj = record_object(value, path)
    seconds = read_field(obj, "seconds", path, None)
    return LayerAttribution(
        scores=read_array(read_field(obj, "scores", path), f"{path}.scores", "f", (n_layers, n_tokens)),
        delta=read_array(read_field(obj, "delta", path), f"{path}.delta", "f", (n_layers,)),
        score_input=read_number(read_field(obj, "score_input", path), f"{path}.score_input", finite=False),
        score_baseline=read_number(read_field(obj, "score_baseline", path), f"{path}.score_baseline", finite=False),
        n_steps=read_whole(read_field(obj, "n_steps", path), f"{path}.n_steps", 0, MAX_COUNT),
        baseline=read_text(read_field(obj, "baseline", path, "pad"), f"{path}.baseline"),
        seconds=math.nan if seconds is None else read_number(seconds, f"{path}.seconds", finite=False),
    )


def _model(data: Any, path: str, limits: ReadLimits) -> ModelInfo:
    m = record_object(data, path)
    n_layers = read_whole(read_field(m, "n_layers", path), f"{path}.n_layers", 1)
    n_heads = read_whole(read_field(m, "n_heads", path), f"{path}.n_heads", 1)
    _bounded(n_layers, limits.layers, "layers", "EXPLAIN_MAX_LAYERS")
    _bounded(n_heads, limits.heads, "heads", "EXPLAIN_MAX_HEADS")
    return ModelInfo(
        spec=read_text(read_field(m, "spec", path), f"{path}.spec"),
        name=read_text(read_field(m, "name", path), f"{path}.name"),
        head=read_text(read_field(m, "head", path), f"{path}.head"),
        n_layers=n_layers,
        n_heads=n_heads,
        max_tokens=read_whole(read_field(m, "max_tokens", path), f"{path}.max_tokens", 1, MAX_COUNT),
        targets=tuple(read_texts(read_field(m, "targets", path), f"{path}.targets")),
    )


def analysis_from_dict(data: Any, path: str = "", limits: ReadLimits | None = None) -> Analysis:
    """Rebuild an Analysis from `to_jsonable` output; SchemaError naming the field on anything else.

    Every field's type is checked, and layers, heads and tokens against `limits` (default: from the
    environment) before any array is decoded. `path` prefixes the field names in messages.
    """
    limits = limits or ReadLimits.from_env()
    if not isinstance(data, dict) or data.get("format") != "explain.analysis":
        raise SchemaError("This JSON is not an analysis exported by this dashboard.")
    data = migrate(data)
    version = data.get("schema_version")
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        raise SchemaError(
            f"This analysis has schema version {version!r}; this dashboard reads version {SCHEMA_VERSION}."
        )

    def at(key: str) -> str:
        return _join(path, key)

    def part(key: str) -> dict:
        return record_object(read_field(data, key, path), at(key))

    request = request_from_dict(read_field(data, "request", path), at("request"))
    model = _model(read_field(data, "model", path), at("model"), limits)
    t, w, p, a = part("tokens"), part("words"), part("prediction"), part("attribution")
    tokens = read_texts(read_field(t, "tokens", at("tokens")), at("tokens.tokens"))
    if not tokens:
        raise damaged(at("tokens.tokens"), "is empty")
    _bounded(len(tokens), limits.tokens, "tokens", "EXPLAIN_MAX_DOC_TOKENS")
    n_tokens = len(tokens)
    words = read_texts(read_field(w, "words", at("words")), at("words.words"), n_tokens)
    labels = read_texts(read_field(p, "labels", at("prediction")), at("prediction.labels"))
    n_words, n_labels = len(words), len(labels)
    weights = read_field(part("attention"), "weights", at("attention"))
    timings = record_object(read_field(data, "timings", path, {}), at("timings"))
    bounded_list(timings, at("timings"), MAX_TIMINGS)
    analysis = Analysis(
        request=request,
        model=model,
        tokens=Tokens(
            tokens=tokens,
            offsets=read_array(read_field(t, "offsets", at("tokens")), at("tokens.offsets"), "iu", (n_tokens, 2)),
            special=read_array(read_field(t, "special", at("tokens")), at("tokens.special"), "biu", (n_tokens,)),
            truncated=_flag(read_field(t, "truncated", at("tokens")), at("tokens.truncated")),
            n_tokens_full=read_whole(read_field(t, "n_tokens_full", at("tokens")), at("tokens.n_tokens_full"), 0, MAX_COUNT),
            n_tokens_full_at_least=_flag(read_field(t, "n_tokens_full_at_least", at("tokens"), False),
                                         at("tokens.n_tokens_full_at_least")),
            segments=_optional_array(read_field(t, "segments", at("tokens"), None), at("tokens.segments"), "i",
                                     (n_tokens,)),
        ),
        words=Words(
            words=words,
            spans=read_array(read_field(w, "spans", at("words")), at("words.spans"), "iu", (n_words, 2)),
            token_word=read_array(read_field(w, "token_word", at("words")), at("words.token_word"), "i", (n_tokens,)),
            segments=_optional_array(read_field(w, "segments", at("words"), None), at("words.segments"), "i", (n_words,)),
        ),
        attention=AttentionMaps(weights=read_array(weights, at("attention.weights"), "f",
                                               (model.n_layers, model.n_heads, n_tokens, n_tokens))),
        prediction=Prediction(
            labels=labels,
            scores=read_array(read_field(p, "scores", at("prediction")), at("prediction.scores"), "f", (n_labels,)),
            explained_index=read_whole(read_field(p, "explained_index", at("prediction")), at("prediction.explained_index"),
                                   0, max(0, n_labels - 1)),
            description=read_text(read_field(p, "description", at("prediction")), at("prediction.description")),
            score_name=read_text(read_field(p, "score_name", at("prediction"), "probability"), at("prediction.score_name")),
            spans=_spans(read_field(p, "spans", at("prediction"), []), at("prediction.spans"), n_tokens),
            independent=_flag(read_field(p, "independent", at("prediction"), False), at("prediction.independent")),
        ),
        attribution=_token_attribution(a, at("attribution"), n_tokens),
        word_scores=read_array(read_field(data, "word_scores", path), at("word_scores"), "f", (n_words,)),
        timings={read_text(k, at("timings")): read_number(v, at(f"timings.{k}")) for k, v in timings.items()},
        notices=tuple(read_texts(read_field(data, "notices", path, []), at("notices"), MAX_NOTICES)),
        methods=_method_results(read_field(data, "methods", path, {}), at("methods"), n_tokens, n_words),
        faithfulness=_faithfulness(read_field(data, "faithfulness", path, None), at("faithfulness")),
        embedding_parts=_embedding_parts(read_field(data, "embedding_parts", path, None), at("embedding_parts"), n_tokens),
        layer_attribution=_layer_attribution(read_field(data, "layer_attribution", path, None), at("layer_attribution"),
                                             model.n_layers, n_tokens),
        entities=_entities(read_field(data, "entities", path, []), at("entities"), n_tokens, n_words),
        schema_version=version,
        app_version=read_text(read_field(data, "app_version", path, ""), at("app_version")),
    )
    try:
        return check_consistent(analysis)
    except ValueError as exc:
        raise SchemaError(f"{_DAMAGED} ({exc}).") from exc
