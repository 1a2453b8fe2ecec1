"""Knocking heads out: head sets, and gates on each head's output.

transformers 5 has no `head_mask`, so a head is gated by a forward pre-hook on
its layer's attention output projection: the projection's input is the heads'
outputs side by side, and each head's slice is multiplied by its gate g
(g = 1 keeps the head, 0 removes it). With a replacement (mean ablation) the
slice becomes g * output + (1 - g) * mean output over the text.

The model is cached and shared by every dashboard session, so every hook here
is installed while holding `loaded.lock` and removed in a `finally` block
before the lock is released: no other analysis can run on the gated model, and
none ever sees a hook left behind.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explain.errors import InputError
from explain.heads.adapters import AttentionSite, HeadAdapter, head_adapter
from explain.models import LoadedModel
from explain.targets import model_position_ids

ABLATION_MODES = ("zero", "mean")
HEAD_TOKEN = re.compile(r"^(\d+)\s*:\s*(\d+|\*)$")


@dataclass(frozen=True)
class HeadSet:
    """A set of (layer, head) pairs of a model with `n_layers` x `n_heads` heads, kept sorted.

    Its text form, used on the command line and in share links, is "L:H" items
    separated by commas, with "L:*" for every head of layer L (e.g. "0:1,2:*").
    """

    heads: tuple[tuple[int, int], ...]
    n_layers: int
    n_heads: int

    def __post_init__(self) -> None:
        pairs = sorted({(int(layer), int(head)) for layer, head in self.heads})
        for layer, head in pairs:
            _check_layer(layer, self.n_layers)
            _check_head(head, self.n_heads)
        object.__setattr__(self, "heads", tuple(pairs))

    @classmethod
    def parse(cls, text: str, n_layers: int, n_heads: int) -> HeadSet:
        """Read "0:1,2:*"; raise InputError with one sentence on the first bad item."""
        if len(text or "") > 16 * n_layers * n_heads + 64:
            raise InputError("The list of heads is longer than any list of this model's heads can be.")
        pairs: list[tuple[int, int]] = []
        for raw in (text or "").split(","):
            item = raw.strip()
            if not item:
                continue
            match = HEAD_TOKEN.match(item)
            if match is None:
                raise InputError(
                    f"'{item[:40]}' is not a head; write layer:head such as 0:1, or layer:* for a whole layer, "
                    "separated by commas."
                )
            layer = _check_layer(int(match.group(1)), n_layers)
            if match.group(2) == "*":
                pairs += [(layer, head) for head in range(n_heads)]
            else:
                pairs.append((layer, _check_head(int(match.group(2)), n_heads)))
        return cls(tuple(pairs), n_layers, n_heads)

    @classmethod
    def from_mask(cls, mask: np.ndarray) -> HeadSet:
        """The heads where a [layers, heads] boolean mask is true."""
        mask = np.asarray(mask, dtype=bool)
        return cls(tuple((int(a), int(b)) for a, b in np.argwhere(mask)), mask.shape[0], mask.shape[1])

    def format(self) -> str:
        """The text form that `parse` reads back to an equal set; whole layers as "L:*"."""
        by_layer: dict[int, list[int]] = {}
        for layer, head in self.heads:
            by_layer.setdefault(layer, []).append(head)
        items = []
        for layer, heads in by_layer.items():
            if len(heads) == self.n_heads:
                items.append(f"{layer}:*")
            else:
                items += [f"{layer}:{head}" for head in heads]
        return ",".join(items)

    def mask(self) -> np.ndarray:
        """[layers, heads] booleans, true for the heads in the set."""
        out = np.zeros((self.n_layers, self.n_heads), dtype=bool)
        for layer, head in self.heads:
            out[layer, head] = True
        return out

    def gates(self, device: torch.device | str | None = None) -> torch.Tensor:
        """[layers, heads] float gates: 0 for the heads in the set (removed), 1 for the others."""
        return torch.as_tensor(~self.mask(), dtype=torch.float32, device=device)

    def __len__(self) -> int:
        return len(self.heads)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.heads)

    def __contains__(self, item: object) -> bool:
        return item in self.heads


def _check_layer(layer: int, n_layers: int) -> int:
    if not 0 <= layer < n_layers:
        raise InputError(f"Layer {layer} does not exist; this model has layers 0 to {n_layers - 1}.")
    return layer


def _check_head(head: int, n_heads: int) -> int:
    if not 0 <= head < n_heads:
        raise InputError(f"Head {head} does not exist; each layer has heads 0 to {n_heads - 1}.")
    return head


MAX_HEAD_TEXT_CHARS = 20_000


def check_head_text(text: str) -> str:
    """`text` when it reads as "L:H" / "L:*" items separated by commas, else InputError with one sentence.

    Only the form is checked here; whether the layers and heads exist needs the model (`HeadSet.parse`).
    """
    if not isinstance(text, str):
        raise InputError("The list of heads to remove must be text such as 0:1,2:*.")
    if len(text) > MAX_HEAD_TEXT_CHARS:
        raise InputError("The list of heads is longer than any list of a model's heads can be.")
    for raw in text.split(","):
        item = raw.strip()
        if item and HEAD_TOKEN.match(item) is None:
            raise InputError(
                f"'{item[:40]}' is not a head; write layer:head such as 0:1, or layer:* for a whole layer, "
                "separated by commas."
            )
    return text


def check_mode(mode: str) -> str:
    if mode not in ABLATION_MODES:
        raise InputError(f"Unknown ablation mode '{mode}'; choose one of {', '.join(ABLATION_MODES)}.")
    return mode


ADAPTERS: weakref.WeakKeyDictionary[torch.nn.Module, HeadAdapter] = weakref.WeakKeyDictionary()


def adapter_of(loaded: LoadedModel) -> HeadAdapter:
    """The model's attention sites, found once per model."""
    adapter = ADAPTERS.get(loaded.encoder)
    if adapter is None:
        adapter = ADAPTERS[loaded.encoder] = head_adapter(loaded.encoder)
    return adapter


class LayerCounter:
    """Which layer a shared module computes on this call: the model calls it once per layer, in order."""

    def __init__(self, site: AttentionSite) -> None:
        self.layers = site.layers
        self.calls = 0

    def next_layer(self) -> int:
        layer = self.layers[self.calls % len(self.layers)]
        self.calls += 1
        return layer


class Hooks:
    """Hook handles on one model, with per-forward layer counters; `remove()` takes them all off."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.handles: list[Any] = []
        self.counters: list[LayerCounter] = []
        self.handles.append(loaded.encoder.register_forward_pre_hook(self._reset))

    def _reset(self, module: torch.nn.Module, args: Any) -> None:
        for counter in self.counters:
            counter.calls = 0

    def counter(self, site: AttentionSite) -> LayerCounter:
        counter = LayerCounter(site)
        self.counters.append(counter)
        return counter

    def remove(self) -> None:
        while self.handles:
            self.handles.pop().remove()


@contextmanager
def hooks_on(loaded: LoadedModel) -> Iterator[Hooks]:
    """Hold the model's lock, collect hooks, and remove every one of them on the way out (also on errors)."""
    with loaded.lock:
        hooks = Hooks(loaded)
        try:
            yield hooks
        finally:
            hooks.remove()


def as_gates(loaded: LoadedModel, gates: HeadSet | torch.Tensor) -> torch.Tensor:
    """Gates as a [batch, layers, heads] tensor on the model's device (batch 1 for one set)."""
    adapter = adapter_of(loaded)
    if isinstance(gates, HeadSet):
        if (gates.n_layers, gates.n_heads) != (adapter.n_layers, adapter.n_heads):
            raise InputError(
                f"The head set is for {gates.n_layers} x {gates.n_heads} heads, but this model has "
                f"{adapter.n_layers} x {adapter.n_heads}."
            )
        tensor = gates.gates(loaded.device)
    else:
        tensor = gates.to(loaded.device)
    if tensor.dim() == 2:
        tensor = tensor.unsqueeze(0)
    if tensor.dim() != 3 or tuple(tensor.shape[1:]) != (adapter.n_layers, adapter.n_heads):
        raise ValueError(f"gates must be [layers, heads] or [batch, layers, heads] = [*, {adapter.n_layers}, "
                         f"{adapter.n_heads}], got {tuple(tensor.shape)}")
    return tensor


def install_gates(hooks: Hooks, gates: torch.Tensor, means: torch.Tensor | None = None) -> None:
    """Gate every head's output with `gates` [batch, layers, heads]; `means` [layers, heads, head_dim] replaces
    what a gate removes (None: zeros). Layers whose gates are all 1 and need no gradient get no hook."""
    adapter = adapter_of(hooks.loaded)
    n_heads, head_dim = adapter.n_heads, adapter.head_dim
    with torch.no_grad():
        identity = [not gates.requires_grad and bool((gates[:, layer] == 1).all()) for layer in range(adapter.n_layers)]
    for site in adapter.sites:
        if all(identity[layer] for layer in site.layers):
            continue
        counter = hooks.counter(site)

        def gate_hook(module: torch.nn.Module, args: Any, counter: LayerCounter = counter) -> Any:
            layer = counter.next_layer()
            if identity[layer]:
                return None
            context = args[0]
            batch, n_tokens, _ = context.shape
            g = gates[:, layer]
            if g.shape[0] not in (1, batch):
                raise ValueError(f"{g.shape[0]} gate rows for a batch of {batch}")
            g = g.to(context.dtype)[:, None, :, None]
            heads = context.reshape(batch, n_tokens, n_heads, head_dim)
            gated = heads * g
            if means is not None:
                gated = gated + (1 - g) * means[layer].to(context.dtype)
            return (gated.reshape(batch, n_tokens, n_heads * head_dim), *args[1:])

        hooks.handles.append(site.output.register_forward_pre_hook(gate_hook))


@contextmanager
def gated(
    loaded: LoadedModel,
    gates: HeadSet | torch.Tensor,
    mode: str = "zero",
    means: torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """Run the model with gated heads inside the block; yields the [batch, layers, heads] gates in use.

    Args:
        gates: a HeadSet (its heads removed), or gates [layers, heads] or [batch, layers, heads]
            (one set per batch element); a gate tensor that requires grad gets gradients.
        mode: "zero" (a removed head outputs zeros) or "mean" (its mean output over the text: `means`,
            from `head_means`).

    Holds `loaded.lock` for the whole block; every hook is removed on exit, also when the block raises.
    """
    check_mode(mode)
    if mode == "mean" and means is None:
        raise ValueError("mean ablation needs the heads' mean outputs (head_means)")
    with hooks_on(loaded) as hooks:
        tensor = as_gates(loaded, gates)
        install_gates(hooks, tensor, means if mode == "mean" else None)
        yield tensor


@contextmanager
def shared_prefix(loaded: LoadedModel, layer: int, n_variants: int) -> Iterator[None]:
    """Run layers before `layer` once and copy their output `n_variants` times into `layer`.

    Variants that differ only from `layer` on (heads of `layer` ablated) need the earlier layers once: feed
    the model a batch of one and the rest of the model sees a batch of `n_variants` (attention masks of
    batch one broadcast). Must be entered inside the `gated` block (the lock is held there).
    """
    with hooks_on(loaded) as hooks:
        site = adapter_of(loaded).site_of(layer)
        counter = hooks.counter(site)

        def expand(module: torch.nn.Module, args: Any, kwargs: Any) -> Any:
            if counter.next_layer() != layer:
                return None
            hidden = args[0]
            return (hidden.expand(n_variants, *hidden.shape[1:]).contiguous(), *args[1:]), kwargs

        hooks.handles.append(site.layer_module.register_forward_pre_hook(expand, with_kwargs=True))
        yield


def head_means(
    loaded: LoadedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
    position_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Each head's mean output over the text's real (non-pad) tokens, from an unablated pass:
    [layers, heads, head_dim], the replacement of mean ablation.

    `position_ids` default to the model's own rule (`model_position_ids`), as in every other pass.
    """
    if position_ids is None:
        position_ids = model_position_ids(loaded, input_ids)
    adapter = adapter_of(loaded)
    out = torch.zeros(adapter.n_layers, adapter.n_heads, adapter.head_dim, device=loaded.device)
    weights = attention_mask[:1].to(out.dtype).unsqueeze(-1)
    with hooks_on(loaded) as hooks:
        for site in adapter.sites:
            counter = hooks.counter(site)

            def capture(module: torch.nn.Module, args: Any, counter: LayerCounter = counter) -> None:
                layer = counter.next_layer()
                context = args[0][:1].float()
                mean = (context * weights).sum(1) / weights.sum(1).clamp(min=1)
                out[layer] = mean.view(adapter.n_heads, adapter.head_dim)

            hooks.handles.append(site.output.register_forward_pre_hook(capture))
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids[:1]}
        with torch.no_grad():
            loaded.encoder(input_ids=input_ids[:1], attention_mask=attention_mask[:1], position_ids=position_ids[:1],
                           **extra)
    return out
