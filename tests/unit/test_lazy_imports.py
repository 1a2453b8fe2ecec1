"""Importing the library, or the module a Ray actor is made from, leaves out the heavy optional packages: every
process (each Ray actor, CLI call and dashboard server) would pay their seconds of start-up otherwise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Captum imports IPython and matplotlib; scipy.stats alone takes ~2 s; plotly and DuckDB are for figures and summaries.
HEAVY = ("captum", "IPython", "matplotlib", "scipy.stats", "plotly", "duckdb")


def loaded_after(module: str) -> list[str]:
    """The HEAVY packages in sys.modules after importing `module` in a fresh interpreter."""
    code = (f"import sys, json, {module}\n"
            f"print(json.dumps([name for name in {list(HEAVY)!r} if name in sys.modules]))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("module", ["explain", "explain.corpus.engine_ray", "explain.cli", "explain.tasks"])
def test_importing_leaves_out_heavy_packages(module):
    assert loaded_after(module) == []


def test_the_check_sees_a_heavy_import():
    assert loaded_after("captum.attr") != []
