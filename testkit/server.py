"""Start the dashboard on a free loopback port and drive it with Debian's Chromium."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--disable-sync",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(url: str | None = None, env: dict[str, str] | None = None,
                   timeout: float = 120, app: Path | None = None, warm: bool = False,
                   log: Path | None = None) -> Iterator[str]:
    """Yield the base URL of a dashboard server once it answers its health check (started here unless `url` is
    given; `app` runs another script; `warm` starts it as `make run` does, through dashboard.serve, which loads the
    model and computes the default page's analysis before it listens: allow for that in `timeout`). The server's
    output goes to `log` (a file, so it never blocks on a full pipe), else to a temporary file."""
    if url:
        yield url.rstrip("/")
        return
    if warm and app:
        raise ValueError("the warm-up launcher serves the dashboard only, not another app")
    port = free_port()
    start = ["-m", "dashboard.serve"] if warm else ["-m", "streamlit", "run", str(app or ROOT / "dashboard" / "app.py")]
    cmd = [sys.executable, *start,
           "--server.headless", "true", "--server.port", str(port), "--server.address", "127.0.0.1",
           "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    output = open(log, "w+b") if log else tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
                            stdout=output, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                output.seek(0)
                out = output.read().decode(errors="replace")
                raise RuntimeError(f"the dashboard server did not start:\n{out[-3000:]}")
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        output.close()


_playwright = None  # one Playwright driver per process, shared by every launch_browser() that is open
_users = 0


@contextlib.contextmanager
def launch_browser():
    """Yield a headless Chromium (Debian's). Nested or overlapping calls share one Playwright driver:
    Playwright's sync API refuses a second sync_playwright() while one is running (e.g. a session-wide browser
    fixture plus a module's own), so the driver is started by the first caller and stopped by the last."""
    global _playwright, _users
    from playwright.sync_api import sync_playwright

    if _playwright is None:
        _playwright = sync_playwright().start()
    _users += 1
    try:
        browser = _playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        _users -= 1
        if _users == 0:
            _playwright.stop()
            _playwright = None


# Installed by the first wait on a document (a goto or a reload makes a new one). It counts the script runs that
# start (the app's data-test-script-state turning to running or rerunRequested, read from every change, so a run that
# starts and ends between two polls is still counted) and notes the time of the last user input (a click, a key, a
# typed value, Back or Forward), so a wait can tell a run that has not started yet from one that has ended.
RUN_WATCH = """() => {
  if (window.__runWatch) return;
  const busy = (state) => state === 'running' || state === 'rerunRequested';
  const watch = window.__runWatch = {started: 0, waited: 0, fresh: true, input: -1, waitedAt: 0};
  new MutationObserver((records) => records.forEach((r, i) => {
    const next = i + 1 < records.length && records[i + 1].target === r.target
      ? records[i + 1].oldValue : r.target.getAttribute(r.attributeName);
    if (busy(next) && next !== r.oldValue) watch.started += 1;
  })).observe(document, {subtree: true, attributes: true, attributeOldValue: true,
                         attributeFilter: ['data-test-script-state']});
  for (const kind of ['pointerdown', 'keydown', 'input', 'change', 'popstate']) {
    window.addEventListener(kind, () => { watch.input = performance.now(); }, true);
  }
}"""

# The run the caller waits for is over: the script idle, no element of an earlier run left (Streamlit marks them
# data-stale while a run is in flight), and either a run has started since the last wait, or this is a new
# document's first run (the state reads 'initial' until it starts), or there was no input since the last wait (a
# second wait after the same input), or the last input is `grace` ms old and started no run (a click on an expander).
RUN_OVER = """(grace) => {
  const watch = window.__runWatch;
  const app = document.querySelector("[data-testid='stApp']");
  if (!watch || !app || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector("[data-stale='true']")) return false;
  return watch.fresh || watch.started > watch.waited || watch.input < watch.waitedAt
    || performance.now() - watch.input > grace;
}"""

RUN_STATE = """() => ({state: document.querySelector("[data-testid='stApp']")?.getAttribute('data-test-script-state'),
  stale: document.querySelectorAll("[data-stale='true']").length, watch: window.__runWatch,
  now: performance.now()})"""

RUN_SEEN = """() => { const w = window.__runWatch;
  w.waited = w.started; w.fresh = false; w.waitedAt = performance.now(); }"""

# Plotly has drawn and laid out: the charts' boxes are the same over three animation frames.
CHARTS_STILL = """() => new Promise((done) => {
  const boxes = () => JSON.stringify([...document.querySelectorAll('.js-plotly-plot')].map((p) => {
    const r = p.getBoundingClientRect(); return [r.x, r.y, r.width, r.height]; }));
  let last = boxes(), still = 0;
  const tick = () => { const now = boxes(); still = now === last ? still + 1 : 0; last = now;
    if (still >= 3) done(true); else requestAnimationFrame(tick); };
  requestAnimationFrame(tick);
})"""

NO_RUN_GRACE_MS = 1500  # the longest an interaction's run takes to start on a busy 2-core machine


def wait_for_run(page, timeout: float = 120_000, grace: float = NO_RUN_GRACE_MS) -> None:
    """Wait until the run that the page load or the last interaction started is over (see RUN_OVER)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.evaluate(RUN_WATCH)
    try:
        page.wait_for_function(RUN_OVER, arg=grace, timeout=timeout)
    except PlaywrightTimeout as timed_out:
        raise AssertionError(f"the page's run did not end: {page.evaluate(RUN_STATE)}") from timed_out
    page.evaluate(RUN_SEEN)


def wait_for_app(page, timeout: float = 120_000, charts: int = 1) -> None:
    """Wait (as Streamlit's own browser tests do) until the script has run, then for `charts` drawn charts, laid out."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout)
    wait_for_run(page, timeout)
    if charts:
        page.wait_for_function(
            f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}", timeout=timeout
        )
    page.evaluate(CHARTS_STILL)


def wait_for_rerun(page, timeout: float = 120_000) -> None:
    """After an interaction: wait until the rerun it started is over (script idle, no stale elements left)."""
    wait_for_run(page, timeout)


def select_option(page, label: str, option: str, timeout: float = 30_000) -> None:
    """Pick `option` (its shown text) in the Streamlit selectbox labelled `label`, as a user does."""
    page.get_by_role("combobox", name=label, exact=True).click(timeout=timeout)
    page.get_by_role("option", name=option, exact=True).click(timeout=timeout)
