"""The command line: one token-limit default with the dashboard, --top, no misleading tokenizer warning."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
from transformers.utils import logging as hf_logging

from explain import Analysis, AnalysisRequest, analyze
from explain.cli import DEFAULT_TOP_WORDS, build_parser, main
from explain.records import (
    DEFAULT_MAX_TOKENS,
    analysis_from_dict,
    neuron_view_from_dict,
    pruning_curve_from_dict,
)

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


# ---------------------------------------------------------------- tasks: entities, answers, sentence pairs

TASK_TEXT = "the film was good but too long ."
QUESTION = "what was too long ?"
PAIR = "it was very slow and bad ."


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_target_choices_and_help_come_from_the_registry():
    from explain.targets import TARGETS

    parser = build_parser()
    action = next(a for a in parser._actions if a.dest == "target")
    assert list(action.choices) == list(TARGETS)
    help_text = "".join(parser.format_help().split())
    for name, kind in TARGETS.items():
        assert f"{name}" in help_text
        assert "".join(kind.summary.rstrip(".").split())[1:] in help_text  # argparse wraps lines anywhere


def test_every_entity_is_printed_and_written(task_dirs, tmp_path, capsys):
    out = tmp_path / "ner.json"
    code, printed, _ = run_cli(capsys, TASK_TEXT, "--model", task_dirs["token_classification"], "--steps", "4",
                               "--out", str(out))
    assert code == 0
    data = json.loads(out.read_text())
    assert data["task"] == "token_classification"
    result = Analysis.from_json(out.read_text())
    spans = result.prediction.spans
    assert len(data["entities"]) == len(result.entities) == len(spans) >= 2
    assert set(data["entities"][0]) == {"label", "token_label", "first_token", "last_token", "words", "score",
                                        "explained", "method", "word_scores"}
    lines = printed.splitlines()
    header = lines.index(f"entities ({len(spans)}):")
    rows = lines[header + 2 : header + 2 + len(spans)]
    for row, entity, span in zip(rows, result.entities, spans):
        cells = row.split()
        assert cells[0] == span.label and cells[1] == f"{span.first_token}-{span.last_token}"
        assert f"{entity.token_label} {entity.explained:.3g}" in row
        text = " ".join(entity.words)
        assert f" {text} " in row
    # the main analysis is the first entity
    assert result.entities[0].explained == pytest.approx(result.attribution.score_input)


def test_a_chosen_token_explains_that_token_only(task_dirs, tmp_path, capsys):
    out = tmp_path / "token.json"
    code, printed, _ = run_cli(capsys, TASK_TEXT, "--model", task_dirs["token_classification"], "--steps", "4",
                               "--token", "3", "--label", "I-PER", "--logit", "--out", str(out))
    assert code == 0
    result = Analysis.from_json(out.read_text())
    assert result.entities == () and json.loads(out.read_text())["entities"] == []
    assert result.request.target.token == 3 and result.request.target.logit
    assert "explained: logit(I-PER) at token 3" in printed


def test_the_answer_is_printed_from_the_context(task_dirs, tmp_path, capsys):
    from transformers import AutoTokenizer

    out = tmp_path / "qa.json"
    code, printed, _ = run_cli(capsys, TASK_TEXT, "--question", QUESTION, "--model", task_dirs["question_answering"],
                               "--steps", "4", "--part", "span", "--out", str(out))
    assert code == 0
    result = Analysis.from_json(out.read_text())
    (answer,) = result.prediction.spans
    offsets = AutoTokenizer.from_pretrained(task_dirs["question_answering"])(
        QUESTION, TASK_TEXT, return_offsets_mapping=True)["offset_mapping"]
    expected = TASK_TEXT[offsets[answer.first_token][0] : offsets[answer.last_token][1]]
    assert f"answer: «{expected}» (tokens {answer.first_token}-{answer.last_token}, span score {answer.score:.4g}" \
        in printed
    assert json.loads(out.read_text())["task"] == "question_answering"
    assert result.request.question == QUESTION and result.request.text == TASK_TEXT


def test_pair_words_are_printed_under_their_text(task_dirs, tmp_path, capsys):
    out = tmp_path / "pair.json"
    code, printed, _ = run_cli(capsys, TASK_TEXT, "--pair", PAIR, "--model", task_dirs["next_sentence"],
                               "--steps", "4", "--top", "all", "--out", str(out))
    assert code == 0
    result = Analysis.from_json(out.read_text())
    lines = printed.splitlines()
    first, second = lines.index("in the first text:"), lines.index("in the second text:")
    assert [line.split()[0] for line in lines[first + 1 : second]] == TASK_TEXT.split()
    assert [line.split()[0] for line in lines[second + 1 :] if line.startswith("  ")] == PAIR.split()
    assert [w for w, _ in word_lines(printed)] == result.words.words


@pytest.mark.parametrize("head, argv, message", [
    ("question_answering", [], "needs a question"),
    ("next_sentence", [], "needs a second text"),
    ("next_sentence", ["--pair", PAIR, "--part", "end"], "does not read --part; it reads --label, --logit."),
    ("token_classification", ["--token", "99"], "There is no token 99"),
    ("next_sentence", ["--pair", PAIR, "--question", QUESTION], "either a second text or a question"),
    ("multi_label", ["--target", "answer", "--question", QUESTION], "cannot explain a 'answer' target"),
    ("token_classification", ["--token", "1", "--faithfulness", "--removal", "remove"], "use the 'replace' mode"),
    ("question_answering", ["--question", QUESTION, "--label", "start"], "does not read --label"),
])
def test_task_errors_are_one_sentence(task_dirs, capsys, head, argv, message):
    code, printed, err = run_cli(capsys, TASK_TEXT, "--model", task_dirs[head], "--steps", "2", *argv)
    assert code == 2 and printed == ""
    line = err.strip()
    assert line.startswith("error: ") and message in line and line.endswith(".") and "\n" not in line
    assert ". " not in line.removeprefix("error: ").rstrip(".")


@pytest.mark.parametrize("argv", [["--token", "-1"], ["--token", "first"], ["--part", "middle"]])
def test_bad_token_or_part_is_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["x", *argv])
    assert exit_.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_head_importance_on_a_pair_ranks_the_heads_for_the_pair(task_dirs, tmp_path, capsys):
    out = tmp_path / "pair_heads.json"
    code, _, _ = run_cli(capsys, TASK_TEXT, "--pair", PAIR, "--model", task_dirs["next_sentence"], "--steps", "2",
                         "--head-importance", "--out", str(out))
    assert code == 0
    data = json.loads(out.read_text())
    result = Analysis.from_json(out.read_text())
    assert data["head_importance"]["score"] == pytest.approx(result.attribution.score_input, rel=1e-5)


def test_head_importance_on_entities_reads_the_explained_token(task_dirs, tmp_path, capsys):
    out = tmp_path / "heads.json"
    code, _, _ = run_cli(capsys, TASK_TEXT, "--model", task_dirs["token_classification"], "--steps", "2",
                         "--head-importance", "--out", str(out))
    assert code == 0
    data = json.loads(out.read_text())
    result = Analysis.from_json(out.read_text())
    assert data["head_importance"]["description"] == result.prediction.description
    assert data["head_importance"]["score"] == pytest.approx(result.attribution.score_input, rel=1e-5)


@pytest.mark.parametrize("head, argv, logits_of", [
    ("multi_label", ["--label", "neutral", "--logit"], lambda out: out.logits[0, 1]),
    ("pretraining", ["--pair", PAIR, "--target", "next_sentence", "--label", "is next", "--logit"],
     lambda out: out.seq_relationship_logits[0, 0]),
])
def test_logit_prints_the_models_own_logit(task_dirs, tmp_path, capsys, head, argv, logits_of):
    import torch
    from transformers import AutoTokenizer

    from testkit.tiny_models import HEAD_CLASSES

    out = tmp_path / "logit.json"
    code, printed, _ = run_cli(capsys, TASK_TEXT, "--model", task_dirs[head], "--steps", "2", "--out", str(out),
                               *argv)
    assert code == 0
    model = HEAD_CLASSES[head].from_pretrained(task_dirs[head]).eval()
    texts = (TASK_TEXT, PAIR) if "--pair" in argv else (TASK_TEXT,)
    with torch.no_grad():
        expected = float(logits_of(model(**AutoTokenizer.from_pretrained(task_dirs[head])(*texts,
                                                                                          return_tensors="pt"))))
    result = Analysis.from_json(out.read_text())
    assert result.prediction.score_name == "logit"
    assert result.attribution.score_input == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert f"= {expected:.4g} (baseline" in printed


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


def test_pruning_and_neuron_view_go_into_the_json(tiny_dirs, tmp_path, capsys):
    out = tmp_path / "heads.json"
    code = main([TEXT, "--model", tiny_dirs["classification"], "--steps", "2", "--pruning", "gradient",
                 "--neuron", "1:2:3", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    result = Analysis.from_json(out.read_text())
    curve, neuron = pruning_curve_from_dict(data["pruning_curve"]), neuron_view_from_dict(data["neuron_view"])
    assert curve.importance_name == "gradient" and curve.removed[0] == 0 and curve.removed[-1] == 2 * 4
    assert curve.scores[0] == pytest.approx(result.attribution.score_input, rel=1e-5)  # nothing removed yet
    assert "pruning by gradient importance" in printed and "neuron view of head 1:2 for token 3" in printed
    # the neuron view's softmax row is the head's attention row the analysis recorded
    row = np.asarray(neuron.attention, dtype=np.float64)
    np.testing.assert_allclose(row, result.attention.weights[1, 2, 3], atol=1e-5)


@pytest.mark.parametrize("argv, message", [
    (["--neuron", "9:0:1"], "There is no head 9:0"),
    (["--neuron", "0:0:99"], "or token 99"),
])
def test_heads_flags_out_of_range_are_one_sentence(tiny_dirs, capsys, argv, message):
    code = main([TEXT, "--model", tiny_dirs["classification"], "--steps", "2", *argv])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and err.endswith(".") and "\n" not in err


def test_a_neuron_spec_that_is_not_three_numbers_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["x", "--neuron", "1:2"])
    assert "layer:head:token" in capsys.readouterr().err


def test_the_cli_and_the_heads_page_write_the_same_json_for_the_same_maps(tiny_dirs, tmp_path):
    """One codec: the CLI's head maps, pruning curve and neuron view are the Heads page's export, byte for byte."""
    from dashboard.cached import HeadResultCache
    from explain import load_model
    from explain.records import HeadsRequest, heads_document
    from explain.scheduling import Schedulers

    out = tmp_path / "heads.json"
    assert main([TEXT, "--model", tiny_dirs["classification"], "--steps", "2", "--head-importance",
                 "--pruning", "gradient", "--neuron", "1:2:3", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    loaded = load_model(tiny_dirs["classification"])
    cache = HeadResultCache(schedulers=Schedulers())
    request = HeadsRequest(loaded.spec, TEXT, None, DEFAULT_MAX_TOKENS)
    inputs = cache.inputs(request, loaded)
    importance = cache.importance(request, loaded, inputs)
    curve = cache.pruning(request, loaded, inputs, importance, "gradient", "least")
    view = cache.neuron(request, loaded, inputs, 1, 2, 3)
    page = json.loads(heads_document(request, importance, curve, view))
    for key in ("head_importance", "pruning_curve", "neuron_view"):
        mine, theirs = dict(written[key]), dict(page[key])
        if key == "head_importance":
            mine.pop("timings"), theirs.pop("timings")  # seconds differ from run to run
        assert mine == theirs, key


@pytest.mark.parametrize("model,target,split", [("classification", [], "logit"),
                                                ("encoder", ["--target", "zero_shot"], "cosine")])
def test_decompx_says_it_splits_the_logit_not_the_probability(tiny_dirs, tmp_path, capsys, model, target, split):
    """DecompX splits the logit (a cosine for pooled targets), not the shown probability: the CLI printed that value
    as "P(...) = value (baseline 0)"; it now names what was split. The help lists the decomposition methods."""
    out = tmp_path / "a.json"
    assert main(["a fine film", "--model", tiny_dirs[model], *target, "--method", "decompx", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    result = analysis_from_dict(json.loads(out.read_text()))
    head = printed.split("word attributions:")[0]
    assert f"explained: {result.prediction.description}\n" in head and "baseline" not in head
    assert (f"DecompX splits the {split} behind {result.prediction.description}, "
            f"{result.attribution.score_input:.4g}, exactly among all tokens") in head
    help_text = build_parser().format_help()
    assert all(name in help_text for name in ("decompx", "value_zeroing", "alti", "globenc"))


@pytest.mark.parametrize("method", ["attention_rollout", "alti", "value_zeroing", "saliency"])
def test_methods_that_use_no_baseline_print_none(tiny_dirs, capsys, method):
    """Rollout, ALTI, Value Zeroing and saliency never read the baseline token, yet the CLI printed
    "pad baseline" for them; a method declares whether it uses a baseline and only those name it."""
    assert main(["a fine film", "--model", tiny_dirs["classification"], "--method", method]) == 0
    head = capsys.readouterr().out.split("word attributions:")[0]
    assert "baseline" not in head


@pytest.mark.parametrize("method", ["occlusion", "gradient_x_input"])
def test_methods_that_use_a_baseline_name_it(tiny_dirs, capsys, method):
    assert main(["a fine film", "--model", tiny_dirs["classification"], "--method", method,
                 "--baseline", "mask"]) == 0
    assert "mask baseline" in capsys.readouterr().out
