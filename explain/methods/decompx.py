"""DecompX (Modarressi, Fayyaz, Aghazadeh, Yaghoobzadeh and Pilehvar, ACL 2023, "DecompX: Explaining Transformers
Decisions by Propagating Token Decomposition"), written from the paper.

Every token's vector is carried as N parts, one per input token, from the first layer's input (token i's vector
is all its own part: P_k,i = [k = i] x_i) through every layer and the target's head, so that the parts of the
explained logit are each input token's share of it. With the real forward pass fixing every nonlinearity, each
step is linear in the parts:

- attention: part k of token i becomes sum_h sum_j A_h[i, j] P_k,j W_v^h W_o^h plus the residual P_k,i; the biases
  b_v W_o + b_o (each attention row sums to 1) are spread as below;
- layer norm, at the real input's deviation sigma_i: gamma (P_k,i - mean(P_k,i)) / sigma_i (each part centred on
  its own mean, which keeps the sum the real output), and beta spread;
- feed-forward: W_1 P (+ b_1 spread), times act(z) / z elementwise at the real pre-activation z (0 where z = 0),
  then W_2 (+ b_2 spread), plus the residual;
- the head, through the modules the family table lists for it (`ModelFamily.heads`): the same linear maps and
  layer norms, and the activation between two of them (a pooler's tanh, a classification or masked-LM transform's
  GELU or ReLU) linearised as act(z) / z at the real z, read from the real pass; a pooled target's cosine is the
  mean of the parts over the text, dotted with the label's unit direction, over the real pooled norm.

Biases are spread by the paper's absolute-dot rule: a bias b added to the parts y_k of token i goes to part k in
proportion to |b . y_k| (equal shares where all of those are 0); the shares sum to 1, so the parts still add up to
the real vector. A head's final scalar bias is spread by |part|.

The parts sum to the real hidden state after every step and to the explained logit at the end (float64; what is
left is the float32 rounding of the real pass, reported as delta). A probability is decomposed on its logit (the
softmax or sigmoid is not split), a zero-shot label on its cosine; special tokens keep their shares.

Memory: one [inputs, tokens, hidden] float64 array, updated in place a chunk of parts at a time (each step acts on
every part separately, except the bias shares, which need every part's dot product: they are collected in the
chunk loop and added after it); the feed-forward intermediate exists for one chunk of parts only. The last layer
computes only the rows the head reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from explain.errors import InputError
from explain.families import family_of, resolve
from explain.methods.base import FORWARD_PASS, AttributionContext, Method, ProgressCallback, RawScores, register
from explain.methods.decomposition import AttentionBlock, attention_blocks, decomposition_refusal
from explain.methods.gradients import NoSettings
from explain.models import LoadedModel
from explain.removed_heads import attention_of_kept_heads
from explain.targets import CosineReadout, HeadReadout

TITLE = "DecompX"
# Float64 elements of one chunk's temporaries (32 MB): bounds memory on long texts.
CHUNK_ELEMENTS = 1 << 22


@dataclass(frozen=True)
class DecompXBlock:
    """The modules of one layer entry that DecompX follows: the attention block's and the feed-forward's."""

    attention: AttentionBlock
    feed_forward_in: torch.nn.Linear
    feed_forward_out: torch.nn.Linear


@dataclass
class Recorded:
    """A hooked module's input and output at each call (batch row 0; the kept rows of sequences), float64."""

    inputs: list[torch.Tensor] = field(default_factory=list)
    outputs: list[torch.Tensor] = field(default_factory=list)


@dataclass
class RealPass:
    """What DecompX reads from the real forward pass, per layer in call order, and the head modules' values."""

    layer_inputs: list[torch.Tensor]
    attentions: tuple[torch.Tensor, ...]
    norm_inputs: list[torch.Tensor]
    pre_activations: list[torch.Tensor]
    activations: list[torch.Tensor]
    output_norm_inputs: list[torch.Tensor]
    layer_outputs: list[torch.Tensor]
    head: list[Recorded]


def decompx_refusal(loaded: LoadedModel) -> str:
    """Why DecompX cannot decompose this model (one sentence), or ""."""
    return decomposition_refusal(loaded, TITLE)


def decompx_blocks(loaded: LoadedModel) -> tuple[list[DecompXBlock], list[int]]:
    """Every layer entry's modules and, per layer in call order, the entry that runs it (InputError if refused)."""
    blocks, order = attention_blocks(loaded, TITLE)
    family = family_of(loaded.config, TITLE)
    encoder = loaded.encoder
    return [DecompXBlock(attention=block,
                         feed_forward_in=resolve(encoder, family.layer_path(index, family.feed_forward[0])),
                         feed_forward_out=resolve(encoder, family.layer_path(index, family.feed_forward[1])))
            for index, block in enumerate(blocks)], order


def head_modules(loaded: LoadedModel, readout: HeadReadout) -> list[torch.nn.Module]:
    """The modules of the readout's head, as the family table lists them."""
    found: list[torch.nn.Module] = []
    for path in family_of(loaded.config, TITLE).head_modules(readout.head):
        module = resolve(loaded.encoder, path[5:]) if path.startswith("base.") else resolve(loaded.model, path)
        if not isinstance(module, (torch.nn.Linear, torch.nn.LayerNorm)):
            raise InputError(f"{TITLE} follows linear maps and layer norms in a head, and '{path}' is neither.")
        found.append(module)
    if not isinstance(found[-1], torch.nn.Linear):
        raise InputError(f"{TITLE} needs a head that ends in a linear map.")
    return found


def kept_rows(tensor: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """Batch row 0 of a hooked tensor, float64: the kept rows [rows, width] of a sequence, or [1, width]."""
    value = tensor.detach()[0]
    return (value[rows] if value.dim() == 2 else value[None]).double()


@contextmanager
def recording(roles: dict[str, list[torch.nn.Module]], rows: list[int]) -> Iterator[dict[str, Recorded]]:
    """Hooks that record every call of the modules of each role (a module shared by several layers once)."""
    records = {role: Recorded() for role in roles}
    handles = []

    def hook(record: Recorded) -> Any:
        def on_call(module: torch.nn.Module, args: Any, output: Any) -> None:
            record.inputs.append(kept_rows(args[0], rows))
            record.outputs.append(kept_rows(output, rows))
        return on_call

    for role, modules in roles.items():
        for module in {id(m): m for m in modules}.values():
            handles.append(module.register_forward_hook(hook(records[role])))
    try:
        yield records
    finally:
        for handle in handles:
            handle.remove()


def real_pass(context: AttributionContext, blocks: list[DecompXBlock], head: list[torch.nn.Module],
              head_rows: list[int]) -> RealPass:
    """One forward pass of the target's module (the whole model, or the encoder for pooled targets), hooked."""
    n = context.n_tokens
    every = list(range(n))
    layer_roles: dict[str, list[torch.nn.Module]] = {
        "value": [b.attention.value for b in blocks], "norm": [b.attention.norm for b in blocks],
        "in": [b.feed_forward_in for b in blocks], "out": [b.feed_forward_out for b in blocks],
        "output_norm": [b.attention.output_norm for b in blocks],
    }
    target = context.target
    with recording(layer_roles, every) as layers, \
            recording({str(index): [module] for index, module in enumerate(head)}, head_rows) as heads, \
            torch.no_grad():
        out = target.module(inputs_embeds=context.embeddings(), attention_mask=context.attention_mask,
                            output_attentions=True, **context.model_inputs())
    attentions = attention_of_kept_heads(target.loaded.encoder, tuple(a[0].detach().double() for a in out.attentions),
                                         TITLE)
    found = RealPass(
        layer_inputs=layers["value"].inputs, attentions=attentions, norm_inputs=layers["norm"].inputs,
        pre_activations=layers["in"].outputs, activations=layers["out"].inputs,
        output_norm_inputs=layers["output_norm"].inputs, layer_outputs=layers["output_norm"].outputs,
        head=[heads[str(index)] for index in range(len(head))],
    )
    counts = {len(found.layer_inputs), len(found.norm_inputs), len(found.pre_activations), len(found.activations),
              len(found.output_norm_inputs), len(attentions)}
    if counts != {len(attentions)} or any(len(r.inputs) != 1 for r in found.head):
        raise InputError(f"{TITLE} could not follow this model's layers through its family's modules.")
    return found


def chunks(n_parts: int, per_part: int) -> Iterator[slice]:
    """Slices of the parts axis whose temporaries of `per_part` elements each stay within CHUNK_ELEMENTS."""
    size = max(1, CHUNK_ELEMENTS // max(1, per_part))
    for start in range(0, n_parts, size):
        yield slice(start, min(n_parts, start + size))


def bias_weights(dots: torch.Tensor) -> torch.Tensor:
    """The absolute-dot shares [parts, rows] of a bias from each part's dot product with it, summing to 1 per row
    (equal shares in a row where every dot product is 0)."""
    magnitude = dots.abs()
    total = magnitude.sum(0, keepdim=True)
    equal = torch.full_like(magnitude, 1.0 / magnitude.shape[0])
    return torch.where(total > 0, magnitude / torch.where(total > 0, total, torch.ones_like(total)), equal)


def add_bias(parts: torch.Tensor, bias: torch.Tensor | None, dots: torch.Tensor) -> None:
    """Spread `bias` over the parts [parts, rows, width] in place by the absolute-dot shares of `dots`."""
    if bias is None:
        return
    weights = bias_weights(dots)
    for part in chunks(parts.shape[0], parts.shape[1] * parts.shape[2]):
        parts[part] += weights[part, :, None] * bias


def parameter(value: torch.Tensor | None) -> torch.Tensor | None:
    return None if value is None else value.detach().double()


def attention_step(parts: torch.Tensor | None, x: torch.Tensor, attention: torch.Tensor, block: AttentionBlock,
                   rows: list[int]) -> torch.Tensor:
    """The parts of the first layer norm's input at `rows`: attention, residual and the biases, [parts, rows, hidden].

    `parts` None: the first layer, whose input parts are diagonal (P_k,j = [k = j] x_j); otherwise [parts, tokens,
    hidden], updated in place when every row is kept.
    """
    n_heads, n, _ = attention.shape
    w_v = block.value.weight.detach().double()
    w_o = block.output.weight.detach().double()
    hidden, head_dim = w_o.shape[0], w_v.shape[0] // n_heads
    b_v, b_o = parameter(block.value.bias), parameter(block.output.bias)
    bias = (0.0 if b_v is None else w_o @ b_v) + (0.0 if b_o is None else b_o)
    weights = attention[:, rows].contiguous()  # [heads, rows, tokens]
    index = torch.as_tensor(rows, device=x.device)
    if parts is None:
        through = torch.einsum("khe,dhe->khd", (x @ w_v.T).view(n, n_heads, head_dim),
                               w_o.view(hidden, n_heads, head_dim))
        out = x.new_empty(n, len(rows), hidden)
        for part in chunks(n, 2 * len(rows) * hidden):
            out[part] = torch.einsum("hik,khd->kid", weights[:, :, part], through[part])
        out[index, torch.arange(len(rows), device=x.device)] += x[index]
    else:
        in_place = len(rows) == n
        out = parts if in_place else parts.new_empty(parts.shape[0], len(rows), hidden)
        for part in chunks(parts.shape[0], 3 * n * hidden):
            count = part.stop - part.start
            values = (parts[part] @ w_v.T).view(count, n, n_heads, head_dim).permute(2, 1, 0, 3)
            mixed = torch.bmm(weights, values.reshape(n_heads, n, count * head_dim))
            mixed = mixed.view(n_heads, len(rows), count, head_dim).permute(2, 1, 0, 3).reshape(count, len(rows), -1)
            if in_place:
                out[part] += mixed @ w_o.T
            else:
                out[part] = parts[part][:, index] + mixed @ w_o.T
    if isinstance(bias, torch.Tensor):
        add_bias(out, bias, out @ bias)
    return out


def norm_step(parts: torch.Tensor, norm: torch.nn.LayerNorm, real_input: torch.Tensor) -> None:
    """Layer norm linearised at the real input's deviation [rows], in place on [parts, rows, width]; beta spread."""
    sigma = torch.sqrt(real_input.var(-1, unbiased=False) + norm.eps)
    gamma = parameter(norm.weight)
    scale = (1.0 / sigma)[:, None] * (1.0 if gamma is None else gamma)
    for part in chunks(parts.shape[0], parts.shape[1] * parts.shape[2]):
        block = parts[part]
        block.sub_(block.mean(-1, keepdim=True)).mul_(scale)
    beta = parameter(norm.bias)
    if beta is not None:
        add_bias(parts, beta, parts @ beta)


def ratio(activation: torch.Tensor, pre_activation: torch.Tensor) -> torch.Tensor:
    """act(z) / z elementwise at the real values (0 where z is 0)."""
    safe = torch.where(pre_activation != 0, pre_activation, torch.ones_like(pre_activation))
    return torch.where(pre_activation != 0, activation / safe, torch.zeros_like(activation))


def feed_forward_step(parts: torch.Tensor, block: DecompXBlock, pre_activation: torch.Tensor,
                      activation: torch.Tensor, per_token: bool | None = None) -> None:
    """The feed-forward block and its residual, in place on [parts, rows, hidden].

    Two orders of the same products: through the intermediate a chunk of parts at a time, or (`per_token`; None:
    whichever costs fewer multiplications, the second on long texts) through each token's linearised map
    W_2 diag(act(z) / z) W_1, formed once per token and applied to all of its parts."""
    w_1, w_2 = block.feed_forward_in.weight.detach().double(), block.feed_forward_out.weight.detach().double()
    b_1, b_2 = parameter(block.feed_forward_in.bias), parameter(block.feed_forward_out.bias)
    slope = ratio(activation, pre_activation)
    shares = None if b_1 is None else bias_weights(parts @ (w_1.T @ b_1))
    n_parts, n_rows, hidden = parts.shape
    inner_size = w_1.shape[0]
    if per_token is None:
        per_token = hidden * inner_size * hidden + n_parts * hidden * hidden < 2 * n_parts * hidden * inner_size
    dots = torch.zeros(parts.shape[:2], dtype=parts.dtype, device=parts.device)
    if per_token:
        rows_per_chunk = max(1, CHUNK_ELEMENTS // (hidden * (inner_size + hidden + n_parts)))
        for start in range(0, n_rows, rows_per_chunk):
            rows = slice(start, min(n_rows, start + rows_per_chunk))
            maps = torch.einsum("dm,im,me->ide", w_2, slope[rows], w_1)  # [rows, hidden out, hidden in]
            out = torch.bmm(parts[:, rows].transpose(0, 1), maps.transpose(1, 2))  # [rows, parts, hidden]
            if shares is not None and b_1 is not None:
                out += shares[:, rows].T[..., None] * ((slope[rows] * b_1) @ w_2.T)[:, None]
            out = out.transpose(0, 1)
            if b_2 is not None:
                dots[:, rows] = out @ b_2
            parts[:, rows] += out
        add_bias(parts, b_2, dots)
        return
    for part in chunks(n_parts, n_rows * (inner_size + hidden)):
        inner = parts[part] @ w_1.T
        if shares is not None and b_1 is not None:
            inner += shares[part, :, None] * b_1
        inner *= slope
        out = inner @ w_2.T
        if b_2 is not None:
            dots[part] = out @ b_2
        parts[part] += out
    add_bias(parts, b_2, dots)


def propagate(real: RealPass, blocks: list[DecompXBlock], order: list[int], last_rows: list[int],
              progress: ProgressCallback | None = None) -> Iterator[torch.Tensor]:
    """The parts after each layer, [parts, tokens, hidden] (the last layer: [parts, last_rows, hidden]).

    One buffer is updated in place: read each layer's parts before asking for the next."""
    n_layers = len(order)
    n = real.layer_inputs[0].shape[0]
    parts: torch.Tensor | None = None
    for layer in range(n_layers):
        block = blocks[order[layer]]
        rows = last_rows if layer == n_layers - 1 else list(range(n))
        parts = attention_step(parts, real.layer_inputs[layer], real.attentions[layer], block.attention, rows)
        norm_step(parts, block.attention.norm, real.norm_inputs[layer][rows])
        feed_forward_step(parts, block, real.pre_activations[layer][rows], real.activations[layer][rows])
        norm_step(parts, block.attention.output_norm, real.output_norm_inputs[layer][rows])
        if progress is not None:
            progress((layer + 1) / (n_layers + 1))
        yield parts


def head_shares(parts: torch.Tensor, head: list[torch.nn.Module], records: list[Recorded], row: int,
                column: int) -> tuple[torch.Tensor, float]:
    """Each part's share [parts] of output `column` of the head at the kept row `row`, and the real output."""
    def at(values: list[torch.Tensor]) -> torch.Tensor:
        return values[0][row if values[0].shape[0] > 1 else 0]

    h = parts
    for step, module in enumerate(head):
        if step > 0:
            h = h * ratio(at(records[step].inputs), at(records[step - 1].outputs))
        if isinstance(module, torch.nn.LayerNorm):
            h = h[:, None].clone()
            norm_step(h, module, at(records[step].inputs)[None])
            h = h[:, 0]
            continue
        assert isinstance(module, torch.nn.Linear)  # head_modules lets through linear maps and layer norms only
        weight, bias = module.weight.detach().double(), parameter(module.bias)
        if step == len(head) - 1:
            shares = h @ weight[column]
            if bias is not None:
                shares = shares + bias_weights(shares[:, None])[:, 0] * bias[column]
            return shares, float(at(records[step].outputs)[column])
        h = h @ weight.T
        if bias is not None:
            h = h + bias_weights((h @ bias)[:, None]) * bias
    raise InputError(f"{TITLE} needs a head that ends in a linear map.")


def decompx_shares(context: AttributionContext, progress: ProgressCallback | None = None
                   ) -> tuple[np.ndarray, float]:
    """Each input token's share of the explained logit (or cosine), float64 [tokens], and that logit as the real
    forward pass computes it."""
    loaded = context.target.loaded
    blocks, order = decompx_blocks(loaded)
    readout = context.target.readout()
    n = context.n_tokens
    if isinstance(readout, CosineReadout):
        head: list[torch.nn.Module] = []
        rows = list(range(n))
    else:
        head = head_modules(loaded, readout)
        rows = sorted({row for row, _ in readout.terms})
    real = real_pass(context, blocks, head, rows)
    parts = torch.empty(0)
    for after_layer in propagate(real, blocks, order, rows, progress):
        parts = after_layer
    if isinstance(readout, CosineReadout):
        mask = context.attention_mask[0].double()
        pooled = (real.layer_outputs[-1] * mask[:, None]).sum(0) / mask.sum()
        direction = readout.direction.detach().double().to(pooled.device)
        length = torch.linalg.vector_norm(pooled)
        shares = (parts * mask[None, :, None]).sum(1) @ direction / (mask.sum() * length)
        return shares.cpu().numpy(), float(pooled @ direction / length)
    total = torch.zeros(n, dtype=torch.float64, device=parts.device)
    value = 0.0
    for row, column in readout.terms:
        kept = rows.index(row)
        shares, real_value = head_shares(parts[:, kept], head, real.head, kept, column)
        total += shares
        value += real_value
    return total.cpu().numpy(), value


def decompx_layer_norms(context: AttributionContext) -> np.ndarray:
    """The L2 norm of every part after every layer, float64 [layers, tokens i, inputs k]: how much of token i's
    vector at that layer comes from input token k (the information-flow view can draw these)."""
    loaded = context.target.loaded
    blocks, order = decompx_blocks(loaded)
    real = real_pass(context, blocks, [], [])
    every = list(range(context.n_tokens))
    return np.stack([torch.linalg.vector_norm(parts, dim=-1).T.cpu().numpy()
                     for parts in propagate(real, blocks, order, every)])


def decompx(context: AttributionContext, settings: NoSettings, progress: ProgressCallback | None) -> RawScores:
    shares, value = decompx_shares(context, progress)
    return RawScores(scores=shares, score_input=value, score_baseline=0.0, delta=float(shares.sum()) - value)


def decompx_cost(settings: object, n_tokens: int, n_words: int) -> float:
    """Every layer's feed-forward block and projections run on each input token's part of every token: measured on
    MiniLM (one core) at 33 forward passes for 32 tokens and 179 for 128, about 1.4 per token."""
    return FORWARD_PASS * (1 + 1.4 * n_tokens)


DECOMPX = register(Method(
    name="decompx",
    title=TITLE,
    summary="Modarressi et al. (2023): every token's vector carried as one part per input token through every "
            "layer and the head (attention, layer norms and activations linearised at the real pass, biases "
            "spread by |b . part|), so the parts add up exactly to the explained logit; signed, per label. A "
            "probability is decomposed on its logit, a zero-shot label on its cosine; special tokens keep their "
            "shares.",
    settings_type=NoSettings,
    compute=decompx,
    cost=decompx_cost,
    complete=True,
    splits_logit=True,
    refuses=decompx_refusal,
    uses_baseline=False,
))
