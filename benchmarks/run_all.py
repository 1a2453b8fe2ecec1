"""Run every benchmark in sequence and print all their tables (markdown): `make benchmark`.

Each script runs in its own process (so one's memory and threads do not disturb the next) with
this interpreter. The peers (transformers-interpret, bertviz) come from requirements-bench.txt:
    make peers
Without them, the peer rows are skipped and say so.

Run: .venv/bin/python benchmarks/run_all.py [--quick] [--wait-idle SECONDS]
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

SCRIPTS = ["ig_speed.py", "attention_speed.py", "grid_payload.py", "masked_lm_head.py"]


def main() -> int:
    import argparse

    import common

    parser = argparse.ArgumentParser(description="Run every benchmark and print their tables.")
    parser.add_argument("--quick", action="store_true", help="skip the slower extra rows of ig_speed.py")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="first wait up to this long for the 1-minute load average to fall below 0.5")
    args = parser.parse_args()
    if args.wait_idle > 0:
        common.wait_for_idle(args.wait_idle)
    common.setup()
    print("## Benchmarks\n")
    print(common.machine_header())
    failed = []
    for script in SCRIPTS:
        cmd = [sys.executable, str(HERE / script)]
        if script == "ig_speed.py" and args.quick:
            cmd.append("--quick")
        start = time.perf_counter()
        proc = subprocess.run(cmd, cwd=HERE.parent, capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        body = proc.stdout.split("\n\n", 1)[-1].strip() if proc.returncode == 0 else proc.stdout.strip()
        print(f"\n{body}\n\n_{script}: {elapsed:.0f} s_")
        if proc.returncode != 0:
            failed.append(script)
            print(f"\n**{script} failed (exit {proc.returncode}):**\n```\n{proc.stderr.strip()[-3000:]}\n```")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
