"""Request and result records, and their JSON form (with a schema version).

Results hold numpy arrays and plain strings only, so the same object feeds the
dashboard, the CLI, the JSON and HTML exports and the tests.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from explain.errors import SchemaError

SCHEMA_VERSION = 1
APP_VERSION = "0.1.0"

BASELINES = ("pad", "mask", "zero")
MIN_STEPS, MAX_STEPS = 1, 1000
DEFAULT_STEPS = 50
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
    (cosine similarity of the mean-pooled embedding to `reference`).
    An empty `label` means the model's top prediction.
    """

    kind: str
    label: str = ""
    labels: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    reference: str = ""


@dataclass(frozen=True)
class AnalysisRequest:
    """Everything needed to reproduce an analysis. `target=None` takes the model's default."""

    text: str
    model: str = "minilm"
    target: TargetSpec | None = None
    n_steps: int = DEFAULT_STEPS
    baseline: str = "pad"
    max_tokens: int = DEFAULT_MAX_TOKENS
    # Integrated gradients: None = n_steps fixed steps; else adaptive steps (at most n_steps) until
    # |delta| <= tolerance * |score change|. precision "bf16" runs the model under bfloat16 autocast.
    tolerance: float | None = None
    precision: str = "fp32"


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
    """

    tokens: list[str]
    offsets: np.ndarray
    special: np.ndarray
    truncated: bool = False
    n_tokens_full: int = 0
    n_tokens_full_at_least: bool = False

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


@dataclass
class Prediction:
    """The model's output for the target: one score per label, and which one is explained."""

    labels: list[str]
    scores: np.ndarray
    explained_index: int
    description: str  # e.g. "P(positive) under zero-shot labels"
    score_name: str = "probability"


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

    @property
    def relative_delta(self) -> float:
        """|delta| relative to the score change it should explain."""
        change = abs(self.score_input - self.score_baseline)
        return abs(self.delta) / max(change, 1e-12)


@dataclass
class Words:
    """Words of the text (tokenizer independent), with the tokens that fall in each.

    spans: int32 [words, 2]; token_word: int32 [tokens], -1 for special tokens.
    """

    words: list[str]
    spans: np.ndarray
    token_word: np.ndarray

    def __len__(self) -> int:
        return len(self.words)


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
    schema_version: int = SCHEMA_VERSION
    app_version: str = APP_VERSION

    def to_json(self) -> str:
        return json.dumps(to_jsonable(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> Analysis:
        try:
            data = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise SchemaError("The file is not valid JSON.") from exc
        return analysis_from_dict(data)


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
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    return value


def to_jsonable(obj: Any) -> Any:
    """Plain JSON data for any result record; arrays become base64 with dtype and shape."""
    data = _encode(obj)
    if isinstance(obj, Analysis):
        data = {"format": "explain.analysis", **data}
    return data


_ARRAY_KINDS = "biuf"  # bool, signed/unsigned integers, floats: nothing that unpickles or holds objects


def _array(value: Any) -> np.ndarray:
    if isinstance(value, dict) and "__ndarray__" in value:
        dtype = np.dtype(str(value["dtype"]))
        shape = value["shape"]
        if dtype.kind not in _ARRAY_KINDS or not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise ValueError("an array has an unsupported type or shape")
        raw = base64.b64decode(value["__ndarray__"], validate=True)
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    arr = np.asarray(value)
    if arr.dtype.kind not in _ARRAY_KINDS:
        raise ValueError("an array holds values that are not numbers")
    return arr


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
    return a


def _target(data: dict | None) -> TargetSpec | None:
    if data is None:
        return None
    return TargetSpec(
        kind=data["kind"],
        label=data.get("label", ""),
        labels=tuple(data.get("labels", ())),
        prompts=tuple(data.get("prompts", ())),
        reference=data.get("reference", ""),
    )


def _notices(value: Any) -> tuple[str, ...]:
    _check(isinstance(value, list) and all(isinstance(n, str) for n in value), "the notices are not a list of text")
    return tuple(value)


def request_from_dict(data: dict) -> AnalysisRequest:
    return AnalysisRequest(
        text=data["text"],
        model=data["model"],
        target=_target(data.get("target")),
        n_steps=int(data["n_steps"]),
        baseline=data["baseline"],
        max_tokens=int(data.get("max_tokens", LEGACY_MAX_TOKENS)),
        tolerance=None if data.get("tolerance") is None else float(data["tolerance"]),
        precision=data.get("precision", "fp32"),
    )


def analysis_from_dict(data: Any) -> Analysis:
    """Rebuild an Analysis from `to_jsonable` output; SchemaError on anything else."""
    if not isinstance(data, dict) or data.get("format") != "explain.analysis":
        raise SchemaError("This JSON is not an analysis exported by this dashboard.")
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise SchemaError(
            f"This analysis has schema version {version!r}; this dashboard reads version {SCHEMA_VERSION}."
        )
    try:
        m, t, w = data["model"], data["tokens"], data["words"]
        p, a = data["prediction"], data["attribution"]
        analysis = Analysis(
            request=request_from_dict(data["request"]),
            model=ModelInfo(
                spec=m["spec"],
                name=m["name"],
                head=m["head"],
                n_layers=int(m["n_layers"]),
                n_heads=int(m["n_heads"]),
                max_tokens=int(m["max_tokens"]),
                targets=tuple(m["targets"]),
            ),
            tokens=Tokens(
                tokens=list(t["tokens"]),
                offsets=_array(t["offsets"]),
                special=_array(t["special"]),
                truncated=bool(t["truncated"]),
                n_tokens_full=int(t["n_tokens_full"]),
                n_tokens_full_at_least=bool(t.get("n_tokens_full_at_least", False)),
            ),
            words=Words(words=list(w["words"]), spans=_array(w["spans"]), token_word=_array(w["token_word"])),
            attention=AttentionMaps(weights=_array(data["attention"]["weights"])),
            prediction=Prediction(
                labels=list(p["labels"]),
                scores=_array(p["scores"]),
                explained_index=int(p["explained_index"]),
                description=p["description"],
                score_name=p.get("score_name", "probability"),
            ),
            attribution=TokenAttribution(
                scores=_array(a["scores"]),
                score_input=float(a["score_input"]),
                score_baseline=float(a["score_baseline"]),
                delta=float(a["delta"]),
                n_steps=int(a["n_steps"]),
                baseline=a["baseline"],
                method=a.get("method", "integrated_gradients"),
                precision=a.get("precision", "fp32"),
                tolerance=None if a.get("tolerance") is None else float(a["tolerance"]),
                converged=None if a.get("converged") is None else bool(a["converged"]),
            ),
            word_scores=_array(data["word_scores"]),
            timings={str(k): float(v) for k, v in dict(data.get("timings") or {}).items()},
            notices=_notices(data.get("notices", [])),
            schema_version=version,
            app_version=str(data.get("app_version", "")),
        )
        return check_consistent(analysis)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, binascii.Error) as exc:
        raise SchemaError(f"This analysis JSON is damaged or incomplete ({type(exc).__name__}: {exc}).") from exc
