"""Seed-to-seed agreement of the stochastic methods: do two seeds rank the words alike?

A method is stochastic when its settings have a `seed` field (`Method.stochastic`: SmoothGrad's noise, LIME's
and KernelSHAP's samples). Its explanation is only worth reading when another seed gives about the same word
ranking; this module measures that as the Spearman correlation of the word scores of two seeds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from explain.evaluation.faithfulness import spearman
from explain.methods import AttributionContext, MethodSettings, get_method
from explain.records import AnalysisRequest

MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class SeedAgreement:
    """Spearman of one method's word scores under two seeds (nan: a side with no ranking, or under 2 words)."""

    method: str
    seeds: tuple[int, int]
    spearman: float


def other_seed(seed: int) -> int:
    """The seed compared with `seed`: the next one (0 after the largest)."""
    return 0 if int(seed) >= MAX_SEED else int(seed) + 1


def seed_agreement(method: str, seeds: tuple[int, int], first: np.ndarray, second: np.ndarray) -> SeedAgreement:
    """The agreement of two runs' word scores [words]."""
    return SeedAgreement(method=method, seeds=(int(seeds[0]), int(seeds[1])),
                         spearman=spearman(np.asarray(first), np.asarray(second)))


def context_seed_agreement(name: str, context: AttributionContext, settings: MethodSettings | None = None
                           ) -> SeedAgreement:
    """Run stochastic method `name` on `context` with its settings' seed and the next one, and compare them."""
    method = get_method(name)
    if not method.stochastic:
        raise ValueError(f"the method {name!r} has no seed")
    settings = settings if settings is not None else method.settings_type()
    seed = int(settings.as_dict()["seed"])
    second = settings.parse({**settings.as_dict(), "seed": other_seed(seed)})
    a, b = method.attribute(context, settings), method.attribute(context, second)
    return seed_agreement(name, (seed, other_seed(seed)), a.word_scores, b.word_scores)


def request_seed(request: AnalysisRequest, name: str) -> int:
    """The seed method `name` runs with for `request` (its "name.seed" setting, else the declared default)."""
    for key, value in request.method_settings:
        if key == f"{name}.seed":
            return int(value)
    default = {s.name: s.default for s in get_method(name).settings_type.specs()}.get("seed")
    if default is None:
        raise ValueError(f"the method {name!r} has no seed")
    return int(default)


def other_seed_request(request: AnalysisRequest, name: str) -> AnalysisRequest:
    """`request` with method `name` seeded by `other_seed` of its own seed, all else the same."""
    seed = other_seed(request_seed(request, name))
    pairs = tuple(sorted([p for p in request.method_settings if p[0] != f"{name}.seed"] + [(f"{name}.seed", str(seed))]))
    return dataclasses.replace(request, method_settings=pairs)


def agreement_rows(agreements: list[tuple[str, SeedAgreement]]) -> list[dict[str, object]]:
    """The Methods page's table: one row per (method title, agreement)."""
    return [{"method": title, "seeds": f"{a.seeds[0]} and {a.seeds[1]}", "Spearman": a.spearman}
            for title, a in agreements]


AGREEMENT_CAPTION = ("Each stochastic method (one with a seed) run again with the next seed: the Spearman rank "
                     "correlation of the two runs' word scores. Near 1, the ranking does not depend on the seed; "
                     "below about 0.8, read it as one draw among many (raise the samples).")
