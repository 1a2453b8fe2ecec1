"""The sidebar shows the chosen method's own settings; the delta warning offers an action that works; fast mode is
offered only where bfloat16 is faster."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from explain.precision import server_bf16_support
from tests.app.running import run_app
from tests.app.shown import plain


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(tmp_path / "analyses.sqlite3"))


def integration_keys(at: AppTest) -> set[str]:
    keys = {w.key for w in [*at.selectbox, *at.slider, *at.number_input, *at.toggle]}
    return keys & {"w_integration", "w_steps", "w_delta_tolerance", "w_fast"}


def test_only_integrated_gradients_shows_the_integration_settings(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "the food was bad", "n": "4", "ig": "adaptive_simpson"})
    assert not at.exception
    assert {"w_integration", "w_steps", "w_delta_tolerance"} <= integration_keys(at)
    at.selectbox(key="w_method").set_value("lime").run()
    assert not at.exception and not at.error
    assert integration_keys(at) == set()
    assert at.number_input(key="w_ms.lime.n_samples").value > 1  # LIME's own settings instead
    assert at.query_params["n"] == "4"  # hidden, not lost
    at.selectbox(key="w_method").set_value("integrated_gradients").run()
    assert at.slider(key="w_steps").value == 4


def test_the_delta_warning_offers_an_action_that_shrinks_the_delta(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good", "n": "1", "ig": "gauss_legendre"})
    assert not at.exception
    warning = next(plain(w.value) for w in at.warning if "convergence delta is" in plain(w.value))
    assert "more integration steps would help" in warning
    button = next(b for b in at.button if b.key and b.key.startswith("remedy-"))
    assert button.label == "Integrate with fixed steps: 4"
    button.click().run()
    assert not at.exception
    assert at.slider(key="w_steps").value == 4 and at.query_params["n"] == "4"
    assert not [w for w in at.warning if "convergence delta is" in plain(w.value)]


def test_fast_mode_is_offered_only_where_bfloat16_is_faster(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good", "n": "4"})
    assert not at.exception
    support = server_bf16_support()
    toggles = [t for t in at.toggle if t.key == "w_fast"]
    captions = [plain(c.value) for c in at.caption]
    if support.fast:
        assert toggles
    else:
        assert not toggles and support.reason in captions
        at = run_app({"m": tiny_dirs["encoder"], "t": "good", "n": "4", "fa": "1"})  # a link made elsewhere
        assert at.toggle(key="w_fast").value is True  # shown, so that it can be turned off
        at.toggle(key="w_fast").set_value(False).run()
        assert "fa" not in at.query_params and not [t for t in at.toggle if t.key == "w_fast"]


def test_the_integration_help_is_plain_words(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good", "n": "4"})
    text = at.selectbox(key="w_integration").help
    for jargon in ("docs/", ".md", "Simpson", "Gauss", "Clenshaw", "quadrature"):
        assert jargon not in text, jargon
