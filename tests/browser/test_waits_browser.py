"""testkit's waits end when the run they wait for has ended, never before it has started: a stand-in page whose
stApp element changes its script state as Streamlit's does, on a timer the test sets."""

from __future__ import annotations

import time

import pytest

from testkit.server import wait_for_app, wait_for_rerun

pytestmark = pytest.mark.browser

# The attributes Streamlit's stApp element carries; `run(after, length)` starts a run `after` ms from now that lasts
# `length` ms, and notes when it ended.
PAGE = """<div data-testid="stApp" data-test-connection-state="CONNECTED" data-test-script-state="initial">app</div>
<button onclick="run(800, 300)">rerun</button>
<script>
  const app = document.querySelector("[data-testid='stApp']");
  window.ended = 0;
  function run(after, length) {
    setTimeout(() => { app.setAttribute('data-test-script-state', 'running'); }, after);
    setTimeout(() => { app.setAttribute('data-test-script-state', 'notRunning'); window.ended += 1; }, after + length);
  }
</script>"""


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    page.set_content(PAGE)
    yield page
    context.close()


def test_the_first_wait_ends_with_the_first_run(page):
    page.evaluate("run(500, 300)")
    wait_for_app(page, charts=0, timeout=10_000)
    assert page.evaluate("window.ended") == 1


def test_a_rerun_that_starts_late_is_waited_for(page):
    page.evaluate("run(0, 100)")
    wait_for_app(page, charts=0, timeout=10_000)
    page.get_by_role("button", name="rerun").click()  # its run starts 0.8 s later (a busy server)
    wait_for_rerun(page, timeout=10_000)
    assert page.evaluate("window.ended") == 2


def test_a_second_wait_after_the_same_input_ends_at_once(page):
    page.evaluate("run(0, 100)")
    wait_for_app(page, charts=0, timeout=10_000)
    page.get_by_role("button", name="rerun").click()
    wait_for_rerun(page, timeout=10_000)
    started = time.monotonic()
    wait_for_rerun(page, timeout=10_000)
    assert time.monotonic() - started < 1.0
