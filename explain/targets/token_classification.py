"""The token-class target (NER, POS): the probability of a label at one token, and the predicted entities.

Entities follow the BIO/IOB2 convention of Hugging Face token-classification configs:
"B-X" starts an entity of type X, "I-X" continues one (or starts it when the previous token
is not of type X), "O" and special tokens are outside. Labels without a prefix (POS tags) make
one span per run of the same label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explain.errors import InputError
from explain.models import LoadedModel
from explain.records import Prediction, Span, TargetSpec
from explain.targets.base import (
    HeadReadout,
    Target,
    TargetKind,
    TextLayout,
    find_label,
    register,
    squash,
)

OUTSIDE = "O"


def entity_type(label: str) -> tuple[str, str]:
    """("B" | "I" | "", type) of a BIO label; ("", "") for outside."""
    if label == OUTSIDE or not label:
        return "", ""
    if len(label) > 2 and label[1] in "-_" and label[0] in "BIES":
        return ("B" if label[0] in "BS" else "I"), label[2:]
    return "", label


def merge_entities(labels: list[str], probabilities: np.ndarray, special: np.ndarray) -> tuple[Span, ...]:
    """Spans of consecutive tokens forming one entity, from each token's predicted label.

    probabilities: [tokens] of each token's predicted label; a span's score is their mean.
    """
    spans: list[Span] = []
    start, current = -1, ""

    def close(end: int) -> None:
        if start >= 0:
            spans.append(Span(label=current, first_token=start, last_token=end,
                              score=float(np.mean(probabilities[start : end + 1]))))

    for i, label in enumerate(labels):
        prefix, kind = ("", "") if special[i] else entity_type(label)
        continues = bool(kind) and kind == current and prefix != "B" and start >= 0
        if continues:
            continue
        close(i - 1)
        start, current = (i, kind) if kind else (-1, "")
    close(len(labels) - 1)
    return tuple(spans)


@dataclass(frozen=True, eq=False)
class TokenClassTarget(Target):
    """P(label) at one token of a token-classification head."""

    token: int = 0
    token_labels: tuple[str, ...] = ()
    entities: tuple[Span, ...] = ()

    def scores_from_output(self, out: Any, attention_mask: torch.Tensor) -> torch.Tensor:
        return squash(out.logits[:, self.token], self.spec)

    def readout_weights(self, attention_mask: torch.Tensor) -> np.ndarray:
        weights = np.zeros(attention_mask.shape[-1])
        weights[self.token] = 1.0
        return weights

    def readout(self) -> HeadReadout:
        return HeadReadout("token_classification", ((self.token, self.index),))

    @property
    def description(self) -> str:
        what = "logit" if self.spec.logit else "P"
        return f"{what}({self.labels[self.index]}) at token {self.token} «{self.token_labels[self.token]}»"

    def prediction(self, scores: np.ndarray) -> Prediction:
        return Prediction(labels=list(self.labels), scores=scores.astype(np.float32), explained_index=self.index,
                          description=self.description, score_name=self.score_name, spans=self.entities)


def predicted_entities(loaded: LoadedModel, layout: TextLayout, special: np.ndarray) -> tuple[Span, ...]:
    """The entities the model predicts for the text (one no-grad pass)."""
    probs = torch.softmax(layout.forward().logits[0].float(), dim=-1).cpu().numpy()
    best = probs.argmax(-1)
    labels = [loaded.label_names[int(i)] for i in best]
    return merge_entities(labels, probs[np.arange(len(best)), best], special)


def first_entity_token(entities: tuple[Span, ...], special: np.ndarray) -> int:
    """The token explained when the request names none: the first entity's first token, else the first ordinary one."""
    if entities:
        return entities[0].first_token
    ordinary = np.flatnonzero(~np.asarray(special, dtype=bool))
    return int(ordinary[0]) if len(ordinary) else 0


def resolve_token_class(loaded: LoadedModel, spec: TargetSpec, layout: TextLayout) -> Target:
    n = layout.input_ids.shape[-1]
    special = layout.segments < 0
    entities = predicted_entities(loaded, layout, special)
    token = spec.token if spec.token >= 0 else first_entity_token(entities, special)
    if not 0 <= token < n:
        raise InputError(f"There is no token {token}; the text has tokens 0 to {n - 1}.")
    labels = tuple(loaded.label_names)
    tokens = tuple(loaded.tokenizer.convert_ids_to_tokens(layout.input_ids[0].tolist()))
    return TokenClassTarget(spec, loaded, labels, index=find_label(spec.label, labels, "label"),
                            score_name="logit" if spec.logit else "probability", token=token, token_labels=tokens,
                            entities=entities)


TOKEN_CLASS = register(TargetKind(
    name="token_class", title="label of one token",
    summary="The probability of a label at one token (NER, POS), from the token-classification head.",
    heads=("token_classification",), resolve=resolve_token_class, default_for=("token_classification",), reads=("token", "label", "logit"),
    position_bound=True, spans="entities",
))
