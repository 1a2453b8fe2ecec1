"""One removed head, one number: an analysis with heads removed and the head-importance map read the target's
label prompts (or reference) from the full model, so `--ablate L:H` and the ablation map agree."""

from __future__ import annotations

import pytest

from explain import AnalysisRequest, TargetSpec, analyze
from explain.heads import head_importance, prepare_inputs

TEXT = "the film was good but too long"


@pytest.mark.parametrize("target", [
    TargetSpec(kind="zero_shot", label="positive"),
    TargetSpec(kind="similarity", reference="a slow and dull film"),
])
def test_an_ablated_analysis_moves_the_score_by_the_ablation_maps_effect(tiny_models, target):
    loaded = tiny_models["encoder"]
    full = analyze(AnalysisRequest(TEXT, model=loaded.spec, target=target, n_steps=2), loaded)
    importance = head_importance(loaded, prepare_inputs(loaded, TEXT, target, full.request.max_tokens))
    for layer, head in ((0, 1), (1, 3)):
        ablated = analyze(AnalysisRequest(TEXT, model=loaded.spec, target=target, n_steps=2,
                                          ablate=f"{layer}:{head}"), loaded)
        moved = ablated.attribution.score_input - full.attribution.score_input
        assert moved == pytest.approx(float(importance.ablation_effect[layer, head]), abs=2e-6)
        assert abs(moved) > 1e-6  # the head matters on this text, so agreeing is not trivial
