"""The explore and compare pages' state as one typed object <-> URL query params.

Pure (no streamlit): query params are always strings, so every field is parsed
and checked here; anything unusable falls back to its default and is reported
as a notice the page shows.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from explain.analysis import (
    BASELINES,
    DEFAULT_MAX_TOKENS,
    DEFAULT_STEPS,
    MAX_STEPS,
    MIN_STEPS,
    AnalysisRequest,
    TargetSpec,
)
from explain.attention import HEAD_STATISTICS
from explain.models import DEFAULT_MODEL, RANDOM_CONTROL
from explain.targets import PROMPT_TEMPLATE, TARGET_KINDS

DEFAULT_TEXT = "The film was good but far too long."
DEFAULT_SECOND_TEXT = "The film was bad and far too long."
MAX_TEXT_CHARS = 5000
MAX_TOKEN_CHOICES = (32, 64, 128, 256, 512)
LEVELS = ("word", "subword")
COMPARE_MODES = ("models", "texts")
AGGREGATES = ("rollout", "stats", "token")

# One constant per URL key: short, stable names that links depend on.
KEY_TEXT = "t"
KEY_MODEL = "m"
KEY_TARGET = "tg"
KEY_LABEL = "lb"
KEY_LABELS = "ls"
KEY_PROMPTS = "pr"
KEY_REFERENCE = "ref"
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
KEY_FAST = "fa"
# Fast mode: adaptive steps (n_steps is the cap) until |delta| <= FAST_TOLERANCE x the score change, under bf16.
FAST_TOLERANCE = 1e-2
KEY_MODEL_B = "m2"
KEY_TEXT_B = "t2"
KEY_LAYER_B = "l2"
KEY_HEAD_B = "h2"
KEY_MODE = "cm"
KEY_ANALYSIS = "analysis"


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
    steps: int = DEFAULT_STEPS
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
    # compare page
    model_b: str = RANDOM_CONTROL
    text_b: str = DEFAULT_SECOND_TEXT
    layer_b: int = 0
    head_b: int = 0
    mode: str = "models"
    analysis: str = ""  # a saved analysis id: reopen it instead of computing

    def target_spec(self) -> TargetSpec | None:
        if not (self.target or self.label or self.labels or self.prompts or self.reference):
            return None
        return TargetSpec(
            kind=self.target,
            label=self.label.strip(),
            labels=tuple(s.strip() for s in self.labels.split(",") if s.strip()),
            prompts=tuple(s.strip() for s in self.prompts.split("|") if s.strip()),
            reference=self.reference.strip(),
        )

    def request(self, *, second: bool = False) -> AnalysisRequest:
        """The analysis request; `second` is the compare page's other side (other model or other text)."""
        model = self.model_b if second and self.mode == "models" else self.model
        text = self.text_b if second and self.mode == "texts" else self.text
        target = self.target_spec()
        if second and self.mode == "models" and target is not None and target.kind in ("", "class", "masked_token"):
            target = None  # the other model's head may differ: it explains through its own default
        return AnalysisRequest(
            text=text, model=model, target=target, n_steps=self.steps, baseline=self.baseline,
            max_tokens=self.max_tokens, tolerance=FAST_TOLERANCE if self.fast else None,
            precision="bf16" if self.fast else "fp32",
        )


DEFAULTS = ViewState()

_FIELD_KEYS = {
    "text": KEY_TEXT, "model": KEY_MODEL, "target": KEY_TARGET, "label": KEY_LABEL, "labels": KEY_LABELS,
    "prompts": KEY_PROMPTS, "reference": KEY_REFERENCE, "steps": KEY_STEPS, "baseline": KEY_BASELINE,
    "max_tokens": KEY_MAX_TOKENS, "fast": KEY_FAST, "level": KEY_LEVEL, "layer": KEY_LAYER, "head": KEY_HEAD,
    "hide_special": KEY_HIDE_SPECIAL, "token": KEY_TOKEN, "stat": KEY_STAT, "aggregate": KEY_AGGREGATE,
    "stretch": KEY_STRETCH, "model_b": KEY_MODEL_B, "text_b": KEY_TEXT_B, "layer_b": KEY_LAYER_B,
    "head_b": KEY_HEAD_B, "mode": KEY_MODE, "analysis": KEY_ANALYSIS,
}
_CHOICES = {
    "target": ("",) + TARGET_KINDS, "baseline": BASELINES, "level": LEVELS, "stat": tuple(HEAD_STATISTICS),
    "mode": COMPARE_MODES, "aggregate": AGGREGATES,
}
_RANGES = {
    "steps": (MIN_STEPS, MAX_STEPS), "max_tokens": (3, 512), "layer": (0, 99), "head": (0, 99),
    "token": (0, 511), "layer_b": (0, 99), "head_b": (0, 99),
}
_LONG_TEXT_FIELDS = {"text", "text_b", "reference"}
_SHORT_LIMIT = 300


def from_query(params: Mapping[str, str | list[str]]) -> tuple[ViewState, list[str]]:
    """Parse query params into a state; each unusable value is replaced by its default, with a notice."""
    values: dict[str, object] = {}
    notices: list[str] = []
    for name, key in _FIELD_KEYS.items():
        if key not in params:
            continue
        raw = params[key]
        if isinstance(raw, list):
            raw = raw[-1] if raw else ""
        raw = str(raw)
        default = getattr(DEFAULTS, name)
        try:
            values[name] = _parse(name, raw, default)
        except ValueError as exc:
            notices.append(f"The link's '{key}' value was ignored: {exc}.")
    unknown = sorted(set(params) - set(_FIELD_KEYS.values()))
    if unknown:
        notices.append(f"The link had parameters this page does not know ({', '.join(unknown[:5])}); they were ignored.")
    return replace(DEFAULTS, **values), notices


def _parse(name: str, raw: str, default: object) -> object:
    if isinstance(default, bool):
        if raw not in ("0", "1"):
            raise ValueError("expected 0 or 1")
        return raw == "1"
    if isinstance(default, int):
        low, high = _RANGES[name]
        if not re.fullmatch(r"-?[0-9]+", raw.strip()):
            raise ValueError(f"expected a whole number from {low} to {high}")
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"expected a whole number from {low} to {high}")
        return value
    if name in _CHOICES and raw not in _CHOICES[name]:
        raise ValueError(f"expected one of {', '.join(c or '(default)' for c in _CHOICES[name])}")
    limit = MAX_TEXT_CHARS if name in _LONG_TEXT_FIELDS else _SHORT_LIMIT
    if len(raw) > limit:
        raise ValueError(f"longer than {limit} characters")
    if any(ord(c) < 32 and c not in "\n\t\r" for c in raw):
        raise ValueError("it contains control characters")
    if name in ("text", "text_b") and not raw.strip():
        raise ValueError("the text is empty")
    return raw


def to_query(state: ViewState, *, include: set[str] | None = None) -> dict[str, str]:
    """Query params for `state`: only fields that differ from the defaults (short links)."""
    out: dict[str, str] = {}
    for f in fields(ViewState):
        if include is not None and f.name not in include:
            continue
        value = getattr(state, f.name)
        if value == getattr(DEFAULTS, f.name) and f.name not in ("text",):
            continue
        out[_FIELD_KEYS[f.name]] = ("1" if value else "0") if isinstance(value, bool) else str(value)
    return out


EXPLORE_FIELDS = {
    "text", "model", "target", "label", "labels", "prompts", "reference", "steps", "baseline", "max_tokens",
    "fast", "level", "layer", "head", "hide_special", "token", "stat", "aggregate", "stretch", "analysis",
}
COMPARE_FIELDS = EXPLORE_FIELDS | {"model_b", "text_b", "layer_b", "head_b", "mode"}


REQUEST_FIELDS = {"text", "model", "target", "label", "labels", "prompts", "reference", "steps", "baseline",
                  "max_tokens", "fast", "model_b", "text_b", "mode"}


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
        "fast": first.tolerance is not None or first.precision != "fp32",
    }
    if len(requests) > 1:
        second = requests[1]
        values["model_b"] = second.model
        values["text_b"] = second.text
        values["mode"] = "texts" if second.text != first.text else "models"
    return replace(state, **values), notices
