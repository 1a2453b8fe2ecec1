"""Inside one head (bertviz's neuron view): how one query token's row of attention is made.

For a head h of layer l and a query token i: the query vector q_i, the key vectors k_j of every token,
their elementwise products q_i * k_j (whose sums are the dot products), the scaled dot products
s_j = scaling * q_i . k_j, and the softmax of s over the text's real tokens: the attention row the model
itself computes.
"""

from __future__ import annotations

from typing import Any

import torch

from explain.errors import InputError
from explain.heads.gating import adapter_of, hooks_on
from explain.heads.importance import HeadInputs
from explain.models import LoadedModel
from explain.records.heads import NeuronView


def neuron_view(loaded: LoadedModel, inputs: HeadInputs, layer: int, head: int, query_token: int) -> NeuronView:
    """The parts of head `head` of layer `layer` for token `query_token` of the text (one forward pass)."""
    adapter = adapter_of(loaded)
    if not adapter.plain_dot_product:
        raise InputError(
            f"The neuron view needs plain dot-product attention; {adapter.family} models add "
            "relative-position terms to it."
        )
    if not 0 <= layer < adapter.n_layers:
        raise InputError(f"Layer {layer} does not exist; this model has layers 0 to {adapter.n_layers - 1}.")
    if not 0 <= head < adapter.n_heads:
        raise InputError(f"Head {head} does not exist; each layer has heads 0 to {adapter.n_heads - 1}.")
    n_tokens = inputs.n_tokens
    if not 0 <= query_token < n_tokens:
        raise InputError(f"Token {query_token} does not exist; the text has tokens 0 to {n_tokens - 1}.")
    site = adapter.site_of(layer)
    assert site.query is not None and site.key is not None  # plain dot-product families have both
    captured: dict[str, torch.Tensor] = {}
    start, stop = head * adapter.head_dim, (head + 1) * adapter.head_dim
    types = inputs.token_type_ids
    extra = {} if types is None else {"token_type_ids": types}
    with hooks_on(loaded) as hooks:
        for name, module in (("query", site.query), ("key", site.key)):
            counter = hooks.counter(site)

            def capture(module: torch.nn.Module, args: Any, output: torch.Tensor, name: str = name,
                        counter: Any = counter) -> None:
                if counter.next_layer() == layer:
                    captured[name] = output[0, :, start:stop].detach().double()

            hooks.handles.append(module.register_forward_hook(capture))
        with torch.no_grad():
            loaded.encoder(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask,
                           position_ids=inputs.positions, **extra)
    query = captured["query"][query_token]
    keys = captured["key"]
    products = query[None, :] * keys
    real = inputs.attention_mask[0].bool().cpu()
    scores = products.sum(-1).cpu() * site.scaling
    scores = torch.where(real, scores, torch.full_like(scores, float("-inf")))
    attention = torch.softmax(scores, dim=-1)
    return NeuronView(
        layer=layer,
        head=head,
        query_token=query_token,
        tokens=inputs.tokens,
        query=query.cpu().numpy(),
        keys=keys.cpu().numpy(),
        products=products.cpu().numpy(),
        scores=scores.numpy(),
        attention=attention.numpy(),
        scaling=site.scaling,
    )
