"""Load test: concurrent headless-browser sessions on the embedded model for a fixed time.

Starts the dashboard (testkit/server.py), opens one Chromium with N contexts (default 4), and has each
context run mixed analyses for `--duration` seconds: Explore links, Explore edits typed into the text box, and
Compare links (two texts on one model, or trained vs random weights). Texts come from a list of 20 sentences
with varied integration steps, so some requests repeat (the shared analysis cache answers them) and some do
not. It counts completed analyses, errors (a traceback, an error box or a timeout) and the latency of each,
samples the server's resident memory (VmRSS of the streamlit process and its children, from /proc) after a
warm-up and at the end, then prints a markdown table and writes it to docs/load-test.md.

    .venv/bin/python benchmarks/load_test.py                 # 4 sessions, 60 s, writes docs/load-test.md
    .venv/bin/python benchmarks/load_test.py --sessions 8 --duration 120 --no-write
    .venv/bin/python benchmarks/load_test.py --url http://127.0.0.1:8501   # an already running server (no memory)
    .venv/bin/python benchmarks/load_test.py --scenario fairness           # 4 heavy sessions and 1 light, 120 s
    .venv/bin/python benchmarks/load_test.py --scenario methods-heads      # 2 Methods + 2 Heads sessions, 1 light
    .venv/bin/python benchmarks/load_test.py --scenario heads              # 4 Heads sessions and 1 light, 120 s

The fairness scenario (issue 10, "one user cannot stall everyone") first times a light session alone (short new
sentences, default settings), then runs it again beside 4 sessions that send the largest requests the work budget
admits (a new 5,000-character text each time, 512 tokens, the most integration steps that fit), and reports the light
session's p50/p95 against its time alone, every error (a refusal included) and the server's memory; it writes its
own section of docs/load-test.md. The page scenarios (issue 21) do the same with heavy sessions on other pages: the
Methods page computing every method, their faithfulness and second seeds on a new 512-token text, and the Heads page
ranking the heads and pruning them on a new 256-token text; when the measured period ends the heavy tabs close with
their work in flight, and the server's CPU time over the next 10 s and one more light request show that it stopped.

Not collected by pytest (no test_ prefix); it needs Debian's chromium like the browser tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from explain.records import MAX_STEPS, AnalysisRequest  # noqa: E402
from explain.scheduling import WorkBudget, WorkBudgetError  # noqa: E402
from testkit.server import CHROMIUM, CHROMIUM_ARGS, running_server  # noqa: E402

DOC = ROOT / "docs" / "load-test.md"
SENTENCES = [
    "The film was good but far too long.",
    "The film was bad and far too long.",
    "I loved the acting, but the plot made no sense at all.",
    "The service was slow and the food arrived cold.",
    "What a wonderful surprise: the sequel is better than the original!",
    "The battery lasts two days, which is more than I expected.",
    "Nobody at the front desk could answer a simple question.",
    "The soup was salty, the bread was stale, and the wine was excellent.",
    "This is the most boring lecture I have ever attended.",
    "The new update fixed the crash but broke the dark mode.",
    "She said the meeting went well, though nobody agreed on anything.",
    "The hotel room was small but spotless and quiet.",
    "Delivery took three weeks and the box was damaged.",
    "An honest, funny and moving film about growing old.",
    "The instructions were unclear, so assembly took all afternoon.",
    "Great camera, terrible software.",
    "I would not recommend this restaurant to my worst enemy.",
    "The concert started late, but the band played for three hours.",
    "It rained all week, yet the trip was still worth it.",
    "The museum is free on Sundays and never crowded in the morning.",
]
# Repeats are deliberate: the first texts and the default steps come up more often, so the cache answers some.
TEXT_WEIGHTS = [6, 5, 4, 4, 3] + [1] * 15
STEPS = [8, 16, 16, 24, 32, 50]
# Explore's first screen: the prediction's HTML bars and the single-head map drawn (its other views wait behind
# toggles). Compare: Plotly draws two `.main-svg` layers per chart, at least 4 charts.
EXPLORE_DRAWN = ("() => !!document.querySelector(\".st-key-prediction [data-testid='stHtml'] table tr\")"
                 " && !!document.querySelector('.st-key-head_map .js-plotly-plot .main-svg')")
COMPARE_CHARTS = 8
READY = "[data-testid='stApp'][data-test-connection-state='CONNECTED']"
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
FAILURES = "[data-testid='stException'], [data-testid='stAlertContentError']"
VERDICT = "Sanity check:"  # trained vs random: a failed check is a red box by design, a result and not an error


@dataclass
class Outcome:
    kind: str
    seconds: float
    error: str = ""
    repeat: bool = False  # the same request was made before in this run (the analysis cache can answer it)
    refused: int = 0  # pieces of the page the work budget refused (a one-sentence notice each, not an error)


@dataclass
class Tally:
    outcomes: list[Outcome] = field(default_factory=list)
    seen: set = field(default_factory=set)  # requests made so far, shared by all sessions

    @property
    def completed(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.error]

    @property
    def errors(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.error]


# -- the server's memory -----------------------------------------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry))
    return found


def server_pids() -> list[int]:
    """The streamlit server this script started (a child of this process) and all its descendants."""
    roots = []
    for pid in _children(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "streamlit" in cmdline and "dashboard/app.py" in cmdline:
            roots.append(pid)
    return [pid for root in roots for pid in [root, *descendants(root)]]


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time used so far by these processes and by the children they have reaped.

    Chromium starts and ends renderer processes as pages come and go; their time moves into their parent's
    cutime/cstime when they end, so differences of this sum between two moments count them too.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks


def machine_busy_seconds() -> float:
    """CPU time all processes on the machine have used (all cores, idle and iowait excluded), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def driver_pids() -> list[int]:
    """This script and Playwright's driver (its descendants that are neither Chromium nor the server)."""
    skip = set(browser_pids()) | set(server_pids())
    return [os.getpid()] + [pid for pid in descendants(os.getpid()) if pid not in skip]


def descendants(pid: int) -> list[int]:
    found, todo = [], _children(pid)
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(_children(child))
    return found


def browser_pids() -> list[int]:
    """This script's Chromium processes (browser, renderers, utilities), below Playwright's driver."""
    pids = []
    for pid in descendants(os.getpid()):
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith(("chromium", "chrome")):
            pids.append(pid)
    return pids


def rss_mib(pids: list[int]) -> float:
    total_kib = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kib += int(line.split()[1])
        except OSError:
            pass
    return total_kib / 1024


# -- one session -------------------------------------------------------------------------------------------------


def pick_task(rng: random.Random) -> tuple[str, dict[str, str]]:
    text = rng.choices(SENTENCES, weights=TEXT_WEIGHTS)[0]
    steps = str(rng.choice(STEPS))
    roll = rng.random()
    if roll < 0.45:
        return "explore link", {"t": text, "n": steps}
    if roll < 0.70:
        return "explore typed", {"t": text, "n": steps}
    if roll < 0.90:
        other = rng.choices(SENTENCES, weights=TEXT_WEIGHTS)[0]
        return "compare texts", {"cm": "texts", "t": text, "t2": other if other != text else SENTENCES[1], "n": steps}
    return "compare models", {"t": text, "n": steps}  # minilm vs minilm-random (the sanity-check pair)


def charts_drawn(charts: int) -> str:
    return f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}"


async def finished(page, drawn: str, timeout_ms: float) -> None:
    """The page's script ran to the end and its charts are drawn.

    On a fresh page the text box appears once the script runs (it is drawn before the analysis starts), so
    `notRunning` after it means this run ended (no fixed sleep, unlike testkit/server.py's wait_for_app).
    """
    await page.wait_for_selector(READY, timeout=timeout_ms)
    await page.wait_for_selector("[data-testid='stTextArea'] textarea", timeout=timeout_ms)
    await page.wait_for_selector(IDLE, timeout=timeout_ms)
    await page.wait_for_function(drawn, timeout=timeout_ms)


async def run_task(page, base: str, kind: str, params: dict[str, str], timeout_ms: float) -> tuple:
    """Run one analysis to completion; returns the request it made (for telling repeats from new ones)."""
    if kind == "explore typed":
        if not page.url.startswith(f"{base}/?"):
            await page.goto(f"{base}/?" + urlencode({"t": SENTENCES[0], "n": params["n"]}), timeout=timeout_ms)
            await finished(page, EXPLORE_DRAWN, timeout_ms)
        # A text other than the one shown, so there is a rerun and the URL tells when it has started.
        current = await page.evaluate("() => new URL(location.href).searchParams.get('t')")
        text = params["t"] if params["t"] != current else next(s for s in SENTENCES if s != current)
        params = {**params, "t": text}
        box = page.locator("[data-testid='stTextArea'] textarea").first
        await box.fill(text)
        await box.press("Control+Enter")
        await page.wait_for_function("(t) => new URL(location.href).searchParams.get('t') === t", arg=text,
                                     timeout=timeout_ms)
        await page.wait_for_selector(IDLE, timeout=timeout_ms)
        await page.wait_for_function(EXPLORE_DRAWN, timeout=timeout_ms)
    elif kind.startswith("explore"):
        await page.goto(f"{base}/?" + urlencode(params), timeout=timeout_ms)  # Explore is the default page, at the root
        await finished(page, EXPLORE_DRAWN, timeout_ms)
    else:
        await page.goto(f"{base}/compare?" + urlencode(params), timeout=timeout_ms)
        await finished(page, charts_drawn(COMPARE_CHARTS), timeout_ms)
    for text in await page.locator(FAILURES).all_inner_texts():
        if not text.strip().startswith(VERDICT):
            raise RuntimeError(f"the page shows an error: {text[:200]}")
    return ("compare" if kind.startswith("compare") else "explore", tuple(sorted(params.items())))


async def session(browser, base: str, index: int, until: float, tally: Tally, timeout_ms: float,
                  warm_up: int = 0) -> None:
    rng = random.Random(index)
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    done = 0
    try:
        while (warm_up and done < warm_up) or (not warm_up and time.monotonic() < until):
            kind, params = pick_task(rng)
            if warm_up and done == 0:
                kind = "compare models"  # load both models before anything is measured
            start = time.monotonic()
            try:
                request = await run_task(page, base, kind, params, timeout_ms)
            except Exception as exc:  # noqa: BLE001 - every failure is counted, then the session goes on
                name = "timeout" if "Timeout" in type(exc).__name__ else type(exc).__name__
                tally.outcomes.append(Outcome(kind, time.monotonic() - start, f"{name}: {str(exc)[:300]}"))
                await page.goto("about:blank")
            else:
                tally.outcomes.append(Outcome(kind, time.monotonic() - start, repeat=request in tally.seen))
                tally.seen.add(request)
            done += 1
    finally:
        await context.close()


# -- the run -----------------------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split("MemTotal:")[1].split()[0])
        mem = f", {kib / 2**20:.0f} GiB RAM"
    except (OSError, IndexError, ValueError):
        pass
    import streamlit
    import torch

    return (f"{cpu}, {cores()} cores{mem}; {platform.system()} {platform.release()}; Python "
            f"{platform.python_version()}, Streamlit {streamlit.__version__}, torch {torch.__version__}; "
            f"no GPU used")


async def drive(base: str, sessions: int, duration: float, timeout_ms: float, memory: bool) -> dict:
    from playwright.async_api import async_playwright

    pids = server_pids() if memory else []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            warm = Tally()
            t0 = time.monotonic()
            await asyncio.gather(*(session(browser, base, 100 + i, 0, warm, timeout_ms, warm_up=2)
                                   for i in range(sessions)))
            warm_s = time.monotonic() - t0
            await asyncio.sleep(2)
            rss_start = rss_mib(pids) if pids else float("nan")
            samples = [rss_start]

            async def sample_memory(stop: asyncio.Event) -> None:
                while not stop.is_set():
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=5)
                    except TimeoutError:
                        samples.append(rss_mib(pids))

            tally = Tally(seen=set(warm.seen))
            cpu_server_0, cpu_browser_0 = cpu_seconds(server_pids() if pids else []), cpu_seconds(browser_pids())
            cpu_driver_0, busy_0, load_0 = cpu_seconds(driver_pids()), machine_busy_seconds(), os.getloadavg()[0]
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample_memory(stop)) if pids else None
            start = time.monotonic()
            await asyncio.gather(*(session(browser, base, i, start + duration, tally, timeout_ms)
                                   for i in range(sessions)))
            elapsed = time.monotonic() - start
            cpu_server = cpu_seconds(server_pids() if pids else []) - cpu_server_0
            cpu_browser = cpu_seconds(browser_pids()) - cpu_browser_0
            cpu_driver = cpu_seconds(driver_pids()) - cpu_driver_0
            cpu_others = machine_busy_seconds() - busy_0 - cpu_server - cpu_browser - cpu_driver
            load_1 = os.getloadavg()[0]
            stop.set()
            if sampler:
                await sampler
            await asyncio.sleep(2)
            rss_end = rss_mib(pids) if pids else float("nan")
            samples.append(rss_end)
        finally:
            await browser.close()
    return {"warm": warm, "warm_s": warm_s, "tally": tally, "elapsed": elapsed, "rss_start": rss_start,
            "rss_end": rss_end, "rss_peak": max(samples), "pids": pids, "cpu_server": cpu_server,
            "cpu_browser": cpu_browser, "cpu_driver": cpu_driver, "cpu_others": max(0.0, cpu_others),
            "load": (load_0, load_1)}


def report(result: dict, sessions: int, duration: float) -> str:
    tally: Tally = result["tally"]
    latencies = [o.seconds for o in tally.completed]
    kinds = sorted({o.kind for o in tally.outcomes})
    by_kind = ", ".join(f"{k} {sum(1 for o in tally.completed if o.kind == k)}" for k in kinds)
    timeouts = sum(1 for o in tally.errors if o.error.startswith("timeout"))
    growth = (result["rss_end"] / result["rss_start"] - 1) * 100 if result["rss_start"] == result["rss_start"] else None
    rows = [
        ("Concurrent browser sessions", f"{sessions} (one Chromium, one context each)"),
        ("Measured time", f"{result['elapsed']:.0f} s (target {duration:.0f} s; after a {result['warm_s']:.0f} s "
                          f"warm-up of {len(result['warm'].outcomes)} analyses)"),
        ("Completed analyses", f"{len(tally.completed)} ({by_kind})"),
        ("Throughput", f"{len(tally.completed) / max(result['elapsed'], 1e-9) * 60:.0f} analyses per minute"),
        ("Errors (traceback / error box / timeout)",
         f"{len(tally.errors)} ({len(tally.errors) - timeouts} on the page, {timeouts} timeouts)"),
        ("Latency p50", f"{percentile(latencies, 50):.2f} s"),
        ("Latency p95", f"{percentile(latencies, 95):.2f} s"),
        ("Latency max", f"{max(latencies, default=float('nan')):.2f} s"),
        ("CPU used while measured",
         f"server {result['cpu_server']:.0f} s, Chromium {result['cpu_browser']:.0f} s, this script and Playwright "
         f"{result['cpu_driver']:.0f} s, other processes on the machine {result['cpu_others']:.0f} s, of "
         f"{cores() * result['elapsed']:.0f} core-seconds ({cores()} cores; 1-min load average, this run included, "
         f"{result['load'][0]:.1f} at the start, {result['load'][1]:.1f} at the end)"),
        ("Server RSS after warm-up", f"{result['rss_start']:.0f} MiB"),
        ("Server RSS at the end", f"{result['rss_end']:.0f} MiB (peak {result['rss_peak']:.0f} MiB)"),
        ("RSS growth", "n/a (external server)" if growth is None else
         f"{growth:+.1f}% ({'within' if growth < 10 else 'OVER'} the 10% target)"),
    ]
    lines = ["| Measure | Value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
    if tally.errors:
        lines += ["", "Errors:", ""] + [f"- {o.kind} after {o.seconds:.1f} s: {o.error}" for o in tally.errors[:20]]
    return "\n".join(lines)


def notes(result: dict) -> str:
    """What to keep in mind when reading this run's numbers."""
    capacity = cores() * result["elapsed"]
    tally: Tally = result["tally"]
    server, browser = result["cpu_server"] / capacity, result["cpu_browser"] / capacity
    lines = [f"- The server used {server:.0%} of the machine's CPU time while measured and Chromium {browser:.0%}: the "
             f"simulated users' browsers draw their charts on the server's {cores()} cores"
             + (", and take more of them than the server, so latency here is largely the client's; a server on a "
                "machine of its own answers faster." if browser > server else ".")]
    if result["cpu_others"] > 0.1 * capacity:
        lines.append(f"- Other processes on this shared machine used {result['cpu_others'] / capacity:.0%} of its CPU "
                     "time during the run, so these latencies are pessimistic.")
    repeats = [o.seconds for o in tally.completed if o.repeat]
    new = [o.seconds for o in tally.completed if not o.repeat]
    if repeats and new:
        lines.append(f"- {len(repeats)} of the {len(tally.completed)} completed analyses repeated an earlier request "
                     f"(the shared cache answers those): latency p50 {percentile(repeats, 50):.2f} s for repeats, "
                     f"{percentile(new, 50):.2f} s for new requests.")
    if result["rss_start"] == result["rss_start"]:
        growth = result["rss_end"] / result["rss_start"] - 1
        lines.append(f"- Memory: {result['rss_start']:.0f} MiB after the warm-up, {result['rss_end']:.0f} MiB at the end "
                     f"({growth:+.1%}); the highest 5-second sample was {result['rss_peak']:.0f} MiB.")
    return "\n".join(lines)



# -- fairness: 4 heavy sessions and 1 light one -------------------------------------------------------------------

FAIRNESS_HEADING = "## One user cannot stall everyone"
HEAVY_TOKENS = 512
HEAVY_TEXT = (
    "The service at the little restaurant by the harbour was painfully slow, and the waiter forgot our drinks "
    "twice, but the food itself was wonderful: the fish soup was rich and smoky, the bread came warm from the "
    "oven, and the lemon tart was the best dessert we have had in years. "
)
HEAVY_SESSIONS = 4


def heaviest_steps(n_tokens: int = HEAVY_TOKENS) -> int:
    """The most integration steps the server's work budget (this environment's) admits at `n_tokens` of minilm."""
    budget = WorkBudget.from_environment()
    for steps in range(MAX_STEPS, 0, -1):
        try:
            budget.check(AnalysisRequest("x", n_steps=steps, max_tokens=n_tokens), None, n_tokens)
        except WorkBudgetError:
            continue
        return steps
    return 1


def heavy_params(session: int, index: int, steps: int) -> dict[str, str]:
    """A new maximum-size text each time (never answered by the cache): 4,900 characters, 512 tokens."""
    text = f"Visit {index} by guest {session}. " + HEAVY_TEXT * 20
    return {"t": text[:4900], "n": str(steps), "mx": str(HEAVY_TOKENS)}


def light_params(index: int) -> dict[str, str]:
    """A short new sentence with the default settings (never answered by the cache)."""
    return {"t": f"{SENTENCES[index % len(SENTENCES)]} (note {index})"}


async def role_session(browser, base: str, role: str, make_params, until: float, outcomes: list[Outcome],
                       timeout_ms: float, runner=None, count: int | None = None) -> None:
    """Explore links (or `runner(page, base, params, timeout_ms)`, returning the pieces refused) back to back until
    `until` (the request in flight then is finished, or cancelled by closing the tab), or `count` of them."""
    context = await browser.new_context(viewport={"width": 1400, "height": 1000})
    page = await context.new_page()
    index = 0
    try:
        while (index < count) if count is not None else time.monotonic() < until:
            params = make_params(index)
            index += 1
            start = time.monotonic()
            try:
                refused = 0
                if runner is None:
                    await run_task(page, base, "explore link", params, timeout_ms)
                else:
                    refused = await runner(page, base, params, timeout_ms)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is counted, then the session goes on
                name = "timeout" if "Timeout" in type(exc).__name__ else type(exc).__name__
                outcomes.append(Outcome(role, time.monotonic() - start, f"{name}: {str(exc)[:300]}"))
                await page.goto("about:blank")
            else:
                outcomes.append(Outcome(role, time.monotonic() - start, refused=refused))
    finally:
        await context.close()


async def drive_fairness(base: str, alone_s: float, duration: float, light_timeout_ms: float,
                         heavy_timeout_ms: float, memory: bool) -> dict:
    from playwright.async_api import async_playwright

    pids = server_pids() if memory else []
    steps = heaviest_steps()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            warm: list[Outcome] = []  # one light and one small 512-token analysis: the model loads
            await asyncio.gather(
                role_session(browser, base, "warm-up", lambda i: light_params(20_000 + i), 0.0, warm,
                             light_timeout_ms, count=1),
                role_session(browser, base, "warm-up", lambda i: heavy_params(99, i, 8), 0.0, warm,
                             heavy_timeout_ms, count=1))
            alone: list[Outcome] = []
            await role_session(browser, base, "light alone", light_params, time.monotonic() + alone_s, alone,
                               light_timeout_ms)
            await asyncio.sleep(2)
            rss_start = rss_mib(pids) if pids else float("nan")
            samples = [rss_start]
            stop = asyncio.Event()

            async def sample_memory() -> None:
                while not stop.is_set():
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=5)
                    except TimeoutError:
                        samples.append(rss_mib(pids))

            sampler = asyncio.create_task(sample_memory()) if pids else None
            loaded: list[Outcome] = []
            load_0 = os.getloadavg()[0]
            start = time.monotonic()
            until = start + duration
            heavy = [asyncio.create_task(role_session(browser, base, "heavy", lambda i, k=k: heavy_params(k, i, steps),
                                                      until, loaded, heavy_timeout_ms))
                     for k in range(HEAVY_SESSIONS)]
            await asyncio.sleep(3)  # the heavy requests are queued before the light session starts
            await role_session(browser, base, "light", lambda i: light_params(1000 + i), until, loaded,
                               light_timeout_ms)
            elapsed = time.monotonic() - start
            load_1 = os.getloadavg()[0]
            for task in heavy:
                task.cancel()
            await asyncio.gather(*heavy, return_exceptions=True)
            stop.set()
            if sampler:
                await sampler
            await asyncio.sleep(2)
            rss_end = rss_mib(pids) if pids else float("nan")
            samples.append(rss_end)
        finally:
            await browser.close()
    return {"steps": steps, "warm": warm, "alone": alone, "loaded": loaded, "elapsed": elapsed,
            "rss_start": rss_start, "rss_end": rss_end, "rss_peak": max(samples), "load": (load_0, load_1)}


def fairness_report(result: dict) -> str:
    alone = [o.seconds for o in result["alone"] if not o.error]
    light = [o.seconds for o in result["loaded"] if o.kind == "light" and not o.error]
    heavy = [o.seconds for o in result["loaded"] if o.kind == "heavy" and not o.error]
    errors = [o for o in result["alone"] + result["loaded"] if o.error]
    p95_alone, p95 = percentile(alone, 95), percentile(light, 95)
    ratio = p95 / p95_alone if alone and light else float("nan")
    growth = (result["rss_end"] / result["rss_start"] - 1) * 100 if result["rss_start"] == result["rss_start"] else None
    rows = [
        ("Heavy sessions", f"{HEAVY_SESSIONS}, each a new 4,900-character text at {HEAVY_TOKENS} tokens and "
                           f"{result['steps']} steps (the most the work budget admits), back to back"),
        ("Light session", "1, a new short sentence with the default settings, back to back"),
        ("Measured time", f"{result['elapsed']:.0f} s with the heavy sessions"),
        ("Light alone: completed, p50, p95",
         f"{len(alone)}, {percentile(alone, 50):.2f} s, {p95_alone:.2f} s"),
        ("Light beside the heavy sessions: completed, p50, p95",
         f"{len(light)}, {percentile(light, 50):.2f} s, {p95:.2f} s"),
        ("Light p95 against alone", f"{ratio:.2f}x ({'within' if ratio <= 3 else 'OVER'} the 3x target)"),
        ("Heavy analyses completed, p50", f"{len(heavy)}, {percentile(heavy, 50):.1f} s"),
        ("Errors (traceback / error box / timeout)", f"{len(errors)}"),
        ("Server RSS", f"{result['rss_start']:.0f} MiB before the heavy sessions, {result['rss_end']:.0f} MiB at the "
                       f"end (peak {result['rss_peak']:.0f} MiB)"),
        ("RSS growth", "n/a (external server)" if growth is None else f"{growth:+.1f}%"),
    ]
    lines = ["| Measure | Value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
    if errors:
        lines += ["", "Errors:", ""] + [f"- {o.kind} after {o.seconds:.1f} s: {o.error}" for o in errors[:20]]
    lines += ["", f"- 1-minute load average {result['load'][0]:.1f} at the start of the measured period and "
                  f"{result['load'][1]:.1f} at its end, on {cores()} cores shared with other jobs (and with Chromium "
                  "drawing every page): the timings are noisy, and slower than on a machine of its own."]
    if not heavy:
        lines.append("- No heavy analysis finished within the measured period: under this load one takes longer "
                     "than the period (the budget's 30 s is for a quiet machine), and each pauses while light "
                     "ones run.")
    lines.append("- The memory peak is the heavy analyses in flight (512-token attention maps and gradients); the "
                 "resident set comes back near its start once they end.")
    return "\n".join(lines)


def fairness_section(table: str, started: datetime, args: argparse.Namespace) -> str:
    return f"""{FAIRNESS_HEADING}

Issue 10: four sessions sending the largest requests the server admits must not stall a fifth session's light
analyses on the same model.

- **Date:** {started:%Y-%m-%d %H:%M} UTC
- **Machine:** {machine()}
- **Command:** `.venv/bin/python benchmarks/load_test.py --scenario fairness{'' if args.duration == 120 else f' --duration {args.duration:g}'}`

The light session first runs alone for {args.alone:g} s (after a warm-up that loads the model), then beside the
{HEAVY_SESSIONS} heavy sessions for {args.duration:g} s. Every request is a new text, so the analysis cache answers
none. Latency runs from the navigation to the charts drawn, as above.

{table}

The budget's rate (`DEFAULT_WORK_RATE` in `explain/scheduling.py`, 2,000 work units per second, a unit being
one token of a 128-token text through one forward and backward pass of minilm) comes from issue 10's figure of
about 340 s for 512 tokens x 1,000 steps on this machine; timings of `minilm` taken here while other jobs shared
the 2 cores (load average 3 to 6) agree for short and medium texts: 11 tokens x 50 steps 2.1 s (estimate 1.9 s),
128 x 200 steps 19 s (estimate 19 s), 128 x 50 13 s (estimate 5.0 s) and 512 x 50 93 s (estimate 17 s) ran while
the load peaked. Rerun `benchmarks/work_budget.py` on a quiet machine to recalibrate.

How the server keeps it fair (`explain/scheduling.py`, used by `dashboard/cached.py`): every request is checked
against a work budget before it waits for anything (tokens x model evaluations x the model's cost per token,
`EXPLAIN_MAX_WORK`, about 30 s here by default); per model, light requests (at most `EXPLAIN_LIGHT_SECONDS`, 3 s by
default) run first while the running heavy analysis pauses between batches of integration steps, heavy ones take
turns first come first served, at most `EXPLAIN_QUEUE_LENGTH` (4) wait, each page shows its place in the queue, and
each browser session has one analysis at a time (a newer request replaces its older one).
"""


def write_fairness_section(section: str) -> None:
    """Put `section` in docs/load-test.md in place of the previous fairness section (or at the end)."""
    write_section(FAIRNESS_HEADING, section)


def write_section(heading: str, section: str) -> None:
    """Put `section` (starting with `heading`) in docs/load-test.md in place of the part under that heading, up to
    the next heading of the same or a higher level, or at the end."""
    text = DOC.read_text() if DOC.exists() else "# Load test\n"
    if heading not in text:
        DOC.write_text(text.rstrip() + "\n\n" + section.rstrip() + "\n")
        return
    start = text.index(heading)
    level = heading.split(" ", 1)[0]
    ends = [i for i in (text.find(f"\n{'#' * n} ", start + len(heading)) for n in range(1, len(level) + 1)) if i >= 0]
    end = min(ends, default=len(text))
    DOC.write_text(text[:start] + section.rstrip() + "\n" + ("\n" + text[end:].lstrip("\n") if end < len(text) else ""))


# -- heavy pages: Methods and Heads sessions beside a light one (issue 21) ---------------------------------------

PAGES_HEADING = "## Heavy pages beside a light session"
METHODS_TOKENS = 512
HEADS_TOKENS = 256
# scenario -> (title, ((page, sessions), ...))
PAGE_SCENARIOS = {
    "methods-heads": ("2 Methods and 2 Heads sessions beside 1 light", (("methods", 2), ("heads", 2))),
    "heads": ("4 Heads sessions beside 1 light", (("heads", 4),)),
}
REFUSED = "over this server's"  # the work budget's refusal sentence
WARNINGS = "[data-testid='stAlertContentWarning']"
STALE = "[data-stale='true']"


def heavy_text(session: int, index: int) -> str:
    """A new 4,900-character text each time (never answered by the cache)."""
    return (f"Visit {index} by guest {session}. " + HEAVY_TEXT * 20)[:4900]


async def page_outcome(page) -> int:
    """The pieces the work budget refused on the page (warnings and error boxes saying so); raises on a traceback or
    any other error box."""
    if await page.locator("[data-testid='stException']").count():
        raise RuntimeError("the page shows a traceback")
    refused = 0
    for text in await page.locator("[data-testid='stAlertContentError']").all_inner_texts():
        if REFUSED not in text:
            raise RuntimeError(f"the page shows an error: {text[:200]}")
        refused += 1
    return refused + sum(REFUSED in text for text in await page.locator(WARNINGS).all_inner_texts())


async def run_methods(page, base: str, params: dict[str, str], timeout_ms: float) -> int:
    """The Methods page on a new text: its analysis, then "Compute all methods", faithfulness and the second seeds,
    to the end of the run."""
    await page.goto(f"{base}/methods?" + urlencode(params), timeout=timeout_ms)
    await page.wait_for_selector(READY, timeout=timeout_ms)
    button = page.get_by_role("button", name="Compute all methods")
    await button.wait_for(timeout=timeout_ms)
    await button.click()
    await page.wait_for_function(
        f"() => !document.querySelector('.st-key-compute_all') && !document.querySelector(\"{STALE}\") "
        f"&& document.querySelector(\"{IDLE}\")", timeout=timeout_ms)
    return await page_outcome(page)


async def run_heads(page, base: str, params: dict[str, str], timeout_ms: float) -> int:
    """The Heads page on a new text: its importance maps, one head's view and the pruning curve."""
    await page.goto(f"{base}/heads?" + urlencode(params), timeout=timeout_ms)
    await page.wait_for_selector(READY, timeout=timeout_ms)
    await page.wait_for_selector("[data-testid='stTextArea'] textarea", timeout=timeout_ms)
    await page.wait_for_selector(f"{IDLE}, [data-testid='stException']", timeout=timeout_ms)
    refused = await page_outcome(page)
    if not refused:
        await page.wait_for_selector(".st-key-heads_pruning .main-svg", timeout=timeout_ms)
    return refused


PAGE_RUNNERS = {
    "methods": (run_methods, lambda k, i: {"t": heavy_text(k, i), "mx": str(METHODS_TOKENS)}),
    "heads": (run_heads, lambda k, i: {"t": heavy_text(k, i), "mx": str(HEADS_TOKENS)}),
}


async def drive_pages(base: str, roles: tuple, alone_s: float, duration: float, light_timeout_ms: float,
                      heavy_timeout_ms: float, memory: bool) -> dict:
    """A light session alone, then beside the heavy page sessions in `roles`; then the heavy tabs close, and the
    server's CPU time over the next 10 s and one more light request show that their work stopped."""
    from playwright.async_api import async_playwright

    pids = server_pids() if memory else []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            warm: list[Outcome] = []  # one light analysis: the model loads
            await role_session(browser, base, "warm-up", lambda i: light_params(20_000 + i), 0.0, warm,
                               light_timeout_ms, count=1)
            alone: list[Outcome] = []
            await role_session(browser, base, "light alone", light_params, time.monotonic() + alone_s, alone,
                               light_timeout_ms)
            await asyncio.sleep(2)
            rss_start = rss_mib(pids) if pids else float("nan")
            samples = [rss_start]
            stop = asyncio.Event()

            async def sample_memory() -> None:
                while not stop.is_set():
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=5)
                    except TimeoutError:
                        samples.append(rss_mib(pids))

            sampler = asyncio.create_task(sample_memory()) if pids else None
            loaded: list[Outcome] = []
            load_0 = os.getloadavg()[0]
            start = time.monotonic()
            until = start + duration
            heavy = []
            for name, count in roles:
                runner, make = PAGE_RUNNERS[name]
                for k in range(count):
                    session_id = len(heavy)
                    heavy.append(asyncio.create_task(role_session(
                        browser, base, name, lambda i, k=session_id, make=make: make(k, i), until, loaded,
                        heavy_timeout_ms, runner)))
            await asyncio.sleep(3)  # the heavy requests are queued before the light session starts
            await role_session(browser, base, "light", lambda i: light_params(1000 + i), until, loaded,
                               light_timeout_ms)
            elapsed = time.monotonic() - start
            load_1 = os.getloadavg()[0]
            for task in heavy:
                task.cancel()  # the heavy tabs close with their work in flight
            await asyncio.gather(*heavy, return_exceptions=True)
            cpu_0 = cpu_seconds(pids)
            await asyncio.sleep(10)
            cpu_after = cpu_seconds(pids) - cpu_0
            after: list[Outcome] = []
            await role_session(browser, base, "light after", lambda i: light_params(50_000 + i), 0.0, after,
                               light_timeout_ms, count=1)
            stop.set()
            if sampler:
                await sampler
            rss_end = rss_mib(pids) if pids else float("nan")
            samples.append(rss_end)
        finally:
            await browser.close()
    return {"warm": warm, "alone": alone, "loaded": loaded, "after": after, "elapsed": elapsed,
            "cpu_after": cpu_after if pids else float("nan"),
            "rss_start": rss_start, "rss_end": rss_end, "rss_peak": max(samples), "load": (load_0, load_1)}


def pages_report(result: dict, roles: tuple) -> str:
    alone = [o.seconds for o in result["alone"] if not o.error]
    light = [o.seconds for o in result["loaded"] if o.kind == "light" and not o.error]
    errors = [o for o in result["alone"] + result["loaded"] + result["after"] if o.error]
    p95_alone, p95 = percentile(alone, 95), percentile(light, 95)
    ratio = p95 / p95_alone if alone and light else float("nan")
    growth = (result["rss_end"] / result["rss_start"] - 1) * 100 if result["rss_start"] == result["rss_start"] else None
    after = [o.seconds for o in result["after"] if not o.error]
    rows = [("Heavy sessions", ", ".join(
        f"{count} {name.capitalize()} ({'every method, faithfulness and second seeds' if name == 'methods' else 'importance maps and the pruning curve'}, "
        f"a new text at {METHODS_TOKENS if name == 'methods' else HEADS_TOKENS} tokens each time)"
        for name, count in roles))]
    for name, _ in roles:
        done = [o for o in result["loaded"] if o.kind == name and not o.error]
        rows.append((f"{name.capitalize()} pages completed, p50, pieces refused by the work budget",
                     f"{len(done)}, {percentile([o.seconds for o in done], 50):.1f} s, "
                     f"{sum(o.refused for o in done)}"))
    rows += [
        ("Light session", "1, a new short sentence with the default settings, back to back"),
        ("Measured time", f"{result['elapsed']:.0f} s with the heavy sessions"),
        ("Light alone: completed, p50, p95", f"{len(alone)}, {percentile(alone, 50):.2f} s, {p95_alone:.2f} s"),
        ("Light beside the heavy sessions: completed, p50, p95",
         f"{len(light)}, {percentile(light, 50):.2f} s, {p95:.2f} s"),
        ("Light p95 against alone", f"{ratio:.2f}x ({'within' if ratio <= 3 else 'OVER'} the 3x target)"),
        ("Errors (traceback / error box / timeout)", f"{len(errors)}"),
        ("Server CPU in the 10 s after the heavy tabs closed", f"{result['cpu_after']:.1f} s"),
        ("A light request after they closed (no deadlock)",
         f"{after[0]:.2f} s" if after else "did not complete"),
        ("Server RSS", f"{result['rss_start']:.0f} MiB before the heavy sessions, {result['rss_end']:.0f} MiB at the "
                       f"end (peak {result['rss_peak']:.0f} MiB)"),
        ("RSS growth", "n/a (external server)" if growth is None else f"{growth:+.1f}%"),
    ]
    lines = ["| Measure | Value |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in rows]
    if errors:
        lines += ["", "Errors:", ""] + [f"- {o.kind} after {o.seconds:.1f} s: {o.error}" for o in errors[:20]]
    lines += ["", f"- 1-minute load average {result['load'][0]:.1f} at the start of the measured period and "
                  f"{result['load'][1]:.1f} at its end, on {cores()} cores shared with other jobs (and with Chromium "
                  "drawing every page)."]
    return "\n".join(lines)


def pages_section(scenario: str, table: str, started: datetime, args: argparse.Namespace) -> str:
    title, _ = PAGE_SCENARIOS[scenario]
    return f"""### {title}

- **Date:** {started:%Y-%m-%d %H:%M} UTC
- **Machine:** {machine()}
- **Command:** `.venv/bin/python benchmarks/load_test.py --scenario {scenario}{'' if args.duration == 120 else f' --duration {args.duration:g}'}`

{table}
"""

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scenario", choices=("mixed", "fairness", *PAGE_SCENARIOS), default="mixed")
    parser.add_argument("--sessions", type=int, default=4, help="mixed scenario: concurrent sessions")
    parser.add_argument("--duration", type=float, default=None,
                        help="measured seconds (after the warm-up); default 60 (mixed) or 120 (the others)")
    parser.add_argument("--alone", type=float, default=30.0, help="fairness: seconds the light session runs alone")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds one analysis may take before it "
                                                                  "counts as an error (light ones in fairness)")
    parser.add_argument("--heavy-timeout", type=float, default=400.0, help="fairness: the same for heavy ones")
    parser.add_argument("--url", help="drive this running server instead of starting one (memory is not sampled)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    args.duration = args.duration or (60.0 if args.scenario == "mixed" else 120.0)

    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="explain-load-") as tmp:
        env = {"EXPLAIN_STORE_PATH": str(Path(tmp) / "analyses.sqlite3")}
        with running_server(args.url, env=env) as base:
            if args.scenario in PAGE_SCENARIOS:
                result = asyncio.run(drive_pages(base, PAGE_SCENARIOS[args.scenario][1], args.alone, args.duration,
                                                 args.timeout * 1000, args.heavy_timeout * 1000, memory=not args.url))
            elif args.scenario == "fairness":
                result = asyncio.run(drive_fairness(base, args.alone, args.duration, args.timeout * 1000,
                                                    args.heavy_timeout * 1000, memory=not args.url))
            else:
                result = asyncio.run(drive(base, args.sessions, args.duration, args.timeout * 1000,
                                           memory=not args.url))
    if args.scenario in PAGE_SCENARIOS:
        table = pages_report(result, PAGE_SCENARIOS[args.scenario][1])
        print(table)
        if not args.no_write:
            write_section(f"### {PAGE_SCENARIOS[args.scenario][0]}", pages_section(args.scenario, table, started, args))
            print(f"\nwritten to {DOC.relative_to(ROOT)}")
        return 1 if any(o.error for o in result["alone"] + result["loaded"] + result["after"]) else 0
    if args.scenario == "fairness":
        table = fairness_report(result)
        print(table)
        if not args.no_write:
            write_fairness_section(fairness_section(table, started, args))
            print(f"\nwritten to {DOC.relative_to(ROOT)}")
        return 1 if any(o.error for o in result["alone"] + result["loaded"]) else 0
    table = report(result, args.sessions, args.duration)
    remarks = notes(result)
    print(table + "\n\n" + remarks)
    if not args.no_write:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        previous = DOC.read_text() if DOC.exists() else ""
        kept = previous[previous.index(FAIRNESS_HEADING):] if FAIRNESS_HEADING in previous else ""
        DOC.write_text(document(table, remarks, started, args) + ("\n" + kept if kept else ""))
        print(f"\nwritten to {DOC.relative_to(ROOT)}")
    return 1 if result["tally"].errors else 0


def document(table: str, notes: str, started: datetime, args: argparse.Namespace) -> str:
    return f"""# Load test

Several people using the dashboard at once, each in their own browser session, on the embedded model
(`minilm`, all-MiniLM-L6-v2, with `minilm-random` for the trained-vs-random comparisons).

- **Date:** {started:%Y-%m-%d %H:%M} UTC
- **Machine:** {machine()}
- **Command:** `.venv/bin/python benchmarks/load_test.py{'' if args.sessions == 4 else f' --sessions {args.sessions}'}\
{'' if args.duration == 60 else f' --duration {args.duration:g}'}`

## What it does

`benchmarks/load_test.py` starts the dashboard with `testkit/server.py` (a fresh `streamlit run` on a free
loopback port, an empty analysis store in a temporary folder) and opens one headless Chromium with
{args.sessions} browser contexts, one per simulated user, driven concurrently with Playwright's asyncio API. After a
warm-up (two analyses per session; the first loads both models), each session runs analyses back to back for
{args.duration:g} s:

- 45% Explore links (`/?t=...&n=...`; Explore is the default page), a fresh page load and server session each time,
- 25% Explore edits: a new text typed into the text box and applied with Ctrl+Enter, in the same session,
- 20% Compare links on two texts (`cm=texts`), two analyses each,
- 10% Compare links of trained vs random weights (`minilm` vs `minilm-random`), two analyses each.

Texts come from 20 sentences, weighted so the first five come up most often, with integration steps drawn from
8, 16, 24, 32 and 50, so some requests repeat and are answered by the shared analysis cache while others are
computed. An analysis counts as **completed** when the page's script state is `notRunning` and its charts are
drawn (at least 3 Plotly charts on Explore, 4 on Compare), with no traceback (`stException`) and no error box
(`stAlertContentError`) on the page. The sanity check's verdict is the one red box allowed: it is red by design
when the trained and the random model agree. A traceback, any other error box, or {args.timeout:g} s without
finishing counts as an **error**. Latency runs from the navigation (or the Ctrl+Enter) to completion, so it
includes the page load, queueing (all sessions share one model, whose lock runs one analysis at a time) and
Chromium drawing the charts on the same cores as the server. Memory is the resident set (VmRSS from
`/proc/<pid>/status`) of the streamlit process and its children, sampled after the warm-up (both models loaded),
every 5 s, and at the end.

## Result

{table}

{notes}

## Rerun

```
.venv/bin/python benchmarks/load_test.py                       # 4 sessions for 60 s; rewrites this file
.venv/bin/python benchmarks/load_test.py --sessions 8 --duration 120 --no-write
.venv/bin/python benchmarks/load_test.py --url http://127.0.0.1:8501 --no-write   # a server already running
```

It needs the development install (`make install-dev`) and Debian's chromium (`make browser`); it never
downloads a browser. The exit status is 1 when any analysis failed.
"""


if __name__ == "__main__":
    sys.exit(main())
