"""A whole analysis (prediction, attention, attributions) of a model with some heads removed.

A request names the heads it removes (`AnalysisRequest.ablate`, e.g. "0:1,2:*") and how
(`ablate_mode`): `explain.analyze` and every method pass of the pipeline then run inside
`request_ablation`, so the prediction and each attribution explain the ablated model.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from explain.heads.gating import HeadSet, check_head_text, check_mode, gated, head_means
from explain.models import LoadedModel
from explain.records import AnalysisRequest
from explain.removed_heads import ACTIVE, RemovedHeads


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
        if active is not None and (active.text, active.mode) == key:
            yield heads
            return
        if active is not None:
            raise RuntimeError(f"heads {active.text} are already removed from this model; ablations do not nest")
        means = None
        if request.ablate_mode == "mean":
            means = head_means(loaded, input_ids, attention_mask, token_type_ids, position_ids)
        with gated(loaded, heads, request.ablate_mode, means):
            ACTIVE[loaded.encoder] = RemovedHeads(*key, kept=heads.gates())
            try:
                yield heads
            finally:
                ACTIVE.pop(loaded.encoder, None)

