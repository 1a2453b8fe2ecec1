"""Targets: what scalar output of the model is explained, declared once per kind in a registry.

A `TargetKind` declares its name, the model heads it fits, which request fields it
reads and what texts it needs; its `resolve` builds an immutable `Target` for one
model and one text. A `Target` scores many input variants in one forward pass
(`forward_embeddings`, [variants, labels]); every method, faithfulness metric and
head analysis explains `scores[:, target.index]`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from explain.errors import InputError
from explain.families import family_of
from explain.models import HEAD_TARGETS, LoadedModel
from explain.records import Prediction, TargetSpec
from explain.targets.fields import SPAN_DISPLAYS, TARGET_FIELDS

SCALES = ("probability", "logit")


def model_position_ids(loaded: LoadedModel, input_ids: torch.Tensor) -> torch.Tensor:
    """Position ids [batch, tokens] by the model's own rule for `input_ids`.

    Every pass over one text (attention, endpoint scores, each integrated-gradients
    step) gets these explicitly: a model given `inputs_embeds` cannot see which
    tokens are padding, so RoBERTa-style models would otherwise number positions
    differently on the embeddings than on the ids, and explain another function.
    """
    n = input_ids.shape[-1]
    embeddings = getattr(getattr(loaded.model, "base_model", loaded.model), "embeddings", None)
    padding_idx = getattr(embeddings, "padding_idx", None)
    if padding_idx is not None and family_of(loaded.config, "position ids").positions == "after_padding":
        not_pad = input_ids.ne(padding_idx).long()
        return torch.cumsum(not_pad, dim=-1) * not_pad + int(padding_idx)
    return torch.arange(n, device=input_ids.device).expand_as(input_ids)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@dataclass(frozen=True, eq=False)
class TextLayout:
    """What a target may need to know about the encoded text before any pass.

    input_ids: [1, tokens]; segments: int [tokens], which text each token comes from
    (0 the first, 1 the second, -1 special tokens); token_type_ids: [1, tokens] where the model takes them.
    """

    loaded: LoadedModel
    input_ids: torch.Tensor
    segments: np.ndarray
    token_type_ids: torch.Tensor | None = None

    def forward(self) -> Any:
        """The whole model's output for the text (no gradient): what targets that pick a position look at."""
        extra = model_extras(self.token_type_ids, model_position_ids(self.loaded, self.input_ids))
        with torch.no_grad():
            return self.loaded.model(input_ids=self.input_ids, attention_mask=torch.ones_like(self.input_ids), **extra)


@dataclass(frozen=True)
class HeadReadout:
    """The explained logit as a sum of head outputs, for decompositions (DecompX): for each (row, column) term,
    output `column` of the family's `head` modules (`ModelFamily.head_modules`) at last-layer row `row`."""

    head: str
    terms: tuple[tuple[int, int], ...]


@dataclass(frozen=True, eq=False)
class CosineReadout:
    """The explained value as the cosine of the mean-pooled last hidden states (weighted by the attention mask)
    with a fixed unit vector `direction` [hidden]; a softmax over such cosines is decomposed on the cosine."""

    direction: torch.Tensor


Readout = HeadReadout | CosineReadout


@dataclass(frozen=True, eq=False)
class Target:
    """A resolved target for one model and one text: how outputs become scores, and which score is explained.

    labels: the name of each score column; index: the explained column (-1 until `chosen`).
    """

    spec: TargetSpec
    loaded: LoadedModel
    labels: tuple[str, ...]
    index: int = -1
    score_name: str = "probability"

    pooled: ClassVar[bool] = False  # reads the mean-pooled encoder output rather than a head

    @property
    def kind(self) -> TargetKind:
        return TARGETS[self.spec.kind]

    @property
    def module(self) -> torch.nn.Module:
        return self.loaded.encoder if self.pooled else self.loaded.model

    def scores_from_output(self, out: Any, attention_mask: torch.Tensor) -> torch.Tensor:
        """Scores [batch, labels] from the module's output."""
        raise NotImplementedError

    def forward_embeddings(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores [variants, labels] of a batch of input variants given as word embeddings.

        This is the function every method differentiates or perturbs. Pass the text's
        `model_position_ids`: without them the model numbers the positions of embeddings
        sequentially, which differs from its rule on ids for RoBERTa-style models.
        """
        out = self.module(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                          **model_extras(token_type_ids, position_ids))
        return self.scores_from_output(out, attention_mask)

    def forward_ids(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None, position_ids: torch.Tensor) -> tuple[torch.Tensor, Any]:
        """Scores [batch, labels] and the module's output (with attention maps) from token ids."""
        out = self.module(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True,
                          **model_extras(token_type_ids, position_ids))
        return self.scores_from_output(out, attention_mask), out

    def kept_in_baseline(self, input_ids: torch.Tensor) -> torch.Tensor:
        """Tokens (besides the special ones) the baseline keeps, because the question itself lives in them."""
        return torch.zeros_like(input_ids, dtype=torch.bool)

    def readout_weights(self, attention_mask: torch.Tensor) -> np.ndarray:
        """How the target reads the last layer's rows, float64 [tokens] summing to 1 (attention-based methods)."""
        weights = np.zeros(attention_mask.shape[-1])
        weights[0] = 1.0
        return weights

    def readout(self) -> Readout:
        """The explained score's logit (or cosine) as a decomposition reads it from the last hidden states."""
        raise InputError(f"The '{self.spec.kind}' target has no head a decomposition can follow.")

    def top_index(self, scores: torch.Tensor) -> int:
        return int(scores.argmax())

    def chosen(self, scores: torch.Tensor) -> Target:
        """This target with the explained column fixed: the requested label, else the top prediction."""
        return self if self.index >= 0 else replace(self, index=self.top_index(scores))

    @property
    def description(self) -> str:
        return f"{self.labels[self.index]}"

    def prediction(self, scores: np.ndarray) -> Prediction:
        """What the model predicts for the text, as shown beside the explanation."""
        return Prediction(labels=list(self.labels), scores=scores.astype(np.float32), explained_index=self.index,
                          description=self.description, score_name=self.score_name)


def model_extras(token_type_ids: torch.Tensor | None, position_ids: torch.Tensor | None) -> dict[str, torch.Tensor]:
    extra: dict[str, torch.Tensor] = {}
    if token_type_ids is not None:
        extra["token_type_ids"] = token_type_ids
    if position_ids is not None:
        extra["position_ids"] = position_ids
    return extra


Resolver = Callable[[LoadedModel, TargetSpec, TextLayout], Target]


@dataclass(frozen=True)
class TargetKind:
    """A target's declaration: everything the CLI, the URL and the dashboard controls are built from.

    heads: the model heads it fits (listed for each head with its default kind first);
    reads: the TargetSpec fields it uses ("label", "labels", "prompts", "reference", "token", "part", "logit");
    needs: "" (one text), "pair" (a second text) or "question" (the text is the context);
    keeps_mask: the mask token in the text stays the mask; position_bound: it reads one token position,
    so deleting words (which moves positions) cannot be used to perturb it; spans: how its prediction's spans
    are shown beside the text ("entities", "answer" or "none", `SPAN_DISPLAYS`).
    """

    name: str
    title: str
    summary: str
    heads: tuple[str, ...]
    resolve: Resolver
    reads: tuple[str, ...] = ("label",)
    needs: str = ""
    keeps_mask: bool = False
    position_bound: bool = False
    default_for: tuple[str, ...] = ()  # heads explained through this kind when the request names none
    spans: str = "none"

    def __post_init__(self) -> None:
        unknown = [name for name in self.reads if name not in TARGET_FIELDS]
        if unknown or self.spans not in SPAN_DISPLAYS:
            raise ValueError(f"target kind {self.name!r} declares unknown fields {unknown} or spans {self.spans!r}")


TARGETS: dict[str, TargetKind] = {}


def register(kind: TargetKind) -> TargetKind:
    if kind.name in TARGETS:
        raise ValueError(f"The target kind '{kind.name}' is registered twice.")
    TARGETS[kind.name] = kind
    for head in kind.heads:
        known = HEAD_TARGETS.get(head, ())
        HEAD_TARGETS[head] = (kind.name, *known) if head in kind.default_for else (*known, kind.name)
    return kind


def kinds_for_head(head: str) -> tuple[str, ...]:
    return HEAD_TARGETS.get(head, ())


def default_target(head: str) -> TargetSpec:
    """The target a model is explained through when the request names none."""
    kinds = kinds_for_head(head)
    if not kinds:
        raise InputError(f"No target can explain a model with a '{head}' head.")
    return TargetSpec(kind=kinds[0])


def target_kind(loaded: LoadedModel, spec: TargetSpec | None) -> str:
    """The target kind `spec` resolves to on this model (its head's default when it names none)."""
    return (spec.kind if spec is not None else "") or default_target(loaded.head).kind


def get_target_kind(name: str) -> TargetKind:
    if name not in TARGETS:
        raise InputError(f"Unknown target '{name}'; choose one of {', '.join(TARGETS)}.")
    return TARGETS[name]


def fitting_kind(loaded: LoadedModel, name: str) -> TargetKind:
    """The declared kind `name`, after checking that this model's head can be explained through it."""
    kind = get_target_kind(name)
    if name not in kinds_for_head(loaded.head):
        raise InputError(
            f"The model '{loaded.spec}' ({loaded.head}) cannot explain a '{name}' target; "
            f"it can explain {', '.join(kinds_for_head(loaded.head))}."
        )
    return kind


def resolve_target(loaded: LoadedModel, spec: TargetSpec | None, input_ids: torch.Tensor,
                   segments: np.ndarray | None = None, token_type_ids: torch.Tensor | None = None) -> Target:
    """Check `spec` against the model and the text, and prepare what its scores need.

    The explained index is left at -1 when the spec asks for the top prediction;
    `choose_index` fixes it once the scores for the text are known.
    """
    spec = spec or default_target(loaded.head)
    if not spec.kind:
        spec = replace(spec, kind=default_target(loaded.head).kind)
    kind = fitting_kind(loaded, spec.kind)
    if segments is None:
        segments = np.zeros(input_ids.shape[-1], dtype=np.int8)
    return kind.resolve(loaded, spec, TextLayout(loaded, input_ids, segments, token_type_ids))


def choose_index(target: Target, scores: torch.Tensor) -> Target:
    """`target` with its explained index fixed (the top prediction when the spec names no label)."""
    return target.chosen(scores)


def find_label(label: str, labels: tuple[str, ...] | list[str], what: str) -> int:
    """The index of `label` among `labels` (case-insensitive, or a number); -1 when empty."""
    label = label.strip()
    if not label:
        return -1
    lowered = [name.lower() for name in labels]
    if label.lower() in lowered:
        return lowered.index(label.lower())
    if label.isdigit() and int(label) < len(labels):
        return int(label)
    raise InputError(f"There is no {what} '{label}'; the choices are {', '.join(labels)}.")


def squash(logits: torch.Tensor, spec: TargetSpec, multi_label: bool = False) -> torch.Tensor:
    """Logits as the spec's scale: raw logits, per-label sigmoids (multi-label heads) or a softmax."""
    logits = logits.float()
    if spec.logit:
        return logits
    return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)


def pooled_embeddings(loaded: LoadedModel, out: Any, attention_mask: torch.Tensor) -> torch.Tensor:
    """L2-normalised mean-pooled last hidden states [batch, hidden]."""
    return F.normalize(mean_pool(out.last_hidden_state.float(), attention_mask), dim=-1)
