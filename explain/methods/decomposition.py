"""Decomposition methods: ALTI (Ferrando, Gállego and Costa-jussà 2022, "Measuring the Mixing of Contextual
Information in the Transformer") and GlobEnc (Modarressi, Fayyaz, Yaghoobzadeh and Pilehvar 2022, "GlobEnc:
Quantifying Global Token Attribution by Incorporating the Whole Encoder Layer in Transformers").

ALTI decomposes the output of each layer's attention block (after its first layer norm) into one part per
input token of that layer, read from the real forward pass through hooks on the modules the family table
names. For layer input vectors x_j, head attention A_h, and the value projection with its bias as the paper
writes it (the output projection's bias is shared by every part, so it is left out of them):

    T_i(x_j) = sum_h A_h[i, j] (x_j W_v^h + b_v^h) W_o^h   (+ x_i for j = i, the residual)

The layer norm is linear in each part once the real token's deviation is fixed: L_i(T) = gamma (T - mean(T)) /
sigma_i; the output bias and beta stay in the real output y_i only. Token j's contribution to token i is
c_ij = max(0, ||y_i||_1 - ||y_i - L_i(T_i(x_j))||_1), rows normalised to sum to 1, and the layers are combined
by rollout (C_L ... C_2 C_1). The token scores are the rolled-out rows the target reads
(`readout_weights`): unsigned and output-agnostic, so the same for every label.

GlobEnc is the paper's norm-based variant over the whole encoder layer, N_ENC (attention, residual and both
layer norms; written from the paper, not from its code). The parts are ALTI's, after the first layer norm,
P_ij = L1_i(T_i(x_j)), and they go on through the second layer norm, linearised the same way at the real
deviation sigma2_i of that norm's input u_i = L1(z_i) + FFN(L1(z_i)):

    Q_ij = gamma2 (P_ij - mean(P_ij)) / sigma2_i

It assumes the feed-forward block mixes no tokens and leaves it out of the parts (its nonlinearity is not
decomposed: only the residual path through the second norm is assigned to the parts, while sigma2_i still counts
the FFN output); the biases and both betas stay in the real output only. Token j's contribution to token i is
c_ij = ||Q_ij||_2, rows normalised to sum to 1, and the layers are combined by rollout as for ALTI, with no
identity added (the residual is already inside the parts). The deviations sigma1_i and sigma2_i scale a whole row,
so the row normalisation cancels them; what the second norm changes is gamma2 and its re-centring.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from explain.errors import InputError
from explain.families import family_of, resolve
from explain.methods.attention_based import readout_weights
from explain.methods.base import FORWARD_PASS, AttributionContext, Method, ProgressCallback, RawScores, register
from explain.methods.gradients import NoSettings
from explain.models import LoadedModel
from explain.removed_heads import attention_of_kept_heads

# Output rows whose [inputs, rows, hidden] parts are held at once: bounds memory on long texts.
CHUNK_ELEMENTS = 1 << 24


@dataclass
class LayerCapture:
    """What the hooks saw in one layer's attention block, in call order (float64, batch dropped)."""

    inputs: list[torch.Tensor]
    norm_inputs: list[torch.Tensor]
    norm_outputs: list[torch.Tensor]
    output_norm_inputs: list[torch.Tensor]


@dataclass(frozen=True)
class AttentionBlock:
    """The modules of one layer entry that the decompositions read (an ALBERT entry serves several layers)."""

    value: torch.nn.Linear
    output: torch.nn.Linear
    norm: torch.nn.LayerNorm
    output_norm: torch.nn.LayerNorm


def decomposition_refusal(loaded: LoadedModel, title: str) -> str:
    """Why the method `title` cannot decompose this model's attention (one sentence), or ""."""
    family = family_of(loaded.config, title)
    if not family.plain_dot_product or family.value is None:
        return (f"{title} needs plain dot-product attention with separate value projections, which "
                f"{family.title} models do not have.")
    if family.shared_layers and int(getattr(loaded.config, "inner_group_num", 1)) != 1:
        return f"{title} reads one layer per group, and this {family.title} model has several."
    return ""


def alti_refusal(loaded: LoadedModel) -> str:
    """Why ALTI cannot decompose this model's attention (one sentence), or ""."""
    return decomposition_refusal(loaded, "ALTI")


def globenc_refusal(loaded: LoadedModel) -> str:
    """Why GlobEnc cannot decompose this model's encoder layers (one sentence), or ""."""
    return decomposition_refusal(loaded, "GlobEnc")


def attention_blocks(loaded: LoadedModel, title: str = "ALTI") -> tuple[list[AttentionBlock], list[int]]:
    """The attention blocks of a model's layer entries and, per layer in call order, the entry that runs it.

    InputError in one sentence for a family whose attention the method `title` cannot decompose."""
    config = loaded.config
    refusal = decomposition_refusal(loaded, title)
    if refusal:
        raise InputError(refusal)
    family = family_of(config, title)
    assert family.value is not None  # decomposition_refusal refused a family without one
    encoder = loaded.encoder
    entries = resolve(encoder, family.layers)
    n_layers = int(getattr(config, family.config_sizes[0]))
    blocks = [AttentionBlock(value=resolve(encoder, family.layer_path(index, family.value)),
                             output=resolve(encoder, family.layer_path(index, family.attention_output)),
                             norm=resolve(encoder, family.layer_path(index, family.attention_norm)),
                             output_norm=resolve(encoder, family.layer_path(index, family.output_norm)))
              for index in range(len(entries))]
    order = [layer * len(entries) // n_layers for layer in range(n_layers)]
    return blocks, order


def captured_pass(context: AttributionContext, blocks: list[AttentionBlock]
                  ) -> tuple[LayerCapture, tuple[torch.Tensor, ...]]:
    """One forward pass of the encoder with hooks on every entry's value projection and both layer norms."""
    capture = LayerCapture(inputs=[], norm_inputs=[], norm_outputs=[], output_norm_inputs=[])

    def on_value(module: torch.nn.Module, args: Any, output: torch.Tensor) -> None:
        capture.inputs.append(args[0][0].detach().double())

    def on_norm(module: torch.nn.Module, args: Any, output: torch.Tensor) -> None:
        capture.norm_inputs.append(args[0][0].detach().double())
        capture.norm_outputs.append(output[0].detach().double())

    def on_output_norm(module: torch.nn.Module, args: Any, output: torch.Tensor) -> None:
        capture.output_norm_inputs.append(args[0][0].detach().double())

    handles = []
    for block in {id(b.value): b for b in blocks}.values():
        handles.append(block.value.register_forward_hook(on_value))
        handles.append(block.norm.register_forward_hook(on_norm))
        handles.append(block.output_norm.register_forward_hook(on_output_norm))
    try:
        with torch.no_grad():
            out = context.target.loaded.encoder(inputs_embeds=context.embeddings(),
                                                attention_mask=context.attention_mask, output_attentions=True,
                                                **context.model_inputs())
    finally:
        for handle in handles:
            handle.remove()
    attentions = tuple(a[0].detach().double() for a in out.attentions)
    return capture, attention_of_kept_heads(context.target.loaded.encoder, attentions, "ALTI (like GlobEnc)")


def first_norm_parts(x: torch.Tensor, attention: torch.Tensor, block: AttentionBlock, norm_input: torch.Tensor
                     ) -> Iterator[tuple[int, int, torch.Tensor]]:
    """The parts L1_i(T_i(x_j)) after the linearised first layer norm, in chunks of output rows.

    Yields (start, stop, parts) with parts [inputs j, outputs i in start:stop, hidden]. The linearised layer norm
    is folded into the factors before they are multiplied: centring and gamma act on each head's projected value
    (linear in the hidden axis), 1 / sigma_i on the attention rows.
    """
    n_heads, n, _ = attention.shape
    hidden = x.shape[-1]
    w_v = block.value.weight.detach().double()
    w_o = block.output.weight.detach().double()
    head_dim = w_v.shape[0] // n_heads
    gamma = block.norm.weight.detach().double()
    sigma = torch.sqrt(norm_input.var(-1, unbiased=False) + block.norm.eps)
    # The value with its bias, as the paper writes each head's map: (x W_v + b_v) W_o.
    b_v = block.value.bias.detach().double() if block.value.bias is not None else 0.0
    values = (x @ w_v.T + b_v).reshape(n, n_heads, head_dim)
    # Each token's value through each head's slice of the output projection, centred and scaled: [tokens, heads,
    # hidden]; the attention as [inputs j, outputs i, heads], divided by the output's deviation.
    through = torch.einsum("jhe,dhe->jhd", values, w_o.reshape(hidden, n_heads, head_dim))
    through = ((through - through.mean(-1, keepdim=True)) * gamma).contiguous()
    weights = (attention / sigma[None, :, None]).permute(2, 1, 0).contiguous()
    residual = (x - x.mean(-1, keepdim=True)) * gamma / sigma[:, None]
    rows = max(1, CHUNK_ELEMENTS // max(1, n * hidden))
    for start in range(0, n, rows):
        stop = min(n, start + rows)
        parts = torch.bmm(weights[:, start:stop], through)  # [inputs j, outputs i, hidden]
        index = torch.arange(start, stop, device=x.device)
        parts[index, index - start] += residual[start:stop]
        yield start, stop, parts


def normalised_rows(contributions: torch.Tensor) -> torch.Tensor:
    """Each row divided by its sum (a row of zeros stays zeros)."""
    totals = contributions.sum(-1, keepdim=True)
    return contributions / torch.where(totals > 0, totals, torch.ones_like(totals))


def layer_contributions(x: torch.Tensor, attention: torch.Tensor, block: AttentionBlock, norm_input: torch.Tensor,
                        norm_output: torch.Tensor) -> torch.Tensor:
    """One layer's ALTI matrix [tokens, tokens] (rows: outputs i, columns: inputs j), rows summing to 1."""
    n = attention.shape[1]
    y_norm = norm_output.abs().sum(-1)
    contributions = torch.empty(n, n, dtype=torch.float64, device=x.device)
    for start, stop, parts in first_norm_parts(x, attention, block, norm_input):
        parts.sub_(norm_output[None, start:stop]).abs_()
        contributions[start:stop] = torch.clamp(y_norm[start:stop, None] - parts.sum(-1).T, min=0.0)
    return normalised_rows(contributions)


def globenc_layer(x: torch.Tensor, attention: torch.Tensor, block: AttentionBlock, norm_input: torch.Tensor,
                  output_norm_input: torch.Tensor) -> torch.Tensor:
    """One layer's GlobEnc matrix [tokens, tokens]: ||gamma2 (P_ij - mean P_ij) / sigma2_i||_2, rows summing to 1."""
    n = attention.shape[1]
    gamma = block.output_norm.weight.detach().double()
    sigma = torch.sqrt(output_norm_input.var(-1, unbiased=False) + block.output_norm.eps)
    contributions = torch.empty(n, n, dtype=torch.float64, device=x.device)
    for start, stop, parts in first_norm_parts(x, attention, block, norm_input):
        parts.sub_(parts.mean(-1, keepdim=True)).mul_(gamma)
        contributions[start:stop] = torch.linalg.vector_norm(parts, dim=-1).T / sigma[start:stop, None]
    return normalised_rows(contributions)


def layer_matrices(context: AttributionContext, title: str, per_layer: Callable[..., torch.Tensor],
                   reads: Callable[[LayerCapture], list[torch.Tensor]]) -> np.ndarray:
    """`per_layer(x, attention, block, norm_input, reads(capture)[layer])` for every layer in call order, stacked."""
    blocks, order = attention_blocks(context.target.loaded, title)
    capture, attentions = captured_pass(context, blocks)
    second = reads(capture)
    if not len(capture.inputs) == len(capture.norm_inputs) == len(second) == len(attentions) == len(order):
        raise InputError(f"{title} could not follow this model's layers through its family's modules.")
    matrices = [per_layer(capture.inputs[layer], attentions[layer], blocks[order[layer]],
                          capture.norm_inputs[layer], second[layer])
                for layer in range(len(order))]
    return torch.stack(matrices).cpu().numpy()


def alti_contributions(context: AttributionContext) -> np.ndarray:
    """ALTI's per-layer contribution matrices, float64 [layers, tokens, tokens], rows summing to 1."""
    return layer_matrices(context, "ALTI", layer_contributions, lambda capture: capture.norm_outputs)


def globenc_contributions(context: AttributionContext) -> np.ndarray:
    """GlobEnc's per-layer contribution matrices (N_ENC), float64 [layers, tokens, tokens], rows summing to 1."""
    return layer_matrices(context, "GlobEnc", globenc_layer, lambda capture: capture.output_norm_inputs)


def rolled_out(matrices: np.ndarray) -> np.ndarray:
    """The product of per-layer matrices, first layer first: C_L ... C_2 C_1, [tokens, tokens]."""
    rolled = np.eye(matrices.shape[-1])
    for matrix in matrices:
        rolled = matrix @ rolled
    return rolled


def decomposition_cost(settings: object, n_tokens: int, n_words: int) -> float:
    """One hooked forward pass plus, per layer, the [tokens, tokens, hidden] parts in float64: measured on MiniLM
    (one core) at 2.5 forward passes for 32 tokens and 7.1 for 128, about 1 + n_tokens / 20."""
    return FORWARD_PASS * (1 + n_tokens / 20)


def alti(context: AttributionContext, settings: NoSettings, progress: ProgressCallback | None) -> RawScores:
    return RawScores(scores=readout_weights(context) @ rolled_out(alti_contributions(context)))


ALTI = register(Method(
    name="alti",
    title="ALTI",
    summary="Ferrando et al. (2022): each layer's output split into one part per input token (attention, value "
            "and output projections, residual, layer norm linearised), parts scored by their distance to the "
            "real output, rolled out over the layers; unsigned and the same for every label.",
    settings_type=NoSettings,
    compute=alti,
    cost=decomposition_cost,
    signed=False,
    refuses=alti_refusal,
    uses_baseline=False,
))


def globenc(context: AttributionContext, settings: NoSettings, progress: ProgressCallback | None) -> RawScores:
    return RawScores(scores=readout_weights(context) @ rolled_out(globenc_contributions(context)))


GLOBENC = register(Method(
    name="globenc",
    title="GlobEnc",
    summary="Modarressi et al. (2022): each layer's output split into one part per input token (attention, value "
            "and output projections, residual, both layer norms linearised, the feed-forward block left out), "
            "parts scored by their L2 norm, rolled out over the layers; unsigned and the same for every label.",
    settings_type=NoSettings,
    compute=globenc,
    cost=decomposition_cost,
    signed=False,
    refuses=globenc_refusal,
    uses_baseline=False,
))
