"""One analysis: tokenise -> forward pass with attention -> integrated gradients -> words.

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
    Prediction,
    Tokens,
)
from explain.attribution import check_precision, check_steps, check_tolerance, integrated_gradients
from explain.errors import InputError
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
    check_tolerance(request.tolerance)
    check_precision(request.precision)
    if request.baseline not in BASELINES:
        raise InputError(f"Unknown baseline '{request.baseline}'; choose one of {', '.join(BASELINES)}.")
    if not isinstance(request.max_tokens, (int, np.integer)) or request.max_tokens < 3:
        raise InputError("The token limit must be a whole number of at least 3.")
    return request


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
        )
        timings["attribution"] = time.perf_counter() - t0

    words = words_for_tokens(request.text, tokens.offsets, tokens.special)
    resolved_request = replace(request, target=target.spec)
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
        word_scores=word_sums(attribution.scores, words.token_word, len(words)).astype(np.float32),
        timings=timings,
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
