"""The launcher `make run` uses (dashboard.serve): its warm-up reports each step, and a warm-up that fails
(the model cannot load) says so in one sentence and the server still starts."""

from __future__ import annotations

import urllib.request

import pytest

from testkit.server import running_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_a_failed_warm_up_says_why_in_one_sentence_and_the_server_still_starts(tmp_path):
    log = tmp_path / "server.log"
    # A memory bound below the embedded model's size: its load is refused before any weights are read.
    env = {"EXPLAIN_MAX_MODEL_MB": "1", "EXPLAIN_STORE_PATH": str(tmp_path / "analyses.sqlite3")}
    with running_server(env=env, warm=True, timeout=600, log=log) as base:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=10) as response:
            assert response.status == 200
    lines = log.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("Importing the dashboard … ") and lines[0].endswith(" s")
    failed = [line for line in lines if line.startswith("Warm-up failed")]
    assert len(failed) == 1 and failed[0].count(". ") == 0 and "minilm" in failed[0], lines[:5]
    assert not any(line.startswith("Analysing") for line in lines)
    assert not any("Traceback" in line or "WARNING" in line for line in lines), lines
