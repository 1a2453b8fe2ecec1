"""Every task in a real headless Chromium: a user types the task's inputs, runs, and sees what the task shows.

Tiny random task models (testkit/tiny_models.py) saved to a temporary folder stand in for real NER and QA weights,
which cannot be downloaded here.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest
from playwright.sync_api import expect

from testkit.server import wait_for_app, wait_for_rerun

pytestmark = pytest.mark.browser

EXCEPTION = "[data-testid='stException']"
ERROR = "[data-testid='stAlertContentError']"
WARNING = "[data-testid='stAlertContentWarning']"
INFO = "[data-testid='stAlertContentInfo']"
HTML = "[data-testid='stHtml']"
TIMEOUT = 60_000


def url(base: str, **params: str) -> str:
    return f"{base}/?{urlencode(params)}"


def assert_clean(watched) -> None:
    expect(watched.page.locator(EXCEPTION)).to_have_count(0)
    expect(watched.page.locator(ERROR)).to_have_count(0)
    assert not watched.page_errors, watched.page_errors


def type_text(page, label: str, text: str, *, area: bool = True) -> None:
    """Type into a text box as a user does and apply it (Ctrl+Enter in a text area, Enter in a text input)."""
    box = page.get_by_label(label, exact=True)
    box.fill(text)
    box.press("Control+Enter" if area else "Enter")
    wait_for_rerun(page)


def shown_html(page) -> str:
    return "\n".join(page.locator(HTML).all_inner_texts())


def test_ner_typed_text_shows_entities_table_and_a_row_per_entity(server, watched, task_dirs):
    page = watched.page
    page.goto(url(server, m=task_dirs["token_classification"], n="4"))
    wait_for_app(page, charts=2)
    type_text(page, "Text", "the film was good but too long .")
    assert_clean(watched)
    expect(page.locator(f"{HTML} mark").first).to_be_visible(timeout=TIMEOUT)
    assert "Predicted entities" in shown_html(page)
    table = page.locator("[data-testid='stDataFrame']").first
    expect(table).to_be_visible(timeout=TIMEOUT)
    rows = [t for t in page.locator(f"{HTML} div").all_inner_texts() if re.search(r"» *: *P\(", t)]
    assert len(set(rows)) >= 2, rows  # "All entities": one highlight row per predicted entity
    expect(page.get_by_role("combobox", name="Token to explain", exact=True)).to_have_value("All entities")


def test_qa_typed_question_and_context_show_the_answer(server, watched, task_dirs):
    page = watched.page
    page.goto(url(server, m=task_dirs["question_answering"], n="4"))
    wait_for_app(page, charts=0)
    expect(page.locator(INFO).filter(has_text="Type a question")).to_be_visible(timeout=TIMEOUT)
    type_text(page, "Context", "the film was good but too long .")
    type_text(page, "Question", "what was the film ?", area=False)
    wait_for_app(page, charts=2)
    assert_clean(watched)
    expect(page.locator(f"{HTML} mark").filter(has_text="answer").first).to_be_visible(timeout=TIMEOUT)
    shown = shown_html(page)
    assert "Question" in shown and "Context" in shown
    expect(page.get_by_text(re.compile(r"^Answer «"))).to_be_visible(timeout=TIMEOUT)
    expect(page).to_have_url(re.compile(r"[?&]q=what"), timeout=TIMEOUT)


def test_next_sentence_typed_pair_shows_two_rows_and_the_segment_line(server, watched, task_dirs):
    page = watched.page
    page.goto(url(server, m=task_dirs["next_sentence"], n="4", t="the film was good ."))
    wait_for_app(page, charts=0)
    type_text(page, "Second text", "it was too long .")
    wait_for_app(page, charts=3)
    assert_clean(watched)
    shown = shown_html(page)
    assert "First text" in shown and "Second text" in shown and "next-sentence head" in shown
    dashes = page.locator(".st-key-head_map .js-plotly-plot").evaluate(
        "gd => gd._fullLayout.shapes.filter(s => s.line.dash === 'dash').length")
    assert dashes == 2


def test_multi_label_shows_every_sigmoid_and_the_threshold(server, watched, task_dirs):
    page = watched.page
    page.goto(url(server, m=task_dirs["multi_label"], n="4"))
    wait_for_app(page, charts=2)
    type_text(page, "Text", "the food was terrible and slow .")
    assert_clean(watched)
    chart = page.locator(".st-key-prediction .js-plotly-plot")
    assert chart.evaluate("gd => gd.calcdata[0].length") == 3
    expect(chart.locator(".annotation-text")).to_have_text("threshold 0.5", timeout=TIMEOUT)
    expect(page.get_by_text(re.compile("Each label has its own sigmoid"))).to_be_visible(timeout=TIMEOUT)


def test_hand_edited_bad_values_give_one_sentence_and_keep_the_rest(server, watched, task_dirs):
    page = watched.page
    page.goto(url(server, m=task_dirs["token_classification"], n="4", t="the film was good .", tt="60"))
    wait_for_app(page, charts=0)
    expect(page.locator(ERROR)).to_have_text("There is no token 60; the text has tokens 0 to 6.", timeout=TIMEOUT)
    expect(page.get_by_label("Text", exact=True)).to_have_value("the film was good .")
    page.get_by_role("button", name="Explain the model's own prediction instead").click()
    wait_for_app(page, charts=2)
    assert_clean(watched)
    page.goto(url(server, m=task_dirs["question_answering"], n="4", t="the film was good .", q="what ?",
                  pt="middle"))
    wait_for_app(page, charts=2)
    expect(page.locator(WARNING).filter(has_text="'pt'")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_label("Question", exact=True)).to_have_value("what ?")
    assert_clean(watched)
