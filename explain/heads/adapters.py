"""Where each architecture family keeps its attention heads.

Gating a head means scaling its slice of the per-head context (the heads'
outputs concatenated, [batch, tokens, heads * head_dim]) just before the
attention output projection; the neuron view reads the query and key
projections. Each family names these modules differently (explain.families
holds where they are), and ALBERT runs one shared layer module several times per
forward pass, so a site lists every layer it serves in call order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from explain.errors import InputError
from explain.families import FAMILIES, family_of, resolve


@dataclass(frozen=True)
class AttentionSite:
    """One attention module and the layers it computes, in the order the model calls it.

    `output` is the projection whose input is the concatenated heads; `layer_module`
    is the whole transformer layer (its input is the layer's hidden states).
    """

    layers: tuple[int, ...]
    layer_module: torch.nn.Module
    output: torch.nn.Module
    query: torch.nn.Module | None
    key: torch.nn.Module | None
    scaling: float


@dataclass(frozen=True)
class HeadAdapter:
    """The attention sites of one model and its head geometry."""

    family: str
    n_layers: int
    n_heads: int
    head_dim: int
    sites: tuple[AttentionSite, ...]

    @property
    def plain_dot_product(self) -> bool:
        """Whether attention is softmax(scaling * q . k + mask): what the neuron view can show exactly."""
        return FAMILIES[self.family].plain_dot_product

    def site_of(self, layer: int) -> AttentionSite:
        for site in self.sites:
            if layer in site.layers:
                return site
        raise InputError(f"Layer {layer} does not exist; this model has layers 0 to {self.n_layers - 1}.")


def _site(layer_module: torch.nn.Module, attention: torch.nn.Module, output: torch.nn.Module,
          query: torch.nn.Module | None, key: torch.nn.Module | None, layers: tuple[int, ...],
          head_dim: int) -> AttentionSite:
    scaling = float(getattr(attention, "scaling", head_dim**-0.5))
    return AttentionSite(layers=layers, layer_module=layer_module, output=output, query=query, key=key,
                         scaling=scaling)


def head_adapter(encoder: torch.nn.Module) -> HeadAdapter:
    """The attention sites of a bare encoder (`LoadedModel.encoder`), where its family's row says they are.

    Raises InputError for an architecture whose heads cannot be located.
    """
    config: Any = encoder.config
    family = family_of(config, "head gating")
    n_layers = int(config.num_hidden_layers)
    n_heads = int(config.num_attention_heads)
    head_dim = int(config.hidden_size) // n_heads
    entries = resolve(encoder, family.layers)
    if family.shared_layers and int(getattr(config, "inner_group_num", 1)) != 1:
        raise InputError(f"Heads of {family.title} models with more than one layer per group cannot be gated here.")
    per_entry = n_layers // len(entries) if family.shared_layers else 1
    sites: list[AttentionSite] = []
    for index in range(len(entries)):
        def at(path: str | None, index: int = index) -> Any:
            return None if path is None else resolve(encoder, family.layer_path(index, path))

        layers = tuple(range(index * per_entry, (index + 1) * per_entry))
        layer_module = entries[index] if family.shared_layers else at("")
        sites.append(_site(layer_module, at(family.attention), at(family.attention_output), at(family.query),
                           at(family.key), layers, head_dim))
    return HeadAdapter(family=family.model_type, n_layers=n_layers, n_heads=n_heads, head_dim=head_dim,
                       sites=tuple(sites))
