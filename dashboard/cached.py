"""The dashboard's only caches, shared by all sessions: loaded models, figures, saved documents, and every
computed result (analyses, single methods and their faithfulness, the heads page's results, depth), each of the
last kind an `explain.scheduling.ScheduledCache` on the one scheduler per model.

Models live in `st.cache_resource` (bounded). Results live in bounded LRUs held by `st.cache_resource` rather
than `st.cache_data`, because the page must show live progress while one is computed and a second session
asking for the same result must wait for the first instead of computing it again. Every result is priced from
the declared cost of what it runs (`explain.costs`) before it waits for anything.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import replace
from typing import Any, cast

import plotly.graph_objects as go
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from explain import Analysis, AnalysisRequest, LoadedModel, analyze, load_model
from explain.costs import (
    EXTRA_EVALUATIONS,
    PRUNING_POINTS,
    PRUNING_RANDOM_ORDERS,
    depth_work,
    faithfulness_evaluations,
    flow_work,
    head_work,
    method_evaluations,
    work_units,
)
from explain.document import Document, document_from_data
from explain.errors import ExplainError, ModelLoadError
from explain.evaluation.naopc import DEFAULT_NAOPC, NAOPCSettings
from explain.flow import FlowMatrices, flow_matrices
from explain.heads import (
    HeadImportance,
    HeadInputs,
    NeuronView,
    PruningCurve,
    adapter_of,
    head_importance,
    neuron_view,
    prepare_inputs,
    pruning_curve,
)
from explain.inputs import count_units
from explain.methods import METHODS
from explain.methods.base import request_for_method
from explain.models import canonical_spec, configure_threads, max_model_bytes, module_bytes
from explain.pipeline import evaluate_faithfulness, explain_method, validate, with_depth
from explain.records import FaithfulnessSummary, HeadsRequest, MethodResult
from explain.scheduling import Progress, ScheduledCache, Schedulers, WorkBudget, WorkBudgetError
from explain.store import AnalysisStore, StoreError, default_store_path, normalise_id
from explain.viz.text import analyses_details

MAX_MODELS = int(os.environ.get("EXPLAIN_MAX_MODELS", "3"))
MAX_CACHED_BYTES = 512 * 1024 * 1024
# Stages of explain.pipeline.analyze at whose progress reports the model can be lent to light work: the
# tokenizer is not in use and no hook is on the model; a batch of integration steps in flight keeps its own
# autograd graph, which other work on the same frozen weights does not touch. A stochastic method (LIME, KernelSHAP,
# SmoothGrad) reports with torch's shared generator handed back and its own state kept (`SeededRun`).
PAUSE_STAGES = frozenset({"tokenising", "attention", "attribution"})


@st.cache_resource(show_spinner=False)
def startup() -> int:
    """Set torch threads once per server process."""
    return configure_threads()


class ModelCache:
    """Loaded models shared by all sessions, bounded by count and by memory (LRU), keyed by canonical spec
    (`x`, `x/` and `.//x` are one entry).

    The memory bound holds before a load, not only after: once a model's size is estimated from its
    config.json, least recently used models leave until it fits, and loads in flight count against the bound.
    A model evicted while a session still uses it stays alive until that session is done.
    """

    def __init__(self, max_models: int = MAX_MODELS, max_bytes: int | None = None) -> None:
        self.max_models = max_models
        self.max_bytes = max_model_bytes() if max_bytes is None else max_bytes  # EXPLAIN_MAX_MODEL_MB
        self._models: OrderedDict[str, tuple[LoadedModel, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}
        self._reserved = 0  # estimated bytes of loads in flight

    def get(self, spec: str) -> LoadedModel:
        key = canonical_spec(spec)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key][0]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # a second session asking for the same model waits for the first load
            with self._lock:
                if key in self._models:
                    return self._models[key][0]
            reserved: list[int] = []

            def make_room(nbytes: int) -> None:
                with self._lock:
                    self._make_room(spec, nbytes)
                    self._reserved += nbytes
                    reserved.append(nbytes)

            try:
                # every visitor sees the one canonical name, never the first visitor's spelling of it
                loaded = replace(load_model(spec, max_bytes=self.max_bytes, reserve=make_room), spec=key)
                size = module_bytes(loaded.model)
                with self._lock:
                    self._reserved -= sum(reserved)
                    reserved.clear()
                    self._models[key] = (loaded, size)
                    while len(self._models) > 1 and (
                        len(self._models) > self.max_models or self.total_bytes + self._reserved > self.max_bytes
                    ):
                        self._models.popitem(last=False)
            finally:  # also when the load fails: nothing is cached and the reservation is returned
                with self._lock:
                    self._reserved -= sum(reserved)
                    self._loading.pop(key, None)
        return loaded

    def _make_room(self, spec: str, nbytes: int) -> None:
        """Evict least recently used models until `nbytes` more fit (called with the lock held); load_model has
        already refused a model larger than the whole bound."""
        if nbytes + self._reserved > self.max_bytes:
            raise ModelLoadError(
                f"'{spec}' does not fit in memory while other models are loading; try again in a minute."
            )
        while self._models and (
            len(self._models) + 1 > self.max_models or self.total_bytes + self._reserved + nbytes > self.max_bytes
        ):
            self._models.popitem(last=False)

    @property
    def total_bytes(self) -> int:
        return sum(size for _, size in self._models.values())

    def specs(self) -> list[str]:
        with self._lock:
            return list(self._models)


@st.cache_resource(show_spinner=False)
def model_cache() -> ModelCache:
    return ModelCache()


def get_model(spec: str) -> LoadedModel:
    """Load a model once per server; raises ModelLoadError (nothing cached) on failure."""
    return model_cache().get(spec)


def _size(result: Analysis) -> int:
    return int(result.attention.weights.nbytes + result.attribution.scores.nbytes) + 4096


def current_session() -> str | None:
    """The Streamlit session running this script (one per browser tab), None outside a script run."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return None if ctx is None else ctx.session_id


def watched(progress: Progress | None) -> Progress | None:
    """`progress`, or inside a script run a report that draws nothing. Streamlit raises into a script run at its
    next element update once its tab has closed or its page reran; that update, in the waiting script's own thread,
    is how a scheduled computation learns that this waiter left (explain.scheduling.ScheduledCache), so every
    wait gets one."""
    if progress is not None or current_session() is None:
        return progress
    slot = st.empty()
    return lambda stage, fraction: slot.empty()


@st.cache_resource(show_spinner=False)
def shared_schedulers() -> Schedulers:
    """One scheduler per model for all the work on it, whichever page asks."""
    return Schedulers()


class AnalysisCache:
    """Analyses keyed by (model, request), bounded by bytes, each priced from its method's declared cost over
    every text it reads, then computed in its turn (light requests first, heavy ones first come first served, a
    bounded queue, one per session)."""

    def __init__(self, max_bytes: int = MAX_CACHED_BYTES, budget: WorkBudget | None = None,
                 schedulers: Schedulers | None = None) -> None:
        self.results = ScheduledCache(max_entries=1 << 30, budget=budget, schedulers=schedulers,
                                      max_bytes=max_bytes, size=_size)
        self.budget, self.schedulers = self.results.budget, self.results.schedulers

    @staticmethod
    def key(request: AnalysisRequest, spec: str) -> tuple:
        return (spec, request)

    def get(self, key: tuple) -> Analysis | None:
        return cast("Analysis | None", self.results.get(key))

    def estimate(self, request: AnalysisRequest, loaded: LoadedModel) -> float:
        """The request's work units; raises InputError (bad settings) or WorkBudgetError (over the budget)."""
        validate(request)
        n_tokens, n_words = count_units(loaded, request)
        return self.budget.check(request, loaded.config, n_tokens, n_words)

    def compute(self, request: AnalysisRequest, loaded: LoadedModel, progress: Progress | None = None, *,
                session: Hashable | None = None) -> Analysis:
        """The cached analysis, or compute it in its turn.

        Args:
            progress: called with (stage, fraction done), and with ("2 analyses ahead of yours", None)
                while waiting; it may raise to cancel (Streamlit does at the next call after a rerun).
            session: who asks (one turn per session: a newer one replaces an older); the current
                Streamlit session when None.
        Raises:
            WorkBudgetError, ServerBusy, InputError and other ExplainErrors, each one sentence.
        """
        key = self.key(request, loaded.spec)
        cached = self.get(key)
        if cached is not None:
            return cached
        work = self.estimate(request, loaded)
        return cast(Analysis, self.results.compute(
            key, loaded, lambda model, step: analyze(request, model, progress=step), work=work,
            what="This request", advice="use a shorter text or a lower token limit", progress=watched(progress),
            session=current_session() if session is None else session, pause_at=PAUSE_STAGES))

    def __len__(self) -> int:
        return len(self.results)


@st.cache_resource(show_spinner=False)
def analysis_cache() -> AnalysisCache:
    return AnalysisCache(schedulers=shared_schedulers())


class FigureCache:
    """Figures already built for live analyses, bounded LRU.

    Streamlit reruns the whole page on every click, and building a Plotly figure
    (validation included) costs tens of milliseconds, more while a browser shares the
    CPU; a figure depends only on its analysis and the view arguments, so it is
    built once. Entries die with their analysis (analyses are shared objects held by
    the analysis cache or the saved-document cache). Figures handed out are shared:
    callers must not modify them (st.plotly_chart only reads).
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[tuple[int, Hashable], go.Figure] = OrderedDict()
        self._watched: set[int] = set()
        self._lock = threading.Lock()

    def get(self, result: Analysis, view: Hashable, build: Callable[[], go.Figure]) -> go.Figure:
        key = (id(result), view)
        with self._lock:
            figure = self._items.get(key)
            if figure is not None:
                self._items.move_to_end(key)
                return figure
        figure = build()
        with self._lock:
            if id(result) not in self._watched:
                self._watched.add(id(result))
                weakref.finalize(result, self._forget, id(result))
            self._items[key] = figure
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)
        return figure

    def _forget(self, result_id: int) -> None:
        with self._lock:
            self._watched.discard(result_id)
            for key in [k for k in self._items if k[0] == result_id]:
                del self._items[key]

    def __len__(self) -> int:
        return len(self._items)


@st.cache_resource(show_spinner=False)
def figure_cache() -> FigureCache:
    return FigureCache()


def figure(result: Analysis, view: Hashable, build: Callable[[], go.Figure]) -> go.Figure:
    """The figure `build()` makes for `result` and `view` (every argument besides the analysis), built once."""
    return figure_cache().get(result, view, build)


def get_store() -> AnalysisStore:
    """The saved-analyses store (path from EXPLAIN_STORE_PATH, default data/analyses.sqlite3)."""
    return _store_at(str(default_store_path()))


@st.cache_resource(max_entries=4, show_spinner=False)
def _store_at(path: str) -> AnalysisStore:
    return AnalysisStore(path)


def saved_document(analysis_id: str) -> tuple[Document, str]:
    """A saved document by id, with its save time; the store is asked first, as another server process on the same
    store may have deleted it since this one cached it."""
    path = str(default_store_path())
    if not _store_at(path).exists(analysis_id):
        raise StoreError(f"No saved analysis has the id {normalise_id(analysis_id)!r}.")
    return _saved_document(path, analysis_id)


@st.cache_resource(max_entries=16, show_spinner=False)
def _saved_document(path: str, analysis_id: str) -> tuple[Document, str]:
    # Ids are content hashes, so a cached copy never goes stale (deleting clears this cache).
    saved = _store_at(path).load(analysis_id)
    return document_from_data(saved.document), saved.created_at


@st.cache_data(max_entries=1024, show_spinner=False)
def saved_details(analysis_id: str) -> str:
    """What tells a saved analysis from others of its text (`analyses_details`); "" when it cannot be read.
    Ids are content hashes, so the answer never goes stale."""
    try:
        saved = _store_at(str(default_store_path())).load(analysis_id)
        return analyses_details(document_from_data(saved.document).analyses)
    except ExplainError:
        return ""


def forget_saved() -> None:
    _saved_document.clear()


class MethodResultCache:
    """Single methods' results (and the faithfulness of a set of them), bounded LRU, computed one by one.

    Keyed by (model, the request reduced to the method's own settings, method): the methods page fills it one
    method at a time, so a rerun shows what is done at once and computes only the rest. Each computation is
    priced from the method's declared cost and waits for its turn on the model's scheduler, like an analysis.
    """

    def __init__(self, max_entries: int = 512, budget: WorkBudget | None = None,
                 schedulers: Schedulers | None = None) -> None:
        self.results = ScheduledCache(max_entries, budget, schedulers)
        self.budget, self.schedulers = self.results.budget, self.results.schedulers

    @staticmethod
    def key(request: AnalysisRequest, spec: str, name: str) -> tuple:
        return (spec, request_for_method(request, name), name)

    def get(self, key: tuple) -> Any | None:
        return self.results.get(key)

    def put(self, key: tuple, value: Any) -> None:
        self.results.put(key, value)

    def __len__(self) -> int:
        return len(self.results)

    def estimate(self, request: AnalysisRequest, loaded: LoadedModel, name: str) -> float:
        """The method's work units (its declared cost, plus the endpoint scores) over every text the request
        reads; WorkBudgetError (one sentence) when it is over the budget."""
        validate(request)
        n_tokens, n_words = count_units(loaded, request)
        evaluations = method_evaluations(request, name, n_tokens, n_words) + EXTRA_EVALUATIONS / 2
        work = work_units(evaluations, loaded.config, n_tokens, request.precision)
        return self.budget.check_work(work, METHODS[name].title, "use fewer samples or steps, a shorter text or "
                                                               "a lower token limit")

    def compute(self, request: AnalysisRequest, loaded: LoadedModel, name: str,
                progress: Callable[[float], None] | None = None, *, session: Hashable | None = None) -> MethodResult:
        """One method's result for `request`, cached; raises WorkBudgetError, ServerBusy and other ExplainErrors."""
        key = self.key(request, loaded.spec, name)
        cached = self.get(key)
        if cached is not None:
            return cast(MethodResult, cached)
        work = self.estimate(request, loaded, name)

        def method_progress(stage: str, fraction: float | None) -> None:
            if progress is not None:
                progress(0.0 if fraction is None else fraction)

        return cast(MethodResult, self.results.compute(
            key, loaded, lambda model, step: explain_method(request_for_method(request, name), model, name,
                                                            progress=lambda f: step("attribution", f)),
            work=work, what=METHODS[name].title, advice="", progress=watched(None if progress is None else method_progress),
            session=current_session() if session is None else session, pause_at=PAUSE_STAGES))

    def naopc_that_fits(self, n_methods: int, n_words: int, loaded: LoadedModel, n_tokens: int
                        ) -> tuple[NAOPCSettings | None, str, float]:
        """NAOPC's settings for faithfulness within the budget, why it is left out ("" where it is not) and the work:
        the exact limits, else the beam's, else the ERASER metrics on their own."""
        tries: list[NAOPCSettings | None] = [DEFAULT_NAOPC]
        if DEFAULT_NAOPC.search(n_words) == "exact" and n_words > 1:
            tries.append(replace(DEFAULT_NAOPC, exact_max_words=n_words - 1))
        def price(naopc: NAOPCSettings | None) -> float:
            evaluations = faithfulness_evaluations(n_methods, n_words, naopc=naopc) + EXTRA_EVALUATIONS / 2
            return work_units(evaluations, loaded.config, n_tokens)

        refusal = ""
        for naopc in tries:
            try:
                return naopc, "", self.budget.check_work(price(naopc), "Finding NAOPC's limits",
                                                         "it is left out on this text")
            except WorkBudgetError as exc:
                refusal = str(exc)  # the cheapest search's
        return None, refusal, price(None)

    def faithfulness(self, request: AnalysisRequest, loaded: LoadedModel, results: dict[str, MethodResult],
                     removal: str, progress: Progress | None = None, *, session: Hashable | None = None
                     ) -> tuple[dict[str, MethodResult], FaithfulnessSummary]:
        """Every method's comprehensiveness, sufficiency and leave-one-out agreement, and the random floor,
        priced from the perturbed inputs it scores."""
        key = ("faithfulness", loaded.spec, tuple(self.key(request, loaded.spec, n) for n in results), removal)
        cached = self.get(key)
        if cached is not None:
            return cast("tuple[dict[str, MethodResult], FaithfulnessSummary]", cached)
        validate(request)
        n_tokens, n_words = count_units(loaded, request)
        naopc, note, work = self.naopc_that_fits(len(results), n_words, loaded, n_tokens)
        return cast("tuple[dict[str, MethodResult], FaithfulnessSummary]", self.results.compute(
            key, loaded, lambda model, step: evaluate_faithfulness(
                request, model, results, removal=removal, naopc=naopc, naopc_note=note,
                progress=lambda f: step("faithfulness", f)),
            work=work, what="Scoring the methods' faithfulness",
            advice="use a shorter text or a lower token limit", progress=watched(progress),
            session=current_session() if session is None else session, pause_at=frozenset({"faithfulness"})))


@st.cache_resource(show_spinner=False)
def method_cache() -> MethodResultCache:
    return MethodResultCache(schedulers=shared_schedulers())


class HeadResultCache:
    """The heads page's results (tokenised inputs, importance maps, pruning curves, neuron views).

    Importance maps and pruning curves are priced from their forward passes and are usually heavy; they pause for
    light work between batches, when their gates are off the model. The tokenised inputs and neuron views are one
    pass each.
    """

    def __init__(self, max_entries: int = 256, budget: WorkBudget | None = None,
                 schedulers: Schedulers | None = None) -> None:
        self.results = ScheduledCache(max_entries, budget, schedulers)
        self.budget, self.schedulers = self.results.budget, self.results.schedulers

    def get(self, key: tuple) -> Any | None:
        return self.results.get(key)

    def __len__(self) -> int:
        return len(self.results)

    @staticmethod
    def inputs_key(request: HeadsRequest) -> tuple:
        return ("inputs", request)

    @staticmethod
    def importance_key(request: HeadsRequest) -> tuple:
        return ("importance", request)

    @staticmethod
    def pruning_key(request: HeadsRequest, map_name: str, order: str) -> tuple:
        return ("pruning", request, map_name, order)

    def one_pass(self, loaded: LoadedModel, n_tokens: int) -> float:
        return work_units(1.0, loaded.config, n_tokens)

    def heads_work(self, loaded: LoadedModel, inputs: HeadInputs, what: str) -> float:
        adapter = adapter_of(loaded)
        return head_work(adapter.n_layers, adapter.n_heads, what, loaded.config, inputs.n_tokens)

    def inputs(self, request: HeadsRequest, loaded: LoadedModel, progress: Progress | None = None) -> HeadInputs:
        """The text tokenised as an analysis does, with its explained score fixed; InputError for a bad target."""
        return cast(HeadInputs, self.results.compute(
            self.inputs_key(request), loaded, lambda model, step: prepare_inputs(
                model, request.texts, request.target, request.max_tokens,
                truncation="only_second" if request.question else "longest_first"),
            work=self.one_pass(loaded, request.max_tokens), what="Reading the text", advice="",
            progress=watched(progress), session=current_session(), stage="tokenising", refusable=False))

    def importance(self, request: HeadsRequest, loaded: LoadedModel, inputs: HeadInputs,
                   progress: Progress | None = None) -> HeadImportance:
        """The three importance maps and their rank correlations (zero ablation)."""
        stage = "removing each head in turn"
        return cast(HeadImportance, self.results.compute(
            self.importance_key(request), loaded,
            lambda model, step: head_importance(model, inputs, progress=lambda f: step(stage, f)),
            work=self.heads_work(loaded, inputs, "importance"), what="Ranking the heads",
            advice="use a shorter text or a lower token limit", progress=watched(progress),
            session=current_session(), stage=stage, pause_at=frozenset({stage})))

    def pruning(self, request: HeadsRequest, loaded: LoadedModel, inputs: HeadInputs, importance: HeadImportance,
                map_name: str, order: str, progress: Progress | None = None) -> PruningCurve:
        """The pruning curve in the order of `map_name` (least or most important first) and in random orders."""
        stage = "removing heads one by one"
        return cast(PruningCurve, self.results.compute(
            self.pruning_key(request, map_name, order), loaded, lambda model, step: pruning_curve(
                model, inputs, importance.map(map_name), importance_name=map_name, order=order,
                n_random=PRUNING_RANDOM_ORDERS, n_points=PRUNING_POINTS, progress=lambda f: step(stage, f)),
            work=self.heads_work(loaded, inputs, "pruning"), what="The pruning curve",
            advice="use a shorter text or a lower token limit", progress=watched(progress),
            session=current_session(), stage=stage, pause_at=frozenset({stage})))

    def neuron(self, request: HeadsRequest, loaded: LoadedModel, inputs: HeadInputs, layer: int, head: int,
               token: int) -> NeuronView:
        """One head's query, keys, their products, scores and attention row for one query token."""
        return cast(NeuronView, self.results.compute(
            ("neuron", request, layer, head, token), loaded,
            lambda model, step: neuron_view(model, inputs, layer, head, token),
            work=self.one_pass(loaded, inputs.n_tokens), what="The neuron view", advice="",
            progress=watched(None), session=current_session(), refusable=False))


@st.cache_resource(show_spinner=False)
def head_cache() -> HeadResultCache:
    return HeadResultCache(schedulers=shared_schedulers())


class DepthResults:
    """Analyses with their embedding-part and layer-wise attributions (explain.depth), shared by every session,
    priced as layers + 1 fixed-step attributions, bounded by bytes (each keeps its analysis's attention maps)."""

    def __init__(self, max_entries: int = 16, budget: WorkBudget | None = None,
                 schedulers: Schedulers | None = None, max_bytes: int = MAX_CACHED_BYTES // 4) -> None:
        self.results = ScheduledCache(max_entries, budget, schedulers, max_bytes=max_bytes, size=_size)
        self.budget, self.schedulers = self.results.budget, self.results.schedulers

    @staticmethod
    def key(result: Analysis, spec: str) -> tuple:
        return ("depth", spec, result.request)

    def get(self, key: tuple) -> Analysis | None:
        return cast("Analysis | None", self.results.get(key))

    def __len__(self) -> int:
        return len(self.results)

    def with_depth(self, result: Analysis, loaded: LoadedModel, progress: Progress | None = None) -> Analysis:
        """`result` with both depth attributions; WorkBudgetError (one sentence) when over the budget."""
        share = 1.0 / (result.model.n_layers + 1)  # the embedding parts cost about one layer's attribution
        stage = "splitting the score over the embeddings and the layers"

        def make(model: LoadedModel, step: Callable[[str, float], None]) -> Analysis:
            def overall(part: str, fraction: float) -> None:
                step(stage, fraction * share if part == "embedding parts" else share + fraction * (1 - share))

            return with_depth(model, result, progress=overall)

        work = depth_work(result.request, result.model.n_layers, loaded.config, len(result.tokens))
        return cast(Analysis, self.results.compute(
            self.key(result, loaded.spec), loaded, make, work=work,
            what=f"Splitting the score over the embeddings and the {result.model.n_layers} layers",
            advice="use fewer steps or a shorter text", progress=watched(progress), session=current_session(),
            stage=stage, pause_at=frozenset({stage})))


@st.cache_resource(show_spinner=False)
def depth_results() -> DepthResults:
    return DepthResults(schedulers=shared_schedulers())


class FlowResults:
    """ALTI's per-layer contributions behind the information-flow view (explain.flow), shared by every session,
    priced as one forward pass and bounded by bytes (float64 [layers, tokens, tokens] each); the threshold's
    tracing is cheap and done per rerun."""

    def __init__(self, max_entries: int = 32, budget: WorkBudget | None = None,
                 schedulers: Schedulers | None = None, max_bytes: int = 128 * 1024 * 1024) -> None:
        self.results = ScheduledCache(max_entries, budget, schedulers, max_bytes=max_bytes,
                                      size=lambda value: value.nbytes)
        self.budget, self.schedulers = self.results.budget, self.results.schedulers

    @staticmethod
    def key(result: Analysis, spec: str) -> tuple:
        return ("flow", spec, result.request)

    def get(self, key: tuple) -> FlowMatrices | None:
        return cast("FlowMatrices | None", self.results.get(key))

    def __len__(self) -> int:
        return len(self.results)

    def matrices(self, result: Analysis, loaded: LoadedModel, progress: Progress | None = None) -> FlowMatrices:
        """The contributions for `result`'s text; InputError (one sentence) for a model ALTI refuses."""
        return cast(FlowMatrices, self.results.compute(
            self.key(result, loaded.spec), loaded, lambda model, step: flow_matrices(model, result),
            work=flow_work(loaded.config, len(result.tokens)), what="Tracing the information flow", advice="",
            progress=progress, session=current_session(), stage="tracing the information flow", refusable=False))


@st.cache_resource(show_spinner=False)
def flow_results() -> FlowResults:
    return FlowResults(schedulers=shared_schedulers())
