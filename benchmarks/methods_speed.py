"""Seconds per attribution method, and for the faithfulness evaluation of all of them, on MiniLM.

The embedded all-MiniLM-L6-v2 encoder explains a zero-shot label ("positive" vs "negative") of a
text of exactly 32 and 128 tokens; every method runs with its default settings (best of `--repeats`).
The faithfulness row times one `evaluate_context` call over all methods' word scores (ERASER bins,
20 random rankings, words replaced by [PAD]), with the number of inputs it scores.

Run: .venv/bin/python benchmarks/methods_speed.py [--repeats 2] [--lengths 32 128]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from explain import load_model  # noqa: E402
from explain.analysis import TargetSpec  # noqa: E402
from explain.evaluation import evaluate_context  # noqa: E402
from explain.methods import METHODS  # noqa: E402
from tests.attribution_contexts import build_context  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 128])
    args = parser.parse_args()
    common.setup()
    print(common.machine_header())
    loaded = load_model("minilm", device=common.device())
    spec = TargetSpec("zero_shot", label="positive")
    columns: dict[int, dict[str, str]] = {}
    for n_tokens in args.lengths:
        text = common.text_of_tokens(loaded.tokenizer, n_tokens)
        context = build_context(loaded, text, spec)
        column: dict[str, str] = {}
        word_scores = {}
        for name, method in METHODS.items():
            seconds, result = common.best_time(lambda m=method, c=context: m.attribute(c), args.repeats)
            column[name] = f"{seconds:.3g}"
            word_scores[name] = result.word_scores
        seconds, report = common.best_time(lambda c=context, w=word_scores: evaluate_context(c, w), args.repeats)
        column["faithfulness (all methods)"] = f"{seconds:.3g} ({report.n_variants} inputs)"
        columns[n_tokens] = column
    rows = [[name] + [columns[n][name] for n in args.lengths] for name in columns[args.lengths[0]]]
    print(common.table(["method (default settings)"] + [f"{n} tokens, s" for n in args.lengths], rows))


if __name__ == "__main__":
    main()
