"""The information-flow figure (explain.flow): one column of tokens per layer, edges from one column to the next.

Pure functions (no model code, no Streamlit). Tokens are user text: escaped in tick labels and hover. One colour
scale for nodes and edges, both measured as a share of the explained position's contribution (a node's importance,
an edge's flow); edges are also wider and more opaque as their flow grows. The columns are numbered as in the
attention views: "embeddings" (column 0), then layer 0 (the first) to layer L - 1.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from explain.flow import FlowGraph
from explain.pieces import subword_pieces
from explain.viz.theme import HIGHLIGHT_COLOUR, base_layout, esc, format_score, label_margin, wrap_title

FLOW_SCALE = [[0.0, "#a9c8e6"], [0.5, "#4a89c8"], [1.0, "#08306b"]]
COLORBAR_TITLE = "share of the explained<br>position's contribution"
EDGE_BINS = 5  # edges are drawn in this many traces, by flow: width and opacity step up from one to the next
EDGE_WIDTHS = (0.7, 1.4, 2.4, 3.6, 5.0)
EDGE_OPACITIES = (0.45, 0.55, 0.7, 0.8, 0.9)
PX_PER_ROW = 28
PX_PER_COLUMN = 96
MIN_PLOT_WIDTH = 420
MAX_PLOT_WIDTH = 1100
MIN_PLOT_HEIGHT = 200
RIGHT_MARGIN = 120  # px: the colour bar and its title
TICK_FONT = 12
TITLE_CHARS = 110


def column_names(n_layers: int) -> list[str]:
    """What each column is called: the input embeddings, then each layer's output, numbered from 0."""
    return ["embeddings"] + [f"layer {layer}" for layer in range(n_layers)]


def _token_name(labels: list[str], token: int) -> str:
    return f"«{esc(labels[token])}» (token {token})"


def explained_name(graph: FlowGraph) -> str:
    """The explained positions in words (unescaped): one token, two answer ends, or every token of a pooled target."""
    explained = np.flatnonzero(graph.readout > 0)
    labels = subword_pieces(list(graph.tokens))
    if len(explained) == len(graph.tokens) and len(explained) > 2:
        return "the mean-pooled output (every token)"
    return " and ".join(f"«{labels[int(t)]}» at token {int(t)}" for t in explained)


def flow_title(graph: FlowGraph) -> str:
    """The title (escaped), with a second line saying what the bounds left out."""
    title = esc(f"How information reaches {explained_name(graph)}")
    cut = []
    if graph.tokens_cut:
        cut.append(f"showing {len(graph.rows)} of {len(graph.tokens)} tokens (the explained positions and the most "
                   "important)")
    if graph.edges_cut:
        cut.append(f"{len(graph.edge_flow)} of {graph.n_edges_traced} edges (the heaviest)")
    if cut:
        title += f"<br><span style='font-size:12px'>{wrap_title('Long text: ' + ', '.join(cut) + '.', TITLE_CHARS)}</span>"
    return title


def flow_figure(graph: FlowGraph) -> go.Figure:
    """Nodes as markers (size and colour: importance), edges as line segments (width, opacity and colour: flow),
    the explained positions ringed; hover a node or an edge's midpoint for its values."""
    labels = subword_pieces(list(graph.tokens))
    names = column_names(graph.n_layers)
    row_of = {int(token): row for row, token in enumerate(graph.rows)}
    n_rows, n_columns = len(graph.rows), graph.n_layers + 1
    node_importance = graph.node_importance
    top = max(float(node_importance.max(initial=0.0)), 1e-12)
    fig = go.Figure()

    # Every (token, column) place, faint: the grid the traced graph sits on.
    grid_x = np.repeat(np.arange(n_columns), n_rows)
    grid_y = np.tile(np.arange(n_rows), n_columns)
    fig.add_trace(go.Scatter(x=grid_x, y=grid_y, mode="markers", hoverinfo="skip", showlegend=False,
                             marker=dict(size=4, color="#d9dee4")))

    flow = graph.edge_flow
    bins = np.minimum((flow / top * EDGE_BINS).astype(int), EDGE_BINS - 1) if len(flow) else np.zeros(0, int)
    for b in range(EDGE_BINS):
        chosen = np.flatnonzero(bins == b)
        if not len(chosen):
            continue
        xs, ys = [], []
        for e in chosen:
            column = int(graph.edge_column[e])
            xs += [column - 1, column, None]
            ys += [row_of[int(graph.edge_source[e])], row_of[int(graph.edge_target[e])], None]
        colour = sample_colorscale(FLOW_SCALE, [(b + 0.5) / EDGE_BINS])[0]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False,
                                 line=dict(width=EDGE_WIDTHS[b], color=colour), opacity=EDGE_OPACITIES[b]))

    # Edge hover: one invisible marker at each edge's midpoint.
    hover = [
        f"{_token_name(labels, int(j))}, {names[int(c) - 1]}<br>→ {_token_name(labels, int(i))}, {names[int(c)]}"
        f"<br>contribution {format_score(v)} (the part of the second vector that comes from the first)"
        f"<br>flow {format_score(f)} of the explained position's contribution"
        for c, j, i, v, f in zip(graph.edge_column, graph.edge_source, graph.edge_target, graph.edge_contribution,
                                 flow, strict=True)]
    fig.add_trace(go.Scatter(
        x=(graph.edge_column - 0.5).astype(np.float32),
        y=np.array([(row_of[int(j)] + row_of[int(i)]) / 2 for j, i in zip(graph.edge_source, graph.edge_target,
                                                                           strict=True)], dtype=np.float32),
        mode="markers", marker=dict(size=9, opacity=0.0), text=hover, hovertemplate="%{text}<extra></extra>",
        showlegend=False, name="edges"))

    node_hover = [f"{_token_name(labels, int(t))}, {names[int(c)]}<br>importance {format_score(v)}"
                  for c, t, v in zip(graph.node_column, graph.node_token, node_importance, strict=True)]
    fig.add_trace(go.Scatter(
        x=graph.node_column.astype(np.float32),
        y=np.array([row_of[int(t)] for t in graph.node_token], dtype=np.float32),
        mode="markers", text=node_hover, hovertemplate="%{text}<extra></extra>", name="tokens", showlegend=False,
        marker=dict(size=(7 + 13 * np.sqrt(node_importance / top)).astype(np.float32),
                    color=node_importance.astype(np.float32), colorscale=FLOW_SCALE, cmin=0.0, cmax=top,
                    line=dict(width=0.5, color="#52606d"),
                    colorbar=dict(title=dict(text=COLORBAR_TITLE, side="right"), thickness=12, len=0.9,
                                  tickformat=".2~g"))))

    explained = graph.explained
    fig.add_trace(go.Scatter(
        x=np.full(len(explained), graph.n_layers, dtype=np.float32),
        y=np.array([row_of[int(t)] for t in explained], dtype=np.float32),
        mode="markers+text", text=[esc(labels[int(t)]) for t in explained], textposition="middle right",
        textfont=dict(color=HIGHLIGHT_COLOUR), hoverinfo="skip",
        name="explained position" if len(explained) == 1 else "explained positions",
        marker=dict(size=20, symbol="circle-open", color=HIGHLIGHT_COLOUR, line=dict(width=2.5))))

    # Bold: an explained position; "… " before a token whose neighbours before it were left out.
    tick_labels = [("… " if row and t != graph.rows[row - 1] + 1 else "")
                   + (f"<b>{esc(labels[int(t)])}</b>" if graph.readout[int(t)] > 0 else esc(labels[int(t)]))
                   for row, t in enumerate(graph.rows)]
    left = label_margin(["… " + labels[int(t)] for t in graph.rows], TICK_FONT)
    # Room inside the plot, right of the last column, for the explained positions' labels.
    label_room = 24 + int(TICK_FONT * 0.62 * min(max((len(labels[int(t)]) for t in explained), default=0), 16))
    columns_width = min(MAX_PLOT_WIDTH, max(MIN_PLOT_WIDTH, PX_PER_COLUMN * n_columns))
    plot_width = columns_width + label_room
    title = flow_title(graph)
    bottom = 70
    base_layout(fig, title=title, height=max(MIN_PLOT_HEIGHT, PX_PER_ROW * n_rows) + bottom + 40 + 20 *
                (title.count("<br>") + 1), margin=dict(l=left, r=RIGHT_MARGIN, b=bottom), width=left + plot_width + RIGHT_MARGIN,
                legend=dict(orientation="h", x=1.0, xanchor="right", y=1.0, yanchor="bottom"),
                hovermode="closest")
    fig.update_xaxes(tickmode="array", tickvals=list(range(n_columns)), ticktext=names, title=dict(text="layer"),
                     range=[-0.4, n_columns - 0.6 + label_room * n_columns / columns_width], showgrid=False, zeroline=False)
    fig.update_yaxes(tickmode="array", tickvals=list(range(n_rows)), ticktext=tick_labels, autorange="reversed",
                     tickfont=dict(size=TICK_FONT), title=dict(text="token"), showgrid=False, zeroline=False)
    return fig


def flow_caption(graph: FlowGraph) -> str:
    """One paragraph under the figure: what a node and an edge are, at which threshold, and what was left out."""
    shown = (f"{len(graph.edge_flow)} edges" + (f" of {graph.n_edges_traced}" if graph.edges_cut else "")
             + f" above {format_score(graph.threshold)}")
    rows = f"; {len(graph.rows)} of {len(graph.tokens)} tokens shown" if graph.tokens_cut else ""
    return (f"ALTI's per-layer contributions (Ferrando et al. 2022) traced back from the explained position: an edge "
            f"joins a token to one in the next layer that takes more than {format_score(graph.threshold)} of its "
            "vector from it, and only edges on a path to the explained position are kept. A node's size and colour "
            "are its share of the explained position's rolled-out contribution (each column adds up to 1); an "
            f"edge's colour and width are the part of that share which flows along it ({shown}{rows}).")
