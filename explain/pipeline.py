"""One analysis: tokenise -> forward pass with attention -> attribution (any registered method) -> words.

Every pass over the text (attention, the endpoint scores and each integrated-gradients
step) gets the same explicit position ids, so the prediction shown is the function explained.

Staged like a transformers pipeline (preprocess, forward, postprocess), with
all heavy work on a model inside its lock, since Streamlit sessions share one
cached model.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from explain.depth import embedding_parts, layer_attribution
from explain.errors import InputError
from explain.evaluation.faithfulness import ERASER_BINS, evaluate_context
from explain.evaluation.naopc import DEFAULT_NAOPC, NAOPCSettings
from explain.heads.ablation import check_ablation, request_ablation
from explain.heads.gating import HeadSet, check_mode
from explain.inputs import encoded_request, notices_for, read_words, token_segments
from explain.methods import METHODS, AttributionContext, MethodAttribution, get_method
from explain.methods.base import method_settings
from explain.methods.quadrature import (
    check_delta_tolerance,
    check_method,
    check_precision,
    check_steps,
    check_tolerance,
)
from explain.models import LoadedModel, load_model
from explain.records import (
    BASELINES,
    Analysis,
    AnalysisRequest,
    AttentionMaps,
    EntityExplanation,
    FaithfulnessSummary,
    MethodResult,
    TokenAttribution,
)
from explain.targets import choose_index, resolve_target, target_kind
from explain.words import word_sums

StageCallback = Callable[[str, float], None]


def _noop(stage: str, fraction: float) -> None:
    pass


def validate(request: AnalysisRequest) -> AnalysisRequest:
    """Check the request's settings; raise InputError with one sentence on the first problem."""
    if not isinstance(request.text, str) or not request.text.strip():
        raise InputError("The text is empty; type or paste a sentence to analyse.")
    if request.pair and request.question:
        raise InputError("Give either a second text or a question, not both.")
    for name, second in (("second text", request.pair), ("question", request.question)):
        if not isinstance(second, str) or (second and not second.strip()):
            raise InputError(f"The {name} is empty; type it or leave the box blank.")
    check_steps(request.n_steps)
    check_method(request.integration, check_tolerance(request.tolerance))
    check_delta_tolerance(request.delta_tolerance)
    check_precision(request.precision)
    if request.baseline not in BASELINES:
        raise InputError(f"Unknown baseline '{request.baseline}'; choose one of {', '.join(BASELINES)}.")
    if not isinstance(request.max_tokens, (int, np.integer)) or request.max_tokens < 3:
        raise InputError("The token limit must be a whole number of at least 3.")
    method_settings(request, request.method)
    if request.ablate or request.ablate_mode != "zero":
        check_ablation(request)
    return request


def heads_removed(loaded: LoadedModel, request: AnalysisRequest, input_ids: torch.Tensor,
                  attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None,
                  position_ids: torch.Tensor | None) -> AbstractContextManager[Any]:
    """The request's heads (`ablate`) knocked out for a block, so every pass in it sees the ablated model;
    yields the HeadSet removed, or None (and does nothing) when the request removes none."""
    if not request.ablate.strip():
        return nullcontext(None)
    return request_ablation(loaded, request, input_ids, attention_mask, token_type_ids, position_ids)


def context_heads_removed(request: AnalysisRequest, context: AttributionContext) -> AbstractContextManager[Any]:
    return heads_removed(context.target.loaded, request, context.input_ids, context.attention_mask,
                         context.token_type_ids, context.position_ids)


def token_attribution(result: MethodAttribution) -> TokenAttribution:
    """A registry method's result as the analysis's attribution record (with its quadrature, if it integrates)."""
    quadrature = result.quadrature
    return TokenAttribution(
        scores=np.array(result.scores, dtype=np.float32), score_input=result.score_input,
        score_baseline=result.score_baseline, delta=result.delta,
        n_steps=quadrature.evaluations if quadrature else 0, baseline=result.baseline, method=result.method,
        precision=quadrature.precision if quadrature else "fp32",
        tolerance=quadrature.tolerance if quadrature else None,
        converged=quadrature.converged if quadrature else None,
        settings=dict(result.settings), seconds=result.seconds, signed=result.signed,
    )


def analyze(
    request: AnalysisRequest,
    loaded: LoadedModel | None = None,
    *,
    progress: StageCallback | None = None,
) -> Analysis:
    """Run the full analysis of `request.text` on one model.

    Args:
        loaded: an already loaded model for `request.model` (loaded here when None).
        progress: called with (stage, fraction done) as the work advances; may raise to cancel.
    """
    report = progress or _noop
    validate(request)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    if loaded is None:
        report("loading model", 0.0)
        loaded = load_model(request.model)
        timings["load"] = time.perf_counter() - start
    max_tokens = min(int(request.max_tokens), loaded.max_tokens)
    with loaded.lock, ExitStack() as ablation:
        report("tokenising", 0.0)
        inputs, tokens, kind = encoded_request(loaded, request, max_tokens)
        ids, mask, special = inputs["input_ids"], inputs["attention_mask"], inputs["special"]
        types, positions = inputs.get("token_type_ids"), inputs["position_ids"]
        # What the target fixes before any score (label prompts, the reference, the explained position) comes
        # from the full model, as head importance and the pruning curve have it (docs/tasks.md).
        target = resolve_target(loaded, request.target, ids, token_segments(tokens), types)
        removed = ablation.enter_context(heads_removed(loaded, request, ids, mask, types, positions))

        report("attention", 0.0)
        t0 = time.perf_counter()
        with torch.inference_mode():
            all_scores, out = target.forward_ids(ids, mask, types, positions)
            scores = all_scores[0].float().cpu()
            weights = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()
        del out
        target = choose_index(target, scores)
        timings["attention"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        words = read_words(request.texts, tokens)
        context = AttributionContext(target=target, input_ids=ids, attention_mask=mask, special=special,
                                     token_word=words.token_word, n_words=len(words), baseline=request.baseline,
                                     token_type_ids=types, position_ids=positions)
        result = get_method(request.method).attribute(context, method_settings(request, request.method),
                                                      progress=lambda f: report("attribution", f))
        attribution = token_attribution(result)
        timings["attribution"] = time.perf_counter() - t0

    resolved_request = replace(request, target=target.spec, ablate=removed.format() if removed else "")
    word_scores = word_sums(attribution.scores, words.token_word, len(words)).astype(np.float32)
    timings["total"] = time.perf_counter() - start
    report("done", 1.0)
    return Analysis(
        request=resolved_request,
        model=loaded.info,
        tokens=tokens,
        words=words,
        attention=AttentionMaps(weights=weights.astype(np.float32)),
        prediction=target.prediction(scores.numpy()),
        attribution=attribution,
        word_scores=word_scores,
        timings=timings,
        methods={request.method: MethodResult(attribution=attribution, word_scores=word_scores)},
        notices=notices_for(loaded, " ".join(request.texts), target.spec.kind, tokens, question=bool(request.question)),
    )


def attribution_context(request: AnalysisRequest, loaded: LoadedModel) -> AttributionContext:
    """What every method needs about the request's text, built once (call it holding `loaded.lock`)."""
    validate(request)
    max_tokens = min(int(request.max_tokens), loaded.max_tokens)
    inputs, tokens, _ = encoded_request(loaded, request, max_tokens)
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    types, positions = inputs.get("token_type_ids"), inputs["position_ids"]
    target = resolve_target(loaded, request.target, ids, token_segments(tokens), types)  # the full model's
    with heads_removed(loaded, request, ids, mask, types, positions):
        with torch.no_grad():
            scores = target.forward_embeddings(loaded.word_embeddings(ids), mask, types, positions)[0].float().cpu()
    target = choose_index(target, scores)
    words = read_words(request.texts, tokens)
    return AttributionContext(target=target, input_ids=ids, attention_mask=mask, special=inputs["special"],
                              token_word=words.token_word, n_words=len(words), baseline=request.baseline,
                              token_type_ids=types, position_ids=positions)


def supported_methods(loaded: LoadedModel, request: AnalysisRequest) -> list[str]:
    """The registered methods that can explain the request's target on this model, in registry order."""
    kind = target_kind(loaded, request.target)
    return [name for name, method in METHODS.items() if method.supports(kind) and not method.refusal(loaded)]


def explain_method(request: AnalysisRequest, loaded: LoadedModel, name: str, *,
                   context: AttributionContext | None = None, progress: Callable[[float], None] | None = None
                   ) -> MethodResult:
    """One method's attribution of the request's explained score (the analysis's tokens and words)."""
    with loaded.lock, ExitStack() as ablation:
        context = context or attribution_context(request, loaded)
        ablation.enter_context(context_heads_removed(request, context))
        attribution = token_attribution(get_method(name).attribute(context, method_settings(request, name), progress))
    word_scores = word_sums(attribution.scores, context.token_word, context.n_words).astype(np.float32)
    return MethodResult(attribution=attribution, word_scores=word_scores)


def evaluate_faithfulness(request: AnalysisRequest, loaded: LoadedModel, results: dict[str, MethodResult], *,
                          removal: str = "replace", bins: tuple[float, ...] = ERASER_BINS,
                          context: AttributionContext | None = None, naopc: NAOPCSettings | None = DEFAULT_NAOPC,
                          naopc_note: str = "", progress: Callable[[float], None] | None = None
                          ) -> tuple[dict[str, MethodResult], FaithfulnessSummary]:
    """Comprehensiveness, sufficiency and leave-one-word-out agreement of each method's word scores, and the
    random-ranking floor; all perturbed inputs in a few batched passes, `progress` called after each. With `naopc`
    (the default) also each ranking's AOPC and NAOPC against the text's AOPC limits; without, `naopc_note` says why
    in the summary."""
    with loaded.lock, ExitStack() as ablation:
        context = context or attribution_context(request, loaded)
        ablation.enter_context(context_heads_removed(request, context))
        report = evaluate_context(context, {name: r.word_scores for name, r in results.items()}, mode=removal,
                                  bins=bins, naopc=naopc, progress=progress)
    if progress is not None:
        progress(1.0)
    scored = {
        name: replace(result, comprehensiveness=found.comprehensiveness, sufficiency=found.sufficiency,
                      loo_spearman=found.loo_spearman, aopc=found.aopc, naopc=found.naopc)
        for name, result in results.items() for found in [report.methods[name]]
    }
    floor, limits = report.random_floor, report.limits
    summary = FaithfulnessSummary(
        bins=tuple(report.bins), removal=removal, random_comprehensiveness=floor.comprehensiveness_mean,
        random_comprehensiveness_std=floor.comprehensiveness_std, random_sufficiency=floor.sufficiency_mean,
        random_sufficiency_std=floor.sufficiency_std, n_random=floor.n_rankings, n_variants=report.n_variants,
        naopc_note=naopc_note,
    )
    if limits is not None:
        summary = replace(summary, aopc_upper=limits.upper, aopc_lower=limits.lower, aopc_limits=limits.search,
                          beam_width=limits.beam_width, random_aopc=nan_if_none(floor.aopc_mean),
                          random_aopc_std=nan_if_none(floor.aopc_std), random_naopc=nan_if_none(floor.naopc_mean),
                          random_naopc_std=nan_if_none(floor.naopc_std), naopc_note="")
    return scored, summary


def nan_if_none(value: float | None) -> float:
    return math.nan if value is None else float(value)


def with_methods(analysis: Analysis, loaded: LoadedModel, names: list[str], *, faithfulness: bool = False,
                 removal: str = "replace", progress: Callable[[str, float], None] | None = None,
                 naopc: NAOPCSettings | None = DEFAULT_NAOPC) -> Analysis:
    """The analysis with more methods' attributions (and, if asked, every method's faithfulness) added."""
    report = progress or _noop
    request = analysis.request
    with loaded.lock, ExitStack() as ablation:
        context = attribution_context(request, loaded)
        ablation.enter_context(context_heads_removed(request, context))
        results = dict(analysis.methods)
        for i, name in enumerate(names):
            if name in results:
                continue
            stage = f"{get_method(name).title} ({i + 1} of {len(names)})"
            report(stage, 0.0)

            def step(fraction: float, stage: str = stage) -> None:
                report(stage, fraction)

            results[name] = explain_method(request, loaded, name, context=context, progress=step)
        summary = analysis.faithfulness
        if faithfulness:
            report("faithfulness", 0.0)
            results, summary = evaluate_faithfulness(request, loaded, results, removal=removal, context=context,
                                                     naopc=naopc, naopc_note="its limits were not asked for.",
                                                     progress=lambda f: report("faithfulness", f))
    return replace(analysis, methods=results, faithfulness=summary)


def with_depth(loaded: LoadedModel, analysis: Analysis, *, parts: bool = True, layers: bool = True,
               n_steps: int | None = None, progress: StageCallback | None = None) -> Analysis:
    """The analysis with its embedding-part and layer-wise attributions (explain.depth) added.

    Computes only what is asked for and not already there; `n_steps` defaults to the request's steps.
    """
    report = progress or _noop
    need_parts = parts and analysis.embedding_parts is None
    need_layers = layers and analysis.layer_attribution is None
    if not (need_parts or need_layers):
        return analysis
    steps = check_steps(analysis.request.n_steps if n_steps is None else n_steps)
    found_parts, found_layers = analysis.embedding_parts, analysis.layer_attribution
    with loaded.lock:
        context = attribution_context(analysis.request, loaded)
        if context.n_tokens != len(analysis.tokens):
            raise InputError("This model reads the analysed text as other tokens; analyse it with this model first.")
        if need_parts:
            report("embedding parts", 0.0)
            found_parts = embedding_parts(context, steps, lambda f: report("embedding parts", f))
        if need_layers:
            report("layers", 0.0)
            found_layers = layer_attribution(context, steps, lambda f: report("layers", f))
    report("done", 1.0)
    return replace(analysis, embedding_parts=found_parts, layer_attribution=found_layers)


def explain_entities(analysis: Analysis, loaded: LoadedModel, method: str | None = None, *,
                     progress: Callable[[str, float], None] | None = None) -> tuple[EntityExplanation, ...]:
    """Every entity a token-classification analysis predicts, explained at its first token with its predicted label.

    Each entity's explained score is P(label) at its first token (its logit when the analysis explains logits),
    attributed by `method` (default: the analysis's own) to the analysis's words. Store the result with
    `dataclasses.replace(analysis, entities=...)` to have it in the JSON.
    """
    request = analysis.request
    spec = request.target
    if spec is None or spec.kind != "token_class":
        raise InputError("Only a token-classification analysis has entities to explain.")
    name = method or request.method
    get_method(name)
    report = progress or _noop
    token_word = analysis.words.token_word
    out = []
    for i, span in enumerate(analysis.prediction.spans):
        stage = f"entity {i + 1} of {len(analysis.prediction.spans)}"
        report(stage, 0.0)

        def step(fraction: float, stage: str = stage) -> None:
            report(stage, fraction)

        # The analysis's own target is this entity's when it names no label and its token is the entity's first
        # (with no token named, the first entity's).
        explains_this = not spec.label and (spec.token == span.first_token if spec.token >= 0 else i == 0)
        if explains_this and name in analysis.methods:
            result = analysis.methods[name]
            token_label = analysis.prediction.labels[analysis.prediction.explained_index]
        else:
            entity_request = replace(request, target=replace(spec, token=span.first_token, label=""))
            with loaded.lock:
                context = attribution_context(entity_request, loaded)
                result = explain_method(entity_request, loaded, name, context=context, progress=step)
            token_label = context.target.labels[context.target.index]
        covered = token_word[span.first_token : span.last_token + 1]
        words = tuple(analysis.words.words[w] for w in dict.fromkeys(int(w) for w in covered if w >= 0))
        out.append(EntityExplanation(
            label=span.label, token_label=token_label, first_token=span.first_token, last_token=span.last_token,
            words=words, score=span.score, explained=result.attribution.score_input, method=name,
            word_scores=result.word_scores,
        ))
    report("done", 1.0)
    return tuple(out)


def analyze_ablated(
    request: AnalysisRequest,
    loaded: LoadedModel,
    heads: HeadSet,
    mode: str = "zero",
    *,
    progress: StageCallback | None = None,
) -> Analysis:
    """`explain.analyze(request, loaded)` with `heads` removed: set to zero, or to their mean output over
    the request's text ("mean", from an unablated pass). The result's request records them."""
    check_mode(mode)
    if (heads.n_layers, heads.n_heads) != (loaded.info.n_layers, loaded.info.n_heads):
        raise InputError(
            f"The head set is for {heads.n_layers} x {heads.n_heads} heads, but this model has "
            f"{loaded.info.n_layers} x {loaded.info.n_heads}."
        )
    return analyze(replace(request, ablate=heads.format(), ablate_mode=mode), loaded, progress=progress)
