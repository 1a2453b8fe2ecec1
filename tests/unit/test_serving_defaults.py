"""What `make run` serves by default: loopback only, so a laptop never exposes the dashboard by accident."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_recipe(*overrides: str) -> str:
    out = subprocess.run(["make", "-n", "-C", str(ROOT), "run", *overrides], capture_output=True, text=True,
                         check=True).stdout
    lines = [line for line in out.splitlines() if "streamlit run" in line]
    assert len(lines) == 1, out
    return lines[0]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_binds_to_loopback_by_default():
    assert "--server.address 127.0.0.1" in _run_recipe()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_serves_a_team_when_asked():
    assert "--server.address 0.0.0.0" in _run_recipe("HOST=0.0.0.0")
