"""Head importance maps vs one integrated-gradients analysis, bert-base size, 128 tokens.

The model is a random bert-base-size BertForSequenceClassification (12 layers x 12 heads, hidden 768,
2 labels; the compute does not depend on the weights), saved to a temporary folder with the embedded
model's WordPiece tokenizer and loaded through `explain.load_model` (eager attention, frozen weights), as
the dashboard would. The text is 128 tokens; the target is the top class.

Timed (best of `--repeats`, CPU threads as the app sets them; the two comparison rows run once):
- gradient importance: one forward and one backward pass with a gate on every head;
- ablation effect: 144 single-head removals, batched, layers before the ablated one shared (and, for
  comparison, the same without sharing, once);
- confidence: one forward pass with attention weights;
- the whole `head_importance` (all three maps and their rank correlations);
- a pruning curve (25 points, importance order and 3 random orders: 100 variants), once;
- one analysis with integrated gradients at 50 steps (`explain.analyze`, the app's default request).

Run: .venv/bin/python benchmarks/head_importance_speed.py [--repeats 2]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402

from explain import AnalysisRequest, analyze, load_model  # noqa: E402
from explain.heads import (  # noqa: E402
    ablation_effect,
    confidence,
    gradient_importance,
    head_importance,
    prepare_inputs,
    pruning_curve,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for a quiet machine")
    args = parser.parse_args()
    common.setup()
    load = common.wait_for_idle(args.wait)
    tok = common.tokenizer()
    text = common.text_of_tokens(tok)
    with tempfile.TemporaryDirectory() as folder:
        model = common.bert_base()
        model.save_pretrained(folder)
        tok.save_pretrained(folder)
        del model
        loaded = load_model(folder, device=common.device())
        inputs = prepare_inputs(loaded, text, max_tokens=common.N_TOKENS)
        assert inputs.n_tokens == common.N_TOKENS
        request = AnalysisRequest(text, model=folder, n_steps=50, max_tokens=common.N_TOKENS)
        print(common.machine_header())
        print(f"- load average (1 min) after waiting for a quiet machine: {load:.2f}")
        print(f"- explained score: {inputs.target.description}, {common.N_TOKENS} tokens\n")

        rows = []

        def timed(name: str, fn, note: str = "", repeats: int | None = None):
            seconds, result = common.best_time(fn, repeats or args.repeats)
            rows.append([name, f"{seconds:.3g}", note])
            print(f"  {name}: {seconds:.3g} s", flush=True)
            return seconds, result

        ig_seconds, analysis = timed("one analysis: integrated gradients, 50 steps", lambda: analyze(request, loaded),
                                     "attention pass + IG (Captum, internal batches)")
        t_grad, _ = timed("gradient importance", lambda: gradient_importance(loaded, inputs),
                          "1 forward + 1 backward")
        t_abl, (_, shared) = timed("ablation effect, 144 heads", lambda: ablation_effect(loaded, inputs),
                                   "3 batches of 4 layers (48 variants + the reference), from layers 0, 4, 8")
        t_full, (_, unshared) = timed("ablation effect, no shared layers",
                                      lambda: ablation_effect(loaded, inputs, share_prefix=False),
                                      "for comparison: every variant runs all 12 layers", repeats=1)
        t_conf, _ = timed("confidence", lambda: confidence(loaded, inputs), "1 forward with attention weights")
        t_all, record = timed("head_importance (all three maps)", lambda: head_importance(loaded, inputs))
        t_prune, _ = timed(
            "pruning curve, 25 points x (1 + 3 random orders)",
            lambda: pruning_curve(loaded, inputs, record.map("gradient"), n_random=3, n_points=25),
            "100 variants, batches of 64", repeats=1,
        )
        for row in rows:
            row.insert(2, f"{float(row[1]) / ig_seconds:.2f}x")
        print(common.table(["computation", "seconds", "of one IG analysis", "what runs"], rows))
        print()
        print(f"- shared vs unshared ablation effects differ by at most {np.abs(shared - unshared).max():.2g} "
              f"(largest |effect| {np.abs(shared).max():.2g})")
        print(f"- rank correlations (gradient, ablation, confidence):\n{np.round(record.rank_correlation, 3)}")
        print(f"- IG convergence delta {analysis.attribution.delta:.2g}")
        within = t_all <= ig_seconds
        print(f"- importance map {'within' if within else 'OVER'} the target: {t_all:.3g} s vs {ig_seconds:.3g} s")


if __name__ == "__main__":
    start = time.perf_counter()
    main()
    print(f"- benchmark took {time.perf_counter() - start:.0f} s")
