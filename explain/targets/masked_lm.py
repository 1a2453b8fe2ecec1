"""The masked-token target: the probability of a word at the first mask token, from a masked-LM head."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explain.errors import InputError
from explain.models import LoadedModel
from explain.records import Prediction, TargetSpec
from explain.targets.base import HeadReadout, Target, TargetKind, TextLayout, model_extras, register, squash

TOP_MASKED_PREDICTIONS = 10


@dataclass(frozen=True, eq=False)
class MaskedTokenTarget(Target):
    mask_position: int = 0

    def scores_from_output(self, out: Any, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = getattr(out, "logits", None)
        logits = out.prediction_logits if logits is None else logits
        return squash(logits[:, self.mask_position], self.spec)

    def forward_embeddings(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                           token_type_ids: torch.Tensor | None = None,
                           position_ids: torch.Tensor | None = None) -> torch.Tensor:
        head = self.loaded.masked_lm_head
        if head is None:
            return super().forward_embeddings(inputs_embeds, attention_mask, token_type_ids, position_ids)
        # Only the mask position's logits are explained: projecting every position onto the vocabulary
        # (and back-propagating through it) would be most of the head's cost for nothing.
        hidden = self.loaded.encoder(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                                     **model_extras(token_type_ids, position_ids))
        at_mask = hidden.last_hidden_state[:, self.mask_position : self.mask_position + 1]
        return squash(head(at_mask)[:, 0], self.spec)

    def kept_in_baseline(self, input_ids: torch.Tensor) -> torch.Tensor:
        # Keeping the mask keeps the question asked all along the path; replacing it would credit much of the
        # prediction to the mask token itself.
        mask_id = self.loaded.tokenizer.mask_token_id
        return torch.zeros_like(input_ids, dtype=torch.bool) if mask_id is None else input_ids.eq(mask_id)

    def readout_weights(self, attention_mask: torch.Tensor) -> np.ndarray:
        weights = np.zeros(attention_mask.shape[-1])
        weights[self.mask_position] = 1.0
        return weights

    def readout(self) -> HeadReadout:
        return HeadReadout("masked_lm", ((self.mask_position, self.index),))

    @property
    def description(self) -> str:
        what = "logit" if self.spec.logit else "P"
        mask = self.loaded.tokenizer.mask_token
        return f"{what}({self.labels[self.index]}) at {mask} (token {self.mask_position})"

    def prediction(self, scores: np.ndarray) -> Prediction:
        order = [int(i) for i in np.argsort(-scores)[:TOP_MASKED_PREDICTIONS]]
        if self.index not in order:
            order.append(self.index)
        return Prediction(labels=[self.labels[i] for i in order], scores=scores[order].astype(np.float32),
                          explained_index=order.index(self.index), description=self.description,
                          score_name=self.score_name)


def resolve_masked(loaded: LoadedModel, spec: TargetSpec, layout: TextLayout) -> Target:
    tok = loaded.tokenizer
    positions = (layout.input_ids[0] == tok.mask_token_id).nonzero().flatten().tolist()
    if not positions:
        raise InputError(f"The masked-token target needs a {tok.mask_token} token in the text.")
    index = -1
    if spec.label.strip():
        ids = tok(spec.label.strip(), add_special_tokens=False)["input_ids"]
        if len(ids) != 1:
            raise InputError(f"'{spec.label.strip()}' is not a single token in this model's vocabulary.")
        index = int(ids[0])
    labels = tuple(tok.convert_ids_to_tokens(list(range(len(tok)))))
    return MaskedTokenTarget(spec, loaded, labels, index=index, score_name="logit" if spec.logit else "probability",
                             mask_position=int(positions[0]))


MASKED_TOKEN = register(TargetKind(
    name="masked_token", title="masked token probability",
    summary="The probability of a word at the first mask token, from the masked-LM head.",
    heads=("masked_lm", "pretraining"), resolve=resolve_masked, default_for=("masked_lm", "pretraining"), reads=("label", "logit"), keeps_mask=True,
    position_bound=True,
))
