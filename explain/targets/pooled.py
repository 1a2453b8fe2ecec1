"""Targets any encoder can be explained through: zero-shot labels and similarity to a reference text.

Both read the mean-pooled last hidden states, so they need no head and fit every model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from explain.errors import InputError
from explain.models import LoadedModel
from explain.records import TargetSpec
from explain.targets.base import CosineReadout, Target, TargetKind, TextLayout, find_label, mean_pool, register
from explain.targets.fields import PROMPT_TEMPLATE, SENTIMENT_LABELS

# Cosine similarities of sentence embeddings differ by a few hundredths between labels;
# scaling them before the softmax (as CLIP does) turns that into usable probabilities.
ZERO_SHOT_SCALE = 20.0
EVERY_HEAD = ("classification", "masked_lm", "pretraining", "next_sentence", "token_classification",
              "question_answering", "encoder")


def embed_texts(loaded: LoadedModel, texts: list[str]) -> torch.Tensor:
    """L2-normalised mean-pooled embeddings of `texts` (no gradient).

    Typed control tokens ("[CLS]", "<s>") are read as plain text, as in the analysed text.
    """
    enc = loaded.tokenizer(
        texts, return_tensors="pt", padding=True, truncation=True, max_length=loaded.max_tokens,
        split_special_tokens=True,
    ).to(loaded.device)
    enc.pop("offset_mapping", None)
    with torch.inference_mode():
        out = loaded.encoder(**enc)
    return F.normalize(mean_pool(out.last_hidden_state.float(), enc["attention_mask"]), dim=-1).clone()


@dataclass(frozen=True, eq=False)
class PooledTarget(Target):
    """Cosine similarity of the mean-pooled text embedding to fixed embeddings (softmaxed for zero-shot labels)."""

    label_embeddings: torch.Tensor | None = None
    softmax: bool = True

    pooled = True

    def scores_from_output(self, out: Any, attention_mask: torch.Tensor) -> torch.Tensor:
        pooled = F.normalize(mean_pool(out.last_hidden_state.float(), attention_mask), dim=-1)
        assert self.label_embeddings is not None
        cosine = pooled @ self.label_embeddings.T
        return torch.softmax(ZERO_SHOT_SCALE * cosine, dim=-1) if self.softmax else cosine

    def readout_weights(self, attention_mask: torch.Tensor) -> np.ndarray:
        mask = attention_mask[0].double().cpu().numpy()
        return mask / mask.sum()

    def readout(self) -> CosineReadout:
        assert self.label_embeddings is not None
        return CosineReadout(self.label_embeddings[self.index])

    @property
    def description(self) -> str:
        if not self.softmax:
            return f"cosine similarity to «{self.spec.reference.strip()}»"
        return f"P({self.labels[self.index]}) under zero-shot labels ({', '.join(self.labels)})"


def resolve_zero_shot(loaded: LoadedModel, spec: TargetSpec, layout: TextLayout) -> Target:
    labels = [label.strip() for label in (spec.labels or SENTIMENT_LABELS)]
    prompts = [p.strip() for p in spec.prompts] or [PROMPT_TEMPLATE.format(label) for label in labels]
    if len(labels) < 2 or any(not label for label in labels):
        raise InputError("Zero-shot classification needs at least two non-empty labels.")
    if len(prompts) != len(labels) or any(not p for p in prompts):
        raise InputError("Zero-shot classification needs one non-empty prompt per label.")
    spec = TargetSpec(kind="zero_shot", label=spec.label, labels=tuple(labels), prompts=tuple(prompts))
    return PooledTarget(spec, loaded, tuple(labels), index=find_label(spec.label, labels, "label"),
                        label_embeddings=embed_texts(loaded, prompts))


def resolve_similarity(loaded: LoadedModel, spec: TargetSpec, layout: TextLayout) -> Target:
    reference = spec.reference.strip()
    if not reference:
        raise InputError("The similarity target needs a reference text to compare with.")
    return PooledTarget(spec, loaded, ("similarity",), index=0, score_name="cosine similarity",
                        label_embeddings=embed_texts(loaded, [reference]), softmax=False)


ZERO_SHOT = register(TargetKind(
    name="zero_shot", title="zero-shot labels",
    summary="Which of several label prompts the mean-pooled text embedding is closest to (softmaxed cosines).",
    heads=EVERY_HEAD, resolve=resolve_zero_shot, default_for=("encoder",), reads=("label", "labels", "prompts"),
))
SIMILARITY = register(TargetKind(
    name="similarity", title="similarity to a reference text",
    summary="Cosine similarity of the mean-pooled text embedding to a reference text's.",
    heads=EVERY_HEAD, resolve=resolve_similarity, reads=("reference",),
))
