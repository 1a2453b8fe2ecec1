"""RoBERTa-style (byte-level BPE) tokens are shown as their text on the attention charts, not as "Ġwas"."""

from __future__ import annotations

import numpy as np

from explain.pieces import readable_tokens
from explain.viz.attention import attention_heatmap, token_by_layer_figure

ROBERTA = ["<s>", "The", "Ġfilm", "Ġwas", "Ġgood", "âĢĻ", "s", "Ġ", "Ċ", "</s>"]


def test_byte_level_pieces_read_as_text():
    assert readable_tokens(ROBERTA) == ["<s>", "The", "film", "was", "good", "’", "s", "␣", "↵", "</s>"]
    assert readable_tokens(["▁the", "▁film", "s"]) == ["the", "film", "s"]
    bert = ["[CLS]", "Ã", "un", "##believ", "##able", "[SEP]"]
    assert readable_tokens(bert) == bert  # WordPiece: untouched (its ## reads as "continues the word")


def test_attention_charts_label_the_text():
    n = len(ROBERTA)
    weights = np.full((n, n), 1.0 / n, dtype=np.float32)
    figure = attention_heatmap(weights, ROBERTA, ROBERTA, title="head")
    ticks = list(figure.layout.xaxis.ticktext) + list(figure.layout.yaxis.ticktext)
    assert "was" in ticks and not any("Ġ" in t or "âĢ" in t for t in ticks)
    assert not any("Ġ" in cell for row in figure.data[0].text for cell in row)
    by_layer = token_by_layer_figure(weights[:2], ROBERTA, source_label="Ġwas")
    assert not any("Ġ" in t for t in by_layer.layout.xaxis.ticktext)
