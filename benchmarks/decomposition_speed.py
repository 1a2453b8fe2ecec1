"""Seconds of DecompX, ALTI and one default integrated-gradients attribution, side by side, on MiniLM, and
DecompX's peak memory on a long text.

The embedded all-MiniLM-L6-v2 encoder explains the zero-shot label "positive" of a text of exactly 32 and
128 tokens; each method runs with its default settings on one attribution context built beforehand (the
endpoint scores it shares are computed before timing). The best of `--repeats` runs is reported, in wall
seconds and in CPU seconds of the process (`time.process_time`, all threads). The peak memory of DecompX at
`--memory-tokens` (512) is measured in a fresh process: its peak resident set (the model, torch and the
decomposition together) and how much of it the decomposition added; on CUDA, torch's peak allocation.

Run: .venv/bin/python benchmarks/decomposition_speed.py [--repeats 3] [--lengths 32 128] [--memory-tokens 512]
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from explain import load_model  # noqa: E402
from explain.methods import get_method  # noqa: E402
from explain.records import TargetSpec  # noqa: E402
from testkit.contexts import build_context  # noqa: E402

METHODS = ("decompx", "alti", "integrated_gradients")


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


def peak_rss_mib() -> float:
    """This process's peak resident set so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_memory(n: int) -> None:
    """Prints DecompX's peak memory at `n` tokens (run in a process of its own)."""
    import torch

    common.setup()
    loaded = load_model("minilm", device=common.device())
    context = build_context(loaded, common.text_of_tokens(loaded.tokenizer, n), TargetSpec("zero_shot", label="positive"))
    _ = context.endpoints
    before = peak_rss_mib()
    if loaded.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = get_method("decompx").attribute(context)
    seconds = time.perf_counter() - start
    line = (f"DecompX at {context.n_tokens} tokens: {seconds:.3g} s; peak resident set {peak_rss_mib():,.0f} MiB "
            f"(model loaded and context built: {before:,.0f} MiB); completeness delta {result.delta:+.2g}")
    if loaded.device.type == "cuda":
        line += f"; CUDA peak allocated {torch.cuda.max_memory_allocated() / 2**20:,.0f} MiB"
    print(line)


def main(argv: list[str] | None = None) -> dict[int, dict[str, float]]:
    """Prints the table; returns the best wall seconds of each method by text length."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--memory-tokens", type=int, default=512, help="0: skip the memory measurement")
    parser.add_argument("--peak-only", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.peak_only:
        peak_memory(args.peak_only)
        return {}
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
        ig = found[n]["integrated_gradients"]
        cells += [f"{found[n]['decompx'] / ig:.3g}", f"{found[n]['alti'] / ig:.3g}"]
        rows.append(cells)
    print(common.table(["tokens asked (got)"] + [f"{name}: wall s (CPU s)" for name in METHODS]
                       + ["DecompX / IG", "ALTI / IG"], rows))
    if args.memory_tokens:
        subprocess.run([sys.executable, __file__, "--peak-only", str(args.memory_tokens)], check=True)
    return found


if __name__ == "__main__":
    main()
