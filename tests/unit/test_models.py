from __future__ import annotations

import json
import os

import pytest
import torch
from transformers import GPT2Config, GPT2Model

from explain import ModelLoadError, load_model
from tests.tiny_models import save_tiny_model


@pytest.mark.parametrize("head", ["classification", "masked_lm", "encoder"])
def test_tiny_models_load_through_the_public_path(tiny_models, head):
    loaded = tiny_models[head]
    info = loaded.info
    assert info.head == head
    assert (info.n_layers, info.n_heads) == (2, 4)
    assert info.max_tokens == 64
    assert loaded.model.config._attn_implementation == "eager"
    assert not any(p.requires_grad for p in loaded.model.parameters())
    if head == "classification":
        assert loaded.label_names == ["negative", "neutral", "positive"]
        assert "class" in info.targets
    if head == "masked_lm":
        assert "masked_token" in info.targets
    if head == "encoder":
        assert info.targets == ("zero_shot", "similarity")


def test_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(tmp_path / "nope"))


def test_empty_spec():
    with pytest.raises(ModelLoadError, match="No model"):
        load_model("  ")


def test_invalid_hub_id():
    with pytest.raises(ModelLoadError, match="neither a built-in model"):
        load_model("not a valid id!!")


def test_unreachable_hub_is_one_sentence(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as err:
        load_model("some-org/some-model-that-is-not-here")
    message = str(err.value)
    assert "Hugging Face Hub" in message and "\n" not in message


def test_non_bert_model_is_refused(tmp_path):
    GPT2Model(GPT2Config(n_layer=1, n_head=2, n_embd=8, vocab_size=20, n_positions=16)).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="gpt2 model; only BERT-like"):
        load_model(str(tmp_path))


def test_pickle_only_checkpoint_is_refused(tmp_path):
    folder = save_tiny_model(tmp_path / "m", "encoder")
    model_file = folder / "model.safetensors"
    from safetensors.torch import load_file

    torch.save(load_file(model_file), folder / "pytorch_model.bin")
    model_file.unlink()
    with pytest.raises(ModelLoadError, match="no safetensors weights"):
        load_model(str(folder))


def test_folder_outside_roots_is_refused(tmp_path, tiny_dirs):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    with pytest.raises(ModelLoadError, match="outside the folders"):
        load_model(tiny_dirs["encoder"], roots=[allowed])


def test_folder_inside_roots_loads(tmp_path):
    folder = save_tiny_model(tmp_path / "root" / "m", "encoder")
    assert load_model(str(folder), roots=[tmp_path / "root"]).head == "encoder"


def test_symlink_escaping_folder_is_refused(tmp_path):
    folder = save_tiny_model(tmp_path / "m", "encoder")
    secret = tmp_path / "secret.txt"
    secret.write_text("x")
    os.symlink(secret, folder / "extra.txt")
    with pytest.raises(ModelLoadError, match="outside itself"):
        load_model(str(folder))


def test_sharded_index_reaching_outside_is_refused(tmp_path):
    folder = save_tiny_model(tmp_path / "m", "encoder")
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": {"embeddings.word_embeddings.weight": "../../etc/passwd"}})
    )
    with pytest.raises(ModelLoadError, match="outside itself"):
        load_model(str(folder))


def test_absolute_vocab_file_is_refused(tmp_path):
    folder = save_tiny_model(tmp_path / "m", "encoder")
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["vocab_file"] = "/etc/passwd"
    cfg_path.write_text(json.dumps(cfg))
    with pytest.raises(ModelLoadError, match="outside itself"):
        load_model(str(folder))
