"""`make run`'s launcher (dashboard.serve) warms the server before it listens: once its health check answers, the
first visit to the bare address finds the default page's model and analysis in the server's caches, so the page
never draws an analysis progress bar; a new text on the same server does (the check can see one)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from testkit.server import running_server

pytestmark = [pytest.mark.browser, pytest.mark.slow]

VIEWPORT = {"width": 1440, "height": 2000}
# Installed before the page's scripts: notes any progress bar (results.run_with_progress) the page ever shows.
WATCH = """(() => {
  window.__progressSeen = false;
  new MutationObserver(() => {
    if (document.querySelector("[data-testid='stProgress']")) window.__progressSeen = true;
  }).observe(document, {childList: true, subtree: true});
})();"""
SHOWN = """() => {
  const app = document.querySelector("[data-testid='stApp']");
  return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
    && !document.querySelector("[data-stale='true']")
    && document.querySelectorAll("[data-testid='stHtml'] span[title]").length > 0;
}"""


def progress_seen(context, address: str) -> bool:
    """Open `address` in a new page; whether a progress bar appeared before its highlights were shown."""
    page = context.new_page()
    try:
        page.goto(address)
        page.wait_for_function(SHOWN, timeout=600_000, polling=50)
        assert not page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").count()
        return page.evaluate("window.__progressSeen")
    finally:
        page.close()


def test_the_first_visit_after_a_warm_start_is_served_from_the_caches(browser, tmp_path):
    env = {"EXPLAIN_STORE_PATH": str(tmp_path / "analyses.sqlite3")}
    with running_server(env=env, warm=True, timeout=900) as base:
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(WATCH)
        try:
            assert not progress_seen(context, f"{base}/"), "the first visit computed the default analysis"
            new_text = {"t": "The plot was thin but the acting was fine."}
            assert progress_seen(context, f"{base}/?{urlencode(new_text)}"), "a new text showed no progress"
        finally:
            context.close()
