"""Head results: importance maps, pruning curves and neuron views (frozen, arrays read-only).

They are written by the one JSON codec (`to_jsonable`, arrays in the typed encoding) and read back by the
decoders here, so the CLI and the Heads page write the same JSON for the same maps.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from explain.records.analysis import (
    damaged,
    read_array,
    read_field,
    read_number,
    read_text,
    read_texts,
    read_whole,
    record_object,
    to_jsonable,
)
from explain.records.requests import HeadsRequest

MAP_NAMES = ("gradient", "ablation", "confidence")
# A model has at most this many heads here (bert-large 24 x 16, deberta-v2-xxlarge 48 x 24).
MAX_HEADS_TOTAL = 48 * 64
MAX_NEURON_TOKENS = 1024
MAX_HEAD_DIM = 4096


def read_only(array: Any, dtype: Any = np.float32) -> np.ndarray:
    out = np.array(array, dtype=dtype)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class HeadImportance:
    """Three importance maps of one text's explained score, [layers, heads] each (read-only float32).

    `ablation_effect` is signed: (score without the head) - (score with all heads). The rank correlations
    compare |gradient|, |ablation_effect| and confidence, in the order of `map_names`.
    """

    gradient: np.ndarray
    ablation_effect: np.ndarray
    confidence: np.ndarray
    rank_correlation: np.ndarray
    score: float
    score_name: str
    description: str
    mode: str
    map_names: tuple[str, ...] = MAP_NAMES
    timings: tuple[tuple[str, float], ...] = ()

    def __post_init__(self) -> None:
        for name in ("gradient", "ablation_effect", "confidence", "rank_correlation"):
            object.__setattr__(self, name, read_only(getattr(self, name)))

    def map(self, name: str) -> np.ndarray:
        """A map by name, as ranked: "gradient", "ablation" (the absolute effect) or "confidence"."""
        if name == "gradient":
            return self.gradient
        if name == "ablation":
            return read_only(np.abs(self.ablation_effect))
        if name == "confidence":
            return self.confidence
        raise KeyError(f"no importance map '{name}'; the maps are {', '.join(MAP_NAMES)}")


@dataclass(frozen=True)
class PruningCurve:
    """Scores after removing `removed[k]` heads: in importance order (`scores`) and in random orders
    (`random_scores`, one row per seed, with their mean and standard deviation).

    `head_order` [heads, 2] lists (layer, head) in the importance order used.
    """

    removed: np.ndarray
    scores: np.ndarray
    random_scores: np.ndarray
    head_order: np.ndarray
    importance_name: str
    order: str
    mode: str
    seeds: tuple[int, ...]
    score_name: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "removed", read_only(self.removed, np.int32))
        object.__setattr__(self, "scores", read_only(self.scores))
        object.__setattr__(self, "random_scores", read_only(self.random_scores))
        object.__setattr__(self, "head_order", read_only(self.head_order, np.int32))

    @property
    def random_mean(self) -> np.ndarray:
        return read_only(self.random_scores.mean(0))

    @property
    def random_std(self) -> np.ndarray:
        return read_only(self.random_scores.std(0))


@dataclass(frozen=True)
class NeuronView:
    """One head's attention row for one query token, from its parts (read-only float32 arrays).

    query [head_dim]; keys and products [tokens, head_dim]; scores (scaled dot products) and attention
    [tokens]; padding tokens get score -inf and attention 0.
    """

    layer: int
    head: int
    query_token: int
    tokens: tuple[str, ...]
    query: np.ndarray
    keys: np.ndarray
    products: np.ndarray
    scores: np.ndarray
    attention: np.ndarray
    scaling: float

    def __post_init__(self) -> None:
        for name in ("query", "keys", "products", "scores", "attention"):
            object.__setattr__(self, name, read_only(getattr(self, name)))


def head_importance_from_dict(data: Any, path: str = "head_importance") -> HeadImportance:
    """A HeadImportance from its JSON form (`to_jsonable`); SchemaError naming the first bad field."""
    obj = record_object(data, path)

    def maps(key: str) -> np.ndarray:
        return read_array(read_field(obj, key, path), f"{path}.{key}", "f", (None, None), MAX_HEADS_TOTAL)

    timings = read_field(obj, "timings", path, [])
    pairs = []
    for i, pair in enumerate(timings if isinstance(timings, list) else [None]):
        if not isinstance(pair, list) or len(pair) != 2:
            raise damaged(f"{path}.timings[{i}]", "must be a [name, seconds] pair")
        pairs.append((read_text(pair[0], f"{path}.timings[{i}][0]"), read_number(pair[1], f"{path}.timings[{i}][1]")))
    record = HeadImportance(
        gradient=maps("gradient"), ablation_effect=maps("ablation_effect"), confidence=maps("confidence"),
        rank_correlation=read_array(read_field(obj, "rank_correlation", path), f"{path}.rank_correlation", "f",
                                    (len(MAP_NAMES), len(MAP_NAMES))),
        score=read_number(read_field(obj, "score", path), f"{path}.score"),
        score_name=read_text(read_field(obj, "score_name", path), f"{path}.score_name"),
        description=read_text(read_field(obj, "description", path), f"{path}.description"),
        mode=read_text(read_field(obj, "mode", path), f"{path}.mode"),
        map_names=tuple(read_texts(read_field(obj, "map_names", path, list(MAP_NAMES)), f"{path}.map_names")),
        timings=tuple(pairs),
    )
    shape = record.gradient.shape
    if record.ablation_effect.shape != shape or record.confidence.shape != shape:
        raise damaged(f"{path}.ablation_effect", "the three maps must have one shape")
    return record


def pruning_curve_from_dict(data: Any, path: str = "pruning_curve") -> PruningCurve:
    """A PruningCurve from its JSON form (`to_jsonable`); SchemaError naming the first bad field."""
    obj = record_object(data, path)
    removed = read_array(read_field(obj, "removed", path), f"{path}.removed", "iu", (None,), MAX_HEADS_TOTAL + 1)
    n = len(removed)
    seeds = read_field(obj, "seeds", path)
    if not isinstance(seeds, list) or len(seeds) > 64:
        raise damaged(f"{path}.seeds", "must be a list of at most 64 seeds")
    return PruningCurve(
        removed=removed,
        scores=read_array(read_field(obj, "scores", path), f"{path}.scores", "f", (n,)),
        random_scores=read_array(read_field(obj, "random_scores", path), f"{path}.random_scores", "f", (None, n),
                                 64 * n),
        head_order=read_array(read_field(obj, "head_order", path), f"{path}.head_order", "iu", (None, 2),
                              2 * MAX_HEADS_TOTAL),
        importance_name=read_text(read_field(obj, "importance_name", path), f"{path}.importance_name"),
        order=read_text(read_field(obj, "order", path), f"{path}.order"),
        mode=read_text(read_field(obj, "mode", path), f"{path}.mode"),
        seeds=tuple(read_whole(x, f"{path}.seeds[{i}]") for i, x in enumerate(seeds)),
        score_name=read_text(read_field(obj, "score_name", path), f"{path}.score_name"),
    )


def neuron_view_from_dict(data: Any, path: str = "neuron_view") -> NeuronView:
    """A NeuronView from its JSON form (`to_jsonable`); SchemaError naming the first bad field."""
    obj = record_object(data, path)
    tokens = tuple(read_texts(read_field(obj, "tokens", path), f"{path}.tokens"))
    n = len(tokens)
    if n > MAX_NEURON_TOKENS:
        raise damaged(f"{path}.tokens", f"holds more than {MAX_NEURON_TOKENS} tokens")
    query = read_array(read_field(obj, "query", path), f"{path}.query", "f", (None,), MAX_HEAD_DIM)
    d = len(query)
    return NeuronView(
        layer=read_whole(read_field(obj, "layer", path), f"{path}.layer"),
        head=read_whole(read_field(obj, "head", path), f"{path}.head"),
        query_token=read_whole(read_field(obj, "query_token", path), f"{path}.query_token", 0, max(n - 1, 0)),
        tokens=tokens, query=query,
        keys=read_array(read_field(obj, "keys", path), f"{path}.keys", "f", (n, d)),
        products=read_array(read_field(obj, "products", path), f"{path}.products", "f", (n, d)),
        scores=read_array(read_field(obj, "scores", path), f"{path}.scores", "f", (n,)),
        attention=read_array(read_field(obj, "attention", path), f"{path}.attention", "f", (n,)),
        scaling=read_number(read_field(obj, "scaling", path), f"{path}.scaling"),
    )


def heads_document(request: HeadsRequest, importance: HeadImportance, curve: PruningCurve | None,
                   view: NeuronView | None) -> str:
    """The Heads page's numbers as one JSON document: the maps, the pruning curve and the neuron view in the
    codec the CLI's `--out` uses for them."""
    return json.dumps({
        "format": "explain.heads", "model": request.spec, "text": request.text, "pair": request.pair,
        "question": request.question, "max_tokens": request.max_tokens,
        "head_importance": to_jsonable(importance),
        "pruning_curve": None if curve is None else to_jsonable(curve),
        "neuron_view": None if view is None else to_jsonable(view),
    }, indent=1)
