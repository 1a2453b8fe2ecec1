"""What scalar output is explained, for each kind of model head.

A `Target` turns one forward pass (from token ids or from word embeddings) into
scores [batch, labels]; integrated gradients explains `scores[:, index]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from explain.analysis import TargetSpec
from explain.errors import InputError
from explain.models import HEAD_TARGETS, LoadedModel

SENTIMENT_LABELS = ("positive", "negative")
PROMPT_TEMPLATE = "This text is {}."
# Cosine similarities of sentence embeddings differ by a few hundredths between labels;
# scaling them before the softmax (as CLIP does) turns that into usable probabilities.
ZERO_SHOT_SCALE = 20.0
TARGET_KINDS = ("class", "masked_token", "zero_shot", "similarity")
# Families whose position ids skip padding tokens: fairseq's rule, positions padding_idx + 1, + 2, ... for
# the other tokens and padding_idx for pads (RoBERTa's `create_position_ids_from_input_ids`).
PAD_SKIPPING_POSITIONS = frozenset({"roberta", "xlm-roberta", "camembert", "mpnet"})


def default_target(head: str) -> TargetSpec:
    """The target a model is explained through when the request names none."""
    if head == "classification":
        return TargetSpec(kind="class")
    if head == "masked_lm":
        return TargetSpec(kind="masked_token")
    return TargetSpec(kind="zero_shot", labels=SENTIMENT_LABELS)


def target_kind(loaded: LoadedModel, spec: TargetSpec | None) -> str:
    """The target kind `spec` resolves to on this model (its head's default when it names none)."""
    return (spec.kind if spec is not None else "") or default_target(loaded.head).kind


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
    model_type = getattr(getattr(loaded.model, "config", None), "model_type", "")
    if model_type in PAD_SKIPPING_POSITIONS and padding_idx is not None:
        not_pad = input_ids.ne(padding_idx).long()
        return torch.cumsum(not_pad, dim=-1) * not_pad + int(padding_idx)
    return torch.arange(n, device=input_ids.device).expand_as(input_ids)


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)


@dataclass
class Target:
    """A resolved target: which module runs, how its output becomes scores, which score is explained."""

    spec: TargetSpec
    loaded: LoadedModel
    labels: list[str]
    description: str
    score_name: str
    index: int = -1
    mask_position: int = -1
    label_embeddings: torch.Tensor | None = None

    @property
    def pooled(self) -> bool:
        return self.spec.kind in ("zero_shot", "similarity")

    @property
    def module(self) -> torch.nn.Module:
        return self.loaded.encoder if self.pooled else self.loaded.model

    def scores_from_output(self, out: Any, attention_mask: torch.Tensor) -> torch.Tensor:
        """Scores [batch, labels] from the module's output."""
        kind = self.spec.kind
        if kind == "class":
            return torch.softmax(out.logits.float(), dim=-1)
        if kind == "masked_token":
            return torch.softmax(out.logits[:, self.mask_position].float(), dim=-1)
        pooled = F.normalize(mean_pool(out.last_hidden_state.float(), attention_mask), dim=-1)
        assert self.label_embeddings is not None  # set by resolve_target for pooled targets
        cosine = pooled @ self.label_embeddings.T
        if kind == "similarity":
            return cosine
        return torch.softmax(ZERO_SHOT_SCALE * cosine, dim=-1)

    def forward_embeddings(
        self,
        inputs_embeds: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Scores from word embeddings: the function integrated gradients differentiates.

        Pass the text's `model_position_ids`: without them the model numbers the positions of
        embeddings sequentially, which differs from its rule on ids for RoBERTa-style models.
        """
        extra: dict[str, torch.Tensor] = {}
        if token_type_ids is not None:
            extra["token_type_ids"] = token_type_ids
        if position_ids is not None:
            extra["position_ids"] = position_ids
        head = self.loaded.masked_lm_head if self.spec.kind == "masked_token" else None
        if head is not None:
            # Only the [MASK] position's logits are explained: projecting every position onto the vocabulary
            # (and back-propagating through it) would be most of the head's cost for nothing.
            hidden = self.loaded.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **extra)
            at_mask = hidden.last_hidden_state[:, self.mask_position : self.mask_position + 1]
            return torch.softmax(head(at_mask)[:, 0].float(), dim=-1)
        out = self.module(inputs_embeds=inputs_embeds, attention_mask=attention_mask, **extra)
        return self.scores_from_output(out, attention_mask)


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


def resolve_target(loaded: LoadedModel, spec: TargetSpec | None, input_ids: torch.Tensor) -> Target:
    """Check `spec` against the model and the text, and prepare what its scores need.

    The explained index is left at -1 when the spec asks for the top prediction;
    `choose_index` sets it once the scores for the text are known.
    """
    spec = spec or default_target(loaded.head)
    if not spec.kind:
        spec = TargetSpec(kind=default_target(loaded.head).kind, label=spec.label, labels=spec.labels,
                          prompts=spec.prompts, reference=spec.reference)
    if spec.kind not in TARGET_KINDS:
        raise InputError(f"Unknown target '{spec.kind}'; choose one of {', '.join(TARGET_KINDS)}.")
    if spec.kind not in HEAD_TARGETS[loaded.head]:
        raise InputError(
            f"The model '{loaded.spec}' ({loaded.head}) cannot explain a '{spec.kind}' target; "
            f"it can explain {', '.join(HEAD_TARGETS[loaded.head])}."
        )
    if spec.kind == "class":
        labels = loaded.label_names
        index = _find_label(spec.label, labels, "class")
        return Target(spec, loaded, labels, "", "probability", index=index)
    if spec.kind == "masked_token":
        return _masked_target(loaded, spec, input_ids)
    if spec.kind == "similarity":
        reference = spec.reference.strip()
        if not reference:
            raise InputError("The similarity target needs a reference text to compare with.")
        target = Target(spec, loaded, ["similarity"], "", "cosine similarity", index=0)
        target.label_embeddings = embed_texts(loaded, [reference])
        target.description = f"cosine similarity to «{reference}»"
        return target
    labels = [label.strip() for label in (spec.labels or SENTIMENT_LABELS)]
    prompts = [p.strip() for p in spec.prompts] or [PROMPT_TEMPLATE.format(label) for label in labels]
    if len(labels) < 2 or any(not label for label in labels):
        raise InputError("Zero-shot classification needs at least two non-empty labels.")
    if len(prompts) != len(labels) or any(not p for p in prompts):
        raise InputError("Zero-shot classification needs one non-empty prompt per label.")
    spec = TargetSpec(kind="zero_shot", label=spec.label, labels=tuple(labels), prompts=tuple(prompts))
    target = Target(spec, loaded, labels, "", "probability", index=_find_label(spec.label, labels, "label"))
    target.label_embeddings = embed_texts(loaded, prompts)
    return target


def _find_label(label: str, labels: list[str], what: str) -> int:
    label = label.strip()
    if not label:
        return -1
    lowered = [name.lower() for name in labels]
    if label.lower() in lowered:
        return lowered.index(label.lower())
    if label.isdigit() and int(label) < len(labels):
        return int(label)
    raise InputError(f"There is no {what} '{label}'; the choices are {', '.join(labels)}.")


def _masked_target(loaded: LoadedModel, spec: TargetSpec, input_ids: torch.Tensor) -> Target:
    tok = loaded.tokenizer
    positions = (input_ids[0] == tok.mask_token_id).nonzero().flatten().tolist()
    if not positions:
        raise InputError(f"The masked-token target needs a {tok.mask_token} token in the text.")
    index = -1
    if spec.label.strip():
        ids = tok(spec.label.strip(), add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise InputError(f"'{spec.label.strip()}' is not a single token in this model's vocabulary.")
        index = int(ids[0])
    labels = tok.convert_ids_to_tokens(list(range(len(tok))))
    return Target(spec, loaded, labels, "", "probability", index=index, mask_position=int(positions[0]))


def choose_index(target: Target, scores: torch.Tensor) -> None:
    """Fix the explained index (top prediction when unset) and the human description."""
    if target.index < 0:
        target.index = int(scores.argmax())
    label = target.labels[target.index]
    kind = target.spec.kind
    if kind == "class":
        target.description = f"P({label}) from the classification head"
    elif kind == "masked_token":
        target.description = f"P({label}) at {target.loaded.tokenizer.mask_token} (token {target.mask_position})"
    elif kind == "zero_shot":
        target.description = f"P({label}) under zero-shot labels ({', '.join(target.labels)})"
