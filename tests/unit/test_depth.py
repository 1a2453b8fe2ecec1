"""Embedding-part and layer-wise attributions (explain.depth) on tiny random models: completeness,
agreement with integrated gradients written here in plain torch, structure the models force, and the JSON."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from explain.depth import embedding_parts, encoder_layers, layer_attribution
from explain.errors import SchemaError
from explain.exports import depth_csv
from explain.methods.quadrature import integrated_gradients
from explain.pipeline import analyze, with_depth
from explain.records import Analysis, AnalysisRequest, EmbeddingParts, LayerAttribution, TargetSpec
from testkit.contexts import build_context
from testkit.tiny_models import WORDS

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "schema_v1"
TEXT = "the film was good but too long ."
STEPS = 32
TARGETS = {
    "class": ("classification", TEXT, TargetSpec("class", label="positive")),
    "masked_token": ("masked_lm", "the film was [MASK] but too long .", TargetSpec("masked_token", label="good")),
    "zero_shot": ("encoder", TEXT, TargetSpec("zero_shot", label="positive")),
    "similarity": ("encoder", TEXT, TargetSpec("similarity", reference="the food was bad")),
}


def assert_complete(scores: np.ndarray, score_input: float, score_baseline: float, rtol: float = 1e-3) -> None:
    """The scores add up to the score change, within `rtol` of it or the float32 rounding of the two scores."""
    change = score_input - score_baseline
    rounding = 4 * float(np.spacing(np.float32(max(abs(score_input), abs(score_baseline)))))
    gap = float(np.sum(scores, dtype=np.float64)) - change
    assert abs(gap) <= max(rtol * abs(change), rounding), f"gap {gap:.3g} for a change of {change:.3g}"


@pytest.fixture(scope="module")
def contexts(tiny_models):
    return {kind: build_context(tiny_models[head], text, spec) for kind, (head, text, spec) in TARGETS.items()}


def main_ig(context, n_steps: int = STEPS):
    return integrated_gradients(context.target, context.input_ids, context.attention_mask, context.special,
                                token_type_ids=context.token_type_ids, position_ids=context.position_ids,
                                n_steps=n_steps, baseline=context.baseline)


# ---------------------------------------------------------------- embedding parts


@pytest.mark.parametrize("kind", list(TARGETS))
def test_parts_add_up_to_the_score_change_of_the_same_explained_score(contexts, kind):
    context = contexts[kind]
    parts = embedding_parts(context, STEPS)
    assert parts.parts == ("token", "position", "segment")
    assert parts.scores.shape == (3, context.n_tokens) and parts.scores.dtype == np.float32
    assert_complete(parts.scores, parts.score_input, parts.score_baseline)
    assert parts.delta == pytest.approx(float(parts.scores.astype(np.float64).sum())
                                        - (parts.score_input - parts.score_baseline), abs=1e-6)
    # the hooked forward is the function the app explains: same score at the input as the main attribution
    assert parts.score_input == pytest.approx(main_ig(context, 4).score_input, rel=1e-5, abs=1e-7)


def test_the_token_part_of_kept_tokens_is_zero(contexts):
    context = contexts["masked_token"]
    parts = embedding_parts(context, STEPS)
    kept = context.special[0].cpu().numpy() | (context.input_ids[0] == context.target.loaded.tokenizer.mask_token_id
                                               ).cpu().numpy()
    assert kept.sum() == 3
    np.testing.assert_array_equal(parts.scores[0][kept], 0.0)
    assert np.abs(parts.scores[1][kept]).max() > 0  # their positions still count


def path_integral_by_hand(context, n_points: int = 200) -> np.ndarray:
    """[3, tokens]: a midpoint Riemann sum of IG along the joint straight path, in plain torch.

    Independent of the library's hooks: the embeddings module's whole output is replaced by
    LayerNorm(token + position + segment) built here, and the three tensors are differentiated directly.
    """
    loaded = context.target.loaded
    embeddings = loaded.encoder.embeddings
    ids, n = context.input_ids, context.n_tokens
    positions = context.position_ids
    types = torch.zeros_like(ids) if context.token_type_ids is None else context.token_type_ids
    with torch.no_grad():
        x = (embeddings.word_embeddings(ids), embeddings.position_embeddings(positions),
             embeddings.token_type_embeddings(types))
        pad = torch.where(context.special, ids, torch.full_like(ids, loaded.tokenizer.pad_token_id))
        b = (embeddings.word_embeddings(pad),
             embeddings.position_embeddings.weight.mean(0).expand(1, n, -1),
             embeddings.token_type_embeddings.weight.mean(0).expand(1, n, -1))
    total = torch.zeros(3, n, dtype=torch.float64, device=ids.device)
    for alpha in (np.arange(n_points) + 0.5) / n_points:
        point = [(bi + float(alpha) * (xi - bi)).requires_grad_(True) for xi, bi in zip(x, b)]
        replaced = embeddings.dropout(embeddings.LayerNorm(point[0] + point[1] + point[2]))
        handle = embeddings.register_forward_hook(lambda _m, _i, _o, out=replaced: out)
        try:
            with torch.enable_grad():
                score = context.target.forward_embeddings(x[0], context.attention_mask, context.token_type_ids,
                                                          position_ids=positions)[0, context.target.index]
                grads = torch.autograd.grad(score, point)
        finally:
            handle.remove()
        for k in range(3):
            total[k] += ((x[k] - b[k])[0].double() * grads[k][0].double()).sum(-1) / n_points
    return total.cpu().numpy()


def test_parts_agree_with_a_riemann_sum_written_in_torch(contexts):
    context = contexts["class"]
    parts = embedding_parts(context, 64)
    by_hand = path_integral_by_hand(context)
    scale = float(np.abs(by_hand).max())
    np.testing.assert_allclose(parts.scores, by_hand, atol=2e-3 * scale)
    assert np.abs(by_hand[1]).max() > 0.05 * scale  # the position row is not trivially zero


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=st.lists(st.sampled_from([w for w in WORDS if w.isalpha()]), min_size=1, max_size=12))
def test_parts_are_complete_on_any_text(tiny_models, words):
    context = build_context(tiny_models["classification"], " ".join(words), TargetSpec("class", label="neutral"))
    parts = embedding_parts(context, STEPS)
    assert_complete(parts.scores, parts.score_input, parts.score_baseline)


def test_roberta_positions_that_skip_padding_explain_the_same_score(tiny_roberta):
    context = build_context(tiny_roberta["classification"], "the film was good", TargetSpec("class", label="positive"))
    assert int(context.position_ids[0, 0]) == 2  # fairseq's rule: the padding index + 1
    parts = embedding_parts(context, STEPS)
    assert parts.parts == ("token", "position", "segment")
    assert_complete(parts.scores, parts.score_input, parts.score_baseline)
    assert parts.score_input == pytest.approx(main_ig(context, 4).score_input, rel=1e-5)


# ---------------------------------------------------------------- layer-wise


@pytest.mark.parametrize("kind", list(TARGETS))
def test_every_layer_row_adds_up_to_the_main_score_change(contexts, kind):
    context = contexts[kind]
    layers = layer_attribution(context, STEPS)
    ig = main_ig(context)
    assert layers.scores.shape == (2, context.n_tokens)
    assert (layers.score_input, layers.score_baseline) == pytest.approx((ig.score_input, ig.score_baseline))
    for row, delta in zip(layers.scores, layers.delta):
        assert_complete(row, layers.score_input, layers.score_baseline)
        assert delta == pytest.approx(float(row.astype(np.float64).sum()) - (ig.score_input - ig.score_baseline),
                                      abs=1e-6)


def test_the_last_layer_credits_only_what_the_head_reads(contexts):
    cls = layer_attribution(contexts["class"], STEPS)  # BERT's classifier reads [CLS] through the pooler
    np.testing.assert_array_equal(cls.scores[-1][1:], 0.0)
    assert cls.scores[-1][0] != 0
    masked = contexts["masked_token"]
    mlm = layer_attribution(masked, STEPS)  # the masked-LM head reads the [MASK] position only
    others = np.arange(masked.n_tokens) != masked.target.mask_position
    np.testing.assert_array_equal(mlm.scores[-1][others], 0.0)
    assert np.abs(mlm.scores[0][others]).max() > 0  # lower down, the other tokens still carry it


def test_one_layer_agrees_with_a_riemann_sum_written_in_torch(contexts):
    context = contexts["zero_shot"]
    first = encoder_layers(context.target.loaded)[0]
    extra = context.model_inputs(1)

    def run(embeds):
        return context.target.forward_embeddings(embeds, context.attention_mask, extra.get("token_type_ids"),
                                                 position_ids=extra["position_ids"])[0, context.target.index]

    seen = []
    handle = first.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
    with torch.no_grad():
        run(context.embeddings()), run(context.baseline_embeddings())
    handle.remove()
    x, b = seen
    total = torch.zeros(context.n_tokens, dtype=torch.float64)
    n_points = 200
    for alpha in (np.arange(n_points) + 0.5) / n_points:
        point = (b + float(alpha) * (x - b)).requires_grad_(True)
        handle = first.register_forward_hook(lambda _m, _i, _o, out=point: out)
        try:
            with torch.enable_grad():
                (grad,) = torch.autograd.grad(run(context.embeddings()), point)
        finally:
            handle.remove()
        total += ((x - b) * grad)[0].double().sum(-1).cpu() / n_points
    layers = layer_attribution(context, 64)
    scale = float(total.abs().max())
    np.testing.assert_allclose(layers.scores[0], total.numpy(), atol=2e-3 * scale)


# ---------------------------------------------------------------- records, JSON, pipeline


def test_records_are_read_only():
    parts = EmbeddingParts(parts=("token",), scores=np.zeros((1, 3)), score_input=1.0, score_baseline=0.0,
                           delta=0.0, n_steps=4)
    assert parts.scores.dtype == np.float32
    with pytest.raises(ValueError):
        parts.scores[0, 0] = 1.0
    layers = LayerAttribution(scores=np.zeros((2, 3)), delta=np.zeros(2), score_input=1.0, score_baseline=0.0,
                              n_steps=4)
    with pytest.raises(ValueError):
        layers.delta[0] = 1.0


@pytest.fixture(scope="module")
def deep(tiny_models):
    loaded = tiny_models["classification"]
    analysis = analyze(AnalysisRequest(TEXT, model=loaded.spec, n_steps=16), loaded)
    return loaded, analysis, with_depth(loaded, analysis, n_steps=16)


def test_with_depth_computes_lazily_what_is_missing(deep):
    loaded, plain, full = deep
    assert plain.embedding_parts is None and plain.layer_attribution is None
    assert full.embedding_parts is not None and full.layer_attribution is not None
    assert with_depth(loaded, full) is full
    only_layers = with_depth(loaded, replace(full, layer_attribution=None), parts=False, layers=True, n_steps=4)
    assert only_layers.embedding_parts is full.embedding_parts and only_layers.layer_attribution.n_steps == 4
    assert full.layer_attribution.score_input == pytest.approx(plain.attribution.score_input, rel=1e-6)
    stages = []
    with_depth(loaded, plain, n_steps=4, progress=lambda stage, fraction: stages.append((stage, fraction)))
    assert {"embedding parts", "layers"} <= {s for s, _ in stages} and stages[-1] == ("done", 1.0)


def test_depth_goes_through_the_json_and_back(deep):
    _, plain, full = deep
    again = Analysis.from_json(full.to_json())
    for name in ("parts", "scores", "score_input", "score_baseline", "delta", "n_steps", "baseline", "seconds"):
        np.testing.assert_array_equal(getattr(again.embedding_parts, name), getattr(full.embedding_parts, name))
    np.testing.assert_array_equal(again.layer_attribution.scores, full.layer_attribution.scores)
    np.testing.assert_array_equal(again.layer_attribution.delta, full.layer_attribution.delta)
    assert again.to_json() == full.to_json()
    data = json.loads(plain.to_json())  # without them, an analysis writes exactly what it wrote before
    assert "embedding_parts" not in data and "layer_attribution" not in data


@pytest.mark.parametrize("damage, message", [
    (lambda d: d["embedding_parts"].update(parts=["token", "colour", "segment"]), "embedding_parts.parts"),
    (lambda d: d["embedding_parts"]["scores"].update(shape=[2, 3]), "embedding_parts.scores.shape"),
    (lambda d: d["layer_attribution"]["delta"].update(shape=[7]), "layer_attribution.delta.shape"),
    (lambda d: d["layer_attribution"].pop("n_steps"), "layer_attribution.n_steps is missing"),
])
def test_damaged_depth_records_are_refused_by_name(deep, damage, message):
    data = json.loads(deep[2].to_json())
    damage(data)
    with pytest.raises(SchemaError, match=message.replace(".", r"\.")):
        Analysis.from_json(json.dumps(data))


def test_schema_1_files_read_without_depth():
    for name in ("analysis_v1.json",):
        analysis = Analysis.from_json((FIXTURES / name).read_text())
        assert analysis.embedding_parts is None and analysis.layer_attribution is None
        assert "embedding_parts" not in json.loads(analysis.to_json())


def test_the_csv_holds_every_part_and_layer_of_every_token(deep):
    full = deep[2]
    rows = list(csv.reader(io.StringIO(depth_csv(full))))
    assert rows[0] == ["token", "start", "end", "special", "token_part", "position_part", "segment_part", "layer_1",
                       "layer_2"]
    assert [r[0] for r in rows[1:]] == full.tokens.tokens
    values = np.array([[float(v) for v in r[4:]] for r in rows[1:]], dtype=np.float32)
    np.testing.assert_array_equal(values[:, :3], full.embedding_parts.scores.T)
    np.testing.assert_array_equal(values[:, 3:], full.layer_attribution.scores.T)
    assert depth_csv(deep[1]).splitlines()[0] == "token,start,end,special"


def test_the_work_budget_counts_every_layer_and_refuses_too_much(deep):
    from explain.depth import check_depth_budget
    from explain.scheduling import WorkBudget, WorkBudgetError, estimate_work

    loaded, plain, _ = deep
    work = check_depth_budget(plain, loaded.config)
    assert work == pytest.approx(3 * estimate_work(plain.request, loaded.config, len(plain.tokens)))  # 2 layers + 1
    with pytest.raises(WorkBudgetError, match="Splitting the score over the embeddings and the 2 layers"):
        check_depth_budget(plain, loaded.config, WorkBudget(max_work=work / 2))
