"""The position-wise part of each layer run on real tokens only, padding left out.

In a padded pass a pad token costs as much as a real one. From its `position_wise_from` module on (the attention
output projection, the feed-forward block, their layer norms: most of a layer's work) a layer works position by
position, so there the padded [texts, width, hidden] rows are gathered into one [1, real tokens, hidden] run and
scattered back (pads at zero) where the next layer's attention needs the padded shape again. Attention masks the
pads as keys, so what they hold never reaches a real position: the scores and their gradients are the padded
pass's to float rounding (tests/unit/test_corpus_packed.py). The last layer stays padded (its output is the
model's), or is cut to its first position by `explain.corpus.first_position`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from explain.families import FAMILIES, model_type_of, resolve
from explain.models import LoadedModel

# The work a pad token still costs in a packed pass, against a real token's: the query, key and value projections and
# attention (about 0.3 of a layer's work on a CPU, all-MiniLM-L6-v2).
PACKED_PAD_COST = 0.3


class Rows(threading.local):
    """The real rows of the pass in flight on this thread: flat indices into [texts x width], and the padded shape;
    None where the pass has no padding (or no mask). Per thread, as passes may run at once
    (`explain.corpus.streams`)."""

    def __init__(self) -> None:
        self.index: torch.Tensor | None = None
        self.shape: tuple[int, int] = (0, 0)

    def read_mask(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("attention_mask")
        self.index = None
        if isinstance(mask, torch.Tensor) and mask.dim() == 2 and not bool(mask.all()):
            self.shape = (int(mask.shape[0]), int(mask.shape[1]))
            self.index = mask.reshape(-1).nonzero().squeeze(1)

    def is_packed(self, hidden: Any) -> bool:
        return (self.index is not None and isinstance(hidden, torch.Tensor) and hidden.dim() == 3
                and hidden.shape[0] == 1 and hidden.shape[1] == self.index.numel())

    def pack(self, module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """Pre-hook of the position-wise module: its padded [texts, width, hidden] arguments as one run of rows."""
        if self.index is None:
            return None
        k, width = self.shape
        return tuple(a.reshape(k * width, -1).index_select(0, self.index).unsqueeze(0)
                     if isinstance(a, torch.Tensor) and a.shape[:2] == (k, width) and a.dim() == 3 else a
                     for a in args)

    def unpack(self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
               ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """Pre-hook of a layer: a packed input back to [texts, width, hidden], zeros at the pads."""
        hidden = args[0] if args else kwargs.get("hidden_states")
        if not self.is_packed(hidden):
            return None
        assert isinstance(hidden, torch.Tensor) and self.index is not None
        k, width = self.shape
        rows = hidden[0]
        padded = rows.new_zeros((k * width, rows.shape[-1])).index_copy(0, self.index, rows).view(k, width, -1)
        if args:
            return (padded, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": padded}


def packed_layers(loaded: LoadedModel) -> list[tuple[torch.nn.Module, torch.nn.Module]] | None:
    """(layer, its position-wise module) of every layer, where the family's table row names that module; else None."""
    model: Any = loaded.model
    family = FAMILIES.get(model_type_of(model))
    if family is None or family.position_wise_from is None or family.layer or family.shared_layers:
        return None
    layers = resolve(loaded.encoder, family.layers)
    if len(layers) < 2:
        return None
    return [(layer, layer.get_submodule(family.position_wise_from)) for layer in layers]


@contextmanager
def real_tokens_only(loaded: LoadedModel) -> Iterator[bool]:
    """Within: every layer but the last runs its position-wise part on real tokens only (yields whether it does).
    Hold `loaded.lock`: the hooks are on the shared model, and its intermediate hidden states are packed meanwhile
    (nothing may read them)."""
    found = packed_layers(loaded)
    handles: list[Any] = []
    if found is not None:
        rows = Rows()
        handles.append(loaded.encoder.register_forward_pre_hook(rows.read_mask, with_kwargs=True))
        for i, (layer, position_wise) in enumerate(found):
            if i:
                handles.append(layer.register_forward_pre_hook(rows.unpack, with_kwargs=True))
            if i < len(found) - 1:
                handles.append(position_wise.register_forward_pre_hook(rows.pack))
    try:
        yield bool(handles)
    finally:
        for handle in handles:
            handle.remove()
