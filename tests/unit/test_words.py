"""Words keep every character: grapheme-safe, tokenizer-covering, mapped back to the text.

Real tokenizers only: the embedded model's (BERT WordPiece, uncased), the tiny
BertTokenizer of testkit/tiny_models.py, and a byte-level BPE (RoBERTa style) and
a SentencePiece-style unigram tokenizer trained here on a few sentences.
"""

from __future__ import annotations

import numpy as np
import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import ByteLevelBPETokenizer, SentencePieceUnigramTokenizer, processors
from transformers import AutoTokenizer, BertTokenizer, PreTrainedTokenizerFast

from explain.models import embedded_model_path
from explain.words import split_words, word_sums, words_for_tokens
from testkit.tiny_models import vocabulary

TRAINING_TEXT = [
    "the film was good but too long", "naïve café", "私はリンゴが好きです", "كتب الولد", "हिन्दी भाषा",
    "don't stop... ok!!", "hello  world\n\nnew line", "ภาษาไทย สวัสดีครับ", "שלום עולם",
] * 10


def byte_level_bpe() -> PreTrainedTokenizerFast:
    """A RoBERTa-style byte-level BPE, trained here (offsets trimmed of the leading space)."""
    bpe = ByteLevelBPETokenizer(add_prefix_space=False, trim_offsets=True)
    bpe.train_from_iterator(TRAINING_TEXT, vocab_size=400, min_frequency=1,
                            special_tokens=["<s>", "</s>", "<unk>", "<pad>"], show_progress=False)
    bpe.post_processor = processors.RobertaProcessing(("</s>", 1), ("<s>", 0), trim_offsets=True)
    return PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", pad_token="<pad>")


def unigram() -> PreTrainedTokenizerFast:
    """A SentencePiece-style unigram tokenizer ("▁" pieces whose offsets include the space)."""
    sp = SentencePieceUnigramTokenizer()
    sp.train_from_iterator(TRAINING_TEXT, vocab_size=120, special_tokens=["<unk>"], unk_token="<unk>",
                           show_progress=False)
    return PreTrainedTokenizerFast(tokenizer_object=sp._tokenizer, unk_token="<unk>")


@pytest.fixture(scope="module")
def tokenizers():
    return {
        "minilm": AutoTokenizer.from_pretrained(embedded_model_path(), local_files_only=True),
        "tiny_bert": BertTokenizer(vocab=vocabulary(), model_max_length=64),
        "byte_bpe": byte_level_bpe(),
        "unigram": unigram(),
    }


def tokenise(tokenizer, text: str) -> tuple[np.ndarray, np.ndarray]:
    enc = tokenizer(text, return_offsets_mapping=True, return_special_tokens_mask=True)
    offsets = np.array(enc["offset_mapping"], dtype=np.int32).reshape(-1, 2)
    return offsets, np.array(enc["special_tokens_mask"], dtype=bool)


def words_of(tokenizer, text: str):
    offsets, special = tokenise(tokenizer, text)
    return words_for_tokens(text, offsets, special)


SPACE = regex.compile(r"[\s\u200b]")


def covered(text: str, start: int, end: int) -> range:
    """Characters a token covers: its offsets less whitespace (and zero-width space) at both ends."""
    while start < end and SPACE.match(text[start]):
        start += 1
    while end > start and SPACE.match(text[end - 1]):
        end -= 1
    return range(start, end)


def check_words(text: str, offsets: np.ndarray, special: np.ndarray, words) -> None:
    """The properties the Words record promises, checked against independent computations."""
    spans, token_word = words.spans, words.token_word
    assert spans.dtype == np.int32 and spans.shape == (len(words.words), 2)
    assert token_word.dtype == np.int32 and token_word.shape == (len(offsets),)
    for (start, end), word in zip(spans.tolist(), words.words):
        assert 0 <= start < end <= len(text) and text[start:end] == word
    assert all(spans[1:, 0] >= spans[:-1, 1]), "spans overlap or are out of order"
    clusters = {m.start() for m in regex.finditer(r"\X", text)} | {len(text)}
    assert set(spans.ravel().tolist()) <= clusters, "a word boundary falls inside a grapheme cluster"
    word_at = np.full(len(text), -1)
    for w, (start, end) in enumerate(spans.tolist()):
        word_at[start:end] = w
    for t, (start, end) in enumerate(offsets.tolist()):
        if special[t]:
            assert token_word[t] == -1
            continue
        assert token_word[t] >= 0 or not len(spans), f"token {t} {text[start:end]!r} has no word"
        for c in covered(text, start, end):
            assert word_at[c] == token_word[t], f"character {c} {text[c]!r} is not in its token's word"
    assert set(range(len(spans))) <= set(token_word.tolist()), "a word holds no token"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("nai\u0308ve idea", ["nai\u0308ve", "idea"]),  # decomposed diaeresis (U+0308)
        ("cafe\u0301 au lait", ["cafe\u0301", "au", "lait"]),
        ("كَتَبَ الوَلَدُ", ["كَتَبَ", "الوَلَدُ"]),  # Arabic with harakat
        ("हिन्दी भाषा", ["हिन्दी", "भाषा"]),  # Devanagari vowel signs and virama
        ("ภาษาไทย สวัสดีครับ", ["ภาษาไทย", "สวัสดีครับ"]),  # Thai vowel signs; one [UNK] per run
        ("a 😀😀 b", ["a", "😀😀", "b"]),  # one [UNK] over two emoji
        ("🇫🇷 flag", ["🇫🇷", "flag"]),
        ("👍🏽 ok", ["👍🏽", "ok"]),  # skin-tone modifier
        ("👨\u200d👩\u200d👧 family", ["👨\u200d👩\u200d👧", "family"]),  # ZWJ sequence
        ("co\u00adoperate now", ["co\u00adoperate", "now"]),  # soft hyphen
        ("a\u200bb c", ["a\u200bb", "c"]),  # the tokenizer reads through a zero-width space
        ("hello שָׁלוֹם world", ["hello", "שָׁלוֹם", "world"]),  # right-to-left with points, logical order
    ],
)
def test_measured_cases_keep_every_character(tokenizers, text, expected):
    offsets, special = tokenise(tokenizers["minilm"], text)
    words = words_for_tokens(text, offsets, special)
    assert words.words == expected
    check_words(text, offsets, special, words)


def test_japanese_splits_where_the_tokenizer_splits(tokenizers):
    text = "私はリンゴが好きです。"
    # The embedded model has every kana in its vocabulary: one token, so one word, per character.
    assert words_of(tokenizers["minilm"], text).words == list(text)
    # The tiny model splits ideographs off (BERT's CJK rule) and reads each kana run as one [UNK].
    assert words_of(tokenizers["tiny_bert"], text).words == ["私", "はリンゴが", "好", "きです", "。"]
    assert split_words(text)[0] == ["私はリンゴが好きです", "。"]


def test_right_to_left_words_keep_logical_order(tokenizers):
    text = "שלום עולם, good"
    words = words_of(tokenizers["minilm"], text)
    assert words.words == ["שלום", "עולם", ",", "good"]
    assert words.spans.tolist() == [[0, 4], [5, 9], [9, 10], [11, 15]]


def test_space_separated_text_gives_one_word_axis_for_every_tokenizer(tokenizers):
    text = "The film wasn't good, but the naïve café was (too) long!"
    expected = ["The", "film", "wasn't", "good", ",", "but", "the", "naïve", "café", "was", "(", "too", ")",
                "long", "!"]
    assert split_words(text)[0] == expected
    for name, tokenizer in tokenizers.items():
        assert words_of(tokenizer, text).words == expected, name


def test_tokens_over_spaces_or_empty_join_the_next_word(tokenizers):
    text = "the film  was\n\ngood"
    for name in ("byte_bpe", "unigram"):
        offsets, special = tokenise(tokenizers[name], text)
        words = words_for_tokens(text, offsets, special)
        assert words.words == ["the", "film", "was", "good"], name
        check_words(text, offsets, special, words)
        ones = np.ones(len(offsets))
        assert word_sums(ones, words.token_word, len(words)).sum() == (~special).sum(), name


def test_truncated_tokens_drop_the_words_they_never_reach(tokenizers):
    text = "good film " * 40
    enc = tokenizers["tiny_bert"](text, return_offsets_mapping=True, return_special_tokens_mask=True,
                                  truncation=True, max_length=10)
    offsets = np.array(enc["offset_mapping"], dtype=np.int32)
    words = words_for_tokens(text, offsets, np.array(enc["special_tokens_mask"], dtype=bool))
    assert words.words == ["good", "film"] * 4
    assert words.spans[-1, 1] == offsets[-2, 1]


# Pieces that break naive word splitting, mixed with arbitrary characters.
HARD_PIECES = [
    "e\u0301", "nai\u0308ve", "\u0301", "\u0308", "كَتَبَ", "ال", "\u064e", "\u0650", "שָׁלוֹם", "עולם", "हिन्दी",
    "\u093f", "\u094d", "ภาษาไทย", "\u0e31", "\u0e35", "私", "はリンゴ", "好きです", "。", "한국어", "😀", "😀😀",
    "👍🏽", "\U0001f3fd", "🇫🇷", "🇯", "👨\u200d👩\u200d👧", "\u200d", "\u200c", "\u200b", "\u00ad", "\u2060",
    "\u200e", "\u200f", "\ufe0f", "❤\ufe0f", "1\ufe0f\u20e3", " ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u3000",
    "a", "the", "film", "good", "don't", "-", "'", ".", ",", "!", "(", "[MASK]", "<img>", "ﬁ", "1",
]
TEXTS = st.lists(
    st.one_of(st.sampled_from(HARD_PIECES), st.characters(exclude_categories=("Cs",))),
    max_size=24,
).map("".join)


@pytest.mark.parametrize("name", ["minilm", "tiny_bert", "byte_bpe", "unigram"])
@settings(max_examples=200, deadline=None)
@given(text=TEXTS)
def test_every_covered_character_is_in_exactly_one_grapheme_safe_word(tokenizers, name, text):
    offsets, special = tokenise(tokenizers[name], text)
    check_words(text, offsets, special, words_for_tokens(text, offsets, special))


@settings(max_examples=200, deadline=None)
@given(text=TEXTS)
def test_split_words_are_grapheme_safe_and_cover_every_visible_character(text):
    words, spans = split_words(text)
    clusters = {m.start() for m in regex.finditer(r"\X", text)} | {len(text)}
    assert set(spans.ravel().tolist()) <= clusters
    assert [text[s:e] for s, e in spans.tolist()] == words
    inside = np.zeros(len(text), dtype=bool)
    for start, end in spans.tolist():
        assert not inside[start:end].any()
        inside[start:end] = True
    outside = "".join(c for c, k in zip(text, inside) if not k)
    assert SPACE.sub("", outside) == ""
