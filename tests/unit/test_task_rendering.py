"""What each task shows (explain.tasks): texts apart, entities and answers marked, segment markers, exports."""

from __future__ import annotations

import csv
import html
import io

import numpy as np
import pytest

from explain import AnalysisRequest, TargetSpec, analyze
from explain.exports import word_scores_csv
from explain.records import Prediction
from explain.tasks import (
    entity_requests,
    has_independent_scores,
    second_segment_start,
    segment_names,
    segment_rows,
    span_text,
    token_rows_of,
)
from explain.viz.attention import attention_heatmap
from explain.viz.highlights import marked_text_html
from explain.viz.prediction import sigmoid_bars_figure
from explain.viz.report import standalone_html
from explain.viz.tasks import texts_html

CONTEXT = "the film was good but too long ."
QUESTION = "what was the film ?"


@pytest.fixture(scope="module")
def qa(task_models):
    loaded = task_models["question_answering"]
    return analyze(AnalysisRequest(CONTEXT, question=QUESTION, model=loaded.spec, n_steps=4), loaded)


@pytest.fixture(scope="module")
def pair(task_models):
    loaded = task_models["next_sentence"]
    return analyze(AnalysisRequest("the film was good .", pair="it was too long .", model=loaded.spec, n_steps=4),
                   loaded)


@pytest.fixture(scope="module")
def ner(task_models):
    loaded = task_models["token_classification"]
    return analyze(AnalysisRequest(CONTEXT, model=loaded.spec, n_steps=4), loaded)


@pytest.mark.parametrize("level", ["word", "subword"])
def test_segment_rows_split_every_piece_once_and_in_order(qa, pair, level):
    for result in (qa, pair):
        rows = segment_rows(result, level)
        assert [row.name for row in rows] == list(segment_names(result.request))
        indices = np.concatenate([row.indices for row in rows])
        n = len(result.words) if level == "word" else len(result.tokens)
        assert indices.tolist() == list(range(n))
        total = result.word_scores.sum() if level == "word" else result.attribution.scores.sum()
        assert sum(float(row.scores.sum()) for row in rows) == pytest.approx(float(total), abs=1e-6)


def test_each_word_row_reads_its_own_text(qa):
    for row in segment_rows(qa, "word"):
        text = qa.request.texts[row.segment]
        for i, word in zip(row.indices, row.pieces):
            start, end = qa.words.spans[i]
            assert text[start:end] == word


def test_second_segment_start_is_where_the_tokenizer_switches_token_type(pair, task_models):
    tokenizer = task_models["next_sentence"].tokenizer
    encoded = tokenizer("the film was good .", "it was too long .")
    types = encoded["token_type_ids"]
    assert second_segment_start(pair.tokens.segments) == types.index(1)
    # without the special tokens, positions shift left by the one [CLS] and one [SEP] before the second text
    assert second_segment_start(pair.tokens.segments, ~pair.tokens.special) == types.index(1) - 2
    assert second_segment_start(None) is None


def test_special_tokens_join_the_text_they_close():
    assert token_rows_of(np.array([-1, 0, 0, -1, 1, 1, -1])).tolist() == [0, 0, 0, 0, 1, 1, 1]


def test_answer_and_question_are_shown_apart_and_escaped(task_models):
    loaded = task_models["question_answering"]
    result = analyze(AnalysisRequest("the <b>film</b> was good .", question="what & why ?", model=loaded.spec,
                                     n_steps=2), loaded)
    body = texts_html(result)
    assert "<b>film" not in body and "&lt;b&gt;" in body and "what &amp; why ?" in body
    assert body.index("Question") < body.index("Context") < body.index("<mark")
    answer = result.prediction.spans[0]
    assert html.escape(span_text(result, answer)) in body
    page = standalone_html(result)
    assert "Question" in page and "Context" in page and "<b>film" not in page


def test_entity_requests_explain_each_entity_at_its_first_token(ner, task_models):
    pairs = entity_requests(ner)
    assert [span for span, _ in pairs] == list(ner.prediction.spans)
    loaded = task_models["token_classification"]
    for span, request in pairs[:2]:
        assert request.target == TargetSpec(kind="token_class", token=span.first_token)
        explained = analyze(request, loaded)
        label = explained.prediction.labels[explained.prediction.explained_index]
        assert label.endswith(span.label)  # the label the entity was predicted from (B- or a starting I-)


def test_entities_marked_over_their_characters(ner):
    body = texts_html(ner)
    assert body.count("<mark") == len(ner.prediction.spans)
    for span in ner.prediction.spans:
        assert f"<bdi>{html.escape(span_text(ner, span))}</bdi>" in body


def test_marked_text_escapes_and_skips_overlaps():
    text = "<img src=x onerror=alert(1)> Paris"
    body = marked_text_html(text, [(29, 34, "LOC", "#fff", "a\"b"), (30, 33, "PER", "#000", "")],
                            legend={"<LOC>": "#fff"})
    assert "<img" not in body and "&lt;img" in body and "&lt;LOC&gt;" in body
    assert body.count("<mark") == 1 and 'title="a&quot;b"' in body


def test_segment_start_draws_dashed_lines_before_the_second_text():
    fig = attention_heatmap(np.full((4, 4), 0.25), list("abcd"), list("abcd"), segment_start=2)
    lines = [(s.x0, s.y0, s.line.dash) for s in fig.layout.shapes]
    assert len(lines) == 2 and all(dash == "dash" for *_, dash in lines)
    assert {x for x, _, _ in lines} | {y for _, y, _ in lines} >= {1.5}
    assert not attention_heatmap(np.full((4, 4), 0.25), list("abcd"), list("abcd")).layout.shapes


def test_sigmoid_bars_draw_every_label_and_the_threshold(task_models):
    loaded = task_models["multi_label"]
    result = analyze(AnalysisRequest("the film was good .", model=loaded.spec, n_steps=2), loaded)
    assert has_independent_scores(result)
    fig = sigmoid_bars_figure(result.prediction, threshold=0.5)
    assert len(fig.data[0].x) == len(result.prediction.labels)
    assert [s.x0 for s in fig.layout.shapes] == [0.5]
    many = Prediction(labels=[f"l{i}" for i in range(14)], scores=np.linspace(0, 1, 14, dtype=np.float32),
                      explained_index=3, description="P(l3)")
    assert len(sigmoid_bars_figure(many).data[0].x) == 14  # all labels, not only the top ten


def test_word_csv_has_segment_and_span_columns(qa):
    rows = list(csv.DictReader(io.StringIO(word_scores_csv(qa))))
    answer = qa.prediction.spans[0]
    for row in rows:
        text = qa.request.texts[int(row["segment"])]
        assert text[int(row["start"]):int(row["end"])] == row["word"]
    assert " ".join(r["word"] for r in rows if r["span"] == "answer") == span_text(qa, answer)
    tokens = list(csv.DictReader(io.StringIO(word_scores_csv(qa, level="subword"))))
    assert [r["segment"] for r in tokens] == ["" if s < 0 else str(s) for s in qa.tokens.segments]


def test_only_a_multi_label_heads_probabilities_are_independent_and_the_json_keeps_it(task_models, tiny_models):
    from explain import Analysis, TargetSpec

    text = "the film was good ."
    multi = task_models["multi_label"]
    sigmoids = analyze(AnalysisRequest(text, model=multi.spec, n_steps=2), multi)
    assert sigmoids.prediction.independent and abs(float(sigmoids.prediction.scores.sum()) - 1) > 1e-3
    assert Analysis.from_json(sigmoids.to_json()).prediction.independent
    logits = analyze(AnalysisRequest(text, model=multi.spec, n_steps=2, target=TargetSpec("class", logit=True)), multi)
    single = tiny_models["classification"]
    softmax = analyze(AnalysisRequest(text, model=single.spec, n_steps=2), single)
    assert not logits.prediction.independent and not softmax.prediction.independent
    assert not has_independent_scores(softmax)
