"""Calibrate the work budget: seconds of one analysis of the embedded model against its estimated work.

Runs `explain.analyze` on `minilm` (the real pretrained all-MiniLM-L6-v2) at 128 and 512 tokens with 50 and
200 integration steps (fixed steps, float32, the dashboard's default mode) and one bfloat16 adaptive run (the
dashboard's fast mode), and prints each run's time next to `explain.scheduling.estimate_work`'s figure, the
measured rate (work units per second) and the seconds the estimate predicts at the configured rate.

    .venv/bin/python benchmarks/work_budget.py            # the four fixed-step cases and one fast-mode run
    .venv/bin/python benchmarks/work_budget.py --quick    # 128 tokens only

Benchmarks print figures; they assert nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402

from explain import AnalysisRequest, analyze, load_model  # noqa: E402
from explain.scheduling import WorkBudget, estimate_work  # noqa: E402

CASES = [(128, 50, "fp32"), (128, 200, "fp32"), (512, 50, "fp32"), (512, 200, "fp32"), (512, 200, "fast")]


def long_text(n_tokens: int) -> str:
    """A text of at least `n_tokens` tokens (truncated to the token limit by the request)."""
    return " ".join([common.PARAGRAPH] * (1 + n_tokens // 150))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the 128-token cases")
    args = parser.parse_args(argv)
    common.setup()
    print(common.machine_header())
    loaded = load_model("minilm")
    budget = WorkBudget.from_environment()
    analyze(AnalysisRequest("A warm-up sentence.", n_steps=4), loaded)
    print("\n| tokens | steps | mode | seconds | work units | units per second | predicted seconds |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for n_tokens, steps, mode in CASES:
        if args.quick and n_tokens > 128:
            continue
        fast = mode == "fast"
        request = AnalysisRequest(long_text(n_tokens), n_steps=steps, max_tokens=n_tokens,
                                  tolerance=1e-2 if fast else None, precision="bf16" if fast else "fp32")
        start = time.perf_counter()
        result = analyze(request, loaded)
        seconds = time.perf_counter() - start
        used = AnalysisRequest(request.text, n_steps=result.attribution.n_steps, max_tokens=n_tokens,
                               precision=request.precision)
        work = estimate_work(used, loaded.config, len(result.tokens))
        print(f"| {len(result.tokens)} | {steps}{' cap, ' + str(result.attribution.n_steps) + ' used' if fast else ''}"
              f" | {mode} | {seconds:.1f} | {work:.3g} | {work / seconds:.3g} | {budget.seconds(work):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
