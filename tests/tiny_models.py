"""Tiny random BERT models (vocab ~100, hidden 32, 2 layers, 4 heads) saved to folders.

They go through the same public `load_model` path as any local folder.
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertModel,
    BertTokenizer,
)

WORDS = (
    "the a film movie was is it good bad but too long service terrible great not very and "
    "of to in this that food slow fast loved hated . , ! ? ' < > = / img src x onerror alert ( ) 1"
).split()
PIECES = ["##s", "##ing", "##ed", "##ly", "##er"] + [f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"]
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
HEADS = ("classification", "masked_lm", "encoder")


def vocabulary(alternative: bool = False) -> dict[str, int]:
    """The tiny vocabulary; `alternative` drops whole words so they split into letters."""
    words = [w for w in WORDS if not (alternative and len(w) > 4)]
    tokens = SPECIALS + words + list("abcdefghijklmnopqrstuvwxyz") + PIECES
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}


def save_tiny_model(folder: Path, head: str, *, seed: int = 0, alternative_vocab: bool = False,
                    layers: int = 2, heads: int = 4) -> Path:
    """Write a random tiny BERT with `head` ("classification", "masked_lm", "encoder") to `folder`."""
    vocab = vocabulary(alternative_vocab)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=37,
        max_position_embeddings=64,
        num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    cls = {"classification": BertForSequenceClassification, "masked_lm": BertForMaskedLM, "encoder": BertModel}[head]
    torch.manual_seed(seed)
    model = cls(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    BertTokenizer(vocab=vocab, model_max_length=64).save_pretrained(folder)
    return folder
