"""Request and result records, and their JSON form (with a schema version).

Results hold numpy arrays and plain strings only, so the same object feeds the
dashboard, the CLI, the JSON and HTML exports and the tests.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import html
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explain.errors import ExplainError, SchemaError

SCHEMA_VERSION = 3
# v1 -> v2: requests name their attribution method and its settings; an analysis holds several methods'
# attributions (`methods`) and their faithfulness. v2 -> v3: requests name integrated gradients' quadrature
# rule (`integration`), whose default became adaptive. `migrate` upgrades older documents as they are read.
APP_VERSION = "0.1.0"

BASELINES = ("pad", "mask", "zero")
MIN_STEPS, MAX_STEPS = 1, 1000
DEFAULT_STEPS = 50
# Adaptive Simpson also refines until |delta| is within this share of the score change (None: tokens only, as
# requests stored before the check existed decode, so they reopen with the same numbers).
DEFAULT_DELTA_TOLERANCE = 0.05
# Integrated gradients' quadrature rules (explain.attribution): fixed Gauss-Legendre steps, nested Clenshaw-Curtis
# levels stopping on the convergence delta, adaptive Simpson panels stopping on the attribution vector's error.
INTEGRATIONS = ("adaptive_simpson", "gauss_legendre", "clenshaw_curtis")
DEFAULT_INTEGRATION = "adaptive_simpson"
FIXED_INTEGRATION = "gauss_legendre"
# The token limit of a request that names none: the library, the CLI and the dashboard share it.
DEFAULT_MAX_TOKENS = 128
# The limit analyses saved before requests recorded theirs were computed with.
LEGACY_MAX_TOKENS = 512


@dataclass(frozen=True)
class TargetSpec:
    """What scalar output is explained.

    kind: "class" (a class probability of a classification head),
    "masked_token" (probability of `label` at the first [MASK]),
    "zero_shot" (probability of `label` among `labels`, from cosine similarity
    of the mean-pooled embedding to each of `prompts`), or "similarity"
    (cosine similarity of the mean-pooled embedding to `reference`), and the kinds of
    newer heads: "next_sentence", "token_class" (`label` at token `token`) and "answer"
    (`part` "start", "end" or "span" of an extractive answer). `explain.targets.TARGETS`
    declares each kind and the fields it reads.
    An empty `label` (and a `token` of -1) means the model's top prediction.
    logit: explain the raw logit rather than the probability.
    """

    kind: str
    label: str = ""
    labels: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    reference: str = ""
    token: int = -1
    part: str = ""
    logit: bool = False


@dataclass(frozen=True)
class AnalysisRequest:
    """Everything needed to reproduce an analysis. `target=None` takes the model's default."""

    text: str
    model: str = "minilm"
    target: TargetSpec | None = None
    n_steps: int = DEFAULT_STEPS
    baseline: str = "pad"
    max_tokens: int = DEFAULT_MAX_TOKENS
    # Integrated gradients: `integration` is the quadrature rule. "adaptive_simpson" (the default) makes at most
    # n_steps model evaluations, stopping when the attribution vector's estimated error is within `tolerance`
    # (None: explain.attribution.SIMPSON_TOLERANCE) of its largest entry; "gauss_legendre" runs n_steps fixed
    # steps (no tolerance); "clenshaw_curtis" makes at most n_steps until |delta| <= tolerance * |score change|.
    # precision "bf16" runs the model under bfloat16 autocast.
    tolerance: float | None = None
    precision: str = "fp32"
    # The attribution method shown (a name in explain.methods.METHODS), and methods' settings other than the
    # integrated-gradients ones above as sorted ("method.setting", value) text pairs (hashable: requests key caches).
    method: str = "integrated_gradients"
    method_settings: tuple[tuple[str, str], ...] = ()
    # A second text: `pair` follows `text` in one input (sentence pairs, next-sentence prediction);
    # `question` is asked about `text`, the context (question answering: the question is encoded first).
    pair: str = ""
    question: str = ""
    # Heads knocked out for the whole analysis (explain.heads.HeadSet text, e.g. "0:1,2:*"; empty: none), and
    # what a removed head outputs: "zero", or "mean" (its mean output over the text, from the full model).
    ablate: str = ""
    ablate_mode: str = "zero"
    integration: str = DEFAULT_INTEGRATION
    delta_tolerance: float | None = DEFAULT_DELTA_TOLERANCE

    @property
    def texts(self) -> tuple[str, ...]:
        """The texts in the order the model reads them; token and word segments index into this."""
        return texts_in_order(self.text, self.pair, self.question)


def texts_in_order(text: str, pair: str = "", question: str = "") -> tuple[str, ...]:
    """The texts as the model reads them: (question, context) for question answering, (text, pair) for pairs."""
    if question:
        return (question, text)
    return (text, pair) if pair else (text,)


def implied_integration(tolerance: float | None) -> str:
    """The quadrature rule a request written before `integration` existed ran: fixed steps without a tolerance,
    nested Clenshaw-Curtis levels with one."""
    return FIXED_INTEGRATION if tolerance is None else "clenshaw_curtis"


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
    loo_spearman: rank correlation of the word scores with leave-one-word-out.
    """

    attribution: TokenAttribution
    word_scores: np.ndarray
    comprehensiveness: float = math.nan
    sufficiency: float = math.nan
    loo_spearman: float = math.nan


@dataclass
class FaithfulnessSummary:
    """How the methods' faithfulness was measured, and the random-ranking floor it is read against."""

    bins: tuple[float, ...]
    removal: str  # "replace" (words become the baseline token) or "remove"
    random_comprehensiveness: float
    random_comprehensiveness_std: float
    random_sufficiency: float
    random_sufficiency_std: float
    n_random: int
    n_variants: int


# depth: where in the input representation and where in the model's depth the score comes from
EMBEDDING_PARTS = ("token", "position", "segment")


def _frozen_array(value: np.ndarray, dtype: type) -> np.ndarray:
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
        object.__setattr__(self, "scores", _frozen_array(self.scores, np.float32))


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
        object.__setattr__(self, "scores", _frozen_array(self.scores, np.float32))
        object.__setattr__(self, "delta", _frozen_array(self.delta, np.float64))


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

    def _repr_html_(self) -> str:
        """How Jupyter shows an analysis that ends a cell: the standalone report (highlights and figures, offline)
        in a frame of its own, so its styles and plotly.js stay out of the notebook; then each method's row when
        the analysis holds several."""
        from explain.report import standalone_html  # here: the report module builds on this one

        frame = (f'<iframe srcdoc="{html.escape(standalone_html(self), quote=True)}" style="width:100%;height:900px;'
                 'border:1px solid #e4e7eb;" onload="this.style.height=(this.contentWindow.document.body'
                 '.scrollHeight+40)+\'px\'"></iframe>')
        if len(self.methods) < 2:
            return frame
        from explain.method_figures import method_rows, methods_highlights_html

        return frame + methods_highlights_html(self.words.words, method_rows(self))


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


def _damaged(path: str, problem: str) -> SchemaError:
    return SchemaError(f"{_DAMAGED}: {path} {problem}.")


def _get(obj: dict, key: str, path: str, default: Any = _MISSING) -> Any:
    if key in obj:
        return obj[key]
    if default is _MISSING:
        raise _damaged(_join(path, key), "is missing")
    return default


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _object(value: Any, path: str) -> dict:
    if not isinstance(value, dict):
        raise _damaged(path, "must be an object")
    return value


def _text(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise _damaged(path, "must be text")
    return value


def _texts(value: Any, path: str) -> list[str]:
    if not isinstance(value, list):
        raise _damaged(path, "must be a list of texts")
    return [_text(item, f"{path}[{i}]") for i, item in enumerate(value)]


def _whole(value: Any, path: str, low: int = 0, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _damaged(path, "must be a whole number")
    if value < low or (high is not None and value > high):
        raise _damaged(path, f"must be between {low} and {high}" if high is not None else f"must be at least {low}")
    return value


def _number(value: Any, path: str, *, finite: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _damaged(path, "must be a number")
    if finite and not math.isfinite(value):
        raise _damaged(path, "must be a finite number")
    return float(value)


def _flag(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _damaged(path, "must be true or false")
    return value


def _bounded(count: int, limit: int, what: str, env: str) -> None:
    if count > limit:
        raise SchemaError(f"This analysis has {count} {what}, more than the {limit} this dashboard reads ({env}).")


def _array(value: Any, path: str, kinds: str, shape: tuple[int, ...]) -> np.ndarray:
    """A base64 array whose dtype kind is one of `kinds` and whose shape is exactly `shape`, checked before decoding."""
    obj = _object(value, path)
    dtype_text = _text(_get(obj, "dtype", path), f"{path}.dtype")
    if not _DTYPE_PATTERN.fullmatch(dtype_text) or np.dtype(dtype_text).kind not in kinds:
        raise _damaged(f"{path}.dtype", f"{dtype_text[:20]!r} is not a supported number type")
    dtype = np.dtype(dtype_text)
    declared = _get(obj, "shape", path)
    if not isinstance(declared, list) or [_whole(n, f"{path}.shape[{i}]") for i, n in enumerate(declared)] != list(shape):
        raise _damaged(f"{path}.shape", f"must be {list(shape)}")
    encoded = _text(_get(obj, "__ndarray__", path), f"{path}.__ndarray__")
    n_bytes = math.prod(shape) * dtype.itemsize
    if len(encoded) != 4 * math.ceil(n_bytes / 3):
        raise _damaged(path, f"holds {len(encoded) * 3 // 4} bytes where its shape needs {n_bytes}")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _damaged(f"{path}.__ndarray__", "is not base64") from exc
    if len(raw) != n_bytes:
        raise _damaged(path, f"holds {len(raw)} bytes where its shape needs {n_bytes}")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _target(value: Any, path: str) -> TargetSpec | None:
    if value is None:
        return None
    obj = _object(value, path)
    return TargetSpec(
        kind=_text(_get(obj, "kind", path), f"{path}.kind"),
        label=_text(_get(obj, "label", path, ""), f"{path}.label"),
        labels=tuple(_texts(_get(obj, "labels", path, []), f"{path}.labels")),
        prompts=tuple(_texts(_get(obj, "prompts", path, []), f"{path}.prompts")),
        reference=_text(_get(obj, "reference", path, ""), f"{path}.reference"),
        token=_whole(_get(obj, "token", path, -1), f"{path}.token", -1, MAX_COUNT),
        part=_text(_get(obj, "part", path, ""), f"{path}.part"),
        logit=_flag(_get(obj, "logit", path, False), f"{path}.logit"),
    )


def _optional_array(value: Any, path: str, kinds: str, shape: tuple[int, ...]) -> np.ndarray | None:
    return None if value is None else _array(value, path, kinds, shape)


def _spans(value: Any, path: str, n_tokens: int) -> tuple[Span, ...]:
    if not isinstance(value, list):
        raise _damaged(path, "is not a list")
    spans = []
    for i, item in enumerate(value):
        at = f"{path}[{i}]"
        obj = _object(item, at)
        first = _whole(_get(obj, "first_token", at), f"{at}.first_token", 0, max(0, n_tokens - 1))
        last = _whole(_get(obj, "last_token", at), f"{at}.last_token", first, max(0, n_tokens - 1))
        spans.append(Span(label=_text(_get(obj, "label", at), f"{at}.label"), first_token=first, last_token=last,
                          score=_number(_get(obj, "score", at), f"{at}.score")))
    return tuple(spans)


def _entities(value: Any, path: str, n_tokens: int, n_words: int) -> tuple[EntityExplanation, ...]:
    if not isinstance(value, list):
        raise _damaged(path, "is not a list")
    out = []
    for i, item in enumerate(value):
        at = f"{path}[{i}]"
        obj = _object(item, at)
        first = _whole(_get(obj, "first_token", at), f"{at}.first_token", 0, max(0, n_tokens - 1))
        out.append(EntityExplanation(
            label=_text(_get(obj, "label", at), f"{at}.label"),
            token_label=_text(_get(obj, "token_label", at), f"{at}.token_label"),
            first_token=first,
            last_token=_whole(_get(obj, "last_token", at), f"{at}.last_token", first, max(0, n_tokens - 1)),
            words=tuple(_texts(_get(obj, "words", at), f"{at}.words")),
            score=_number(_get(obj, "score", at), f"{at}.score", finite=False),
            explained=_number(_get(obj, "explained", at), f"{at}.explained", finite=False),
            method=_text(_get(obj, "method", at), f"{at}.method"),
            word_scores=_array(_get(obj, "word_scores", at), f"{at}.word_scores", "f", (n_words,)),
        ))
    return tuple(out)


def _optional_number(obj: dict, key: str, path: str) -> float | None:
    value = _get(obj, key, path, None)
    return None if value is None else _number(value, _join(path, key))


def request_from_dict(data: Any, path: str = "request") -> AnalysisRequest:
    """A request from its JSON form; one without `integration` ran the rule its tolerance implied then."""
    obj = _object(data, path)
    tolerance = _optional_number(obj, "tolerance", path)
    return AnalysisRequest(
        text=_text(_get(obj, "text", path), f"{path}.text"),
        model=_text(_get(obj, "model", path), f"{path}.model"),
        target=_target(_get(obj, "target", path, None), f"{path}.target"),
        n_steps=_whole(_get(obj, "n_steps", path), f"{path}.n_steps", MIN_STEPS, MAX_STEPS),
        baseline=_text(_get(obj, "baseline", path), f"{path}.baseline"),
        max_tokens=_whole(_get(obj, "max_tokens", path, LEGACY_MAX_TOKENS), f"{path}.max_tokens", 1, MAX_COUNT),
        tolerance=tolerance,
        precision=_text(_get(obj, "precision", path, "fp32"), f"{path}.precision"),
        method=_text(_get(obj, "method", path, "integrated_gradients"), f"{path}.method"),
        method_settings=_setting_pairs(_get(obj, "method_settings", path, []), f"{path}.method_settings"),
        pair=_text(_get(obj, "pair", path, ""), f"{path}.pair"),
        question=_text(_get(obj, "question", path, ""), f"{path}.question"),
        ablate=_text(_get(obj, "ablate", path, ""), f"{path}.ablate"),
        ablate_mode=_text(_get(obj, "ablate_mode", path, "zero"), f"{path}.ablate_mode"),
        integration=_text(_get(obj, "integration", path, implied_integration(tolerance)), f"{path}.integration"),
        delta_tolerance=_optional_number(obj, "delta_tolerance", path),
    )


def _setting_pairs(value: Any, path: str) -> tuple[tuple[str, str], ...]:
    """A request's method settings: [[name, value], ...] as written (an object is read too)."""
    items: list[Any] = list(_object(value, path).items()) if isinstance(value, dict) else value
    if not isinstance(items, list):
        raise _damaged(path, "is not a list of [name, value] pairs")
    pairs = []
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise _damaged(path, "is not a list of [name, value] pairs")
        pairs.append((_text(item[0], path), _text(item[1], f"{path}.{item[0]}")))
    return tuple(sorted(pairs))


def _settings(value: Any, path: str) -> dict[str, Any]:
    """A method's settings as it ran: names to numbers, text or flags."""
    out: dict[str, Any] = {}
    for key, item in _object(value, path).items():
        if isinstance(item, bool) or isinstance(item, str):
            out[key] = item
        elif isinstance(item, int):
            out[key] = _whole(item, _join(path, key), -MAX_COUNT, MAX_COUNT)
        else:
            out[key] = _number(item, _join(path, key))
    return out


def _token_attribution(value: Any, path: str, n_tokens: int) -> TokenAttribution:
    a = _object(value, path)
    converged = _get(a, "converged", path, None)
    seconds = _get(a, "seconds", path, None)
    return TokenAttribution(
        scores=_array(_get(a, "scores", path), f"{path}.scores", "f", (n_tokens,)),
        # A model can output NaN or an infinity; the record keeps what it computed.
        score_input=_number(_get(a, "score_input", path), f"{path}.score_input", finite=False),
        score_baseline=_number(_get(a, "score_baseline", path), f"{path}.score_baseline", finite=False),
        delta=_number(_get(a, "delta", path), f"{path}.delta", finite=False),
        n_steps=_whole(_get(a, "n_steps", path), f"{path}.n_steps", 0, MAX_COUNT),
        baseline=_text(_get(a, "baseline", path), f"{path}.baseline"),
        method=_text(_get(a, "method", path, "integrated_gradients"), f"{path}.method"),
        precision=_text(_get(a, "precision", path, "fp32"), f"{path}.precision"),
        tolerance=_optional_number(a, "tolerance", path),
        converged=None if converged is None else _flag(converged, f"{path}.converged"),
        settings=_settings(_get(a, "settings", path, {}), f"{path}.settings"),
        seconds=math.nan if seconds is None else _number(seconds, f"{path}.seconds", finite=False),
        signed=_flag(_get(a, "signed", path, True), f"{path}.signed"),
    )


def _optional_float(obj: dict, key: str, path: str) -> float:
    value = _get(obj, key, path, None)
    return math.nan if value is None else _number(value, _join(path, key), finite=False)


def _method_results(value: Any, path: str, n_tokens: int, n_words: int) -> dict[str, MethodResult]:
    out: dict[str, MethodResult] = {}
    for name, item in _object(value, path).items():
        where = _join(path, name)
        obj = _object(item, where)
        out[name] = MethodResult(
            attribution=_token_attribution(_get(obj, "attribution", where), f"{where}.attribution", n_tokens),
            word_scores=_array(_get(obj, "word_scores", where), f"{where}.word_scores", "f", (n_words,)),
            comprehensiveness=_optional_float(obj, "comprehensiveness", where),
            sufficiency=_optional_float(obj, "sufficiency", where),
            loo_spearman=_optional_float(obj, "loo_spearman", where),
        )
    return out


def _faithfulness(value: Any, path: str) -> FaithfulnessSummary | None:
    if value is None:
        return None
    f = _object(value, path)
    bins = _get(f, "bins", path)
    if not isinstance(bins, list) or not bins:
        raise _damaged(f"{path}.bins", "is not a list of numbers")
    return FaithfulnessSummary(
        bins=tuple(_number(b, f"{path}.bins") for b in bins),
        removal=_text(_get(f, "removal", path), f"{path}.removal"),
        random_comprehensiveness=_number(_get(f, "random_comprehensiveness", path), f"{path}.random_comprehensiveness",
                                         finite=False),
        random_comprehensiveness_std=_number(_get(f, "random_comprehensiveness_std", path),
                                             f"{path}.random_comprehensiveness_std", finite=False),
        random_sufficiency=_number(_get(f, "random_sufficiency", path), f"{path}.random_sufficiency", finite=False),
        random_sufficiency_std=_number(_get(f, "random_sufficiency_std", path), f"{path}.random_sufficiency_std",
                                       finite=False),
        n_random=_whole(_get(f, "n_random", path), f"{path}.n_random", 0, MAX_COUNT),
        n_variants=_whole(_get(f, "n_variants", path), f"{path}.n_variants", 0, MAX_COUNT),
    )


def _embedding_parts(value: Any, path: str, n_tokens: int) -> EmbeddingParts | None:
    if value is None:
        return None
    obj = _object(value, path)
    parts = tuple(_texts(_get(obj, "parts", path), f"{path}.parts"))
    if not parts or len(set(parts)) != len(parts) or not set(parts) <= set(EMBEDDING_PARTS):
        raise _damaged(f"{path}.parts", f"must be distinct names from {', '.join(EMBEDDING_PARTS)}")
    seconds = _get(obj, "seconds", path, None)
    return EmbeddingParts(
        parts=parts,
        scores=_array(_get(obj, "scores", path), f"{path}.scores", "f", (len(parts), n_tokens)),
        score_input=_number(_get(obj, "score_input", path), f"{path}.score_input", finite=False),
        score_baseline=_number(_get(obj, "score_baseline", path), f"{path}.score_baseline", finite=False),
        delta=_number(_get(obj, "delta", path), f"{path}.delta", finite=False),
        n_steps=_whole(_get(obj, "n_steps", path), f"{path}.n_steps", 0, MAX_COUNT),
        baseline=_text(_get(obj, "baseline", path, "pad"), f"{path}.baseline"),
        seconds=math.nan if seconds is None else _number(seconds, f"{path}.seconds", finite=False),
    )


def _layer_attribution(value: Any, path: str, n_layers: int, n_tokens: int) -> LayerAttribution | None:
    if value is None:
        return None
    obj = _object(value, path)
    seconds = _get(obj, "seconds", path, None)
    return LayerAttribution(
        scores=_array(_get(obj, "scores", path), f"{path}.scores", "f", (n_layers, n_tokens)),
        delta=_array(_get(obj, "delta", path), f"{path}.delta", "f", (n_layers,)),
        score_input=_number(_get(obj, "score_input", path), f"{path}.score_input", finite=False),
        score_baseline=_number(_get(obj, "score_baseline", path), f"{path}.score_baseline", finite=False),
        n_steps=_whole(_get(obj, "n_steps", path), f"{path}.n_steps", 0, MAX_COUNT),
        baseline=_text(_get(obj, "baseline", path, "pad"), f"{path}.baseline"),
        seconds=math.nan if seconds is None else _number(seconds, f"{path}.seconds", finite=False),
    )


def migrate_v1(data: dict) -> dict:
    """A schema-1 analysis as schema 2: its one integrated-gradients attribution becomes the request's method
    and the only entry of `methods`; nothing it shows changes."""
    out = dict(data)
    request = dict(out.get("request") or {})
    attribution = out.get("attribution")
    method = attribution.get("method", "integrated_gradients") if isinstance(attribution, dict) else None
    request.setdefault("method", method if isinstance(method, str) else "integrated_gradients")
    request.setdefault("method_settings", [])
    out["request"] = request
    if isinstance(attribution, dict) and "word_scores" in out:
        out["methods"] = {request["method"]: {"attribution": attribution, "word_scores": out["word_scores"]}}
    out["schema_version"] = 2
    return out


def migrate_v2(data: dict) -> dict:
    """A schema-2 analysis as schema 3: its request names the quadrature rule it ran (fixed steps, or Clenshaw-Curtis
    levels when it had a tolerance), since a request without one now means adaptive Simpson panels."""
    out = dict(data)
    request = out.get("request")
    if isinstance(request, dict):
        tolerance = request.get("tolerance")
        request = dict(request)
        request.setdefault("integration", implied_integration(tolerance))
        out["request"] = request
    out["schema_version"] = 3
    return out


MIGRATIONS = {1: migrate_v1, 2: migrate_v2}  # from version k to k + 1


def migrate(data: dict) -> dict:
    """Upgrade an analysis dict of any earlier schema version to SCHEMA_VERSION, one step at a time."""
    version = data.get("schema_version")
    while isinstance(version, int) and not isinstance(version, bool) and version in MIGRATIONS:
        data = MIGRATIONS[version](data)
        version = data.get("schema_version")
    return data


def _model(data: Any, path: str, limits: ReadLimits) -> ModelInfo:
    m = _object(data, path)
    n_layers = _whole(_get(m, "n_layers", path), f"{path}.n_layers", 1)
    n_heads = _whole(_get(m, "n_heads", path), f"{path}.n_heads", 1)
    _bounded(n_layers, limits.layers, "layers", "EXPLAIN_MAX_LAYERS")
    _bounded(n_heads, limits.heads, "heads", "EXPLAIN_MAX_HEADS")
    return ModelInfo(
        spec=_text(_get(m, "spec", path), f"{path}.spec"),
        name=_text(_get(m, "name", path), f"{path}.name"),
        head=_text(_get(m, "head", path), f"{path}.head"),
        n_layers=n_layers,
        n_heads=n_heads,
        max_tokens=_whole(_get(m, "max_tokens", path), f"{path}.max_tokens", 1, MAX_COUNT),
        targets=tuple(_texts(_get(m, "targets", path), f"{path}.targets")),
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
        return _object(_get(data, key, path), at(key))

    request = request_from_dict(_get(data, "request", path), at("request"))
    model = _model(_get(data, "model", path), at("model"), limits)
    t, w, p, a = part("tokens"), part("words"), part("prediction"), part("attribution")
    tokens = _texts(_get(t, "tokens", at("tokens")), at("tokens.tokens"))
    if not tokens:
        raise _damaged(at("tokens.tokens"), "is empty")
    _bounded(len(tokens), limits.tokens, "tokens", "EXPLAIN_MAX_DOC_TOKENS")
    n_tokens = len(tokens)
    words = _texts(_get(w, "words", at("words")), at("words.words"))
    labels = _texts(_get(p, "labels", at("prediction")), at("prediction.labels"))
    n_words, n_labels = len(words), len(labels)
    weights = _get(part("attention"), "weights", at("attention"))
    timings = _object(_get(data, "timings", path, {}), at("timings"))
    analysis = Analysis(
        request=request,
        model=model,
        tokens=Tokens(
            tokens=tokens,
            offsets=_array(_get(t, "offsets", at("tokens")), at("tokens.offsets"), "iu", (n_tokens, 2)),
            special=_array(_get(t, "special", at("tokens")), at("tokens.special"), "biu", (n_tokens,)),
            truncated=_flag(_get(t, "truncated", at("tokens")), at("tokens.truncated")),
            n_tokens_full=_whole(_get(t, "n_tokens_full", at("tokens")), at("tokens.n_tokens_full"), 0, MAX_COUNT),
            n_tokens_full_at_least=_flag(_get(t, "n_tokens_full_at_least", at("tokens"), False),
                                         at("tokens.n_tokens_full_at_least")),
            segments=_optional_array(_get(t, "segments", at("tokens"), None), at("tokens.segments"), "i",
                                     (n_tokens,)),
        ),
        words=Words(
            words=words,
            spans=_array(_get(w, "spans", at("words")), at("words.spans"), "iu", (n_words, 2)),
            token_word=_array(_get(w, "token_word", at("words")), at("words.token_word"), "i", (n_tokens,)),
            segments=_optional_array(_get(w, "segments", at("words"), None), at("words.segments"), "i", (n_words,)),
        ),
        attention=AttentionMaps(weights=_array(weights, at("attention.weights"), "f",
                                               (model.n_layers, model.n_heads, n_tokens, n_tokens))),
        prediction=Prediction(
            labels=labels,
            scores=_array(_get(p, "scores", at("prediction")), at("prediction.scores"), "f", (n_labels,)),
            explained_index=_whole(_get(p, "explained_index", at("prediction")), at("prediction.explained_index"),
                                   0, max(0, n_labels - 1)),
            description=_text(_get(p, "description", at("prediction")), at("prediction.description")),
            score_name=_text(_get(p, "score_name", at("prediction"), "probability"), at("prediction.score_name")),
            spans=_spans(_get(p, "spans", at("prediction"), []), at("prediction.spans"), n_tokens),
            independent=_flag(_get(p, "independent", at("prediction"), False), at("prediction.independent")),
        ),
        attribution=_token_attribution(a, at("attribution"), n_tokens),
        word_scores=_array(_get(data, "word_scores", path), at("word_scores"), "f", (n_words,)),
        timings={_text(k, at("timings")): _number(v, at(f"timings.{k}")) for k, v in timings.items()},
        notices=tuple(_texts(_get(data, "notices", path, []), at("notices"))),
        methods=_method_results(_get(data, "methods", path, {}), at("methods"), n_tokens, n_words),
        faithfulness=_faithfulness(_get(data, "faithfulness", path, None), at("faithfulness")),
        embedding_parts=_embedding_parts(_get(data, "embedding_parts", path, None), at("embedding_parts"), n_tokens),
        layer_attribution=_layer_attribution(_get(data, "layer_attribution", path, None), at("layer_attribution"),
                                             model.n_layers, n_tokens),
        entities=_entities(_get(data, "entities", path, []), at("entities"), n_tokens, n_words),
        schema_version=version,
        app_version=_text(_get(data, "app_version", path, ""), at("app_version")),
    )
    try:
        return check_consistent(analysis)
    except ValueError as exc:
        raise SchemaError(f"{_DAMAGED} ({exc}).") from exc
