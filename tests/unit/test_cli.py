"""The command line: one token-limit default with the dashboard, --top, no misleading tokenizer warning."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from transformers.utils import logging as hf_logging

from explain import Analysis, AnalysisRequest, analyze
from explain.analysis import DEFAULT_MAX_TOKENS, analysis_from_dict
from explain.cli import DEFAULT_TOP_WORDS, build_parser, main

TEXT = "the film was good but too long and the service was terrible , not great !"


def word_lines(output: str) -> list[tuple[str, float]]:
    """(word, score) of each word line the CLI printed."""
    rows = []
    for line in output.splitlines():
        if line.startswith("  "):
            word, score = line.split()
            rows.append((word, float(score)))
    return rows


def small_analysis(loaded) -> Analysis:
    return analyze(AnalysisRequest("the film was good", n_steps=2), loaded)


def test_one_token_limit_default_for_library_cli_and_old_files(tiny_models):
    assert DEFAULT_MAX_TOKENS == 128
    assert build_parser().parse_args(["x"]).max_tokens == DEFAULT_MAX_TOKENS
    assert AnalysisRequest("x").max_tokens == DEFAULT_MAX_TOKENS
    saved = json.loads(small_analysis(tiny_models["encoder"]).to_json())
    del saved["request"]["max_tokens"]
    assert analysis_from_dict(saved).request.max_tokens == 512  # what files without a limit were computed with


def test_old_files_without_notices_read(tiny_models):
    saved = json.loads(small_analysis(tiny_models["encoder"]).to_json())
    del saved["notices"], saved["tokens"]["n_tokens_full_at_least"]
    back = analysis_from_dict(saved)
    assert back.notices == () and not back.tokens.n_tokens_full_at_least


def test_top_prints_the_strongest_words(tiny_dirs, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main([TEXT, "--model", tiny_dirs["encoder"], "--steps", "4", "--top", "3", "--out", str(out)]) == 0
    result = Analysis.from_json(out.read_text())
    printed = word_lines(capsys.readouterr().out)
    strongest = np.argsort(-np.abs(result.word_scores), kind="stable")[:3]
    assert [w for w, _ in printed] == [result.words.words[i] for i in strongest]
    for (_, score), i in zip(printed, strongest):
        assert score == pytest.approx(float(result.word_scores[i]), rel=1e-2, abs=1e-12)

    assert main([TEXT, "--model", tiny_dirs["encoder"], "--steps", "4", "--top", "all"]) == 0
    assert [w for w, _ in word_lines(capsys.readouterr().out)] == result.words.words

    assert main([TEXT, "--model", tiny_dirs["encoder"], "--steps", "4"]) == 0
    assert len(word_lines(capsys.readouterr().out)) == DEFAULT_TOP_WORDS < len(result.words)


@pytest.mark.parametrize("bad", ["0", "-2", "many"])
def test_top_refuses_what_is_not_a_count(bad, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["x", "--top", bad])
    assert exit_.value.code == 2
    assert "--top" in capsys.readouterr().err


class Collect(logging.Handler):
    """Keeps the messages logged while it is attached."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_truncated_text_prints_no_indexing_warning(tiny_dirs, capsys):
    """transformers warns 'will result in indexing errors' when it tokenises past the model's limit; the text
    is truncated correctly, so the user must not see it (a fresh model: the warning shows once per tokenizer)."""
    text = " ".join(["good film"] * 100)
    library_logger = hf_logging.get_logger("transformers")
    previous = hf_logging.get_verbosity()
    collect = Collect()
    library_logger.addHandler(collect)
    hf_logging.set_verbosity_warning()
    try:
        assert main([text, "--model", tiny_dirs["classification"], "--steps", "2"]) == 0
    finally:
        hf_logging.set_verbosity(previous)
        library_logger.removeHandler(collect)
    assert not [m for m in collect.messages if "indexing errors" in m]
    assert "note: The text has 202 tokens; only the first 64 were analysed." in capsys.readouterr().out


def test_cli_integrates_adaptively_by_default_and_fixed_on_request(tiny_dirs, tmp_path, capsys):
    assert build_parser().parse_args(["x"]).integration == "adaptive_simpson"
    adaptive, fixed = tmp_path / "a.json", tmp_path / "f.json"
    assert main([TEXT, "--model", tiny_dirs["encoder"], "--steps", "30", "--out", str(adaptive)]) == 0
    assert "model evaluations (adaptive simpson, at most 30)" in capsys.readouterr().out
    assert main([TEXT, "--model", tiny_dirs["encoder"], "--steps", "30", "--integration", "gauss_legendre",
                 "--out", str(fixed)]) == 0
    assert "integrated gradients: 30 steps" in capsys.readouterr().out
    a, f = Analysis.from_json(adaptive.read_text()), Analysis.from_json(fixed.read_text())
    assert a.request.integration == "adaptive_simpson" and a.attribution.n_steps <= 30
    assert f.request.integration == "gauss_legendre" and f.attribution.n_steps == 30
