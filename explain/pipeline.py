"""One analysis: tokenise -> forward pass with attention -> integrated gradients -> words.

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
from explain.targets import choose_index, resolve_target
from explain.words import word_sums, words_for_tokens

# Characters kept per token of budget before tokenising: far more than any real token uses,
# so the cut only saves time on huge pastes and never changes what the model sees.
CHARS_PER_TOKEN_CAP = 50
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


def tokenize(loaded: LoadedModel, text: str, max_tokens: int) -> tuple[dict[str, torch.Tensor], Tokens]:
    """Token ids (truncated to `max_tokens`) and the Tokens record with offsets into `text`."""
    tok = loaded.tokenizer
    head = text[: max_tokens * CHARS_PER_TOKEN_CAP]
    enc = tok(
        head,
        return_tensors="pt",
        truncation=True,
        max_length=max_tokens,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
    )
    n_full = len(tok(head, add_special_tokens=True, truncation=False)["input_ids"])
    ids = enc["input_ids"][0]
    special = enc.pop("special_tokens_mask")[0].bool()
    offsets = enc.pop("offset_mapping")[0].numpy().astype(np.int32)
    tokens = Tokens(
        tokens=tok.convert_ids_to_tokens(ids.tolist()),
        offsets=offsets,
        special=special.numpy(),
        truncated=len(head) < len(text) or n_full > len(ids),
        n_tokens_full=max(n_full, len(ids)),
    )
    inputs = {k: v.to(loaded.device) for k, v in enc.items()}
    inputs["special"] = special.unsqueeze(0).to(loaded.device)
    return inputs, tokens


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
        inputs, tokens = tokenize(loaded, request.text, max_tokens)
        ids, mask, special = inputs["input_ids"], inputs["attention_mask"], inputs["special"]
        types = inputs.get("token_type_ids")
        target = resolve_target(loaded, request.target, ids)

        report("attention", 0.0)
        t0 = time.perf_counter()
        extra = {} if types is None else {"token_type_ids": types}
        with torch.inference_mode():
            out = target.module(input_ids=ids, attention_mask=mask, output_attentions=True, **extra)
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
