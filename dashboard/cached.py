"""The dashboard's only caches: loaded models, finished analyses, single methods' results and the heads page's
results, shared by all sessions.

Models live in `st.cache_resource` (bounded). Analyses live in a bounded LRU
held by `st.cache_resource` rather than `st.cache_data`, because the page must
show live progress while one is computed and a second session asking for the
same request must wait for the first instead of computing it again.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from typing import cast

import plotly.graph_objects as go
import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from explain import Analysis, AnalysisRequest, LoadedModel, analyze, load_model
from explain.analysis import (
    DEFAULT_DELTA_TOLERANCE,
    DEFAULT_INTEGRATION,
    DEFAULT_STEPS,
    FaithfulnessSummary,
    MethodResult,
    TargetSpec,
    texts_in_order,
)
from explain.depth import check_depth_budget
from explain.document import Document, document_from_data
from explain.errors import ModelLoadError
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
from explain.methods import METHODS
from explain.models import canonical_spec, configure_threads, max_model_bytes, module_bytes
from explain.pipeline import IG, evaluate_faithfulness, explain_method, method_settings, validate, with_depth
from explain.scheduling import Schedulers, WorkBudget, WorkBudgetError, about, estimate_work, has_foreign_hooks
from explain.store import AnalysisStore, default_store_path
from explain.tokenization import encode_truncated

MAX_MODELS = int(os.environ.get("EXPLAIN_MAX_MODELS", "3"))
MAX_CACHED_BYTES = 512 * 1024 * 1024
# Stages of explain.pipeline.analyze at whose progress reports the model can be lent to a light analysis:
# the tokenizer is not in use and no hook is on the model; a batch of integration steps in flight keeps its own
# autograd graph, which another analysis on the same frozen weights does not touch.
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
                loaded = load_model(spec, max_bytes=self.max_bytes, reserve=make_room)
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


class AnalysisCache:
    """Bounded LRU of analyses keyed by request, with one computation per key at a time.

    A request not in the cache is checked against the work budget, then waits for its turn on the
    model's scheduler (light requests first, heavy ones first come first served, a bounded queue, one per
    session), reporting its place in the queue through the progress callback.
    """

    def __init__(self, max_bytes: int = MAX_CACHED_BYTES, budget: WorkBudget | None = None,
                 schedulers: Schedulers | None = None) -> None:
        self.max_bytes = max_bytes
        self.budget = budget or WorkBudget.from_environment()
        self.schedulers = schedulers or Schedulers()
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

    def estimate(self, request: AnalysisRequest, loaded: LoadedModel) -> float:
        """The request's work units; raises InputError (bad settings) or WorkBudgetError (over the budget)."""
        validate(request)
        max_tokens = min(int(request.max_tokens), loaded.max_tokens)
        # A private copy of the tokenizer's backend, so counting never waits for the model's lock.
        n_tokens = len(encode_truncated(loaded.tokenizer, request.text, max_tokens).encoding.ids)
        return self.budget.check(request, loaded.config, n_tokens)

    def compute(
        self,
        request: AnalysisRequest,
        loaded: LoadedModel,
        progress: Callable[[str, float | None], None] | None = None,
        *,
        session: Hashable | None = None,
    ) -> Analysis:
        """The cached analysis, or compute it in its turn.

        Args:
            progress: called with (stage, fraction done), and with ("2 analyses ahead of yours", None)
                while waiting; it may raise to cancel (Streamlit does at the next call after a rerun).
            session: who asks (one analysis per session: a newer one replaces an older); the current
                Streamlit session when None.
        Raises:
            WorkBudgetError, ServerBusy, InputError and other ExplainErrors, each one sentence.
        """
        key = self.key(request, loaded.spec)
        cached = self.get(key)
        if cached is not None:
            return cached
        light = self.budget.is_light(self.estimate(request, loaded))
        session = current_session() if session is None else session
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        try:
            with key_lock:
                cached = self.get(key)
                if cached is None:
                    cached = self._run(request, loaded, progress, light=light, session=session)
                    self.put(key, cached)
        finally:  # also when the session cancels (Streamlit stops the script at the next progress update)
            with self._lock:
                self._key_locks.pop(key, None)
        return cached

    def _run(self, request: AnalysisRequest, loaded: LoadedModel,
             progress: Callable[[str, float | None], None] | None, *, light: bool,
             session: Hashable | None) -> Analysis:
        report = progress or _ignore
        scheduler = self.schedulers.get(loaded.spec)
        with scheduler.turn(light=light, session=session, waiting=lambda ahead: report(queue_text(ahead), None)) \
                as turn:
            # Beside a heavy analysis paused at a safe point (it holds the model's lock), a light one runs
            # on the same weights under a lock of its own.
            model = replace(loaded, lock=threading.RLock()) if turn.beside_paused else loaded

            def stage(name: str, fraction: float) -> None:
                turn.check()
                report(name, fraction)
                if name in PAUSE_STAGES and not turn.light and not has_foreign_hooks(loaded.model):
                    turn.pause_point()

            return analyze(request, model, progress=stage)

    def __len__(self) -> int:
        return len(self._items)


def _ignore(stage: str, fraction: float | None) -> None:
    pass


def queue_text(ahead: int) -> str:
    """What a waiting page shows: "2 analyses ahead of yours"."""
    if ahead <= 0:
        return "Next in line: starting in a moment"
    return f"{ahead} {'analysis' if ahead == 1 else 'analyses'} ahead of yours"


def current_session() -> str | None:
    """The Streamlit session running this script (one per browser tab), None outside a script run."""
    ctx = get_script_run_ctx(suppress_warning=True)
    return None if ctx is None else ctx.session_id


@st.cache_resource(show_spinner=False)
def analysis_cache() -> AnalysisCache:
    return AnalysisCache()


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
    """A saved document by id, with its save time."""
    return _saved_document(str(default_store_path()), analysis_id)


@st.cache_resource(max_entries=16, show_spinner=False)
def _saved_document(path: str, analysis_id: str) -> tuple[Document, str]:
    # Ids are content hashes, so a cached copy never goes stale (deleting clears this cache).
    saved = _store_at(path).load(analysis_id)
    return document_from_data(saved.document), saved.created_at


def forget_saved() -> None:
    _saved_document.clear()


def method_evaluations(request: AnalysisRequest, name: str, n_tokens: int) -> int:
    """About how many model evaluations one method makes for `request` (what its work estimate counts)."""
    if name == IG:
        return int(request.n_steps)
    settings = method_settings(request, name).as_dict()
    if name == "smoothgrad":
        return int(settings["nt_samples"]) * (int(settings["ig_steps"]) if settings["over"] == IG else 1)
    if "n_samples" in settings:
        return int(settings["n_samples"])
    if name == "occlusion":
        return n_tokens
    return 1


def method_request(request: AnalysisRequest, name: str) -> AnalysisRequest:
    """`request` reduced to what method `name` depends on: its own settings only (integrated gradients keeps the
    steps, tolerance and precision), so that changing one method's settings leaves the others cached."""
    own = tuple(pair for pair in request.method_settings if pair[0].startswith(f"{name}."))
    if name == IG:
        return replace(request, method=name, method_settings=())
    return replace(request, method=name, method_settings=own, n_steps=DEFAULT_STEPS, tolerance=None,
                   precision="fp32", integration=DEFAULT_INTEGRATION, delta_tolerance=DEFAULT_DELTA_TOLERANCE)


class LruItems:
    """A thread-safe map that keeps its `max_entries` most recently used items (the bounded caches below)."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._items: OrderedDict[tuple, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> object | None:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            return value

    def put(self, key: tuple, value: object) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.max_entries:
                self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


class MethodResultCache(LruItems):
    """Single methods' results (and the faithfulness of a set of them), bounded LRU, computed one by one.

    Keyed by (model, the request reduced to the method's own settings, method): the methods page fills it one
    method at a time, so a rerun shows what is done at once and computes only the rest. Each computation is
    checked against the work budget and waits for its turn on the model's scheduler, like an analysis.
    """

    def __init__(self, max_entries: int = 512, budget: WorkBudget | None = None,
                 schedulers: Schedulers | None = None) -> None:
        super().__init__(max_entries)
        self.budget = budget or WorkBudget.from_environment()
        self.schedulers = schedulers

    @staticmethod
    def key(request: AnalysisRequest, spec: str, name: str) -> tuple:
        return (spec, method_request(request, name), name)

    def estimate(self, request: AnalysisRequest, loaded: LoadedModel, name: str) -> float:
        """The method's work units; WorkBudgetError (one sentence) when it is over the budget."""
        validate(request)
        max_tokens = min(int(request.max_tokens), loaded.max_tokens)
        n_tokens = len(encode_truncated(loaded.tokenizer, request.text, max_tokens).encoding.ids)
        steps = method_evaluations(request, name, n_tokens)
        work = estimate_work(replace(request, n_steps=steps, tolerance=None), loaded.config, n_tokens)
        if work > self.budget.max_work:
            raise WorkBudgetError(
                f"{METHODS[name].title} needs about {about(self.budget.seconds(work))} s of computation here, over "
                f"this server's {about(self.budget.seconds(self.budget.max_work))} s limit: use fewer samples or "
                "steps, a shorter text or a lower token limit.")
        return work

    def compute(self, request: AnalysisRequest, loaded: LoadedModel, name: str,
                progress: Callable[[float], None] | None = None, *, session: Hashable | None = None) -> MethodResult:
        """One method's result for `request`, cached; raises WorkBudgetError, ServerBusy and other ExplainErrors."""
        key = self.key(request, loaded.spec, name)
        cached = self.get(key)
        if cached is not None:
            return cached
        light = self.budget.is_light(self.estimate(request, loaded, name))
        report = progress or (lambda fraction: None)
        with self._turn(loaded, light, session, lambda ahead: report(0.0)) as turn:
            def step(fraction: float) -> None:
                turn.check()
                report(fraction)

            result = explain_method(method_request(request, name), loaded, name, progress=step)
        self.put(key, result)
        return result

    def faithfulness(self, request: AnalysisRequest, loaded: LoadedModel, results: dict[str, MethodResult],
                     removal: str, *, session: Hashable | None = None
                     ) -> tuple[dict[str, MethodResult], FaithfulnessSummary]:
        """Every method's comprehensiveness, sufficiency and leave-one-out agreement, and the random floor."""
        key = ("faithfulness", loaded.spec, tuple(self.key(request, loaded.spec, n) for n in results), removal)
        cached = self.get(key)
        if cached is not None:
            return cached  # type: ignore[return-value]
        with self._turn(loaded, True, session, None):
            value = evaluate_faithfulness(request, loaded, results, removal=removal)
        self.put(key, value)
        return value

    def _turn(self, loaded: LoadedModel, light: bool, session: Hashable | None,
              waiting: Callable[[int], None] | None):
        schedulers = self.schedulers or analysis_cache().schedulers  # one queue per model for all the work on it
        return schedulers.get(loaded.spec).turn(light=light, session=current_session() if session is None else session,
                                                waiting=waiting)


@st.cache_resource(show_spinner=False)
def method_cache() -> MethodResultCache:
    return MethodResultCache()


# -- heads page ----------------------------------------------------------------------------------------------

# The pruning curve is scored at this many evenly spread numbers of removed heads (every number on smaller
# models): each point is one forward pass per order, and 49 points draw the curve's shape.
PRUNING_POINTS = 49
PRUNING_RANDOM_ORDERS = 3


@dataclass(frozen=True)
class HeadsRequest:
    """What the heads page computes from: the model, the text, the explained output and the token limit."""

    spec: str
    text: str
    target: TargetSpec | None
    max_tokens: int
    pair: str = ""  # a second text read with the first
    question: str = ""  # question answering: `text` is then the context

    @property
    def texts(self) -> tuple[str, ...]:
        """The texts in the order the model reads them (as `AnalysisRequest.texts`)."""
        return texts_in_order(self.text, self.pair, self.question)


def head_passes(n_layers: int, n_heads: int, what: str, n_points: int = PRUNING_POINTS,
                n_random: int = PRUNING_RANDOM_ORDERS) -> int:
    """Forward passes one heads computation makes: the importance maps (one per head, plus the gradient's
    forward and backward and the attention pass) or the pruning curve (each point in each order)."""
    n_total = n_layers * n_heads
    if what == "importance":
        return n_total + 3
    return (1 + n_random) * min(n_total + 1, n_points)


class ScheduledResults(LruItems):
    """Results shared by every session, bounded LRU, each computed on its model's scheduler (a light or a heavy
    turn, like an analysis). One computation per key at a time: a second session asking for the same result
    waits for the first."""

    def __init__(self, max_entries: int = 256, budget: WorkBudget | None = None,
                 schedulers: Schedulers | None = None) -> None:
        super().__init__(max_entries)
        self.budget = budget or WorkBudget.from_environment()
        self.schedulers = schedulers
        self._key_locks: dict[tuple, threading.Lock] = {}

    def _compute(self, key: tuple, loaded: LoadedModel, make: Callable[[LoadedModel, Callable[[float], None]], object],
                 *, light: bool, progress: Callable[[str, float | None], None] | None, stage: str) -> object:
        value = self.get(key)
        if value is not None:
            return value
        report = progress or _ignore
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        try:
            with key_lock:
                value = self.get(key)
                if value is not None:
                    return value
                schedulers = self.schedulers or analysis_cache().schedulers
                with schedulers.get(loaded.spec).turn(light=light, session=current_session(),
                                                      waiting=lambda ahead: report(queue_text(ahead), None)) as turn:
                    model = replace(loaded, lock=threading.RLock()) if turn.beside_paused else loaded

                    def step(fraction: float) -> None:
                        turn.check()
                        report(stage, fraction)

                    report(stage, 0.0)
                    value = make(model, step)
                self.put(key, value)
        finally:
            with self._lock:
                self._key_locks.pop(key, None)
        return value



class HeadResultCache(ScheduledResults):
    """The heads page's results (tokenised inputs, importance maps, pruning curves, neuron views).

    Importance maps and pruning curves are checked against the work budget and take a heavy turn (they put
    gates on the shared model, under its lock); the tokenised inputs and neuron views are one pass each and take
    a light turn.
    """

    def check_budget(self, loaded: LoadedModel, inputs: HeadInputs, what: str, title: str) -> None:
        """WorkBudgetError (one sentence) when `what` ("importance" or "pruning") is over the work budget.

        A forward pass without gradients costs about half an integration step (forward and backward).
        """
        adapter = adapter_of(loaded)
        passes = head_passes(adapter.n_layers, adapter.n_heads, what)
        request = AnalysisRequest("heads", model=loaded.spec, n_steps=max(1, passes // 2))
        work = estimate_work(request, loaded.config, inputs.n_tokens)
        if work > self.budget.max_work:
            raise WorkBudgetError(
                f"{title} needs about {about(self.budget.seconds(work))} s of computation here, over this server's "
                f"{about(self.budget.seconds(self.budget.max_work))} s limit: use a shorter text or a lower token "
                "limit.")

    @staticmethod
    def inputs_key(request: HeadsRequest) -> tuple:
        return ("inputs", request)

    @staticmethod
    def importance_key(request: HeadsRequest) -> tuple:
        return ("importance", request)

    @staticmethod
    def pruning_key(request: HeadsRequest, map_name: str, order: str) -> tuple:
        return ("pruning", request, map_name, order)

    def inputs(self, request: HeadsRequest, loaded: LoadedModel,
               progress: Callable[[str, float | None], None] | None = None) -> HeadInputs:
        """The text tokenised as an analysis does, with its explained score fixed; InputError for a bad target."""
        key = self.inputs_key(request)
        return cast(HeadInputs, self._compute(key, loaded, lambda model, step: prepare_inputs(
            model, request.texts, request.target, request.max_tokens,
            truncation="only_second" if request.question else "longest_first"), light=True, progress=progress,
            stage="tokenising"))

    def importance(self, request: HeadsRequest, loaded: LoadedModel, inputs: HeadInputs,
                   progress: Callable[[str, float | None], None] | None = None) -> HeadImportance:
        """The three importance maps and their rank correlations (zero ablation)."""
        key = self.importance_key(request)
        if self.get(key) is None:
            self.check_budget(loaded, inputs, "importance", "Ranking the heads")
        return cast(HeadImportance, self._compute(
            key, loaded, lambda model, step: head_importance(model, inputs, progress=step), light=False,
            progress=progress, stage="removing each head in turn"))

    def pruning(self, request: HeadsRequest, loaded: LoadedModel, inputs: HeadInputs, importance: HeadImportance,
                map_name: str, order: str,
                progress: Callable[[str, float | None], None] | None = None) -> PruningCurve:
        """The pruning curve in the order of `map_name` (least or most important first) and in random orders."""
        key = self.pruning_key(request, map_name, order)
        if self.get(key) is None:
            self.check_budget(loaded, inputs, "pruning", "The pruning curve")
        return cast(PruningCurve, self._compute(key, loaded, lambda model, step: pruning_curve(
            model, inputs, importance.map(map_name), importance_name=map_name, order=order,
            n_random=PRUNING_RANDOM_ORDERS, n_points=PRUNING_POINTS, progress=step),
            light=False, progress=progress, stage="removing heads one by one"))

    def neuron(self, request: HeadsRequest, loaded: LoadedModel, inputs: HeadInputs, layer: int, head: int,
               token: int) -> NeuronView:
        """One head's query, keys, their products, scores and attention row for one query token."""
        key = ("neuron", request, layer, head, token)
        return cast(NeuronView, self._compute(
            key, loaded, lambda model, step: neuron_view(model, inputs, layer, head, token), light=True,
            progress=None, stage="inside the head"))


@st.cache_resource(show_spinner=False)
def head_cache() -> HeadResultCache:
    return HeadResultCache()


class DepthResults(ScheduledResults):
    """Analyses with their embedding-part and layer-wise attributions (explain.depth), shared by every session.

    Each is checked against the work budget (about layers + 1 times one attribution) and takes a heavy turn.
    """

    def __init__(self, max_entries: int = 16, budget: WorkBudget | None = None,
                 schedulers: Schedulers | None = None) -> None:
        super().__init__(max_entries, budget, schedulers)

    @staticmethod
    def key(result: Analysis, spec: str) -> tuple:
        return ("depth", spec, result.request)

    def with_depth(self, result: Analysis, loaded: LoadedModel,
                   progress: Callable[[str, float | None], None] | None = None) -> Analysis:
        """`result` with both depth attributions; WorkBudgetError (one sentence) when over the budget."""
        key = self.key(result, loaded.spec)
        cached_result = self.get(key)
        if cached_result is not None:
            return cast(Analysis, cached_result)
        check_depth_budget(result, loaded.config, self.budget)
        share = 1.0 / (result.model.n_layers + 1)  # the embedding parts cost about one layer's attribution

        def make(model: LoadedModel, step: Callable[[float], None]) -> Analysis:
            def overall(stage: str, fraction: float) -> None:
                step(fraction * share if stage == "embedding parts" else share + fraction * (1 - share))

            return with_depth(model, result, progress=overall)

        return cast(Analysis, self._compute(key, loaded, make, light=False, progress=progress,
                                            stage="splitting the score over the embeddings and the layers"))


@st.cache_resource(show_spinner=False)
def depth_results() -> DepthResults:
    return DepthResults()
