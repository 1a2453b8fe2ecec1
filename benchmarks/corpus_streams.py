"""Corpus engine on one stream against several (`explain.corpus.streams`), interleaved in one process.

Wall time under other load is noise; alternating one stream and N streams round by round in the same process puts
both under the same load, so the ratio of their medians says something where the absolute times do not. Also
prints each side's CPU seconds per text (`resource.getrusage`, all threads) and the load average.
Run: .venv/bin/python benchmarks/corpus_streams.py [--texts 200] [--rounds 5] [--streams 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--streams", type=int, default=2)
    parser.add_argument("--method", default="gradient_x_input")
    args = parser.parse_args(argv)

    from explain.corpus import run_job
    from explain.models import configure_threads

    threads = configure_threads()
    _, loaded, texts, job = corpus.loaded_job(args.texts, args.method)

    def run(streams: int) -> tuple[float, float]:
        with tempfile.TemporaryDirectory() as out:
            wall, cpu = time.perf_counter(), corpus.cpu_seconds()
            outcome = run_job(job, Path(out) / "run", loaded=loaded, streams=streams)
            wall, cpu = time.perf_counter() - wall, corpus.cpu_seconds() - cpu
        assert outcome.status == "done" and not outcome.failed
        return len(texts) / wall, 1000 * cpu / len(texts)

    run(1)
    run(args.streams)
    rates: dict[int, list[float]] = {1: [], args.streams: []}
    cpu: dict[int, list[float]] = {1: [], args.streams: []}
    for n in range(args.rounds):
        for streams in (1, args.streams) if n % 2 == 0 else (args.streams, 1):
            rate, ms = run(streams)
            rates[streams].append(rate)
            cpu[streams].append(ms)
        print(f"round {n + 1}: 1 stream {rates[1][-1]:.1f} texts/s ({cpu[1][-1]:.1f} CPU ms/text), "
              f"{args.streams} streams {rates[args.streams][-1]:.1f} texts/s ({cpu[args.streams][-1]:.1f} CPU ms/text), "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
    one, many = statistics.median(rates[1]), statistics.median(rates[args.streams])
    print(f"median over {args.rounds} rounds ({len(texts)} texts, {threads} torch threads): 1 stream {one:.1f}, "
          f"{args.streams} streams {many:.1f} texts/s; ratio {many / one:.2f}; CPU ms/text "
          f"{statistics.median(cpu[1]):.1f} vs {statistics.median(cpu[args.streams]):.1f}")


if __name__ == "__main__":
    main()
