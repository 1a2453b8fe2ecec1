"""Tiny random models of every family in `explain.families.FAMILIES`, each with its own tokenizer class.

hidden 32, 2 layers, 4 heads; saved to a folder and loaded through the public `load_model` path like any
checkpoint. Each family gets the tokenizer its Hub models ship (WordPiece for BERT, ELECTRA, DistilBERT and
MPNet, byte-level BPE for RoBERTa and DeBERTa, a Unigram model for XLM-R, CamemBERT, ALBERT and DeBERTa-v2, GPT-2's BPE for DeBERTa) with the
special-token ids of its real vocabularies, so special-token offsets and padding indices are the real ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import transformers

from testkit.tiny_models import PIECES, ROBERTA_SENTENCES, WORDS

HEADS = ("classification", "masked_lm", "encoder", "token_classification", "question_answering")
HEAD_SUFFIX = {"classification": "ForSequenceClassification", "masked_lm": "ForMaskedLM", "encoder": "Model",
               "token_classification": "ForTokenClassification", "question_answering": "ForQuestionAnswering"}
LABELS = {"token_classification": ("O", "B-PER", "I-PER", "B-LOC", "I-LOC"), "question_answering": ("start", "end")}
DEFAULT_LABELS = ("negative", "neutral", "positive")
LETTERS = list("abcdefghijklmnopqrstuvwxyz")
PUNCTUATION = list(".,!?'<>=/()1")


def wordpiece_vocab(specials: list[str]) -> dict[str, int]:
    tokens = specials + list(WORDS) + LETTERS + PIECES
    return {t: i for i, t in enumerate(dict.fromkeys(tokens))}


def unigram_vocab(specials: list[str], last: list[str] = ()) -> list[tuple[str, float]]:
    """(piece, log-probability) pairs: specials first (their ids are the real models'), whole words, then letters."""
    pieces: list[tuple[str, float]] = [(s, 0.0) for s in specials]
    pieces += [(f"\u2581{w}", -2.0) for w in WORDS if w not in PUNCTUATION]
    pieces += [(p, -3.0) for p in PUNCTUATION] + [("\u2581", -4.0)]
    pieces += [(c, -5.0) for c in LETTERS] + [(f"\u2581{c}", -5.5) for c in LETTERS]
    pieces += [(s, 0.0) for s in last]
    seen: dict[str, float] = {}
    for piece, score in pieces:
        seen.setdefault(piece, score)
    return list(seen.items())


def bert_tokenizer(cls_name: str = "BertTokenizer") -> tuple[Any, dict[str, Any]]:
    vocab = wordpiece_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    return getattr(transformers, cls_name)(vocab=vocab, model_max_length=64), {"pad_token_id": 0}


def byte_level_bpe(specials: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE (vocabulary, merges) trained here on a few sentences, specials first."""
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator([ROBERTA_SENTENCES] * 4, vocab_size=320, min_frequency=1, show_progress=False,
                            special_tokens=specials)
    return bpe.get_vocab(), [tuple(pair) for pair in json.loads(bpe.to_str())["model"]["merges"]]


def roberta_tokenizer() -> tuple[Any, dict[str, Any]]:
    """roberta-base's ids: <s> 0, <pad> 1, </s> 2, <unk> 3, <mask> 4 (which swallows the space before it)."""
    from tokenizers import AddedToken

    vocab, merges = byte_level_bpe(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    tokenizer = transformers.RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=64,
                                              mask_token=AddedToken("<mask>", lstrip=True, rstrip=False,
                                                                    special=True))
    return tokenizer, {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}


def deberta_v1_tokenizer() -> tuple[Any, dict[str, Any]]:
    """deberta-base's ids: [PAD] 0, [CLS] 1, [SEP] 2, [UNK] 3, [MASK] 4 here (last in the real vocabulary)."""
    vocab, merges = byte_level_bpe(["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"])
    return transformers.DebertaTokenizer(vocab=vocab, merges=merges, model_max_length=64), {"pad_token_id": 0}


def xlm_tokenizer(cls_name: str) -> tuple[Any, dict[str, Any]]:
    """XLM-R's and CamemBERT's ids: <s> 0, <pad> 1, </s> 2, <unk> 3, ..., <mask> last."""
    vocab = unigram_vocab(["<s>", "<pad>", "</s>", "<unk>"], last=["<mask>"])
    tokenizer = getattr(transformers, cls_name)(vocab=vocab, model_max_length=64)
    return tokenizer, {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}


def albert_tokenizer() -> tuple[Any, dict[str, Any]]:
    """albert-base-v2's ids: <pad> 0, <unk> 1, [CLS] 2, [SEP] 3, [MASK] 4."""
    vocab = unigram_vocab(["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]"])
    return transformers.AlbertTokenizer(vocab=vocab, model_max_length=64), {"pad_token_id": 0}


def deberta_tokenizer() -> tuple[Any, dict[str, Any]]:
    """deberta-v3's ids: [PAD] 0, [CLS] 1, [SEP] 2, [UNK] 3, ..., [MASK] last."""
    vocab = unigram_vocab(["[PAD]", "[CLS]", "[SEP]", "[UNK]"], last=["[MASK]"])
    return transformers.DebertaV2Tokenizer(vocab=vocab, unk_id=3, model_max_length=64), {"pad_token_id": 0}


def mpnet_tokenizer() -> tuple[Any, dict[str, Any]]:
    """mpnet-base's ids: <s> 0, <pad> 1, </s> 2, <unk> 3, WordPiece words after, <mask> last."""
    vocab = wordpiece_vocab(["<s>", "<pad>", "</s>", "<unk>", "[UNK]"])
    vocab["<mask>"] = len(vocab)
    tokenizer = transformers.MPNetTokenizer(vocab=vocab, unk_token="[UNK]", model_max_length=64)
    return tokenizer, {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2}


SIZES = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def tiny_config(family: str, tokens: dict[str, Any], n_vocab: int, labels: tuple[str, ...]) -> Any:
    """The family's config at hidden 32, 2 layers, 4 heads, with its real special-token ids."""
    common = dict(vocab_size=n_vocab, num_labels=len(labels), id2label=dict(enumerate(labels)),
                  label2id={label: i for i, label in enumerate(labels)}, initializer_range=0.3, **tokens)
    if family == "distilbert":
        return transformers.DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=37,
                                             max_position_embeddings=64, **common)
    if family == "albert":
        return transformers.AlbertConfig(embedding_size=16, max_position_embeddings=64, **SIZES, **common)
    if family == "electra":
        return transformers.ElectraConfig(embedding_size=16, max_position_embeddings=64, **SIZES, **common)
    if family == "deberta-v2":
        # deberta-v3's layout: relative positions only (no absolute table added), no segments.
        return transformers.DebertaV2Config(max_position_embeddings=64, relative_attention=True,
                                            position_biased_input=False, pos_att_type=["p2c", "c2p"],
                                            max_relative_positions=-1, position_buckets=16, type_vocab_size=0,
                                            **SIZES, **common)
    if family == "deberta":
        # deberta-base's layout: relative positions only, no segments.
        return transformers.DebertaConfig(max_position_embeddings=64, relative_attention=True,
                                          position_biased_input=False, pos_att_type=["c2p", "p2c"],
                                          max_relative_positions=-1, type_vocab_size=0, **SIZES, **common)
    if family in ("roberta", "xlm-roberta", "camembert", "mpnet"):
        cls = transformers.AutoConfig.for_model(family).__class__
        # Positions start after the padding index; one segment row, as in roberta-base and xlm-roberta-base.
        return cls(max_position_embeddings=66, type_vocab_size=1, **SIZES, **common)
    return transformers.BertConfig(max_position_embeddings=64, **SIZES, **common)


TOKENIZERS: dict[str, Callable[[], tuple[Any, dict[str, Any]]]] = {
    "bert": bert_tokenizer,
    "roberta": roberta_tokenizer,
    "xlm-roberta": lambda: xlm_tokenizer("XLMRobertaTokenizer"),
    "camembert": lambda: xlm_tokenizer("CamembertTokenizer"),
    "electra": lambda: bert_tokenizer("ElectraTokenizer"),
    "distilbert": lambda: bert_tokenizer("DistilBertTokenizer"),
    "albert": albert_tokenizer,
    "mpnet": mpnet_tokenizer,
    "deberta-v2": deberta_tokenizer,
    "deberta": deberta_v1_tokenizer,
}
MODEL_PREFIX = {"bert": "Bert", "roberta": "Roberta", "xlm-roberta": "XLMRoberta", "camembert": "Camembert",
                "electra": "Electra", "distilbert": "DistilBert", "albert": "Albert", "mpnet": "MPNet",
                "deberta-v2": "DebertaV2", "deberta": "Deberta"}


def save_tiny_family(folder: Path, family: str, head: str = "classification", *, seed: int = 0) -> Path:
    """Write a random tiny model of `family` (a model_type) with `head` (one of HEADS) and its tokenizer."""
    tokenizer, tokens = TOKENIZERS[family]()
    config = tiny_config(family, tokens, len(tokenizer), LABELS.get(head, DEFAULT_LABELS))
    cls = getattr(transformers, MODEL_PREFIX[family] + HEAD_SUFFIX[head])
    torch.manual_seed(seed)
    model = cls(config)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
