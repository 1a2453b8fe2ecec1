"""Compare and Saved pages under AppTest, and the save -> link -> reopen round trip."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from explain.store import AnalysisStore
from tests.app.running import assert_clean
from tests.app.shown import plain

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
APP = str(DASHBOARD / "app.py")
TIMEOUT = 120


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch):
    path = tmp_path / "store" / "analyses.sqlite3"
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(path))
    return path


def open_page(page: str, params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if page != "explore":
        at.switch_page(f"views/{page}.py").run()
    return at


def html_text(at: AppTest) -> str:
    return "\n".join(str(h.proto.body) for h in at.get("html"))


def set_compare(at: AppTest, params: dict[str, str]) -> AppTest:
    for key, value in params.items():
        at.query_params[key] = value
    return at


def test_compare_two_models_with_different_tokenizers(tiny_dirs):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/compare.py")
    at.query_params.update({"m": tiny_dirs["encoder"], "m2": tiny_dirs["encoder_alt"],
                            "t": "the movie was terrible but the food was great", "n": "8"})
    at.session_state["_url_loaded_compare"] = False
    at.run()
    assert_clean(at)
    labels = [m.label for m in at.metric]
    assert labels == ["Spearman", "Kendall", "Top-5 overlap", "Sign agreement"]
    assert "movie" in html_text(at)
    # layer pickers follow each model: 2 layers vs 3 layers
    assert at.selectbox(key="w_layer").options == ["0", "1"]
    assert at.selectbox(key="w_layer_b").options == ["0", "1", "2"]
    # two heads, two rollouts, the layer distance; the predictions are Explore's HTML bars
    assert len(at.get("plotly_chart")) == 5
    assert sum("bars from" in str(h.proto.body) and "</table>" in str(h.proto.body) for h in at.get("html")) == 2


def test_compare_one_model_on_two_texts_counts_the_changed_words(tiny_dirs):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/compare.py")
    at.query_params.update({"m": tiny_dirs["classification"], "cm": "texts", "t": "the film was good",
                            "t2": "the movie was not good", "n": "8"})
    at.session_state["_url_loaded_compare"] = False
    at.run()
    assert_clean(at)
    captions = " ".join(plain(c.value) for c in at.caption)
    assert ("The two texts differ in 2 places: 1 word of the first text and 2 words of the second are changed. "
            "The numbers above use the 3 words both texts share") in captions
    table = at.dataframe[0].value
    assert table["First text"].tolist() == ["film", "—"]
    assert table["Second text"].tolist() == ["movie", "not"]
    assert table["Change"].tolist() == ["replaced", "inserted"]
    readings = " ".join(m.value for m in at.markdown)
    assert "texts" in readings and "both models" not in readings


def test_compare_offers_the_target_controls_and_says_when_targets_differ(tiny_dirs):
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    at.switch_page("views/compare.py")
    at.query_params.update({"m": tiny_dirs["classification"], "m2": tiny_dirs["encoder"], "t": "the film was good",
                            "n": "4"})
    at.session_state["_url_loaded_compare"] = False
    at.run()
    assert_clean(at)
    assert at.selectbox(key="w_target").options == ["model default (class probability)", "class probability", "zero-shot labels",
                                                    "similarity to a reference text"]
    differ = [plain(w.value) for w in at.warning if "The targets differ" in w.value]
    assert len(differ) == 1 and "classification head" in differ[0] and "zero-shot labels" in differ[0]
    at.selectbox(key="w_target").set_value("zero_shot").run()
    at.text_input(key="w_labels").set_value("good, bad, dull").run()
    assert_clean(at)
    assert not any("The targets differ" in plain(w.value) for w in at.warning)
    assert "under zero-shot labels (good, bad, dull)" in html_text(at)


def test_markdown_escape_keeps_links_as_text():
    from dashboard.components.text import markdown_escape

    assert markdown_escape("[x](http://e.x/a.png)") == "\\[x\\]\\(http\\:\u2060\\/\\/e\\.x\\/a\\.png\\)"
    assert markdown_escape("![i](u) <b>*a*_b_ `c` #1 $x$ a|b\nnext") == (
        "\\!\\[i\\]\\(u\\) \\<b\\>\\*a\\*\\_b\\_ \\`c\\` \\#1 \\$x\\$ a\\|b next"
    )
    assert markdown_escape("P(pos) + 1.5 - 2 {k} ~s~ \\") == "P\\(pos\\) \\+ 1\\.5 \\- 2 \\{k\\} \\~s\\~ \\\\"
    assert plain(markdown_escape("a://b.c @d :red[x] www.e")).replace("\u2060", "") == "a://b.c @d :red[x] www.e"


@pytest.mark.integration
def test_sanity_preset_trained_vs_random_on_two_words_is_inconclusive():
    at = open_page("compare", {"t": "Great film", "n": "8", "m2": "minilm"})
    preset = next(b for b in at.button if b.label.startswith("Sanity check"))
    preset.click().run()
    assert not at.exception
    assert at.session_state["w_model_b"] == "minilm-random"
    verdicts = [plain(s.value) for s in at.success] + [plain(e.value) for e in at.error] + [plain(w.value) for w in at.warning]
    sanity = [v for v in verdicts if v.startswith("**Sanity check:**")]
    assert len(sanity) == 1 and sanity[0].startswith("**Sanity check:** Inconclusive: too few words to tell")
    assert not at.success and not at.error, [plain(s.value) for s in at.success] + [plain(e.value) for e in at.error]
    assert any(m.value.startswith("Too few words to tell") for m in at.markdown)


def test_reopened_zero_shot_analysis_takes_a_new_label(tiny_dirs):
    at = open_page("explore", {"m": tiny_dirs["encoder"], "t": "the food was great", "n": "4", "tg": "zero_shot"})
    assert_clean(at)
    at.button(key="share_save").click().run()
    analysis_id = at.query_params["analysis"]
    again = open_page("explore", {"analysis": analysis_id})
    assert_clean(again)
    assert again.text_input(key="w_prompts").value == ""  # the default prompts were never typed
    again.text_input(key="w_labels").set_value("positive, negative, neutral").run()
    assert_clean(again)
    assert "under zero-shot labels (positive, negative, neutral)" in html_text(again)


def test_save_reopen_without_the_model_and_delete(tiny_dirs, tmp_path, store_path):
    folder = Path(shutil.copytree(tiny_dirs["encoder"], tmp_path / "model"))
    at = open_page("explore", {"m": str(folder), "t": "the food was great", "n": "6", "l": "1", "h": "2"})
    assert_clean(at)
    before = html_text(at)
    at.button(key="share_save").click().run()
    assert_clean(at)
    analysis_id = at.query_params["analysis"]
    assert len(analysis_id) == 12
    assert any(analysis_id in plain(c.value) for c in at.get("code"))

    shutil.rmtree(folder)  # the model is gone; the link must still reopen the analysis
    again = open_page("explore", {"analysis": analysis_id})
    assert not again.exception
    assert not again.error, [plain(e.value) for e in again.error]
    assert any("saved analysis" in plain(i.value) for i in again.info)
    assert html_text(again) == before
    assert again.selectbox(key="w_layer").value == 1 and again.selectbox(key="w_head").value == 2

    store = AnalysisStore(store_path)
    assert [s.id for s in store.list()] == [analysis_id]
    saved_page = at.switch_page("views/saved.py").run()  # the saver's own session may delete
    assert not saved_page.exception
    assert any("the food was great" in plain(t.value) for t in saved_page.text)
    saved_page.button(key=f"del_{analysis_id}").click().run()
    assert store.list() == []


def test_an_analysis_deleted_by_another_server_process_is_gone_here_too(tiny_dirs, store_path):
    """Two server processes share one store: this process has the document cached when the other deletes it."""
    at = open_page("explore", {"m": tiny_dirs["encoder"], "t": "the food was great", "n": "4"})
    at.button(key="share_save").click().run()
    analysis_id = at.query_params["analysis"]
    assert_clean(open_page("explore", {"analysis": analysis_id}))  # opened once here: cached in this process
    assert AnalysisStore(store_path).remove(analysis_id)  # the other process (its admin or its saver) deletes it
    again = open_page("explore", {"analysis": analysis_id, "m": tiny_dirs["encoder"], "t": "good", "n": "4"})
    assert not again.exception
    assert "No saved analysis has the id" in " ".join(plain(w.value) for w in again.warning)
    assert not any("saved analysis" in plain(i.value) for i in again.info)


def test_unknown_analysis_id_is_a_clear_message(tiny_dirs):
    at = open_page("explore", {"analysis": "zzzzzzzzzzzz", "m": tiny_dirs["encoder"], "t": "good", "n": "4"})
    assert not at.exception
    warnings = " ".join(plain(w.value) for w in at.warning)
    assert "No saved analysis has the id" in warnings
    assert len(at.get("plotly_chart")) == 1  # falls back to a live analysis (one head; the prediction is HTML)


def test_saved_page_when_empty():
    at = open_page("saved", {})
    assert not at.exception
    assert any("Nothing saved yet" in plain(i.value) for i in at.info)
