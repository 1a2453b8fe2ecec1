"""The command line's --embedding-parts and --layers: the JSON holds them, the table prints them."""

from __future__ import annotations

import json

import numpy as np

from explain import Analysis
from explain.cli import main

TEXT = "the film was good but too long"


def test_depth_flags_write_the_json_and_print_a_table(tiny_dirs, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main([TEXT, "--model", tiny_dirs["classification"], "--steps", "8", "--embedding-parts", "--layers",
                 "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["embedding_parts"]["parts"] == ["token", "position", "segment"]
    assert data["embedding_parts"]["n_steps"] == 8 and data["layer_attribution"]["scores"]["shape"] == [2, 9]
    result = Analysis.from_json(out.read_text())
    printed = capsys.readouterr().out
    assert "embedding parts (8 steps" in printed and "layer integrated gradients (8 steps" in printed
    rows = {line.split()[0]: line.split() for line in printed.splitlines() if line.startswith("  ")}
    for name, scores in zip(result.embedding_parts.parts, result.embedding_parts.scores):
        assert float(rows[name][1]) == np.float64(f"{float(scores.sum()):+.3g}")
    assert rows["1"][1] == f"{float(result.layer_attribution.delta[1]):+.1e}"  # layers numbered from 0


def test_only_what_is_asked_is_computed(tiny_dirs, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main([TEXT, "--model", tiny_dirs["encoder"], "--steps", "4", "--layers", "--out", str(out)]) == 0
    data = json.loads(out.read_text())
    assert "embedding_parts" not in data and data["layer_attribution"]["n_steps"] == 4
    assert "embedding parts" not in capsys.readouterr().out
    assert main([TEXT, "--model", tiny_dirs["encoder"], "--steps", "4", "--out", str(out)]) == 0
    assert "layer_attribution" not in json.loads(out.read_text())
