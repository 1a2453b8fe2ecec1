"""Value Zeroing (Mohebbi, Zuidema, Chrupała and Alishahi, EACL 2023, "Quantifying Context Mixing in
Transformers"), written from the paper.

For each layer l and each token j, layer l runs again on its real input with token j's value vector set to zero
in every head (the value projection's output, bias included, so no head can read j's content), and everything
else of the layer (attention weights, residuals, layer norms, feed-forward) left as it is. Token j's contribution
to token i is the cosine distance between token i's real layer output and its output without j's value:

    C_ij = 1 - cos(y_i, y_i^(not j))

The diagonal follows the paper's definition over all pairs: C_ii is measured like every other entry (token i's own
value zeroed; its residual path still carries it). Rows are normalised to sum to 1 and the layers combined by
rollout (C_L ... C_1); the token scores are the rolled-out rows the target reads (`readout_weights`), unsigned and
the same for every label. The N variants of a layer go through that layer in batched calls (chunked to bound
memory), so a text of N tokens costs about N forward passes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explain.errors import InputError
from explain.families import family_of, model_shape, resolve
from explain.methods.attention_based import readout_weights
from explain.methods.base import FORWARD_PASS, AttributionContext, Method, ProgressCallback, RawScores, register
from explain.methods.decomposition import decomposition_refusal, normalised_rows, rolled_out
from explain.methods.gradients import NoSettings
from explain.models import LoadedModel

TITLE = "Value Zeroing"
# Activations of one batched layer call, in floats (variants x (tokens x feed-forward + heads x tokens^2)).
VARIANT_ELEMENTS = 1 << 24


@dataclass
class LayerCall:
    """One call of a transformer layer in the real forward pass: its arguments and its output (batch of 1)."""

    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    output: torch.Tensor


def value_zeroing_refusal(loaded: LoadedModel) -> str:
    """Why Value Zeroing cannot rerun this model's layers with a value zeroed (one sentence), or ""."""
    return decomposition_refusal(loaded, TITLE)


def first_tensor(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, (tuple, list)) else value


def layer_calls(context: AttributionContext) -> tuple[list[LayerCall], list[torch.nn.Module], list[torch.nn.Module]]:
    """The real forward pass's layer calls in order, with the layer module and value projection of each call.

    InputError in one sentence for a family whose attention Value Zeroing cannot handle."""
    loaded = context.target.loaded
    refusal = value_zeroing_refusal(loaded)
    if refusal:
        raise InputError(refusal)
    family = family_of(loaded.config, TITLE)
    assert family.value is not None  # decomposition_refusal refused a family without one
    encoder = loaded.encoder
    entries = resolve(encoder, family.layers)
    n_layers = int(getattr(loaded.config, family.config_sizes[0]))
    modules = [resolve(encoder, family.layer_path(index, "")) for index in range(len(entries))]
    values = [resolve(encoder, family.layer_path(index, family.value)) for index in range(len(entries))]
    order = [layer * len(entries) // n_layers for layer in range(n_layers)]
    calls: list[LayerCall] = []
    pending: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def before(module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        pending.append((args, dict(kwargs)))

    def after(module: torch.nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        call_args, call_kwargs = pending.pop()
        calls.append(LayerCall(args=call_args, kwargs=call_kwargs, output=first_tensor(output).detach()))

    handles = []
    for module in {id(m): m for m in modules}.values():
        handles.append(module.register_forward_pre_hook(before, with_kwargs=True))
        handles.append(module.register_forward_hook(after, with_kwargs=True))
    try:
        with torch.no_grad():
            encoder(inputs_embeds=context.embeddings(), attention_mask=context.attention_mask,
                    **context.model_inputs())
    finally:
        for handle in handles:
            handle.remove()
    if len(calls) != n_layers:
        raise InputError(f"{TITLE} could not follow this model's layers through its family's modules.")
    return calls, [modules[i] for i in order], [values[i] for i in order]


def batched_call(call: LayerCall, k: int) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The call's arguments with its hidden states repeated `k` times (masks and the rest broadcast)."""
    if call.args and isinstance(call.args[0], torch.Tensor):
        return (call.args[0].expand(k, -1, -1), *call.args[1:]), call.kwargs
    key = "hidden_states" if "hidden_states" in call.kwargs else "x"
    return call.args, {**call.kwargs, key: call.kwargs[key].expand(k, -1, -1)}


def zeroed_layer(call: LayerCall, module: torch.nn.Module, value: torch.nn.Module, per_token: int,
                 progress: ProgressCallback | None = None) -> torch.Tensor:
    """One layer's matrix [tokens, tokens]: C_ij, the cosine distance of token i's output with j's value zeroed.

    per_token: activations one token of one variant holds (feed-forward size plus heads x tokens);
    progress: called with the share of the layer done after each batched call, its hook off (a point where the
    computation can be stopped or paused)."""
    real = call.output[0].double()
    n = real.shape[0]
    chunk = max(1, VARIANT_ELEMENTS // max(1, n * per_token))
    contributions = torch.empty(n, n, dtype=torch.float64, device=real.device)
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        zeroed = torch.arange(start, stop, device=real.device)
        rows = torch.arange(stop - start, device=real.device)

        def zero(module: torch.nn.Module, args: Any, output: torch.Tensor, rows: torch.Tensor = rows,
                 zeroed: torch.Tensor = zeroed) -> torch.Tensor:
            output = output.clone()
            output[rows, zeroed] = 0.0
            return output

        handle = value.register_forward_hook(zero)
        try:
            with torch.no_grad():
                args, kwargs = batched_call(call, stop - start)
                altered = first_tensor(module(*args, **kwargs)).double()  # [variants j, tokens i, hidden]
        finally:
            handle.remove()
        cosine = torch.nn.functional.cosine_similarity(altered, real[None], dim=-1, eps=1e-12)
        contributions[:, start:stop] = (1.0 - cosine).clamp(min=0.0).T
        if progress is not None:
            progress(stop / n)
    return normalised_rows(contributions)


def value_zeroing_contributions(context: AttributionContext, progress: ProgressCallback | None = None) -> np.ndarray:
    """Value Zeroing's per-layer matrices, float64 [layers, tokens, tokens] (rows: outputs i, columns: zeroed j),
    rows summing to 1; `progress` gets the share done at least once per layer."""
    calls, modules, values = layer_calls(context)
    config = context.target.loaded.config
    _, _, inner = model_shape(config, (0, 768, 3072))
    per_token = inner + int(getattr(config, "num_attention_heads", 12)) * context.n_tokens
    n_layers = len(calls)

    def layer_progress(layer: int) -> ProgressCallback | None:
        if progress is None:
            return None
        return lambda share: progress(min(0.99, (layer + share) / n_layers))

    matrices = [zeroed_layer(call, module, value, per_token, layer_progress(layer))
                for layer, (call, module, value) in enumerate(zip(calls, modules, values, strict=True))]
    return torch.stack(matrices).cpu().numpy()


def value_zeroing(context: AttributionContext, settings: NoSettings, progress: ProgressCallback | None) -> RawScores:
    return RawScores(scores=readout_weights(context) @ rolled_out(value_zeroing_contributions(context, progress)))


def value_zeroing_cost(settings: Any, n_tokens: int, n_words: int) -> float:
    """One real pass, then every layer once per token (one zeroed value each): about n_tokens forward passes."""
    return FORWARD_PASS * (n_tokens + 1)


VALUE_ZEROING = register(Method(
    name="value_zeroing",
    title=TITLE,
    summary="Mohebbi et al. (2023): each layer run again once per token with that token's value vector zeroed in "
            "every head; a token's share in another's output is the cosine distance it makes there, rows "
            "normalised and rolled out over the layers; unsigned and the same for every label.",
    settings_type=NoSettings,
    compute=value_zeroing,
    cost=value_zeroing_cost,
    signed=False,
    refuses=value_zeroing_refusal,
    uses_baseline=False,
))
