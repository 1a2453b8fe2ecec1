"""Ablation recorded in the analysis itself: the request's heads, every pass gated, JSON and old files."""

from __future__ import annotations

import json
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from explain import AnalysisRequest, InputError, TargetSpec, analyze, load_model
from explain.cli import main
from explain.heads import HeadSet, adapter_of, gated, head_means
from explain.inputs import tokenize
from explain.pipeline import analyze_ablated, validate, with_methods
from explain.records import Analysis, to_jsonable
from tests.unit.test_heads import build_family

TEXT = "the film was good but too long ."
POSITIVE = TargetSpec("class", label="positive")
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schema_v1"


@pytest.fixture(scope="module")
def wide_bert(tmp_path_factory):
    """A tiny BERT classifier with weights spread wide enough that removing heads moves its scores visibly."""
    return load_model(str(build_family(tmp_path_factory.mktemp("wide") / "bert", "bert")), device="cpu")


def no_gates(loaded) -> bool:
    return all(not site.output._forward_pre_hooks for site in adapter_of(loaded).sites)


@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_an_ablating_request_equals_the_analysis_run_inside_the_gates(wide_bert, mode):
    """Prediction, attention and attribution of `ablate` = those of a plain analysis under `gated` by hand."""
    loaded = wide_bert
    request = AnalysisRequest(TEXT, model=loaded.spec, target=POSITIVE, n_steps=8)
    heads = HeadSet.parse("1:*,0:2", 2, 4)
    ablated = analyze(replace(request, ablate=" 1:* , 0:2", ablate_mode=mode), loaded)
    enc, _ = tokenize(loaded, TEXT, request.max_tokens)
    means = head_means(loaded, enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids")) \
        if mode == "mean" else None
    with gated(loaded, heads, mode, means):
        by_hand = analyze(request, loaded)
    full = analyze(request, loaded)
    assert ablated.request.ablate == "0:2,1:*" and ablated.request.ablate_mode == mode  # canonical text
    np.testing.assert_array_equal(ablated.prediction.scores, by_hand.prediction.scores)
    np.testing.assert_array_equal(ablated.attribution.scores, by_hand.attribution.scores)
    np.testing.assert_array_equal(ablated.attention.weights, by_hand.attention.weights)
    assert np.abs(ablated.prediction.scores - full.prediction.scores).max() > 1e-3
    assert no_gates(loaded)
    again = analyze_ablated(request, loaded, heads, mode)
    np.testing.assert_array_equal(again.attribution.scores, ablated.attribution.scores)
    assert again.request == ablated.request


def test_methods_added_to_an_ablated_analysis_explain_the_ablated_model(tiny_models):
    # A classification head: its target fixes nothing from the model before scoring, so gating the whole
    # analysis by hand is the same model (a zero-shot target's prompts come from the full model: docs/tasks.md).
    loaded = tiny_models["classification"]
    request = AnalysisRequest(TEXT, model=loaded.spec, n_steps=8, ablate="0:1,1:3", ablate_mode="mean")
    ablated = with_methods(analyze(request, loaded), loaded, ["saliency", "occlusion"], faithfulness=True)
    plain_request = replace(request, ablate="")
    enc, _ = tokenize(loaded, TEXT, request.max_tokens)
    means = head_means(loaded, enc["input_ids"], enc["attention_mask"], enc.get("token_type_ids"))
    with gated(loaded, HeadSet.parse("0:1,1:3", 2, 4), "mean", means):
        by_hand = with_methods(analyze(plain_request, loaded), loaded, ["saliency", "occlusion"], faithfulness=True)
    for name in ("saliency", "occlusion"):
        np.testing.assert_array_equal(ablated.methods[name].word_scores, by_hand.methods[name].word_scores)
        assert ablated.methods[name].comprehensiveness == by_hand.methods[name].comprehensiveness
    full = with_methods(analyze(plain_request, loaded), loaded, ["saliency"])
    assert not np.array_equal(full.methods["saliency"].word_scores, ablated.methods["saliency"].word_scores)
    assert no_gates(loaded)


def test_gates_come_off_when_an_ablated_analysis_raises_and_a_neighbour_gets_its_own_result(tiny_dirs):
    loaded = load_model(tiny_dirs["classification"])
    request = AnalysisRequest(TEXT, model=loaded.spec, n_steps=8)
    alone = analyze(request, loaded)

    def cancel(stage: str, fraction: float) -> None:
        if stage == "attribution":
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        analyze(replace(request, ablate="0:*", ablate_mode="mean"), loaded, progress=cancel)
    assert no_gates(loaded) and not loaded.lock._is_owned()  # type: ignore[attr-defined]
    results: dict[str, list] = {"plain": [], "ablated": []}

    def run(kind: str) -> None:
        for _ in range(3):
            r = replace(request, ablate="0:*,1:1") if kind == "ablated" else request
            results[kind].append(analyze(r, loaded))

    threads = [threading.Thread(target=run, args=(kind,)) for kind in ("ablated", "plain", "ablated")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results["plain"]:
        np.testing.assert_array_equal(result.attribution.scores, alone.attribution.scores)
        np.testing.assert_array_equal(result.prediction.scores, alone.prediction.scores)
        assert result.request.ablate == ""
    first = results["ablated"][0]
    assert not np.array_equal(first.prediction.scores, alone.prediction.scores)
    for result in results["ablated"]:
        np.testing.assert_array_equal(result.attribution.scores, first.attribution.scores)
    assert no_gates(loaded)


@pytest.mark.parametrize(("ablate", "mode", "says"), [
    ("0-1", "zero", "'0-1' is not a head"),
    ("0:1,x", "zero", "'x' is not a head"),
    ("2:0", "zero", "Layer 2 does not exist; this model has layers 0 to 1."),
    ("0:4", "zero", "Head 4 does not exist; each layer has heads 0 to 3."),
    ("0:1", "half", "Unknown ablation mode 'half'"),
])
def test_bad_ablations_are_refused_in_one_sentence(tiny_models, ablate, mode, says):
    loaded = tiny_models["classification"]
    with pytest.raises(InputError) as error:
        analyze(AnalysisRequest(TEXT, model=loaded.spec, n_steps=4, ablate=ablate, ablate_mode=mode), loaded)
    message = str(error.value)
    assert says in message and message.endswith(".") and message.count(". ") == 0
    assert no_gates(loaded)
    if "exist" not in says:  # the form is checked before any model is loaded
        with pytest.raises(InputError, match=says.split(";")[0]):
            validate(AnalysisRequest(TEXT, ablate=ablate, ablate_mode=mode))


def test_ablation_survives_the_json_round_trip(tiny_models):
    loaded = tiny_models["masked_lm"]
    result = analyze(AnalysisRequest("the film was [MASK] .", model=loaded.spec, n_steps=4, ablate="1:*",
                                     ablate_mode="mean"), loaded)
    data = json.loads(result.to_json())
    assert data["request"]["ablate"] == "1:*" and data["request"]["ablate_mode"] == "mean"
    again = Analysis.from_json(result.to_json())
    assert again.request == result.request
    assert again.to_json() == result.to_json()


def test_files_without_the_fields_read_unchanged(tiny_models):
    """Schema-1 fixtures and schema-2 files written before requests recorded ablation read as unablated."""
    for name in ("analysis_v1.json",):
        analysis = Analysis.from_json((FIXTURES / name).read_text())
        assert analysis.request.ablate == "" and analysis.request.ablate_mode == "zero"
    loaded = tiny_models["classification"]
    result = analyze(AnalysisRequest(TEXT, model=loaded.spec, n_steps=4), loaded)
    data = to_jsonable(result)
    del data["request"]["ablate"], data["request"]["ablate_mode"]
    old = Analysis.from_json(json.dumps(data))
    assert old.request == result.request
    np.testing.assert_array_equal(old.attribution.scores, result.attribution.scores)


def test_cli_records_the_heads_in_the_request(tiny_dirs, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main([TEXT, "--model", tiny_dirs["classification"], "--steps", "4", "--ablate", "1:3, 0:*",
                 "--ablate-mode", "mean", "--out", str(out)]) == 0
    assert "heads removed (mean): 0:*,1:3" in capsys.readouterr().out
    data = json.loads(out.read_text())
    assert data["request"]["ablate"] == "0:*,1:3" and data["request"]["ablate_mode"] == "mean"
    assert Analysis.from_json(out.read_text()).request.ablate == "0:*,1:3"
    assert main([TEXT, "--model", tiny_dirs["classification"], "--ablate", "0:1:2", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: '0:1:2' is not a head") and err.count("\n") == 1


def test_exports_name_the_removed_heads(tiny_models):
    from explain.viz.report import comparison_html, side_names, standalone_html

    loaded = tiny_models["classification"]
    request = AnalysisRequest(TEXT, model=loaded.spec, n_steps=4)
    full = analyze(request, loaded)
    ablated = analyze(replace(request, ablate="1:*", ablate_mode="mean"), loaded)
    assert "<tr><th>heads removed</th><td>1:* (outputs set to mean)</td></tr>" in standalone_html(ablated)
    assert "heads removed" not in standalone_html(full)
    assert side_names(full, ablated) == (loaded.spec, f"{loaded.spec} without heads 1:*")
    assert f"{loaded.spec} without heads 1:*" in comparison_html(full, ablated)


def test_a_different_ablation_inside_another_is_refused_and_leaves_no_gates(tiny_models):
    from explain.heads.ablation import request_ablation

    loaded = tiny_models["classification"]
    enc, _ = tokenize(loaded, TEXT, 64)
    outer = AnalysisRequest(TEXT, ablate="0:1")
    with pytest.raises(RuntimeError, match="already removed"):
        with request_ablation(loaded, outer, enc["input_ids"], enc["attention_mask"]):
            with request_ablation(loaded, outer, enc["input_ids"], enc["attention_mask"]) as same:
                assert same is not None and same.format() == "0:1"  # the same heads: nothing added
                n_hooks = sum(len(site.output._forward_pre_hooks) for site in adapter_of(loaded).sites)
                assert n_hooks == 1
            with request_ablation(loaded, replace(outer, ablate="1:2"), enc["input_ids"], enc["attention_mask"]):
                pass
    assert no_gates(loaded)
