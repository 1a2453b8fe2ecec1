"""The method picker and the Methods page under Streamlit's AppTest, on tiny random models (real Captum)."""

from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explain import AnalysisRequest, analyze
from explain.methods import METHODS
from explain.targets import target_kind
from explain.viz.theme import format_score
from tests.app.running import assert_clean
from tests.app.shown import plain

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 300


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(tmp_path / "analyses.sqlite3"))


def run_page(page: str, params: dict[str, str]) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if page != "explore":
        at.switch_page(f"views/{page}.py")
        at.session_state[f"_url_loaded_{page}"] = False
        for key, value in params.items():  # the first page wrote its own link: open this one's
            at.query_params[key] = value
        at.run()
    return at


def html_text(at: AppTest) -> str:
    return "\n".join(str(h.proto.body) for h in at.get("html"))


def test_the_picker_puts_the_method_in_the_link_and_explore_shows_its_scores(tiny_dirs, tiny_models):
    text = "the film was good"
    at = run_page("explore", {"m": tiny_dirs["encoder"], "t": text, "n": "4"})
    assert_clean(at)
    assert "me" not in at.query_params
    at.selectbox(key="w_method").set_value("occlusion").run()
    assert_clean(at)
    assert at.query_params["me"] == "occlusion"
    # The highlights are leave-one-word-out's scores, computed here on a second copy of the same weights.
    expected = analyze(AnalysisRequest(text, model="tiny", n_steps=4, method="occlusion"), tiny_models["encoder"])
    ig = analyze(AnalysisRequest(text, model="tiny", n_steps=4), tiny_models["encoder"])
    body = html_text(at)
    for word, score, ig_score in zip(expected.words.words, expected.word_scores, ig.word_scores):
        assert f'title="{html.escape(word)}: {html.escape(format_score(score))}"' in body
        if format_score(score) != format_score(ig_score):
            assert f'title="{html.escape(word)}: {html.escape(format_score(ig_score))}"' not in body


def test_settings_widgets_write_only_changed_settings_to_the_link(tiny_dirs):
    at = run_page("explore", {"m": tiny_dirs["encoder"], "t": "good film", "n": "4", "me": "lime",
                              "ms": "lime.n_samples=40"})
    assert_clean(at)
    assert at.number_input(key="w_ms.lime.n_samples").value == 40
    at.number_input(key="w_ms.lime.seed").set_value(7).run()
    assert at.query_params["ms"] == "lime.n_samples=40;lime.seed=7"
    at.number_input(key="w_ms.lime.n_samples").set_value(200).run()  # the default: left out of the link
    at.number_input(key="w_ms.lime.seed").set_value(0).run()
    assert_clean(at)
    assert "ms" not in at.query_params and at.query_params["me"] == "lime"


@pytest.mark.parametrize("params,key", [({"me": "magic"}, "'me'"), ({"ms": "lime.n_samples=3"}, "'ms'"),
                                        ({"me": "lime", "ms": "lime.seed=x"}, "'ms'")])
def test_a_bad_method_or_setting_in_the_link_falls_back_with_a_notice(tiny_dirs, params, key):
    at = run_page("explore", {"m": tiny_dirs["encoder"], "t": "good film", "n": "4", **params})
    assert_clean(at)
    notices = [plain(w.value) for w in at.warning]
    assert any(key in n and "ignored" in n for n in notices), notices
    assert at.selectbox(key="w_method").value == params.get("me", "integrated_gradients").replace("magic",
                                                                                                  "integrated_gradients")
    assert "ms" not in at.query_params
    if "me" in params and params["me"] == "lime":
        assert at.number_input(key="w_ms.lime.seed").value == 0


def test_the_methods_page_computes_every_supported_method(tiny_dirs, tiny_models):
    text = "the film was good but <b>long</b>"
    at = run_page("methods", {"m": tiny_dirs["classification"], "t": text, "n": "4"})
    assert_clean(at)
    assert not at.dataframe and not at.get("plotly_chart")  # nothing heavy before the button
    at.button(key="compute_all").click().run()
    assert_clean(at)
    kind = target_kind(tiny_models["classification"], None)
    titles = [m.title for m in METHODS.values() if m.supports(kind)]
    assert len(titles) == len(METHODS)
    table = at.dataframe[0].value
    assert sorted(table["method"]) == sorted(titles)
    assert list(table.columns) == ["method", "NAOPC ↑", "AOPC ↑", "comprehensiveness ↑", "sufficiency ↓",
                                   "LOO Spearman", "seconds"]
    assert (table["seconds"] >= 0).all()
    # Ranked by NAOPC, each between the text's worst (0) and best (1) order (this text's tokens make 13 words: beam).
    naopc = table["NAOPC ↑"].to_numpy()
    assert (np.diff(naopc) <= 0).all() and ((0 <= naopc) & (naopc <= 1)).all()
    sentences = [plain(m.value) for m in at.markdown if "most faithful method on this text" in plain(m.value)]
    assert len(sentences) == 1, [plain(m.value) for m in at.markdown]
    assert sentences[0].startswith(f"{table['method'].iloc[0]} is the most faithful method on this text (NAOPC ")
    assert re.search(r"its lead over .+ is (not )?larger than the random rankings' spread \(± [0-9.]+\)\.$",
                     sentences[0]), sentences[0]
    n_words = len(analyze(AnalysisRequest(text, model="tiny", n_steps=4), tiny_models["classification"]).words)
    how = f"exact over all {n_words}! orders" if n_words <= 12 else "a beam search of width 5 found"
    assert any(c.startswith("NAOPC places each method's AOPC") and how in c for c in captions_of(at)), captions_of(at)
    # Leaving one word out agrees with itself: its LOO rank correlation is 1.
    assert table.set_index("method").loc["Leave one word out", "LOO Spearman"] == pytest.approx(1.0)
    captions = [plain(c.value) for c in at.caption]
    assert any(c.startswith("Random rankings (") and "comprehensiveness" in c and "NAOPC" in c for c in captions)
    assert any("more faithful than chance" in c for c in captions)
    assert len(at.get("plotly_chart")) == 2  # NAOPC and the rank agreement
    body = html_text(at)
    for title in titles:
        assert html.escape(title) in body
    words = analyze(AnalysisRequest(text, model="tiny", n_steps=4), tiny_models["classification"]).words.words
    assert "<" in "".join(words) and "<b>" not in body
    for word in words:
        assert f"<bdi>{html.escape(word)}</bdi>" in body
    assert len(re.findall(r"<tr>", body)) == len(titles) + 1  # the words' row and one row per method

    again = run_page("methods", {"m": tiny_dirs["classification"], "t": text, "n": "4", "mf": "remove"})
    assert_clean(again)  # every method is cached: the page shows everything without the button
    assert not again.button and len(again.get("plotly_chart")) == 2
    assert any("words removed" in plain(c.value) for c in again.caption)


def test_the_compare_page_uses_the_chosen_method_on_both_sides(tiny_dirs, tiny_models):
    text = "the film was good"
    at = run_page("compare", {"m": tiny_dirs["classification"], "m2": tiny_dirs["encoder"], "t": text, "n": "4",
                              "me": "occlusion"})
    assert_clean(at)
    assert at.query_params["me"] == "occlusion"
    body = html_text(at)
    for head in ("classification", "encoder"):
        expected = analyze(AnalysisRequest(text, model="tiny", n_steps=4, method="occlusion"), tiny_models[head])
        ig = analyze(AnalysisRequest(text, model="tiny", n_steps=4), tiny_models[head])
        assert not np.allclose(expected.word_scores, ig.word_scores)
        for word, score in zip(expected.words.words, expected.word_scores):
            assert f'title="{html.escape(word)}: {html.escape(format_score(score))}"' in body


def test_the_highlights_caption_names_the_method_shown(tiny_dirs):
    at = run_page("explore", {"m": tiny_dirs["encoder"], "t": "the film was good", "me": "occlusion"})
    assert_clean(at)
    caption = next(plain(c.value) for c in at.caption if "on the baseline" in plain(c.value))
    assert caption.startswith(METHODS["occlusion"].title) and "Integrated gradients" not in caption
    assert "does not promise that they add up" in caption


def test_the_decompx_caption_says_it_split_the_cosine_not_the_probability(tiny_dirs):
    """The caption read "Score 0.049 on the text, 0 on the baseline" beside P(positive) = 0.589 (screenshot)."""
    at = run_page("explore", {"m": tiny_dirs["encoder"], "t": "the film was good", "me": "decompx"})
    assert_clean(at)
    caption = next(plain(c.value) for c in at.caption if "exactly among all tokens" in plain(c.value))
    assert caption.startswith("DecompX splits the cosine behind P(") and "baseline" not in caption


def test_the_decompx_legend_names_the_cosine_it_split(tiny_dirs):
    """The legend read "blue raises P(positive)" under DecompX, which splits the cosine behind it, not P."""
    at = run_page("explore", {"m": tiny_dirs["encoder"], "t": "the film was good", "me": "decompx"})
    assert_clean(at)
    body = " ".join(h.proto.body for h in at.get("html") if "blue raises" in h.proto.body)
    assert "blue raises the cosine behind P(" in re.sub(r"<[^>]+>", "", body)
    assert re.search(r'aria-label="[^"]*: [+-][0-9.]+, (raises|lowers) the cosine behind P\(', body)


def test_the_methods_page_shows_each_stochastic_methods_seed_to_seed_agreement(tiny_dirs, tiny_models):
    """Issue 21 B3: every method with a seed is run again with the next seed; the page shows the library's Spearman."""
    from explain.evaluation.faithfulness import spearman

    text = "the film was good but far too long"
    at = run_page("methods", {"m": tiny_dirs["classification"], "t": text, "n": "4",
                              "ms": "lime.n_samples=40;lime.seed=7"})
    at.button(key="compute_all").click().run()
    assert_clean(at)
    assert "Do two seeds agree?" in [plain(h.value) for h in at.subheader]
    table = at.dataframe[-1].value
    stochastic = [name for name, m in METHODS.items() if m.stochastic]
    assert list(table["method"]) == [METHODS[name].title for name in stochastic]
    rows = table.set_index("method")
    assert rows.loc[METHODS["lime"].title, "seeds"] == "7 and 8"
    request = AnalysisRequest(text, model="tiny", n_steps=4, method="lime")
    words = [analyze(replace_settings(request, f"lime.n_samples=40;lime.seed={seed}"),
                     tiny_models["classification"]).word_scores for seed in (7, 8)]
    assert rows.loc[METHODS["lime"].title, "Spearman"] == pytest.approx(spearman(*words), abs=1e-9)
    assert any("next seed" in plain(c.value) for c in at.caption)


def replace_settings(request: AnalysisRequest, text: str) -> AnalysisRequest:
    from dataclasses import replace

    from dashboard.state import setting_pairs

    return replace(request, method_settings=setting_pairs(text))


def captions_of(at: AppTest) -> list[str]:
    return [plain(c.value) for c in at.caption]
