"""This project against ferret-xai on the same two texts, back to back in one run: seconds and their ratio.

Issue 11 item 6: "Report the time ratio ... Target: at least 5x faster than ferret for the whole set."
First this project (benchmarks/methods_speed.py --ferret-texts: every registered method with its
default settings and the faithfulness of all of them, one fresh run per text), then ferret
(run_ferret.py in ferret's own virtualenv: its six default explainers and its evaluators), each
after reading /proc/loadavg, since the 2-core machine is shared and load moves every figure. Both
wall seconds and CPU seconds of each process (all threads, `time.process_time`) are reported: other
work inflates the CPU seconds much less than the wall seconds.

Run: .venv/bin/python benchmarks/ferret/compare_speed.py [--ferret-python PATH] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import methods_speed  # noqa: E402

RESULTS = HERE / "results.json"


def loadavg() -> str:
    path = Path("/proc/loadavg")
    return path.read_text().strip() if path.exists() else "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ferret-python", type=Path, default=HERE / ".venv" / "bin" / "python")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each side; the fastest is kept")
    args = parser.parse_args()

    ours_load = loadavg()
    print(f"/proc/loadavg before ours: {ours_load}", flush=True)
    start = time.perf_counter()
    columns, cpu_columns = methods_speed.main(["--ferret-texts", "--repeats", str(args.repeats)])
    ours_wall = time.perf_counter() - start
    ours = {label: sum(seconds.values()) for label, seconds in columns.items()}
    ours_cpu = sum(sum(seconds.values()) for seconds in cpu_columns.values())

    ferret_load = loadavg()
    print(f"\n/proc/loadavg before ferret: {ferret_load}", flush=True)
    start = time.perf_counter()
    subprocess.run([str(args.ferret_python), str(HERE / "run_ferret.py"), "--repeats", str(args.repeats),
                    "--out", str(RESULTS)], check=True)
    ferret_wall = time.perf_counter() - start
    results = json.loads(RESULTS.read_text())
    ferret = {name: t["explain_seconds_total"] + t["evaluate_seconds_total"] for name, t in results["texts"].items()}
    ferret_cpu = results["cpu_seconds_total"]

    print(f"\n/proc/loadavg at the end: {loadavg()}")
    print(f"ours:   {' + '.join(f'{s:.3g} s' for s in ours.values())} = {sum(ours.values()):.3g} s "
          f"(wall {ours_wall:.3g} s with model loading; load before: {ours_load})")
    print(f"ferret: {' + '.join(f'{s:.3g} s' for s in ferret.values())} = {sum(ferret.values()):.3g} s "
          f"(wall {ferret_wall:.3g} s with model loading and warm-up; load before: {ferret_load})")
    print(f"ratio (ferret / ours, whole set): {sum(ferret.values()) / sum(ours.values()):.2f}x wall")
    print(f"CPU seconds (all threads of each process): ours {ours_cpu:.3g} s, ferret {ferret_cpu:.3g} s, "
          f"ratio {ferret_cpu / ours_cpu:.2f}x")


if __name__ == "__main__":
    main()
