"""The information-flow figure and its place in the HTML export: traces, hover text, axes, bounds said on the chart."""

from __future__ import annotations

import numpy as np
import pytest

from explain import AnalysisRequest, analyze
from explain.flow import FlowMatrices, flow_matrices, trace_flow
from explain.viz.flow import COLORBAR_TITLE, flow_caption, flow_figure
from explain.viz.report import standalone_html
from explain.viz.theme import format_score


def hand_matrices(n_layers: int = 3, tokens: tuple[str, ...] = ("[CLS]", "<b>bold</b>", "film", "##s", "[SEP]"),
                  seed: int = 0) -> FlowMatrices:
    rng = np.random.default_rng(seed)
    c = rng.random((n_layers, len(tokens), len(tokens))) ** 3
    c /= c.sum(-1, keepdims=True)
    readout = np.zeros(len(tokens))
    readout[0] = 1.0
    return FlowMatrices(contributions=c, readout=readout, tokens=tokens)


def traces_named(fig, name):
    return [t for t in fig.data if t.name == name]


def test_nodes_edges_and_the_explained_position_are_traces_with_their_values_on_hover():
    graph = trace_flow(hand_matrices(), 0.1)
    fig = flow_figure(graph)
    (nodes,) = traces_named(fig, "tokens")
    (edges,) = traces_named(fig, "edges")
    (explained,) = traces_named(fig, "explained position")
    assert len(nodes.x) == len(graph.node_column) and len(edges.x) == len(graph.edge_flow) > 0
    assert list(explained.x) == [graph.n_layers] and list(explained.y) == [0] and explained.showlegend is not False
    for text, c, j, i, v, f in zip(edges.text, graph.edge_column, graph.edge_source, graph.edge_target,
                                   graph.edge_contribution, graph.edge_flow, strict=True):
        assert f"contribution {format_score(v)}" in text and f"flow {format_score(f)}" in text
        from_name = "embeddings" if c == 1 else f"layer {c - 2}"
        assert f"(token {j}), {from_name}<br>→" in text and f"(token {i}), layer {c - 1}" in text
    for text, value in zip(nodes.text, graph.node_importance, strict=True):
        assert f"importance {format_score(value)}" in text
    lines = [t for t in fig.data if t.mode == "lines"]
    assert lines and sum(list(t.x).count(None) for t in lines) == len(graph.edge_flow)
    assert nodes.marker.colorbar.title.text == COLORBAR_TITLE


def test_tokens_are_escaped_and_the_axes_are_named():
    graph = trace_flow(hand_matrices(), 0.0)
    fig = flow_figure(graph)
    every_text = " ".join(str(t.text) for t in fig.data) + " ".join(fig.layout.yaxis.ticktext)
    assert "<b>bold</b>" not in every_text and "&lt;b&gt;bold&lt;/b&gt;" in every_text
    assert fig.layout.xaxis.title.text == "layer" and fig.layout.yaxis.title.text == "token"
    assert list(fig.layout.xaxis.ticktext) == ["embeddings", "layer 0", "layer 1", "layer 2"]
    assert fig.layout.yaxis.ticktext[0] == "<b>[CLS]</b>"  # the explained position, in bold
    assert fig.layout.yaxis.ticktext[3] == "s"  # subword pieces as the other token views show them
    assert fig.layout.title.text.startswith("How information reaches «[CLS]» at token 0")


def test_the_bounds_are_said_on_the_chart_and_in_the_caption():
    tokens = tuple(f"w{i}" for i in range(30))
    graph = trace_flow(hand_matrices(tokens=tokens), 0.0, max_tokens=8, max_edges=10)
    fig = flow_figure(graph)
    assert len(fig.layout.yaxis.ticktext) == 8
    assert "Long text: showing 8 of 30 tokens" in fig.layout.title.text
    assert f"{len(graph.edge_flow)} of {graph.n_edges_traced} edges" in fig.layout.title.text
    caption = flow_caption(graph)
    assert "8 of 30 tokens shown" in caption and f"of {graph.n_edges_traced} above 0" in caption
    assert any(label.startswith("… ") for label in fig.layout.yaxis.ticktext)  # a gap where tokens were left out
    short = flow_figure(trace_flow(hand_matrices(), 0.05))
    assert "Long text" not in short.layout.title.text


def test_a_threshold_above_every_contribution_leaves_the_explained_position_alone():
    graph = trace_flow(hand_matrices(), 1.0)
    fig = flow_figure(graph)
    assert len(graph.edge_flow) == 0 and len(traces_named(fig, "tokens")[0].x) == 1
    assert "0 edges above 1" in flow_caption(graph)


@pytest.fixture(scope="module")
def analysed(tiny_models):
    loaded = tiny_models["classification"]
    analysis = analyze(AnalysisRequest("the film was good", model=loaded.spec, method="attention_last"), loaded)
    return analysis, trace_flow(flow_matrices(loaded, analysis))


def test_the_html_export_has_the_flow_section_only_when_given(analysed):
    analysis, graph = analysed
    with_flow = standalone_html(analysis, flow=graph)
    assert "<h2>Information flow (ALTI)</h2>" in with_flow and 'id="information-flow"' in with_flow
    assert "traced back from the explained position" in with_flow
    assert "Information flow" not in standalone_html(analysis)
    other = trace_flow(hand_matrices())
    with pytest.raises(ValueError, match="other tokens"):
        standalone_html(analysis, flow=other)
