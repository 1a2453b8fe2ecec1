"""The method registry: what each attribution method is called, which settings it takes, and its one verb.

A `Method` declares its name, a frozen settings dataclass (every field built with
`setting`, which records its range and help text so the dashboard, the URL and the
CLI can be generated from it), which target kinds it supports, and whether its
scores are signed. `Method.attribute(context, settings)` returns a
`MethodAttribution`: one score per token (special tokens 0, unless the method splits the logit) and one per word.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import torch

from explain.errors import InputError
from explain.methods.baselines import baseline_embeddings, endpoint_scores
from explain.records import BASELINES, AnalysisRequest
from explain.targets import TARGET_KINDS, Target, model_position_ids
from explain.words import word_sums

ProgressCallback = Callable[[float], None]


def setting(default: Any, help: str, *, minimum: float | None = None, maximum: float | None = None,
            choices: tuple[str, ...] = ()) -> Any:
    """A settings field with its default, its allowed range or choices, and one line of help."""
    return field(default=default, metadata={"help": help, "min": minimum, "max": maximum, "choices": choices})


@dataclass(frozen=True)
class SettingSpec:
    """One declared setting, as the dashboard, URL state and CLI read it."""

    name: str
    kind: type
    default: Any
    help: str
    minimum: float | None
    maximum: float | None
    choices: tuple[str, ...]


@dataclass(frozen=True)
class MethodSettings:
    """Base of every method's settings; a field named `seed` makes a method stochastic."""

    @classmethod
    def specs(cls) -> tuple[SettingSpec, ...]:
        kinds = {"int": int, "float": float, "str": str, "bool": bool}
        return tuple(
            SettingSpec(
                name=f.name,
                kind=kinds.get(f.type if isinstance(f.type, str) else getattr(f.type, "__name__", ""), str),
                default=f.default,
                help=f.metadata.get("help", ""),
                minimum=f.metadata.get("min"),
                maximum=f.metadata.get("max"),
                choices=tuple(f.metadata.get("choices", ())),
            )
            for f in dataclasses.fields(cls)
        )

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> MethodSettings:
        """Settings from plain values (URL strings included), checked; InputError on an unknown name or bad value."""
        specs = {s.name: s for s in cls.specs()}
        unknown = sorted(set(values) - set(specs))
        if unknown:
            raise InputError(f"Unknown setting '{unknown[0]}'; this method takes {', '.join(specs) or 'none'}.")
        parsed: dict[str, Any] = {}
        for name, raw in values.items():
            kind = specs[name].kind
            try:
                parsed[name] = kind(raw) if kind is not bool else str(raw).lower() in ("1", "true", "yes", "on")
            except (TypeError, ValueError) as exc:
                raise InputError(f"The setting '{name}' must be a {kind.__name__}, not {raw!r}.") from exc
        return cls(**parsed).checked()

    def checked(self) -> MethodSettings:
        """Self, after checking every value against its declared range or choices."""
        for spec in self.specs():
            value = getattr(self, spec.name)
            if spec.choices and value not in spec.choices:
                raise InputError(f"The setting '{spec.name}' must be one of {', '.join(spec.choices)}, not {value!r}.")
            if spec.kind in (int, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                    raise InputError(f"The setting '{spec.name}' must be a number, not {value!r}.")
                if spec.kind is int and int(value) != value:
                    raise InputError(f"The setting '{spec.name}' must be a whole number, not {value!r}.")
                low = -math.inf if spec.minimum is None else spec.minimum
                high = math.inf if spec.maximum is None else spec.maximum
                if not low <= value <= high:
                    raise InputError(f"The setting '{spec.name}' must be from {low:g} to {high:g}, not {value:g}.")
        return self

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True, eq=False)
class AttributionContext:
    """Everything a method needs about one text, built once by the caller and shared by all methods.

    input_ids, attention_mask, special, token_type_ids: [1, tokens] tensors on the model's device;
    token_word: int [tokens], the word of each token (-1 for special tokens); baseline: "pad", "mask"
    or "zero", what a removed word is replaced by (`explain.methods.baselines.baseline_embeddings`).
    The target's explained index must already be chosen.
    """

    target: Target
    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    special: torch.Tensor
    token_word: np.ndarray
    n_words: int
    baseline: str = "pad"
    token_type_ids: torch.Tensor | None = None
    position_ids: torch.Tensor | None = None  # None: the model's own rule for input_ids (`model_position_ids`)

    def __post_init__(self) -> None:
        if self.position_ids is None:
            object.__setattr__(self, "position_ids", model_position_ids(self.target.loaded, self.input_ids))
        if self.baseline not in BASELINES:
            raise InputError(f"Unknown baseline '{self.baseline}'; choose one of {', '.join(BASELINES)}.")
        if self.target.index < 0:
            raise InputError("The explained label is not chosen yet; run choose_index on the target first.")
        if self.token_word.shape != (self.n_tokens,):
            raise InputError("The token-to-word map does not match the tokens.")

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[1])

    def embeddings(self) -> torch.Tensor:
        """The input's word embeddings [1, tokens, hidden], detached."""
        with torch.no_grad():
            return self.target.loaded.word_embeddings(self.input_ids).detach()

    def baseline_embeddings(self) -> torch.Tensor:
        """The baseline's word embeddings [1, tokens, hidden]: special tokens kept, the rest replaced."""
        return baseline_embeddings(self.target, self.input_ids, self.special, self.baseline).detach()

    @cached_property
    def endpoints(self) -> tuple[float, float]:
        """The explained score at the input and at the baseline, float32, computed once for all methods.

        Cached: a context describes one model state, which must not change (gates, weights) while it is used.
        """
        return endpoint_scores(self.target, self.embeddings(), self.baseline_embeddings(), self.attention_mask,
                               self.token_type_ids, self.position_ids)

    def model_inputs(self, k: int = 1) -> dict[str, torch.Tensor]:
        """Segment and position ids for `k` variants of this text, as the model's keyword arguments."""
        extra = {} if self.token_type_ids is None else {"token_type_ids": self.token_type_ids.expand(k, -1)}
        assert self.position_ids is not None  # set in __post_init__
        extra["position_ids"] = self.position_ids.expand(k, -1)
        return extra

    def forward(self, embeds: torch.Tensor) -> torch.Tensor:
        """Scores [batch, labels] of a batch of embedding inputs that share this text's mask, segments and positions."""
        k = embeds.shape[0]
        extra = self.model_inputs(k)
        return self.target.forward_embeddings(embeds, self.attention_mask.expand(k, -1), extra.get("token_type_ids"),
                                              position_ids=extra["position_ids"])


@dataclass(frozen=True, eq=False)
class MethodAttribution:
    """One method's attribution of the explained score.

    scores: float32 [tokens] (special tokens 0 unless `splits_logit`); word_scores: float32 [words], the sum of each word's
    tokens. delta: completeness gap `scores.sum() - (score_input - score_baseline)` for methods that
    promise completeness (integrated gradients, KernelSHAP), nan for the others. signed: False when the scores
    are relevances that are never negative.
    """

    method: str
    scores: np.ndarray
    word_scores: np.ndarray
    score_input: float
    score_baseline: float
    delta: float
    baseline: str
    settings: dict[str, Any]
    signed: bool
    seconds: float
    quadrature: Quadrature | None = None


@dataclass(frozen=True)
class Quadrature:
    """How a path integral was evaluated: model evaluations used, the arithmetic, the tolerance it aimed for
    (None: fixed steps) and whether it met it before the cap (None: no tolerance to meet)."""

    evaluations: int
    precision: str = "fp32"
    tolerance: float | None = None
    converged: bool | None = None


@dataclass(frozen=True, eq=False)
class RawScores:
    """What a method's compute function returns; `Method.attribute` builds the record around it."""

    scores: np.ndarray
    delta: float = math.nan
    score_input: float | None = None
    score_baseline: float | None = None
    quadrature: Quadrature | None = None


CostFunction = Callable[[Any, int, int], float]


def one_pass_with_gradient(settings: Any, n_tokens: int, n_words: int) -> float:
    """One forward and one backward pass (saliency, gradient x input, attention x gradient)."""
    return 1.0


def one_forward_pass(settings: Any, n_tokens: int, n_words: int) -> float:
    """One forward pass without gradients: half an evaluation (attention read-outs)."""
    return FORWARD_PASS


# A forward pass without gradients, in model evaluations (a forward and a backward pass each).
FORWARD_PASS = 0.5


@dataclass(frozen=True)
class Method:
    """An attribution method: its declarations and its one verb, `attribute`."""

    name: str
    title: str
    summary: str
    settings_type: type[MethodSettings]
    compute: Callable[[AttributionContext, Any, ProgressCallback | None], RawScores]
    signed: bool = True
    targets: tuple[str, ...] = TARGET_KINDS
    signed_for: Callable[[Any], bool] | None = None  # when signedness depends on the settings
    complete: bool = False  # the scores should sum to score_input - score_baseline; delta reports the gap
    # Model evaluations (a forward and a backward pass each; a forward pass alone is FORWARD_PASS) for
    # (settings, tokens, words): the work budget, the queue and the progress read this and nothing else.
    cost: CostFunction = one_pass_with_gradient
    # Settings read from the request's own fields of these names rather than its "method.setting" entries
    # (integrated gradients: the steps, tolerance, precision and integration every request carries).
    request_fields: tuple[str, ...] = ()
    # Why this method cannot explain a loaded model at all (one sentence), "" where it can: the method picker, the
    # CLI's "--method all" and the contract tests leave it out there instead of failing on it.
    refuses: Callable[[Any], str] | None = None
    # The scores split the explained score's logit (a cosine for pooled targets) exactly among all tokens, special
    # tokens included (DecompX): score_input is that logit, score_baseline 0, and special tokens keep their shares.
    splits_logit: bool = False
    # Whether the scores depend on the baseline token at all (rollout, ALTI or saliency never read it): the CLI, the
    # page and the exports name the baseline only where it is used. `uses_baseline_for` decides per settings.
    uses_baseline: bool = True
    uses_baseline_for: Callable[[Any], bool] | None = None

    @property
    def stochastic(self) -> bool:
        return any(s.name == "seed" for s in self.settings_type.specs())

    def is_signed(self, settings: MethodSettings) -> bool:
        return self.signed if self.signed_for is None else bool(self.signed_for(settings))

    def reads_baseline(self, settings: MethodSettings | None = None) -> bool:
        """Whether these settings make the scores depend on the baseline token."""
        if self.uses_baseline_for is None:
            return self.uses_baseline
        return bool(self.uses_baseline_for(settings if settings is not None else self.settings_type()))

    def supports(self, target_kind: str) -> bool:
        return target_kind in self.targets

    def refusal(self, loaded: Any) -> str:
        """One sentence on why this method cannot explain `loaded`, or "" where it can."""
        return self.refuses(loaded) if self.refuses is not None else ""

    def evaluations(self, settings: MethodSettings | None, n_tokens: int, n_words: int) -> float:
        """The declared cost of one attribution with these settings, in model evaluations."""
        return float(self.cost(settings if settings is not None else self.settings_type(), n_tokens, n_words))

    def attribute(self, context: AttributionContext, settings: MethodSettings | None = None,
                  progress: ProgressCallback | None = None) -> MethodAttribution:
        """Attribute the context's explained score to each token and word."""
        settings = settings if settings is not None else self.settings_type()
        if not isinstance(settings, self.settings_type):
            raise InputError(f"The method '{self.name}' takes {self.settings_type.__name__}, "
                             f"not {type(settings).__name__}.")
        settings.checked()
        kind = context.target.spec.kind
        if not self.supports(kind):
            raise InputError(f"The method '{self.title}' cannot explain a '{kind}' target.")
        start = time.perf_counter()
        raw = self.compute(context, settings, progress)
        scores = np.asarray(raw.scores, dtype=np.float64)
        if not self.splits_logit:
            scores = np.where(context.special[0].cpu().numpy(), 0.0, scores)
        if raw.score_input is None or raw.score_baseline is None:
            score_input, score_baseline = context.endpoints
        else:
            score_input, score_baseline = raw.score_input, raw.score_baseline
        words = word_sums(scores, context.token_word, context.n_words)
        delta = raw.delta
        if self.complete and math.isnan(delta):
            delta = float(scores.sum()) - (float(score_input) - float(score_baseline))
        if progress is not None:
            progress(1.0)
        return MethodAttribution(
            method=self.name,
            scores=read_only(scores.astype(np.float32)),
            word_scores=read_only(words.astype(np.float32)),
            score_input=float(score_input),
            score_baseline=float(score_baseline),
            delta=float(delta),
            baseline=context.baseline,
            settings=settings.as_dict(),
            signed=self.is_signed(settings),
            seconds=time.perf_counter() - start,
            quadrature=raw.quadrature,
        )


def read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def spread_over_tokens(word_values: np.ndarray, token_word: np.ndarray) -> np.ndarray:
    """Token scores [tokens] for word-level values: each word's value shared equally by its tokens.

    Summing the result per word gives the word values back exactly; tokens outside words get 0.
    """
    token_word = np.asarray(token_word)
    counts = np.bincount(token_word[token_word >= 0], minlength=len(word_values)).astype(np.float64)
    out = np.zeros(len(token_word), dtype=np.float64)
    inside = token_word >= 0
    out[inside] = np.asarray(word_values, dtype=np.float64)[token_word[inside]] / counts[token_word[inside]]
    return out


class HandOverLock:
    """A lock handed to its waiters in the order they asked: Python's own lock lets a thread that releases it take
    it straight back, so a seeded run that steps aside at every pause would keep the others waiting anyway."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._held = False
        self._waiting: deque[threading.Event] = deque()

    def acquire(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Event()
            self._waiting.append(turn)
        turn.wait()  # release() hands the lock over: it stays held

    def locked(self) -> bool:
        with self._mutex:
            return self._held

    def release(self) -> None:
        with self._mutex:
            if self._waiting:
                self._waiting.popleft().set()
            else:
                self._held = False


# Captum draws its samples from torch's global generator, which every thread shares: a seeded run holds this lock
# while it draws and computes, so that two sessions' draws never interleave, and steps aside at its pauses.
SEEDED_RNG_LOCK = HandOverLock()

GeneratorState = tuple[torch.Tensor, torch.Tensor | None]


class SeededRun:
    """One method run on torch's generators seeded by `seed`, which it shares with other runs only while paused.

    `with SeededRun(seed, device) as run:` takes SEEDED_RNG_LOCK and seeds the generators (CPU, and `device`'s
    where it is CUDA); leaving restores them as they were and releases the lock. `run.reporting(progress)` is the
    callback for the end of each batch: it calls `progress` with the lock released and this run's generator state
    kept aside (`pause`), so light work, other sessions' seeded runs and a cancelling page act there, and a paused
    run gives exactly the numbers of a run without pauses for the same seed.
    """

    def __init__(self, seed: int, device: torch.device) -> None:
        self.seed = seed
        self.cuda = device if device.type == "cuda" else None
        self._outside: GeneratorState | None = None

    def _state(self) -> GeneratorState:
        return torch.get_rng_state(), None if self.cuda is None else torch.cuda.get_rng_state(self.cuda)

    def _restore(self, state: GeneratorState) -> None:
        torch.set_rng_state(state[0])
        if self.cuda is not None and state[1] is not None:
            torch.cuda.set_rng_state(state[1], self.cuda)

    def __enter__(self) -> SeededRun:
        SEEDED_RNG_LOCK.acquire()
        try:
            self._outside = self._state()
            torch.manual_seed(self.seed)
        except BaseException:
            SEEDED_RNG_LOCK.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._outside is not None:
                self._restore(self._outside)
        finally:
            SEEDED_RNG_LOCK.release()

    @contextmanager
    def pause(self) -> Iterator[None]:
        """Step aside for the block: this run's generator state kept, the lock released, both taken back after
        (also when the block raises, so that leaving the run restores and releases as usual)."""
        own = self._state()
        SEEDED_RNG_LOCK.release()
        try:
            yield
        finally:
            SEEDED_RNG_LOCK.acquire()
            self._restore(own)

    def reporting(self, progress: ProgressCallback | None) -> ProgressCallback:
        """The callback for the end of each batch: `progress` (if any) called inside `pause`."""

        def report(fraction: float) -> None:
            with self.pause():
                if progress is not None:
                    progress(fraction)

        return report


METHODS: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add `method` to METHODS under its name (a second method with the same name is an error)."""
    if method.name in METHODS and METHODS[method.name] is not method:
        raise ValueError(f"an attribution method named {method.name!r} is already registered")
    METHODS[method.name] = method
    return method


def method_settings(request: AnalysisRequest, name: str) -> MethodSettings:
    """The settings method `name` runs with for `request`: from the request's own fields for a method that
    declares `request_fields` (integrated gradients), else from its "name.setting" entries, else defaults."""
    method = get_method(name)
    if method.request_fields:
        # A request field left None (no tolerance, no delta check) is the setting's "off", 0.
        return method.settings_type.parse({field: 0.0 if (value := getattr(request, field)) is None else value
                                           for field in method.request_fields})
    prefix = f"{name}."
    return method.settings_type.parse({key[len(prefix):]: value for key, value in request.method_settings
                                       if key.startswith(prefix)})


def request_for_method(request: AnalysisRequest, name: str) -> AnalysisRequest:
    """`request` reduced to what method `name` depends on: its own settings only (a method with `request_fields`
    keeps those fields; every other method sees their defaults), so that changing one method's settings leaves
    the others' results cached."""
    method = get_method(name)
    defaults = AnalysisRequest(request.text)
    fields = {f for m in METHODS.values() for f in m.request_fields} - set(method.request_fields)
    own = () if method.request_fields else tuple(pair for pair in request.method_settings
                                                 if pair[0].startswith(f"{name}."))
    return dataclasses.replace(request, method=name, method_settings=own,
                               **{f: getattr(defaults, f) for f in sorted(fields)})


def recorded_baseline(method: str, settings: Mapping[str, Any]) -> bool:
    """Whether a recorded attribution (its method's name and settings) depends on its baseline token; an
    unregistered method is assumed to, so that nothing is hidden from an old file."""
    registered = METHODS.get(method)
    if registered is None:
        return True
    try:
        return registered.reads_baseline(registered.settings_type.parse(settings))
    except InputError:
        return registered.uses_baseline


def get_method(name: str) -> Method:
    """The registered method called `name`; InputError naming the choices otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(f"Unknown attribution method '{name}'; choose one of {', '.join(METHODS)}.") from None
