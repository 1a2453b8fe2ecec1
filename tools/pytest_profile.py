"""A pytest plugin that records each test's wall and CPU seconds (this process and its waited-for children) per phase,
so a loaded machine can still rank tests by CPU share: `pytest -p tools.pytest_profile`, output in
$PYTEST_PROFILE_OUT (default pytest-profile.tsv), one row per test phase plus per-file totals at the end."""

from __future__ import annotations

import os
import resource
import time
from collections import defaultdict

import pytest

_rows: list[tuple[str, str, float, float, float]] = []


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    yield from _timed(item, "setup")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    yield from _timed(item, "call")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    yield from _timed(item, "teardown")


def _timed(item, phase):
    wall, (own, children) = time.perf_counter(), _cpu()
    yield
    own_after, children_after = _cpu()
    _rows.append((item.nodeid, phase, time.perf_counter() - wall, own_after - own, children_after - children))


def pytest_sessionfinish(session):
    path = os.environ.get("PYTEST_PROFILE_OUT", "pytest-profile.tsv")
    per_file: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    with open(path, "w", encoding="utf-8") as out:
        out.write(f"# loadavg at end: {os.getloadavg()}\nnodeid\tphase\twall\tcpu\tchild_cpu\n")
        for nodeid, phase, wall, cpu, child in _rows:
            out.write(f"{nodeid}\t{phase}\t{wall:.3f}\t{cpu:.3f}\t{child:.3f}\n")
            totals = per_file[nodeid.split("::")[0]]
            totals[0] += wall
            totals[1] += cpu
            totals[2] += child
        out.write("\n# per file: file\twall\tcpu\tchild_cpu\n")
        for name, (wall, cpu, child) in sorted(per_file.items(), key=lambda kv: -(kv[1][1] + kv[1][2])):
            out.write(f"FILE\t{name}\t{wall:.2f}\t{cpu:.2f}\t{child:.2f}\n")
