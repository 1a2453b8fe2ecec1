"""Command line: analyse a text and write JSON and/or a standalone HTML page.

    python -m explain "The film was good but too long." --model minilm --out a.json --html a.html
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from explain.completeness import split_quantity, split_sentence
from explain.errors import ExplainError, InputError
from explain.evaluation.naopc import DEFAULT_BEAM_WIDTH, DEFAULT_NAOPC, EXACT_MAX_WORDS
from explain.heads.gating import ABLATION_MODES
from explain.methods import METHODS, recorded_baseline
from explain.methods.scoring import REMOVAL_MODES
from explain.models import BUILTIN_MODELS, DEFAULT_MODEL
from explain.records import (
    BASELINES,
    DEFAULT_DELTA_TOLERANCE,
    DEFAULT_INTEGRATION,
    DEFAULT_MAX_TOKENS,
    DEFAULT_STEPS,
    FIXED_INTEGRATION,
    MAP_NAMES,
    MAX_STEPS,
    MIN_STEPS,
    Analysis,
    AnalysisRequest,
    TargetSpec,
    to_jsonable,
)
from explain.targets import TARGET_FIELDS, TARGETS, TargetField, TargetKind
from explain.tasks import segment_names, span_text
from explain.viz.text import evaluations_text
from explain.viz.theme import format_score

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


def fraction(value: str) -> float:
    """`--delta-tolerance`: a number from 0 to 1."""
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 1:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, not '{value}'")
    return number


def target_help() -> str:
    """--target's help, from the registry's declarations."""
    def default(kind: TargetKind) -> str:
        return f" (default for {', '.join(h.replace('_', '-') for h in kind.default_for)} heads)" if kind.default_for else ""

    kinds = "; ".join(f"{name}{default(kind)}: {kind.summary[:1].lower()}{kind.summary[1:].rstrip('.')}"
                      for name, kind in TARGETS.items())
    return f"what to explain (default: the model's head decides) — {kinds}"


# The flags that fill a TargetSpec field, from its declaration: a target kind refuses those it does not read.
TARGET_FLAGS = tuple((field.flag, name) for name, field in TARGET_FIELDS.items())


def field_value(field: TargetField) -> Callable[[str], Any]:
    """An argparse type that parses a target field as its declaration says (one sentence when it cannot)."""

    def parse(raw: str) -> Any:
        try:
            return field.parse(raw)
        except InputError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def add_target_flags(group: Any) -> None:
    """One option per declared target field (`explain.targets.TARGET_FIELDS`)."""
    for name, field in TARGET_FIELDS.items():
        if field.kind is bool:
            group.add_argument(field.flag, dest=name, action="store_true", help=field.help)
        elif field.choices:
            group.add_argument(field.flag, dest=name, choices=field.choices, help=field.help)
        else:
            group.add_argument(field.flag, dest=name, type=field_value(field), metavar=name.upper(),
                               help=field.help)


def build_parser() -> argparse.ArgumentParser:
    builtins = "; ".join(f"{k}: {v}" for k, v in BUILTIN_MODELS.items())
    p = argparse.ArgumentParser(
        prog="python -m explain",
        description="Explain how a BERT-family model reads a text: attention maps of every layer and head, "
        "and integrated-gradients attributions of one output to each token.",
    )
    p.add_argument("text", help="the text to analyse, or with --question the context the answer is searched in "
                   "('-' reads it from standard input)")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help=f"built-in name, local folder or Hugging Face Hub id (default {DEFAULT_MODEL}; {builtins})")
    p.add_argument("--target", choices=list(TARGETS), metavar="KIND", help=target_help())
    add_target_flags(p.add_argument_group("target", "What the chosen target reads (each kind reads its own)."))
    tasks = p.add_argument_group("tasks", "Sentence pairs, questions, tokens and answers.")
    tasks.add_argument("--pair", default="", metavar="TEXT",
                       help="a second text read after the first in one input (sentence pairs, next-sentence "
                       "prediction)")
    tasks.add_argument("--question", default="", metavar="TEXT",
                       help="a question about the text (extractive question answering: the text is the context)")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS,
                   help=f"integrated gradients: at most this many model evaluations (adaptive integration) or this "
                   f"many steps (fixed), {MIN_STEPS}..{MAX_STEPS} (default {DEFAULT_STEPS})")
    p.add_argument("--integration", choices=(DEFAULT_INTEGRATION, FIXED_INTEGRATION), default=DEFAULT_INTEGRATION,
                   help="integrated gradients' quadrature: adaptive Simpson panels that stop once the attributions "
                   f"settle, or {FIXED_INTEGRATION} fixed steps (default {DEFAULT_INTEGRATION})")
    delta = {spec.name: spec for spec in METHODS[IG].settings_type.specs()}["delta_tolerance"]
    p.add_argument("--delta-tolerance", type=fraction, default=DEFAULT_DELTA_TOLERANCE, metavar="FRACTION",
                   help=f"integrated gradients, {delta.help} (default {DEFAULT_DELTA_TOLERANCE:g})")
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
                         "the 1/5/10/20/50%% bins of words, AOPC removing the words one at a time and NAOPC (that "
                         "AOPC between the worst and best orders of the words), a random-ranking floor, and "
                         "agreement with leave-one-word-out")
    methods.add_argument("--naopc", action=argparse.BooleanOptionalAction, default=True,
                         help="with --faithfulness, find NAOPC's limits: exact over all word subsets up to "
                         f"{EXACT_MAX_WORDS} words (2^W inputs), a beam search of width {DEFAULT_BEAM_WIDTH} above "
                         "(about width x W^2 inputs); --no-naopc leaves them out (default on)")
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
                       help="analyse with these heads removed ('L:*' removes layer L's every head); the JSON's "
                       "request holds them as 'ablate' and 'ablate_mode'")
    heads.add_argument("--ablate-mode", choices=ABLATION_MODES, default="zero",
                       help="a removed head's output: zero, or its mean over the text (default zero)")
    heads.add_argument("--head-importance", action="store_true",
                       help="rank every head: gradient importance (Michel et al. 2019), the score change when it "
                       "alone is removed, and confidence (Voita et al. 2019); the JSON holds the maps under "
                       "'head_importance'")
    heads.add_argument("--pruning", choices=MAP_NAMES, metavar="MAP",
                       help=f"remove heads one by one in the order of an importance map ({', '.join(MAP_NAMES)}), "
                       "least important first, and in 3 random orders as the control; the JSON holds the curves "
                       "under 'pruning_curve'")
    heads.add_argument("--neuron", type=neuron_spec, metavar="L:H:T",
                       help="inside head H of layer L for query token T: query and key vectors, their products, the "
                       "scaled dot products and the softmax row (bertviz's neuron view); the JSON holds them under "
                       "'neuron_view'")
    depth = p.add_argument_group("depth", "Where the score comes from: the input's parts, and the layers.")
    depth.add_argument("--embedding-parts", action="store_true",
                       help="split integrated gradients over the token, position and segment embeddings (JSON: "
                       "'embedding_parts')")
    depth.add_argument("--layers", action="store_true",
                       help="layer integrated gradients at every encoder layer's output, per token (JSON: "
                       "'layer_attribution')")
    p.add_argument("--out", type=Path, help="write the analysis as JSON here")
    p.add_argument("--html", type=Path, help="write a standalone HTML page (works offline) here")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors")
    return p


def request_from_args(args: argparse.Namespace) -> AnalysisRequest:
    text = sys.stdin.read() if args.text == "-" else args.text
    target = None
    if args.target or given_target_flags(args):
        # An empty kind means the model's default target, with the given label.
        kind = args.target or ("similarity" if args.reference else "zero_shot" if (args.labels or args.prompts) else "")
        values = {name: getattr(args, name) for name in TARGET_FIELDS}
        target = TargetSpec(kind=kind, **{name: field.default if values[name] is None else values[name]
                                          for name, field in TARGET_FIELDS.items()})
    names = chosen_methods(args)
    settings = tuple(sorted((key.split(":", 1)[1], str(value)) for key, value in vars(args).items()
                            if key.startswith("setting:") and value is not None))
    return AnalysisRequest(text=text, model=args.model, target=target, n_steps=args.steps,
                           baseline=args.baseline, max_tokens=args.max_tokens, integration=args.integration,
                           delta_tolerance=args.delta_tolerance or None,
                           method=names[0] if names and names[0] != "all" else IG, method_settings=settings,
                           ablate=args.ablate or "", ablate_mode=args.ablate_mode,
                           pair=args.pair, question=args.question)


def given_target_flags(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The (flag, TargetSpec field) pairs the command line set."""
    return [(flag, name) for flag, name in TARGET_FLAGS if TARGET_FIELDS[name].is_given(getattr(args, name))]


def check_target_flags(args: argparse.Namespace, kind: str) -> None:
    """InputError when a flag sets a field the target kind does not read (it would be silently ignored)."""
    declared = TARGETS[kind]
    unread = [flag for flag, name in given_target_flags(args) if name not in declared.reads]
    if unread:
        reads = ", ".join(f"--{name}" for name in declared.reads) or "no option"
        raise InputError(f"The target '{declared.title}' does not read {', '.join(unread)}; it reads {reads}.")


def chosen_methods(args: argparse.Namespace) -> list[str]:
    """The --method names in order, without repeats ("all" stays a word; the model decides what it means)."""
    return list(dict.fromkeys(args.method or [IG]))


def neuron_spec(text: str) -> tuple[int, int, int]:
    """"L:H:T" (layer, head, query token) as three whole numbers."""
    parts = text.split(":")
    if len(parts) != 3 or not all(part.strip().isdigit() for part in parts):
        raise argparse.ArgumentTypeError(f"'{text}' is not layer:head:token, e.g. 2:5:3")
    layer, head, token = (int(part) for part in parts)
    return layer, head, token


def pruning_summary(curve) -> str:
    """The explained score after removing a quarter, half and three quarters of the heads, against random orders."""
    removed = np.asarray(curve.removed)
    total = int(removed.max()) if removed.size else 0
    lines = [f"pruning by {curve.importance_name} importance ({curve.order} important first) vs "
             f"{len(curve.seeds)} random orders, {curve.score_name}:"]
    for share in (0.25, 0.5, 0.75):
        i = int(np.argmin(np.abs(removed - share * total)))
        lines.append(f"  {int(removed[i])} of {total} heads removed: {format_score(float(curve.scores[i]))} "
                     f"(random {format_score(float(curve.random_mean[i]))} ± "
                     f"{format_score(float(curve.random_std[i]))})")
    return "\n".join(lines)


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
    rows = [("method", "seconds", "compr.", "suff.", "AOPC", "NAOPC", "LOO rho", "strongest words")]
    words = result.words.words

    def number(value: float) -> str:
        return "-" if value != value else f"{value:.3g}"

    for name, r in result.methods.items():
        order = np.argsort(-np.abs(np.asarray(r.word_scores, dtype=np.float64)), kind="stable")[:3]
        rows.append((METHODS[name].title if name in METHODS else name, number(r.attribution.seconds),
                     number(r.comprehensiveness), number(r.sufficiency), number(r.aopc), number(r.naopc),
                     number(r.loo_spearman),
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
        if f.aopc_limits:
            how = "exact" if f.aopc_limits == "exact" else f"beam search, width {f.beam_width}"
            lines.append(f"AOPC one word at a time: random rankings {f.random_aopc:.3g} ± {f.random_aopc_std:.2g} "
                         f"(NAOPC {f.random_naopc:.3g} ± {f.random_naopc_std:.2g}); NAOPC limits {f.aopc_lower:.3g} "
                         f"(worst order) to {f.aopc_upper:.3g} (best order), {how}")
        else:
            lines.append(f"NAOPC not computed: {f.naopc_note or 'no limits in this analysis.'}")
    return "\n".join(lines)


def depth_table(result: Analysis) -> str:
    """The embedding parts (one row each) and the layers (one row each): total, completeness gap, strongest tokens."""
    from explain.depth import strongest_tokens

    tokens = result.tokens.tokens
    lines: list[str] = []

    def strongest(scores: np.ndarray) -> str:
        return ", ".join(f"{token} {value:+.2g}" for token, value in strongest_tokens(tokens, scores))

    parts = result.embedding_parts
    if parts is not None:
        lines.append(f"embedding parts ({parts.n_steps} steps; tokens against the {parts.baseline} baseline, positions "
                     f"and segments against their mean embedding): delta {parts.delta:+.2e}")
        rows = [("part", "total", "strongest tokens")]
        rows += [(name, f"{float(row.sum()):+.3g}", strongest(row)) for name, row in zip(parts.parts, parts.scores)]
        lines += aligned(rows)
    layers = result.layer_attribution
    if layers is not None:
        lines.append(f"layer integrated gradients ({layers.n_steps} steps, {layers.baseline} baseline; each layer's "
                     f"row adds up to {layers.score_input - layers.score_baseline:+.3g}):")
        rows = [("layer", "delta", "strongest tokens")]
        rows += [(str(i), f"{float(d):+.1e}", strongest(row)) for i, (row, d) in enumerate(zip(layers.scores,
                                                                                                  layers.delta))]
        lines += aligned(rows)
    return "\n".join(lines)


def aligned(rows: Sequence[tuple[str, ...]]) -> list[str]:
    """Rows of cells as indented text columns."""
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


def strongest(words: list[str], scores: np.ndarray, k: int = 3) -> str:
    order = np.argsort(-np.abs(np.asarray(scores, dtype=np.float64)), kind="stable")[:k]
    return ", ".join(f"{words[i]} {float(scores[i]):+.2g}" for i in order)


def entities_table(result: Analysis) -> str:
    """One row per predicted entity: its tokens and text, its mean probability and, when explained, the explained
    score at its first token and its three strongest words."""
    spans = result.prediction.spans
    if not spans:
        return "entities: none predicted"
    rows = [("entity", "tokens", "text", "P(entity)", "explained", "strongest words")]
    explained = {(e.first_token, e.last_token): e for e in result.entities}
    for span in spans:
        e = explained.get((span.first_token, span.last_token))
        rows.append((span.label, f"{span.first_token}-{span.last_token}", span_text(result, span),
                     f"{span.score:.3g}", "-" if e is None else f"{e.token_label} {e.explained:.3g}",
                     "-" if e is None else strongest(result.words.words, e.word_scores)))
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    return "\n".join([f"entities ({len(spans)}):", *lines])


def task_lines(result: Analysis) -> list[str]:
    """What the task predicts, beside the explained score: the answer, or the entities."""
    kind = result.request.target.kind if result.request.target is not None else ""
    if kind == "answer" and result.prediction.spans:
        answer = result.prediction.spans[0]
        return [f"answer: «{span_text(result, answer)}» (tokens "
                f"{answer.first_token}-{answer.last_token}, span score {answer.score:.4g} = start + end logit)"]
    if kind == "token_class":
        return [entities_table(result)]
    return []


def summary(result: Analysis, top: int | None = DEFAULT_TOP_WORDS) -> str:
    """What the CLI prints: the model, the explained score, the notices and the `top` strongest words (None: all)."""
    a = result.attribution
    baseline = recorded_baseline(a.method, a.settings)
    title = METHODS[a.method].title if a.method in METHODS else a.method
    lines = [
        f"model: {result.model.spec} ({result.model.head}, {result.model.n_layers} layers x {result.model.n_heads} heads)",
        f"explained: {result.prediction.description} = {a.score_input:.4g}"
        + (f" (baseline {a.score_baseline:.4g})" if baseline else ""),
        (f"integrated gradients: {evaluations_text(result.request, a)}, {a.baseline} baseline, convergence delta {a.delta:+.2e}"
         if a.method == IG else f"{title}: {a.baseline} baseline" if baseline else title),
    ]
    if split_quantity(result):
        lines[1:] = [f"explained: {result.prediction.description}",
                     f"{split_sentence(result)}; delta {a.delta:+.2e}"]
    lines += [f"note: {notice}" for notice in result.notices]
    lines += task_lines(result)
    words, scores = result.words.words, np.asarray(result.word_scores, dtype=np.float64)
    order = list(range(len(words)))
    if top is not None and top < len(words):
        order = sorted(order, key=lambda i: -abs(scores[i]))[:top]
        lines.append(f"the {top} words with the strongest attributions (of {len(words)}; --top all lists every word):")
    else:
        lines.append("word attributions:")
    width = max((len(words[i]) for i in order), default=4)
    names = [name.lower() for name in segment_names(result.request)]
    for segment, name in enumerate(names):
        mine = [i for i in order if result.words.segment_of(i) == segment]
        if len(names) > 1:
            lines.append(f"in the {name}:" if mine else f"in the {name}: none")
        lines += [f"  {words[i]:<{width}}  {scores[i]:+.3g}" for i in mine]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    given = sys.argv[1:] if argv is None else argv
    if given and given[0] in ("corpus", "corpus-report"):
        from explain.corpus.cli import main as corpus_main

        return corpus_main(given)
    args = build_parser().parse_args(argv)
    from explain.models import configure_threads, load_model
    from explain.pipeline import analyze, explain_entities, supported_methods, validate, with_methods
    from explain.targets import first_entity_token, target_kind

    configure_threads()
    try:
        request = validate(request_from_args(args))
        loaded = load_model(request.model)
        kind = target_kind(loaded, request.target)
        check_target_flags(args, kind)
        result = analyze(request, loaded)
        names = chosen_methods(args)
        if "all" in names:
            names = [n for n in names if n != "all"] + supported_methods(loaded, request)
        names = list(dict.fromkeys(names))
        if len(names) > 1 or args.faithfulness:
            result = with_methods(result, loaded, names, faithfulness=args.faithfulness, removal=args.removal,
                                  naopc=DEFAULT_NAOPC if args.naopc else None)
        if args.embedding_parts or args.layers:
            from explain.pipeline import with_depth

            result = with_depth(loaded, result, parts=args.embedding_parts, layers=args.layers)
        if kind == "token_class" and args.token is None:
            result = replace(result, entities=explain_entities(result, loaded))
        importance = curve = neuron = None
        if args.head_importance or args.pruning or args.neuron:
            from explain.heads import head_importance, neuron_view, prepare_inputs, pruning_curve

            spec = result.request.target
            if spec is not None and spec.kind == "token_class" and spec.token < 0:  # the token the analysis explains
                spec = replace(spec, token=first_entity_token(result.prediction.spans, result.tokens.special))
            inputs = prepare_inputs(loaded, request.texts, spec, request.max_tokens,
                                    truncation="only_second" if request.question else "longest_first")
            if args.head_importance or args.pruning:
                importance = head_importance(loaded, inputs, args.ablate_mode)
            if args.pruning:
                assert importance is not None
                curve = pruning_curve(loaded, inputs, importance.map(args.pruning), importance_name=args.pruning,
                                      mode=args.ablate_mode)
            if args.neuron:
                layer, head, token = args.neuron
                info = loaded.info
                if layer >= info.n_layers or head >= info.n_heads or token >= inputs.n_tokens:
                    raise InputError(f"There is no head {layer}:{head} or token {token}; the model has layers 0 to "
                                     f"{info.n_layers - 1}, heads 0 to {info.n_heads - 1}, and the text tokens 0 to "
                                     f"{inputs.n_tokens - 1}.")
                neuron = neuron_view(loaded, inputs, layer, head, token)
        if args.out:
            data = to_jsonable(result)
            if importance is not None and args.head_importance:
                data["head_importance"] = to_jsonable(importance)
            if curve is not None:
                data["pruning_curve"] = to_jsonable(curve)
            if neuron is not None:
                data["neuron_view"] = to_jsonable(neuron)
            args.out.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
        if args.html:
            from explain.viz.report import standalone_html

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
        if result.embedding_parts is not None or result.layer_attribution is not None:
            print(depth_table(result))
        if result.request.ablate:
            print(f"heads removed ({result.request.ablate_mode}): {result.request.ablate}")
        if importance is not None and args.head_importance:
            print(importance_summary(importance))
        if curve is not None:
            print(pruning_summary(curve))
        if neuron is not None:
            row = np.asarray(neuron.attention, dtype=np.float64)
            top = int(np.argmax(row))
            print(f"neuron view of head {neuron.layer}:{neuron.head} for token {neuron.query_token} "
                  f"«{neuron.tokens[neuron.query_token]}»: attends most to token {top} «{neuron.tokens[top]}» "
                  f"({format_score(float(row[top]))}; scaled q·k {format_score(float(neuron.scores[top]))})")
        for path in (args.out, args.html):
            if path:
                print(f"wrote {path}")
    return 0
