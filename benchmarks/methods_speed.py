"""Seconds per attribution method, and for the faithfulness evaluation of all of them, on MiniLM.

The embedded all-MiniLM-L6-v2 encoder explains a zero-shot label ("positive" vs "negative") of a
text of exactly 32 and 128 tokens (or, with `--ferret-texts`, of ferret's two benchmark texts,
benchmarks/ferret/texts.json); every method runs with its default settings. The faithfulness row
times one `evaluate_context` call over all methods' word scores (ERASER bins, 20 random rankings,
words replaced by [PAD]), with the number of inputs it scores.

Each repeat runs the whole set in order on a fresh attribution context, as one analysis does
(`explain.pipeline.with_methods`): within a run the context shares what it has computed (the
endpoint scores, leave-one-word-out's inputs, which faithfulness scores again), never across runs.
The fastest of `--repeats` runs is reported per row, in wall seconds and in CPU seconds of the
process (all its threads: `time.process_time`), which other work on a shared machine inflates less.

Run: .venv/bin/python benchmarks/methods_speed.py [--repeats 2] [--lengths 32 128] [--ferret-texts]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from explain import load_model  # noqa: E402
from explain.evaluation import evaluate_context  # noqa: E402
from explain.methods import METHODS  # noqa: E402
from explain.records import TargetSpec  # noqa: E402
from testkit.contexts import build_context  # noqa: E402

FERRET_TEXTS = Path(__file__).resolve().parent / "ferret" / "texts.json"
FAITHFULNESS = "faithfulness (all methods)"


def timed(fn):
    """(wall seconds, CPU seconds of this process, all its threads, result) of one call."""
    common.sync()
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    common.sync()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def time_methods(loaded, text: str, spec: TargetSpec | None, repeats: int
                 ) -> tuple[dict[str, float], dict[str, float], int]:
    """Best wall seconds and best CPU seconds of each method and of the faithfulness of all of them over
    `repeats` fresh runs, and the number of inputs faithfulness scored."""
    best: dict[str, float] = {}
    best_cpu: dict[str, float] = {}
    n_variants = 0
    for _ in range(max(1, repeats)):
        seconds, cpu = {}, {}
        key = "context (tokens, target, prediction)"
        seconds[key], cpu[key], context = timed(lambda: build_context(loaded, text, spec))
        word_scores = {}
        for name, method in METHODS.items():
            seconds[name], cpu[name], result = timed(lambda m=method, c=context: m.attribute(c))
            word_scores[name] = result.word_scores
        seconds[FAITHFULNESS], cpu[FAITHFULNESS], report = timed(
            lambda c=context, w=word_scores: evaluate_context(c, w))
        n_variants = report.n_variants
        best = {name: min(value, best.get(name, float("inf"))) for name, value in seconds.items()}
        best_cpu = {name: min(value, best_cpu.get(name, float("inf"))) for name, value in cpu.items()}
    return best, best_cpu, n_variants


def main(argv: list[str] | None = None) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, float]]]:
    """Prints the table; returns the wall and the CPU seconds of each row, by text."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--ferret-texts", action="store_true",
                        help="ferret's two benchmark texts, explaining the top label as ferret does")
    args = parser.parse_args(argv)
    common.setup()
    print(common.machine_header())
    loaded = load_model("minilm", device=common.device())
    if args.ferret_texts:
        texts = json.loads(FERRET_TEXTS.read_text())
        spec = None  # the model's default target, zero-shot positive/negative, explaining the top label
    else:
        texts = {f"{n} tokens": common.text_of_tokens(loaded.tokenizer, n) for n in args.lengths}
        spec = TargetSpec("zero_shot", label="positive")
    columns: dict[str, dict[str, float]] = {}
    cpu_columns: dict[str, dict[str, float]] = {}
    cells: dict[str, dict[str, str]] = {}
    for label, text in texts.items():
        seconds, cpu, n_variants = time_methods(loaded, text, spec, args.repeats)
        columns[label], cpu_columns[label] = seconds, cpu
        cells[label] = {name: f"{value:.3g} ({cpu[name]:.3g})" for name, value in seconds.items()}
        cells[label][FAITHFULNESS] += f", {n_variants} inputs"
        cells[label]["total"] = f"{sum(seconds.values()):.3g} ({sum(cpu.values()):.3g})"
    names = list(cells[next(iter(cells))])
    rows = [[name] + [cells[label][name] for label in texts] for name in names]
    print(common.table(["method (default settings)"] + [f"{label}: wall s (CPU s)" for label in texts], rows))
    return columns, cpu_columns


if __name__ == "__main__":
    main()
