"""benchmarks/corpus.py: its texts are seeded and sized, and a tiny run prints every table of the Markdown block."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "corpus.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("benchmark_corpus", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["benchmark_corpus"] = module
    spec.loader.exec_module(module)
    return module


def test_texts_are_seeded_and_within_the_word_range(bench):
    texts = bench.make_texts(200, 5, 60)
    assert texts == bench.make_texts(200, 5, 60)
    lengths = [len(t.split()) for t in texts]
    assert min(lengths) >= 5 and max(lengths) <= 60 and len(set(lengths)) > 30
    assert bench.make_texts(200, 5, 60, seed=1) != texts


def test_sizes_are_checked(bench):
    with pytest.raises(SystemExit):
        bench.sizes_of(bench.parse(["--texts", "0"]))
    sizes = bench.sizes_of(bench.parse(["--quick", "--texts", "10", "--loop-texts", "50", "--rss", "5,7"]))
    assert (sizes.texts, sizes.loop_texts, sizes.rss) == (10, 10, (5, 7))


@pytest.mark.slow
def test_a_tiny_run_prints_every_table(bench, tiny_dirs, tmp_path):
    out = tmp_path / "corpus.md"
    # The fewest texts that still give two corpus batches and two memory runs (each memory run is a fresh process).
    text = bench.main(["--quick", "--model", tiny_dirs["classification"], "--texts", "3", "--loop-texts", "1",
                       "--max-words", "12", "--batch-size", "2", "--rss", "2,3", "--no-ray", "--out", str(out)])
    assert out.read_text(encoding="utf-8") == text + "\n"
    assert "| gradient x input |" in text and "| integrated gradients (default) |" in text
    assert text.count("- target: ") == 3
    assert "\n| 2 | " in text and "\n| 3 | " in text and "peak RSS at 3 texts within 10% of 2" in text
    assert "Ray engine" not in text


def test_only_ray_runs_the_ray_texts_asked_for_whatever_the_throughput_size(bench):
    """The Ray comparison on the 500-text throughput set (issue 19, section 6) is not cut to --texts."""
    sizes = bench.sizes_of(bench.parse(["--only-ray", "--texts", "100", "--ray-texts", "500"]))
    assert sizes.ray_texts == 500
    assert bench.sizes_of(bench.parse(["--only-ray", "--ray-texts", "500"])).ray_texts == 500
