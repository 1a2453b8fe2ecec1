"""Fair use of a shared model: a work budget per request and a bounded, fair queue per model.

Integrated gradients on one model runs one analysis at a time (the model's lock), so without an
order a few large requests starve everyone else, and Python's locks are not first come, first
served. Here:

- `WorkBudget`: work is priced from the declared cost of what runs (`explain.costs`); work over the
  budget is refused with one sentence before it waits for anything.
- `ModelScheduler`: per model, heavy analyses take turns first come, first served, at most
  `max_waiting` waiting of each kind (beyond that `ServerBusy`), one per session (a session's new request
  replaces its old one). Light analyses (a few seconds at most) go first: a running heavy
  analysis pauses at its next safe point (`Turn.pause_point`, between batches of integration
  steps) while they run, so a quick question never waits behind minutes of someone else's work.
- `ScheduledCache`: one computation per key, in a thread of its own shared by everyone asking for that key;
  when all of them have left (their tabs closed), it stops at its next progress report (`Cancelled`).

Pure Python: the scheduler needs no torch and no streamlit; the caller runs the analysis.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from explain.costs import EXTRA_EVALUATIONS, estimate_work, evaluations
from explain.errors import ExplainError, InputError
from explain.methods import get_method
from explain.pacing import DEFAULT_WORK_RATE, WORK_RATE_ENV, env_float
from explain.records import MIN_STEPS, AnalysisRequest

MAX_WORK_ENV = "EXPLAIN_MAX_WORK"
LIGHT_SECONDS_ENV = "EXPLAIN_LIGHT_SECONDS"
QUEUE_LENGTH_ENV = "EXPLAIN_QUEUE_LENGTH"

DEFAULT_LIMIT_SECONDS = 30.0
DEFAULT_LIGHT_SECONDS = 3.0
DEFAULT_QUEUE_LENGTH = 4
# A running turn that has not finished within this many times its estimate (and at least WATCHDOG_MIN_SECONDS),
# pauses excluded, is stopped at its next progress report, and waiting turns stop waiting for it.
WATCHDOG_FACTOR = 10.0
WATCHDOG_MIN_SECONDS = 120.0


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc (musl, macOS, Windows)
        return None


def release_memory() -> bool:
    """Hand the heap's free pages back to the system (glibc's `malloc_trim`); False where there is no glibc.

    Heavy work frees its activations into glibc's per-thread arenas, which keep them: without this the server's
    resident memory stays near its peak after the heavy pages have closed (benchmarks/memory_after_heavy.py)."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


class WorkBudgetError(InputError):
    """A request needs more computation than this server allows for one analysis."""


class ServerBusy(ExplainError):
    """The queue of a model is full."""


class Replaced(ExplainError):
    """A newer analysis from the same session took this one's place."""


def about(value: float) -> str:
    """Two significant digits, no exponent: 95, 120, 4.3, 0.52."""
    return f"{float(f'{value:.2g}'):g}"


@dataclass(frozen=True)
class WorkBudget:
    """The most work one request may ask for, and the rate that turns work into seconds here.

    max_work: work units (see `explain.pacing.REFERENCE_SHAPE`), or infinity for no limit;
    rate: work units per second on this server (only used to say seconds);
    light_seconds: requests estimated at most this long run before heavy ones.
    """

    max_work: float = DEFAULT_LIMIT_SECONDS * DEFAULT_WORK_RATE
    rate: float = DEFAULT_WORK_RATE
    light_seconds: float = DEFAULT_LIGHT_SECONDS

    @classmethod
    def from_environment(cls) -> WorkBudget:
        """EXPLAIN_WORK_RATE (units/s), EXPLAIN_MAX_WORK (units; 0 = no limit), EXPLAIN_LIGHT_SECONDS."""
        rate = env_float(WORK_RATE_ENV, DEFAULT_WORK_RATE)
        rate = rate if rate > 0 else DEFAULT_WORK_RATE
        max_work = env_float(MAX_WORK_ENV, DEFAULT_LIMIT_SECONDS * rate)
        return cls(max_work=max_work if max_work > 0 else math.inf, rate=rate,
                   light_seconds=env_float(LIGHT_SECONDS_ENV, DEFAULT_LIGHT_SECONDS))

    def seconds(self, work: float) -> float:
        return work / self.rate

    def is_light(self, work: float) -> bool:
        return self.seconds(work) <= self.light_seconds

    def check(self, request: AnalysisRequest, config: Any, n_tokens: int, n_words: int | None = None) -> float:
        """The request's work, priced from its method's declared cost; raises WorkBudgetError (one sentence saying
        what to reduce) when over the budget."""
        work = estimate_work(request, config, n_tokens, n_words)
        if work <= self.max_work:
            return work
        advice = "use a shorter text, a lower token limit or a cheaper method"
        if "n_steps" in get_method(request.method).request_fields:
            per_step = work / evaluations(request, n_tokens, n_words)
            fit = int(self.max_work // per_step) - EXTRA_EVALUATIONS
            if fit >= MIN_STEPS:
                advice = f"at {n_tokens} tokens up to {fit} integration steps fit, so use fewer steps or a shorter text"
            else:
                advice = "use a shorter text or a lower token limit"
        self.refuse(work, "This request", advice)
        return work

    def check_work(self, work: float, what: str, advice: str) -> float:
        """`work`, or WorkBudgetError ("`what` needs about N s ..., over this server's M s limit: `advice`.")."""
        if work > self.max_work:
            self.refuse(work, what, advice)
        return work

    def refuse(self, work: float, what: str, advice: str) -> None:
        raise WorkBudgetError(
            f"{what} needs about {about(self.seconds(work))} s of computation, over this server's "
            f"{about(self.seconds(self.max_work))} s limit: {advice}."
        )


def check_work_budget(request: AnalysisRequest, n_tokens: int, config: Any = None,
                      budget: WorkBudget | None = None) -> float:
    """Raise WorkBudgetError when `request` at `n_tokens` tokens is over the budget (from the environment
    unless given) on a model with this config (minilm's when None); return its work units."""
    return (budget or WorkBudget.from_environment()).check(request, config, n_tokens)


def queue_length_from_environment() -> int:
    return max(0, int(env_float(QUEUE_LENGTH_ENV, DEFAULT_QUEUE_LENGTH)))


class TurnExpired(ExplainError):
    """A turn ran far past its estimate and was stopped so that the work queued behind it can go on."""


class Ticket:
    """One piece of work asking for a model: waiting, then running (heavy may pause), then done.

    `allowed`: seconds it may run (pauses excluded) before the watchdog stops it.
    """

    def __init__(self, session: Hashable | None, light: bool, allowed: float = math.inf) -> None:
        self.session = session
        self.light = light
        self.allowed = allowed
        self.running = False
        self.replaced = False
        self.expired = False
        self.started = 0.0
        self.paused_seconds = 0.0

    def overdue(self, now: float) -> bool:
        return self.running and now - self.started - self.paused_seconds > self.allowed


def watchdog_seconds(estimated_seconds: float) -> float:
    """How long a turn estimated at `estimated_seconds` may run before the watchdog stops it."""
    return max(WATCHDOG_MIN_SECONDS, WATCHDOG_FACTOR * estimated_seconds)


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
        """Raise Replaced when a newer analysis of the same session took this one's place, TurnExpired when the
        watchdog stopped this turn."""
        if self._ticket.replaced:
            raise Replaced("A newer analysis from this page replaced this one.")
        if self._ticket.expired or self._ticket.overdue(time.monotonic()):
            self._ticket.expired = True
            raise TurnExpired(f"This computation ran past {about(self._ticket.allowed)} s, far beyond its estimate, "
                              "and was stopped so that the work queued behind it can go on.")

    @contextmanager
    def hold(self, loaded: Any) -> Iterator[Any]:
        """The model for this turn, its lock held: the scheduler is the one owner of a model's lock.

        Beside a heavy turn paused at a safe point (which holds the model's lock), a light turn gets the same
        weights under a lock of its own, so no order of turns can wait on a lock a paused turn holds. The lock is
        waited for at most as long as the turn may run, so work outside the queue cannot hold the queue for good.
        """
        if self.beside_paused:
            yield dataclasses.replace(loaded, lock=threading.RLock())
            return
        wait = self._ticket.allowed if math.isfinite(self._ticket.allowed) else -1
        if not loaded.lock.acquire(timeout=wait):
            raise ServerBusy(f"This model has been busy for over {about(wait)} s with other work; "
                             "try again in a minute.")
        try:
            yield loaded
        finally:
            loaded.lock.release()

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
    `max_waiting` light and `max_waiting` heavy analyses wait (bounded apart, so heavy pages that fill the
    queue never refuse a quick question); a session has at most one ticket.
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

    def release_session(self, session: Hashable) -> None:
        """`session` no longer asks for its turns here (others still wait for that work): a newer request of that
        session no longer replaces them."""
        with self._cond:
            for ticket in self._tickets():
                if ticket.session == session:
                    ticket.session = None

    def active(self) -> int:
        """Analyses running or waiting on this model."""
        with self._cond:
            return len(self._tickets())

    @contextmanager
    def turn(self, *, light: bool, session: Hashable | None = None,
             waiting: Callable[[int], None] | None = None, allowed: float = math.inf) -> Iterator[Turn]:
        """Wait for this analysis's turn and hold it for the `with` block.

        Args:
            light: a light analysis (see the class); heavy analyses call `Turn.pause_point` between steps.
            session: the asking session; its older ticket, waiting or running, is replaced.
            waiting: called with the number of analyses ahead, about every `poll_seconds` while waiting
                (it may raise to give up the place, as Streamlit does when the page is rerun).
        Raises:
            ServerBusy: `max_waiting` analyses of the same kind (light or heavy) already wait.
            Replaced: a newer ticket of the same session took this one's place while it waited.
            allowed: seconds the turn may run, pauses excluded (`watchdog_seconds`); a turn past it is stopped
                at its next `Turn.check`, and turns waiting behind it stop waiting for it.
        """
        ticket = Ticket(session, light, allowed)
        with self._cond:
            if session is not None:
                for old in self._tickets():
                    if old.session == session:
                        old.replaced = True
                self._heavy = deque(t for t in self._heavy if not t.replaced)
                self._light = deque(t for t in self._light if not t.replaced)
            if len(self._light if light else self._heavy) >= self.max_waiting:
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
                self._expire_overdue()
                if self._can_start(ticket):
                    queue = self._light if ticket.light else self._heavy
                    queue.popleft()
                    ticket.running = True
                    ticket.started = time.monotonic()
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

    def _expire_overdue(self) -> None:
        """The watchdog (called with the condition held): a running turn past its allowed time loses its place, so
        the queue goes on; its own thread is stopped at its next check."""
        now = time.monotonic()
        for running in (self._running_heavy, self._running_light):
            if running is not None and running.overdue(now):
                running.expired = True
                if self._running_heavy is running:
                    self._running_heavy = None
                    self._paused = False
                else:
                    self._running_light = None
                self._cond.notify_all()

    def pause_heavy(self, ticket: Ticket) -> None:
        """Called by the running heavy analysis at a safe point: wait while light analyses wait or run."""
        with self._cond:
            if self._running_heavy is not ticket or not (self._light or self._running_light):
                return
            self._paused = True
            self._cond.notify_all()
            start = time.monotonic()
            try:
                while (self._light or self._running_light) and not ticket.replaced and not ticket.expired:
                    self._cond.wait(self.poll_seconds)
            finally:
                ticket.paused_seconds += time.monotonic() - start
                if self._running_heavy is ticket:
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


def queue_text(ahead: int) -> str:
    """What a waiting page shows: "2 analyses ahead of yours"."""
    if ahead <= 0:
        return "Next in line: starting in a moment"
    return f"{ahead} {'analysis' if ahead == 1 else 'analyses'} ahead of yours"


Progress = Callable[[str, float | None], None]
StepReport = Callable[[str, float], None]


def ignore_progress(stage: str, fraction: float | None) -> None:
    pass


class Cancelled(ExplainError):
    """Everyone waiting for a computation left (their pages closed or moved on), so it was stopped."""


class Job:
    """One computation in flight and the callers waiting for it (waiters).

    The computation publishes each progress report and waits until every waiter has shown it (or left), so a
    waiter's page sees it at once and a waiter that left is known at the very report after it left; once none is
    left, `publish` raises Cancelled. Waiters are opaque tokens.
    """

    def __init__(self, session: Hashable | None, owner: object) -> None:
        self.session = session  # the session whose turn it takes on the scheduler, while its `owner` waits
        self.owner = owner
        self._cond = threading.Condition()
        self._waiters: set[object] = set()
        self._unseen: set[object] = set()
        self._serial = 0
        self._report: tuple[str, float | None] = ("", None)
        self.cancelled = False
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None

    def join(self, waiter: object) -> None:
        with self._cond:
            self._waiters.add(waiter)

    def leave(self, waiter: object) -> bool:
        """Remove `waiter`; True when that cancels the computation (nobody else waits and it has not finished)."""
        with self._cond:
            self._waiters.discard(waiter)
            self._unseen.discard(waiter)
            if not self._waiters and not self.done and not self.cancelled:
                self.cancelled = True
            self._cond.notify_all()
            return self.cancelled and not self.done

    def publish(self, stage: str, fraction: float | None) -> None:
        """Hand a progress report to the waiters and wait until each has shown it or left; Cancelled when none
        is left."""
        with self._cond:
            if self.cancelled:
                raise Cancelled("Nobody waits for this computation any more, so it was stopped.")
            self._serial += 1
            self._report = (stage, fraction)
            self._unseen = set(self._waiters)
            self._cond.notify_all()
            while self._unseen and not self.cancelled:
                self._cond.wait()
            if self.cancelled:
                raise Cancelled("Nobody waits for this computation any more, so it was stopped.")

    def finish(self, value: Any, error: BaseException | None) -> None:
        with self._cond:
            self.value, self.error, self.done = value, error, True
            self._cond.notify_all()

    def wait(self, waiter: object, progress: Progress | None) -> Any:
        """In a waiter's thread: show each report with `progress` until the computation ends; its value, or
        its error raised here. Whatever `progress` raises goes on (the caller then makes this waiter leave)."""
        seen = 0
        while True:
            with self._cond:
                while self._serial == seen and not self.done:
                    self._cond.wait()
                if self._serial == seen:
                    break
                serial, report = self._serial, self._report
            if progress is not None:
                progress(*report)
            with self._cond:
                seen = serial
                self._unseen.discard(waiter)
                self._cond.notify_all()
        if self.error is not None:
            raise self.error
        return self.value


class ScheduledCache:
    """Results every session shares: a bounded LRU (by count, and by bytes when `size` is given), one
    computation per key at a time, each priced against the work budget before it waits for anything and run in
    a turn on its model's scheduler, with its progress, its place in the queue and the watchdog.

    A page adds a request type and a compute function `make(model, step)`; `step(stage, fraction)` reports
    progress, raises when the turn is replaced or stopped, and pauses heavy work at stages named in `pause_at`
    while light work waits (never while hooks of ours are on the model).
    """

    def __init__(self, max_entries: int = 256, budget: WorkBudget | None = None,
                 schedulers: Schedulers | None = None, *, max_bytes: float = math.inf,
                 size: Callable[[Any], int] | None = None) -> None:
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self.budget = budget or WorkBudget.from_environment()
        self.schedulers = schedulers or Schedulers()
        self._size = size or (lambda value: 0)
        self._items: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._jobs: dict[Hashable, Job] = {}  # computations in flight, by key

    def get(self, key: Hashable) -> Any | None:
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: Any) -> None:
        """Keep `value` (least recently used values leave to make room); one larger than the whole byte budget is
        handed back to its caller but not kept."""
        size = self._size(value)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._items:
                self._bytes -= self._items.pop(key)[1]
            self._items[key] = (value, size)
            self._bytes += size
            while len(self._items) > 1 and (len(self._items) > self.max_entries or self._bytes > self.max_bytes):
                self._bytes -= self._items.popitem(last=False)[1][1]

    def __len__(self) -> int:
        return len(self._items)

    def in_flight(self) -> int:
        """Computations started and not finished or cancelled."""
        with self._lock:
            return len(self._jobs)

    def compute(self, key: Hashable, loaded: Any, make: Callable[[Any, StepReport], Any], *, work: float,
                what: str, advice: str, progress: Progress | None = None, session: Hashable | None = None,
                stage: str = "", pause_at: frozenset[str] = frozenset(), refusable: bool = True) -> Any:
        """The cached value for `key`, or `make(model, step)` in its turn on `loaded`'s scheduler.

        The computation runs in a thread of its own, shared by every caller asking for `key` meanwhile (each a
        waiter); each waiter sees its progress. When every waiter has left, it stops at its next progress report
        (`Cancelled`, never cached); while one remains, it goes on.

        Args:
            work: the work units of `make`, priced from what it runs (explain.costs); over the budget it is
                refused with "`what` needs about N s ..., over this server's M s limit: `advice`."
            progress: called in the caller's thread with (stage, fraction done), and with (queue text, None)
                while waiting; the computation waits for it at each report. When it raises, this caller leaves
                (Streamlit raises at the next call after a rerun or when the tab closes) and the exception goes on.
            session: who asks (its older turn on this model is replaced); None: nobody's.
            refusable: False for one pass over the text (reading it, one head's view): the least any page
                needs, priced for the queue but never refused.
        Raises:
            WorkBudgetError, ServerBusy, Replaced, TurnExpired and other ExplainErrors, each one sentence.
        """
        value = self.get(key)
        if value is not None:
            return value
        if refusable:
            self.budget.check_work(work, what, advice)
        while True:
            waiter = object()
            with self._lock:
                item = self._items.get(key)
                if item is not None:
                    return item[0]
                job = self._jobs.get(key)
                if job is None:
                    job = self._jobs[key] = Job(session, waiter)
                    start = True
                else:
                    start = False
                job.join(waiter)
            if start:
                threading.Thread(target=self._run, args=(job, key, loaded, make, work, stage, pause_at),
                                 name=f"scheduled {what or 'work'}", daemon=True).start()
            try:
                return job.wait(waiter, progress)
            except Replaced:
                if job.session == session:
                    raise
                # the session that started it asked for something else; this caller still waits: start anew
            finally:
                self._leave(key, job, waiter, loaded.spec)

    def _leave(self, key: Hashable, job: Job, waiter: object, spec: str) -> None:
        """`waiter` leaves: the computation is cancelled when nobody else waits; when others do and it was the one
        that started it, that session's next request no longer replaces the work the others wait for."""
        released = None
        with self._lock:
            if job.leave(waiter):
                if self._jobs.get(key) is job:
                    del self._jobs[key]
            elif waiter is job.owner and not job.done and job.session is not None:
                released, job.session = job.session, None
        if released is not None:
            self.schedulers.get(spec).release_session(released)

    def _run(self, job: Job, key: Hashable, loaded: Any, make: Callable[[Any, StepReport], Any], work: float,
             stage: str, pause_at: frozenset[str]) -> None:
        """The computation's own thread: its turn, its progress to the waiters, its value to the cache."""
        value: Any = None
        error: BaseException | None = None
        light = self.budget.is_light(work)
        try:
            scheduler = self.schedulers.get(loaded.spec)
            with scheduler.turn(light=light, session=job.session,
                                waiting=lambda ahead: job.publish(queue_text(ahead), None),
                                allowed=watchdog_seconds(self.budget.seconds(work))) as turn, \
                    turn.hold(loaded) as model:

                def step(name: str, fraction: float) -> None:
                    turn.check()
                    job.publish(name, fraction)
                    if name in pause_at and not turn.light and not has_foreign_hooks(loaded.model):
                        turn.pause_point()

                if stage:
                    job.publish(stage, 0.0)
                value = make(model, step)
            self.put(key, value)
        except BaseException as exc:  # noqa: BLE001 - handed to every waiter, raised in their threads
            error = exc
        finally:
            with self._lock:
                if self._jobs.get(key) is job:
                    del self._jobs[key]
            job.finish(value, error)
            if not light:
                release_memory()
