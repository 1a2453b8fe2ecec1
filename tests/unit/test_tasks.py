"""Every task head a BERT reader meets: token classification, question answering, next sentence, pre-training,
multi-label classification.

The explained score is checked against a forward pass written here with transformers' own tokenizer call
(`tokenizer(question, context)`, `tokenizer(text, pair)`) and the model class loaded directly; truncation of
pairs against the tokenizer's own truncation; entity merging and the best answer span against rules and brute
force written here.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import AutoTokenizer

from explain.tokenization import encode_pair_truncated

# ---------------------------------------------------------------- pairs cut as the tokenizer cuts them

FIRST = "the film was good but too long and the service was terrible , not great at all ."
SECOND = "i loved the food , it was very fast and this is a good movie ."


@pytest.fixture(scope="module")
def pair_tokenizer(task_dirs):
    return AutoTokenizer.from_pretrained(task_dirs["next_sentence"])


@pytest.mark.parametrize("truncation", ["longest_first", "only_second"])
def test_pair_truncation_matches_the_tokenizers_own(pair_tokenizer, truncation):
    first_words, second_words = FIRST.split(), SECOND.split()
    question_lengths = range(1, 6) if truncation == "only_second" else range(1, len(first_words) + 1)
    checked = 0
    for n_first, n_second in itertools.product(question_lengths, range(1, len(second_words) + 1)):
        first, second = " ".join(first_words[:n_first]), " ".join(second_words[:n_second])
        for max_tokens in range(n_first + 4 if truncation == "only_second" else 4, 40):
            expected = pair_tokenizer(first, second, truncation=truncation, max_length=max_tokens)
            ours = encode_pair_truncated(pair_tokenizer, first, second, max_tokens, truncation=truncation)
            assert ours.encoding.ids == expected["input_ids"], (first, second, max_tokens)
            assert ours.encoding.type_ids == expected["token_type_ids"]
            assert ours.n_tokens_full == len(pair_tokenizer(first, second)["input_ids"])
            checked += 1
    assert checked > 500
