"""The method registry inside analyses, the CLI and the JSON: any method shown, several side by side, scored."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from explain import AnalysisRequest, analyze
from explain.cli import main
from explain.errors import InputError
from explain.methods import METHODS
from explain.pipeline import supported_methods, validate, with_methods
from explain.records import SCHEMA_VERSION, Analysis, head_importance_from_dict

TEXT = "the film was good but too long"


@pytest.mark.parametrize("name", ["occlusion", "saliency", "attention_rollout"])
def test_an_analysis_shows_the_method_its_request_names(tiny_models, tiny_dirs, name):
    request = AnalysisRequest(TEXT, model=tiny_dirs["encoder"], method=name)
    result = analyze(request, tiny_models["encoder"])
    assert result.attribution.method == name and list(result.methods) == [name]
    np.testing.assert_array_equal(result.methods[name].word_scores, result.word_scores)
    assert result.attribution.seconds > 0
    assert Analysis.from_json(result.to_json()).to_json() == result.to_json()


def test_method_settings_from_the_request_reach_the_method(tiny_models, tiny_dirs):
    request = AnalysisRequest(TEXT, model=tiny_dirs["encoder"], method="lime",
                              method_settings=(("lime.n_samples", "40"), ("lime.seed", "3")))
    result = analyze(request, tiny_models["encoder"])
    assert result.attribution.settings["n_samples"] == 40 and result.attribution.settings["seed"] == 3


def test_a_bad_method_setting_is_one_sentence():
    with pytest.raises(InputError):
        validate(AnalysisRequest(TEXT, method="lime", method_settings=(("lime.n_samples", "many"),)))
    with pytest.raises(InputError):
        validate(AnalysisRequest(TEXT, method="no_such_method"))


def test_with_methods_adds_each_method_and_its_faithfulness(tiny_models, tiny_dirs):
    loaded = tiny_models["encoder"]
    request = AnalysisRequest(TEXT, model=tiny_dirs["encoder"], n_steps=8)
    names = supported_methods(loaded, request)
    assert names == [n for n, m in METHODS.items() if m.supports("zero_shot")]
    result = with_methods(analyze(request, loaded), loaded, names, faithfulness=True)
    assert list(result.methods)[0] == "integrated_gradients" and set(result.methods) == set(names)
    for r in result.methods.values():
        assert r.word_scores.shape == (len(result.words),)
        assert math.isfinite(r.comprehensiveness) and math.isfinite(r.sufficiency)
    assert result.faithfulness is not None and result.faithfulness.n_random >= 2
    back = Analysis.from_json(result.to_json())
    assert back.methods["occlusion"].comprehensiveness == result.methods["occlusion"].comprehensiveness


def test_cli_method_all_with_faithfulness_prints_the_table_and_writes_every_method(tiny_dirs, tmp_path, capsys):
    out = tmp_path / "a.json"
    code = main([TEXT, "--model", tiny_dirs["encoder"], "--steps", "4", "--method", "all", "--faithfulness",
                 "--lime-n-samples", "32", "--kernel-shap-n-samples", "32", "--smoothgrad-nt-samples", "3",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "compr." in printed and "random rankings" in printed and "Leave one word out" in printed
    data = json.loads(out.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert set(data["methods"]) == {n for n, m in METHODS.items() if m.supports("zero_shot")}
    for entry in data["methods"].values():
        assert {"comprehensiveness", "sufficiency", "word_scores", "attribution"} <= set(entry)
    assert data["methods"]["lime"]["attribution"]["settings"]["n_samples"] == 32


def test_cli_first_method_is_the_one_highlighted(tiny_dirs, tmp_path):
    out = tmp_path / "a.json"
    assert main([TEXT, "--model", tiny_dirs["encoder"], "--method", "occlusion", "--out", str(out), "--quiet"]) == 0
    data = json.loads(out.read_text())
    assert data["attribution"]["method"] == "occlusion" and data["request"]["method"] == "occlusion"


def test_cli_ablates_heads_and_ranks_them(tiny_dirs, tmp_path, capsys):
    out = tmp_path / "a.json"
    assert main([TEXT, "--model", tiny_dirs["encoder"], "--steps", "4", "--ablate", "0:1,1:*", "--head-importance",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "heads removed (zero): 0:1,1:*" in printed and "most important heads by gradient" in printed
    data = json.loads(out.read_text())
    assert data["request"]["ablate"] == "0:1,1:*" and data["request"]["ablate_mode"] == "zero"
    maps = head_importance_from_dict(data["head_importance"])  # the one codec's typed arrays
    assert len(maps.gradient) == 2 and len(maps.gradient[0]) == 4  # the tiny model: 2 layers x 4 heads
    main([TEXT, "--model", tiny_dirs["encoder"], "--steps", "4", "--out", str(tmp_path / "b.json"), "--quiet"])
    unablated = json.loads((tmp_path / "b.json").read_text())
    assert unablated["prediction"]["scores"] != data["prediction"]["scores"]  # removing heads changed the output


def test_cli_refuses_a_head_the_model_does_not_have(tiny_dirs, capsys):
    assert main([TEXT, "--model", tiny_dirs["encoder"], "--ablate", "7:0", "--quiet"]) == 2
    assert "error:" in capsys.readouterr().err
