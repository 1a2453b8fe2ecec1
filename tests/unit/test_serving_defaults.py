"""What `make run` serves by default: loopback only, so a laptop never exposes the dashboard by accident."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_recipe(*overrides: str) -> str:
    out = subprocess.run(["make", "-n", "-C", str(ROOT), "run", *overrides], capture_output=True, text=True,
                         check=True).stdout
    lines = [line for line in out.splitlines() if "-m dashboard.serve" in line]  # Streamlit, started warm
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_binds_to_loopback_by_default():
    assert "--server.address 127.0.0.1" in _run_recipe()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_serves_a_team_when_asked():
    assert "--server.address 0.0.0.0" in _run_recipe("HOST=0.0.0.0")


def _streamlit_address(*flags: str) -> str | None:
    """server.address as Streamlit resolves it from this project's .streamlit/config.toml (and `flags`)."""
    streamlit = Path(sys.executable).with_name("streamlit")
    out = subprocess.run([str(streamlit), "config", "show", *flags], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout
    found = re.search(r'^address = "([^"]*)"', out, re.MULTILINE)
    return found.group(1) if found else None


def test_a_plain_streamlit_run_binds_to_loopback():
    """`streamlit run dashboard/app.py` without make reads .streamlit/config.toml: it too serves loopback only."""
    assert _streamlit_address() == "127.0.0.1"
    assert _streamlit_address("--server.address", "0.0.0.0") == "0.0.0.0"  # what `make run HOST=…` passes wins


def test_no_full_garbage_collection_after_each_script_run():
    """Streamlit's forced full collection after each run takes about 1 s with torch and a model loaded, holding the
    interpreter lock while the run's last messages wait (issue 20, section 7): this project's config turns it off."""
    code = "from streamlit import config; print(config.get_option('runner.postScriptGC'))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
