"""Tokenizer pieces as people read them: word marks dropped, byte-level BPE decoded, word continuations found.

Plain strings in, plain strings out: the drawing code, the task tables and the exports share these readings.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

SPECIAL_PIECES = {"[CLS]", "[SEP]", "[PAD]", "[MASK]", "[UNK]", "<s>", "</s>", "<pad>", "<mask>", "<unk>"}


def subword_pieces(tokens: list[str]) -> list[str]:
    """Tokenizer pieces as people read them: "##ing" -> "ing", "▁word"/"Ġword" -> "word".

    Special tokens such as [CLS] and [SEP] are kept as they are.
    """
    pieces = []
    for token in tokens:
        token = str(token)
        if token in SPECIAL_PIECES:
            pieces.append(token)
        elif token.startswith("##") and len(token) > 2:
            pieces.append(token[2:])
        elif token[:1] in ("▁", "Ġ") and len(token) > 1:
            pieces.append(token[1:])
        else:
            pieces.append(token)
    return pieces


@functools.lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """Byte-level BPE's (GPT-2, RoBERTa) printable stand-in for each byte, mapped back to the byte."""
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = list(kept), 0
    for b in range(256):
        if b not in kept:
            kept.append(b)
            chars.append(256 + extra)
            extra += 1
    return {chr(c): b for b, c in zip(kept, chars)}


def readable_tokens(tokens: Sequence[str]) -> list[str]:
    """Tokens as text for axis labels: byte-level BPE pieces decoded ("Ġwas" -> "was", "âĢĻ" -> "’"),
    SentencePiece's word mark dropped ("▁word" -> "word"); WordPiece tokens and special tokens stay as they are.

    Only a list with byte-level word marks (Ġ, Ċ) is decoded, so a WordPiece "Ã" is never read as a byte.
    """
    tokens = [str(t) for t in tokens]
    byte_level = any(t[:1] in ("Ġ", "Ċ") for t in tokens)
    decoder = _byte_decoder()
    out = []
    for token in tokens:
        text = token
        if token in SPECIAL_PIECES:
            pass
        elif byte_level:
            try:
                text = bytes(decoder[c] for c in token).decode("utf-8")
            except (KeyError, UnicodeDecodeError):
                text = token
        elif token[:1] == "▁" and len(token) > 1:
            text = token[1:]
        if text != token and not text.strip():
            text = "↵" if "\n" in text else "␣"
        out.append(text.strip() if text.strip() else text)
    return out


def continues_word(tokens: Sequence[str]) -> list[bool]:
    """For each tokenizer piece, whether it continues the word of the piece before it.

    WordPiece marks continuations ("##ing"); SentencePiece ("▁word") and byte-level BPE ("Ġword") mark word
    starts instead, so there a piece without the mark continues the word before it. Special tokens neither
    continue nor are continued.
    """
    tokens = [str(t) for t in tokens]
    marks_starts = any(t[:1] in ("▁", "Ġ") and len(t) > 1 for t in tokens)
    out = []
    for i, token in enumerate(tokens):
        if token in SPECIAL_PIECES or i == 0 or tokens[i - 1] in SPECIAL_PIECES:
            out.append(False)
        elif marks_starts:
            out.append(token[:1] not in ("▁", "Ġ"))
        else:
            out.append(token.startswith("##") and len(token) > 2)
    return out
