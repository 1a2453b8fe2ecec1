"""Command line: analyse a text and write JSON and/or a standalone HTML page.

    python -m explain "The film was good but too long." --model minilm --out a.json --html a.html
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from explain.analysis import (
    BASELINES,
    DEFAULT_INTEGRATION,
    DEFAULT_MAX_TOKENS,
    DEFAULT_STEPS,
    FIXED_INTEGRATION,
    MAX_STEPS,
    MIN_STEPS,
    Analysis,
    AnalysisRequest,
    TargetSpec,
    to_jsonable,
)
from explain.errors import ExplainError
from explain.heads.gating import ABLATION_MODES
from explain.methods import METHODS
from explain.methods.scoring import REMOVAL_MODES
from explain.models import BUILTIN_MODELS, DEFAULT_MODEL
from explain.targets import TARGET_KINDS

DEFAULT_TOP_WORDS = 10
IG = "integrated_gradients"


def top_words(value: str) -> int | None:
    """`--top`: a count of at least 1, or "all" (None)."""
    if value.strip().lower() == "all":
        return None
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1 or 'all', not '{value}'")
    return count


def build_parser() -> argparse.ArgumentParser:
    builtins = "; ".join(f"{k}: {v}" for k, v in BUILTIN_MODELS.items())
    p = argparse.ArgumentParser(
        prog="python -m explain",
        description="Explain how a BERT-family model reads a text: attention maps of every layer and head, "
        "and integrated-gradients attributions of one output to each token.",
    )
    p.add_argument("text", help="the text to analyse ('-' reads it from standard input)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"built-in name, local folder or Hugging Face Hub id (default {DEFAULT_MODEL}; {builtins})")
    p.add_argument("--target", choices=TARGET_KINDS,
                   help="what to explain (default: follows the model's head: class, masked_token or zero_shot)")
    p.add_argument("--label", default="",
                   help="which class / zero-shot label / masked-token candidate to explain (default: the top one)")
    p.add_argument("--labels", default="",
                   help="zero-shot labels, comma-separated (default: positive,negative)")
    p.add_argument("--prompts", default="",
                   help="zero-shot prompts, '|'-separated, one per label (default: 'This text is <label>.')")
    p.add_argument("--reference", default="", help="reference text for the similarity target")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"integrated gradients: at most this many model evaluations (adaptive integration) or this "
                   f"many steps (fixed), {MIN_STEPS}..{MAX_STEPS} (default {DEFAULT_STEPS})")
    p.add_argument("--integration", choices=(DEFAULT_INTEGRATION, FIXED_INTEGRATION), default=DEFAULT_INTEGRATION,
                   help="integrated gradients' quadrature: adaptive Simpson panels that stop once the attributions "
                   f"settle, or {FIXED_INTEGRATION} fixed steps (default {DEFAULT_INTEGRATION})")
    p.add_argument("--baseline", choices=BASELINES, default="pad",
                   help="reference input: tokens replaced by [PAD], [MASK] or zero vectors, all but [CLS], [SEP] and the "
                   "[MASK] of a masked-token target (default pad)")
    p.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                   help=f"truncate longer inputs to this many tokens, as the tokenizer truncates them "
                   f"(default {DEFAULT_MAX_TOKENS}, as in the dashboard; capped at the model's maximum)")
    p.add_argument("--top", type=top_words, default=DEFAULT_TOP_WORDS, metavar="K",
                   help=f"print the K words with the strongest attributions, strongest first "
                   f"(default {DEFAULT_TOP_WORDS}); 'all' prints every word in text order")
    methods = p.add_argument_group("attribution methods", "Which methods attribute the score, and their settings.")
    methods.add_argument("--method", action="append", metavar="NAME", choices=[*METHODS, "all"],
                         help=f"an attribution method (repeatable; the first is the one highlighted; 'all': every "
                         f"method that fits the target): {', '.join(METHODS)} (default {IG})")
    methods.add_argument("--faithfulness", action="store_true",
                         help="score every method for faithfulness: ERASER comprehensiveness and sufficiency over "
                         "the 1/5/10/20/50%% bins of words, a random-ranking floor, and agreement with "
                         "leave-one-word-out")
    methods.add_argument("--removal", choices=REMOVAL_MODES, default="replace",
                         help="how faithfulness takes words out: replaced by the baseline token, or removed "
                         "(default replace)")
    for method in METHODS.values():
        for spec in method.settings_type.specs():
            if method.name == IG:
                continue  # --steps and --integration are integrated gradients' settings; precision stays fp32
            methods.add_argument(f"--{method.name}-{spec.name}".replace("_", "-"), dest=f"setting:{method.name}.{spec.name}",
                                 metavar=spec.name.upper(), help=f"{method.title}: {spec.help} (default {spec.default})")
    heads = p.add_argument_group("heads", "Knock heads out, and rank them.")
    heads.add_argument("--ablate", metavar="L:H[,L:H...]",
                       help="analyse with these heads removed ('L:*' removes layer L's every head); the JSON holds "
                       "them under 'ablated_heads'")
    heads.add_argument("--ablate-mode", choices=ABLATION_MODES, default="zero",
                       help="a removed head's output: zero, or its mean over the text (default zero)")
    heads.add_argument("--head-importance", action="store_true",
                       help="rank every head: gradient importance (Michel et al. 2019), the score change when it "
                       "alone is removed, and confidence (Voita et al. 2019); the JSON holds the maps under "
                       "'head_importance'")
    p.add_argument("--out", type=Path, help="write the analysis as JSON here")
    p.add_argument("--html", type=Path, help="write a standalone HTML page (works offline) here")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def request_from_args(args: argparse.Namespace) -> AnalysisRequest:
    text = sys.stdin.read() if args.text == "-" else args.text
    target = None
    if args.target or args.label or args.labels or args.prompts or args.reference:
        # An empty kind means the model's default target, with the given label.
        kind = args.target or ("similarity" if args.reference else "zero_shot" if (args.labels or args.prompts) else "")
        labels = tuple(s.strip() for s in args.labels.split(",") if s.strip())
        prompts = tuple(s.strip() for s in args.prompts.split("|") if s.strip())
        target = TargetSpec(kind=kind, label=args.label, labels=labels, prompts=prompts, reference=args.reference)
    names = chosen_methods(args)
    settings = tuple(sorted((key.split(":", 1)[1], str(value)) for key, value in vars(args).items()
                            if key.startswith("setting:") and value is not None))
    return AnalysisRequest(text=text, model=args.model, target=target, n_steps=args.steps,
                           baseline=args.baseline, max_tokens=args.max_tokens, integration=args.integration,
                           method=names[0] if names and names[0] != "all" else IG, method_settings=settings)


def chosen_methods(args: argparse.Namespace) -> list[str]:
    """The --method names in order, without repeats ("all" stays a word; the model decides what it means)."""
    return list(dict.fromkeys(args.method or [IG]))


def importance_summary(importance) -> str:
    """The five most important heads by each map, and how far the maps agree."""
    lines = []
    for name in importance.map_names:
        values = np.abs(np.asarray(importance.map(name), dtype=np.float64))
        order = np.argsort(-values, axis=None, kind="stable")[:5]
        heads = ", ".join(f"{i // values.shape[1]}:{i % values.shape[1]} ({values.flat[i]:.3g})" for i in order)
        lines.append(f"most important heads by {name.replace('_', ' ')}: {heads}")
    names = importance.map_names
    rho = importance.rank_correlation
    pairs = [f"{names[i]}~{names[j]} {rho[i, j]:.2f}" for i in range(len(names)) for j in range(i + 1, len(names))]
    lines.append("rank correlation of the maps (Spearman): " + ", ".join(pairs))
    return "\n".join(lines)


def methods_table(result: Analysis) -> str:
    """One row per method: seconds, faithfulness (when measured) and its three strongest words."""
    rows = [("method", "seconds", "compr.", "suff.", "LOO rho", "strongest words")]
    words = result.words.words

    def number(value: float) -> str:
        return "-" if value != value else f"{value:.3g}"

    for name, r in result.methods.items():
        order = np.argsort(-np.abs(np.asarray(r.word_scores, dtype=np.float64)), kind="stable")[:3]
        rows.append((METHODS[name].title if name in METHODS else name, number(r.attribution.seconds),
                     number(r.comprehensiveness), number(r.sufficiency), number(r.loo_spearman),
                     ", ".join(f"{words[i]} {float(r.word_scores[i]):+.2g}" for i in order)))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    f = result.faithfulness
    if f is not None:
        lines.append(
            f"random rankings ({f.n_random}): comprehensiveness {f.random_comprehensiveness:.3g} "
            f"± {f.random_comprehensiveness_std:.2g}, sufficiency {f.random_sufficiency:.3g} "
            f"± {f.random_sufficiency_std:.2g}; words {f.removal}d; bins "
            + ", ".join(f"{b:g}" for b in f.bins) + f"; {f.n_variants} inputs scored"
        )
    return "\n".join(lines)


def ig_steps_text(result: Analysis) -> str:
    """How many model evaluations integrated gradients made, and under which rule."""
    a, request = result.attribution, result.request
    if request.integration == FIXED_INTEGRATION or a.tolerance is None:
        return f"{a.n_steps} steps"
    return f"{a.n_steps} model evaluations ({request.integration.replace('_', ' ')}, at most {request.n_steps})"


def summary(result: Analysis, top: int | None = DEFAULT_TOP_WORDS) -> str:
    """What the CLI prints: the model, the explained score, the notices and the `top` strongest words (None: all)."""
    a = result.attribution
    lines = [
        f"model: {result.model.spec} ({result.model.head}, {result.model.n_layers} layers x {result.model.n_heads} heads)",
        f"explained: {result.prediction.description} = {a.score_input:.4g} (baseline {a.score_baseline:.4g})",
        (f"integrated gradients: {ig_steps_text(result)}, {a.baseline} baseline, convergence delta {a.delta:+.2e}"
         if a.method == IG else f"{METHODS[a.method].title if a.method in METHODS else a.method}: "
         f"{a.baseline} baseline"),
    ]
    lines += [f"note: {notice}" for notice in result.notices]
    words, scores = result.words.words, np.asarray(result.word_scores, dtype=np.float64)
    order = list(range(len(words)))
    if top is not None and top < len(words):
        order = sorted(order, key=lambda i: -abs(scores[i]))[:top]
        lines.append(f"the {top} words with the strongest attributions (of {len(words)}; --top all lists every word):")
    else:
        lines.append("word attributions:")
    width = max((len(words[i]) for i in order), default=4)
    lines += [f"  {words[i]:<{width}}  {scores[i]:+.3g}" for i in order]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from explain.models import configure_threads, load_model
    from explain.pipeline import analyze, supported_methods, validate, with_methods

    configure_threads()
    try:
        request = validate(request_from_args(args))
        loaded = load_model(request.model)
        ablated = None
        if args.ablate:
            from explain.heads import HeadSet, analyze_ablated

            ablated = HeadSet.parse(args.ablate, loaded.info.n_layers, loaded.info.n_heads)
            result = analyze_ablated(request, loaded, ablated, args.ablate_mode)
        else:
            result = analyze(request, loaded)
        names = chosen_methods(args)
        if "all" in names:
            names = [n for n in names if n != "all"] + supported_methods(loaded, request)
        names = list(dict.fromkeys(names))
        if len(names) > 1 or args.faithfulness:
            result = with_methods(result, loaded, names, faithfulness=args.faithfulness, removal=args.removal)
        importance = None
        if args.head_importance:
            from explain.heads import head_importance, prepare_inputs

            inputs = prepare_inputs(loaded, request.text, result.request.target, request.max_tokens)
            importance = head_importance(loaded, inputs, args.ablate_mode)
        if args.out:
            data = to_jsonable(result)
            if ablated is not None:
                data["ablated_heads"], data["ablation_mode"] = ablated.format(), args.ablate_mode
            if importance is not None:
                data["head_importance"] = importance.to_dict()
            args.out.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        if args.html:
            from explain.report import standalone_html

            args.html.write_text(standalone_html(result), encoding="utf-8")
    except ExplainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: could not write the output file: {exc.strerror or exc}.", file=sys.stderr)
        return 2
    if not args.quiet:
        print(summary(result, args.top))
        if len(result.methods) > 1 or result.faithfulness is not None:
            print(methods_table(result))
        if ablated is not None:
            print(f"heads removed ({args.ablate_mode}): {ablated.format()}")
        if importance is not None:
            print(importance_summary(importance))
        for path in (args.out, args.html):
            if path:
                print(f"wrote {path}")
    return 0
