from __future__ import annotations

import json
import os

import pytest
import torch
from transformers import GPT2Config, GPT2Model

from explain import ModelLoadError, load_model
from testkit.tiny_models import save_tiny_model


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


# -- checkpoints this dashboard cannot explain, or whose weights do not cover the model ------------------------

TINY = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
            max_position_embeddings=64)


def save_with_head(folder, model_class, *, architectures=True, **config):
    """A tiny random BERT with a head class from transformers, saved with the tiny tokenizer."""
    from transformers import BertConfig, BertTokenizer

    from testkit.tiny_models import vocabulary

    torch.manual_seed(0)
    model_class(BertConfig(**{**TINY, "vocab_size": len(vocabulary()), **config})).save_pretrained(folder)
    BertTokenizer(vocab=vocabulary(), model_max_length=64).save_pretrained(folder)
    if not architectures:
        edit_config(folder, architectures=None)
    return folder


def edit_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    path.write_text(json.dumps(config))


@pytest.fixture
def loud_transformers():
    """transformers at its default verbosity (warnings shown), as a user's shell or the server has it."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_warning()
    yield
    hf_logging.set_verbosity(before)


def refusal(spec: str) -> str:
    with pytest.raises(ModelLoadError) as err:
        load_model(spec)
    message = str(err.value)
    assert "\n" not in message and message.endswith("."), message
    return message


@pytest.mark.parametrize("class_name,task", [
    ("BertForMultipleChoice", "multiple-choice"),
    ("BertLMHeadModel", "causal language"),
])
def test_a_head_this_dashboard_cannot_explain_is_refused_by_name(tmp_path, capfd, loud_transformers, class_name, task):
    import transformers

    config = {"is_decoder": True} if class_name == "BertLMHeadModel" else {}
    folder = save_with_head(tmp_path / "m", getattr(transformers, class_name), **config)
    capfd.readouterr()
    message = refusal(str(folder))
    assert message == (f"'{folder}' is a {task} model ({class_name}); this dashboard explains "
                       "sequence-classification, token-classification, question-answering, masked-LM, next-sentence "
                       "and bare encoder models.")
    assert "LOAD REPORT" not in capfd.readouterr().err


@pytest.mark.parametrize("class_name,shown", [
    ("BertForTokenClassification", "classifier.bias"),
    ("BertForQuestionAnswering", "qa_outputs.bias"),
])
def test_a_task_head_whose_config_names_no_architecture_is_refused_by_its_weights(
        tmp_path, capfd, loud_transformers, class_name, shown):
    import transformers

    folder = save_with_head(tmp_path / "m", getattr(transformers, class_name), architectures=False)
    capfd.readouterr()
    message = refusal(str(folder))
    assert f"'{folder}' holds weights of a head its config.json does not name" in message and shown in message
    assert "LOAD REPORT" not in capfd.readouterr().err


def test_weights_that_do_not_cover_the_model_are_refused(tmp_path, capfd, loud_transformers):
    from safetensors.torch import load_file, save_file

    folder = save_tiny_model(tmp_path / "m", "encoder")
    weights = load_file(folder / "model.safetensors")
    del weights["encoder.layer.1.attention.self.query.weight"]
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    capfd.readouterr()
    message = refusal(str(folder))
    assert message.startswith(f"The weights in '{folder}' do not cover the model its config.json describes")
    assert "encoder.layer.1.attention.self.query.weight" in message
    assert "LOAD REPORT" not in capfd.readouterr().err


def test_a_config_asking_for_more_layers_than_the_weights_hold_is_refused(tmp_path):
    folder = save_tiny_model(tmp_path / "m", "masked_lm")
    edit_config(folder, num_hidden_layers=3)  # most of the model is there: refused once transformers reports
    assert "do not cover the model" in refusal(str(folder))
    edit_config(folder, num_hidden_layers=12)  # most is not: refused from the checkpoint's header, unread
    assert "most of the model would be random" in refusal(str(folder))


def test_a_pretrained_checkpoint_with_its_spare_heads_still_loads(tmp_path, capfd, loud_transformers):
    """BERT's own pre-training checkpoint (masked-LM + next-sentence heads) loads as a masked LM: the
    next-sentence head and pooler are left aside, nothing of the masked LM is missing."""
    from transformers import BertForPreTraining

    folder = save_with_head(tmp_path / "m", BertForPreTraining)
    edit_config(folder, architectures=["BertForMaskedLM"])
    capfd.readouterr()
    assert load_model(str(folder)).head == "masked_lm"
    assert "LOAD REPORT" not in capfd.readouterr().err


def test_the_embedded_model_and_the_random_control_still_load(minilm):
    assert minilm.head == "encoder"
    control = load_model("minilm-random")
    assert control.head == "encoder" and control.info.n_layers == minilm.info.n_layers


# -- size: estimated from config.json before any weight is allocated --------------------------------------------


def save_one_tensor_checkpoint(folder, **config):
    """A config.json asking for a model, and a model.safetensors holding one unrelated tensor."""
    from safetensors.torch import save_file

    folder = save_tiny_model(folder, "encoder")
    edit_config(folder, **config)
    save_file({"unrelated": torch.zeros(4)}, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def peak_rss_growth(action) -> int:
    """Bytes the process's peak resident memory grew by while `action` ran (Linux: VmHWM, reset first)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets the peak to the current resident size
    except OSError:
        pytest.skip("needs Linux /proc/self/clear_refs to measure peak memory")

    def peak() -> int:
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    before = peak()
    action()
    return peak() - before


def test_a_thousand_layer_config_is_refused_before_allocating(tmp_path):
    folder = save_one_tensor_checkpoint(tmp_path / "m", num_hidden_layers=1000, hidden_size=384,
                                        num_attention_heads=12, intermediate_size=1536)
    grew = peak_rss_growth(lambda: pytest.raises(ModelLoadError, load_model, str(folder)))
    assert grew < 200 * 2**20
    message = refusal(str(folder))
    assert "more than any BERT-like" in message or "EXPLAIN_MAX_MODEL_MB" in message


def test_a_model_above_the_size_limit_is_refused_before_allocating(tmp_path, monkeypatch):
    """About 285 MB of float32 weights asked for, 64 MB allowed: refused from config.json alone."""
    monkeypatch.setenv("EXPLAIN_MAX_MODEL_MB", "64")
    folder = save_one_tensor_checkpoint(tmp_path / "m", num_hidden_layers=40, hidden_size=384,
                                        num_attention_heads=12, intermediate_size=1536)
    grew = peak_rss_growth(lambda: pytest.raises(ModelLoadError, load_model, str(folder)))
    assert grew < 150 * 2**20
    message = refusal(str(folder))
    assert message.startswith(f"'{folder}' would need about ")
    assert "more than the 64 MB this server allows for one model (EXPLAIN_MAX_MODEL_MB)" in message


def test_weights_far_smaller_than_the_config_are_refused_before_allocating(tmp_path):
    folder = save_one_tensor_checkpoint(tmp_path / "m", num_hidden_layers=40, hidden_size=384,
                                        num_attention_heads=12, intermediate_size=1536)
    grew = peak_rss_growth(lambda: pytest.raises(ModelLoadError, load_model, str(folder)))
    assert grew < 150 * 2**20
    message = refusal(str(folder))
    assert message.startswith(f"The weights in '{folder}' hold only ")
    assert "most of the model would be random" in message


@pytest.mark.parametrize("field,value", [
    ("num_hidden_layers", 0), ("num_hidden_layers", -3), ("hidden_size", -32), ("vocab_size", 0),
    ("num_attention_heads", 10**12), ("num_hidden_layers", 10**9),
])
def test_hostile_config_sizes_are_one_sentence(tmp_path, field, value):
    folder = save_tiny_model(tmp_path / "m", "encoder")
    edit_config(folder, **{field: value})
    message = refusal(str(folder))
    assert str(folder) in message and "config.json" in message


@pytest.mark.parametrize("head", ["classification", "masked_lm", "encoder", "encoder_alt"])
def test_the_size_estimate_is_the_memory_the_loaded_model_takes(tiny_dirs, head):
    from explain.models import module_bytes

    estimates: list[int] = []
    loaded = load_model(tiny_dirs[head], reserve=estimates.append)
    real = sum(p.numel() * p.element_size() for p in loaded.model.parameters())
    real += sum(b.numel() * b.element_size() for b in loaded.model.buffers())
    assert estimates == [real] == [module_bytes(loaded.model)]


# -- specs: one name per folder; roots say the same thing whether a folder outside them exists ------------------


def test_one_folder_written_three_ways_is_one_canonical_spec(tmp_path, monkeypatch):
    from explain.models import canonical_spec

    save_tiny_model(tmp_path / "x", "encoder")
    monkeypatch.chdir(tmp_path)
    real = str((tmp_path / "x").resolve())
    assert {canonical_spec(s) for s in ("x", "x/", ".//x", "./x/", str(tmp_path / "x"))} == {real}
    assert canonical_spec("minilm") == "minilm" and canonical_spec("minilm-random") == "minilm-random"
    assert canonical_spec("bert-base-uncased") == "bert-base-uncased"
    assert canonical_spec("some-org/some-model") == "some-org/some-model"


def test_outside_the_roots_an_existing_and_a_missing_folder_get_the_same_sentence(tmp_path, monkeypatch):
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    existing = save_tiny_model(tmp_path / "elsewhere" / "m", "encoder")
    missing = tmp_path / "elsewhere" / "n"
    monkeypatch.chdir(tmp_path)
    pairs = [(str(existing), str(missing)), ("elsewhere/m/", "elsewhere/n/"), ("./elsewhere/m", "./elsewhere/n"),
             (str(tmp_path / "elsewhere"), str(tmp_path / "nowhere")), ("/etc", "/no-such-folder-here")]
    for there, not_there in pairs:
        said = []
        for spec in (there, not_there):
            with pytest.raises(ModelLoadError) as err:
                load_model(spec, roots=[allowed])
            said.append(str(err.value).replace(spec, "<spec>"))
        assert said[0] == said[1], (there, not_there)
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(str(allowed / "missing"), roots=[allowed])


def test_with_roots_set_relative_names_say_nothing_about_the_working_directory(tmp_path, monkeypatch):
    """Names that could be Hub ids (`org/name`, one word, a file name) get one sentence whether a folder or file of
    that name exists where the server runs or not, and nothing of it is read."""
    allowed = tmp_path / "allowed"
    save_tiny_model(allowed / "inside", "encoder")
    save_tiny_model(tmp_path / "elsewhere" / "m", "encoder")
    (tmp_path / "notes.txt").write_text("a file in the server's working directory")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for there, not_there in [("elsewhere/m", "elsewhere/n"), ("elsewhere", "nowhere"), ("notes.txt", "other.txt")]:
        said = []
        for spec in (there, not_there):
            with pytest.raises(ModelLoadError) as err:
                load_model(spec, roots=[allowed])
            said.append(str(err.value).replace(spec, "<spec>"))
        assert said[0] == said[1], (there, not_there)
    assert load_model("allowed/inside", roots=[allowed]).head == "encoder"  # a relative folder inside the roots


@pytest.mark.parametrize("setting", ["3 GB", "nan", "inf", "0", "-5"])
def test_an_unusable_size_limit_is_one_sentence(monkeypatch, setting):
    monkeypatch.setenv("EXPLAIN_MAX_MODEL_MB", setting)
    with pytest.raises(ModelLoadError, match="EXPLAIN_MAX_MODEL_MB must be a positive number of megabytes"):
        load_model("minilm")


@pytest.mark.parametrize("allowed, spec, refused", [
    ("my-org/*", "other-org/model", True),
    ("my-org/*", "my-org/model", False),
    ("bert-base-uncased, my-org/one", "bert-base-uncased", False),
    ("bert-base-uncased, my-org/one", "my-org/two", True),
    ("none", "bert-base-uncased", True),
])
def test_a_hub_allow_list_refuses_other_hub_ids(monkeypatch, allowed, spec, refused):
    monkeypatch.setenv("EXPLAIN_HUB_ALLOW", allowed)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        load_model(spec)
    assert ("not on this server's list of allowed Hub models" in str(info.value)) == refused, str(info.value)


def test_the_allow_list_leaves_built_in_models_alone(monkeypatch):
    monkeypatch.setenv("EXPLAIN_HUB_ALLOW", "none")
    assert load_model("minilm-random").spec == "minilm-random"


# -- attention: the head count and the maps one pass keeps are bounded before loading ------------------------------


def test_real_weights_with_one_head_per_dimension_are_refused_before_loading(tmp_path):
    """all-MiniLM-L6-v2's own weights under a config.json asking for 384 heads (head size 1): the weights fit,
    and each analysis would keep 32x the attention maps. Refused in one sentence, before any weight is read."""
    import shutil

    from explain.models import embedded_model_path

    folder = tmp_path / "minilm-384-heads"
    shutil.copytree(embedded_model_path(), folder)
    edit_config(folder, num_attention_heads=384)
    grew = peak_rss_growth(lambda: pytest.raises(ModelLoadError, load_model, str(folder)))
    assert grew < 150 * 2**20
    message = refusal(str(folder))
    assert message.startswith(f"'{folder}' has a config.json asking for 384 attention heads"), message


def test_attention_maps_too_large_to_keep_are_refused_before_loading(tmp_path):
    """Heads within bounds, but layers x heads x tokens^2 of attention at the longest input is gigabytes."""
    from explain.models import attention_bytes

    folder = save_one_tensor_checkpoint(tmp_path / "m", num_hidden_layers=200, hidden_size=64, num_attention_heads=64,
                                        intermediate_size=64, max_position_embeddings=512)
    message = refusal(str(folder))
    assert message.startswith(f"'{folder}' would keep "), message
    assert "of attention maps per pass at 512 tokens" in message
    assert attention_bytes(load_config(folder), 512) == 200 * 64 * 512 * 512 * 4


def load_config(folder):
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(str(folder), local_files_only=True)


def test_the_largest_bert_family_shapes_pass_the_attention_bounds():
    from transformers import BertConfig, DebertaV2Config

    from explain.models import MAX_ATTENTION_BYTES, MAX_HEADS, attention_bytes, check_attention_size

    big = [BertConfig(num_hidden_layers=24, num_attention_heads=16, hidden_size=1024),  # bert-large
           DebertaV2Config(num_hidden_layers=48, num_attention_heads=24, hidden_size=1536)]  # deberta-v2-xxlarge
    for config in big:
        assert config.num_attention_heads <= MAX_HEADS
        assert attention_bytes(config, 512) <= MAX_ATTENTION_BYTES
        check_attention_size(config, "big")
    assert attention_bytes(big[0], 128) == 24 * 16 * 128 * 128 * 4
