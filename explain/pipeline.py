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
from contextlib import AbstractContextManager, ExitStack, nullcontext
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from explain.analysis import (
    BASELINES,
    Analysis,
    AnalysisRequest,
    AttentionMaps,
    EntityExplanation,
    FaithfulnessSummary,
    MethodResult,
    TokenAttribution,
    Tokens,
    Words,
)
from explain.attribution import (
    check_delta_tolerance,
    check_method,
    check_precision,
    check_steps,
    check_tolerance,
    integrated_gradients,
)
from explain.depth import embedding_parts, layer_attribution
from explain.errors import InputError
from explain.evaluation.faithfulness import ERASER_BINS, evaluate_context
from explain.methods import METHODS, AttributionContext, MethodAttribution, MethodSettings, get_method
from explain.models import LoadedModel, load_model
from explain.targets import TARGETS, choose_index, fitting_kind, model_position_ids, resolve_target, target_kind
from explain.tokenization import encode_pair_truncated, encode_truncated
from explain.words import word_sums, words_for_tokens

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
        from explain.heads.ablation import check_ablation  # explain.heads builds on this module

        check_ablation(request)
    return request


def heads_removed(loaded: LoadedModel, request: AnalysisRequest, input_ids: torch.Tensor,
                  attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None,
                  position_ids: torch.Tensor | None) -> AbstractContextManager[Any]:
    """The request's heads (`ablate`) knocked out for a block, so every pass in it sees the ablated model;
    yields the HeadSet removed, or None (and does nothing) when the request removes none."""
    if not request.ablate.strip():
        return nullcontext(None)
    from explain.heads.ablation import request_ablation  # explain.heads builds on this module

    return request_ablation(loaded, request, input_ids, attention_mask, token_type_ids, position_ids)


def context_heads_removed(request: AnalysisRequest, context: AttributionContext) -> AbstractContextManager[Any]:
    return heads_removed(context.target.loaded, request, context.input_ids, context.attention_mask,
                         context.token_type_ids, context.position_ids)


IG = "integrated_gradients"


def method_settings(request: AnalysisRequest, name: str) -> MethodSettings:
    """The settings `name` runs with for `request`: integrated gradients from the request's steps, tolerance,
    precision and integration; any other method from the request's `method_settings` entries "name.setting", else
    defaults."""
    method = get_method(name)
    if name == IG:
        return method.settings_type.parse({"n_steps": request.n_steps, "tolerance": request.tolerance or 0.0,
                                           "precision": request.precision, "integration": request.integration,
                                           "delta_tolerance": request.delta_tolerance or 0.0})
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
    loaded: LoadedModel, text: str | tuple[str, ...], max_tokens: int, *, keep_mask: bool = False,
    truncation: str = "longest_first",
) -> tuple[dict[str, torch.Tensor], Tokens]:
    """Model inputs for `text` or a pair of texts (cut to `max_tokens` by the tokenizer's own truncation) and
    its Tokens record.

    Typed special tokens are plain text; with `keep_mask` the mask token stays the mask.
    The inputs hold input_ids, attention_mask, token_type_ids (where the model takes
    them), position_ids (`model_position_ids`, for every pass) and special (bool).
    """
    tok = loaded.tokenizer
    texts = (text,) if isinstance(text, str) else tuple(text)
    if len(texts) == 2:
        result = encode_pair_truncated(tok, texts[0], texts[1], max_tokens, keep_mask=keep_mask, truncation=truncation)
    else:
        result = encode_truncated(tok, texts[0], max_tokens, keep_mask=keep_mask)
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
        segments=(np.array([-1 if s is None else s for s in enc.sequence_ids], dtype=np.int8)
                  if len(texts) > 1 else None),
    )
    return {k: v.to(loaded.device) for k, v in inputs.items()}, tokens


def token_segments(tokens: Tokens) -> np.ndarray:
    """The text each token comes from (-1 for special tokens), also for one-text analyses."""
    if tokens.segments is not None:
        return tokens.segments
    return np.where(np.asarray(tokens.special, dtype=bool), -1, 0).astype(np.int8)


def read_words(texts: tuple[str, ...], tokens: Tokens) -> Words:
    """The words of each text, in reading order, with the tokens that fall in each (`words_for_tokens` per text)."""
    if len(texts) == 1:
        return words_for_tokens(texts[0], tokens.offsets, tokens.special)
    segments = token_segments(tokens)
    words: list[str] = []
    spans, word_segments = [], []
    token_word = np.full(len(tokens), -1, dtype=np.int32)
    for s, text in enumerate(texts):
        part = words_for_tokens(text, tokens.offsets, np.asarray(tokens.special, dtype=bool) | (segments != s))
        mine = part.token_word >= 0
        token_word[mine] = part.token_word[mine] + len(words)
        words += part.words
        spans.append(part.spans.reshape(-1, 2))
        word_segments += [s] * len(part.words)
    return Words(words=words, spans=np.concatenate(spans).astype(np.int32), token_word=token_word,
                 segments=np.array(word_segments, dtype=np.int8))


def encoded_request(loaded: LoadedModel, request: AnalysisRequest, max_tokens: int
                    ) -> tuple[dict[str, torch.Tensor], Tokens, str]:
    """The request's text(s) encoded for its target kind, the tokens, and the kind."""
    kind = target_kind(loaded, request.target)
    declared = fitting_kind(loaded, kind)
    if declared.needs == "question" and not request.question:
        raise InputError(f"The target '{declared.title}' needs a question; type it in the question box (--question).")
    if declared.needs == "pair" and not request.pair:
        raise InputError(f"The target '{declared.title}' needs a second text; type it in the second box (--pair).")
    inputs, tokens = tokenize(loaded, request.texts, max_tokens, keep_mask=declared.keeps_mask,
                              truncation="only_second" if request.question else "longest_first")
    return inputs, tokens, kind


def notices_for(loaded: LoadedModel, text: str, kind: str, tokens: Tokens, *, question: bool = False
                ) -> tuple[str, ...]:
    """One-sentence notes on how the model read the text: a mask token it reads as text, a truncation
    (`question`: a pair cut as question answering cuts it, the context only)."""
    notices = []
    mask = getattr(loaded.tokenizer, "mask_token", None)
    keeps_mask = kind in TARGETS and TARGETS[kind].keeps_mask
    if not keeps_mask and mask and str(mask) in text:
        notices.append(
            f"The text contains the mask token {mask}, which is read as plain text because the target is not "
            "the masked token; choose the masked-token target on a masked-LM model to have it predicted."
        )
    if tokens.truncated:
        length = f"at least {tokens.n_tokens_full:,}" if tokens.n_tokens_full_at_least else f"{tokens.n_tokens_full:,}"
        if tokens.segments is None:
            notices.append(f"The text has {length} tokens; only the first {len(tokens):,} were analysed.")
        elif question:
            notices.append(f"The question and the context have {length} tokens together; the context was cut from "
                           f"its end to fit {len(tokens):,} tokens.")
        else:
            notices.append(f"The two texts have {length} tokens together; each was cut from its end, the longer "
                           f"first, to {len(tokens):,} tokens.")
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
    with loaded.lock, ExitStack() as ablation:
        report("tokenising", 0.0)
        inputs, tokens, kind = encoded_request(loaded, request, max_tokens)
        ids, mask, special = inputs["input_ids"], inputs["attention_mask"], inputs["special"]
        types, positions = inputs.get("token_type_ids"), inputs["position_ids"]
        removed = ablation.enter_context(heads_removed(loaded, request, ids, mask, types, positions))
        target = resolve_target(loaded, request.target, ids, token_segments(tokens), types)

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
                delta_tolerance=request.delta_tolerance,
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
    with heads_removed(loaded, request, ids, mask, types, positions):  # label prompts are embedded ablated too
        target = resolve_target(loaded, request.target, ids, token_segments(tokens), types)
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
    return [name for name, method in METHODS.items() if method.supports(kind)]


def explain_method(request: AnalysisRequest, loaded: LoadedModel, name: str, *,
                   context: AttributionContext | None = None, progress: Callable[[float], None] | None = None
                   ) -> MethodResult:
    """One method's attribution of the request's explained score (the analysis's tokens and words)."""
    with loaded.lock, ExitStack() as ablation:
        context = context or attribution_context(request, loaded)
        ablation.enter_context(context_heads_removed(request, context))
        settings = method_settings(request, name)
        if name == IG:
            start = time.perf_counter()
            ig = integrated_gradients(context.target, context.input_ids, context.attention_mask, context.special,
                                      token_type_ids=context.token_type_ids, position_ids=context.position_ids,
                                      n_steps=request.n_steps, baseline=request.baseline, progress=progress,
                                      tolerance=request.tolerance, precision=request.precision,
                                      method=request.integration, delta_tolerance=request.delta_tolerance)
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
    with loaded.lock, ExitStack() as ablation:
        context = context or attribution_context(request, loaded)
        ablation.enter_context(context_heads_removed(request, context))
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
            results, summary = evaluate_faithfulness(request, loaded, results, removal=removal, context=context)
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
