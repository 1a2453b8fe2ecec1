"""What scalar output is explained: a registry of target kinds (see `explain.targets.base`).

    from explain.targets import TARGETS, resolve_target
    TARGETS["class"].heads  # ('classification',)
"""

from __future__ import annotations

from explain.targets.base import (
    SCALES,
    TARGETS,
    CosineReadout,
    HeadReadout,
    Readout,
    Target,
    TargetKind,
    TextLayout,
    choose_index,
    default_target,
    find_label,
    fitting_kind,
    get_target_kind,
    kinds_for_head,
    mean_pool,
    model_position_ids,
    resolve_target,
    target_kind,
)
from explain.targets.classification import NEXT_SENTENCE_LABELS, ClassTarget, NextSentenceTarget, is_multi_label
from explain.targets.fields import ANSWER_PARTS, PROMPT_TEMPLATE, SENTIMENT_LABELS, TARGET_FIELDS, TargetField
from explain.targets.masked_lm import TOP_MASKED_PREDICTIONS, MaskedTokenTarget
from explain.targets.pooled import ZERO_SHOT_SCALE, PooledTarget, embed_texts
from explain.targets.question_answering import AnswerTarget, best_span
from explain.targets.token_classification import TokenClassTarget, first_entity_token, merge_entities

TARGET_KINDS = tuple(TARGETS)

__all__ = [
    "ANSWER_PARTS",
    "NEXT_SENTENCE_LABELS",
    "PROMPT_TEMPLATE",
    "SCALES",
    "SENTIMENT_LABELS",
    "TARGETS",
    "TARGET_FIELDS",
    "TargetField",
    "TARGET_KINDS",
    "TOP_MASKED_PREDICTIONS",
    "ZERO_SHOT_SCALE",
    "AnswerTarget",
    "CosineReadout",
    "HeadReadout",
    "Readout",
    "ClassTarget",
    "MaskedTokenTarget",
    "NextSentenceTarget",
    "PooledTarget",
    "Target",
    "TargetKind",
    "TextLayout",
    "TokenClassTarget",
    "best_span",
    "choose_index",
    "default_target",
    "embed_texts",
    "find_label",
    "first_entity_token",
    "fitting_kind",
    "get_target_kind",
    "is_multi_label",
    "kinds_for_head",
    "mean_pool",
    "merge_entities",
    "model_position_ids",
    "resolve_target",
    "target_kind",
]
