"""Do two seeds rank the words alike? Per stochastic method, Spearman of the word scores under seeds 0 and 1
(issue 21 B3).

Every registered method whose settings have a `seed` (`Method.stochastic`) runs with its default settings on
the 20 benchmark sentences of ig_default.py, on the embedded pretrained all-MiniLM-L6-v2 (its default zero-shot
target, the [PAD] baseline), once with seed 0 and once with seed 1
(`explain.evaluation.stability.context_seed_agreement`). Printed: the min and mean Spearman over the sentences,
how many are under 0.8, and the seconds both seeds took.

Run: .venv/bin/python benchmarks/seed_agreement.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402
from ig_default import SENTENCES  # noqa: E402

from explain.evaluation.stability import context_seed_agreement  # noqa: E402
from explain.methods import METHODS  # noqa: E402
from explain.models import load_model  # noqa: E402
from explain.pipeline import attribution_context  # noqa: E402
from explain.records import AnalysisRequest  # noqa: E402

AGREEING = 0.8


def main() -> str:
    common.setup()
    loaded = load_model("minilm")
    contexts = [attribution_context(AnalysisRequest(text), loaded) for text in SENTENCES]
    rows = []
    for name, method in METHODS.items():
        if not method.stochastic:
            continue
        start = time.perf_counter()
        rho = np.array([context_seed_agreement(name, context).spearman for context in contexts])
        seconds = time.perf_counter() - start
        settings = ", ".join(f"{k} {v}" for k, v in method.settings_type().as_dict().items() if k != "seed")
        rows.append([method.title, settings, f"{np.nanmin(rho):.3f}", f"{np.nanmean(rho):.3f}",
                     f"{int((rho < AGREEING).sum())} of {len(rho)}", f"{seconds:.1f}"])
        print(f"  {name} done", file=sys.stderr, flush=True)
    return "\n".join([
        f"### Seed 0 against seed 1: Spearman of the word scores, {len(SENTENCES)} sentences, minilm\n",
        common.table(["method", "default settings", "min Spearman", "mean Spearman", f"under {AGREEING}",
                      "seconds (both seeds)"], rows),
    ])


if __name__ == "__main__":
    print(common.machine_header())
    print()
    print(main())
