"""Corpus engine against the per-text `analyze` loop in CPU seconds per text, for a loaded machine.

benchmarks/corpus.py times wall clock, which means nothing while other work shares the CPUs. This script runs the
same job (benchmarks/corpus.py's texts, model and target, gradient x input) and the same per-text loop in rounds,
interleaved in one process, and reports each side's CPU seconds (`resource.getrusage`, RUSAGE_SELF: all threads)
per text, with the load average. One torch thread by default: with two, idle OpenMP threads spin and count as CPU.
Run: .venv/bin/python benchmarks/corpus_cpu.py [--texts 100] [--rounds 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import corpus  # noqa: E402
import torch  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--method", default="gradient_x_input")
    args = parser.parse_args(argv)

    from explain import AnalysisRequest, analyze
    from explain.models import configure_threads
    from explain.records import TargetSpec

    configure_threads()
    torch.set_num_threads(args.threads)
    model_dir, loaded, texts, job = corpus.loaded_job(args.texts, args.method)
    warm_up = corpus.job_for(corpus.write_csv(Path(job.source).parent / "warm-up.csv", [corpus.WARM_UP]), model_dir,
                             args.method, 64)

    def loop_text(text: str) -> None:
        analyze(AnalysisRequest(text, model=model_dir, method=args.method, target=TargetSpec("class")), loaded)

    corpus.run_corpus(warm_up, loaded)
    loop_text(corpus.WARM_UP)
    engine, loop = [], []
    for n in range(args.rounds):
        start = corpus.cpu_seconds()
        corpus.run_corpus(job, loaded)
        engine.append(1000 * (corpus.cpu_seconds() - start) / len(texts))
        start = corpus.cpu_seconds()
        for text in texts:
            loop_text(text)
        loop.append(1000 * (corpus.cpu_seconds() - start) / len(texts))
        print(f"round {n + 1}: engine {engine[-1]:.2f} CPU ms/text, loop {loop[-1]:.2f} CPU ms/text, "
              f"ratio {loop[-1] / engine[-1]:.2f}, load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"median over {args.rounds} rounds ({len(texts)} texts, {args.threads} torch thread(s)): engine "
          f"{statistics.median(engine):.2f}, loop {statistics.median(loop):.2f} CPU ms/text; ratio of sums "
          f"{sum(loop) / sum(engine):.2f}")


if __name__ == "__main__":
    main()
