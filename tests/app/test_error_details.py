"""An unexpected error shows visitors one generic sentence; the details go to the server's log only."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from streamlit import config
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[2]
SECRET = "secret detail at /srv/private/settings.py"


def test_the_project_config_hides_error_details_from_visitors():
    options = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    value = options["client"]["showErrorDetails"]
    assert value == config.ShowErrorDetailsConfigOptions.NONE.value


@pytest.fixture
def project_config(monkeypatch):
    """Streamlit's options as `streamlit run` reads them from the project folder."""
    monkeypatch.chdir(ROOT)
    config.get_config_options(force_reparse=True)
    yield
    monkeypatch.undo()
    config.get_config_options(force_reparse=True)


def test_an_unexpected_error_shows_no_message_no_type_and_no_traceback(project_config, tmp_path, capfd):
    script = tmp_path / "failing_page.py"
    script.write_text(f"import streamlit as st\nst.write('before')\nraise RuntimeError({SECRET!r})\n")
    # AppTest's default 3 s timeout fails this one-line script on a busy machine.
    at = AppTest.from_file(str(script), default_timeout=60).run()
    assert len(at.exception) == 1
    shown = at.exception[0]
    assert SECRET not in shown.message and "RuntimeError" not in shown.message
    assert not shown.stack_trace and not shown.proto.type
    logged = capfd.readouterr()
    assert SECRET.split(" at ")[0] in logged.out + logged.err
