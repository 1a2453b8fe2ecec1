"""Where each architecture family keeps its attention heads.

Gating a head means scaling its slice of the per-head context (the heads'
outputs concatenated, [batch, tokens, heads * head_dim]) just before the
attention output projection; the neuron view reads the query and key
projections. Each family names these modules differently, and ALBERT runs one
shared layer module several times per forward pass, so a site lists every layer
it serves in call order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from explain.errors import InputError

# Families whose attention scores are exactly the scaled query . key dot products (plus the padding mask).
PLAIN_DOT_PRODUCT = frozenset({"bert", "roberta", "xlm-roberta", "camembert", "electra", "distilbert", "albert"})


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
        return self.family in PLAIN_DOT_PRODUCT

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
    """The attention sites of a bare encoder (`LoadedModel.encoder`).

    Raises InputError for an architecture whose heads cannot be located.
    """
    config: Any = encoder.config
    family = str(getattr(config, "model_type", ""))
    n_layers = int(config.num_hidden_layers)
    n_heads = int(config.num_attention_heads)
    hidden = int(getattr(config, "hidden_size", 0) or getattr(config, "dim", 0))
    head_dim = hidden // n_heads
    sites: list[AttentionSite] = []
    if family == "distilbert":
        for i, layer in enumerate(encoder.transformer.layer):  # type: ignore[union-attr, arg-type]
            att = layer.attention
            sites.append(_site(layer, att, att.out_lin, att.q_lin, att.k_lin, (i,), head_dim))
    elif family == "albert":
        groups = encoder.encoder.albert_layer_groups  # type: ignore[union-attr]
        if int(getattr(config, "inner_group_num", 1)) != 1:
            raise InputError("Heads of ALBERT models with more than one layer per group cannot be gated here.")
        per_group = n_layers // len(groups)  # type: ignore[arg-type]
        for g, group in enumerate(groups):  # type: ignore[arg-type]
            att = group.albert_layers[0].attention
            layers = tuple(range(g * per_group, (g + 1) * per_group))
            sites.append(_site(group, att, att.dense, att.query, att.key, layers, head_dim))
    elif family == "mpnet":
        for i, layer in enumerate(encoder.encoder.layer):  # type: ignore[union-attr, arg-type]
            att = layer.attention.attn
            sites.append(_site(layer, att, att.o, att.q, att.k, (i,), head_dim))
    elif family in ("deberta", "deberta-v2"):
        for i, layer in enumerate(encoder.encoder.layer):  # type: ignore[union-attr, arg-type]
            att = layer.attention
            sites.append(_site(layer, att.self, att.output.dense, None, None, (i,), head_dim))
    else:
        layer_list = getattr(getattr(encoder, "encoder", None), "layer", None)
        if layer_list is None:
            raise InputError(f"The heads of a {family or 'unknown'} model cannot be located for gating.")
        for i, layer in enumerate(layer_list):
            att = layer.attention
            sites.append(_site(layer, att.self, att.output.dense, att.self.query, att.self.key, (i,), head_dim))
    return HeadAdapter(family=family, n_layers=n_layers, n_heads=n_heads, head_dim=head_dim, sites=tuple(sites))
