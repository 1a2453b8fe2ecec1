"""The last encoder layer cut to the first position, for heads that read nothing else.

A sequence-classification head of these families reads only the last layer's first position ([CLS] or <s>);
the other positions' attention output, feed-forward and layer norms in the last layer (and their backward) are
work for nothing: about an eighth of a pass on a 6-layer model. The keys and values still come from every
position, so the first position's output, and so the class scores and their gradients, are the same to float
rounding (tests/unit/test_corpus_first_position.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from explain.families import FAMILIES, model_type_of, resolve
from explain.models import LoadedModel
from explain.targets.base import Target
from explain.targets.classification import ClassTarget


def last_layer_cut(loaded: LoadedModel, target: Target | None) -> torch.nn.Module | None:
    """The module to cut at, where `target` reads only a first-position classification head; else None."""
    if type(target) is not ClassTarget:
        return None
    model: Any = loaded.model
    family = FAMILIES.get(model_type_of(model))
    if family is None or family.position_wise_from is None or family.layer:
        return None
    if not type(model).__name__.endswith("ForSequenceClassification"):
        return None
    layers = resolve(model.base_model, family.layers)
    if not len(layers):
        return None
    return layers[-1].get_submodule(family.position_wise_from)


def keep_first(module: torch.nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(a[:, :1] if isinstance(a, torch.Tensor) and a.dim() == 3 else a for a in args)


@contextmanager
def first_position_only(loaded: LoadedModel, target: Target | None) -> Iterator[bool]:
    """Within: the model's last layer computes its first position only, where `target` reads nothing else (yields
    whether it does). Hold `loaded.lock`: the hook is on the shared model, and the last hidden state has one
    position meanwhile (nothing may read the others)."""
    cut = last_layer_cut(loaded, target)
    handle = None if cut is None else cut.register_forward_pre_hook(keep_first)
    try:
        yield handle is not None
    finally:
        if handle is not None:
            handle.remove()
