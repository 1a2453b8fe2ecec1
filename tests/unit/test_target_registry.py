"""Contract tests over the target registry: every declared kind, on a tiny model of every head it fits."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explain.errors import InputError
from explain.models import HEAD_ARCHITECTURES, HEAD_TARGETS
from explain.pipeline import attribution_context
from explain.records import AnalysisRequest, TargetSpec
from explain.targets import TARGETS, kinds_for_head

TEXTS = {"": "the film was good but too long .", "pair": "it was a bad movie .", "question": "what was the film ?"}
ALL_HEADS = {head for _, head in HEAD_ARCHITECTURES} | {"encoder"}
SPEC_FOR = {
    "masked_token": TargetSpec("masked_token"),
    "zero_shot": TargetSpec("zero_shot", labels=("good", "bad")),
    "similarity": TargetSpec("similarity", reference="a fine film ."),
}
CASES = [(kind, head) for kind in TARGETS for head in TARGETS[kind].heads]


@pytest.fixture(scope="module")
def models(tiny_models, task_models):
    return {**tiny_models, **task_models}


def request_for(kind: str, head: str, loaded) -> AnalysisRequest:
    text = "the film was [MASK] but too long ." if kind == "masked_token" else TEXTS[""]
    needs = TARGETS[kind].needs
    return AnalysisRequest(text, model=loaded.spec, target=SPEC_FOR.get(kind, TargetSpec(kind)),
                           pair=TEXTS["pair"] if needs == "pair" else "",
                           question=TEXTS["question"] if needs == "question" else "")


def test_every_head_has_exactly_one_default_kind_listed_first():
    for head in ALL_HEADS:
        kinds = kinds_for_head(head)
        assert kinds, head
        defaults = [k for k in kinds if head in TARGETS[k].default_for]
        assert defaults == [kinds[0]], (head, kinds)
    assert set(HEAD_TARGETS) == ALL_HEADS


def test_declarations_are_consistent():
    fields = set(TargetSpec.__dataclass_fields__) - {"kind"}
    for kind in TARGETS.values():
        assert set(kind.reads) <= fields, kind.name
        assert set(kind.default_for) <= set(kind.heads), kind.name
        assert kind.needs in ("", "pair", "question"), kind.name
        assert kind.title and kind.summary.endswith("."), kind.name


@pytest.mark.parametrize("kind,head", CASES, ids=[f"{k}-{h}" for k, h in CASES])
def test_scoring_many_variants_in_one_pass_equals_scoring_each_alone(models, kind, head):
    """The batched primitive of perturbation methods: a batch of variants scores as each variant alone."""
    loaded = models["multi_label" if head == "classification" and kind == "class" else head]
    context = attribution_context(request_for(kind, head, loaded), loaded)
    embeds = context.embeddings()
    generator = torch.Generator().manual_seed(0)
    variants = embeds.repeat(4, 1, 1) + 0.3 * torch.randn(4, *embeds.shape[1:], generator=generator)
    with torch.no_grad():
        together = context.forward(variants)[:, context.target.index]
        alone = torch.cat([context.forward(v.unsqueeze(0))[:, context.target.index] for v in variants])
    assert together.shape == (4,)
    np.testing.assert_allclose(together.numpy(), alone.numpy(), rtol=1e-4, atol=1e-5)
    assert len(set(np.round(together.numpy(), 6))) > 1  # the variants differ, so the check can fail


@pytest.mark.parametrize("kind,head", CASES, ids=[f"{k}-{h}" for k, h in CASES])
def test_the_explained_index_is_the_requested_label_or_the_top_one(models, kind, head):
    loaded = models[head]
    context = attribution_context(request_for(kind, head, loaded), loaded)
    with torch.no_grad():
        scores = context.forward(context.embeddings())[0]
    target = context.target
    assert 0 <= target.index < len(target.labels) == scores.shape[-1]
    if kind not in ("answer", "similarity"):
        assert target.index == int(scores.argmax())


@pytest.mark.parametrize("kind", [k for k in TARGETS if TARGETS[k].needs])
def test_a_kind_that_needs_a_second_text_says_so_in_one_sentence(models, kind):
    head = TARGETS[kind].heads[0]
    loaded = models[head]
    request = AnalysisRequest(TEXTS[""], model=loaded.spec, target=TargetSpec(kind))
    with pytest.raises(InputError) as err:
        attribution_context(request, loaded)
    message = str(err.value)
    assert "\n" not in message and message.endswith(".") and TARGETS[kind].needs in message.replace("second", "pair")
