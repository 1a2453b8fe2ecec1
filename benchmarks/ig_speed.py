"""Integrated gradients: explain vs transformers-interpret, same model, text and target, in one run.

Headline case: a bert-base-size BertForSequenceClassification (random BertConfig(), 2 labels: the
compute does not depend on the weights) at 128 tokens, CPU threads as the app sets them. Peer:
transformers-interpret 0.10.0 SequenceClassificationExplainer with its defaults (Captum
LayerIntegratedGradients on the word embeddings, 50 Gauss-Legendre steps, all in one batch) on the
model as `from_pretrained` gives it (parameters require grad, default sdpa attention). explain runs on
the same weights as `explain.load_model` leaves them (eager attention, parameters frozen).

Equal accuracy is checked two ways:
- the convergence delta, computed the same way for every run: sum of the token attributions minus
  (f(input) - f(baseline)), with f evaluated by `explain.methods.baselines.endpoint_scores` on the run's own
  model copy, at the points where the word-embedding path really starts and ends (the peer's own
  Captum `delta` is printed too, but Captum computes it at a baseline whose position ids and token
  types are all 0, which is not where the path starts);
- the largest token error against a float64 reference (Gauss-Legendre, float64 model, an
  independent loop).

A second, harder case (not in --quick): the embedded pretrained all-MiniLM-L6-v2 encoder with a random
2-label head, whose path integrand is far less smooth than a random bert-base's.

Run: .venv/bin/python benchmarks/ig_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from explain.inputs import tokenize  # noqa: E402
from explain.methods.baselines import baseline_embeddings, endpoint_scores
from explain.methods.quadrature import SIMPSON_TOLERANCE, _Path, gauss_legendre, integrated_gradients, rounding_floor
from explain.records import TargetSpec  # noqa: E402
from explain.targets import resolve_target  # noqa: E402
from explain.words import word_sums, words_for_tokens  # noqa: E402

BF16_TOLERANCE = 1e-2
PEER = "transformers-interpret 0.10.0"


@dataclass
class Case:
    name: str
    build: object  # (attn, state, frozen) -> model
    cap: int  # explain's step cap (adaptive levels up to it)
    reference_points: int  # float64 Gauss-Legendre reference; 0 = none
    extra_rows: bool  # peer on explain's model, explain fixed 50 steps


def minilm_classifier(attn: str = "eager", state: dict | None = None, frozen: bool = True):
    """The embedded pretrained all-MiniLM-L6-v2 encoder with a seeded random 2-label head."""
    from transformers import BertForSequenceClassification

    torch.manual_seed(common.SEED)
    kwargs = {} if attn == "sdpa" else {"attn_implementation": attn}
    model = BertForSequenceClassification.from_pretrained(
        str(common.embedded_model_path()), num_labels=2, local_files_only=True, use_safetensors=True, **kwargs
    )
    if state is not None:
        model.load_state_dict(state)
    model.to(common.device()).eval()
    for p in model.parameters():
        p.requires_grad_(not frozen)
    return model


def import_peer():
    """transformers-interpret, or None with the reason when it cannot be imported."""
    try:
        import transformers_interpret
    except ImportError as exc:
        return None, f"transformers-interpret is not installed ({exc}); install it with `{common.INSTALL_PEERS}`"
    except Exception as exc:  # noqa: BLE001 - a peer broken by transformers 5 is reported, not fatal
        return None, f"transformers-interpret does not import here: {type(exc).__name__}: {exc}"
    return transformers_interpret, ""


def reference_ig(model, ids, ref_ids, types, label: int, n_points: int) -> np.ndarray:
    """Token attributions in float64 (Gauss-Legendre): an independent loop, not explain's code."""
    m = copy.deepcopy(model).double()
    emb = m.get_input_embeddings()
    with torch.no_grad():
        x, b = emb(ids), emb(ref_ids)
    mask = torch.ones_like(ids)
    nodes, weights = gauss_legendre(n_points)
    total = torch.zeros(ids.shape[1], dtype=torch.float64, device=ids.device)
    for alpha, w in zip(nodes, weights):
        point = (b + float(alpha) * (x - b)).requires_grad_(True)
        logits = m(inputs_embeds=point, attention_mask=mask, token_type_ids=types).logits
        prob = torch.softmax(logits, -1)[0, label]
        (grad,) = torch.autograd.grad(prob, point)
        total += w * ((x - b) * grad).sum(-1)[0]
    del m
    return total.cpu().numpy()


def ig_flops(target, inputs, baselines, mask, types, positions, n_points: int) -> float:
    """Matmul FLOPs (torch.utils.flop_counter) of one explain IG run of `n_points` evaluations.

    Counted on one batch of 2 points (forward + input backward) and on the float32 endpoint pass.
    """
    from torch.utils.flop_counter import FlopCounterMode

    path = _Path(target, inputs, baselines, (mask, types, positions), "fp32", None)
    with FlopCounterMode(display=False) as counter:
        path.contributions(np.array([0.25, 0.75]))
    per_point = counter.get_total_flops() / 2
    with FlopCounterMode(display=False) as counter:
        endpoint_scores(target, inputs, baselines, mask, types, positions)
    return per_point * n_points + counter.get_total_flops()


def word_scores(text, tokens, scores) -> np.ndarray:
    words = words_for_tokens(text, tokens.offsets, tokens.special)
    return word_sums(scores, words.token_word, len(words))


def run_peer(ti, model, tok, text, label, ids, mask, types, spec) -> dict:
    explainer = ti.SequenceClassificationExplainer(model, tok)
    start = time.perf_counter()
    explainer(text, index=label)
    seconds = time.perf_counter() - start
    lig = explainer.attributions
    assert torch.equal(explainer.input_ids.cpu(), ids.cpu()), "the peer tokenised the text differently"
    assert torch.equal(lig.token_type_ids.cpu(), types.cpu())
    scores = lig._attributions.sum(-1)[0].detach().double().cpu().numpy()
    target = resolve_target(common.loaded(model, tok), spec, ids)
    emb = model.get_input_embeddings()
    with torch.no_grad():
        x, b = emb(ids), emb(explainer.ref_input_ids)
    f_x, f_b = endpoint_scores(target, x, b, mask, types)
    return dict(
        seconds=seconds, steps=explainer.n_steps, scores=scores, change=f_x - f_b, score_input=f_x,
        score_baseline=f_b, delta=float(scores.sum() - (f_x - f_b)), own_delta=float(lig.delta.reshape(-1)[0]),
        ref_ids=explainer.ref_input_ids,
    )


def run_case(case: Case, ti, why: str, tok, text: str, args) -> tuple[list[str], dict]:
    out: list[str] = []
    dev = common.device()
    ours_model = case.build("eager", None, True)
    state = ours_model.state_dict()
    loaded_o = common.loaded(ours_model, tok)
    inputs, tokens = tokenize(loaded_o, text, common.N_TOKENS)
    ids, mask, special = inputs["input_ids"], inputs["attention_mask"], inputs["special"]
    assert ids.shape[1] == common.N_TOKENS
    with torch.inference_mode():
        label = int(ours_model(input_ids=ids, attention_mask=mask).logits.argmax())
    spec = TargetSpec("class", label=str(label))
    target_o = resolve_target(loaded_o, spec, ids)
    # transformers-interpret gives [SEP] token type 1 (0 up to its sep_idx = the number of text tokens,
    # 1 after); explain is given the same token types so that both explain the very same function.
    types = (torch.arange(ids.shape[1], device=dev) > ids.shape[1] - 2).long().unsqueeze(0)
    results: dict[str, dict] = {}

    peer_runs = [(f"{PEER} (as documented)", False)]
    if case.extra_rows:
        peer_runs.append((f"{PEER} on explain's frozen eager model", True))
    if ti is not None:
        for name, on_ours in peer_runs:
            model_p = ours_model if on_ours else case.build("sdpa", state, False)
            results[name] = run_peer(ti, model_p, tok, text, label, ids, mask, types, spec)
            del model_p
    else:
        out.append(f"**Peer skipped:** {why}\n")
    peer = results.get(peer_runs[0][0])

    base_o = baseline_embeddings(target_o, ids, special, "pad")
    with torch.no_grad():
        x_o = ours_model.get_input_embeddings()(ids)
        if peer is not None:
            assert torch.equal(ours_model.get_input_embeddings()(peer["ref_ids"]), base_o), "different baselines"

    peer_rel = abs(peer["delta"]) / max(abs(peer["change"]), 1e-30) if peer else 1e-4
    tolerance = min(1.0, max(peer_rel, 1e-12))

    def run(**kw):
        return integrated_gradients(target_o, ids, mask, special, token_type_ids=types, baseline="pad", **kw)

    run(n_steps=2, tolerance=1.0)  # warm-up (allocations, kernels)
    runs = [("explain, adaptive fp32", dict(tolerance=tolerance, n_steps=case.cap), args.repeats)]
    if case.extra_rows:
        runs.append(("explain, fixed 50 steps fp32 (the default, Captum)", dict(n_steps=50), 1))
    runs.append((f"explain, adaptive Simpson fp32 (tolerance {SIMPSON_TOLERANCE:g}, candidate default)",
                 dict(method="adaptive_simpson", n_steps=min(case.cap, 50)), args.repeats))
    runs.append((f"explain, adaptive bf16 (tolerance {BF16_TOLERANCE:g})",
                 dict(tolerance=BF16_TOLERANCE, n_steps=case.cap, precision="bf16"), args.repeats))
    for name, kw, repeats in runs:
        seconds, a = common.best_time(lambda kw=kw: run(**kw), repeats)
        results[name] = dict(
            seconds=seconds, steps=a.n_steps, scores=a.scores.astype(np.float64), delta=a.delta,
            change=a.score_input - a.score_baseline, score_input=a.score_input, score_baseline=a.score_baseline,
            converged=a.converged,
        )
    adaptive = results[runs[0][0]]
    bf16 = results[runs[-1][0]]

    reference = None
    if case.reference_points and not args.quick:
        ref_ids = torch.where(special, ids, torch.full_like(ids, tok.pad_token_id))
        reference = reference_ig(ours_model, ids, ref_ids, types, label, case.reference_points)

    fp32_words = word_scores(text, tokens, adaptive["scores"])
    base_seconds = peer["seconds"] if peer else None
    rows = []
    for name, r in results.items():
        rel = abs(r["delta"]) / max(abs(r["change"]), 1e-30)
        err = "-" if reference is None else f"{np.abs(r['scores'] - reference).max() / np.abs(reference).max():.2e}"
        rho = spearmanr(word_scores(text, tokens, r["scores"]), fp32_words)[0]
        speed = "-" if base_seconds is None else f"{base_seconds / r['seconds']:.1f}x"
        conv = {None: "", True: ", converged", False: ", hit the step cap"}[r.get("converged")]
        rows.append([name, f"{r['steps']}{conv}", f"{r['seconds']:.2f}", speed, f"{abs(r['delta']):.2e}",
                     f"{rel:.2e}", err, f"{rho:.4f}"])
    out.append(f"### Integrated gradients: {case.name}, {common.N_TOKENS} tokens\n")
    out.append(f"Target: P(LABEL_{label}); f(input) - f(baseline) = {adaptive['change']:+.5f}; explain's adaptive "
               f"tolerance = the peer's relative delta = {tolerance:.2e}, step cap {case.cap}.\n")
    ref_head = f"max token error vs float64 (GL-{case.reference_points})" if reference is not None else \
        "max token error vs float64"
    out.append(common.table(
        ["run", "gradient evaluations", "time (s)", "speed-up vs peer", "abs delta", "abs delta / abs change",
         ref_head, "Spearman of word scores vs explain adaptive fp32"],
        rows,
    ))
    floor = rounding_floor(adaptive["score_input"], adaptive["score_baseline"])
    out.append(f"\nFloat32 rounding floor of the delta (2 units in the last place of the score): {floor:.2e}.")
    if peer:
        ok = abs(adaptive["delta"]) <= max(abs(peer["delta"]), floor)
        out.append(f"Equal accuracy, |explain adaptive delta| <= max(|peer delta|, rounding floor): "
                   f"{'yes' if ok else 'NO'} ({abs(adaptive['delta']):.2e} vs {abs(peer['delta']):.2e}).")
        out.append(f"The peer's own Captum delta (baseline with position ids and token types 0): "
                   f"{peer['own_delta']:+.2e}; the completeness gap of its path, computed like explain's: "
                   f"{peer['delta']:+.2e}.")
        agree = np.abs(adaptive["scores"] - peer["scores"]).max() / np.abs(peer["scores"]).max()
        out.append(f"explain adaptive fp32 vs peer token attributions: max difference {agree:.2e} of the largest.")
    flops = ig_flops(target_o, x_o, base_o, mask, types, inputs["position_ids"], adaptive["steps"])
    summary = dict(flops=flops, adaptive=adaptive, bf16=bf16, achieved=flops / adaptive["seconds"] / 1e9)
    return out, summary


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="headline rows only: no peer on explain's model, "
                        "no fixed 50-step row, no float64 reference, no MiniLM case")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats of explain's runs (best is kept)")
    args = parser.parse_args(argv)
    common.setup()
    load_start = os.getloadavg()
    gflops32 = common.matmul_gflops(dtype=torch.float32)
    gflops16 = common.matmul_gflops(dtype=torch.bfloat16)
    tok = common.tokenizer()
    text = common.text_of_tokens(tok)
    ti, why = import_peer()

    cases = [Case("bert-base size, random weights", lambda a, s, f: common.bert_base(a, s, f), cap=50,
                  reference_points=16, extra_rows=not args.quick)]
    if not args.quick:
        cases.append(Case("pretrained all-MiniLM-L6-v2 encoder + random 2-label head (harder integrand)",
                          minilm_classifier, cap=129, reference_points=0, extra_rows=False))
    out: list[str] = []
    summaries = []
    for case in cases:
        lines, summary = run_case(case, ti, why, tok, text, args)
        out += lines + [""]
        summaries.append(summary)

    head = summaries[0]
    out.append("### Hardware limit (same run, bert-base case)\n")
    out.append(common.table(
        ["measure", "value"],
        [
            ["fp32 matmul 2048x2048", f"{gflops32:.0f} GFLOP/s"],
            ["bf16 matmul 2048x2048", f"{gflops16:.0f} GFLOP/s ({gflops16 / gflops32:.1f}x fp32)"],
            ["explain adaptive fp32 IG: matmul FLOPs (FlopCounterMode)",
             f"{head['flops'] / 1e9:.0f} GFLOP ({head['adaptive']['steps']} evaluations + endpoint pass)"],
            ["explain adaptive fp32 IG: achieved rate",
             f"{head['achieved']:.0f} GFLOP/s = {head['achieved'] / gflops32:.2f} of the fp32 matmul rate"],
            ["explain adaptive bf16 IG: speed-up over adaptive fp32",
             f"{head['adaptive']['seconds'] / head['bf16']['seconds']:.1f}x "
             f"({head['bf16']['steps']} vs {head['adaptive']['steps']} evaluations)"],
        ],
    ))
    load_end = os.getloadavg()
    out.append(f"\nLoad average (1 min) at start {load_start[0]:.2f}, at end {load_end[0]:.2f}: other work on this "
               "machine slows every row; rerun when it is idle for clean figures.")
    return "\n".join(out)


if __name__ == "__main__":
    print(common.machine_header())
    print()
    print(main())
