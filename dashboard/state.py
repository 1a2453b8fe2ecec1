"""The explore, compare, methods and heads pages' state as one typed object <-> URL query params.

Pure (no streamlit): query params are always strings, so every field is parsed
and checked here; anything unusable falls back to its default and is reported
as a notice the page shows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace

from explain.attention import HEAD_STATISTICS
from explain.errors import InputError
from explain.flow import DEFAULT_THRESHOLD as DEFAULT_FLOW_THRESHOLD
from explain.heads import MAP_NAMES, PRUNING_ORDERS
from explain.heads.gating import ABLATION_MODES, check_head_text
from explain.methods import METHODS
from explain.models import DEFAULT_MODEL, RANDOM_CONTROL
from explain.records import (
    BASELINES,
    DEFAULT_DELTA_TOLERANCE,
    DEFAULT_INTEGRATION,
    DEFAULT_MAX_TOKENS,
    DEFAULT_STEPS,
    FIXED_INTEGRATION,
    MAX_STEPS,
    MIN_STEPS,
    AnalysisRequest,
    TargetSpec,
)
from explain.targets import ANSWER_PARTS, PROMPT_TEMPLATE, TARGET_FIELDS, TARGET_KINDS

DEFAULT_TEXT = "The film was good but far too long."
DEFAULT_SECOND_TEXT = "The film was bad and far too long."
MAX_TEXT_CHARS = 5000
MAX_TOKEN_CHOICES = (32, 64, 128, 256, 512)
LEVELS = ("word", "subword")
COMPARE_MODES = ("models", "texts", "heads")  # heads: the model against itself without some heads
AGGREGATES = ("rollout", "stats", "token")

# One constant per URL key: short, stable names that links depend on.
KEY_TEXT = "t"
KEY_MODEL = "m"
KEY_TARGET = "tg"
KEY_LABEL = TARGET_FIELDS["label"].url_key
KEY_LABELS = TARGET_FIELDS["labels"].url_key
KEY_PROMPTS = TARGET_FIELDS["prompts"].url_key
KEY_REFERENCE = TARGET_FIELDS["reference"].url_key
KEY_STEPS = "n"
KEY_BASELINE = "b"
KEY_MAX_TOKENS = "mx"
KEY_LEVEL = "v"
KEY_LAYER = "l"
KEY_HEAD = "h"
KEY_HIDE_SPECIAL = "sp"
KEY_TOKEN = "tok"
KEY_STAT = "st"
KEY_AGGREGATE = "ag"
KEY_STRETCH = "sc"  # "stretch each map": attention colours to each map's own maximum instead of 0-1
KEY_SPAN = "zs"  # explore: the single-head map zoomed to tokens "first-last" (places in the text); empty: every token
KEY_FAST = "fa"
# Fast mode: adaptive steps (n_steps is the cap) until |delta| <= FAST_TOLERANCE x the score change, under bf16.
FAST_TOLERANCE = 1e-2
FAST_INTEGRATION = "clenshaw_curtis"
# Integrated gradients' quadrature rule outside fast mode. Every link written since it existed carries it; a link
# without it was written before, when the only rule was fixed steps, so there it means FIXED_INTEGRATION
# (`migrate_query`).
KEY_INTEGRATION = "ig"
# Adaptive integration's largest |delta|, as a fraction of the score change (0: tokens only). A link without it was
# written before the delta check existed: there it means 0, so the link reopens with the numbers it showed.
KEY_DELTA_TOLERANCE = "dt"
INTEGRATION_CHOICES = (DEFAULT_INTEGRATION, FIXED_INTEGRATION)
KEY_MODEL_B = "m2"
KEY_TEXT_B = "t2"
KEY_LAYER_B = "l2"
KEY_HEAD_B = "h2"
KEY_MODE = "cm"
KEY_ANALYSIS = "analysis"
KEY_METHOD = "me"
KEY_METHOD_SETTINGS = "ms"  # "lime.n_samples=200;lime.seed=0": settings of methods other than integrated gradients
KEY_REMOVAL = "mf"  # how the methods page's faithfulness takes words out
KEY_PAIR = "p2"  # the second text of a sentence pair (next-sentence prediction, cross-encoders)
KEY_QUESTION = "q"  # question answering: the question asked about the text (the context)
KEY_TARGET_TOKEN = TARGET_FIELDS["token"].url_key  # the token a token-level target explains; -1: every predicted entity
KEY_PART = TARGET_FIELDS["part"].url_key  # question answering: the answer's start, end or span
KEY_LOGIT = TARGET_FIELDS["logit"].url_key  # explain the raw logit rather than the probability
ALL_ENTITIES = -1
SHARED_TARGETS = ("zero_shot", "similarity")  # target kinds every model can explain, so both sides share them
DEFAULT_METHOD = "integrated_gradients"
# depth
KEY_DEPTH = "dp"  # explore page (kept by compare): compute the embedding-part and layer-wise attributions
KEY_FLOW = "fl"  # explore page (kept by compare): draw the information flow (ALTI), at the threshold below
KEY_FLOW_THRESHOLD = "ft"
# explore page: the sections drawn only when opened (the first screen is the prediction, highlights and one head)
KEY_SHOW_AGGREGATES = "ao"  # the aggregate views (rollout, head statistics, one token), showing `aggregate`
KEY_SHOW_GRID = "gr"  # the all-heads grid
# heads ablation
KEY_ABLATE = "ab"  # heads knocked out, "0:1,2:*" (explain.heads.HeadSet text)
KEY_ABLATE_MODE = "am"  # what a removed head outputs: zero, or its mean over the text
REMOVAL_MODES = ("replace", "remove")
SETTING_SEPARATOR = ";"
# heads page
KEY_HEADS_LAYER = "hl"  # the head selected on the heads page (its layer and head), which the neuron view shows
KEY_HEADS_HEAD = "hh"
KEY_HEADS_TOKEN = "hq"  # the neuron view's query token
KEY_PRUNE_MAP = "pm"  # the importance map that orders the pruning curve
KEY_PRUNE_ORDER = "po"  # remove the least or the most important heads first
KEY_RUN = "run"  # corpus page: a kept corpus run's id (explain.corpus.runs)


@dataclass(frozen=True)
class ViewState:
    """Everything a link reproduces: the request(s) and the view (layer, head, token, toggles)."""

    text: str = DEFAULT_TEXT
    model: str = DEFAULT_MODEL
    target: str = ""  # empty: the model's default target
    label: str = ""
    labels: str = ""  # zero-shot labels, comma-separated
    prompts: str = ""  # zero-shot prompts, "|"-separated
    reference: str = ""
    steps: int = DEFAULT_STEPS  # integrated gradients: the cap on model evaluations when adaptive
    integration: str = DEFAULT_INTEGRATION
    delta_tolerance: float = DEFAULT_DELTA_TOLERANCE
    baseline: str = "pad"
    max_tokens: int = DEFAULT_MAX_TOKENS
    fast: bool = False
    level: str = "word"
    layer: int = 0
    head: int = 0
    hide_special: bool = False
    token: int = 1
    stat: str = "entropy"
    aggregate: str = "rollout"
    stretch: bool = False
    span: str = ""  # explore: the single-head map's tokens "first-last" ("" all)
    # compare page
    model_b: str = RANDOM_CONTROL
    text_b: str = DEFAULT_SECOND_TEXT
    layer_b: int = 0
    head_b: int = 0
    mode: str = "models"
    analysis: str = ""  # a saved analysis id: reopen it instead of computing
    method: str = DEFAULT_METHOD  # the attribution method shown (explain.methods.METHODS)
    method_settings: str = ""  # "method.setting=value" entries joined by ";" (only values off their default)
    removal: str = "replace"  # methods page: faithfulness replaces words by the baseline token or removes them
    # depth
    depth: bool = False  # explore page: where the score comes from (embedding parts, layers); slower
    flow: bool = False  # explore page: the information-flow graph (explain.flow)
    flow_threshold: float = DEFAULT_FLOW_THRESHOLD  # its smallest contribution drawn
    show_aggregates: bool = False  # explore page: the aggregate views are open
    show_grid: bool = False  # explore page: the all-heads grid is open
    # heads ablation: explore analyses the model without these heads; compare's "heads" mode sets them against it
    ablate: str = ""
    ablate_mode: str = "zero"
    # heads page
    heads_layer: int = 0
    heads_head: int = 0
    heads_token: int = 1  # the first token after [CLS]
    prune_map: str = MAP_NAMES[0]
    prune_order: str = PRUNING_ORDERS[0]
    pair: str = ""  # a second text read with the first (sentence pairs, next-sentence prediction)
    question: str = ""  # question answering: `text` is then the context
    target_token: int = ALL_ENTITIES  # token-level targets: the token explained (-1: the predicted entities)
    part: str = ""  # question answering: "start", "end" or "span" ("" the start)
    logit: bool = False
    run: str = ""  # corpus page: reopen this kept run

    def target_spec(self) -> TargetSpec | None:
        if not (self.target or self.label or self.labels or self.prompts or self.reference or self.part or self.logit
                or self.target_token != ALL_ENTITIES):
            return None
        return TargetSpec(
            kind=self.target,
            label=self.label.strip(),
            labels=tuple(s.strip() for s in self.labels.split(",") if s.strip()),
            prompts=tuple(s.strip() for s in self.prompts.split("|") if s.strip()),
            reference=self.reference.strip(),
            token=self.target_token,
            part=self.part,
            logit=self.logit,
        )

    def request(self, *, second: bool = False) -> AnalysisRequest:
        """The analysis request; `second` is the compare page's other side (other model or other text)."""
        model = self.model_b if second and self.mode == "models" else self.model
        text = self.text_b if second and self.mode == "texts" else self.text
        # Compare's heads mode removes the heads on the second side only; elsewhere they go with the request.
        ablate = self.ablate if second == (self.mode == "heads") else ""
        target = self.target_spec()
        if second and self.mode == "models" and target is not None and target.kind not in SHARED_TARGETS:
            # The other model's head may differ: it explains through its own default, reading the same token,
            # answer part and scale where its target reads them.
            target = None if target == TargetSpec(kind=target.kind, label=target.label) else TargetSpec(
                kind="", token=target.token, part=target.part, logit=target.logit)
        return AnalysisRequest(
            text=text, model=model, target=target, n_steps=self.steps, baseline=self.baseline,
            max_tokens=self.max_tokens, tolerance=FAST_TOLERANCE if self.fast else None,
            precision="bf16" if self.fast else "fp32", method=self.method,
            method_settings=setting_pairs(self.method_settings), ablate=ablate,
            ablate_mode=self.ablate_mode if ablate else "zero", pair=self.pair.strip(),
            question=self.question.strip(), integration=FAST_INTEGRATION if self.fast else self.integration,
            delta_tolerance=self.delta_tolerance or None,
        )


DEFAULTS = ViewState()


def setting_pairs(text: str) -> tuple[tuple[str, str], ...]:
    """The request's sorted ("method.setting", value) pairs from the URL text "a.x=1;b.y=2" (already checked)."""
    pairs = {}
    for entry in text.split(SETTING_SEPARATOR):
        key, sep, value = entry.partition("=")
        if sep and key.strip():
            pairs[key.strip()] = value.strip()
    return tuple(sorted(pairs.items()))


def settings_text(pairs: Mapping[str, object] | tuple[tuple[str, str], ...]) -> str:
    """The URL text of ("method.setting", value) pairs, sorted so that one choice has one link."""
    items = pairs.items() if isinstance(pairs, Mapping) else pairs
    return SETTING_SEPARATOR.join(f"{key}={value}" for key, value in sorted(items))


def check_method_settings(text: str) -> tuple[str, list[str]]:
    """The URL's method settings with each unusable entry dropped (its setting keeps its default), and why.

    Each entry is "method.setting=value"; the value is checked by the method's own settings type.
    Integrated gradients' settings come from the steps, fast-mode and baseline fields instead.
    """
    kept: dict[str, str] = {}
    problems: list[str] = []
    for entry in text.split(SETTING_SEPARATOR):
        if not entry.strip():
            continue
        key, sep, value = (part.strip() for part in entry.partition("="))
        name, dot, setting_name = key.partition(".")
        method = METHODS.get(name)
        if not sep or not dot or method is None or name == DEFAULT_METHOD:
            problems.append(f"'{entry.strip()[:60]}' is not a method setting (expected method.setting=value)")
            continue
        try:
            method.settings_type.parse({setting_name: value})
        except InputError as exc:
            problems.append(str(exc).rstrip("."))
            continue
        kept[key] = value
    return settings_text(kept), problems


def check_span(text: str) -> tuple[str, list[str]]:
    """The link's token span "first-last" (places in the text, first <= last), or "" with why it was dropped.

    Whether the text has those tokens is checked when the page draws the map."""
    if not text.strip():
        return "", []
    match = re.fullmatch(r"\s*([0-9]{1,3})\s*-\s*([0-9]{1,3})\s*", text)
    if match is None or not int(match[1]) <= int(match[2]) <= MAX_TOKEN_CHOICES[-1] - 1:
        return "", [f"'{text[:20]}' is not a span of tokens (expected first-last, e.g. 20-59, "
                    f"with first <= last <= {MAX_TOKEN_CHOICES[-1] - 1})"]
    return f"{int(match[1])}-{int(match[2])}", []


def check_ablate(text: str) -> tuple[str, list[str]]:
    """The link's heads to remove with each malformed entry dropped, and why (whether each head exists is
    checked against the model when the page analyses)."""
    kept, problems = [], []
    for entry in text.split(","):
        if not entry.strip():
            continue
        try:
            check_head_text(entry)
        except InputError as exc:
            problems.append(str(exc).rstrip("."))
            continue
        kept.append(re.sub(r"\s+", "", entry))
    return ",".join(kept), problems


EXPLORE, COMPARE, METHODS_PAGE = "explore", "compare", "methods"
HEADS_PAGE = "heads"
CORPUS_PAGE = "corpus"
BOTH = frozenset({EXPLORE, COMPARE})
ALL_PAGES = frozenset({EXPLORE, COMPARE, METHODS_PAGE})
SHORT_TEXT_CHARS = 300


@dataclass(frozen=True)
class UrlField:
    """One URL parameter: the ViewState field it fills, its key, what it accepts and which pages use it.

    The parser (`from_query`), the writer (`to_query`) and the pages' field sets are all read from `URL_FIELDS`.
    """

    name: str
    key: str
    pages: frozenset[str] = BOTH
    choices: tuple[str, ...] = ()
    bounds: tuple[int, int] | None = None  # whole numbers: the range accepted
    max_chars: int = SHORT_TEXT_CHARS
    request: bool = False  # part of what is computed (else only of what is shown)
    required: bool = False  # a text that may not be empty
    # Entries checked one by one: the value kept and what was dropped (a bad entry does not cost the others).
    clean: Callable[[str], tuple[str, list[str]]] | None = None
    # Travels with the user from page to page (the text, the model, the target, the method and its settings);
    # any other field is a page's own and keeps that page's value.
    shared: bool = False

    def parse(self, raw: str, default: object) -> object:
        """The field's value from its query string; ValueError with what was expected."""
        if isinstance(default, bool):
            if raw not in ("0", "1"):
                raise ValueError("expected 0 or 1")
            return raw == "1"
        if isinstance(default, float):
            assert self.bounds is not None, self.name
            low, high = self.bounds
            if not re.fullmatch(r"[0-9]*\.?[0-9]+(e-?[0-9]+)?", raw.strip()) or not low <= float(raw) <= high:
                raise ValueError(f"expected a number from {low} to {high}")
            return float(raw)
        if isinstance(default, int):
            assert self.bounds is not None, self.name
            low, high = self.bounds
            if not re.fullmatch(r"-?[0-9]+", raw.strip()) or not low <= int(raw) <= high:
                raise ValueError(f"expected a whole number from {low} to {high}")
            return int(raw)
        if self.choices and raw not in self.choices:
            raise ValueError(f"expected one of {', '.join(c or '(default)' for c in self.choices)}")
        if len(raw) > self.max_chars:
            raise ValueError(f"longer than {self.max_chars} characters")
        if any(ord(c) < 32 and c not in "\n\t\r" for c in raw):
            raise ValueError("it contains control characters")
        if self.required and not raw.strip():
            raise ValueError("the text is empty")
        return raw


_LAYER_HEAD = (0, 99)
URL_FIELDS: tuple[UrlField, ...] = (
    UrlField("text", KEY_TEXT, max_chars=MAX_TEXT_CHARS, request=True, required=True, shared=True),
    UrlField("model", KEY_MODEL, request=True, shared=True),
    UrlField("target", KEY_TARGET, choices=("",) + TARGET_KINDS, request=True, shared=True),
    UrlField("label", KEY_LABEL, request=True, shared=True),
    UrlField("labels", KEY_LABELS, request=True, shared=True),
    UrlField("prompts", KEY_PROMPTS, request=True, shared=True),
    UrlField("reference", KEY_REFERENCE, max_chars=MAX_TEXT_CHARS, request=True, shared=True),
    UrlField("steps", KEY_STEPS, bounds=(MIN_STEPS, MAX_STEPS), request=True, shared=True),
    UrlField("integration", KEY_INTEGRATION, pages=ALL_PAGES, choices=INTEGRATION_CHOICES, request=True,
             shared=True),
    UrlField("delta_tolerance", KEY_DELTA_TOLERANCE, pages=ALL_PAGES, bounds=(0, 1), request=True, shared=True),
    UrlField("baseline", KEY_BASELINE, choices=BASELINES, request=True, shared=True),
    UrlField("max_tokens", KEY_MAX_TOKENS, bounds=(3, 512), request=True, shared=True),
    UrlField("fast", KEY_FAST, request=True, shared=True),
    UrlField("level", KEY_LEVEL, choices=LEVELS),
    UrlField("layer", KEY_LAYER, bounds=_LAYER_HEAD),
    UrlField("head", KEY_HEAD, bounds=_LAYER_HEAD),
    UrlField("hide_special", KEY_HIDE_SPECIAL),
    UrlField("token", KEY_TOKEN, bounds=(0, 511)),
    UrlField("stat", KEY_STAT, choices=tuple(HEAD_STATISTICS)),
    UrlField("aggregate", KEY_AGGREGATE, choices=AGGREGATES),
    UrlField("stretch", KEY_STRETCH),
    UrlField("span", KEY_SPAN, pages=frozenset({EXPLORE}), max_chars=16, clean=check_span),
    UrlField("model_b", KEY_MODEL_B, pages=frozenset({COMPARE}), request=True),
    UrlField("text_b", KEY_TEXT_B, pages=frozenset({COMPARE}), max_chars=MAX_TEXT_CHARS, request=True,
             required=True),
    UrlField("layer_b", KEY_LAYER_B, pages=frozenset({COMPARE}), bounds=_LAYER_HEAD),
    UrlField("head_b", KEY_HEAD_B, pages=frozenset({COMPARE}), bounds=_LAYER_HEAD),
    UrlField("mode", KEY_MODE, pages=frozenset({COMPARE}), choices=COMPARE_MODES, request=True),
    UrlField("analysis", KEY_ANALYSIS),
    UrlField("method", KEY_METHOD, pages=ALL_PAGES, choices=tuple(METHODS), request=True, shared=True),
    UrlField("method_settings", KEY_METHOD_SETTINGS, pages=ALL_PAGES, max_chars=1000, request=True,
             clean=check_method_settings, shared=True),
    UrlField("removal", KEY_REMOVAL, pages=frozenset({METHODS_PAGE}), choices=REMOVAL_MODES),
    # depth
    UrlField("depth", KEY_DEPTH),  # on both pages, so a trip to Compare and back keeps it
    UrlField("flow", KEY_FLOW),
    UrlField("flow_threshold", KEY_FLOW_THRESHOLD, bounds=(0, 1)),
    UrlField("show_aggregates", KEY_SHOW_AGGREGATES),  # compare keeps it, as it keeps depth
    UrlField("show_grid", KEY_SHOW_GRID),
    # heads ablation
    UrlField("ablate", KEY_ABLATE, max_chars=2000, request=True, clean=check_ablate),
    UrlField("ablate_mode", KEY_ABLATE_MODE, choices=ABLATION_MODES, request=True),
    # heads page
    UrlField("heads_layer", KEY_HEADS_LAYER, pages=frozenset({HEADS_PAGE}), bounds=_LAYER_HEAD),
    UrlField("heads_head", KEY_HEADS_HEAD, pages=frozenset({HEADS_PAGE}), bounds=_LAYER_HEAD),
    UrlField("heads_token", KEY_HEADS_TOKEN, pages=frozenset({HEADS_PAGE}), bounds=(0, 511)),
    UrlField("prune_map", KEY_PRUNE_MAP, pages=frozenset({HEADS_PAGE}), choices=MAP_NAMES),
    UrlField("prune_order", KEY_PRUNE_ORDER, pages=frozenset({HEADS_PAGE}), choices=PRUNING_ORDERS),
    UrlField("pair", KEY_PAIR, pages=ALL_PAGES, max_chars=MAX_TEXT_CHARS, request=True, shared=True),
    UrlField("question", KEY_QUESTION, pages=ALL_PAGES, max_chars=MAX_TEXT_CHARS, request=True, shared=True),
    UrlField("target_token", KEY_TARGET_TOKEN, pages=ALL_PAGES, bounds=(ALL_ENTITIES, 511), request=True, shared=True),
    UrlField("part", KEY_PART, pages=ALL_PAGES, choices=("",) + ANSWER_PARTS, request=True, shared=True),
    UrlField("logit", KEY_LOGIT, pages=ALL_PAGES, request=True, shared=True),
    UrlField("run", KEY_RUN, pages=frozenset({CORPUS_PAGE}), max_chars=64),
)
FIELDS_BY_NAME = {f.name: f for f in URL_FIELDS}
assert set(FIELDS_BY_NAME) == {f.name for f in fields(ViewState)}, "every ViewState field has one URL field"
# Written into every link even at their default value: the text (a link shows a sentence), and the integration
# rule (whose absence marks a link from before it existed, `migrate_query`).
ALWAYS_WRITTEN = ("text", "integration", "delta_tolerance")
# Written whenever the first field is: a link without `ao` that names an aggregate view was written before the
# aggregate views could close, when the view it names was on screen (`migrate_query`).
WRITTEN_WITH = {"aggregate": "show_aggregates"}


def migrate_query(params: Mapping[str, str | list[str]]) -> dict[str, str | list[str]]:
    """Query params of a link written by any earlier version, as this version reads them.

    A link without the integration rule comes from before adaptive integration was the default: it ran
    fixed steps, so it gets FIXED_INTEGRATION; one without the delta tolerance comes from before adaptive
    integration checked the delta, so it gets 0 (tokens only); one naming an aggregate view (`ag`) without saying
    whether the aggregate views are open comes from before they could close, so they open. No params at all is a
    fresh visit, which gets today's defaults.
    """
    out = dict(params)
    if out and KEY_INTEGRATION not in out:
        out[KEY_INTEGRATION] = FIXED_INTEGRATION
    if out and KEY_DELTA_TOLERANCE not in out:  # written before adaptive integration checked the delta
        out[KEY_DELTA_TOLERANCE] = "0"
    if KEY_AGGREGATE in out and KEY_SHOW_AGGREGATES not in out:  # the view it names was open then
        out[KEY_SHOW_AGGREGATES] = "1"
    return out


def from_query(params: Mapping[str, str | list[str]]) -> tuple[ViewState, list[str]]:
    """Parse query params into a state; each unusable value is replaced by its default, with a notice."""
    values: dict[str, object] = {}
    notices: list[str] = []
    params = migrate_query(params)
    for url_field in URL_FIELDS:
        name, key = url_field.name, url_field.key
        if key not in params:
            continue
        raw = params[key]
        if isinstance(raw, list):
            raw = raw[-1] if raw else ""
        raw = str(raw)
        default = getattr(DEFAULTS, name)
        try:
            values[name] = url_field.parse(raw, default)
        except ValueError as exc:
            notices.append(f"The link's '{key}' value was ignored: {exc}.")
            continue
        if url_field.clean is not None:
            values[name], problems = url_field.clean(str(values[name]))
            notices += [f"Part of the link's '{key}' value was ignored: {problem}." for problem in problems]
    unknown = sorted(set(params) - {f.key for f in URL_FIELDS})
    if unknown:
        notices.append(f"The link had parameters this page does not know ({', '.join(unknown[:5])}); they were ignored.")
    return replace(DEFAULTS, **values), notices


def to_query(state: ViewState, *, include: set[str] | None = None) -> dict[str, str]:
    """Query params for `state`: only fields that differ from the defaults (short links)."""
    out: dict[str, str] = {}
    companions = {WRITTEN_WITH[f.name] for f in fields(ViewState) if f.name in WRITTEN_WITH
                  and getattr(state, f.name) != getattr(DEFAULTS, f.name)}
    for f in fields(ViewState):
        if include is not None and f.name not in include:
            continue
        value = getattr(state, f.name)
        if value == getattr(DEFAULTS, f.name) and f.name not in ALWAYS_WRITTEN and f.name not in companions:
            continue
        out[FIELDS_BY_NAME[f.name].key] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return out


EXPLORE_FIELDS = {f.name for f in URL_FIELDS if EXPLORE in f.pages}
COMPARE_FIELDS = {f.name for f in URL_FIELDS if COMPARE in f.pages}
# The methods page computes what explore computes (no saved analyses, no attention view).
METHODS_FIELDS = {f.name for f in URL_FIELDS
                  if METHODS_PAGE in f.pages or (f.request and EXPLORE in f.pages and f.name != "analysis")} - {
    "ablate", "ablate_mode"}  # heads ablation: shown (with its banner) on explore and compare only
REQUEST_FIELDS = {f.name for f in URL_FIELDS if f.request}
# The heads page computes from the text, the model, the target and the token limit (no attribution method).
HEADS_REQUEST_FIELDS = {"text", "model", "target", "label", "labels", "prompts", "reference", "max_tokens", "pair",
                        "question", "target_token", "part", "logit"}
CORPUS_FIELDS = {f.name for f in URL_FIELDS if CORPUS_PAGE in f.pages}
HEADS_FIELDS = HEADS_REQUEST_FIELDS | {f.name for f in URL_FIELDS if HEADS_PAGE in f.pages}
# The request's integration fields and the state fields that set them (a delta remedy's changes land here).
REQUEST_SETTING_FIELDS = {"n_steps": "steps", "integration": "integration", "delta_tolerance": "delta_tolerance"}
SHARED_FIELDS = frozenset(f.name for f in URL_FIELDS if f.shared)
# The fields each page reads and writes (its link); a page not named here (Saved) has none.
PAGE_FIELDS: dict[str, frozenset[str]] = {
    EXPLORE: frozenset(EXPLORE_FIELDS), COMPARE: frozenset(COMPARE_FIELDS), METHODS_PAGE: frozenset(METHODS_FIELDS),
    HEADS_PAGE: frozenset(HEADS_FIELDS), CORPUS_PAGE: frozenset(CORPUS_FIELDS)}


def returning_state(own: Mapping[str, object], shared: Mapping[str, object]) -> ViewState:
    """A page's state when the user comes back to it: its own last values under the values every page shares.

    A saved analysis the page showed is dropped when a shared value changed since (it no longer shows them).
    """
    values = {**own, **shared}
    if any(own.get(name, shared[name]) != shared[name] for name in shared):
        values["analysis"] = ""
    return replace(DEFAULTS, **{k: v for k, v in values.items() if v is not None})


def state_from_saved(requests: list[AnalysisRequest], view: Mapping[str, str],
                     url: Mapping[str, str | list[str]]) -> tuple[ViewState, list[str]]:
    """The state that reopens a saved analysis: its request(s), then its saved view, then the link's own params."""
    state, notices = from_query({**view, **url})
    first = requests[0]
    target = first.target or TargetSpec(kind="")
    # A saved request holds the prompts it resolved to; the default ones were never typed, so they stay empty
    # (and follow the labels when the user edits them).
    default_prompts = tuple(PROMPT_TEMPLATE.format(label) for label in target.labels)
    prompts = "" if target.prompts == default_prompts else " | ".join(target.prompts)
    values: dict[str, object] = {
        "text": first.text, "model": first.model, "target": target.kind, "label": target.label,
        "labels": ", ".join(target.labels), "prompts": prompts, "reference": target.reference,
        "steps": first.n_steps, "baseline": first.baseline, "max_tokens": first.max_tokens,
        "fast": first.integration == FAST_INTEGRATION or first.precision != "fp32",
        "integration": first.integration if first.integration in INTEGRATION_CHOICES else DEFAULT_INTEGRATION,
        "delta_tolerance": float(first.delta_tolerance or 0.0),
        "method": first.method if first.method in METHODS else DEFAULT_METHOD,
        "method_settings": check_method_settings(settings_text(first.method_settings))[0],
        "ablate": first.ablate, "ablate_mode": first.ablate_mode,
        "pair": first.pair, "question": first.question, "target_token": target.token, "part": target.part,
        "logit": target.logit,
    }
    if len(requests) > 1:
        second = requests[1]
        values["model_b"] = second.model
        values["text_b"] = second.text
        values["mode"] = "texts" if second.text != first.text else "models"
        if second.ablate and not first.ablate and (second.model, second.text) == (first.model, first.text):
            values.update(mode="heads", ablate=second.ablate, ablate_mode=second.ablate_mode)
    return replace(state, **values), notices
