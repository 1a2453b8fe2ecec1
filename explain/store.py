"""Saved analyses behind share links, kept in one embedded SQLite file.

A saved entry is plain JSON data (for example ``{"analyses": [...], "view": {...}}``)
stored under a short id derived from its content, so a link names exactly what
was saved and saving the same thing twice gives the same link. Every operation
opens its own connection (safe across threads and processes) and every failure
becomes a `StoreError` whose message is one sentence the user can act on.

Anyone with a link may view; only a saver may delete. Each save returns a delete
token (kept by the store only as its SHA-256); one analysis saved by several people
holds one claim per token, `delete(id, token)` removes that saver's claim, and the
analysis goes when its last claim does, so nobody's link breaks because someone else
deleted. Rows from a store written before tokens existed (schema 1) hold a claim no
token matches: only the server's admin removes them (`remove`). One document may
take EXPLAIN_MAX_DOCUMENT_MB as JSON (default 256) and the whole file
EXPLAIN_MAX_STORE_MB (default 2048).
"""

from __future__ import annotations

import base64
import builtins
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from explain.errors import ExplainError

STORE_SCHEMA_VERSION = 2  # kept in PRAGMA user_version; 2 added delete tokens
KINDS = ("explore", "compare")
ID_LENGTH = 12
ID_PATTERN = re.compile(rf"[a-z2-7]{{{ID_LENGTH}}}")  # lowercase base32 alphabet
PREVIEW_CHARS = 200
BUSY_TIMEOUT_S = 5.0
ENCODING = "json+zlib"
MB = 2**20
DEFAULT_MAX_DOCUMENT_MB = 256  # a minilm analysis at 512 tokens is 96 MB as JSON, a comparison of two 192 MB
DEFAULT_MAX_STORE_MB = 2048
TOKEN_BYTES = 24  # 32 URL-safe characters
ADMIN_CLAIM = ""  # the claim of rows saved before tokens existed: no token hashes to it

_SCHEMA = """
CREATE TABLE IF NOT EXISTS analyses (
    id          TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    preview     TEXT NOT NULL,
    models      TEXT NOT NULL,
    app_version TEXT NOT NULL DEFAULT '',
    encoding    TEXT NOT NULL,
    size        INTEGER NOT NULL,
    document    BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS analyses_newest ON analyses (created_at DESC);
CREATE TABLE IF NOT EXISTS claims (
    id          TEXT NOT NULL,
    token_hash  TEXT NOT NULL,
    PRIMARY KEY (id, token_hash)
) WITHOUT ROWID;
"""
_MIGRATE_1_TO_2 = "INSERT OR IGNORE INTO claims (id, token_hash) SELECT id, '' FROM analyses"


class StoreError(ExplainError):
    """The analysis store cannot save or return what was asked for.

    The sentence never names the store's file (visitors read it; where the server keeps its files is not theirs
    to learn); `path` holds it for the operator.
    """

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class SaveReceipt:
    """What a save gives back: the id for the link, and the token that lets its saver delete it (shown once)."""

    id: str
    delete_token: str


@dataclass(frozen=True)
class SavedAnalysisSummary:
    """One row of the store's listing (without the document, which can be large)."""

    id: str
    created_at: str
    kind: str
    preview: str
    models: list[str]
    app_version: str = ""
    size: int = 0  # bytes of the canonical JSON document


@dataclass(frozen=True)
class SavedAnalysis:
    """A saved entry with its JSON document, as `AnalysisStore.load` returns it."""

    id: str
    created_at: str
    kind: str
    preview: str
    models: list[str]
    document: dict
    app_version: str = ""


def default_store_path() -> Path:
    """Where the dashboard keeps saved analyses: $EXPLAIN_STORE_PATH, else ./data/analyses.sqlite3."""
    configured = os.environ.get("EXPLAIN_STORE_PATH", "").strip()
    if configured:
        return Path(configured).expanduser()
    return Path.cwd() / "data" / "analyses.sqlite3"


def env_megabytes(name: str, default: float) -> int:
    """A size in bytes from an environment variable given in MB (2**20 bytes); ExplainError when unreadable."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return int(default * MB)
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not (value > 0 and value < 2**40):
        raise ExplainError(f"{name}={raw!r} is not a positive number.")
    return int(value * MB)


def format_size(n_bytes: int) -> str:
    """Bytes below one MB, MB with three significant digits below 100 MB, else whole MB ("2,050 MB")."""
    if n_bytes < MB:
        return f"{n_bytes} bytes"
    mb = n_bytes / MB
    return f"{mb:,.0f} MB" if mb >= 100 else f"{mb:.3g} MB"


def new_delete_token() -> str:
    """A fresh random delete token (URL-safe, 32 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the store keeps of a delete token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def canonical_bytes(document: Any) -> bytes:
    """The canonical JSON form of a document (sorted keys, no spaces), which the id is derived from."""
    try:
        text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise StoreError(f"The analysis cannot be saved because it is not plain JSON data ({exc}).") from exc
    return text.encode("utf-8")


def content_id(canonical: bytes) -> str:
    """A short URL-safe id for some canonical bytes: lowercase base32 of their SHA-256, 12 characters."""
    digest = hashlib.sha256(canonical).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:ID_LENGTH]


def normalise_id(analysis_id: Any) -> str:
    """The id in its stored form (trimmed, lowercase); StoreError when it cannot be an id at all."""
    if isinstance(analysis_id, str):
        candidate = analysis_id.strip().lower()
        if ID_PATTERN.fullmatch(candidate):
            return candidate
    shown = repr(analysis_id) if len(repr(analysis_id)) <= 40 else repr(analysis_id)[:37] + "..."
    raise StoreError(
        f"{shown} is not a saved-analysis id; an id is {ID_LENGTH} characters of letters a-z and digits 2-7."
    )


class AnalysisStore:
    """Saved analyses in one SQLite file, addressed by content-derived ids.

    The file uses WAL journalling and a busy timeout so concurrent saves from
    several threads or processes wait for each other instead of failing. Reads
    never create the file. `read_only=True` opens it with SQLite's ``mode=ro``
    (saves and deletes then fail with the read-only message); `max_bytes` caps
    how large the file may grow, a guard for the disk of a shared server, and
    `max_document_bytes` how large one saved document may be as JSON (both
    default to EXPLAIN_MAX_STORE_MB and EXPLAIN_MAX_DOCUMENT_MB).
    """

    def __init__(self, path: str | Path, *, read_only: bool = False, max_bytes: int | None = None,
                 max_document_bytes: int | None = None) -> None:
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self.max_bytes = env_megabytes("EXPLAIN_MAX_STORE_MB", DEFAULT_MAX_STORE_MB) if max_bytes is None else max_bytes
        self.max_document_bytes = (env_megabytes("EXPLAIN_MAX_DOCUMENT_MB", DEFAULT_MAX_DOCUMENT_MB)
                                   if max_document_bytes is None else max_document_bytes)

    def __repr__(self) -> str:
        return f"AnalysisStore({str(self.path)!r})"

    # -- public operations -------------------------------------------------

    def save(self, document: dict, *, kind: str, preview: str, models: builtins.list[str],
             delete_token: str | None = None) -> SaveReceipt:
        """Store `document` (plain JSON data); its id, and the token that deletes it.

        Saving the same content again gives the same id. `delete_token` (for example one per browser
        session) claims the analysis with that token; None makes a fresh one.
        """
        if not isinstance(document, dict):
            raise StoreError("Only a JSON object (a dict) can be saved as an analysis.")
        if kind not in KINDS:
            raise StoreError(f"The kind {kind!r} is not one of {', '.join(KINDS)}.")
        if isinstance(models, str) or not all(isinstance(m, str) for m in models):
            raise StoreError("The models of a saved analysis must be a list of model names.")
        canonical = canonical_bytes(document)
        if len(canonical) > self.max_document_bytes:
            raise StoreError(
                f"This analysis takes {format_size(len(canonical))} as JSON, more than the "
                f"{format_size(self.max_document_bytes)} one saved analysis may take, so nothing was saved."
            )
        analysis_id = content_id(canonical)
        token = new_delete_token() if delete_token is None else delete_token
        if not isinstance(token, str) or not token:
            raise StoreError("A delete token must be non-empty text.")
        app_version = document.get("app_version")
        row = (
            analysis_id,
            datetime.now(UTC).isoformat(timespec="microseconds"),
            kind,
            " ".join(str(preview).split())[:PREVIEW_CHARS],
            json.dumps(list(models)),
            app_version if isinstance(app_version, str) else "",
            ENCODING,
            len(canonical),
            zlib.compress(canonical, 6),
        )
        with self._operation("saved", write=True) as conn:
            assert conn is not None  # writes always connect (or raise StoreError)
            with _Transaction(conn):
                conn.execute(
                    "INSERT OR IGNORE INTO analyses "
                    "(id, created_at, kind, preview, models, app_version, encoding, size, document) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
                conn.execute("INSERT OR IGNORE INTO claims (id, token_hash) VALUES (?, ?)",
                             (analysis_id, token_hash(token)))
        return SaveReceipt(analysis_id, token)

    def load(self, analysis_id: str) -> SavedAnalysis:
        """The saved entry with this id; StoreError when the id is malformed or unknown."""
        key = normalise_id(analysis_id)
        with self._operation("read", write=False) as conn:
            found = None
            if conn is not None:
                found = conn.execute(
                    "SELECT id, created_at, kind, preview, models, app_version, encoding, document "
                    "FROM analyses WHERE id = ?",
                    (key,),
                ).fetchone()
        if found is None:
            raise StoreError(f"No saved analysis has the id {key!r}.")
        id_, created_at, kind, preview, models, app_version, encoding, blob = found
        return SavedAnalysis(
            id=id_,
            created_at=created_at,
            kind=kind,
            preview=preview,
            models=self._models(models, id_),
            document=self._document(encoding, blob, id_),
            app_version=app_version,
        )

    def exists(self, analysis_id: str) -> bool:
        """Whether an analysis with this id is saved: one indexed lookup, no document read (so a process that
        keeps documents in memory can check that another process has not deleted one)."""
        key = normalise_id(analysis_id)
        with self._operation("read", write=False) as conn:
            found = conn is not None and conn.execute("SELECT 1 FROM analyses WHERE id = ?", (key,)).fetchone()
        return bool(found)

    def delete(self, analysis_id: str, delete_token: str) -> bool:
        """Remove this saver's claim on the analysis, and the analysis when no other saver holds it.

        True when the analysis itself is gone, False when it stays for another saver. StoreError
        when the id is unknown or the token is not one given for it.
        """
        key = normalise_id(analysis_id)
        given = token_hash(delete_token) if isinstance(delete_token, str) else ""
        if not self.path.exists():
            raise StoreError(f"No saved analysis has the id {key!r}.")
        with self._operation("deleted", write=True) as conn:
            assert conn is not None
            with _Transaction(conn):
                if conn.execute("SELECT 1 FROM analyses WHERE id = ?", (key,)).fetchone() is None:
                    raise StoreError(f"No saved analysis has the id {key!r}.")
                hashes = [h for (h,) in conn.execute("SELECT token_hash FROM claims WHERE id = ?", (key,))]
                match = next((h for h in hashes if h != ADMIN_CLAIM and given and hmac.compare_digest(h, given)), None)
                if match is None:
                    raise StoreError(f"That delete token does not belong to the saved analysis {key!r}, "
                                     "so nothing was deleted.")
                conn.execute("DELETE FROM claims WHERE id = ? AND token_hash = ?", (key, match))
                removed = len(hashes) == 1
                if removed:
                    conn.execute("DELETE FROM analyses WHERE id = ?", (key,))
        return removed

    def remove(self, analysis_id: str) -> bool:
        """The server admin's removal: the analysis and every claim on it, without a token; True when it existed."""
        key = normalise_id(analysis_id)
        if not self.path.exists():
            return False
        with self._operation("deleted", write=True) as conn:
            assert conn is not None
            with _Transaction(conn):
                conn.execute("DELETE FROM claims WHERE id = ?", (key,))
                removed = conn.execute("DELETE FROM analyses WHERE id = ?", (key,)).rowcount > 0
        return removed

    def count(self) -> int:
        """How many analyses are saved."""
        with self._operation("read", write=False) as conn:
            total = 0 if conn is None else int(conn.execute("SELECT COUNT(*) FROM analyses").fetchone()[0])
        return total

    def list(self, limit: int = 100, *, ids: Iterable[str] | None = None) -> builtins.list[SavedAnalysisSummary]:
        """Summaries of the newest `limit` saved analyses, newest first (documents are not read).

        `ids` limits the listing to those analyses (for example the ones one visitor saved).
        """
        limit = max(0, int(limit))
        wanted = None if ids is None else sorted({normalise_id(i) for i in ids})
        if wanted is not None and not wanted:
            return []
        where = "" if wanted is None else f"WHERE id IN ({', '.join('?' * len(wanted))}) "
        with self._operation("read", write=False) as conn:
            if conn is None:
                return []
            rows = conn.execute(
                "SELECT id, created_at, kind, preview, models, app_version, size "
                f"FROM analyses {where}ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (*(wanted or ()), limit),
            ).fetchall()
        return [
            SavedAnalysisSummary(
                id=r[0], created_at=r[1], kind=r[2], preview=r[3], models=self._models(r[4], r[0]),
                app_version=r[5], size=int(r[6]),
            )
            for r in rows
        ]

    # -- connections and errors ---------------------------------------------

    def _operation(self, verb: str, *, write: bool) -> _Operation:
        return _Operation(self, verb, write=write)

    def _uri(self, *, immutable: bool = False) -> str:
        uri = f"file:{quote(str(self.path))}?mode=ro"
        return uri + "&immutable=1" if immutable else uri

    def _connect_read(self) -> sqlite3.Connection | None:
        """A read-only connection, or None when there is no store file or table yet (reads never create it)."""
        if not self.path.exists():
            return None
        try:
            return self._open_read(self._uri())
        except sqlite3.OperationalError as exc:
            # A WAL database in a folder this process cannot write has no -shm file to read through
            # (SQLITE_READONLY_DIRECTORY). With no -wal file either, every saved row is in the main file
            # and nobody can write without creating a -wal file there, so reading it as immutable is exact.
            primary = exc.sqlite_errorcode & 0xFF
            if primary not in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN) or Path(f"{self.path}-wal").exists():
                raise
            return self._open_read(self._uri(immutable=True))

    def _open_read(self, uri: str) -> sqlite3.Connection | None:
        conn = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            if self._has_table(conn):
                return conn
        except BaseException:
            conn.close()
            raise
        conn.close()
        return None

    def _connect_write(self) -> sqlite3.Connection:
        """A read-write connection with the schema in place (parent folders created on first write)."""
        if self.read_only:
            return sqlite3.connect(self._uri(), uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = next((p for p in self.path.parents if p.exists() and not p.is_dir()), None)
            reason = "a file stands where its folder should be" if blocker else f"{exc.strerror or type(exc).__name__}"
            raise StoreError(
                f"The analysis store cannot be created ({reason}), so nothing was saved.", self.path
            ) from exc
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        try:
            if self.max_bytes is not None:
                page_size = conn.execute("PRAGMA page_size").fetchone()[0]
                conn.execute(f"PRAGMA max_page_count = {max(1, int(self.max_bytes) // int(page_size))}")
            self._create_schema(conn)  # cheap when present; recreates a store file removed meanwhile
        except BaseException:
            conn.close()
            raise
        return conn

    def _create_schema(self, conn: sqlite3.Connection) -> None:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > STORE_SCHEMA_VERSION:
            raise StoreError(
                f"The analysis store was written by a newer version of this app (store schema {version}); update "
                "the app to use it.", self.path
            )
        self._use_wal(conn)
        if version < STORE_SCHEMA_VERSION or not self._has_table(conn):
            conn.execute("BEGIN IMMEDIATE")
            try:
                had_rows = self._has_table(conn)
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                if had_rows and version < 2:
                    conn.execute(_MIGRATE_1_TO_2)
                conn.execute(f"PRAGMA user_version = {STORE_SCHEMA_VERSION}")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def _use_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new store file to WAL journalling (persistent, so this is a check once done).

        Switching needs the file to itself and SQLite does not wait for that, so when
        several connections create the store at once the losers retry until the timeout.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError as exc:
                if exc.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
            else:
                return  # a file system without WAL support keeps its mode; saves still work

    def _has_table(self, conn: sqlite3.Connection) -> bool:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > STORE_SCHEMA_VERSION:
            raise StoreError(
                f"The analysis store was written by a newer version of this app (store schema {version}); update "
                "the app to use it.", self.path
            )
        found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'analyses'").fetchone()
        return found is not None

    def _models(self, text: str, analysis_id: str) -> builtins.list[str]:
        try:
            models = json.loads(text)
        except ValueError as exc:
            raise StoreError(f"The saved analysis {analysis_id!r} is damaged and cannot be read.") from exc
        return [str(m) for m in models]

    def _document(self, encoding: str, blob: bytes, analysis_id: str) -> dict:
        if encoding != ENCODING:
            raise StoreError(
                f"The saved analysis {analysis_id!r} uses the storage format {encoding!r}, which this app cannot read."
            )
        try:
            return json.loads(zlib.decompress(blob).decode("utf-8"))
        except (zlib.error, ValueError) as exc:
            raise StoreError(f"The saved analysis {analysis_id!r} is damaged and cannot be read.") from exc

    def _writable(self) -> bool:
        """Whether this process may write the store file and its folder (so a refusal means read-only)."""
        if self.read_only:
            return False
        target = self.path if self.path.exists() else self.path.parent
        folder_ok = os.access(self.path.parent, os.W_OK | os.X_OK)
        return folder_ok and os.access(target, os.W_OK)

    def _translate(self, exc: sqlite3.Error, verb: str) -> StoreError:
        """One sentence for a SQLite failure; `verb` says what did not happen ("saved", "deleted", "read")."""
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        where = "The analysis store"
        nothing = "so nothing was saved" if verb == "saved" else f"so nothing was {verb}"
        if primary == sqlite3.SQLITE_NOTADB:
            return StoreError("The analysis store's file is not a SQLite database, so it cannot hold saved analyses.",
                              self.path)
        if primary == sqlite3.SQLITE_READONLY or (self.read_only and verb != "read") or (
            primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM) and verb != "read" and not self._writable()
        ):
            return StoreError(f"{where} is read-only, {nothing}.", self.path)
        if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
            return StoreError(
                f"{where} stayed busy with other saves for {BUSY_TIMEOUT_S:g} seconds, {nothing}; try again.", self.path
            )
        if primary == sqlite3.SQLITE_FULL:
            limit = "" if self.max_bytes is None else f" or its size limit of {format_size(self.max_bytes)}"
            return StoreError(f"{where} is full (no space left on its disk{limit}), {nothing}.", self.path)
        if primary == sqlite3.SQLITE_CORRUPT:
            return StoreError(f"{where} is damaged, {nothing}; restore it from a backup or move it aside.", self.path)
        if primary == sqlite3.SQLITE_CANTOPEN:
            return StoreError(f"{where} cannot be opened ({exc}), {nothing}.", self.path)
        return StoreError(f"{where} reported an error ({exc}), {nothing}.", self.path)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT on an autocommit connection, ROLLBACK on any error."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
        return False


class _Operation:
    """Context manager: one connection for one operation, SQLite and OS errors turned into StoreError."""

    def __init__(self, store: AnalysisStore, verb: str, *, write: bool) -> None:
        self.store, self.verb, self.write = store, verb, write
        self.conn: sqlite3.Connection | None = None

    def __enter__(self) -> sqlite3.Connection | None:
        try:
            self.conn = self.store._connect_write() if self.write else self.store._connect_read()
        except sqlite3.Error as exc:
            raise self.store._translate(exc, self.verb) from exc
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> Literal[False]:
        conn, self.conn = self.conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass
        if isinstance(exc, sqlite3.Error):
            raise self.store._translate(exc, self.verb) from exc
        return False
