"""Tiny random BERT and RoBERTa models (hidden 32, 2 layers, 4 heads) saved to folders.

They go through the same public `load_model` path as any local folder.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForNextSentencePrediction,
    BertForPreTraining,
    BertForQuestionAnswering,
    BertForSequenceClassification,
    BertForTokenClassification,
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
# The heads of the other tasks a BERT user meets (multi_label: a classification head with one sigmoid per label).
TASK_HEADS = ("token_classification", "question_answering", "next_sentence", "pretraining", "multi_label")
NER_LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC")
HEAD_CLASSES = {
    "classification": BertForSequenceClassification, "multi_label": BertForSequenceClassification,
    "masked_lm": BertForMaskedLM, "encoder": BertModel, "token_classification": BertForTokenClassification,
    "question_answering": BertForQuestionAnswering, "next_sentence": BertForNextSentencePrediction,
    "pretraining": BertForPreTraining,
}


def vocabulary(alternative: bool = False) -> dict[str, int]:
    """The tiny vocabulary; `alternative` drops whole words so they split into letters."""
    words = [w for w in WORDS if not (alternative and len(w) > 4)]
    tokens = SPECIALS + words + list("abcdefghijklmnopqrstuvwxyz") + PIECES
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}


def save_tiny_model(folder: Path, head: str, *, seed: int = 0, alternative_vocab: bool = False,
                    layers: int = 2, heads: int = 4) -> Path:
    """Write a random tiny BERT with `head` (one of HEADS or TASK_HEADS) to `folder`."""
    vocab = vocabulary(alternative_vocab)
    labels = {"token_classification": NER_LABELS, "question_answering": ("start", "end")}.get(
        head, ("negative", "neutral", "positive"))
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=37,
        max_position_embeddings=64,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
    )
    if head == "multi_label":
        config.problem_type = "multi_label_classification"
    cls = HEAD_CLASSES[head]
    torch.manual_seed(seed)
    model = cls(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    BertTokenizer(vocab=vocab, model_max_length=64).save_pretrained(folder)
    return folder


ROBERTA_SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]  # RoBERTa's ids: <s> 0, <pad> 1, </s> 2, <unk> 3
ROBERTA_SENTENCES = (
    "the film was good but too long . the movie is bad , not great ! the service was terrible and slow . "
    "i loved the food , it was very fast . this is a good movie and that was a bad film ? hello world"
)


def save_tiny_roberta(folder: Path, head: str, *, seed: int = 0) -> Path:
    """Write a random tiny RoBERTa (byte-level BPE trained here on a few sentences) with `head` to `folder`.

    Like roberta-base: <pad> is id 1 (the position embeddings' padding index), positions start
    at 2, and <mask> swallows the space before it (lstrip). Weights are drawn wider than
    BERT's tiny models so that the outputs depend visibly on every input, positions included.
    """
    from tokenizers import AddedToken, ByteLevelBPETokenizer
    from transformers import (
        RobertaConfig,
        RobertaForMaskedLM,
        RobertaForSequenceClassification,
        RobertaModel,
        RobertaTokenizer,
    )

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([ROBERTA_SENTENCES] * 4, vocab_size=320, min_frequency=1, show_progress=False,
                            special_tokens=ROBERTA_SPECIALS)
    vocab = bpe.get_vocab()
    merges = [tuple(pair) for pair in json.loads(bpe.to_str())["model"]["merges"]]
    tokenizer = RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=64,
                                 mask_token=AddedToken("<mask>", lstrip=True, rstrip=False, special=True))
    config = RobertaConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=37,
        max_position_embeddings=66,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        initializer_range=0.3,  # far from uniform outputs, so a pass that numbers positions differently shows
        num_labels=3,
        id2label={0: "negative", 1: "neutral", 2: "positive"},
        label2id={"negative": 0, "neutral": 1, "positive": 2},
    )
    cls = {"classification": RobertaForSequenceClassification, "masked_lm": RobertaForMaskedLM,
           "encoder": RobertaModel}[head]
    torch.manual_seed(seed)
    model = cls(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
