"""Where the information flows: ALTI's per-layer contributions drawn as a layered graph, traced back from the
explained position to the input words.

Columns 0..L hold the token vectors between layers: column 0 the input embeddings, column l the output of the
l-th encoder layer (numbered l - 1 in the attention views, which count from 0). ALTI's matrix of that layer, C_l =
`alti_contributions(context)[l - 1]` (rows: outputs i in column l, columns: inputs j in column l - 1, rows summing
to 1), is token j's share of token i from one column to the next.

- A node's importance is its share of the explained position's rolled-out contribution: m_L = r, the weights with
  which the target reads the last layer (`readout_weights`: [CLS], the explained token, the answer's two ends, or
  every token for a mean-pooled target), and m_{l-1} = m_l C_l. So every column sums to 1, and m_0 is ALTI's token
  scores before the special tokens are zeroed.
- An edge j -> i from column l - 1 to column l is kept when C_l[i, j] > threshold (strictly: a zero contribution
  is no edge) and node (l, i) is traced; node (l - 1, j) is traced when a kept edge leaves it, and column L's
  traced nodes are the explained positions (r > 0). So every kept edge and node lies on a path of kept edges that
  ends at an explained position.
- An edge's weight is its flow m_l[i] C_l[i, j]: the part of the explained position's contribution that passes
  along it, over every path through it. The flows out of node (l - 1, j), over all i, add up to its importance.

Long texts are bounded: at most `max_tokens` token rows (the explained positions first, then the tokens with the
highest importance in any column) and `max_edges` edges (the heaviest flows). An edge cut off from every explained
position by such a cut goes too; the graph records how many tokens and edges were traced before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explain.errors import InputError
from explain.methods.attention_based import readout_weights
from explain.methods.decomposition import alti_contributions, alti_refusal
from explain.models import LoadedModel
from explain.pipeline import attribution_context, context_heads_removed
from explain.records import Analysis
from explain.records.analysis import frozen_array

DEFAULT_THRESHOLD = 0.05
MAX_FLOW_TOKENS = 48
MAX_FLOW_EDGES = 600


@dataclass(frozen=True, eq=False)
class FlowMatrices:
    """ALTI's per-layer contributions for one analysed text and how its target reads the last layer.

    contributions: float64 [layers, tokens, tokens], rows (outputs) summing to 1; readout: float64 [tokens],
    summing to 1; tokens: the analysis's tokens.
    """

    contributions: np.ndarray
    readout: np.ndarray
    tokens: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "contributions", frozen_array(self.contributions, np.float64))
        object.__setattr__(self, "readout", frozen_array(self.readout, np.float64))
        object.__setattr__(self, "tokens", tuple(self.tokens))
        n = len(self.tokens)
        if self.contributions.ndim != 3 or self.contributions.shape[1:] != (n, n) or self.readout.shape != (n,):
            raise InputError("The contribution matrices do not match the tokens.")

    @property
    def nbytes(self) -> int:
        return int(self.contributions.nbytes + self.readout.nbytes) + 64 * len(self.tokens)


@dataclass(frozen=True, eq=False)
class FlowGraph:
    """The traced graph (see the module docstring); every array read-only.

    rows: int [shown tokens], the token positions drawn, in text order. importance: float64 [layers + 1, tokens].
    Nodes (node_column, node_token) and edges (edge_column: the column an edge enters, 1..L; edge_source: token j in
    column - 1; edge_target: token i in column), with each edge's contribution C_l[i, j] and flow m_l[i] C_l[i, j].
    n_tokens_traced, n_edges_traced: how many tokens had a traced node and how many edges were kept before the
    bounds; max_tokens, max_edges: the bounds.
    """

    tokens: tuple[str, ...]
    readout: np.ndarray
    importance: np.ndarray
    rows: np.ndarray
    node_column: np.ndarray
    node_token: np.ndarray
    edge_column: np.ndarray
    edge_source: np.ndarray
    edge_target: np.ndarray
    edge_contribution: np.ndarray
    edge_flow: np.ndarray
    threshold: float
    n_tokens_traced: int
    n_edges_traced: int
    max_tokens: int
    max_edges: int

    def __post_init__(self) -> None:
        for name in ("rows", "node_column", "node_token", "edge_column", "edge_source", "edge_target"):
            object.__setattr__(self, name, frozen_array(getattr(self, name), np.int64))
        for name in ("readout", "importance", "edge_contribution", "edge_flow"):
            object.__setattr__(self, name, frozen_array(getattr(self, name), np.float64))

    @property
    def n_layers(self) -> int:
        return int(self.importance.shape[0]) - 1

    @property
    def explained(self) -> np.ndarray:
        """The explained positions among the rows shown (readout weight above 0), int."""
        return self.rows[self.readout[self.rows] > 0]

    @property
    def node_importance(self) -> np.ndarray:
        return self.importance[self.node_column, self.node_token]

    @property
    def tokens_cut(self) -> bool:
        return len(self.rows) < len(self.tokens)

    @property
    def edges_cut(self) -> bool:
        return len(self.edge_flow) < self.n_edges_traced


def column_importance(contributions: np.ndarray, readout: np.ndarray) -> np.ndarray:
    """m [layers + 1, tokens]: m_L = readout, m_{l-1} = m_l C_l."""
    n_layers = contributions.shape[0]
    importance = np.empty((n_layers + 1, contributions.shape[-1]))
    importance[n_layers] = readout
    for column in range(n_layers, 0, -1):
        importance[column - 1] = importance[column] @ contributions[column - 1]
    return importance


def traced_edges(contributions: np.ndarray, readout: np.ndarray, threshold: float, allowed: np.ndarray,
                 kept: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column, source, target) of the edges above `threshold` between allowed tokens that reach an explained
    position, walking down from column L; `kept` (bool [layers, tokens, tokens]) restricts the candidates."""
    reached = (readout > 0) & allowed
    columns, sources, targets = [], [], []
    for column in range(contributions.shape[0], 0, -1):
        candidates = (contributions[column - 1] > threshold) & reached[:, None] & allowed[None, :]
        if kept is not None:
            candidates &= kept[column - 1]
        i, j = np.nonzero(candidates)
        columns.append(np.full(len(i), column))
        sources.append(j)
        targets.append(i)
        reached = np.zeros_like(reached)
        reached[j] = True
    if not columns:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    return np.concatenate(columns), np.concatenate(sources), np.concatenate(targets)


def shown_rows(importance: np.ndarray, readout: np.ndarray, max_tokens: int) -> np.ndarray:
    """The positions drawn, in text order: every token, or the explained positions first (highest readout), then
    the highest importance in any column."""
    n = importance.shape[1]
    if n <= max_tokens:
        return np.arange(n)
    order = np.lexsort((np.arange(n), -importance.max(0), -readout))
    return np.sort(order[:max_tokens])


def trace_flow(matrices: FlowMatrices, threshold: float = DEFAULT_THRESHOLD, *, max_tokens: int = MAX_FLOW_TOKENS,
               max_edges: int = MAX_FLOW_EDGES) -> FlowGraph:
    """The graph traced back from the explained position at this threshold, within the bounds."""
    if not 0.0 <= float(threshold) <= 1.0:
        raise InputError(f"The flow threshold must be from 0 to 1, not {threshold}.")
    if max_tokens < 1 or max_edges < 1:
        raise InputError("The flow view needs room for at least one token and one edge.")
    contributions, readout = matrices.contributions, matrices.readout
    n_layers, n = contributions.shape[0], len(matrices.tokens)
    importance = column_importance(contributions, readout)
    everything = np.ones(n, dtype=bool)
    column, source, target = traced_edges(contributions, readout, threshold, everything)
    n_edges_traced = len(column)
    n_tokens_traced = len(np.union1d(np.union1d(source, target), np.flatnonzero(readout > 0)))
    rows = shown_rows(importance, readout, max_tokens)
    if len(rows) < n:
        allowed = np.zeros(n, dtype=bool)
        allowed[rows] = True
        column, source, target = traced_edges(contributions, readout, threshold, allowed)
    else:
        allowed = everything
    if len(column) > max_edges:
        flow = importance[column, target] * contributions[column - 1, target, source]
        heaviest = np.argsort(-flow, kind="stable")[:max_edges]
        kept = np.zeros_like(contributions, dtype=bool)
        kept[column[heaviest] - 1, target[heaviest], source[heaviest]] = True
        column, source, target = traced_edges(contributions, readout, threshold, allowed, kept)
    explained = np.flatnonzero((readout > 0) & allowed)
    nodes = np.unique(np.concatenate([
        np.stack([np.full(len(explained), n_layers), explained], 1),
        np.stack([column, target], 1), np.stack([column - 1, source], 1)]).astype(np.int64), axis=0)
    contribution = contributions[column - 1, target, source]
    return FlowGraph(
        tokens=matrices.tokens, readout=readout, importance=importance, rows=rows, node_column=nodes[:, 0],
        node_token=nodes[:, 1], edge_column=column, edge_source=source, edge_target=target,
        edge_contribution=contribution, edge_flow=importance[column, target] * contribution,
        threshold=float(threshold), n_tokens_traced=int(n_tokens_traced), n_edges_traced=int(n_edges_traced),
        max_tokens=int(max_tokens), max_edges=int(max_edges))


def flow_refusal(loaded: LoadedModel, analysis: Analysis) -> str:
    """Why the flow of this analysis cannot be drawn (one sentence), or "": a model ALTI refuses, or heads set to
    their mean (a constant output that ALTI does not split; heads set to zero are followed)."""
    if analysis.request.ablate and analysis.request.ablate_mode != "zero":
        return ("The information flow follows removed heads only when they are set to zero, not to their mean; "
                "choose zero ablation to see it.")
    return alti_refusal(loaded)


def flow_matrices(loaded: LoadedModel, analysis: Analysis) -> FlowMatrices:
    """ALTI's per-layer contributions and the readout for the analysis's text; InputError in one sentence where
    `flow_refusal` refuses."""
    refusal = flow_refusal(loaded, analysis)
    if refusal:
        raise InputError(refusal)
    with loaded.lock:
        context = attribution_context(analysis.request, loaded)
        if context.n_tokens != len(analysis.tokens):
            raise InputError("This model reads the analysed text as other tokens; analyse it with this model first.")
        with context_heads_removed(analysis.request, context):
            contributions = alti_contributions(context)
            readout = readout_weights(context)
    return FlowMatrices(contributions=contributions, readout=readout, tokens=tuple(analysis.tokens.tokens))
