"""Contract tests over the table of model families: every row against a tiny random model of its family.

Each family's tiny model (testkit.families: hidden 32, 2 layers, 4 heads, the family's own tokenizer class)
is saved to a folder and loaded through `load_model`, as a user's Hub checkpoint would be. The table's facts
are checked against what transformers does with the model, and every method, target kind, head feature and
depth attribution runs on it (or refuses in one sentence where the table says the family lacks what it needs).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from explain.depth import encoder_layers
from explain.errors import InputError, ModelLoadError
from explain.families import FAMILIES, POSITION_RULES, family_of, model_shape, resolve
from explain.heads import HeadSet, adapter_of, gated, head_importance, neuron_view, prepare_inputs, pruning_curve
from explain.methods import METHODS
from explain.models import load_model
from explain.pacing import REFERENCE_SHAPE
from explain.pacing import model_shape as scheduling_shape
from explain.pipeline import analyze, attribution_context, supported_methods, with_depth, with_methods
from explain.records import AnalysisRequest, TargetSpec
from explain.targets import TARGETS, model_position_ids
from testkit.families import HEADS, TOKENIZERS, save_tiny_family

# The consistency tests of the table run by default; the contract tests of every feature on every family
# (several minutes on 2 cores) are marked slow.

NAMES = tuple(FAMILIES)
TEXT = "the film was good but too long ."
MASKED = "the film was {mask} but too long ."
PAIR = "it was a bad movie ."
QUESTION = "what was the film ?"
QUICK = (("kernel_shap.n_samples", "24"), ("lime.n_samples", "24"), ("smoothgrad.nt_samples", "3"),
         ("smoothgrad.ig_steps", "4"))


class TinyFamilies(dict):
    """Tiny models by (family, head), each saved and loaded the first time a test asks for it."""

    def __init__(self, root) -> None:
        super().__init__()
        self.root = root

    def __missing__(self, key: tuple[str, str]):
        name, head = key
        folder = save_tiny_family(self.root / f"{name}-{head}", name, head)
        loaded = self[key] = load_model(str(folder), device="cpu")
        return loaded


@pytest.fixture(scope="module")
def family_models(tmp_path_factory) -> TinyFamilies:
    return TinyFamilies(tmp_path_factory.mktemp("families"))


def request_for(loaded, kind: str, **extra) -> AnalysisRequest:
    needs = TARGETS[kind].needs
    text = MASKED.format(mask=loaded.tokenizer.mask_token) if kind == "masked_token" else TEXT
    spec = {"zero_shot": TargetSpec("zero_shot", labels=("good", "bad")),
            "similarity": TargetSpec("similarity", reference="a fine film .")}.get(kind, TargetSpec(kind))
    return AnalysisRequest(text, model=loaded.spec, target=spec, n_steps=4, integration="gauss_legendre",
                           pair=PAIR if needs == "pair" else "", question=QUESTION if needs == "question" else "",
                           method_settings=QUICK, **extra)


def test_every_family_has_a_tiny_model_and_a_known_position_rule():
    assert set(TOKENIZERS) == set(FAMILIES)
    for name, family in FAMILIES.items():
        assert family.model_type == name and family.positions in POSITION_RULES


def test_an_unlisted_family_is_refused_in_one_sentence():
    with pytest.raises(InputError, match=r"^The model family 'gpt2' is not supported for gating; supported: bert, "):
        family_of("gpt2", "gating")


@pytest.mark.parametrize("name", NAMES)
def test_every_module_path_resolves_on_the_tiny_model(family_models, name):
    loaded = family_models[name, "classification"]
    family = family_of(loaded.config)
    encoder = loaded.encoder
    layers = resolve(encoder, family.layers)
    assert isinstance(layers, torch.nn.ModuleList)
    n_layers = int(loaded.config.num_hidden_layers)
    assert len(layers) == (1 if family.shared_layers else n_layers)
    for index in range(len(layers)):
        for role, path in family.module_paths().items():
            module = resolve(encoder, family.layer_path(index, path))
            if role in ("query", "key", "value", "attention_output", "feed_forward_in", "feed_forward_out"):
                assert isinstance(module, torch.nn.Linear), (role, path)
            elif role.endswith("norm"):
                assert isinstance(getattr(module, "weight", None), torch.nn.Parameter), (role, path)
                assert module.weight.shape == (int(loaded.config.hidden_size),)
    for part, path in family.embedding_paths(loaded.config).items():
        assert isinstance(resolve(encoder, path), torch.nn.Embedding), part
    assert resolve(encoder, family.token_embeddings) is loaded.word_embeddings


@pytest.mark.parametrize("name", NAMES)
def test_the_position_rule_reproduces_the_models_own_position_ids(family_models, name):
    """Pad a batch and let transformers number the positions itself (no position_ids given): the rule agrees."""
    loaded = family_models[name, "encoder"]
    batch = loaded.tokenizer([TEXT, "good"], padding=True, return_tensors="pt")
    ids = batch["input_ids"]
    assert bool(ids.eq(loaded.tokenizer.pad_token_id).any())
    parts = family_of(loaded.config).embedding_paths(loaded.config)
    ours = model_position_ids(loaded, ids)
    if "position" not in parts:  # positions enter through relative terms only: the ids must not matter
        with torch.no_grad():
            plain = loaded.model(**batch).last_hidden_state
            shuffled = loaded.model(**batch, position_ids=ours.flip(-1)).last_hidden_state
        torch.testing.assert_close(plain, shuffled)
        return
    table = resolve(loaded.encoder, parts["position"])
    seen: list[torch.Tensor] = []
    handle = table.register_forward_hook(lambda _m, inputs, _o: seen.append(inputs[0]))
    try:
        with torch.no_grad():
            loaded.model(**batch)
    finally:
        handle.remove()
    assert len(seen) == 1
    real = ids.ne(loaded.tokenizer.pad_token_id)
    torch.testing.assert_close(ours[real], seen[0].expand_as(ids)[real])


@pytest.mark.parametrize("name", NAMES)
def test_special_token_counts_match_the_tokenizer(family_models, name):
    tokenizer = family_models[name, "classification"].tokenizer
    single, pair = family_of(name).specials
    assert tokenizer.num_special_tokens_to_add(False) == single
    assert tokenizer.num_special_tokens_to_add(True) == pair
    assert len(tokenizer(TEXT, PAIR)["input_ids"]) == len(tokenizer(TEXT, add_special_tokens=False)["input_ids"]) + \
        len(tokenizer(PAIR, add_special_tokens=False)["input_ids"]) + pair


@pytest.mark.parametrize("name", NAMES)
def test_the_longest_text_allowed_fits_the_position_table(family_models, name):
    """With a tokenizer that sets no length of its own, max_tokens is what the position table numbers."""
    loaded = copy.copy(family_models[name, "classification"])
    loaded.tokenizer = copy.deepcopy(loaded.tokenizer)
    loaded.tokenizer.model_max_length = 10**6
    n = loaded.max_tokens
    ids = torch.full((1, n), loaded.tokenizer.convert_tokens_to_ids("▁the" if "▁the" in loaded.tokenizer.get_vocab()
                                                                    else "the"))
    with torch.no_grad():
        out = loaded.model(input_ids=ids, position_ids=model_position_ids(loaded, ids))
    assert torch.isfinite(out.logits).all()
    assert n == int(loaded.config.max_position_embeddings) - (2 if family_of(name).positions == "after_padding" else 0)


@pytest.mark.parametrize("name", NAMES)
def test_a_second_text_is_the_second_segment_where_the_model_adds_segments(family_models, name):
    """ALBERT's tokenizer class lists no token_type_ids, but its models add a segment table: pairs and questions
    must reach them as the tokenizer's type ids, as in training."""
    loaded = family_models[name, "classification"]
    context = attribution_context(AnalysisRequest(TEXT, model=loaded.spec, pair=PAIR, n_steps=4), loaded)
    types = loaded.tokenizer(TEXT, PAIR)["input_ids"], loaded.tokenizer.backend_tokenizer.encode(TEXT, PAIR).type_ids
    rows = int(getattr(loaded.config, "type_vocab_size", 0) or 0)
    if "segment" in family_of(name).embedding_paths(loaded.config) and rows > 1:
        assert context.token_type_ids is not None and context.token_type_ids[0].tolist() == types[1]
        assert 1 in types[1]
    elif context.token_type_ids is not None:  # a table the model does not add (DeBERTa-v3): the ids change nothing
        with torch.no_grad():
            given = context.forward(context.embeddings())
            zeros = context.target.forward_embeddings(context.embeddings(), context.attention_mask,
                                                      torch.zeros_like(context.token_type_ids), context.position_ids)
        torch.testing.assert_close(given, zeros)


@pytest.mark.parametrize("name", NAMES)
def test_the_work_estimate_reads_the_familys_sizes(family_models, name):
    config = family_models[name, "classification"].config
    assert model_shape(config, REFERENCE_SHAPE) == scheduling_shape(config) == (2, 32, 37)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_every_method_runs_on_every_family(family_models, name):
    loaded = family_models[name, "classification"]
    family = family_of(name)
    analysis = analyze(request_for(loaded, "class"), loaded)
    # ALTI, GlobEnc, DecompX and Value Zeroing split each layer through its value projection and plain dot-product attention.
    titles = {"alti": "ALTI", "globenc": "GlobEnc", "decompx": "DecompX", "value_zeroing": "Value Zeroing"}
    refused = set() if family.plain_dot_product and family.value else set(titles)
    for method in refused:
        with pytest.raises(InputError, match=rf"^{titles[method]} needs plain dot-product attention [^.]* do not have\.$"):
            with_methods(analysis, loaded, [method])
    result = with_methods(analysis, loaded, [m for m in METHODS if m not in refused])
    assert set(result.methods) == set(METHODS) - refused
    assert set(supported_methods(loaded, analysis.request)) == set(METHODS) - refused  # the picker leaves it out
    for method, found in result.methods.items():
        assert found.word_scores.shape == (len(result.words),), method
        assert np.isfinite(found.word_scores).all() and np.abs(found.word_scores).sum() > 0, method


CASES = [(kind, head) for kind in TARGETS for head in TARGETS[kind].heads if head in HEADS]


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("kind,head", CASES, ids=[f"{k}-{h}" for k, h in CASES])
def test_every_target_kind_that_fits_the_heads_runs(family_models, name, kind, head):
    loaded = family_models[name, head]
    result = analyze(request_for(loaded, kind), loaded)
    scores = result.attribution.scores
    assert scores.shape == (len(result.tokens),)
    assert np.isfinite(scores).all() and np.abs(scores).sum() > 0
    assert math.isfinite(result.attribution.delta)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_ablation_importance_and_pruning_run_on_every_family(family_models, name):
    loaded = family_models[name, "classification"]
    inputs = prepare_inputs(loaded, TEXT)
    adapter = adapter_of(loaded)
    assert (adapter.n_layers, adapter.n_heads) == (2, 4)
    importance = head_importance(loaded, inputs)
    for which in ("gradient", "ablation"):
        assert np.isfinite(importance.map(which)).all() and np.abs(importance.map(which)).sum() > 0
    curve = pruning_curve(loaded, inputs, importance.map("gradient"), n_random=1, n_points=3)
    assert np.isfinite(curve.scores).all() and len(curve.scores) == 3
    full = analyze(request_for(loaded, "class"), loaded)
    ablated = analyze(request_for(loaded, "class", ablate="0:*,1:1"), loaded)
    assert ablated.prediction.scores != pytest.approx(full.prediction.scores)
    with gated(loaded, HeadSet.parse("0:*,1:*", 2, 4)):
        with torch.no_grad():
            everything_removed = loaded.model(**loaded.tokenizer(TEXT, return_tensors="pt")).logits
    assert torch.isfinite(everything_removed).all()


@pytest.mark.parametrize("name", NAMES)
def test_the_neuron_view_shows_the_attention_row_or_refuses(family_models, name):
    loaded = family_models[name, "classification"]
    inputs = prepare_inputs(loaded, TEXT)
    if not family_of(name).plain_dot_product:
        with pytest.raises(InputError, match="plain dot-product attention"):
            neuron_view(loaded, inputs, 1, 2, 3)
        return
    with torch.no_grad():
        out = loaded.encoder(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask,
                             position_ids=model_position_ids(loaded, inputs.input_ids), output_attentions=True)
    view = neuron_view(loaded, inputs, 1, 2, 3)
    np.testing.assert_allclose(view.attention, out.attentions[1][0, 2, 3].double().numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_depth_splits_the_score_on_every_family_or_refuses_shared_layers(family_models, name):
    loaded = family_models[name, "classification"]
    family = family_of(name)
    analysis = analyze(request_for(loaded, "class"), loaded)
    parts = with_depth(loaded, analysis, layers=False, n_steps=4).embedding_parts
    assert parts is not None and parts.parts == tuple(family.embedding_paths(loaded.config))
    assert parts.scores.shape == (len(parts.parts), len(analysis.tokens)) and np.isfinite(parts.scores).all()
    if family.shared_layers:
        with pytest.raises(InputError, match="shares one module between several layers"):
            with_depth(loaded, analysis, parts=False, n_steps=4)
        return
    assert len(encoder_layers(loaded)) == 2
    layers = with_depth(loaded, analysis, parts=False, n_steps=4).layer_attribution
    assert layers is not None and layers.scores.shape == (2, len(analysis.tokens))
    assert np.isfinite(layers.scores).all()


def test_a_model_type_outside_the_table_is_refused_on_loading(tmp_path):
    folder = save_tiny_family(tmp_path / "bert", "bert", "encoder")
    config = (folder / "config.json").read_text().replace('"model_type": "bert"', '"model_type": "gpt2"')
    (folder / "config.json").write_text(config)
    with pytest.raises(ModelLoadError, match="only BERT-like encoders"):
        load_model(str(folder), device="cpu")
