"""The Saved page tells rows of one sentence apart, and a wrong delete token keeps its panel open (AppTest)."""

from __future__ import annotations

from explain.store import AnalysisStore
from tests.app.shown import plain
from tests.app.test_compare_and_saved import assert_clean, open_page, store_path  # noqa: F401 (autouse fixture)

TEXT = "the food was great"


def save(params: dict[str, str]) -> str:
    at = open_page("explore", params)
    assert_clean(at)
    at.button(key="share_save").click().run()
    assert_clean(at)
    return at.query_params["analysis"]


def captions(at) -> list[str]:
    return [plain(c.value) for c in at.caption]


def test_rows_of_one_sentence_show_the_method_the_heads_and_the_target(tiny_dirs):
    base = {"m": tiny_dirs["classification"], "t": TEXT, "n": "4"}
    ids = [save(base), save({**base, "ab": "0:1"}), save({**base, "me": "occlusion"})]
    assert len(set(ids)) == 3
    at = open_page("saved", {})
    assert not at.exception
    rows = {i: next(c for c in captions(at) if f"id {i}" in c) for i in ids}
    assert len(set(rows.values())) == 3
    assert "Integrated gradients" in rows[ids[0]] and "all heads" in rows[ids[0]]
    assert "without heads 0:1" in rows[ids[1]]
    assert "Leave one word out" in rows[ids[2]]
    assert all("explains P(" in row for row in rows.values())


def test_a_wrong_delete_token_keeps_the_panel_open_with_the_message(tiny_dirs, store_path):  # noqa: F811
    analysis_id = save({"m": tiny_dirs["encoder"], "t": TEXT, "n": "4"})
    at = open_page("saved", {})
    (panel,) = [e for e in at.expander if "another browser session" in e.label]
    assert not panel.proto.expanded
    at.text_input(key="delete_id").set_value(analysis_id)
    at.text_input(key="delete_token_input").set_value("not-the-token").run()
    at.button(key="delete_with_token").click().run()
    assert not at.exception
    (panel,) = [e for e in at.expander if "another browser session" in e.label]
    assert panel.proto.expanded
    assert any("delete token does not belong" in plain(e.value) for e in panel.error)
    assert [s.id for s in AnalysisStore(store_path).list()] == [analysis_id]
