"""The share document: one or two analyses plus the view, as saved, exported and uploaded.

A document is plain JSON data, so the SQLite store, the JSON download and the
upload all hold the same thing; a bare analysis JSON (from the CLI) is accepted too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from explain.analysis import APP_VERSION, Analysis, analysis_from_dict, to_jsonable
from explain.errors import SchemaError

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


def document_from_data(data: Any) -> Document:
    """Read a document (or a bare analysis) from JSON data; SchemaError with one sentence otherwise."""
    if isinstance(data, dict) and data.get("format") == "explain.analysis":
        return Document(kind="explore", analyses=[analysis_from_dict(data)])
    if not isinstance(data, dict) or data.get("format") != DOCUMENT_FORMAT:
        raise SchemaError("This JSON is not an analysis exported by this dashboard.")
    if data.get("version") != DOCUMENT_VERSION:
        raise SchemaError(f"This export has format version {data.get('version')!r}; this dashboard reads "
                          f"version {DOCUMENT_VERSION}.")
    kind = data.get("kind")
    analyses = data.get("analyses")
    if kind not in KINDS or not isinstance(analyses, list) or len(analyses) != (1 if kind == "explore" else 2):
        raise SchemaError("This export is damaged: it does not hold the analyses its kind needs.")
    view = data.get("view") or {}
    if not isinstance(view, dict):
        raise SchemaError("This export is damaged: its view settings are not readable.")
    return Document(kind=kind, analyses=[analysis_from_dict(a) for a in analyses],
                    view={str(k): str(v) for k, v in view.items()})


def document_from_json(text: str | bytes) -> Document:
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SchemaError("The file is not valid JSON.") from exc
    return document_from_data(data)
