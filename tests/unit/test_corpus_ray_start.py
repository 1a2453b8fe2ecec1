"""What a Ray job's workers are started with: a PYTHONPATH runtime_env only where a fresh interpreter would not
import this `explain` (a runtime_env starts each worker process twice)."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from explain.corpus.engine_ray import worker_runtime_env


def test_a_folder_workers_would_not_import_explain_from_goes_on_their_pythonpath(tmp_path):
    env = worker_runtime_env(local=True, root=tmp_path)
    assert env is not None
    assert env["env_vars"]["PYTHONPATH"].split(":")[0] == str(tmp_path)


def test_the_folder_a_fresh_interpreter_imports_explain_from_needs_no_runtime_env():
    found = subprocess.run([sys.executable, "-P", "-c", "import explain; print(explain.__file__)"], check=True,
                           capture_output=True, text=True, cwd=tempfile.gettempdir()).stdout.strip()
    root = Path(found).resolve().parents[1]
    assert worker_runtime_env(local=True, root=root) is None
    assert worker_runtime_env(root=root) is not None, "a cluster's workers do not inherit this environment"
