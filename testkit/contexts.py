"""Attribution contexts for tests: a real text on a loaded model, and a linear bag-of-embeddings model.

The linear model scores a text as sum_t mask_t (e_t . w): leave-one-word-out,
gradient x (input - baseline), integrated gradients and Shapley values all equal
sum over the word's tokens of (e_t - b_t) . w, which the test computes by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from explain.inputs import tokenize
from explain.methods import AttributionContext
from explain.models import LoadedModel
from explain.pipeline import attribution_context
from explain.records import AnalysisRequest, TargetSpec
from explain.targets import Target
from explain.words import words_for_tokens


def build_context(loaded: LoadedModel, text: str, spec: TargetSpec | None = None, baseline: str = "pad"
                  ) -> AttributionContext:
    """The context an analysis builds: tokens, target (top prediction unless `spec` names one), words."""
    request = AnalysisRequest(text, model=loaded.spec, target=spec, baseline=baseline, max_tokens=loaded.max_tokens)
    return attribution_context(request, loaded)


class BagOfEmbeddings(torch.nn.Module):
    """Word embeddings (N(0, 1), seeded) and a fixed readout vector; nothing else."""

    def __init__(self, vocab_size: int, hidden: int, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.embedding = torch.nn.Embedding(vocab_size, hidden)
        with torch.no_grad():
            self.embedding.weight.copy_(torch.randn(vocab_size, hidden, generator=generator))
        self.readout = torch.randn(hidden, generator=generator)
        self.embedding.weight.requires_grad_(False)
        self.config = None  # no transformers config: work is priced at the reference shape (explain.pacing)

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.embedding


@dataclass(frozen=True, eq=False)
class LinearTarget(Target):
    """The explained score is the bag-of-embeddings sum itself (one label, no softmax)."""

    def forward_embeddings(self, inputs_embeds, attention_mask, token_type_ids=None, position_ids=None):
        bag = self.loaded.model
        return ((inputs_embeds @ bag.readout) * attention_mask.to(inputs_embeds.dtype)).sum(1, keepdim=True)


def linear_context(tokenizer_source: LoadedModel, text: str, baseline: str = "pad"
                   ) -> tuple[AttributionContext, np.ndarray]:
    """A context on the linear model (tokenised like `tokenizer_source`) and each word's exact contribution."""
    tok = tokenizer_source.tokenizer
    bag = BagOfEmbeddings(len(tok), 16)
    loaded = LoadedModel(spec="linear", name="linear bag of embeddings", model=bag, tokenizer=tok,
                         head="classification", label_names=["score"], device=torch.device("cpu"))
    inputs, tokens = tokenize(loaded, text, 64)
    target = LinearTarget(TargetSpec("class"), loaded, ("score",), index=0, score_name="score")
    words = words_for_tokens(text, tokens.offsets, tokens.special)
    context = AttributionContext(target=target, input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                 special=inputs["special"], token_word=words.token_word, n_words=len(words),
                                 baseline=baseline, token_type_ids=inputs.get("token_type_ids"),
                                 position_ids=torch.arange(inputs["input_ids"].shape[1]).unsqueeze(0))
    ids = inputs["input_ids"][0]
    special = inputs["special"][0]
    x = bag.embedding.weight[ids]
    if baseline == "zero":
        b = torch.where(special.unsqueeze(-1), x, torch.zeros_like(x))
    else:
        token_id = tok.pad_token_id if baseline == "pad" else tok.mask_token_id
        b = bag.embedding.weight[torch.where(special, ids, torch.full_like(ids, token_id))]
    per_token = ((x - b) @ bag.readout).double().numpy()
    contributions = np.zeros(len(words))
    np.add.at(contributions, words.token_word[words.token_word >= 0], per_token[words.token_word >= 0])
    return context, contributions
