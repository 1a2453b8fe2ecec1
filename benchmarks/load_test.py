"""Load test: concurrent headless-browser sessions on the embedded model for a fixed time.

Starts the dashboard (tests/browser/server.py), opens one Chromium with N contexts (default 4), and has each
context run mixed analyses for `--duration` seconds: Explore links, Explore edits typed into the text box, and
Compare links (two texts on one model, or trained vs random weights). Texts come from a list of 20 sentences
with varied integration steps, so some requests repeat (the shared analysis cache answers them) and some do
not. It counts completed analyses, errors (a traceback, an error box or a timeout) and the latency of each,
samples the server's resident memory (VmRSS of the streamlit process and its children, from /proc) after a
warm-up and at the end, then prints a markdown table and writes it to docs/load-test.md.

    .venv/bin/python benchmarks/load_test.py                 # 4 sessions, 60 s, writes docs/load-test.md
    .venv/bin/python benchmarks/load_test.py --sessions 8 --duration 120 --no-write
    .venv/bin/python benchmarks/load_test.py --url http://127.0.0.1:8501   # an already running server (no memory)

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

from tests.browser.server import CHROMIUM, CHROMIUM_ARGS, running_server  # noqa: E402

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
# Plotly draws two `.main-svg` layers per chart: at least 3 charts on Explore, 4 on Compare.
EXPLORE_CHARTS = 6
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


async def finished(page, charts: int, timeout_ms: float) -> None:
    """The page's script ran to the end and its charts are drawn.

    On a fresh page the text box appears once the script runs (it is drawn before the analysis starts), so
    `notRunning` after it means this run ended (no fixed sleep, unlike tests/browser/server.py's wait_for_app).
    """
    await page.wait_for_selector(READY, timeout=timeout_ms)
    await page.wait_for_selector("[data-testid='stTextArea'] textarea", timeout=timeout_ms)
    await page.wait_for_selector(IDLE, timeout=timeout_ms)
    await page.wait_for_function(
        f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}", timeout=timeout_ms
    )


async def run_task(page, base: str, kind: str, params: dict[str, str], timeout_ms: float) -> tuple:
    """Run one analysis to completion; returns the request it made (for telling repeats from new ones)."""
    if kind == "explore typed":
        if not page.url.startswith(f"{base}/?"):
            await page.goto(f"{base}/?" + urlencode({"t": SENTENCES[0], "n": params["n"]}))
            await finished(page, EXPLORE_CHARTS, timeout_ms)
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
        await page.wait_for_function(
            f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {EXPLORE_CHARTS}",
            timeout=timeout_ms)
    elif kind.startswith("explore"):
        await page.goto(f"{base}/?" + urlencode(params))  # Explore is the default page, at the root
        await finished(page, EXPLORE_CHARTS, timeout_ms)
    else:
        await page.goto(f"{base}/compare?" + urlencode(params))
        await finished(page, COMPARE_CHARTS, timeout_ms)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=4)
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds (after the warm-up)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds one analysis may take before it "
                                                                  "counts as an error")
    parser.add_argument("--url", help="drive this running server instead of starting one (memory is not sampled)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {DOC.relative_to(ROOT)}")
    args = parser.parse_args(argv)

    started = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="explain-load-") as tmp:
        env = {"EXPLAIN_STORE_PATH": str(Path(tmp) / "analyses.sqlite3")}
        with running_server(args.url, env=env) as base:
            result = asyncio.run(drive(base, args.sessions, args.duration, args.timeout * 1000, memory=not args.url))
    table = report(result, args.sessions, args.duration)
    remarks = notes(result)
    print(table + "\n\n" + remarks)
    if not args.no_write:
        DOC.parent.mkdir(parents=True, exist_ok=True)
        DOC.write_text(document(table, remarks, started, args))
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

`benchmarks/load_test.py` starts the dashboard with `tests/browser/server.py` (a fresh `streamlit run` on a free
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
