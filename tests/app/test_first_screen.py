"""The explore page's first screen under AppTest: it sends what it shows (the prediction, the highlights, one head's
map and their controls); the other views and the downloads are sent once their expanders open, and a link that
names one opens it.

The browser builds every element it is sent, closed expanders' contents included, on the same main thread that
then draws the charts (issue 20, section 7: the warm page within 1.3x of a one-chart page).
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from tests.app.running import assert_clean, run_app

VIEW_FLAGS = {"w_show_aggregates": "ao", "w_show_grid": "gr", "w_depth": "dp", "w_flow": "fl"}
DOWNLOADS = "share_downloads"
# What the first screen's main area may send (the tiny encoder, the default settings): the title, the text box,
# the prediction and the highlights with their headings, the level, the score table's and the other views'
# expanders, the head's pickers and map, and the save button (28 with the tiny model's pale-map offer).
MAIN_ELEMENTS_BUDGET = 30
HELP_BUDGET = 6  # help icons in the main area: the text box, the map's controls and the save button


def sent(block) -> list:
    """Every element and expander under `block`, other containers (columns, fragments) walked through."""
    out = []
    for child in getattr(block, "children", {}).values():
        if hasattr(child, "children"):
            out += ([child] if child.type == "expander" else []) + sent(child)
        else:
            out.append(child)
    return out


def helps(elements: list) -> list[str]:
    return [str(e.proto.help) for e in elements if getattr(getattr(e, "proto", None), "help", "")]


def page(tiny_dirs, **extra: str) -> AppTest:
    at = run_app({"m": tiny_dirs["encoder"], "t": "good film", "n": "4", **extra})
    assert_clean(at)
    return at


def test_the_downloads_are_sent_only_once_their_expander_is_open(tiny_dirs):
    at = page(tiny_dirs)
    assert at.button(key="share_save").label == "Save and share"  # the one export action on the first screen
    assert not at.get("download_button")
    assert not any(g.key == "share_image_format" for g in at.button_group)
    at.session_state[DOWNLOADS] = True  # what a click on the expander sets
    at.run()
    assert_clean(at)
    assert [b.proto.label for b in at.get("download_button")] == ["Download JSON", "Download HTML", "Download CSV"]
    assert any(g.key == "share_image_format" for g in at.button_group)


def test_the_other_views_are_expanders_sent_closed(tiny_dirs):
    at = page(tiny_dirs)
    assert not {t.key for t in at.toggle} & set(VIEW_FLAGS)  # no switch, help icon or caption apiece
    assert all(at.session_state[key] is False for key in VIEW_FLAGS)
    labels = [e.label for e in at.expander]
    for start in ("Aggregate views", "All heads", "Where the score comes from", "Information flow (ALTI)"):
        assert any(label.startswith(start) for label in labels), labels
    assert len(at.get("plotly_chart")) == 1  # the head's map


def test_the_first_screen_stays_within_its_element_budget(tiny_dirs):
    at = page(tiny_dirs)
    main = sent(at.main)
    assert len(main) <= MAIN_ELEMENTS_BUDGET, [e.type for e in main]
    assert len(helps(main)) <= HELP_BUDGET, helps(main)
    assert not [h for h in at.get("heading") if h.proto.anchor != "" or not h.proto.hide_anchor]


def test_a_link_naming_a_view_opens_its_expander_and_opening_one_writes_the_link(tiny_dirs):
    at = page(tiny_dirs, gr="1", dp="1")
    assert at.session_state["w_show_grid"] is True and at.session_state["w_depth"] is True
    assert len(at.get("plotly_chart")) == 4  # the head, the grid, the two depth charts
    at.session_state["w_show_aggregates"] = True
    at.run()
    assert_clean(at)
    assert at.query_params["ao"] == "1" and at.query_params["gr"] == "1" and at.query_params["dp"] == "1"
    at.session_state["w_show_grid"] = False
    at.run()
    assert_clean(at)
    assert "gr" not in at.query_params and len(at.get("plotly_chart")) == 4  # the head, rollout, depth x 2


# What the sidebar may draw outside its popovers (the tiny encoder: zero-shot labels): the six page links and their
# divider, the "Model" and "Attribution" headings, and the model, target and method pickers. The target's settings
# (labels, prompts, the label to explain), the integration settings and the heads to knock out wait in popovers,
# whose widgets the browser draws only once opened.
SIDEBAR_DRAWN_BUDGET = 12


def drawn(block) -> list:
    """The elements under `block` the browser draws before any click: popovers' contents left out."""
    out = []
    for child in getattr(block, "children", {}).values():
        if hasattr(child, "children"):
            out += [] if child.type == "popover" else drawn(child)
        else:
            out.append(child)
    return out


def test_the_sidebar_draws_the_pickers_and_tucks_their_settings_into_popovers(tiny_dirs):
    at = page(tiny_dirs)
    shown = drawn(at.sidebar)
    assert len(shown) <= SIDEBAR_DRAWN_BUDGET, [e.type for e in shown]
    assert {"w_model", "w_target", "w_method"} <= {getattr(e, "key", None) for e in shown}
    tucked = [e.key for e in sent(at.sidebar) if e.type == "text_input"]
    assert tucked == ["w_labels", "w_prompts", "w_label"]  # sent, so their values and the link are kept
    at.text_input(key="w_labels").set_value("good, bad").run()  # what typing into the opened popover sets
    assert_clean(at)
    assert at.query_params["ls"] == "good, bad"
