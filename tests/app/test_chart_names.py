"""Chart downloads are named after what they show (AppTest on the Explore page)."""

from __future__ import annotations

import json

from tests.app.test_explore_page import assert_clean, run_app


def filenames(at) -> list[str]:
    return [json.loads(c.proto.config)["toImageButtonOptions"]["filename"] for c in at.get("plotly_chart")]


def test_every_chart_saves_under_its_own_name(tiny_dirs):
    at = run_app({"m": tiny_dirs["encoder"], "t": "good film", "n": "4", "l": "1", "h": "2", "ao": "1", "gr": "1"})
    assert_clean(at)
    names = filenames(at)
    assert len(names) == len(set(names)) == 3, names
    model = tiny_dirs["encoder"].rstrip("/").split("/")[-1].lower()
    assert f"attention-{model}-layer-1-head-2" in names
    assert any(n.startswith("rollout-") for n in names) and any(n.startswith("all-heads-") for n in names)
    at.selectbox(key="w_head").set_value(3).run()
    assert f"attention-{model}-layer-1-head-3" in filenames(at)
