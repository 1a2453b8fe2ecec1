from __future__ import annotations

import numpy as np
import pytest

from explain import AnalysisRequest, AttentionMaps, TargetSpec, analyze, head_statistics, rollout, token_by_layer
from explain.attention import renormalise_without


def softmax(x, axis=-1):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


@pytest.mark.parametrize("head", ["classification", "masked_lm", "encoder"])
def test_attention_rows_sum_to_one_and_offsets_match_text(tiny_models, head):
    text = "The film was good but too long [MASK] ."
    result = analyze(AnalysisRequest(text, model=head, n_steps=8), tiny_models[head])
    w = result.attention.weights
    n = len(result.tokens)
    assert w.shape == (2, 4, n, n)
    assert w.dtype == np.float32
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
    for token, (start, end), special in zip(result.tokens.tokens, result.tokens.offsets, result.tokens.special):
        if special:
            continue
        piece = token.removeprefix("##")
        if token != "[UNK]":
            assert text[start:end].lower() == piece.lower()


def test_rollout_rows_sum_to_one_and_match_hand_computation():
    rng = np.random.default_rng(0)
    w = softmax(rng.normal(size=(3, 2, 5, 5))).astype(np.float32)
    maps = AttentionMaps(weights=w)
    r = rollout(maps)
    np.testing.assert_allclose(r.sum(-1), 1.0, atol=1e-5)
    expected = np.eye(5)
    for layer in range(3):
        a = 0.5 * w[layer].mean(0) + 0.5 * np.eye(5)
        expected = a @ expected
    np.testing.assert_allclose(r, expected, atol=1e-5)
    np.testing.assert_allclose(rollout(maps, upto_layer=0), 0.5 * w[0].mean(0) + 0.5 * np.eye(5), atol=1e-6)


def test_head_statistics_on_known_patterns():
    n = 6
    identity = np.broadcast_to(np.eye(n), (1, 1, n, n))
    uniform = np.full((1, 1, n, n), 1 / n)
    previous = np.zeros((1, 1, n, n))
    previous[0, 0, 0, 0] = 1
    for i in range(1, n):
        previous[0, 0, i, i - 1] = 1
    w = np.concatenate([identity, uniform, previous], axis=1).astype(np.float32)
    special = np.array([True] + [False] * (n - 2) + [True])
    stats = head_statistics(AttentionMaps(weights=w), special, ["t"] * n)
    np.testing.assert_allclose(stats["self"][0], [1, 1 / n, 1 / n], atol=1e-6)
    np.testing.assert_allclose(stats["entropy"][0], [0, np.log2(n), 0], atol=1e-6)
    np.testing.assert_allclose(stats["previous"][0], [0, (n - 1) / n / n, (n - 1) / n], atol=1e-6)
    np.testing.assert_allclose(stats["cls"][0], [1 / n, 1 / n, 2 / n], atol=1e-6)
    np.testing.assert_allclose(stats["sep"][0], [1 / n, 1 / n, 0], atol=1e-6)
    np.testing.assert_allclose(stats["distance"][0, 0], 0, atol=1e-6)
    np.testing.assert_allclose(stats["distance"][0, 2], (n - 1) / n, atol=1e-6)


def test_renormalise_without_specials():
    rng = np.random.default_rng(1)
    w = softmax(rng.normal(size=(2, 2, 6, 6)))
    drop = np.array([True, False, False, False, False, True])
    r = renormalise_without(w, drop)
    assert r.shape == (2, 2, 4, 4)
    np.testing.assert_allclose(r.sum(-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(r[0, 0, 0], w[0, 0, 1, 1:5] / w[0, 0, 1, 1:5].sum(), atol=1e-6)


def test_token_by_layer_is_head_mean(tiny_models):
    result = analyze(AnalysisRequest("good film", model="enc", n_steps=4,
                                     target=TargetSpec("similarity", reference="bad film")), tiny_models["encoder"])
    rows = token_by_layer(result.attention, 1)
    np.testing.assert_allclose(rows, result.attention.weights[:, :, 1, :].mean(1), atol=1e-6)
    np.testing.assert_allclose(rows.sum(-1), 1.0, atol=1e-5)
