"""Browser fixtures: one dashboard server and one headless Chromium per test session, a fresh page per test."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testkit.server import CHROMIUM, launch_browser, running_server

VIEWPORT = {"width": 1440, "height": 2000}


@pytest.fixture(scope="session")
def browser():
    # `make test` installs Debian's chromium: a missing browser is a broken setup, not a reason to skip.
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}: run `make browser` (apt-get install chromium) "
                    "or set CHROMIUM_PATH.", pytrace=False)
    with launch_browser() as b:
        yield b


@pytest.fixture(scope="session")
def store(tmp_path_factory) -> Path:
    """The SQLite file where the session's server saves analyses."""
    return tmp_path_factory.mktemp("store") / "analyses.sqlite3"


@pytest.fixture(scope="session")
def server(store) -> str:
    """Base URL of one dashboard server for the whole session: starting one (and its first page's imports) is the
    slowest step of a browser test. No work budget (EXPLAIN_MAX_WORK=0): test_faults_browser needs an analysis that
    outlasts its tab, and no browser test checks a refusal (tests/unit/test_scheduling.py does)."""
    env = {"EXPLAIN_STORE_PATH": str(store), "EXPLAIN_MAX_WORK": "0"}
    with running_server(os.environ.get("DASHBOARD_URL"), env=env) as base:
        yield base


@dataclass
class Watched:
    """A page plus what it reported: uncaught script errors and JavaScript dialogs (alert/confirm/prompt)."""

    page: object
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)


@pytest.fixture
def watched(browser) -> Watched:
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    w = Watched(page)
    page.on("pageerror", lambda exc: w.page_errors.append(str(exc)))

    def on_dialog(dialog) -> None:
        w.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    page.on("dialog", on_dialog)
    yield w
    context.close()
