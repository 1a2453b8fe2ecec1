"""Schema migrations: each upgrades an analysis document one version, as a plain function of its dict.

`migrate` runs them in turn as a document is read, so analyses and share links written by any earlier
version open with the same numbers.
"""

from __future__ import annotations

from explain.records.requests import implied_integration


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
