"""NAOPC (Edin et al. 2025): the AOPC limits against brute force over every order, on the tiny model's scores."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from explain.errors import InputError
from explain.evaluation import evaluate, evaluate_context
from explain.evaluation.naopc import (
    NAOPCSettings,
    aopc_limits,
    beam_limits,
    exact_limits,
    limit_variants,
    order_aopc,
)
from explain.methods import get_method, word_scorer
from testkit.contexts import build_context

TEXTS = ("good film", "the film was good", "a slow , dull film", "the film was good but too long")


def brute_force(score, n_words: int) -> tuple[float, float]:
    """max and min over all W! orders of mean_k [p(x) - p(x without the first k words)], each order on its own."""
    full = float(score(np.ones((1, n_words), dtype=bool))[0])
    values = []
    for order in itertools.permutations(range(n_words)):
        keep = np.ones((n_words, n_words), dtype=bool)
        for k in range(n_words):
            keep[k:, order[k]] = False
        values.append(float(np.mean(full - score(keep))))
    return max(values), min(values)


@pytest.fixture(scope="module")
def contexts(tiny_models):
    return [build_context(tiny_models["classification"], text) for text in TEXTS]


@pytest.mark.parametrize("index", range(len(TEXTS)))
def test_exact_limits_are_the_best_and_worst_of_every_order(contexts, index):
    context = contexts[index]
    assert context.n_words <= 7
    score = word_scorer(context, "replace")
    upper, lower = brute_force(score, context.n_words)
    limits = exact_limits(score, context.n_words)
    assert limits.search == "exact" and limits.n_variants == 2**context.n_words
    assert limits.upper == pytest.approx(upper, abs=1e-12)
    assert limits.lower == pytest.approx(lower, abs=1e-12)
    # the orders it names reach the limits, so NAOPC of the best order is 1 and of the worst is 0
    assert limits.normalise(order_aopc(limits.best_order, score, context.n_words)) == pytest.approx(1.0, abs=1e-9)
    assert limits.normalise(order_aopc(limits.worst_order, score, context.n_words)) == pytest.approx(0.0, abs=1e-9)
    assert sorted(limits.best_order) == sorted(limits.worst_order) == list(range(context.n_words))


def test_the_limits_on_a_seven_word_text_with_removal(tiny_models):
    context = build_context(tiny_models["classification"], "the film was good but too long")
    assert context.n_words == 7
    score = word_scorer(context, "remove")
    upper, lower = brute_force(score, 7)
    limits = exact_limits(score, 7)
    assert (limits.upper, limits.lower) == (pytest.approx(upper, abs=1e-12), pytest.approx(lower, abs=1e-12))
    assert upper > lower


def test_the_beam_stays_inside_the_exact_limits_and_a_wide_beam_finds_them(contexts):
    context = contexts[-1]
    score = word_scorer(context, "replace")
    exact = exact_limits(score, context.n_words)
    for width in (1, 2, 5):
        beam = beam_limits(score, context.n_words, width)
        assert beam.search == "beam" and beam.beam_width == width
        assert exact.lower - 1e-12 <= beam.lower <= beam.upper <= exact.upper + 1e-12
        assert beam.n_variants <= limit_variants(context.n_words, NAOPCSettings(exact_max_words=1, beam_width=width))
        assert beam.normalise(order_aopc(beam.best_order, score, context.n_words)) == pytest.approx(1.0)
    wide = beam_limits(score, context.n_words, 5040)
    assert wide.upper == pytest.approx(exact.upper, abs=1e-12) and wide.lower == pytest.approx(exact.lower, abs=1e-12)


def test_the_search_follows_the_word_limit(contexts):
    context = contexts[-1]
    score = word_scorer(context, "replace")
    assert aopc_limits(score, context.n_words).search == "exact"
    assert aopc_limits(score, context.n_words, NAOPCSettings(exact_max_words=6)).search == "beam"
    assert limit_variants(12) == 4096
    with pytest.raises(InputError, match="beam width"):
        NAOPCSettings(beam_width=0).checked()


def test_an_additive_score_has_its_limits_by_hand():
    """For p(keep) = sum of kept weights, removing the largest weights first is best: by hand for 3 words."""
    weights = np.array([0.5, -0.2, 0.1])

    def score(keep):
        return keep.astype(np.float64) @ weights

    limits = exact_limits(score, 3)
    assert limits.best_order == (0, 2, 1)
    assert limits.upper == pytest.approx((0.5 + 0.6 + 0.4) / 3)
    assert limits.worst_order == (1, 2, 0)
    assert limits.lower == pytest.approx((-0.2 - 0.1 + 0.4) / 3)


def test_faithfulness_reads_every_ranking_against_the_limits(contexts):
    context = contexts[-1]
    scores = {name: get_method(name).attribute(context).word_scores for name in ("gradient_x_input", "occlusion")}
    report = evaluate_context(context, scores, naopc=NAOPCSettings(), n_random=6)
    limits = report.limits
    assert limits is not None and limits.search == "exact"
    score = word_scorer(context, "replace")
    for name, result in report.methods.items():
        order = np.argsort(-scores[name], kind="stable")
        assert result.aopc == pytest.approx(order_aopc(order, score, context.n_words), abs=1e-12)
        assert result.naopc == pytest.approx((result.aopc - limits.lower) / (limits.upper - limits.lower))
        assert 0.0 <= result.naopc <= 1.0
    floor = report.random_floor
    assert floor.naopc_mean is not None and floor.naopc_std is not None and floor.aopc_mean is not None
    assert 0.0 <= floor.naopc_mean <= 1.0 and floor.naopc_std > 0 and math.isfinite(floor.aopc_mean)
    assert report.n_variants == 2**context.n_words  # every input faithfulness scores is one of the subsets


def test_above_the_exact_limit_the_beam_is_widened_by_the_rankings_it_missed():
    """An additive score where a greedy beam of one stays inside what the methods' own orders reach."""
    weights = np.array([0.5, -0.2, 0.1, 0.3, 0.0, 0.05, -0.1, 0.2, 0.15, -0.05])
    calls = []

    def score(keep):
        calls.append(len(keep))
        return keep.astype(np.float64) @ weights

    report = evaluate({"true": weights, "reversed": -weights}, score, n_random=4,
                      naopc=NAOPCSettings(exact_max_words=4, beam_width=1))
    limits = report.limits
    assert limits is not None and limits.search == "beam" and limits.beam_width == 1
    assert report.methods["true"].naopc == pytest.approx(1.0)  # the exact contributions give the best order
    assert report.methods["reversed"].naopc == pytest.approx(0.0)
    assert len(calls) > 1 and report.n_variants == sum(calls)  # no input scored twice


def test_analyses_saved_before_naopc_still_open(tiny_models, tiny_dirs):
    """A document written before NAOPC (no aopc / naopc / limits fields) decodes, with those fields empty."""
    from explain import Analysis, AnalysisRequest
    from explain.pipeline import analyze, with_methods
    from explain.records import to_jsonable

    loaded = tiny_models["classification"]
    analysis = analyze(AnalysisRequest("the film was good", model=loaded.spec, max_tokens=loaded.max_tokens), loaded)
    analysis = with_methods(analysis, loaded, ["occlusion"], faithfulness=True)
    assert analysis.faithfulness is not None and analysis.faithfulness.aopc_limits == "exact"
    assert 0.0 <= analysis.methods["occlusion"].naopc <= 1.0
    again = Analysis.from_json(analysis.to_json())
    assert again.methods["occlusion"].naopc == analysis.methods["occlusion"].naopc
    assert again.faithfulness == analysis.faithfulness
    data = to_jsonable(analysis)
    new = ("aopc_upper", "aopc_lower", "aopc_limits", "beam_width", "random_aopc", "random_aopc_std", "random_naopc",
           "random_naopc_std", "naopc_note")
    for key in new:
        del data["faithfulness"][key]
    for result in data["methods"].values():
        del result["aopc"], result["naopc"]
    old = Analysis.from_json(json.dumps(data))
    assert old.faithfulness is not None and old.faithfulness.aopc_limits == ""
    assert math.isnan(old.methods["occlusion"].naopc) and math.isnan(old.faithfulness.random_naopc)
    assert old.methods["occlusion"].comprehensiveness == analysis.methods["occlusion"].comprehensiveness


def test_the_cli_prints_aopc_naopc_and_the_floor(tiny_dirs, capsys):
    from explain.cli import main

    text = "the film was good but too long"
    assert main([text, "--model", tiny_dirs["encoder"], "--method", "occlusion", "--method", "saliency",
                 "--faithfulness"]) == 0
    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("method "))
    assert "AOPC" in header.split() and "NAOPC" in header.split()
    floor = next(line for line in printed.splitlines() if line.startswith("AOPC one word at a time"))
    assert "random rankings" in floor and "NAOPC" in floor and floor.endswith("(best order), exact")
    assert main([text, "--model", tiny_dirs["encoder"], "--method", "occlusion", "--faithfulness",
                 "--no-naopc"]) == 0
    assert "NAOPC not computed: its limits were not asked for." in capsys.readouterr().out


def test_the_price_counts_every_subset_when_exact_and_the_beam_above():
    from explain.costs import faithfulness_evaluations

    assert faithfulness_evaluations(3, 10) == 0.5 * 2**10
    without = faithfulness_evaluations(3, 20, naopc=None)
    assert without == 0.5 * (1 + 20 + 2 * 5 * (3 + 20))
    beam = faithfulness_evaluations(3, 20)
    assert beam == without + 0.5 * (limit_variants(20) + (3 + 20) * 20)
    assert limit_variants(20) <= 1 + 2 * 5 * 20 * 21 // 2


def test_the_dashboard_leaves_naopc_out_where_its_limits_are_over_the_budget(tiny_models):
    """Fifteen words: the beam's inputs are over this budget, the ERASER metrics alone are not; a twelve-word text
    whose exact limits are over the budget gets the beam's."""
    from dashboard.cached import MethodResultCache
    from explain import AnalysisRequest
    from explain.costs import EXTRA_EVALUATIONS, faithfulness_evaluations, work_units
    from explain.inputs import count_units
    from explain.scheduling import Schedulers, WorkBudget

    loaded = tiny_models["classification"]
    request = AnalysisRequest("the film was good but far too long and the service was slow and rude", model="tiny",
                              n_steps=4)
    n_tokens, n_words = count_units(loaded, request)
    assert n_words == 15

    def work(naopc):
        kwargs = {} if naopc else {"naopc": None}
        return work_units(faithfulness_evaluations(2, n_words, **kwargs) + EXTRA_EVALUATIONS / 2, loaded.config,
                          n_tokens)

    budget = (work(False) + work(True)) / 2
    methods = MethodResultCache(budget=WorkBudget(max_work=budget, rate=2000.0), schedulers=Schedulers())
    results = {n: methods.compute(request, loaded, n, session="s") for n in ("occlusion", "saliency")}
    scored, summary = methods.faithfulness(request, loaded, results, "replace", session="s")
    assert summary.aopc_limits == "" and math.isnan(scored["occlusion"].naopc)
    assert summary.naopc_note.startswith("Finding NAOPC's limits needs about ")
    assert summary.naopc_note.endswith("limit: it is left out on this text.")
    assert math.isfinite(scored["occlusion"].comprehensiveness)
    roomy = MethodResultCache(budget=WorkBudget(max_work=work(True) * 1.01, rate=2000.0), schedulers=Schedulers())
    scored, summary = roomy.faithfulness(request, loaded, results, "replace", session="s")
    assert summary.aopc_limits == "beam" and 0.0 <= scored["occlusion"].naopc <= 1.0
    short = AnalysisRequest("the film was good but far too long and the service slow", model="tiny", n_steps=4)
    n_tokens, n_words = count_units(loaded, short)
    assert n_words == 12
    beam = NAOPCSettings(exact_max_words=11)
    exact_work, beam_work = (work_units(faithfulness_evaluations(2, 12, naopc=s) + EXTRA_EVALUATIONS / 2, loaded.config,
                                        n_tokens) for s in (NAOPCSettings(), beam))
    assert beam_work < exact_work
    middle = MethodResultCache(budget=WorkBudget(max_work=(beam_work + exact_work) / 2, rate=2000.0),
                               schedulers=Schedulers())
    results = {n: middle.compute(short, loaded, n, session="s") for n in ("occlusion", "saliency")}
    scored, summary = middle.faithfulness(short, loaded, results, "replace", session="s")
    assert summary.aopc_limits == "beam" and summary.beam_width == 5 and 0.0 <= scored["saliency"].naopc <= 1.0
