"""The share document: one or two analyses plus the view, as saved, exported and uploaded.

A document is plain JSON data, so the SQLite store, the JSON download and the
upload all hold the same thing; a bare analysis JSON (from the CLI) is accepted too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from explain.errors import SchemaError
from explain.records import (
    APP_VERSION,
    Analysis,
    ReadLimits,
    analysis_from_dict,
    check_depth,
    parse_json,
    to_jsonable,
)

DOCUMENT_FORMAT = "explain.document"
DOCUMENT_VERSION = 1
KINDS = ("explore", "compare")


@dataclass
class Document:
    kind: str  # "explore" (one analysis) or "compare" (two)
    analyses: list[Analysis]
    view: dict[str, str] = field(default_factory=dict)  # the page's query params, for the same view

    def to_data(self) -> dict[str, Any]:
        return {
            "format": DOCUMENT_FORMAT,
            "version": DOCUMENT_VERSION,
            "app_version": APP_VERSION,
            "kind": self.kind,
            "analyses": [to_jsonable(a) for a in self.analyses],
            "view": dict(self.view),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_data(), separators=(",", ":"))

    @property
    def preview(self) -> str:
        return " | ".join(dict.fromkeys(a.request.text for a in self.analyses))[:200]

    @property
    def models(self) -> list[str]:
        return [a.model.spec for a in self.analyses]


def document_from_data(data: Any, limits: ReadLimits | None = None) -> Document:
    """Read a document (or a bare analysis) from JSON data; SchemaError with one sentence otherwise.

    Every field is type-checked and each analysis bounded by `limits` (default: from the environment).
    """
    check_depth(data)
    limits = limits or ReadLimits.from_env()
    if isinstance(data, dict) and data.get("format") == "explain.analysis":
        return Document(kind="explore", analyses=[analysis_from_dict(data, limits=limits)])
    if not isinstance(data, dict) or data.get("format") != DOCUMENT_FORMAT:
        raise SchemaError("This JSON is not an analysis exported by this dashboard.")
    version = data.get("version")
    if isinstance(version, bool) or version != DOCUMENT_VERSION:
        raise SchemaError(f"This export has format version {version!r}; this dashboard reads "
                          f"version {DOCUMENT_VERSION}.")
    kind = data.get("kind")
    analyses = data.get("analyses")
    if kind not in KINDS or not isinstance(analyses, list) or len(analyses) != (1 if kind == "explore" else 2):
        raise SchemaError("This export is damaged: it does not hold the analyses its kind needs.")
    view = data.get("view", {})
    if not isinstance(view, dict):
        raise SchemaError("This export is damaged: its view settings are not readable.")
    for key, value in view.items():
        if not isinstance(value, str):
            raise SchemaError(f"This export is damaged: view.{key[:40]} must be text.")
    return Document(kind=kind, analyses=[analysis_from_dict(a, f"analyses[{i}]", limits) for i, a in enumerate(analyses)],
                    view=dict(view))


def document_from_json(text: str | bytes, limits: ReadLimits | None = None) -> Document:
    """Read a document from JSON text; SchemaError (one sentence) on anything this dashboard did not write."""
    return document_from_data(parse_json(text), limits)
