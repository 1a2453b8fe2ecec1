"""A whole analysis (prediction, attention, attributions) of a model with some heads removed."""

from __future__ import annotations

from explain.analysis import Analysis, AnalysisRequest
from explain.heads.gating import HeadSet, check_mode, gated, head_means
from explain.models import LoadedModel
from explain.pipeline import StageCallback, analyze, tokenize, validate
from explain.targets import TARGETS, target_kind


def analyze_ablated(
    request: AnalysisRequest,
    loaded: LoadedModel,
    heads: HeadSet,
    mode: str = "zero",
    *,
    progress: StageCallback | None = None,
) -> Analysis:
    """`explain.analyze(request, loaded)` with `heads` removed: set to zero, or to their mean output over
    the request's text ("mean", from an unablated pass).

    The model's lock is held from the mean pass to the end of the analysis, and the gates come off
    before it is released, so other analyses on the same model never see them.
    """
    check_mode(mode)
    validate(request)
    with loaded.lock:
        means = None
        if mode == "mean":
            enc, _ = tokenize(loaded, request.text, min(int(request.max_tokens), loaded.max_tokens),
                              keep_mask=TARGETS[target_kind(loaded, request.target)].keeps_mask)
            means = head_means(loaded, enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"))
        with gated(loaded, heads, mode, means):
            return analyze(request, loaded, progress=progress)
