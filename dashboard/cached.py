"""The dashboard's only caches: loaded models and finished analyses, shared by all sessions.

Models live in `st.cache_resource` (bounded). Analyses live in a bounded LRU
held by `st.cache_resource` rather than `st.cache_data`, because the page must
show live progress while one is computed and a second session asking for the
same request must wait for the first instead of computing it again.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import streamlit as st

from explain import Analysis, AnalysisRequest, LoadedModel, analyze, load_model
from explain.document import Document, document_from_data
from explain.models import configure_threads
from explain.store import AnalysisStore, default_store_path

MAX_MODELS = 3
MAX_CACHED_BYTES = 512 * 1024 * 1024


@st.cache_resource(show_spinner=False)
def startup() -> int:
    """Set torch threads once per server process."""
    return configure_threads()


@st.cache_resource(max_entries=MAX_MODELS, show_spinner=False)
def get_model(spec: str) -> LoadedModel:
    """Load a model once per server; raises ModelLoadError (not cached) on failure."""
    return load_model(spec)


def _size(result: Analysis) -> int:
    return int(result.attention.weights.nbytes + result.attribution.scores.nbytes) + 4096


class AnalysisCache:
    """Bounded LRU of analyses keyed by request, with one computation per key at a time."""

    def __init__(self, max_bytes: int = MAX_CACHED_BYTES) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, Analysis] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._key_locks: dict[tuple, threading.Lock] = {}

    @staticmethod
    def key(request: AnalysisRequest, spec: str) -> tuple:
        return (spec, request)

    def get(self, key: tuple) -> Analysis | None:
        with self._lock:
            result = self._items.get(key)
            if result is not None:
                self._items.move_to_end(key)
            return result

    def put(self, key: tuple, result: Analysis) -> None:
        with self._lock:
            if key in self._items:
                return
            self._items[key] = result
            self._bytes += _size(result)
            while self._bytes > self.max_bytes and len(self._items) > 1:
                _, old = self._items.popitem(last=False)
                self._bytes -= _size(old)

    def compute(
        self, request: AnalysisRequest, loaded: LoadedModel, progress: Callable[[str, float], None] | None = None
    ) -> Analysis:
        key = self.key(request, loaded.spec)
        cached = self.get(key)
        if cached is not None:
            return cached
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            cached = self.get(key)
            if cached is None:
                cached = analyze(request, loaded, progress=progress)
                self.put(key, cached)
        with self._lock:
            self._key_locks.pop(key, None)
        return cached

    def __len__(self) -> int:
        return len(self._items)


@st.cache_resource(show_spinner=False)
def analysis_cache() -> AnalysisCache:
    return AnalysisCache()


def get_store() -> AnalysisStore:
    """The saved-analyses store (path from EXPLAIN_STORE_PATH, default data/analyses.sqlite3)."""
    return _store_at(str(default_store_path()))


@st.cache_resource(max_entries=4, show_spinner=False)
def _store_at(path: str) -> AnalysisStore:
    return AnalysisStore(path)


def saved_document(analysis_id: str) -> tuple[Document, str]:
    """A saved document by id, with its save time."""
    return _saved_document(str(default_store_path()), analysis_id)


@st.cache_resource(max_entries=16, show_spinner=False)
def _saved_document(path: str, analysis_id: str) -> tuple[Document, str]:
    # Ids are content hashes, so a cached copy never goes stale (deleting clears this cache).
    saved = _store_at(path).load(analysis_id)
    return document_from_data(saved.document), saved.created_at


def forget_saved() -> None:
    _saved_document.clear()
