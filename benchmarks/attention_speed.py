"""Attention extraction vs a bare forward pass of the same model (bert-base size, 128 tokens).

- explain's attention pass: the "attention" stage of `explain.analyze` (eager attention,
  output_attentions=True, scores, all maps stacked into one float32 numpy array), read from
  `Analysis.timings["attention"]`;
- a bare forward of the same weights with transformers' default (sdpa) attention and no
  attention output, under torch.inference_mode;
- for the breakdown: the eager model's forward without attention output.

Run: .venv/bin/python benchmarks/attention_speed.py
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import torch  # noqa: E402

from explain import AnalysisRequest, TargetSpec, analyze  # noqa: E402

ROUNDS = 9


def main() -> str:
    common.setup()
    tok = common.tokenizer()
    text = common.text_of_tokens(tok)
    eager = common.bert_base("eager")
    sdpa = common.bert_base("sdpa", state=eager.state_dict())
    loaded = common.loaded(eager, tok)
    enc = tok(text, return_tensors="pt").to(common.device())
    assert enc["input_ids"].shape[1] == common.N_TOKENS
    request = AnalysisRequest(text, target=TargetSpec("class"), n_steps=1, max_tokens=common.N_TOKENS)
    weights_shape = tuple(analyze(request, loaded).attention.weights.shape)

    def bare(model):
        def run() -> float:
            common.sync()
            start = time.perf_counter()
            with torch.inference_mode():
                model(**enc)
            common.sync()
            return time.perf_counter() - start
        return run

    passes = {
        "sdpa": bare(sdpa),
        "eager": bare(eager),
        "explain": lambda: analyze(request, loaded).timings["attention"],
    }
    for run in passes.values():  # warm-up
        run()
    # Round robin, so that other work on the machine slows every pass alike.
    times: dict[str, list[float]] = {name: [] for name in passes}
    for _ in range(ROUNDS):
        for name, run in passes.items():
            times[name].append(run())
    best = {name: min(t) for name, t in times.items()}
    med = {name: statistics.median(t) for name, t in times.items()}

    def row(label: str, name: str) -> list[str]:
        return [label, f"{best[name] * 1000:.0f}", f"{med[name] * 1000:.0f}", f"{best[name] / best['sdpa']:.2f}",
                f"{med[name] / med['sdpa']:.2f}"]

    rows = [
        row("bare forward, sdpa attention (transformers default)", "sdpa"),
        row("bare forward, eager attention", "eager"),
        row(f"explain attention pass (eager, output_attentions, maps {weights_shape} to numpy)", "explain"),
    ]
    ratio = med["explain"] / med["sdpa"]
    return "\n".join([
        "### Attention extraction vs a bare forward, bert-base size, 128 tokens\n",
        common.table(["pass", "best (ms)", "median (ms)", "best / sdpa best", "median / sdpa median"], rows),
        f"\nTarget: within 1.2x of the bare forward; measured {ratio:.2f}x (medians of {ROUNDS} round-robin "
        f"rounds; best-of ratio {best['explain'] / best['sdpa']:.2f}x).",
    ])


if __name__ == "__main__":
    print(common.machine_header())
    print()
    print(main())
