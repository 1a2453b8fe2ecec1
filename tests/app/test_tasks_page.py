"""The explore and compare pages for every task a BERT reader meets: named entities, question answering,
sentence pairs and next-sentence prediction, multi-label heads; tiny random task models loaded by folder."""

from __future__ import annotations

import html
import re
from pathlib import Path

from streamlit.testing.v1 import AppTest

from explain.exports import word_scores_csv
from tests.app.running import assert_clean
from tests.app.shown import plain

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 180
NER_TEXT = "the film was good but too long ."


def run_app(params: dict[str, str], page: str = "") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    if page:
        at.switch_page(f"views/{page}.py")
    return at.run()


def html_text(at: AppTest) -> str:
    return "\n".join(html.unescape(str(h.proto.body)) for h in at.get("html"))


def row_titles(body: str) -> list[str]:
    """The headings of the highlight rows (each row's title div)."""
    return re.findall(r'<div style="font-weight:600;margin-bottom:4px;font-size:14px;">([^<]*)</div>', body)


def test_ner_shows_the_entity_table_and_one_row_per_entity(task_dirs, task_models):
    from explain import AnalysisRequest, analyze

    expected = analyze(AnalysisRequest(NER_TEXT, model=task_models["token_classification"].spec, n_steps=4),
                       task_models["token_classification"]).prediction.spans
    assert len(expected) > 1  # the tiny model predicts several entities, so "All entities" has rows to show
    at = run_app({"m": task_dirs["token_classification"], "t": NER_TEXT, "n": "4"})
    assert_clean(at)
    table = at.dataframe[0].value
    assert list(table["Type"]) == [span.label for span in expected]
    assert list(table["Tokens"])[0].startswith(str(expected[0].first_token))
    body = html_text(at)
    assert "Predicted entities" in body and "<mark" in body
    titles = [t for t in row_titles(body) if "at token" in t]
    assert len(titles) == len(expected)
    assert [int(re.search(r"at token (\d+)", t).group(1)) for t in titles] == [s.first_token for s in expected]
    assert at.selectbox(key="w_target_token").value == -1


def test_ner_picking_one_entity_shows_one_row_and_goes_into_the_link(task_dirs):
    at = run_app({"m": task_dirs["token_classification"], "t": NER_TEXT, "n": "4"})
    picker = at.selectbox(key="w_target_token")
    entity = picker.options[1]
    assert entity.startswith("entity ")
    picker.set_value(int(re.search(r"\d+", str(at.dataframe[0].value["Tokens"].iloc[0])).group(0))).run()
    assert_clean(at)
    token = at.query_params["tt"]
    assert token != "-1"
    assert sum("at token" in t for t in row_titles(html_text(at))) == 1
    reopened = run_app({"m": task_dirs["token_classification"], "t": NER_TEXT, "n": "4", "tt": token})
    assert_clean(reopened)
    assert str(reopened.selectbox(key="w_target_token").value) == token


def test_logit_checkbox_changes_the_description(task_dirs):
    at = run_app({"m": task_dirs["token_classification"], "t": NER_TEXT, "n": "4", "tt": "2"})
    assert_clean(at)
    assert "P(" in html_text(at)
    at.checkbox(key="w_logit").check().run()
    assert_clean(at)
    assert at.query_params["lg"] == "1"
    titles = row_titles(html_text(at))
    assert any("logit(" in t for t in titles), titles


def test_qa_shows_the_answer_and_question_and_context_rows(task_dirs, task_models):
    from explain import AnalysisRequest, analyze

    question, context = "what was the film ?", "the film was good but too long ."
    loaded = task_models["question_answering"]
    answer = analyze(AnalysisRequest(context, question=question, model=loaded.spec, n_steps=4),
                     loaded).prediction.spans[0]
    at = run_app({"m": task_dirs["question_answering"], "t": context, "q": question, "n": "4"})
    assert_clean(at)
    assert at.text_input(key="w_question").value == question
    assert at.text_area(key="w_text").label == "Context"
    body = html_text(at)
    titles = row_titles(body)
    assert "Question" in titles and "Context" in titles
    assert any("Answer «" in plain(c.value) for c in at.caption)
    assert f"{answer.score:.4g}" in " ".join(plain(c.value) for c in at.caption)
    assert at.radio(key="w_part").value == ""
    at.radio(key="w_part").set_value("span").run()
    assert_clean(at)
    assert at.query_params["pt"] == "span"
    assert "answer span score" in html_text(at)


def test_qa_without_a_question_asks_for_one(task_dirs):
    at = run_app({"m": task_dirs["question_answering"], "t": "the film was good .", "n": "4"})
    assert_clean(at)
    assert any("Type a question" in plain(i.value) for i in at.info)


def test_next_sentence_reads_the_pair_and_shows_two_rows(task_dirs):
    at = run_app({"m": task_dirs["next_sentence"], "t": "the film was good .", "p2": "it was too long .",
                  "n": "4"})
    assert_clean(at)
    assert at.text_area(key="w_pair").label == "Second text"
    titles = row_titles(html_text(at))
    assert "First text" in titles and "Second text" in titles
    assert "Attribution to P(" in html_text(at) and "next-sentence head" in html_text(at)
    (figure,) = [c.proto.spec for c in at.get("plotly_chart") if "head_map" in c.proto.id]
    assert '"dash":"dash"' in figure.replace(" ", "")  # the single-head map marks where the second text starts


def test_pretraining_next_sentence_without_a_pair_asks_for_it(task_dirs):
    at = run_app({"m": task_dirs["pretraining"], "t": "the film was good .", "tg": "next_sentence", "n": "4"})
    assert_clean(at)
    assert any("Type the second text" in plain(i.value) for i in at.info)


def test_multi_label_shows_every_sigmoid_with_the_threshold(task_dirs):
    at = run_app({"m": task_dirs["multi_label"], "t": "the film was good .", "n": "4"})
    assert_clean(at)
    spec = at.get("plotly_chart")[0].proto.spec
    assert "threshold 0.5" in spec and "sigmoid of each label" in spec
    assert any("Each label has its own sigmoid" in plain(c.value) for c in at.caption)
    assert at.text_area(key="w_pair").label == "Second text (optional)"


def test_bad_token_and_part_in_the_link_give_one_sentence_and_keep_the_rest(task_dirs):
    at = run_app({"m": task_dirs["question_answering"], "t": "the film was good .", "q": "what ?", "pt": "middle",
                  "n": "4"})
    assert_clean(at)
    warnings = [plain(w.value) for w in at.warning]
    assert any("'pt'" in w for w in warnings)
    assert at.text_input(key="w_question").value == "what ?"
    far = run_app({"m": task_dirs["token_classification"], "t": NER_TEXT, "tt": "60", "n": "4"})
    errors = [plain(e.value) for e in far.error]
    assert errors == ["There is no token 60; the text has tokens 0 to 9."]
    assert far.text_area(key="w_text").value == NER_TEXT and far.query_params["tt"] == "60"
    far.button(key="reset_target_token").click().run()
    assert_clean(far)
    assert "tt" not in far.query_params and far.dataframe


def test_compare_two_models_on_one_pair(task_dirs):
    at = run_app({"m": task_dirs["next_sentence"], "m2": task_dirs["pretraining"], "t": "the film was good .",
                  "p2": "it was too long .", "tg": "next_sentence", "n": "4"}, page="compare")
    assert_clean(at)
    assert at.text_area(key="w_pair").value == "it was too long ."
    titles = row_titles(html_text(at))
    assert titles.count("Second text") == 2


def test_word_csv_names_each_words_text(task_models):
    from explain import AnalysisRequest, analyze

    loaded = task_models["next_sentence"]
    result = analyze(AnalysisRequest("the film .", pair="it was long .", model=loaded.spec, n_steps=4), loaded)
    lines = word_scores_csv(result).splitlines()
    assert lines[0].split(",")[0:2] == ["word", "segment"]
    assert [line.split(",")[1] for line in lines[1:]] == ["0"] * 3 + ["1"] * 4


def test_saved_question_answering_reopens_with_its_question_and_context(task_dirs, tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(tmp_path / "analyses.sqlite3"))
    params = {"m": task_dirs["question_answering"], "t": "the film was good .", "q": "was the film good ?",
              "pt": "end", "n": "4"}
    at = run_app(params)
    assert_clean(at)
    before = html_text(at)
    at.button(key="share_save").click().run()
    assert_clean(at)
    again = run_app({"analysis": at.query_params["analysis"]})
    assert_clean(again)
    assert again.text_input(key="w_question").value == "was the film good ?"
    assert again.text_area(key="w_text").label == "Context" and again.radio(key="w_part").value == "end"
    assert html_text(again) == before


def test_methods_page_reads_the_question(task_dirs):
    at = run_app({"m": task_dirs["question_answering"], "t": "the film was good .", "q": "was the film good ?",
                  "n": "4"}, page="methods")
    assert_clean(at)
    assert at.text_input(key="w_question").value == "was the film good ?"
    assert any("start logit" in plain(m.value) for m in at.markdown)


def test_classification_reads_an_optional_second_text_as_a_pair(tiny_dirs):
    at = run_app({"m": tiny_dirs["classification"], "t": "the film was good .", "n": "4"})
    assert_clean(at)
    assert "First text" not in row_titles(html_text(at))
    at.text_area(key="w_pair").input("it was too long .").run()
    assert_clean(at)
    assert at.query_params["p2"] == "it was too long ."
    titles = row_titles(html_text(at))
    assert "First text" in titles and "Second text" in titles
