"""Do ferret's and this project's comprehensiveness and sufficiency agree on one identical explanation?

Issue 11 item 6: "whether the comprehensiveness and sufficiency values agree where the protocols match".
One explanation, this project's gradient x input token scores of the embedded all-MiniLM-L6-v2's
zero-shot top label, goes to both evaluators on the two texts of texts.json (32 and 128 tokens):

- ferret 0.4.2's `AOPC_Comprehensiveness_Evaluation` and `AOPC_Sufficiency_Evaluation` with their
  defaults (read from its source): tokens are the units, [CLS]/[SEP] are left out of the ranking; the
  rationale at decile p is the top int(p x tokens) tokens among those scored above 0 (`only_pos`); a
  rationale equal to the previous decile's is skipped; the tokens are deleted (`remove_tokens`), the
  ids decoded to text and that text tokenised again; the value is the mean over the rationales kept of
  P(target | text) - P(target | variant) (comprehensiveness: rationale deleted; sufficiency: only the
  rationale kept).
- this project's `explain.evaluation.faithfulness.evaluate` in three settings: its own protocol (words,
  ERASER bins 1/5/10/20/50%, words replaced by [PAD]); ferret's deciles with removal (words); and the
  matched protocol: every token its own unit, removal, and as bins exactly the rationale sizes ferret
  keeps for this explanation (`ferret_rationale_sizes`), so both rank the same tokens and average over
  the same rationales. What is left between the two is ferret's decode-and-retokenise step, which the
  script measures too: for each variant, whether tokenising the decoded text gives back the ids kept.

Two phases, two virtualenvs (ferret pins transformers < 5, captum < 0.8, numpy < 2):

    .venv/bin/python benchmarks/ferret/agreement.py          # ours, then runs ferret's venv on the same input
    .venv/bin/python benchmarks/ferret/agreement.py --ours   # only this project's phase

(`--ferret-python PATH` names ferret's interpreter when its venv is not benchmarks/ferret/.venv.)

The project phase writes agreement.json (tokens, scores, our values); the ferret phase
(`--ferret`, in benchmarks/ferret/.venv) adds ferret's values and prints both side by side.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TEXTS = HERE / "texts.json"
OUT = HERE / "agreement.json"
FERRET_PYTHON = HERE / ".venv" / "bin" / "python"
# ferret's default removal thresholds (parse_evaluator_args): np.arange(0.1, 1.1, 0.1), floats as numpy makes them.
FERRET_THRESHOLDS = tuple(0.1 + 0.1 * i for i in range(10))
MATCHED = "ours matched (tokens, ferret's rationales, remove)"


def ferret_rationale_sizes(inner_scores: list[float], thresholds: tuple[float, ...] = FERRET_THRESHOLDS) -> list[int]:
    """The sizes of the distinct rationales ferret's AOPC metrics average over, by its default rules.

    For each threshold p: k = int(p x tokens); nothing when k is 0; the top k tokens among those
    scored above 0; skipped when it is the same set as the previous rationale.
    """
    import numpy as np

    scores = np.asarray(inner_scores, dtype=np.float64)
    n, positive = len(scores), int((scores > 0).sum())
    sizes, last = [], None
    for p in thresholds:
        k = int(p * n)
        if not 0 < k <= n:
            continue
        size = min(k, positive)
        if size == 0 or size == last:
            continue
        sizes.append(size)
        last = size
    return sizes


def ours() -> dict[str, Any]:
    """This project's phase: the explanation and our three settings' values, written to agreement.json."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from explain import load_model
    from explain.evaluation.faithfulness import ERASER_BINS, FERRET_DECILES, evaluate
    from explain.methods import METHODS
    from explain.methods.scoring import word_scorer
    from explain.pipeline import attribution_context
    from explain.records import AnalysisRequest

    loaded = load_model("minilm")
    results: dict[str, Any] = {"load_average": Path("/proc/loadavg").read_text().strip(), "texts": {}}
    for name, text in json.loads(TEXTS.read_text()).items():
        context = attribution_context(AnalysisRequest(text, model="minilm", max_tokens=512), loaded)
        explanation = METHODS["gradient_x_input"].attribute(context)
        special = context.special[0].cpu().numpy()
        inner = np.flatnonzero(~special)
        token_scores = explanation.scores.astype(np.float64)
        tokens = loaded.tokenizer.convert_ids_to_tokens(context.input_ids[0].tolist())
        # Every token its own unit: the same context with token i (not special) as "word" i.
        token_word = np.full(context.n_tokens, -1, dtype=np.int64)
        token_word[inner] = np.arange(len(inner))
        per_token = replace(context, token_word=token_word, n_words=len(inner))
        sizes = ferret_rationale_sizes(token_scores[inner].tolist())
        matched_bins = tuple(k / len(inner) for k in sizes)
        settings = {
            "ours (words, ERASER bins, replace)": (explanation.word_scores, context, ERASER_BINS, "replace"),
            "ours (words, deciles, remove)": (explanation.word_scores, context, FERRET_DECILES, "remove"),
            MATCHED: (token_scores[inner], per_token, matched_bins, "remove"),
        }
        values = {}
        for label, (scores, ctx, bins, mode) in settings.items():
            report = evaluate({"gxi": np.asarray(scores)}, word_scorer(ctx, mode), bins=bins)
            f = report.methods["gxi"]
            values[label] = {"comprehensiveness": f.comprehensiveness, "sufficiency": f.sufficiency,
                             "bins": len(bins), "score_full": report.score_full,
                             "comprehensiveness_bins": f.comprehensiveness_bins.tolist(),
                             "sufficiency_bins": f.sufficiency_bins.tolist()}
        results["texts"][name] = {
            "text": text, "target": int(context.target.index), "tokens": tokens,
            "scores": token_scores.tolist(), "rationale_sizes": sizes, "ours": values,
        }
        print(f"{name}: {context.n_tokens} tokens, {int((token_scores[inner] > 0).sum())} scored above 0, "
              f"ferret's rationales {sizes}", flush=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    return results


def ferret_phase() -> None:
    """ferret's venv: its AOPC evaluators on the same token scores; the retokenisation check; the table."""
    sys.path.insert(0, str(HERE))
    import numpy as np
    from ferret.evaluators.faithfulness_measures import (
        AOPC_Comprehensiveness_Evaluation,
        AOPC_Sufficiency_Evaluation,
    )
    from ferret.evaluators.utils_from_soft_to_discrete import _get_id_tokens_percentage, parse_evaluator_args
    from ferret.explainers.explanation import Explanation
    from run_ferret import build_model, configure_threads

    configure_threads()
    model, tokenizer = build_model()
    comprehensiveness = AOPC_Comprehensiveness_Evaluation(model, tokenizer)
    sufficiency = AOPC_Sufficiency_Evaluation(model, tokenizer)
    results = json.loads(OUT.read_text())
    results["ferret_load_average"] = Path("/proc/loadavg").read_text().strip()
    _, _, removal_args, _ = parse_evaluator_args({})
    for entry in results["texts"].values():
        scores = np.array(entry["scores"])
        explanation = Explanation(entry["text"], entry["tokens"], scores, "gradient_x_input (explain)",
                                  entry["target"])
        target = entry["target"]
        entry["ferret"] = {
            "comprehensiveness": float(comprehensiveness.compute_evaluation(explanation, target).score),
            "sufficiency": float(sufficiency.compute_evaluation(explanation, target).score),
        }
        # ferret's own rationale sizes, and whether its decode-and-retokenise gives back the ids it kept
        ids = tokenizer(entry["text"])["input_ids"][1:-1]
        inner = scores[1:-1]
        sizes, last, changed, variants, per_bin = [], None, 0, 0, []
        full = float(comprehensiveness.helper._forward(entry["text"], output_hidden_states=False)[1]
                     .softmax(-1)[0, target])
        for v in removal_args["thresholds"]:
            top = _get_id_tokens_percentage(inner, v, True)
            if top is None or (last is not None and set(top) == last):
                continue
            last = set(top)
            sizes.append(len(top))
            row = {"size": len(top)}
            kept_sets = {"comprehensiveness": np.delete(np.array(ids), top),
                         "sufficiency": np.array(ids)[np.sort(top)]}
            for metric, kept in kept_sets.items():
                decoded = tokenizer.decode(kept.tolist())
                again = tokenizer(decoded)["input_ids"][1:-1]
                variants += 1
                changed += again != kept.tolist()
                logits = comprehensiveness.helper._forward(decoded, output_hidden_states=False)[1]
                row[metric] = full - float(logits.softmax(-1)[0, target])
                row[f"{metric}_retokenised_differently"] = again != kept.tolist()
            per_bin.append(row)
        entry["ferret_rationale_sizes"] = sizes
        entry["ferret_bins"] = per_bin
        entry["retokenised_differently"] = f"{changed} of {variants}"
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    for name, entry in results["texts"].items():
        same = entry["ferret_rationale_sizes"] == entry["rationale_sizes"]
        print(f"\n{name}: {len(entry['tokens'])} tokens; ferret's rationale sizes {entry['ferret_rationale_sizes']} "
              f"({'the same as' if same else 'NOT the same as'} ours); variants whose decoded text tokenises to other "
              f"ids: {entry['retokenised_differently']}")
        print(f"  {'protocol':52s} {'compr.':>9s} {'suff.':>9s}")
        f = entry["ferret"]
        print(f"  {'ferret 0.4.2 (tokens, deciles, only_pos, remove)':52s} {f['comprehensiveness']:9.4f} "
              f"{f['sufficiency']:9.4f}")
        for label, v in entry["ours"].items():
            print(f"  {label:52s} {v['comprehensiveness']:9.4f} {v['sufficiency']:9.4f}")
        matched = entry["ours"][MATCHED]
        print("  per rationale (size: ferret / ours matched; * = ferret's decoded text tokenises to other ids):")
        for i, row in enumerate(entry["ferret_bins"]):
            cells = []
            for metric in ("comprehensiveness", "sufficiency"):
                mark = "*" if row[f"{metric}_retokenised_differently"] else ""
                cells.append(f"{metric[:5]}. {row[metric]:+.4f}{mark} / {matched[f'{metric}_bins'][i]:+.4f}")
            print(f"    {row['size']:4d}: " + "   ".join(cells))
    print(f"\nload average: ours {results['load_average']}; ferret {results.get('ferret_load_average')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ours", action="store_true", help="only this project's phase")
    parser.add_argument("--ferret", action="store_true", help="only ferret's phase (run in ferret's venv)")
    parser.add_argument("--ferret-python", type=Path, default=FERRET_PYTHON, help="ferret's venv interpreter")
    args = parser.parse_args()
    if args.ferret:
        ferret_phase()
        return
    ours()
    if not args.ours:
        subprocess.run([str(args.ferret_python), str(Path(__file__).resolve()), "--ferret"], check=True)


if __name__ == "__main__":
    main()
