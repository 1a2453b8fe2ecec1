"""Running the dashboard under AppTest: one run of the app with link parameters, and the check that it ran clean."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.app.shown import plain

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 120


def run_app(params: dict[str, str], timeout: float = TIMEOUT) -> AppTest:
    """The app run once with `params` as its link's query parameters."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at.query_params.update(params)
    return at.run()


def assert_clean(at: AppTest) -> None:
    """No exception and no error element on the page."""
    assert not at.exception, at.exception
    assert not at.error, [plain(e.value) for e in at.error]
