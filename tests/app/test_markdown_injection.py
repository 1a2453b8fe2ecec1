"""Strings from links and uploaded documents are shown as text, never as Markdown.

Streamlit renders Markdown (GitHub-flavoured: links, images, bare-URL autolinks) in st.info, st.caption,
st.warning, st.error, st.markdown, widget labels and help. A string a visitor controls that reached one of
those unescaped could make every visitor's browser fetch from anywhere or show a fake link. Each page runs
with a Markdown payload in every URL field (and an unknown key made of one); every Markdown-rendering element
on the page is then parsed, and no link or image may come out of it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import AlertBase, Block, HeadingBase, Markdown, Metric, Toast

from dashboard import state as url_keys
from tests.app.shown import rendered_text

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 120
IMAGE = "![t](http://127.0.0.1:9/a.png)"
LINK = "[login](https://evil.example/x)"
PAYLOAD = f"{IMAGE} {LINK} www.evil.example <img src=x>"
MARKDOWN = MarkdownIt("commonmark")
# Streamlit also links bare URLs, www. names and e-mail addresses in the rendered text (escaped or not), which
# CommonMark leaves as text: look for those in what the visitor reads.
BARE_URL = re.compile(r"https?://|www\.|\w@\w", re.IGNORECASE)
TEXT_KEYS = [url_keys.KEY_TEXT, url_keys.KEY_MODEL, url_keys.KEY_LABEL, url_keys.KEY_LABELS, url_keys.KEY_PROMPTS,
             url_keys.KEY_REFERENCE, url_keys.KEY_TEXT_B, url_keys.KEY_MODEL_B, url_keys.KEY_ANALYSIS,
             url_keys.KEY_TARGET, url_keys.KEY_BASELINE, url_keys.KEY_STEPS, url_keys.KEY_LEVEL,
             url_keys.KEY_METHOD, url_keys.KEY_METHOD_SETTINGS]


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(tmp_path / "analyses.sqlite3"))


def markdown_sources(node) -> list[str]:
    """Every string the page hands to Streamlit's Markdown renderer: bodies, metrics (label, value, delta),
    progress texts, the labels of statuses, expanders and tabs, toasts, widget labels and help texts."""
    out: list[str] = []
    if isinstance(node, Block):
        for child in node.children.values():
            out += markdown_sources(child)
        label = getattr(node.proto, "label", None) if hasattr(node, "proto") else None
        if isinstance(label, str):
            out.append(label)
        return out
    if isinstance(node, (Markdown, AlertBase, HeadingBase, Toast)):
        out.append(str(node.value))
    if isinstance(node, Metric):
        out += [node.label, str(node.value), node.proto.delta]
    if getattr(node, "type", None) == "progress":
        out.append(node.proto.text)
    for attr in ("label", "help"):  # placeholders are plain text, not Markdown
        value = getattr(node.proto, attr, None) if hasattr(node, "proto") else None
        if isinstance(value, str):
            out.append(value)
    return out


def assert_inert(at: AppTest) -> None:
    assert not at.exception, at.exception
    sources = markdown_sources(at._tree)
    assert sources, "the page rendered nothing to check"
    for source in sources:
        html = MARKDOWN.render(source)
        assert "<a " not in html and "<img" not in html, source
        assert not BARE_URL.search(rendered_text(source)), source


def run_page(page: str, params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if page != "explore":
        at.switch_page(f"views/{page}.py")
        at.session_state[f"_url_loaded_{page}"] = False
        at.run()
    return at


@pytest.mark.parametrize("page", ["explore", "compare", "saved", "methods"])
@pytest.mark.parametrize("key", TEXT_KEYS + [LINK])
def test_url_payloads_render_as_text(page, key, tiny_dirs):
    params = {key: PAYLOAD, url_keys.KEY_STEPS: "2"}
    if key not in (url_keys.KEY_MODEL, url_keys.KEY_MODEL_B):
        params.setdefault(url_keys.KEY_MODEL, tiny_dirs["encoder"])
    if key == url_keys.KEY_STEPS:
        params[key] = PAYLOAD
    assert_inert(run_page(page, params))


def test_compare_texts_mode_payload(tiny_dirs):
    params = {url_keys.KEY_MODE: "texts", url_keys.KEY_TEXT: f"good {PAYLOAD}", url_keys.KEY_TEXT_B: PAYLOAD,
              url_keys.KEY_MODEL: tiny_dirs["encoder"], url_keys.KEY_STEPS: "2"}
    assert_inert(run_page("compare", params))


def test_uploaded_document_fields_render_as_text(tiny_models, tmp_path):
    """A document whose model spec, baseline and view keys carry Markdown: on its link and on the Saved page."""
    from explain import AnalysisRequest, analyze
    from explain.document import document_from_data
    from explain.store import AnalysisStore

    result = analyze(AnalysisRequest("the film was good", model="tiny", n_steps=2), tiny_models["encoder"])
    data = json.loads(result.to_json())
    data["model"]["spec"] = PAYLOAD
    data["request"]["model"] = PAYLOAD
    data["attribution"]["baseline"] = PAYLOAD
    data["prediction"]["description"] = PAYLOAD
    document = document_from_data(data)
    store = AnalysisStore(tmp_path / "analyses.sqlite3")
    analysis_id = store.save(document.to_data(), kind=document.kind, preview=document.preview,
                             models=document.models).id
    assert_inert(run_page("explore", {url_keys.KEY_ANALYSIS: analysis_id}))
    assert_inert(run_page("saved", {}))


@pytest.mark.parametrize("target, key", [("similarity", url_keys.KEY_REFERENCE), ("zero_shot", url_keys.KEY_LABELS)])
def test_the_ablation_banner_shows_the_target_as_text(target, key, tiny_dirs):
    """The banner's metric names the target (its reference text or its labels), which a link sets."""
    params = {url_keys.KEY_TEXT: "good film", url_keys.KEY_MODEL: tiny_dirs["encoder"], url_keys.KEY_STEPS: "2",
              url_keys.KEY_ABLATE: "0:1", url_keys.KEY_TARGET: target, key: f"good, {PAYLOAD}"}
    at = run_page("explore", params)
    assert at.metric, "the ablation banner was not drawn"
    assert_inert(at)


def status_page(label: str) -> None:
    """A run that fails inside its status box, which stays on the page with its label (as a failed analysis')."""
    import streamlit as st

    from dashboard.components.results import run_with_progress
    from explain.errors import ExplainError

    def fail(progress):
        progress(label, 0.5)
        raise ExplainError("refused")

    try:
        run_with_progress(fail, f"Analysing with {label}")
    except ExplainError as exc:
        st.error(str(exc))


def test_status_labels_and_progress_texts_render_as_text():
    at = AppTest.from_function(status_page, args=(PAYLOAD,), default_timeout=TIMEOUT).run()
    assert at.status, "the status box was not drawn"
    assert_inert(at)


def corpus_page(params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/corpus.py")
    at.session_state["_url_loaded_corpus"] = False
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    return at


def test_corpus_page_shows_a_run_id_file_names_columns_and_cells_as_text(tiny_models, tiny_dirs, tmp_path):
    """A link's run id, an upload's name and column names, and a run whose texts, labels and model carry
    Markdown."""
    from explain.corpus import CorpusColumns, CorpusJob, run_job
    from explain.corpus.runs import runs_folder

    assert_inert(corpus_page({url_keys.KEY_RUN: PAYLOAD}))

    at = corpus_page({})
    at.radio(key="corpus_source").set_value("upload").run()
    header = f"{PAYLOAD},label\n".replace(",", ";", PAYLOAD.count(","))
    at.get("file_uploader")[0].set_value((f"{LINK}.csv", f"{header}good film,{IMAGE}\n".encode(), "text/csv")).run()
    assert_inert(at)

    data = tmp_path / "payload.csv"
    rows = [f"\"{PAYLOAD} good film {i}\",\"{LINK}\"" for i in range(3)] + [f"bad film {i},{IMAGE}" for i in range(3)]
    data.write_text("text,label\n" + "\n".join(rows) + "\n", encoding="utf-8")
    job = CorpusJob(source=str(data), columns=CorpusColumns(text="text", label="label"),
                    methods=("gradient_x_input", "saliency"), model=tiny_dirs["encoder"], faithfulness=True,
                    naopc=False, batch_size=4)  # NAOPC adds numbers only, and its beam over ~60 tokens is slow
    run_job(job, runs_folder() / "00000000000000aa", loaded=tiny_models["encoder"])
    at = corpus_page({url_keys.KEY_RUN: "00000000000000aa"})
    assert at.metric, "the run was not shown"
    assert_inert(at)
