"""Targets read from a sequence-level head: a class of a classification head, and next-sentence prediction."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from explain.errors import InputError
from explain.models import LoadedModel
from explain.records import Prediction, TargetSpec
from explain.targets.base import HeadReadout, Target, TargetKind, TextLayout, find_label, register, squash

# BERT's next-sentence head: label 0 means the second text follows the first.
NEXT_SENTENCE_LABELS = ("is next", "not next")


def is_multi_label(loaded: LoadedModel) -> bool:
    return getattr(loaded.config, "problem_type", None) == "multi_label_classification"


@dataclass(frozen=True, eq=False)
class ClassTarget(Target):
    """A class of a classification head: its softmax probability, its own sigmoid (multi-label heads) or its logit."""

    multi_label: bool = False

    def scores_from_output(self, out: Any, attention_mask: torch.Tensor) -> torch.Tensor:
        return squash(out.logits, self.spec, self.multi_label)

    def prediction(self, scores: np.ndarray) -> Prediction:
        return replace(super().prediction(scores), independent=self.multi_label and not self.spec.logit)

    def readout(self) -> HeadReadout:
        return HeadReadout("classification", ((0, self.index),))

    @property
    def description(self) -> str:
        label = self.labels[self.index]
        if self.spec.logit:
            return f"logit of {label} from the classification head"
        if self.multi_label:
            return f"P({label}) from the multi-label head (one sigmoid per label)"
        return f"P({label}) from the classification head"


def resolve_class(loaded: LoadedModel, spec: TargetSpec, layout: TextLayout) -> Target:
    labels = tuple(loaded.label_names)
    return ClassTarget(spec, loaded, labels, index=find_label(spec.label, labels, "class"),
                       score_name="logit" if spec.logit else "probability", multi_label=is_multi_label(loaded))


@dataclass(frozen=True, eq=False)
class NextSentenceTarget(Target):
    """Whether the second text follows the first, from BERT's next-sentence head (alone or in pre-training)."""

    def scores_from_output(self, out: Any, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = getattr(out, "seq_relationship_logits", None)
        return squash(out.logits if logits is None else logits, self.spec)

    def readout(self) -> HeadReadout:
        return HeadReadout("next_sentence", ((0, self.index),))

    @property
    def description(self) -> str:
        what = "logit" if self.spec.logit else "P"
        return f"{what}({self.labels[self.index]}) from the next-sentence head"


def resolve_next_sentence(loaded: LoadedModel, spec: TargetSpec, layout: TextLayout) -> Target:
    if not (layout.segments == 1).any():
        raise InputError("Next-sentence prediction needs a second text; type it in the second box (--pair).")
    return NextSentenceTarget(spec, loaded, NEXT_SENTENCE_LABELS,
                              index=find_label(spec.label, NEXT_SENTENCE_LABELS, "next-sentence label"),
                              score_name="logit" if spec.logit else "probability")


CLASS = register(TargetKind(
    name="class", title="class probability",
    summary="A class of the classification head (softmax, or one sigmoid per label on multi-label heads).",
    heads=("classification",), resolve=resolve_class, default_for=("classification",), reads=("label", "logit"),
))
NEXT_SENTENCE = register(TargetKind(
    name="next_sentence", title="next sentence",
    summary="Whether the second text follows the first, from BERT's next-sentence-prediction head.",
    heads=("next_sentence", "pretraining"), resolve=resolve_next_sentence, default_for=("next_sentence",), reads=("label", "logit"), needs="pair",
))
