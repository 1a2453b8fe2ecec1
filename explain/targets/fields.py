"""The fields a target reads, declared once: type, default, help, range or choices, how a list is written, and
the command-line flag and URL key that carry it. A `TargetKind` names the fields it reads (`reads`); the CLI
flags, the URL keys and the dashboard controls are built from these declarations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from explain.errors import InputError

ANSWER_PARTS = ("start", "end", "span")
SENTIMENT_LABELS = ("positive", "negative")
PROMPT_TEMPLATE = "This text is {}."
MAX_TOKEN_INDEX = 511


@dataclass(frozen=True)
class TargetField:
    """One `TargetSpec` field as the interfaces offer it.

    kind: str, int, bool or tuple (a list of texts written with `separator`); default: the value when it is
    not given (its TargetSpec default); minimum/maximum: a whole number's range; choices: the allowed texts;
    flag: the command-line option; url_key: the link's query key (never change one: old links use it).
    """

    name: str
    kind: type
    title: str
    help: str
    flag: str
    url_key: str
    default: Any = ""
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    separator: str = ""
    placeholder: str = ""

    def parse(self, raw: Any) -> Any:
        """The field's value from plain input (a flag's or a link's text); InputError in one sentence."""
        if self.kind is bool:
            return raw if isinstance(raw, bool) else str(raw).lower() in ("1", "true", "yes", "on")
        if self.kind is tuple:
            return tuple(part.strip() for part in str(raw).split(self.separator) if part.strip())
        if self.kind is int:
            try:
                value = int(raw)
            except (TypeError, ValueError):
                raise InputError(f"The {self.title.lower()} must be a whole number, not {raw!r}.") from None
            low = self.minimum if self.minimum is not None else value
            high = self.maximum if self.maximum is not None else value
            if not low <= value <= high:
                raise InputError(f"The {self.title.lower()} must be from {low} to {high}, not {value}.")
            return value
        text = str(raw)
        if self.choices and text and text not in self.choices:
            raise InputError(f"The {self.title.lower()} must be one of {', '.join(self.choices)}, not {text!r}.")
        return text

    def is_given(self, value: Any) -> bool:
        """Whether `value` sets the field (differs from its default)."""
        return value is not None and value != self.default and value != ()


TARGET_FIELDS: dict[str, TargetField] = {f.name: f for f in (
    TargetField("label", str, "Label to explain", "which class, token label, next-sentence label, zero-shot label "
                "or masked-token candidate to explain (default: the top one)", "--label", "lb",
                placeholder="top prediction"),
    TargetField("labels", tuple, "Labels", "zero-shot labels, comma-separated (default: "
                f"{','.join(SENTIMENT_LABELS)})", "--labels", "ls", default=(), separator=",",
                placeholder=", ".join(SENTIMENT_LABELS)),
    TargetField("prompts", tuple, "Prompts", "zero-shot prompts, '|'-separated, one per label (default: "
                f"'{PROMPT_TEMPLATE.format('<label>')}')", "--prompts", "pr", default=(), separator="|"),
    TargetField("reference", str, "Reference text", "reference text for the similarity target", "--reference",
                "ref", placeholder="A sentence to compare with"),
    TargetField("token", int, "Token", "token classification: explain the label at this token; question "
                "answering: the start or end logit at this token (default: every predicted entity, each at its "
                "first token; the answer's own tokens)", "--token", "tt", default=-1, minimum=0,
                maximum=MAX_TOKEN_INDEX),
    TargetField("part", str, "Answer part", "question answering: explain the answer's start logit, end logit or "
                "span score (start + end logit) (default start)", "--part", "pt", choices=ANSWER_PARTS),
    TargetField("logit", bool, "Explain the logit", "explain the raw logit rather than the probability (class, "
                "token label, next sentence, masked token)", "--logit", "lg", default=False),
)}
SPAN_DISPLAYS = ("none", "entities", "answer")


def target_values(given: dict[str, Any]) -> dict[str, Any]:
    """TargetSpec keyword values from plain inputs by field name (absent or None: the field's default)."""
    return {name: TARGET_FIELDS[name].parse(value) if value is not None else TARGET_FIELDS[name].default
            for name, value in given.items() if name in TARGET_FIELDS}
