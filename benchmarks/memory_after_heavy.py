"""Does this process's resident memory come back after heavy work ends? RSS before, after a few heavy jobs
(importance maps, pruning curves, depth, a one-pass method) with their results dropped, and after giving freed heap
back to the system (`explain.scheduling.release_memory`).

    .venv/bin/python benchmarks/memory_after_heavy.py [--model minilm] [--tokens 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import gc
import re

from explain import AnalysisRequest, analyze, load_model
from explain.heads import head_importance, prepare_inputs, pruning_curve
from explain.models import configure_threads
from explain.pipeline import explain_method, with_depth
from explain.scheduling import release_memory

WORDS = ("the film was good but far too long and the ending made no sense at all while the cast "
         "tried hard to save a script that never knew what it wanted to say about anyone ").split()


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        found = re.search(r"VmRSS:\s+(\d+) kB", status.read())
    return int(found.group(1)) / 1024 if found else float("nan")


def heavy_jobs(loaded, text: str, tokens: int) -> None:
    inputs = prepare_inputs(loaded, text, None, tokens)
    importance = head_importance(loaded, inputs)
    pruning_curve(loaded, inputs, importance.map("gradient"), n_points=49)
    request = AnalysisRequest(text, model=loaded.spec, max_tokens=tokens, n_steps=16)
    with_depth(loaded, analyze(request, loaded))
    explain_method(request, loaded, "value_zeroing")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    configure_threads()
    loaded = load_model(args.model)
    warm = " ".join(WORDS[:12])
    heavy_jobs(loaded, warm, 32)  # every code path once, on a short text
    gc.collect()
    start = rss_mib()
    print(f"after loading and a short warm-up: {start:.0f} MiB")
    for round_ in range(args.rounds):
        text = " ".join(WORDS[(round_ + i) % len(WORDS)] for i in range(args.tokens))
        heavy_jobs(loaded, text, args.tokens)
        gc.collect()
        before = rss_mib()
        trimmed = release_memory()
        after = rss_mib()
        print(f"round {round_ + 1}: {before:.0f} MiB after the jobs ({(before / start - 1) * 100:+.0f}%), "
              f"{after:.0f} MiB after release_memory ({(after / start - 1) * 100:+.0f}%; trimmed: {trimmed})",
              flush=True)


if __name__ == "__main__":
    main()
