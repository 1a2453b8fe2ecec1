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


def wait_for_app(page, timeout: float = 120_000, charts: int = 1) -> None:
    """Wait (as Streamlit's own browser tests do) until the script has run, then for `charts` drawn charts."""
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']", timeout=timeout)
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)
    if charts:
        page.wait_for_function(
            f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {charts}", timeout=timeout
        )
    page.wait_for_timeout(800)


def wait_for_rerun(page, timeout: float = 120_000) -> None:
    """After an interaction: wait until the rerun it started is over (script idle, no stale elements left).

    Streamlit marks the previous run's elements data-stale="true" while a rerun is in flight and drops the
    mark (or the element) when the run finishes, so this also covers reruns that start and end quickly.
    """
    page.wait_for_timeout(300)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=timeout)
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')", timeout=timeout)
    page.wait_for_timeout(300)


def select_option(page, label: str, option: str, timeout: float = 30_000) -> None:
    """Pick `option` (its shown text) in the Streamlit selectbox labelled `label`, as a user does."""
    page.get_by_role("combobox", name=label, exact=True).click(timeout=timeout)
    page.get_by_role("option", name=option, exact=True).click(timeout=timeout)
