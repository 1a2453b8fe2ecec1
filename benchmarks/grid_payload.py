"""The all-heads attention grid: explain's Plotly payload vs bertviz's model view, same input.

explain: `len(explain.viz.attention.attention_grid(weights).to_json())`, the figure the dashboard sends.
bertviz 1.4.1: `model_view(attention, tokens, html_action="return").data`, the HTML it puts in a
notebook (its attention data is inlined there as JSON). Sizes raw and gzipped (what a server that
compresses would send). Inputs: bert-base size (random weights, 12 x 12 heads) and the embedded
pretrained all-MiniLM-L6-v2 (6 x 12 heads), both at 128 tokens.

Run: .venv/bin/python benchmarks/grid_payload.py
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from explain.models import load_model  # noqa: E402
from explain.viz.attention import attention_grid  # noqa: E402


def attention_of(model, tok, text):
    enc = tok(text, return_tensors="pt").to(common.device())
    with torch.inference_mode():
        out = model(**enc, output_attentions=True)
    attentions = [a.float().cpu() for a in out.attentions]
    tokens = tok.convert_ids_to_tokens(enc["input_ids"][0].tolist())
    return attentions, tokens


def sizes(payload: str) -> tuple[int, int]:
    raw = payload.encode("utf-8")
    return len(raw), len(gzip.compress(raw, 6))


def mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


def main() -> str:
    common.setup()
    try:
        from bertviz import model_view
    except ImportError as exc:
        model_view = None
        why = f"bertviz is not installed ({exc}); install it with `{common.INSTALL_PEERS}`"
    tok = common.tokenizer()
    text = common.text_of_tokens(tok)
    minilm = load_model("minilm")
    inputs = [
        ("bert-base size, random (12 x 12 heads)", common.bert_base("eager"), tok),
        ("all-MiniLM-L6-v2, pretrained (6 x 12 heads)", minilm.model, minilm.tokenizer),
    ]
    rows = []
    for name, model, tk in inputs:
        attentions, tokens = attention_of(model, tk, text)
        weights = torch.stack([a[0] for a in attentions]).numpy().astype(np.float32)
        ours_raw, ours_gz = sizes(attention_grid(weights).to_json())
        if model_view is not None:
            html = model_view(attentions, tokens, html_action="return").data
            peer_raw, peer_gz = sizes(html)
            rows.append([name, len(tokens), mb(peer_raw), mb(peer_gz), mb(ours_raw), mb(ours_gz),
                         f"{peer_raw / ours_raw:.0f}x", f"{peer_gz / ours_gz:.0f}x"])
        else:
            rows.append([name, len(tokens), "-", "-", mb(ours_raw), mb(ours_gz), "-", "-"])
    out = ["### All-heads grid payload vs bertviz model view, 128 tokens\n"]
    if model_view is None:
        out.append(f"**bertviz skipped:** {why}\n")
    out.append(common.table(
        ["input", "tokens", "bertviz HTML", "bertviz gzip", "explain grid JSON", "explain gzip",
         "bertviz / explain", "gzip ratio"],
        rows,
    ))
    out.append("\nbertviz ships every full 128 x 128 map as JSON numbers (the browser draws them); explain's grid "
               "sends each head downsampled to at most 32 x 32 cells as uint8 in one base64 mosaic (the single-head "
               "heatmap shows one map at full resolution).")
    return "\n".join(out)


if __name__ == "__main__":
    print(common.machine_header())
    print()
    print(main())
