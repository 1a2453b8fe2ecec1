"""Corpus mode throughput and memory on the embedded model (MiniLM, zero-shot sentiment target).

- texts/second on N texts of 5-60 words (seeded), gradient x input and default integrated gradients:
  the local corpus engine against today's per-text `explain.analyze` loop (and transformers-interpret's
  explainer in a loop where it is installed: it needs a classification head, so it is skipped here otherwise);
- the Ray engine with 1 and 2 actors against the local engine (--ray);
- peak RSS of a gradient x input run at two corpus sizes (--rss 1000,10000), each in a fresh process.

Run: PYTHONPATH=. .venv/bin/python benchmarks/corpus.py --texts 500 --ray --rss 1000,10000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORDS = ("the a film movie was is it good bad but too long service terrible great not very and of to in this that "
         "food slow fast loved hated staff room clean dirty price cheap expensive friendly rude quiet noisy story "
         "actor plot ending music sound screen battery phone delivery late early broken perfect awful nice").split()


def make_corpus(path: Path, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    lines = ["text"] + [" ".join(rng.choice(WORDS, size=int(rng.integers(5, 61)))) for _ in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def per_text_loop(texts: list[str], method: str, loaded) -> float:
    from explain import AnalysisRequest, analyze

    start = time.perf_counter()
    for text in texts:
        analyze(AnalysisRequest(text, method=method), loaded)
    return len(texts) / (time.perf_counter() - start)


def corpus_rate(source: Path, method: str, loaded, engine: str = "local", actors: int = 1) -> float:
    from explain.corpus import CorpusColumns, CorpusJob, run_job

    job = CorpusJob(source=str(source), columns=CorpusColumns(text="text"), methods=(method,), batch_size=64)
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        outcome = run_job(job, Path(folder) / "run", engine=engine, loaded=loaded, actors=actors)
        return outcome.texts / (time.perf_counter() - start)


def peak_rss(n: int) -> float:
    """Peak RSS (MB) of a fresh process running gradient x input over n texts."""
    code = (
        "import resource, sys, tempfile; from pathlib import Path; sys.path.insert(0, 'benchmarks');"
        "import corpus as b; from explain.corpus import CorpusColumns, CorpusJob, run_job;"
        "from explain.models import configure_threads; configure_threads();"
        f"d = Path(tempfile.mkdtemp()); src = b.make_corpus(d / 'c.csv', {n});"
        "run_job(CorpusJob(source=str(src), columns=CorpusColumns(text='text'), batch_size=64), d / 'run');"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--texts", type=int, default=500)
    parser.add_argument("--loop-texts", type=int, default=None, help="texts for the per-text loop (default: all)")
    parser.add_argument("--ray", action="store_true")
    parser.add_argument("--rss", default="", help="comma-separated corpus sizes for peak RSS, e.g. 1000,10000")
    args = parser.parse_args()
    from explain.models import configure_threads, load_model

    threads = configure_threads()
    loaded = load_model("minilm")
    results: dict[str, object] = {"texts": args.texts, "torch_threads": threads}
    with tempfile.TemporaryDirectory() as folder:
        source = make_corpus(Path(folder) / "corpus.csv", args.texts)
        texts = source.read_text(encoding="utf-8").splitlines()[1:][: args.loop_texts or args.texts]
        for method in ("gradient_x_input", "integrated_gradients"):
            loop = per_text_loop(texts, method, loaded)
            local = corpus_rate(source, method, loaded)
            results[method] = {"per_text_loop": loop, "local_engine": local, "speed_up": local / loop}
            print(method, results[method], flush=True)
        try:
            import transformers_interpret  # noqa: F401

            results["transformers_interpret"] = "installed, but it needs a classification head; MiniLM has none"
        except ImportError:
            results["transformers_interpret"] = "not installed: skipped"
        if args.ray:
            for actors in (1, 2):
                rate = corpus_rate(source, "gradient_x_input", loaded, engine="ray", actors=actors)
                results[f"ray_{actors}_actors_gradient_x_input"] = rate
                print("ray", actors, rate, flush=True)
    for n in [int(x) for x in args.rss.split(",") if x]:
        results[f"peak_rss_mb_{n}"] = peak_rss(n)
        print("rss", n, results[f"peak_rss_mb_{n}"], flush=True)
    results["this_process_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
