"""A whole analysis (prediction, attention, attributions) of a model with some heads removed.

A request names the heads it removes (`AnalysisRequest.ablate`, e.g. "0:1,2:*") and how
(`ablate_mode`): `explain.analyze` and every method pass of the pipeline then run inside
`request_ablation`, so the prediction and each attribution explain the ablated model.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from explain.errors import InputError
from explain.heads.gating import HeadSet, check_head_text, check_mode, gated, head_means
from explain.models import LoadedModel
from explain.records import AnalysisRequest

# The request gates on each model now ((heads text, mode)), so nested pipeline calls gate once.
ACTIVE: weakref.WeakKeyDictionary[torch.nn.Module, tuple[str, str]] = weakref.WeakKeyDictionary()


def check_ablation(request: AnalysisRequest) -> None:
    """The request's heads text and mode, checked without the model (InputError with one sentence)."""
    check_head_text(request.ablate)
    check_mode(request.ablate_mode)


def requested_heads(request: AnalysisRequest, loaded: LoadedModel) -> HeadSet | None:
    """The heads the request removes from this model (None: none); InputError when one does not exist."""
    check_ablation(request)
    heads = HeadSet.parse(request.ablate, loaded.info.n_layers, loaded.info.n_heads)
    return heads if len(heads) else None


@contextmanager
def request_ablation(
    loaded: LoadedModel,
    request: AnalysisRequest,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
) -> Iterator[HeadSet | None]:
    """Run the block with the request's heads removed; yields them (None when it removes none).

    Mean ablation replaces a head's output by its mean over this text from the full model. The model's lock
    is held for the whole block and the gates come off before it is released; inside a block that already
    removes the same heads (a method pass within `with_methods`) nothing is added.
    """
    heads = requested_heads(request, loaded)
    if heads is None:
        yield None
        return
    key = (heads.format(), request.ablate_mode)
    with loaded.lock:
        active = ACTIVE.get(loaded.encoder)
        if active == key:
            yield heads
            return
        if active is not None:
            raise RuntimeError(f"heads {active[0]} are already removed from this model; ablations do not nest")
        means = None
        if request.ablate_mode == "mean":
            means = head_means(loaded, input_ids, attention_mask, token_type_ids, position_ids)
        with gated(loaded, heads, request.ablate_mode, means):
            ACTIVE[loaded.encoder] = key
            try:
                yield heads
            finally:
                ACTIVE.pop(loaded.encoder, None)


def attention_of_kept_heads(loaded: LoadedModel, attentions: tuple[torch.Tensor, ...], method: str
                            ) -> tuple[torch.Tensor, ...]:
    """Each layer's attention [heads, tokens, tokens] with the heads removed by the block now running set to
    zero, so that a decomposition reading the attention (ALTI, GlobEnc, DecompX) follows the ablated model as
    the forward pass does; the attention unchanged outside any ablation.

    A head set to its mean outputs a constant that none of these decompositions splits: InputError.
    """
    active = ACTIVE.get(loaded.encoder)
    if active is None:
        return attentions
    text, mode = active
    if mode != "zero":
        raise InputError(f"{method} follows removed heads only when they are set to zero, not to their mean; "
                         "choose zero ablation or another method.")
    kept = HeadSet.parse(text, loaded.info.n_layers, loaded.info.n_heads).gates()
    return tuple(a * kept[layer].to(a)[:, None, None] for layer, a in enumerate(attentions))
