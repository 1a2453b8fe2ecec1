"""Which heads the block now running removes from each model, for code below `explain.heads` that must follow them.

`explain.heads.ablation.request_ablation` records them here while its gates are on; the decompositions (ALTI,
GlobEnc, DecompX) read the attention of the forward pass, which still holds a removed head's weights (a head is
removed at its output), and zero those heads through `attention_of_kept_heads`.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass

import torch

from explain.errors import InputError


@dataclass(frozen=True, eq=False)
class RemovedHeads:
    """The heads text ("0:1,2:*"), how they are removed ("zero" or "mean"), and [layers, heads] gates (0 removed)."""

    text: str
    mode: str
    kept: torch.Tensor


# The ablation each model's encoder runs under now; a block entered inside one with the same heads adds nothing.
ACTIVE: weakref.WeakKeyDictionary[torch.nn.Module, RemovedHeads] = weakref.WeakKeyDictionary()


def attention_of_kept_heads(encoder: torch.nn.Module, attentions: tuple[torch.Tensor, ...], method: str
                            ) -> tuple[torch.Tensor, ...]:
    """Each layer's attention [heads, tokens, tokens] with the heads removed by the block now running set to zero,
    so that a decomposition reading it follows the ablated model as the forward pass does; unchanged outside any
    ablation. A head set to its mean outputs a constant none of these decompositions splits: InputError."""
    active = ACTIVE.get(encoder)
    if active is None:
        return attentions
    if active.mode != "zero":
        raise InputError(f"{method} follows removed heads only when they are set to zero, not to their mean; "
                         "choose zero ablation or another method.")
    return tuple(a * active.kept[layer].to(a)[:, None, None] for layer, a in enumerate(attentions))
