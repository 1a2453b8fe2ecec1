"""Fair use of a shared model: a work budget per request and a bounded, fair queue per model.

Integrated gradients on one model runs one analysis at a time (the model's lock), so without an
order a few large requests starve everyone else, and Python's locks are not first come, first
served. Here:

- `estimate_work` and `WorkBudget`: a request's work is its tokens x model evaluations x the
  model's cost per token relative to the embedded `minilm` (plus a fixed cost per evaluation);
  a request over the budget is refused with one sentence before it waits for anything.
- `ModelScheduler`: per model, heavy analyses take turns first come, first served, at most
  `max_waiting` waiting (beyond that `ServerBusy`), one per session (a session's new request
  replaces its old one). Light analyses (a few seconds at most) go first: a running heavy
  analysis pauses at its next safe point (`Turn.pause_point`, between batches of integration
  steps) while they run, so a quick question never waits behind minutes of someone else's work.

Pure Python: the scheduler needs no torch and no streamlit; the caller runs the analysis.
"""

from __future__ import annotations

import math
import os
import threading
from collections import deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from explain.analysis import MIN_STEPS, AnalysisRequest
from explain.errors import ExplainError, InputError
from explain.families import model_shape as shape_by_family

MAX_WORK_ENV = "EXPLAIN_MAX_WORK"
WORK_RATE_ENV = "EXPLAIN_WORK_RATE"
LIGHT_SECONDS_ENV = "EXPLAIN_LIGHT_SECONDS"
QUEUE_LENGTH_ENV = "EXPLAIN_QUEUE_LENGTH"

# The unit of work: one token through one forward and backward pass of minilm (6 layers, hidden 384,
# intermediate 1536) in a 128-token sequence. The rate is this project's 2-core machine (AMD EPYC, torch
# threads 2): 512 tokens x 1000 steps took about 340 s (issue 10), 128 x 200 and 11 x 50 agree within 10%
# (benchmarks/work_budget.py, docs/load-test.md).
REFERENCE_SHAPE = (6, 384, 1536)
REFERENCE_TOKENS = 128
DEFAULT_WORK_RATE = 2000.0  # work units per second here
DEFAULT_LIMIT_SECONDS = 30.0
DEFAULT_LIGHT_SECONDS = 3.0
DEFAULT_QUEUE_LENGTH = 4
# Fixed cost of one evaluation in token units (tensor set-up, per-layer overhead), which dominates
# short texts; and the passes besides the integration steps (attention, the two endpoint scores).
EVALUATION_OVERHEAD_TOKENS = 64
EXTRA_EVALUATIONS = 2
# bfloat16 autocast (fast mode) relative to float32, per evaluation: counted as float32 (not measured
# apart here).
PRECISION_COST = {"fp32": 1.0, "bf16": 1.0}
# Adaptive runs use nested levels of 9, 17, 33, ... points up to the cap (explain.attribution).
ADAPTIVE_START_INTERVALS = 8


class WorkBudgetError(InputError):
    """A request needs more computation than this server allows for one analysis."""


class ServerBusy(ExplainError):
    """The queue of a model is full."""


class Replaced(ExplainError):
    """A newer analysis from the same session took this one's place."""


def evaluations(request: AnalysisRequest) -> int:
    """The most model evaluations (forward and backward) integrated gradients makes for `request`."""
    n_steps = int(request.n_steps)
    if request.integration == "clenshaw_curtis":  # whole levels only; adaptive Simpson may use the whole cap
        points = [n + 1 for n in (1, 2, 4) if n + 1 <= n_steps]
        n = ADAPTIVE_START_INTERVALS
        while n + 1 <= n_steps:
            points.append(n + 1)
            n *= 2
        n_steps = max(points, default=n_steps)
    return n_steps + EXTRA_EVALUATIONS


def model_shape(config: Any) -> tuple[int, int, int]:
    """(layers, hidden size, feed-forward size) of a transformers config, by its family's names."""
    return shape_by_family(config, REFERENCE_SHAPE)


def token_cost(shape: tuple[int, int, int], n_tokens: int) -> float:
    """Multiply-adds per token of one pass: projections, feed-forward and attention over `n_tokens`."""
    layers, hidden, inner = shape
    return float(layers * (4 * hidden * hidden + 2 * hidden * inner + 2 * n_tokens * hidden))


def estimate_work(request: AnalysisRequest, config: Any, n_tokens: int) -> float:
    """Work units of `request` on a model with this config at `n_tokens` tokens (see REFERENCE_SHAPE)."""
    relative = token_cost(model_shape(config), n_tokens) / token_cost(REFERENCE_SHAPE, REFERENCE_TOKENS)
    precision = PRECISION_COST.get(request.precision, 1.0)
    return evaluations(request) * (n_tokens + EVALUATION_OVERHEAD_TOKENS) * relative * precision


def about(value: float) -> str:
    """Two significant digits, no exponent: 95, 120, 4.3, 0.52."""
    return f"{float(f'{value:.2g}'):g}"


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        return default


@dataclass(frozen=True)
class WorkBudget:
    """The most work one request may ask for, and the rate that turns work into seconds here.

    max_work: work units (see REFERENCE_SHAPE), or infinity for no limit;
    rate: work units per second on this server (only used to say seconds);
    light_seconds: requests estimated at most this long run before heavy ones.
    """

    max_work: float = DEFAULT_LIMIT_SECONDS * DEFAULT_WORK_RATE
    rate: float = DEFAULT_WORK_RATE
    light_seconds: float = DEFAULT_LIGHT_SECONDS

    @classmethod
    def from_environment(cls) -> WorkBudget:
        """EXPLAIN_WORK_RATE (units/s), EXPLAIN_MAX_WORK (units; 0 = no limit), EXPLAIN_LIGHT_SECONDS."""
        rate = _env_float(WORK_RATE_ENV, DEFAULT_WORK_RATE)
        rate = rate if rate > 0 else DEFAULT_WORK_RATE
        max_work = _env_float(MAX_WORK_ENV, DEFAULT_LIMIT_SECONDS * rate)
        return cls(max_work=max_work if max_work > 0 else math.inf, rate=rate,
                   light_seconds=_env_float(LIGHT_SECONDS_ENV, DEFAULT_LIGHT_SECONDS))

    def seconds(self, work: float) -> float:
        return work / self.rate

    def is_light(self, work: float) -> bool:
        return self.seconds(work) <= self.light_seconds

    def check(self, request: AnalysisRequest, config: Any, n_tokens: int) -> float:
        """The request's work; raises WorkBudgetError (one sentence saying what to reduce) when over the budget."""
        work = estimate_work(request, config, n_tokens)
        if work <= self.max_work:
            return work
        per_step = work / evaluations(request)
        fit = int(self.max_work // per_step) - EXTRA_EVALUATIONS
        advice = (f"at {n_tokens} tokens up to {fit} integration steps fit, so use fewer steps or a shorter text"
                  if fit >= MIN_STEPS else "use a shorter text or a lower token limit")
        raise WorkBudgetError(
            f"This request needs about {about(self.seconds(work))} s of computation, over this server's "
            f"{about(self.seconds(self.max_work))} s limit: {advice}."
        )


def check_work_budget(request: AnalysisRequest, n_tokens: int, config: Any = None,
                      budget: WorkBudget | None = None) -> float:
    """Raise WorkBudgetError when `request` at `n_tokens` tokens is over the budget (from the environment
    unless given) on a model with this config (minilm's when None); return its work units."""
    return (budget or WorkBudget.from_environment()).check(request, config, n_tokens)


def queue_length_from_environment() -> int:
    return max(0, int(_env_float(QUEUE_LENGTH_ENV, DEFAULT_QUEUE_LENGTH)))


class Ticket:
    """One analysis asking for a model: waiting, then running (heavy may pause), then done."""

    def __init__(self, session: Hashable | None, light: bool) -> None:
        self.session = session
        self.light = light
        self.running = False
        self.replaced = False


class Turn:
    """What a running analysis gets: pause points for heavy work, and whether a paused heavy analysis
    shares the model with it (then it must not take the model's own lock, which the paused one holds)."""

    def __init__(self, scheduler: ModelScheduler, ticket: Ticket, beside_paused: bool) -> None:
        self._scheduler = scheduler
        self._ticket = ticket
        self.beside_paused = beside_paused

    @property
    def light(self) -> bool:
        return self._ticket.light

    def check(self) -> None:
        """Raise Replaced when a newer analysis of the same session took this one's place."""
        if self._ticket.replaced:
            raise Replaced("A newer analysis from this page replaced this one.")

    def pause_point(self) -> None:
        """Heavy work calls this where the model may be lent out (no hooks on it, no tokenizer in use):
        it waits here while light analyses wait or run."""
        self.check()
        if not self._ticket.light:
            self._scheduler.pause_heavy(self._ticket)
            self.check()


class ModelScheduler:
    """Turns on one model: light analyses first, heavy ones first come first served, one at a time each.

    A light analysis starts when no other light one runs and the heavy one (if any) is paused at a pause
    point; a heavy one starts when no other heavy one runs and no light one waits or runs. At most
    `max_waiting` analyses wait (light and heavy together); a session has at most one ticket.
    """

    def __init__(self, max_waiting: int = DEFAULT_QUEUE_LENGTH, poll_seconds: float = 0.5) -> None:
        self.max_waiting = max_waiting
        self.poll_seconds = poll_seconds
        self._cond = threading.Condition()
        self._heavy: deque[Ticket] = deque()
        self._light: deque[Ticket] = deque()
        self._running_heavy: Ticket | None = None
        self._running_light: Ticket | None = None
        self._paused = False

    # -- state, under self._cond ---------------------------------------------------------------

    def _tickets(self) -> list[Ticket]:
        running = [t for t in (self._running_heavy, self._running_light) if t is not None]
        return running + list(self._light) + list(self._heavy)

    def _can_start(self, ticket: Ticket) -> bool:
        if ticket.light:
            return (self._light[0] is ticket and self._running_light is None
                    and (self._running_heavy is None or self._paused))
        return (self._heavy[0] is ticket and self._running_heavy is None
                and self._running_light is None and not self._light)

    def _ahead(self, ticket: Ticket) -> int:
        if ticket.light:
            return self._light.index(ticket) + (self._running_light is not None)
        return (self._heavy.index(ticket) + len(self._light)
                + (self._running_light is not None) + (self._running_heavy is not None))

    # -- public --------------------------------------------------------------------------------

    def waiting(self) -> int:
        with self._cond:
            return len(self._heavy) + len(self._light)

    def active(self) -> int:
        """Analyses running or waiting on this model."""
        with self._cond:
            return len(self._tickets())

    @contextmanager
    def turn(self, *, light: bool, session: Hashable | None = None,
             waiting: Callable[[int], None] | None = None) -> Iterator[Turn]:
        """Wait for this analysis's turn and hold it for the `with` block.

        Args:
            light: a light analysis (see the class); heavy analyses call `Turn.pause_point` between steps.
            session: the asking session; its older ticket, waiting or running, is replaced.
            waiting: called with the number of analyses ahead, about every `poll_seconds` while waiting
                (it may raise to give up the place, as Streamlit does when the page is rerun).
        Raises:
            ServerBusy: `max_waiting` analyses already wait.
            Replaced: a newer ticket of the same session took this one's place while it waited.
        """
        ticket = Ticket(session, light)
        with self._cond:
            if session is not None:
                for old in self._tickets():
                    if old.session == session:
                        old.replaced = True
                self._heavy = deque(t for t in self._heavy if not t.replaced)
                self._light = deque(t for t in self._light if not t.replaced)
            if len(self._heavy) + len(self._light) >= self.max_waiting:
                raise ServerBusy(f"The server is busy with {len(self._tickets())} analyses on this model; "
                                 "try again in a minute.")
            (self._light if light else self._heavy).append(ticket)
            self._cond.notify_all()
        try:
            beside_paused = self._wait_for_turn(ticket, waiting)
            yield Turn(self, ticket, beside_paused)
        finally:
            with self._cond:
                if ticket in self._light:
                    self._light.remove(ticket)
                if ticket in self._heavy:
                    self._heavy.remove(ticket)
                if self._running_light is ticket:
                    self._running_light = None
                if self._running_heavy is ticket:
                    self._running_heavy = None
                    self._paused = False
                self._cond.notify_all()

    def _wait_for_turn(self, ticket: Ticket, waiting: Callable[[int], None] | None) -> bool:
        while True:
            with self._cond:
                if ticket.replaced:
                    raise Replaced("A newer analysis from this page replaced this one.")
                if self._can_start(ticket):
                    queue = self._light if ticket.light else self._heavy
                    queue.popleft()
                    ticket.running = True
                    if ticket.light:
                        self._running_light = ticket
                        return self._running_heavy is not None
                    self._running_heavy = ticket
                    return False
                ahead = self._ahead(ticket)
            if waiting is not None:
                waiting(ahead)
            with self._cond:
                if not self._can_start(ticket) and not ticket.replaced:
                    self._cond.wait(self.poll_seconds)

    def pause_heavy(self, ticket: Ticket) -> None:
        """Called by the running heavy analysis at a safe point: wait while light analyses wait or run."""
        with self._cond:
            if self._running_heavy is not ticket or not (self._light or self._running_light):
                return
            self._paused = True
            self._cond.notify_all()
            try:
                while (self._light or self._running_light) and not ticket.replaced:
                    self._cond.wait(self.poll_seconds)
            finally:
                self._paused = False


class Schedulers:
    """One ModelScheduler per model spec, made on first use."""

    def __init__(self, max_waiting: int | None = None) -> None:
        self.max_waiting = queue_length_from_environment() if max_waiting is None else max_waiting
        self._items: dict[str, ModelScheduler] = {}
        self._lock = threading.Lock()

    def get(self, spec: str) -> ModelScheduler:
        with self._lock:
            if spec not in self._items:
                self._items[spec] = ModelScheduler(self.max_waiting)
            return self._items[spec]


def has_foreign_hooks(module: Any) -> bool:
    """Whether a torch module has forward or backward hooks besides transformers' own output capturing
    (which transformers 5 installs for good on first use and which record only inside a forward pass):
    a model with gated or ablated heads must not be lent to another analysis. torch keeps hooks in these
    dicts and has no public way to list them."""
    names = ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks", "_backward_pre_hooks")
    for submodule in module.modules():
        for name in names:
            for hook in (getattr(submodule, name, None) or {}).values():
                owner = getattr(hook, "__module__", None) or getattr(getattr(hook, "func", None), "__module__", "")
                if not str(owner).startswith("transformers."):
                    return True
    return False
