"""Command line: analyse a text and write JSON and/or a standalone HTML page.

    python -m explain "The film was good but too long." --model minilm --out a.json --html a.html
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from explain.analysis import (
    BASELINES,
    DEFAULT_MAX_TOKENS,
    DEFAULT_STEPS,
    MAX_STEPS,
    MIN_STEPS,
    Analysis,
    AnalysisRequest,
    TargetSpec,
)
from explain.errors import ExplainError
from explain.models import BUILTIN_MODELS, DEFAULT_MODEL
from explain.targets import TARGET_KINDS

DEFAULT_TOP_WORDS = 10


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
                   help=f"integration steps, {MIN_STEPS}..{MAX_STEPS} (default {DEFAULT_STEPS})")
    p.add_argument("--baseline", choices=BASELINES, default="pad",
                   help="reference input: tokens replaced by [PAD], [MASK] or zero vectors, all but [CLS], [SEP] and the "
                   "[MASK] of a masked-token target (default pad)")
    p.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS,
                   help=f"truncate longer inputs to this many tokens, as the tokenizer truncates them "
                   f"(default {DEFAULT_MAX_TOKENS}, as in the dashboard; capped at the model's maximum)")
    p.add_argument("--top", type=top_words, default=DEFAULT_TOP_WORDS, metavar="K",
                   help=f"print the K words with the strongest attributions, strongest first "
                   f"(default {DEFAULT_TOP_WORDS}); 'all' prints every word in text order")
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
    return AnalysisRequest(text=text, model=args.model, target=target, n_steps=args.steps,
                           baseline=args.baseline, max_tokens=args.max_tokens)


def summary(result: Analysis, top: int | None = DEFAULT_TOP_WORDS) -> str:
    """What the CLI prints: the model, the explained score, the notices and the `top` strongest words (None: all)."""
    a = result.attribution
    lines = [
        f"model: {result.model.spec} ({result.model.head}, {result.model.n_layers} layers x {result.model.n_heads} heads)",
        f"explained: {result.prediction.description} = {a.score_input:.4g} (baseline {a.score_baseline:.4g})",
        f"integrated gradients: {a.n_steps} steps, {a.baseline} baseline, convergence delta {a.delta:+.2e}",
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
    from explain.pipeline import analyze, validate

    configure_threads()
    try:
        request = validate(request_from_args(args))
        result = analyze(request, load_model(request.model))
        if args.out:
            args.out.write_text(result.to_json(), encoding="utf-8")
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
        for path in (args.out, args.html):
            if path:
                print(f"wrote {path}")
    return 0
