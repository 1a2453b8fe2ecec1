"""Seconds of ALTI and of one default integrated-gradients attribution, side by side, on MiniLM.

The embedded all-MiniLM-L6-v2 encoder explains the zero-shot label "positive" of a text of exactly 32 and
128 tokens; each method runs with its default settings on one attribution context built beforehand (the
endpoint scores it shares are computed before timing). The best of `--repeats` runs is reported, in wall
seconds and in CPU seconds of the process (`time.process_time`, all threads).

Run: .venv/bin/python benchmarks/decomposition_speed.py [--repeats 3] [--lengths 32 128]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from explain import load_model  # noqa: E402
from explain.methods import get_method  # noqa: E402
from explain.records import TargetSpec  # noqa: E402
from testkit.contexts import build_context  # noqa: E402

METHODS = ("alti", "integrated_gradients")


def best_seconds(fn, repeats: int) -> tuple[float, float]:
    """Best wall and best CPU seconds of `fn` over `repeats` calls."""
    wall, cpu = [], []
    for _ in range(max(1, repeats)):
        common.sync()
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        common.sync()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def main(argv: list[str] | None = None) -> dict[int, dict[str, float]]:
    """Prints the table; returns the best wall seconds of each method by text length."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128])
    args = parser.parse_args(argv)
    common.setup()
    print(common.machine_header())
    loaded = load_model("minilm", device=common.device())
    spec = TargetSpec("zero_shot", label="positive")
    found: dict[int, dict[str, float]] = {}
    rows = []
    for n in args.lengths:
        context = build_context(loaded, common.text_of_tokens(loaded.tokenizer, n), spec)
        _ = context.endpoints
        found[n] = {}
        cells = [f"{n} ({context.n_tokens})"]
        for name in METHODS:
            method = get_method(name)
            wall, cpu = best_seconds(lambda m=method, c=context: m.attribute(c), args.repeats)
            found[n][name] = wall
            cells.append(f"{wall:.3g} ({cpu:.3g})")
        cells.append(f"{found[n]['alti'] / found[n]['integrated_gradients']:.3g}")
        rows.append(cells)
    print(common.table(["tokens asked (got)"] + [f"{name}: wall s (CPU s)" for name in METHODS]
                       + ["ALTI / IG"], rows))
    return found


if __name__ == "__main__":
    main()
