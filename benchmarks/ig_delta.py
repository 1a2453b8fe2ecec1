"""How often the default integrated gradients stops with |delta| above 5% of the score change, before and after
adaptive integration also checked the delta (issue 21 B1), and the model evaluations that check costs.

For the 20 benchmark sentences of ig_default.py and 20 odd texts (other scripts, emoji, right-to-left, symbols),
on the embedded pretrained all-MiniLM-L6-v2 with its default zero-shot target and the [PAD] baseline, the
default rule (`DEFAULT_INTEGRATION`, cap `DEFAULT_STEPS`) runs twice:

- before: the token test alone (`delta_tolerance=None`, what analyses made before the check ran, and what
  requests, links and stored analyses without the setting still run);
- after: the default `DEFAULT_DELTA_TOLERANCE` (refine until |delta| <= 5% of the score change, or the cap).

Per set: the share of runs above 5%, the mean and largest evaluations, the runs stopped by the cap, and the
seconds (one run each, no repeats). Then every text that was above 5% before.

Run: .venv/bin/python benchmarks/ig_delta.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402
import numpy as np  # noqa: E402
from ig_default import SENTENCES, prepared  # noqa: E402

from explain.models import load_model  # noqa: E402
from explain.records import DEFAULT_DELTA_TOLERANCE, DEFAULT_INTEGRATION, DEFAULT_STEPS  # noqa: E402

ODD_TEXTS = [
    "مرحبا بالعالم هذا نص عربي",
    "זה היה סרט נהדר אבל ארוך מדי",
    "این فیلم خوب بود اما خیلی طولانی بود",
    "I watched فيلم جميل yesterday and it was great",
    "这部电影很好，但是太长了。",
    "この映画は良かったが、長すぎた。",
    "영화는 좋았지만 너무 길었다.",
    "Фильм был хорош, но слишком длинный.",
    "Η ταινία ήταν καλή αλλά πολύ μεγάλη.",
    "फिल्म अच्छी थी लेकिन बहुत लंबी थी।",
    "หนังดีแต่ยาวเกินไป",
    "😀😀😀 👍🎉",
    "The film was 🔥🔥 but way too long 😴",
    "👨‍👩‍👧‍👦 loved it ❤️",
    "Ṫhë f̈ïl̈m̈ ẅäs̈ g̈öö̈d̈",
    "∀x ∈ ℝ: x² ≥ 0 ⇒ √(x²) = |x|",
    "def f(x): return x ** 2  # great function!!!",
    "Check https://example.com/path?q=1&r=2 — it's awful",
    "THIS IS THE WORST THING I HAVE EVER SEEN!!!!!!",
    "sooooooo goooood",
]
RULES = {"before (token test only)": None, f"after (delta within {DEFAULT_DELTA_TOLERANCE:.0%})": DEFAULT_DELTA_TOLERANCE}


def run_set(loaded, texts: list[str]) -> list[dict]:
    """Each text under both rules: evaluations, converged, |delta| / |change|, seconds."""
    rows = []
    for text in texts:
        run, _, n_tokens = prepared(loaded, text)
        row = {"text": text, "tokens": n_tokens}
        for name, delta_tolerance in RULES.items():
            start = time.perf_counter()
            a = run(n_steps=DEFAULT_STEPS, method=DEFAULT_INTEGRATION, delta_tolerance=delta_tolerance)
            row[name] = dict(evals=a.n_steps, converged=a.converged, seconds=time.perf_counter() - start,
                             rel=abs(a.delta) / max(abs(a.score_input - a.score_baseline), 1e-30))
        rows.append(row)
        print(f"  {len(rows)}/{len(texts)} done", file=sys.stderr, flush=True)
    return rows


def summary(set_name: str, rows: list[dict]) -> list[list[str]]:
    out = []
    for name in RULES:
        rs = [r[name] for r in rows]
        above = sum(r["rel"] > DEFAULT_DELTA_TOLERANCE for r in rs)
        out.append([set_name, name, f"{above} of {len(rs)} ({above / len(rs):.0%})",
                    f"{np.mean([r['evals'] for r in rs]):.1f}", str(max(r["evals"] for r in rs)),
                    str(sum(r["converged"] is False for r in rs)), f"{np.sum([r['seconds'] for r in rs]):.1f}",
                    f"{max(r['rel'] for r in rs):.1%}"])
    return out


def main() -> str:
    common.setup()
    loaded = load_model("minilm")
    prepared(loaded, SENTENCES[0])[0](n_steps=2, method="gauss_legendre")  # warm-up
    sets = {"20 benchmark sentences": run_set(loaded, SENTENCES), "20 odd texts": run_set(loaded, ODD_TEXTS)}
    table = [row for set_name, rows in sets.items() for row in summary(set_name, rows)]
    before, after = RULES
    flagged = [[r["text"][:60], str(r["tokens"]), f"{r[before]['evals']} / {r[before]['rel']:.1%}",
                f"{r[after]['evals']}{'' if r[after]['converged'] else '*'} / {r[after]['rel']:.1%}"]
               for rows in sets.values() for r in rows if r[before]["rel"] > DEFAULT_DELTA_TOLERANCE]
    return "\n".join([
        f"### Default integrated gradients (minilm, cap {DEFAULT_STEPS}): runs with abs delta above "
        f"{DEFAULT_DELTA_TOLERANCE:.0%} of abs score change\n",
        common.table(["texts", "rule", "above 5%", "mean evaluations", "max evaluations", "stopped by the cap",
                      "seconds", "largest abs delta / abs change"], table),
        f"\nTexts above {DEFAULT_DELTA_TOLERANCE:.0%} before: evaluations / abs delta / abs change "
        "(* = stopped by the cap).\n",
        common.table(["text", "tokens", before, after], flagged) if flagged else "(none)",
    ])


if __name__ == "__main__":
    print(common.machine_header())
    print()
    print(main())
