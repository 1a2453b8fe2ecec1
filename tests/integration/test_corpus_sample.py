"""The built-in sample end to end on the embedded model, through the CLI."""

from __future__ import annotations

import pytest

from explain.cli import main
from explain.corpus import summary
from explain.targets.fields import SENTIMENT_LABELS

pytestmark = pytest.mark.integration


def test_the_sample_runs_end_to_end_on_the_embedded_model(tmp_path, capsys):
    out = tmp_path / "sample"
    # --no-naopc: NAOPC (on by default since after this test was written) searches up to 4,096 inputs per text on
    # MiniLM and is not what this test checks; tests/unit/test_corpus_batched_naopc.py checks it, exact and beam.
    assert main(["corpus", "--sample", "--max-rows", "24", "--method", "gradient_x_input", "--faithfulness",
                 "--no-naopc", "--out", str(out)]) == 0
    assert "24 texts explained, 0 skipped" in capsys.readouterr().out
    run = summary.open_run(out)
    texts = run.sql("SELECT prediction, correct FROM texts").to_pylist()
    assert len(texts) == 24 and {t["prediction"] for t in texts} <= set(SENTIMENT_LABELS)
    # The zero-shot sentiment target gets 84% of the whole sample right (docs/corpus.md); far fewer means a bug.
    assert sum(t["correct"] for t in texts) >= 15
    assert main(["corpus-report", str(out)]) == 0
    assert "faithfulness by method" in capsys.readouterr().out
