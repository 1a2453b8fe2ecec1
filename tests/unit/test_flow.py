"""The information-flow graph (explain.flow) on tiny random BERTs: edges above the threshold only, every kept node on
a path to the explained position, values read from ALTI's matrices, and the bounds for long texts."""

from __future__ import annotations

import numpy as np
import pytest

from explain import AnalysisRequest, analyze
from explain.errors import InputError
from explain.flow import FlowMatrices, flow_matrices, trace_flow
from explain.methods.decomposition import alti_contributions, rolled_out
from explain.records import TargetSpec
from testkit.contexts import build_context

TEXT = "the film was good but far too long ."


def analysis_of(loaded, text: str = TEXT, target: TargetSpec | None = None):
    return analyze(AnalysisRequest(text, model=loaded.spec, target=target, method="attention_last"), loaded)


@pytest.fixture(scope="module")
def classified(tiny_models):
    loaded = tiny_models["classification"]
    analysis = analysis_of(loaded)
    return analysis, flow_matrices(loaded, analysis)


def reaching_upward(graph) -> set[tuple[int, int]]:
    """Nodes from which kept edges lead to an explained node in the last column (walked here, top down)."""
    top = graph.n_layers
    reached = {(top, int(t)) for t in graph.explained}
    for column in range(top, 0, -1):
        for c, j, i in zip(graph.edge_column, graph.edge_source, graph.edge_target, strict=True):
            if c == column and (column, int(i)) in reached:
                reached.add((column - 1, int(j)))
    return reached


def reachable_by_brute_force(contributions: np.ndarray, readout: np.ndarray, threshold: float
                             ) -> set[tuple[int, int, int]]:
    """Every (column, source, target) above the threshold with a path above it up to an explained position."""
    top = contributions.shape[0]
    reached = {(top, int(t)) for t in np.flatnonzero(readout > 0)}
    edges = set()
    for column in range(top, 0, -1):
        n = contributions.shape[-1]
        for i in range(n):
            for j in range(n):
                if (column, i) in reached and contributions[column - 1, i, j] > threshold:
                    edges.add((column, j, i))
        reached |= {(column - 1, j) for c, j, _ in edges if c == column}
    return edges


def test_the_matrices_are_altis_and_the_readout_is_the_cls_row(tiny_models, classified):
    analysis, matrices = classified
    context = build_context(tiny_models["classification"], TEXT, analysis.request.target)
    np.testing.assert_array_equal(matrices.contributions, alti_contributions(context))
    assert matrices.readout[0] == 1.0 and matrices.readout[1:].sum() == 0.0
    assert matrices.tokens == tuple(analysis.tokens.tokens)


def test_edges_only_above_the_threshold_with_altis_values_and_flows(classified):
    _, matrices = classified
    graph = trace_flow(matrices, 0.05)
    c = matrices.contributions
    assert len(graph.edge_column) > 0
    assert np.all(graph.edge_contribution > 0.05)
    np.testing.assert_array_equal(graph.edge_contribution,
                                  c[graph.edge_column - 1, graph.edge_target, graph.edge_source])
    np.testing.assert_allclose(graph.edge_flow,
                               graph.importance[graph.edge_column, graph.edge_target] * graph.edge_contribution)
    assert set(zip(graph.edge_column.tolist(), graph.edge_source.tolist(), graph.edge_target.tolist())) == \
        reachable_by_brute_force(c, matrices.readout, 0.05)


def test_every_kept_node_reaches_the_explained_position(classified):
    _, matrices = classified
    for threshold in (0.0, 0.05, 0.2):
        graph = trace_flow(matrices, threshold)
        nodes = set(zip(graph.node_column.tolist(), graph.node_token.tolist()))
        assert (graph.n_layers, 0) in nodes and graph.explained.tolist() == [0]
        assert nodes <= reaching_upward(graph)
        # no node is left without an edge, except an explained one
        ends = {(int(c), int(i)) for c, i in zip(graph.edge_column, graph.edge_target)}
        ends |= {(int(c) - 1, int(j)) for c, j in zip(graph.edge_column, graph.edge_source)}
        assert nodes - ends <= {(graph.n_layers, 0)}


def test_threshold_zero_keeps_every_reachable_edge(classified):
    _, matrices = classified
    graph = trace_flow(matrices, 0.0, max_tokens=10_000, max_edges=10_000)
    c = matrices.contributions
    expected = reachable_by_brute_force(c, matrices.readout, 0.0)
    assert len(expected) == int(np.count_nonzero(c[-1, 0])) + int(np.count_nonzero(c[:-1]))
    assert set(zip(graph.edge_column.tolist(), graph.edge_source.tolist(), graph.edge_target.tolist())) == expected
    assert graph.n_edges_traced == len(expected) and not graph.edges_cut


def test_importance_is_the_rolled_out_share_and_flows_add_up_to_it(classified):
    _, matrices = classified
    graph = trace_flow(matrices, 0.0, max_tokens=10_000, max_edges=10_000)
    np.testing.assert_allclose(graph.importance[0], matrices.readout @ rolled_out(matrices.contributions), atol=1e-12)
    np.testing.assert_allclose(graph.importance.sum(1), 1.0, atol=1e-12)
    outflow = np.zeros_like(graph.importance)
    np.add.at(outflow, (graph.edge_column - 1, graph.edge_source), graph.edge_flow)
    np.testing.assert_allclose(outflow[:-1], graph.importance[:-1], atol=1e-12)


def test_the_bounds_keep_the_explained_position_and_paths_to_it(classified):
    _, matrices = classified
    full = trace_flow(matrices, 0.0, max_tokens=10_000, max_edges=10_000)
    graph = trace_flow(matrices, 0.0, max_tokens=4, max_edges=6)
    assert len(graph.rows) == 4 and 0 in graph.rows.tolist() and graph.tokens_cut
    assert 0 < len(graph.edge_flow) <= 6 and graph.edges_cut and graph.n_edges_traced == len(full.edge_flow)
    assert set(graph.edge_source.tolist()) | set(graph.edge_target.tolist()) <= set(graph.rows.tolist())
    nodes = set(zip(graph.node_column.tolist(), graph.node_token.tolist()))
    assert nodes <= reaching_upward(graph)
    assert list(graph.rows) == sorted(graph.rows)


def test_a_masked_token_is_traced_from_its_own_position(tiny_models):
    loaded = tiny_models["masked_lm"]
    analysis = analysis_of(loaded, "the film was [MASK] but too long .", TargetSpec("masked_token", label="good"))
    graph = trace_flow(flow_matrices(loaded, analysis), 0.05)
    mask = analysis.tokens.tokens.index("[MASK]")
    assert graph.explained.tolist() == [mask]
    assert set(graph.edge_target[graph.edge_column == graph.n_layers].tolist()) == {mask}


def test_a_mean_pooled_target_is_traced_from_every_token(tiny_models):
    loaded = tiny_models["encoder"]
    analysis = analysis_of(loaded, "the food was bad")
    graph = trace_flow(flow_matrices(loaded, analysis), 0.05)
    assert graph.explained.tolist() == list(range(len(analysis.tokens)))
    np.testing.assert_allclose(graph.readout, 1 / len(analysis.tokens))


def test_bad_thresholds_and_mismatched_matrices_are_one_sentence(classified):
    _, matrices = classified
    for bad in (-0.1, 1.5):
        with pytest.raises(InputError, match=r"^The flow threshold must be from 0 to 1, not [-0-9.]+\.$"):
            trace_flow(matrices, bad)
    with pytest.raises(InputError, match="do not match the tokens"):
        FlowMatrices(contributions=matrices.contributions, readout=matrices.readout, tokens=matrices.tokens[:-1])


def test_the_results_are_read_only(classified):
    _, matrices = classified
    graph = trace_flow(matrices)
    for array in (matrices.contributions, graph.edge_flow, graph.rows, graph.importance):
        with pytest.raises(ValueError):
            array[0] = 0


@pytest.mark.parametrize("family", ["deberta", "mpnet"])
def test_a_model_alti_refuses_gets_its_sentence(tmp_path, family):
    from explain.models import load_model
    from testkit.families import save_tiny_family

    loaded = load_model(str(save_tiny_family(tmp_path / family, family)), device="cpu")
    analysis = analysis_of(loaded, "the film was good", TargetSpec("class", label="positive"))
    with pytest.raises(InputError, match=r"^ALTI needs plain dot-product attention [^.]* do not have\.$"):
        flow_matrices(loaded, analysis)


def test_an_analysis_without_some_heads_follows_the_ablated_model(tiny_models):
    """The flow of an analysis with heads set to zero was refused; it now follows the ablated model: with every
    head of the first layer removed, that layer mixes nothing, so its contributions are the identity."""
    loaded = tiny_models["classification"]
    full = analyze(AnalysisRequest(TEXT, model=loaded.spec, method="attention_last"), loaded)
    ablated = analyze(AnalysisRequest(TEXT, model=loaded.spec, method="attention_last", ablate="0:*"), loaded)
    first_full = flow_matrices(loaded, full).contributions[0]
    first = flow_matrices(loaded, ablated).contributions[0]
    np.testing.assert_allclose(first, np.eye(len(first)), atol=1e-9)
    assert not np.allclose(first_full, np.eye(len(first_full)), atol=1e-3)


def test_an_analysis_with_heads_set_to_their_mean_is_refused_in_one_sentence(tiny_models):
    loaded = tiny_models["classification"]
    analysis = analyze(AnalysisRequest(TEXT, model=loaded.spec, method="attention_last", ablate="0:1",
                                       ablate_mode="mean"), loaded)
    with pytest.raises(InputError, match=r"^The information flow follows removed heads only when [^.]*\.$"):
        flow_matrices(loaded, analysis)
