"""Heads: gating never leaks, removals match hand-built models, importance matches finite differences,
the neuron view rebuilds the model's own attention rows."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from transformers import (
    AlbertConfig,
    AlbertForSequenceClassification,
    BertConfig,
    BertForSequenceClassification,
    BertTokenizer,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    ElectraConfig,
    ElectraForSequenceClassification,
    RobertaConfig,
    RobertaForSequenceClassification,
)

from explain import AnalysisRequest, InputError, TargetSpec, analyze, load_model
from explain.heads import (
    HeadSet,
    ablation_effect,
    adapter_of,
    explained_scores,
    gated,
    gradient_importance,
    head_importance,
    head_means,
    neuron_view,
    prepare_inputs,
    pruning_curve,
)
from explain.pipeline import analyze_ablated
from explain.records import head_importance_from_dict, to_jsonable
from testkit.tiny_models import vocabulary

TEXT = "the film was good but too long ."
LABELS = {0: "negative", 1: "neutral", 2: "positive"}
POSITIVE = TargetSpec("class", label="positive")
# Where each family keeps the attention output projection, written here independently of the adapters.
OUTPUT_PROJECTION = {
    "bert": "encoder.layer.{}.attention.output.dense",
    "roberta": "encoder.layer.{}.attention.output.dense",
    "electra": "encoder.layer.{}.attention.output.dense",
    "distilbert": "transformer.layer.{}.attention.out_lin",
    "albert": "encoder.albert_layer_groups.0.albert_layers.0.attention.dense",
}
FAMILIES = tuple(OUTPUT_PROJECTION)


def build_family(folder: Path, family: str, *, init: float = 0.3, seed: int = 0) -> Path:
    """A tiny random classifier of `family` (2-3 layers, 4 heads, hidden 32) with a larger weight spread
    than the default, so that single heads move the scores by more than float32 rounding."""
    vocab = vocabulary()
    common = dict(vocab_size=len(vocab), num_labels=3, id2label=LABELS, label2id={v: k for k, v in LABELS.items()},
                  initializer_range=init)
    bert_like = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                     max_position_embeddings=66, **common)
    if family == "bert":
        model = _seeded(seed, lambda: BertForSequenceClassification(BertConfig(**bert_like)))
    elif family == "roberta":
        model = _seeded(seed, lambda: RobertaForSequenceClassification(RobertaConfig(pad_token_id=0, **bert_like)))
    elif family == "electra":
        model = _seeded(seed, lambda: ElectraForSequenceClassification(ElectraConfig(embedding_size=16,
                                                                                     **bert_like)))
    elif family == "distilbert":
        config = DistilBertConfig(dim=32, n_layers=2, n_heads=4, hidden_dim=37, max_position_embeddings=64, **common)
        model = _seeded(seed, lambda: DistilBertForSequenceClassification(config))
    else:
        config = AlbertConfig(embedding_size=16, hidden_size=32, num_hidden_layers=3, num_hidden_groups=1,
                              num_attention_heads=4, intermediate_size=37, max_position_embeddings=64, **common)
        model = _seeded(seed, lambda: AlbertForSequenceClassification(config))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    BertTokenizer(vocab=vocab, model_max_length=64).save_pretrained(folder)
    return folder


def _seeded(seed, make):
    torch.manual_seed(seed)
    return make()


@pytest.fixture(scope="module")
def family_dirs(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("families")
    return {family: str(build_family(root / family, family)) for family in FAMILIES}


@pytest.fixture(scope="module")
def family_models(family_dirs):
    return {family: load_model(path, device="cpu") for family, path in family_dirs.items()}


def warm(loaded) -> None:
    """transformers adds its own output-recording hooks on the first pass that asks for attentions."""
    inputs = loaded.tokenizer(TEXT, return_tensors="pt")
    with torch.no_grad():
        loaded.model(**inputs, output_attentions=True, output_hidden_states=True)


def hook_snapshot(model: torch.nn.Module) -> dict[str, tuple]:
    """Every module's forward (pre-)hook ids, to compare before and after a call."""
    return {
        name: (tuple(m._forward_pre_hooks), tuple(m._forward_hooks), tuple(m._backward_hooks))
        for name, m in model.named_modules()
    }


def assert_no_head_hooks(loaded, before: dict[str, tuple]) -> None:
    assert hook_snapshot(loaded.model) == before
    for site in adapter_of(loaded).sites:
        assert not site.output._forward_pre_hooks
        assert not site.output._forward_hooks


def score(inputs) -> float:
    with torch.no_grad():
        return float(explained_scores(inputs)[0])


def copy_with(loaded, edit):
    """A deep copy of a LoadedModel whose encoder is changed by `edit(encoder)`; the original is untouched."""
    clone = copy.copy(loaded)
    clone.model = copy.deepcopy(loaded.model)
    clone.lock = threading.RLock()
    edit(clone.encoder)
    return clone


def projection(encoder: torch.nn.Module, family: str, layer: int) -> torch.nn.Linear:
    module = encoder.get_submodule(OUTPUT_PROJECTION[family].format(layer))
    assert isinstance(module, torch.nn.Linear)
    return module


# ---------------------------------------------------------------- head sets


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.data())
def test_head_set_text_round_trip(n_layers, n_heads, data):
    mask = np.array(data.draw(st.lists(st.booleans(), min_size=n_layers * n_heads, max_size=n_layers * n_heads)))
    heads = HeadSet.from_mask(mask.reshape(n_layers, n_heads))
    again = HeadSet.parse(heads.format(), n_layers, n_heads)
    assert again == heads
    assert np.array_equal(again.mask(), mask.reshape(n_layers, n_heads))
    for layer in range(n_layers):
        assert (f"{layer}:*" in heads.format().split(",")) == bool(mask.reshape(n_layers, n_heads)[layer].all())


def test_head_set_parse_reads_layers_and_whitespace():
    heads = HeadSet.parse(" 1:*, 0:2,0:2 ,", 2, 3)
    assert heads.heads == ((0, 2), (1, 0), (1, 1), (1, 2))
    assert heads.format() == "0:2,1:*"
    assert HeadSet.parse("", 2, 3).format() == ""
    assert torch.equal(heads.gates(), torch.tensor([[1.0, 1.0, 0.0], [0.0, 0.0, 0.0]]))


@pytest.mark.parametrize(
    ("text", "says"),
    [("2:0", "Layer 2 does not exist"), ("0:3", "Head 3 does not exist"), ("0-1", "'0-1' is not a head"),
     ("a:b", "is not a head"), ("0:1:2", "is not a head"), ("-1:0", "is not a head"),
     ("0:1," * 100, "longer than any list")],
)
def test_head_set_parse_errors_are_one_sentence(text, says):
    with pytest.raises(InputError) as error:
        HeadSet.parse(text, 2, 3)
    message = str(error.value)
    assert says in message
    assert message.endswith(".") and message.count(". ") == 0


def test_head_set_of_another_shape_is_refused(tiny_models):
    loaded = tiny_models["classification"]
    with pytest.raises(InputError, match="this model has 2 x 4"):
        with gated(loaded, HeadSet(((0, 0),), 3, 4)):
            pass


# ---------------------------------------------------------------- hooks never leak


def test_hooks_are_gone_after_every_call(tiny_models):
    loaded = tiny_models["classification"]
    inputs = prepare_inputs(loaded, TEXT)
    full = score(inputs)
    warm(loaded)
    before = hook_snapshot(loaded.model)
    with gated(loaded, HeadSet.parse("0:*", 2, 4)):
        assert adapter_of(loaded).sites[0].output._forward_pre_hooks
        removed = score(inputs)
    assert removed != full
    assert_no_head_hooks(loaded, before)
    head_importance(loaded, inputs, mode="mean")
    pruning_curve(loaded, inputs, np.arange(8).reshape(2, 4), n_random=1, n_points=3)
    neuron_view(loaded, inputs, 1, 2, 3)
    analyze_ablated(AnalysisRequest(TEXT, model=loaded.spec, n_steps=4), loaded, HeadSet.parse("1:0", 2, 4), "mean")
    assert_no_head_hooks(loaded, before)
    assert score(inputs) == full


def test_hooks_are_gone_when_the_gated_call_raises(tiny_models):
    loaded = tiny_models["classification"]
    inputs = prepare_inputs(loaded, TEXT)
    full = score(inputs)
    warm(loaded)
    before = hook_snapshot(loaded.model)
    with pytest.raises(RuntimeError, match="stop"):
        with gated(loaded, HeadSet.parse("0:*,1:1", 2, 4)):
            score(inputs)
            raise RuntimeError("stop")
    assert_no_head_hooks(loaded, before)

    def cancel(fraction: float) -> None:
        if fraction > 0.1:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        head_importance(loaded, inputs, mode="mean", progress=cancel)
    with pytest.raises(RuntimeError, match="stop"):
        pruning_curve(loaded, inputs, np.zeros((2, 4)), n_random=2, progress=cancel)
    with pytest.raises(RuntimeError, match="stop"):
        analyze_ablated(AnalysisRequest(TEXT, model=loaded.spec, n_steps=4), loaded, HeadSet.parse("0:1", 2, 4),
                        progress=lambda stage, f: cancel(1.0) if stage == "attribution" else None)
    assert_no_head_hooks(loaded, before)
    assert not loaded.lock._is_owned()  # type: ignore[attr-defined]
    assert score(inputs) == full


def test_unablated_analysis_beside_a_gated_call_gets_its_exact_result(tiny_dirs):
    """The gated call holds the model's lock: an analysis in another thread waits for it and then runs on
    the model without gates, bit for bit as when it runs alone."""
    loaded = load_model(tiny_dirs["classification"])
    request = AnalysisRequest(TEXT, model=loaded.spec, n_steps=8)
    alone = analyze(request, loaded)
    inputs = prepare_inputs(loaded, TEXT)
    results = {}
    started = threading.Event()

    def unablated() -> None:
        started.set()
        results["beside"] = analyze(request, loaded)

    thread = threading.Thread(target=unablated)
    with gated(loaded, HeadSet.parse("0:*,1:2", 2, 4)):
        thread.start()
        started.wait()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # it cannot finish while the gates are on: it waits on the lock
        gated_score = score(inputs)
    thread.join()
    beside = results["beside"]
    assert gated_score != alone.prediction.scores[alone.prediction.explained_index]
    assert np.array_equal(beside.attribution.scores, alone.attribution.scores)
    assert np.array_equal(beside.prediction.scores, alone.prediction.scores)
    assert np.array_equal(beside.attention.weights, alone.attention.weights)


def test_ablated_and_unablated_analyses_in_two_threads_both_exact(tiny_dirs):
    loaded = load_model(tiny_dirs["classification"])
    request = AnalysisRequest(TEXT, model=loaded.spec, n_steps=8)
    heads = HeadSet.parse("0:0,0:3,1:*", 2, 4)
    alone = analyze(request, loaded)
    ablated_alone = analyze_ablated(request, loaded, heads, "mean")
    results: dict[str, list] = {"plain": [], "ablated": []}

    def run(kind: str) -> None:
        for _ in range(3):
            if kind == "plain":
                results[kind].append(analyze(request, loaded))
            else:
                results[kind].append(analyze_ablated(request, loaded, heads, "mean"))

    threads = [threading.Thread(target=run, args=(kind,)) for kind in ("plain", "ablated", "plain")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results["plain"]) == 6 and len(results["ablated"]) == 3
    for result in results["plain"]:
        assert np.array_equal(result.attribution.scores, alone.attribution.scores)
    for result in results["ablated"]:
        assert np.array_equal(result.attribution.scores, ablated_alone.attribution.scores)
    assert not np.array_equal(ablated_alone.attribution.scores, alone.attribution.scores)


# ---------------------------------------------------------------- removals against hand-built models


@pytest.mark.parametrize("family", FAMILIES)
def test_removing_a_head_whose_output_is_zero_changes_nothing(family_models, family):
    loaded = family_models[family]
    d = adapter_of(loaded).head_dim
    layer, head = (1, 2) if family != "albert" else (0, 2)

    def silence(encoder):
        with torch.no_grad():
            projection(encoder, family, layer).weight[:, head * d : (head + 1) * d] = 0

    silent = copy_with(loaded, silence)
    inputs = prepare_inputs(silent, TEXT)
    full = score(inputs)
    n_layers = adapter_of(silent).n_layers
    heads = HeadSet(((layer, head),), n_layers, 4)
    with gated(silent, heads):
        assert score(inputs) == full
    means = head_means(silent, inputs.input_ids, inputs.attention_mask, inputs.token_type_ids)
    with gated(silent, heads, "mean", means):
        assert score(inputs) == full
    for batch_size in (None, 3):
        _, effect = ablation_effect(silent, inputs, batch_size=batch_size)
        assert effect[layer, head] == 0
        assert np.count_nonzero(effect) >= effect.size - (n_layers if family == "albert" else 1)


@pytest.mark.parametrize("family", ["bert", "roberta", "electra", "distilbert"])
def test_removing_every_head_of_a_layer_equals_a_model_without_their_output(family_models, family):
    loaded = family_models[family]
    layer = 0

    def cut(encoder):
        with torch.no_grad():
            projection(encoder, family, layer).weight.zero_()

    cut_model = copy_with(loaded, cut)
    request = AnalysisRequest(TEXT, model=loaded.spec, n_steps=8)
    ablated = analyze_ablated(request, loaded, HeadSet.parse(f"{layer}:*", 2, 4))
    by_hand = analyze(request, cut_model)
    np.testing.assert_allclose(ablated.prediction.scores, by_hand.prediction.scores, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ablated.attribution.scores, by_hand.attribution.scores, rtol=1e-4, atol=1e-7)
    plain = analyze(request, loaded)
    assert np.abs(plain.prediction.scores - by_hand.prediction.scores).max() > 1e-4


def test_removing_every_albert_head_equals_its_shared_layer_without_output(family_models):
    """ALBERT runs one attention module for every layer: all of its heads, in all layers, are that module's
    output projection's inputs."""
    loaded = family_models["albert"]

    def cut(encoder):
        with torch.no_grad():
            projection(encoder, "albert", 0).weight.zero_()

    cut_model = copy_with(loaded, cut)
    inputs = prepare_inputs(loaded, TEXT, POSITIVE)
    with gated(loaded, HeadSet.parse("0:*,1:*,2:*", 3, 4)):
        ablated = score(inputs)
    assert ablated == pytest.approx(score(prepare_inputs(cut_model, TEXT, POSITIVE)), abs=1e-6)
    with gated(loaded, HeadSet.parse("0:*,2:*", 3, 4)):
        assert abs(score(inputs) - ablated) > 1e-4


def test_mean_ablation_of_a_layer_equals_a_model_whose_projection_sees_the_means(family_models):
    """Mean ablation of every head of a layer = that projection's bias absorbs W @ (mean head output),
    with the mean taken here from the self-attention module's own output."""
    loaded = family_models["bert"]
    inputs = prepare_inputs(loaded, TEXT, POSITIVE)
    captured = {}
    attention = loaded.encoder.get_submodule("encoder.layer.1.attention.self")

    def keep(module, args, out) -> None:
        captured["context"] = out[0].detach()

    handle = attention.register_forward_hook(keep)
    try:
        with torch.no_grad():
            loaded.encoder(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask)
    finally:
        handle.remove()
    mean_context = captured["context"][0].double().mean(0)

    def absorb(encoder):
        dense = projection(encoder, "bert", 1)
        with torch.no_grad():
            dense.bias += (dense.weight.double() @ mean_context).float()
            dense.weight.zero_()

    by_hand = score(prepare_inputs(copy_with(loaded, absorb), TEXT, POSITIVE))
    means = head_means(loaded, inputs.input_ids, inputs.attention_mask, inputs.token_type_ids)
    with gated(loaded, HeadSet.parse("1:*", 2, 4), "mean", means):
        assert score(inputs) == pytest.approx(by_hand, abs=1e-6)
    assert abs(score(inputs) - by_hand) > 1e-4


@pytest.mark.parametrize("family", FAMILIES)
def test_gating_a_layer_leaves_the_layers_before_it_alone(family_models, family):
    loaded = family_models[family]
    inputs = prepare_inputs(loaded, TEXT)
    n_layers = adapter_of(loaded).n_layers

    def hidden(heads: HeadSet | None) -> list[torch.Tensor]:
        kwargs = dict(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask, output_hidden_states=True)
        with torch.no_grad():
            if heads is None:
                return list(loaded.encoder(**kwargs).hidden_states)
            with gated(loaded, heads):
                return list(loaded.encoder(**kwargs).hidden_states)

    plain = hidden(None)
    for layer in range(n_layers):
        cut = hidden(HeadSet(((layer, 1),), n_layers, 4))
        for i, (a, b) in enumerate(zip(plain, cut, strict=True)):
            changed = not torch.equal(a, b)
            assert changed == (i > layer + (len(plain) - n_layers - 1)), (layer, i)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("mode", ["zero", "mean"])
def test_batched_ablation_effect_equals_one_gated_pass_per_head(family_models, family, mode):
    loaded = family_models[family]
    inputs = prepare_inputs(loaded, TEXT)
    full, effect = ablation_effect(loaded, inputs, mode)
    assert full == score(inputs)
    adapter = adapter_of(loaded)
    means = head_means(loaded, inputs.input_ids, inputs.attention_mask, inputs.token_type_ids)
    for layer in range(adapter.n_layers):
        for head in range(adapter.n_heads):
            with gated(loaded, HeadSet(((layer, head),), adapter.n_layers, adapter.n_heads), mode, means):
                one = score(inputs)
            assert effect[layer, head] == pytest.approx(one - full, abs=2e-6)
    assert np.abs(effect).max() > 1e-4
    for batch_size in (2, 3, 5, 8):  # heads of one layer split, one layer per batch, layers from 1 on
        _, smaller = ablation_effect(loaded, inputs, mode, batch_size=batch_size)
        np.testing.assert_allclose(smaller, effect, rtol=0, atol=2e-6)
    _, unshared = ablation_effect(loaded, inputs, mode, share_prefix=False, batch_size=3)
    np.testing.assert_allclose(unshared, effect, rtol=0, atol=2e-6)


# ---------------------------------------------------------------- gradient importance


@pytest.mark.parametrize("family", ["bert", "distilbert", "albert"])
def test_gradient_importance_equals_a_finite_difference_of_the_gate(family_models, family):
    """A gate g on head h multiplies that head's columns of the output projection by g; the central
    difference of the explained probability in float64 is computed from the model's own logits."""
    loaded = family_models[family]
    wide = copy_with(loaded, lambda encoder: None)
    wide.model.double()
    inputs = prepare_inputs(wide, TEXT)
    gradient = gradient_importance(wide, inputs)
    d, index = adapter_of(wide).head_dim, inputs.target.index
    eps = 1e-4
    layers = range(adapter_of(wide).n_layers)

    def probability(model, layer, head, gate) -> float:
        edited = copy.deepcopy(model)
        with torch.no_grad():
            names = [OUTPUT_PROJECTION[family].format(layer)]
            dense = edited.base_model.get_submodule(names[0])
            if family == "albert":  # one shared module: the gate applies in one layer only, so hook it here
                calls = [0]

                def scale(module, args):
                    calls[0] += 1
                    if calls[0] - 1 == layer:
                        x = args[0].clone()
                        x[..., head * d : (head + 1) * d] *= gate
                        return (x,)
                    return None

                handle = dense.register_forward_pre_hook(scale)
            else:
                dense.weight[:, head * d : (head + 1) * d] *= gate
            logits = edited(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask).logits[0]
            if family == "albert":
                handle.remove()
        return float(torch.softmax(logits.double(), -1)[index])

    expected = np.zeros_like(gradient, dtype=np.float64)
    for layer in layers:
        for head in range(4):
            up = probability(wide.model, layer, head, 1 + eps)
            down = probability(wide.model, layer, head, 1 - eps)
            expected[layer, head] = abs(up - down) / (2 * eps)
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-9)
    assert expected.max() > 1e-3


# ---------------------------------------------------------------- the record, the curve, the neuron view


def test_head_importance_record(tiny_models, family_models):
    loaded = family_models["bert"]
    inputs = prepare_inputs(loaded, TEXT)
    record = head_importance(loaded, inputs)
    assert record.gradient.shape == record.ablation_effect.shape == record.confidence.shape == (2, 4)
    assert not record.gradient.flags.writeable
    with pytest.raises(ValueError):
        record.confidence[0, 0] = 1
    assert np.all((record.confidence > 0) & (record.confidence <= 1))
    corr = record.rank_correlation
    assert np.allclose(np.diag(corr), 1) and np.allclose(corr, corr.T)

    def ranks(values):
        return np.argsort(np.argsort(values.ravel())).astype(float)

    a, b = ranks(record.gradient), ranks(np.abs(record.ablation_effect))
    assert corr[0, 1] == pytest.approx(np.corrcoef(a, b)[0, 1])
    again = head_importance_from_dict(json.loads(json.dumps(to_jsonable(record))))
    assert np.array_equal(again.gradient, record.gradient) and again.description == record.description
    assert record.score == pytest.approx(score(inputs))


def test_head_importance_of_every_target_kind(tiny_models):
    for head, target in [("masked_lm", TargetSpec("masked_token")), ("encoder", TargetSpec("zero_shot")),
                         ("encoder", TargetSpec("similarity", reference="a good film"))]:
        loaded = tiny_models[head]
        text = "the film was [MASK] ." if head == "masked_lm" else TEXT
        inputs = prepare_inputs(loaded, text, target)
        record = head_importance(loaded, inputs)
        assert np.isfinite(record.gradient).all() and np.isfinite(record.ablation_effect).all()
        assert record.score == pytest.approx(score(inputs))


def test_pruning_curve_points_are_gated_scores(family_models):
    loaded = family_models["bert"]
    inputs = prepare_inputs(loaded, TEXT)
    importance = np.arange(8, dtype=float)[::-1].reshape(2, 4)
    curve = pruning_curve(loaded, inputs, importance, n_random=2, seed=5)
    assert list(curve.removed) == list(range(9))
    assert curve.head_order.tolist()[:2] == [[1, 3], [1, 2]]  # least important first
    assert curve.scores[0] == pytest.approx(score(inputs), abs=2e-6)
    for k in (3, 8):
        heads = HeadSet(tuple(map(tuple, curve.head_order[:k].tolist())), 2, 4)
        with gated(loaded, heads):
            assert curve.scores[k] == pytest.approx(score(inputs), abs=2e-6)
    assert np.allclose(curve.random_scores[:, -1], curve.scores[-1], atol=2e-6)
    assert curve.random_scores.shape == (2, 9) and curve.seeds == (5, 6)
    again = pruning_curve(loaded, inputs, importance, n_random=2, seed=5, order="most", n_points=3)
    assert list(again.removed) == [0, 4, 8]
    assert np.allclose(again.random_scores, curve.random_scores[:, [0, 4, 8]], atol=2e-7)
    with pytest.raises(InputError, match="random orders"):
        pruning_curve(loaded, inputs, importance, n_random=0)


@pytest.mark.parametrize("family", FAMILIES)
def test_neuron_view_row_is_the_models_attention_row(family_models, family):
    loaded = family_models[family]
    inputs = prepare_inputs(loaded, TEXT)
    with torch.no_grad():
        out = loaded.encoder(input_ids=inputs.input_ids, attention_mask=inputs.attention_mask,
                             output_attentions=True)
    n_layers = adapter_of(loaded).n_layers
    for layer in range(n_layers):
        for head, token in [(0, 0), (3, 4), (layer % 4, inputs.n_tokens - 1)]:
            view = neuron_view(loaded, inputs, layer, head, token)
            row = out.attentions[layer][0, head, token].double().numpy()
            np.testing.assert_allclose(view.attention, row, rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(view.products.sum(-1) * view.scaling, view.scores, rtol=1e-5, atol=1e-6)
            assert view.keys.shape == (inputs.n_tokens, 8) and view.query.shape == (8,)
            assert view.tokens == inputs.tokens
    with pytest.raises(InputError, match="Token 99 does not exist"):
        neuron_view(loaded, inputs, 0, 0, 99)
