"""One padded corpus pass of tiny models, with the engine's shortcuts switched on or off: the tests of each shortcut
compare its scores and input gradients with the plain pass's."""

from __future__ import annotations

from contextlib import nullcontext

import torch

from explain.corpus.batched import Padded, fast_attention
from explain.corpus.first_position import first_position_only
from explain.corpus.packed import real_tokens_only


def scores_and_gradient(loaded, contexts, *, cut: bool, packed: bool = False):
    """Every label's score [texts, labels], the gradient of the explained ones at the padded inputs, and whether the
    last-layer cut and the real-tokens-only layers were active."""
    padded = Padded(contexts)
    points = padded.inputs.detach().requires_grad_(True)
    with fast_attention(loaded), first_position_only(loaded, contexts[0].target if cut else None) as cut_active:
        with real_tokens_only(loaded) if packed else nullcontext(False) as packed_active:
            scores = padded.target.forward_embeddings(points, padded.mask, padded.types, padded.positions)
            (gradient,) = torch.autograd.grad(scores.gather(1, padded.indices[:, None]).sum(), points)
    return scores.detach(), gradient, cut_active, packed_active
