"""Integrated gradients' default rule against the others: evaluations, seconds, word-ranking accuracy (issue 11).

For 20 varied sentences on the embedded pretrained all-MiniLM-L6-v2 (its default zero-shot target,
the [PAD] baseline, as `explain.analyze` runs it), each rule below is compared with a 500-step
Gauss-Legendre float32 reference of the same sentence:

- fixed 50 Gauss-Legendre steps (Captum; the default before adaptive integration, still `integration=
  "gauss_legendre"`),
- nested Clenshaw-Curtis stopping on |delta| <= 1e-2 |change| (fast mode's rule, here in fp32, cap 50),
- the default: `DEFAULT_INTEGRATION` (locally adaptive Simpson panels stopping on the estimated error of
  the attribution vector, tolerance `SIMPSON_TOLERANCE`) capped at `DEFAULT_STEPS`, as a default
  `AnalysisRequest` runs it.

Per sentence: gradient evaluations, seconds (best of 2 runs), Spearman of the word scores against the
reference, and |delta| / |change|. Then the same rules (no reference: fixed 50 steps stands in) on the
minilm-random control (same sentences) and on a random bert-base-size classifier at 128 tokens (the
ig_speed.py case). Use --quick for the first 6 sentences and no bert-base case.

Run: .venv/bin/python benchmarks/ig_default.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from explain.inputs import tokenize  # noqa: E402
from explain.methods.quadrature import SIMPSON_TOLERANCE, integrated_gradients  # noqa: E402
from explain.models import load_model  # noqa: E402
from explain.records import DEFAULT_INTEGRATION, DEFAULT_STEPS, AnalysisRequest, TargetSpec  # noqa: E402
from explain.targets import choose_index, resolve_target, target_kind  # noqa: E402
from explain.words import word_sums, words_for_tokens  # noqa: E402

SENTENCES = [
    "The film was good but too long.",
    "I loved it.",
    "Not bad at all.",
    "The service was terrible, and the food arrived cold.",
    "This is not the worst movie I have ever seen, but it comes close.",
    "What a wonderful day!",
    "The hotel room was clean; however, the staff were rude and the breakfast was overpriced.",
    "I don't think I will ever come back here.",
    "Absolutely brilliant performance by the whole cast.",
    "The plot made no sense, the acting was wooden, and the ending dragged on for far too long.",
    "It's fine.",
    "Although the reviews were mixed, I found the book surprisingly moving and beautifully written.",
    "Never again.",
    "The new update broke everything: the app crashes on start, my settings are gone, and support does not "
    "answer.",
    "She smiled, but her eyes said otherwise.",
    "Cheap, fast, and surprisingly tasty - exactly what I wanted after a long shift at work.",
    "The weather in Paris was grey and rainy, yet we still had a great time walking along the river.",
    "He wasn't unhappy with the result, though he had hoped for more.",
    "Terrible!!! Worst purchase ever... do not buy.",
    "After three hours of waiting in a crowded room with no air conditioning, the doctor finally saw us for five "
    "minutes, which felt like a joke, although the nurse who helped us afterwards was kind, patient and genuinely "
    "helpful.",
]
REFERENCE_STEPS = 500
DEFAULT_REQUEST = AnalysisRequest("")
assert (DEFAULT_REQUEST.integration, DEFAULT_REQUEST.n_steps) == (DEFAULT_INTEGRATION, DEFAULT_STEPS)
RULES = {
    "fixed 50 (the former default)": dict(n_steps=50, method="gauss_legendre"),
    "Clenshaw-Curtis, tolerance 1e-2 (fast mode's rule, fp32)": dict(n_steps=50, tolerance=1e-2,
                                                                       method="clenshaw_curtis"),
    f"{DEFAULT_INTEGRATION.replace('_', ' ')}, tolerance {SIMPSON_TOLERANCE:g} (the default)": dict(
        n_steps=DEFAULT_REQUEST.n_steps, method=DEFAULT_REQUEST.integration),
}


def prepared(loaded, text: str, spec: TargetSpec | None = None, max_tokens: int = 128):
    """What `explain.analyze` hands to integrated_gradients for `text`, and the text's words."""
    kind = target_kind(loaded, spec)
    inputs, tokens = tokenize(loaded, text, max_tokens, keep_mask=kind == "masked_token")
    ids, mask, special = inputs["input_ids"], inputs["attention_mask"], inputs["special"]
    types, positions = inputs.get("token_type_ids"), inputs["position_ids"]
    target = resolve_target(loaded, spec, ids)
    extra = {} if types is None else {"token_type_ids": types}
    with torch.inference_mode():
        out = target.module(input_ids=ids, attention_mask=mask, position_ids=positions, **extra)
        target = choose_index(target, target.scores_from_output(out, mask)[0].float().cpu())
    words = words_for_tokens(text, tokens.offsets, tokens.special)

    def run(**kw):
        return integrated_gradients(target, ids, mask, special, token_type_ids=types, position_ids=positions,
                                    baseline="pad", **kw)

    return run, words, ids.shape[1]


def measure(run, words, reference_words, repeats: int = 2) -> dict:
    """Each rule on one text: evaluations, best seconds of `repeats`, word Spearman, relative delta.

    Without `reference_words` the first rule (fixed 50 steps) is the reference.
    """
    results = {}
    for name, kw in RULES.items():
        seconds, a = common.best_time(lambda kw=kw: run(**kw), repeats)
        w = word_sums(a.scores, words.token_word, len(words))
        ref = reference_words if reference_words is not None else results.get("ref")
        rho = 1.0 if len(w) < 2 else float(spearmanr(w, ref if ref is not None else w)[0])
        if reference_words is None and ref is None:
            results["ref"] = w
        results[name] = dict(evals=a.n_steps, seconds=seconds, rho=rho, converged=a.converged,
                             rel=abs(a.delta) / max(abs(a.score_input - a.score_baseline), 1e-30))
    results.pop("ref", None)
    return results


def sentence_table(model: str, texts: list[str], with_reference: bool) -> list[str]:
    loaded = load_model(model)
    rows, per_rule = [], {name: [] for name in RULES}
    prepared(loaded, texts[0])[0](n_steps=2, method="gauss_legendre")  # warm-up
    for i, text in enumerate(texts):
        run, words, n_tokens = prepared(loaded, text)
        reference = None
        if with_reference:
            a = run(n_steps=REFERENCE_STEPS, method="gauss_legendre")
            reference = word_sums(a.scores, words.token_word, len(words))
        results = measure(run, words, reference)
        row = [str(i + 1), str(n_tokens), str(len(words))]
        for name, r in results.items():
            per_rule[name].append(r)
            mark = "" if r["converged"] in (None, True) else "*"
            row.append(f"{r['evals']}{mark} / {r['seconds']:.2f} / {r['rho']:.4f} / {r['rel']:.1e}")
        rows.append(row)
        print(f"  {model} sentence {i + 1}/{len(texts)} done", file=sys.stderr, flush=True)
    summary = []
    for name, rs in per_rule.items():
        rho = np.array([r["rho"] for r in rs])
        summary.append([name, f"{np.mean([r['evals'] for r in rs]):.1f}", f"{max(r['evals'] for r in rs)}",
                        f"{np.sum([r['seconds'] for r in rs]):.2f}", f"{rho.min():.4f}", f"{rho.mean():.4f}",
                        f"{int((rho >= 0.99).sum())} of {len(rho)}",
                        f"{np.median([r['rel'] for r in rs]):.1e}", f"{max(r['rel'] for r in rs):.1e}"])
    against = f"GL-{REFERENCE_STEPS} fp32 reference" if with_reference else "fixed 50 steps"
    out = [f"### {model}: {len(texts)} sentences, word Spearman against {against}\n",
           common.table(["rule", "mean evaluations", "max evaluations", "total seconds", "min Spearman",
                         "mean Spearman", "Spearman >= 0.99", "median abs delta / abs change",
                         "max abs delta / abs change"], summary),
           "\nPer sentence: evaluations (* = stopped at the cap) / seconds / Spearman / abs delta / abs change.\n",
           common.table(["#", "tokens", "words"] + list(RULES), rows)]
    return out


def bert_base_case() -> list[str]:
    tok = common.tokenizer()
    text = common.text_of_tokens(tok)
    loaded = common.loaded(common.bert_base("eager", None, True), tok)
    run, words, n_tokens = prepared(loaded, text, TargetSpec("class", label="LABEL_1"), common.N_TOKENS)
    run(n_steps=2, method="gauss_legendre")
    results = measure(run, words, None)
    rows = [[name, str(r["evals"]), f"{r['seconds']:.2f}", f"{r['rho']:.4f}", f"{r['rel']:.1e}"]
            for name, r in results.items()]
    return [f"### bert-base size, random weights, {n_tokens} tokens (the ig_speed.py case)\n",
            common.table(["rule", "evaluations", "seconds", "word Spearman vs fixed 50", "abs delta / abs change"],
                         rows)]


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 sentences, no bert-base case")
    args = parser.parse_args(argv)
    common.setup()
    texts = SENTENCES[:6] if args.quick else SENTENCES
    load_start = Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "n/a"
    out = sentence_table("minilm", texts, with_reference=True)
    out += [""] + sentence_table("minilm-random", texts, with_reference=False)
    if not args.quick:
        out += [""] + bert_base_case()
    load_end = Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "n/a"
    out.append(f"\n/proc/loadavg at start: {load_start}; at end: {load_end}.")
    return "\n".join(out)


if __name__ == "__main__":
    print(common.machine_header())
    print()
    print(main())
