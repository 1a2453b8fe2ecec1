"""How much model arithmetic a corpus batch does, counted with a forward hook on a tiny real model: the prediction
pass is also the gradient pass (gradient x input is one forward and one backward pass per group of texts), the score
at the baseline goes through the model only where a method's output needs it, adaptive integrated gradients
evaluates each point once, texts share passes at the least work (fixed work per pass against padding) and
integration steps carry little padding."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from explain.corpus.batch import GROUP_TOKEN_BUDGET, BatchRunner
from explain.corpus.batched import PADDING_SHARE, PASS_TOKENS, cheapest_spans
from explain.corpus.packed import PACKED_PAD_COST, packed_layers
from explain.corpus.readers import CorpusRow
from explain.corpus.request import CorpusJob
from explain.methods import get_method
from explain.methods.base import method_settings
from explain.pipeline import attribution_context

WORDS = "the film was good but the service was too slow and the food was bad".split()
# 1 to 15 words: lengths far apart, so that one padded pass for all would be mostly padding.
TEXTS = [" ".join(WORDS[:n]) for n in (1, 2, 3, 5, 8, 12, 15, 15, 4, 9)]


@contextmanager
def passes(model: torch.nn.Module) -> Iterator[list[dict[str, int | bool]]]:
    """Each forward call of `model` while inside: rows, padded width, real tokens, and whether it records a graph."""
    calls: list[dict[str, int | bool]] = []

    def hook(module: torch.nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        mask = kwargs["attention_mask"]
        calls.append({"rows": int(mask.shape[0]), "width": int(mask.shape[1]), "real": int(mask.sum()),
                      "grad": torch.is_grad_enabled()})

    handle = model.register_forward_hook(hook, with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def run_batch(loaded, methods: tuple[str, ...]):
    job = CorpusJob(source="unused.csv", model="tiny", methods=methods)
    rows = [CorpusRow(row=i + 1, id=f"t{i}", text=text) for i, text in enumerate(TEXTS)]
    runner = BatchRunner(job, loaded, streams=1)  # passes one after another, in order (two at once: test_corpus_streams)
    with passes(loaded.model) as calls:
        tables = runner.process(rows, 0)
    return job, calls, tables["texts"].to_pandas().set_index("text_id")


def per_text(loaded, job: CorpusJob, name: str):
    out = []
    with loaded.lock:
        for i, text in enumerate(TEXTS):
            request = job.request(CorpusRow(row=i + 1, id=f"t{i}", text=text))
            out.append(get_method(name).attribute(attribution_context(request, loaded), method_settings(request, name)))
    return out


@pytest.mark.parametrize("name", ["gradient_x_input", "saliency"])
def test_a_gradient_at_the_input_is_one_pass_per_group_that_also_predicts(tiny_models, name):
    loaded = tiny_models["classification"]
    job, calls, texts = run_batch(loaded, (name,))
    assert sum(c["rows"] for c in calls) == len(TEXTS)  # one row per text: no separate prediction or endpoint rows
    assert all(c["grad"] for c in calls)  # every pass is a gradient pass
    assert len(calls) < len(TEXTS)  # texts share passes
    expected = per_text(loaded, job, name)
    for i, alone in enumerate(expected):
        row = texts.loc[f"t{i}"]
        assert row.explained_score == pytest.approx(alone.score_input, abs=1e-6)
        assert np.isnan(row.baseline_score) and np.isnan(row.delta)  # no completeness: no baseline score, no delta


def test_default_integrated_gradients_evaluates_each_point_once(tiny_roberta):
    loaded = tiny_roberta["classification"]
    job, calls, texts = run_batch(loaded, ("integrated_gradients",))
    expected = per_text(loaded, job, "integrated_gradients")
    assert all(c["grad"] for c in calls)  # the prediction pass is the alpha = 1 point; no endpoint pass
    assert sum(c["rows"] for c in calls) == sum(alone.quadrature.evaluations for alone in expected)
    for i, alone in enumerate(expected):
        row = texts.loc[f"t{i}"]
        assert row.explained_score == pytest.approx(alone.score_input, abs=1e-6)
        assert row.baseline_score == pytest.approx(alone.score_baseline, abs=1e-6)
        assert row.delta == pytest.approx(alone.delta, abs=1e-4 * abs(alone.score_input - alone.score_baseline) + 1e-7)


def test_gradient_x_input_reports_the_baseline_score_another_method_needed(tiny_models):
    loaded = tiny_models["classification"]
    job, calls, texts = run_batch(loaded, ("gradient_x_input", "integrated_gradients"))
    expected = per_text(loaded, job, "integrated_gradients")
    for i, alone in enumerate(expected):
        assert texts.loc[f"t{i}"].baseline_score == pytest.approx(alone.score_baseline, abs=1e-6)


def prediction_passes(loaded) -> list[tuple[int, int]]:
    """(texts, padded width) of each group's prediction pass: the least-work split of the sorted lengths."""
    with loaded.lock:
        lengths = sorted(attribution_context(CorpusJob(source="unused.csv", model="tiny").request(
            CorpusRow(row=1, id="t", text=text)), loaded).n_tokens for text in TEXTS)
    pad_cost = PACKED_PAD_COST if packed_layers(loaded) is not None else 1.0
    budget = GROUP_TOKEN_BUDGET * 768 / loaded.config.hidden_size
    return [(b - a, lengths[b - 1]) for a, b in cheapest_spans(lengths, budget, PASS_TOKENS / pad_cost)]


@pytest.mark.parametrize("name", ["gradient_x_input", "integrated_gradients"])
def test_texts_share_passes_at_the_least_work_and_steps_carry_little_padding(tiny_models, name):
    loaded = tiny_models["classification"]
    _, calls, _ = run_batch(loaded, (name,))
    groups = prediction_passes(loaded)
    assert len(groups) < len(TEXTS)  # texts share passes
    if name == "gradient_x_input":
        assert [(c["rows"], c["width"]) for c in calls] == groups
    for call in calls:
        padded = call["rows"] * call["width"]
        little = call["rows"] == 1 or padded - call["real"] <= PADDING_SHARE * padded
        assert little or (call["rows"], call["width"]) in groups, call


def brute_force(lengths: list[int], budget: float, pass_tokens: float, most: int) -> float:
    """The least work (passes x pass_tokens + padded tokens) over every split into runs that keep the limits."""
    n = len(lengths)
    best = [0.0] + [np.inf] * n
    for end in range(1, n + 1):
        for a in range(end):
            tokens = (end - a) * max(lengths[a:end])
            if end - a <= most and (tokens <= budget or end - a == 1):
                best[end] = min(best[end], best[a] + pass_tokens + tokens)
    return best[n]


@pytest.mark.parametrize("seed", range(20))
def test_cheapest_spans_find_the_least_work_within_the_limits(seed):
    rng = np.random.default_rng(seed)
    lengths = sorted(rng.integers(1, 40, size=int(rng.integers(1, 14))).tolist())
    budget, pass_tokens, most = float(rng.integers(30, 200)), float(rng.integers(0, 80)), int(rng.integers(1, 6))
    found = cheapest_spans(lengths, budget, pass_tokens, most)
    assert [a for a, _ in found] == [0, *[b for _, b in found[:-1]]] and found[-1][1] == len(lengths)
    for a, b in found:
        assert b - a <= most and ((b - a) * max(lengths[a:b]) <= budget or b - a == 1)
    work = sum(pass_tokens + (b - a) * max(lengths[a:b]) for a, b in found)
    assert work == pytest.approx(brute_force(lengths, budget, pass_tokens, most))


def test_a_length_over_the_budget_gets_a_pass_of_its_own():
    assert cheapest_spans([3, 3, 50, 60], 40, 100) == [(0, 2), (2, 3), (3, 4)]
