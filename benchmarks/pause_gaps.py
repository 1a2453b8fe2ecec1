"""How long light work can wait for each kind of heavy work: the longest stretch between two pause points.

A light request beside heavy work waits for the heavy piece's next progress report at which the model can be lent
out (no hooks of ours on it; see `explain.scheduling.ScheduledCache`). This runs each heavy kind the dashboard
schedules (importance maps, pruning curve, depth, the Methods page's one-pass and sampled methods, faithfulness) on
one text and prints, per kind, its seconds, its progress reports, the pause-able ones and the longest gap between
them (the start and the end count as pause points: the queue changes turns there), all in CPU seconds of this process
(all its threads), which a busy machine changes less than wall time.

    .venv/bin/python benchmarks/pause_gaps.py --tokens 256 [--model minilm] [--only pruning,depth]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import cache

from explain import AnalysisRequest, analyze, load_model
from explain.heads import head_importance, prepare_inputs, pruning_curve
from explain.heads.importance import confidence
from explain.models import configure_threads
from explain.pipeline import attribution_context, evaluate_faithfulness, explain_method, with_depth
from explain.scheduling import has_foreign_hooks

WORDS = ("the film was good but far too long and the ending made no sense at all while the cast "
         "tried hard to save a script that never knew what it wanted to say about anyone ").split()


def text_of(n_words: int) -> str:
    return " ".join(WORDS[i % len(WORDS)] for i in range(n_words))


class Gaps:
    """Progress reports of one run: when each came and whether the model was free of our hooks then."""

    def __init__(self, model) -> None:
        self.model = model
        self.start = time.process_time()
        self.reports: list[tuple[float, bool]] = []

    def __call__(self, *args) -> None:
        self.reports.append((time.process_time(), not has_foreign_hooks(self.model)))

    def summary(self) -> tuple[float, int, int, float]:
        """CPU seconds in all, reports, pause-able reports, the longest CPU seconds between two pause points."""
        end = time.process_time()
        points = [self.start] + [t for t, free in self.reports if free] + [end]
        return end - self.start, len(self.reports), len(points) - 2, max(b - a for a, b in zip(points, points[1:]))


def kinds(loaded, text: str, tokens: int) -> dict[str, Callable[[Gaps], object]]:
    """Each kind as a function of its progress callback; what it needs first is made when it first runs."""
    request = AnalysisRequest(text, model=loaded.spec, max_tokens=tokens, n_steps=16)
    inputs = cache(lambda: prepare_inputs(loaded, text, None, tokens))
    order = cache(lambda: confidence(loaded, inputs()))  # any map orders the heads; this one costs one pass
    context = cache(lambda: attribution_context(request, loaded))
    occlusion = cache(lambda: {"occlusion": explain_method(request, loaded, "occlusion", context=context())})

    def method(name: str) -> Callable[[Gaps], object]:
        return lambda gaps: explain_method(request, loaded, name, context=context(), progress=gaps)

    return {
        "importance": lambda gaps: head_importance(loaded, inputs(), progress=gaps),
        "pruning": lambda gaps: pruning_curve(loaded, inputs(), order(), n_points=49,
                                              progress=gaps),
        "depth": lambda gaps: with_depth(loaded, analyze(request, loaded), progress=gaps),
        "faithfulness": lambda gaps: evaluate_faithfulness(request, loaded, occlusion(), context=context(),
                                                           progress=gaps),
        **{name: method(name) for name in ("integrated_gradients", "occlusion", "lime", "kernel_shap", "smoothgrad",
                                           "decompx", "value_zeroing", "alti")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--only", default="", help="comma-separated kinds (default: all)")
    args = parser.parse_args()
    configure_threads()
    loaded = load_model(args.model)
    text = text_of(args.tokens)
    wanted = [k for k in args.only.split(",") if k]
    print(f"{args.model}, {args.tokens} tokens")
    print(f"{'kind':<22}{'CPU s':>9}{'reports':>9}{'pausable':>10}{'longest gap, CPU s':>20}")
    for name, run in kinds(loaded, text, args.tokens).items():
        if wanted and name not in wanted:
            continue
        gaps = Gaps(loaded.model)
        run(gaps)
        total, reports, pausable, longest = gaps.summary()
        print(f"{name:<22}{total:>9.2f}{reports:>9}{pausable:>10}{longest:>20.2f}", flush=True)


if __name__ == "__main__":
    main()
