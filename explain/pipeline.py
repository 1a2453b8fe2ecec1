"""One analysis: tokenise -> forward pass with attention -> attribution (any registered method) -> words.

Every pass over the text (attention, the endpoint scores and each integrated-gradients
step) gets the same explicit position ids, so the prediction shown is the function explained.

Staged like a transformers pipeline (preprocess, forward, postprocess), with
all heavy work on a model inside its lock, since Streamlit sessions share one
cached model.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import torch

from explain.analysis import (
    BASELINES,
    Analysis,
    AnalysisRequest,
    AttentionMaps,
    FaithfulnessSummary,
    MethodResult,
    Prediction,
    TokenAttribution,
    Tokens,
)
from explain.attribution import check_method, check_precision, check_steps, check_tolerance, integrated_gradients
from explain.errors import InputError
from explain.evaluation.faithfulness import ERASER_BINS, evaluate_context
from explain.methods import METHODS, AttributionContext, MethodAttribution, MethodSettings, get_method
from explain.models import LoadedModel, load_model
from explain.targets import choose_index, model_position_ids, resolve_target, target_kind
from explain.tokenization import encode_truncated
from explain.words import word_sums, words_for_tokens

TOP_MASKED_PREDICTIONS = 10

StageCallback = Callable[[str, float], None]


def _noop(stage: str, fraction: float) -> None:
    pass


def validate(request: AnalysisRequest) -> AnalysisRequest:
    """Check the request's settings; raise InputError with one sentence on the first problem."""
    if not isinstance(request.text, str) or not request.text.strip():
        raise InputError("The text is empty; type or paste a sentence to analyse.")
    check_steps(request.n_steps)
    check_method(request.integration, check_tolerance(request.tolerance))
    check_precision(request.precision)
    if request.baseline not in BASELINES:
        raise InputError(f"Unknown baseline '{request.baseline}'; choose one of {', '.join(BASELINES)}.")
    if not isinstance(request.max_tokens, (int, np.integer)) or request.max_tokens < 3:
        raise InputError("The token limit must be a whole number of at least 3.")
    method_settings(request, request.method)
    return request


IG = "integrated_gradients"


def method_settings(request: AnalysisRequest, name: str) -> MethodSettings:
    """The settings `name` runs with for `request`: integrated gradients from the request's steps, tolerance,
    precision and integration; any other method from the request's `method_settings` entries "name.setting", else
    defaults."""
    method = get_method(name)
    if name == IG:
        return method.settings_type.parse({"n_steps": request.n_steps, "tolerance": request.tolerance or 0.0,
                                           "precision": request.precision, "integration": request.integration})
    prefix = f"{name}."
    return method.settings_type.parse({key[len(prefix):]: value for key, value in request.method_settings
                                       if key.startswith(prefix)})


def token_attribution(result: MethodAttribution, n_steps: int = 0) -> TokenAttribution:
    """A registry method's result as the analysis's attribution record."""
    return TokenAttribution(
        scores=np.array(result.scores, dtype=np.float32), score_input=result.score_input,
        score_baseline=result.score_baseline, delta=result.delta, n_steps=n_steps, baseline=result.baseline,
        method=result.method, settings=dict(result.settings), seconds=result.seconds, signed=result.signed,
    )


def tokenize(
    loaded: LoadedModel, text: str, max_tokens: int, *, keep_mask: bool = False
) -> tuple[dict[str, torch.Tensor], Tokens]:
    """Model inputs for `text` (cut to `max_tokens` by the tokenizer's own truncation) and its Tokens record.

    Typed special tokens are plain text; with `keep_mask` the mask token stays the mask.
    The inputs hold input_ids, attention_mask, token_type_ids (where the model takes
    them), position_ids (`model_position_ids`, for every pass) and special (bool).
    """
    tok = loaded.tokenizer
    result = encode_truncated(tok, text, max_tokens, keep_mask=keep_mask)
    enc = result.encoding
    ids = torch.tensor([enc.ids], dtype=torch.long)
    special = torch.tensor([enc.special_tokens_mask], dtype=torch.bool)
    inputs = {"input_ids": ids, "attention_mask": torch.tensor([enc.attention_mask], dtype=torch.long)}
    if "token_type_ids" in getattr(tok, "model_input_names", ()):
        inputs["token_type_ids"] = torch.tensor([enc.type_ids], dtype=torch.long)
    inputs["position_ids"] = model_position_ids(loaded, ids)
    inputs["special"] = special
    tokens = Tokens(
        tokens=tok.convert_ids_to_tokens(enc.ids),
        offsets=np.asarray(enc.offsets, dtype=np.int32).reshape(-1, 2),
        special=special[0].numpy(),
        truncated=result.truncated,
        n_tokens_full=result.n_tokens_full,
        n_tokens_full_at_least=result.at_least,
    )
    return {k: v.to(loaded.device) for k, v in inputs.items()}, tokens


def notices_for(loaded: LoadedModel, text: str, kind: str, tokens: Tokens) -> tuple[str, ...]:
    """One-sentence notes on how the model read the text: a mask token it reads as text, a truncation."""
    notices = []
    mask = getattr(loaded.tokenizer, "mask_token", None)
    if kind != "masked_token" and mask and str(mask) in text:
        notices.append(
            f"The text contains the mask token {mask}, which is read as plain text because the target is not "
            "the masked token; choose the masked-token target on a masked-LM model to have it predicted."
        )
    if tokens.truncated:
        length = f"at least {tokens.n_tokens_full:,}" if tokens.n_tokens_full_at_least else f"{tokens.n_tokens_full:,}"
        notices.append(f"The text has {length} tokens; only the first {len(tokens):,} were analysed.")
    return tuple(notices)


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
    with loaded.lock:
        report("tokenising", 0.0)
        kind = target_kind(loaded, request.target)
        inputs, tokens = tokenize(loaded, request.text, max_tokens, keep_mask=kind == "masked_token")
        ids, mask, special = inputs["input_ids"], inputs["attention_mask"], inputs["special"]
        types, positions = inputs.get("token_type_ids"), inputs["position_ids"]
        target = resolve_target(loaded, request.target, ids)

        report("attention", 0.0)
        t0 = time.perf_counter()
        extra = {} if types is None else {"token_type_ids": types}
        with torch.inference_mode():
            out = target.module(input_ids=ids, attention_mask=mask, position_ids=positions, output_attentions=True,
                                **extra)
            scores = target.scores_from_output(out, mask)[0].float().cpu()
            weights = torch.stack([a[0] for a in out.attentions]).float().cpu().numpy()
        del out
        choose_index(target, scores)
        timings["attention"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        words = words_for_tokens(request.text, tokens.offsets, tokens.special)
        if request.method == IG:
            attribution = integrated_gradients(
                target,
                ids,
                mask,
                special,
                token_type_ids=types,
                position_ids=positions,
                n_steps=request.n_steps,
                baseline=request.baseline,
                progress=lambda f: report("attribution", f),
                tolerance=request.tolerance,
                precision=request.precision,
                method=request.integration,
            )
            attribution.settings = method_settings(request, IG).as_dict()
            attribution.seconds = time.perf_counter() - t0
        else:
            context = AttributionContext(target=target, input_ids=ids, attention_mask=mask, special=special,
                                         token_word=words.token_word, n_words=len(words), baseline=request.baseline,
                                         token_type_ids=types, position_ids=positions)
            result = get_method(request.method).attribute(context, method_settings(request, request.method),
                                                          progress=lambda f: report("attribution", f))
            attribution = token_attribution(result)
        timings["attribution"] = time.perf_counter() - t0

    resolved_request = replace(request, target=target.spec)
    word_scores = word_sums(attribution.scores, words.token_word, len(words)).astype(np.float32)
    timings["total"] = time.perf_counter() - start
    report("done", 1.0)
    return Analysis(
        request=resolved_request,
        model=loaded.info,
        tokens=tokens,
        words=words,
        attention=AttentionMaps(weights=weights.astype(np.float32)),
        prediction=_prediction(target, scores.numpy()),
        attribution=attribution,
        word_scores=word_scores,
        timings=timings,
        methods={request.method: MethodResult(attribution=attribution, word_scores=word_scores)},
        notices=notices_for(loaded, request.text, target.spec.kind, tokens),
    )


def _prediction(target, scores: np.ndarray) -> Prediction:
    if target.spec.kind == "masked_token":
        order = [int(i) for i in np.argsort(-scores)[:TOP_MASKED_PREDICTIONS]]
        if target.index not in order:
            order.append(target.index)
        labels = [target.labels[i] for i in order]
        return Prediction(
            labels=labels,
            scores=scores[order].astype(np.float32),
            explained_index=order.index(target.index),
            description=target.description,
            score_name=target.score_name,
        )
    return Prediction(
        labels=list(target.labels),
        scores=scores.astype(np.float32),
        explained_index=target.index,
        description=target.description,
        score_name=target.score_name,
    )


def attribution_context(request: AnalysisRequest, loaded: LoadedModel) -> AttributionContext:
    """What every method needs about the request's text, built once (call it holding `loaded.lock`)."""
    validate(request)
    max_tokens = min(int(request.max_tokens), loaded.max_tokens)
    kind = target_kind(loaded, request.target)
    inputs, tokens = tokenize(loaded, request.text, max_tokens, keep_mask=kind == "masked_token")
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    types, positions = inputs.get("token_type_ids"), inputs["position_ids"]
    target = resolve_target(loaded, request.target, ids)
    with torch.no_grad():
        scores = target.forward_embeddings(loaded.word_embeddings(ids), mask, types, positions)[0].float().cpu()
    choose_index(target, scores)
    words = words_for_tokens(request.text, tokens.offsets, tokens.special)
    return AttributionContext(target=target, input_ids=ids, attention_mask=mask, special=inputs["special"],
                              token_word=words.token_word, n_words=len(words), baseline=request.baseline,
                              token_type_ids=types, position_ids=positions)


def supported_methods(loaded: LoadedModel, request: AnalysisRequest) -> list[str]:
    """The registered methods that can explain the request's target on this model, in registry order."""
    kind = target_kind(loaded, request.target)
    return [name for name, method in METHODS.items() if method.supports(kind)]


def explain_method(request: AnalysisRequest, loaded: LoadedModel, name: str, *,
                   context: AttributionContext | None = None, progress: Callable[[float], None] | None = None
                   ) -> MethodResult:
    """One method's attribution of the request's explained score (the analysis's tokens and words)."""
    with loaded.lock:
        context = context or attribution_context(request, loaded)
        settings = method_settings(request, name)
        if name == IG:
            start = time.perf_counter()
            ig = integrated_gradients(context.target, context.input_ids, context.attention_mask, context.special,
                                      token_type_ids=context.token_type_ids, position_ids=context.position_ids,
                                      n_steps=request.n_steps, baseline=request.baseline, progress=progress,
                                      tolerance=request.tolerance, precision=request.precision,
                                      method=request.integration)
            ig.settings, ig.seconds = settings.as_dict(), time.perf_counter() - start
            attribution = ig
        else:
            attribution = token_attribution(get_method(name).attribute(context, settings, progress))
    word_scores = word_sums(attribution.scores, context.token_word, context.n_words).astype(np.float32)
    return MethodResult(attribution=attribution, word_scores=word_scores)


def evaluate_faithfulness(request: AnalysisRequest, loaded: LoadedModel, results: dict[str, MethodResult], *,
                          removal: str = "replace", bins: tuple[float, ...] = ERASER_BINS,
                          context: AttributionContext | None = None
                          ) -> tuple[dict[str, MethodResult], FaithfulnessSummary]:
    """Comprehensiveness, sufficiency and leave-one-word-out agreement of each method's word scores, and the
    random-ranking floor; all perturbed inputs in a few batched passes."""
    with loaded.lock:
        context = context or attribution_context(request, loaded)
        report = evaluate_context(context, {name: r.word_scores for name, r in results.items()}, mode=removal,
                                  bins=bins)
    scored = {
        name: replace(result, comprehensiveness=report.methods[name].comprehensiveness,
                      sufficiency=report.methods[name].sufficiency, loo_spearman=report.methods[name].loo_spearman)
        for name, result in results.items()
    }
    floor = report.random_floor
    summary = FaithfulnessSummary(
        bins=tuple(report.bins), removal=removal, random_comprehensiveness=floor.comprehensiveness_mean,
        random_comprehensiveness_std=floor.comprehensiveness_std, random_sufficiency=floor.sufficiency_mean,
        random_sufficiency_std=floor.sufficiency_std, n_random=floor.n_rankings, n_variants=report.n_variants,
    )
    return scored, summary


def with_methods(analysis: Analysis, loaded: LoadedModel, names: list[str], *, faithfulness: bool = False,
                 removal: str = "replace", progress: Callable[[str, float], None] | None = None) -> Analysis:
    """The analysis with more methods' attributions (and, if asked, every method's faithfulness) added."""
    report = progress or _noop
    request = analysis.request
    with loaded.lock:
        context = attribution_context(request, loaded)
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
            results, summary = evaluate_faithfulness(request, loaded, results, removal=removal, context=context)
    return replace(analysis, methods=results, faithfulness=summary)
