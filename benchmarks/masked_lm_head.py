"""Integrated gradients on a masked-LM target: projecting only the [MASK] position vs every position.

A bert-base-size BertForMaskedLM (random BertConfig(); compute does not depend on the weights) at 128 tokens,
the masked-token target, 50 steps, run twice: as explain does it (the encoder, then the MLM head on the [MASK]
position only: `explain.targets.Target.forward_embeddings`) and through the whole model, which projects every
position onto the 30k-word vocabulary and back-propagates through all of it. Same attributions either way.

Run: .venv/bin/python benchmarks/masked_lm_head.py [--repeats N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common  # noqa: E402

from explain import AnalysisRequest, TargetSpec, analyze, load_model  # noqa: E402
from explain.models import LoadedModel  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per way, best kept (default 3)")
    args = parser.parse_args()
    import torch
    from transformers import BertConfig, BertForMaskedLM

    tok = common.tokenizer()
    header = common.machine_header()
    with tempfile.TemporaryDirectory(prefix="bert-base-mlm-") as folder:
        torch.manual_seed(common.SEED)
        BertForMaskedLM(BertConfig(vocab_size=tok.vocab_size)).save_pretrained(folder)
        tok.save_pretrained(folder)
        loaded = load_model(folder)
        text = common.text_of_tokens(tok, common.N_TOKENS).replace("restaurant", tok.mask_token, 1)
        request = AnalysisRequest(text, model=folder, target=TargetSpec("masked_token", label="good"), n_steps=50)
        sliced_s, sliced = common.best_time(lambda: analyze(request, loaded), args.repeats)
        with mock.patch.object(LoadedModel, "masked_lm_head", property(lambda self: None)):
            full_s, full = common.best_time(lambda: analyze(request, loaded), args.repeats)
    diff = float(np.abs(sliced.attribution.scores - full.attribution.scores).max())
    rows = [
        ["explain: encoder, then the MLM head at [MASK] only", f"{sliced_s:.2f}", f"{full_s / sliced_s:.2f}x",
         f"{sliced.attribution.delta:.1e}"],
        ["the whole model (every position projected)", f"{full_s:.2f}", "1.00x", f"{full.attribution.delta:.1e}"],
    ]
    print(f"## Masked-LM target: IG, bert-base size, {common.N_TOKENS} tokens, 50 steps (best of {args.repeats})\n")
    print(header + "\n")
    print(common.table(["way", "seconds", "speed-up", "delta"], rows))
    print(f"\nlargest difference between the two ways' token attributions: {diff:.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
