"""Heads: which heads matter for the explained score (three importance maps), what removing them does (pruning
curve), and what one head computes for one token (neuron view)."""

from __future__ import annotations

import streamlit as st

from dashboard import cached
from dashboard.components import charts, controls, scroll, share, tasks
from dashboard.components.loading import load_model_or_error
from dashboard.components.results import clamp_view, run_with_progress
from dashboard.components.selection import grid_cell_from_selection
from dashboard.components.text import markdown_escape
from dashboard.components.url_state import (
    current,
    leave_saved,
    load_from_url,
    set_value,
    show_notices,
    widget_key,
    write_url,
)
from dashboard.state import HEADS_FIELDS, MAX_TOKEN_CHOICES, ViewState
from explain import ExplainError, LoadedModel
from explain.exports import chart_filename
from explain.heads import MAP_NAMES, PRUNING_ORDERS, HeadImportance, HeadInputs, NeuronView, PruningCurve
from explain.heads.pruning_summary import pruning_reading
from explain.records import HeadsRequest, heads_document
from explain.viz.attention import mark_head
from explain.viz.heads import (
    MAP_TITLES,
    ORDER_WORDS,
    correlation_rows,
    importance_map_figure,
    neuron_view_figure,
    pruning_curve_figure,
)
from explain.viz.theme import format_score

PAGE = "heads"
FIELDS = HEADS_FIELDS
MAP_HELP = {
    "gradient": "Gradient importance (Michel et al. 2019): how fast the score changes when the head's output is "
                "scaled down, |∂ score / ∂ gate| at gate 1, from one backward pass.",
    "ablation": "Ablation effect: the score with this head alone removed (its output set to zero) minus the score "
                "with every head; red lowers the score, blue raises it.",
    "confidence": "Confidence (Voita et al. 2019): the head's largest attention weight per token, averaged over "
                  "the text; a head that always looks at one token is confident, whether or not it matters.",
}
NEURON_ANCHOR = "inside-the-head"  # the neuron view's heading: a click on a map scrolls here
NEURON_CAPTION = (
    "Left to right, one row per key token: the key vectors k (the query vector q of the chosen token above "
    "them), their elementwise product q∘k with the query (each row sums to the dot product q·k), the dot "
    "products scaled by 1/√(head dimension), and their softmax, which is the head's attention row for this "
    "token; the chosen token's row is outlined."
)


def on_map_select(chart_key: str, shape: tuple[int, int]) -> None:
    """A click on an importance map selects that head for the neuron view, and brings the view into sight."""
    cell = grid_cell_from_selection(st.session_state.get(chart_key) or {}, shape)
    if cell is not None:
        set_value("heads_layer", int(cell[0]))
        set_value("heads_head", int(cell[1]))
        scroll.scroll_on_next_run(f"#{NEURON_ANCHOR}")


def importance_section(importance: HeadImportance, layer: int, head: int) -> None:
    shape = importance.gradient.shape
    columns = st.columns(len(MAP_NAMES), gap="medium")
    for column, name in zip(columns, MAP_NAMES):
        key = f"heads_map_{name}"
        with column:
            figure = cached.figure(importance, ("heads-map", name, layer, head), lambda name=name: mark_head(
                cached.figure(importance, ("heads-map", name), lambda: importance_map_figure(importance, name)),
                layer, head))
            charts.plotly_chart(figure, key=key, on_select=lambda key=key: on_map_select(key, shape),
                            selection_mode="points", config=share.chart_config(chart_filename("head importance", name)), width="stretch")
            st.caption(MAP_HELP[name])
    rows = correlation_rows(importance)
    titles = [MAP_TITLES[n] for n in importance.map_names]
    st.markdown("**How far the maps agree** (Spearman rank correlation over all heads)")
    st.dataframe(rows, hide_index=True, width="content", column_config={
        title: st.column_config.NumberColumn(title, format="%.3g") for title in titles})
    st.caption("1: the two maps rank the heads in the same order; 0: unrelated; -1: reverse order. The ablation "
               "map is ranked by the size of the change; an empty cell is a map whose values are all equal.")


def selection_controls(n_layers: int, n_heads: int) -> tuple[int, int]:
    """Keyboard-usable layer and head pickers, kept in step with clicks on the maps (values already clamped)."""
    left, right, _ = st.columns([1, 1, 4])
    layer = left.selectbox("Layer", list(range(n_layers)), key=widget_key("heads_layer"),
                           help="The selected head's layer (or click a cell of a map above).")
    head = right.selectbox("Head", list(range(n_heads)), key=widget_key("heads_head"),
                           help="The selected head within its layer (or click a cell of a map above).")
    return int(layer), int(head)


def pruning_section(request: HeadsRequest, loaded: LoadedModel, inputs: HeadInputs,
                    importance: HeadImportance) -> PruningCurve | None:
    st.subheader("What removing heads does")
    left, right = st.columns([3, 2])  # wrap: in a column Streamlit keeps options on one row, cut at a phone's edge
    map_name = left.segmented_control("Order heads by", list(MAP_NAMES), key=widget_key("prune_map"), required=True,
                                      format_func=MAP_TITLES.get, wrap=True,
                                      help="The importance map that decides which head goes next.")
    order = right.segmented_control("Remove", list(PRUNING_ORDERS), key=widget_key("prune_order"), required=True,
                                    format_func=ORDER_WORDS.get, wrap=True,
                                    help="Least important first is Michel et al.'s pruning (the score should hold "
                                         "longest); most important first shows how few heads carry it.")
    cache = cached.head_cache()
    try:
        curve = cache.get(cache.pruning_key(request, map_name, order)) or run_with_progress(
            lambda progress: cache.pruning(request, loaded, inputs, importance, map_name, order, progress),
            "Pruning heads")
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        return None
    charts.plotly_chart(pruning_curve_figure(curve, description=importance.description), key="heads_pruning",
                    config=share.chart_config(chart_filename("pruning curve", curve.importance_name, curve.order)), width="stretch")
    st.caption(markdown_escape(
        f"Heads are removed one after another (their outputs set to zero), in the order of the "
        f"{MAP_TITLES[map_name].lower()} map ({ORDER_WORDS[order]}) and in {len(curve.seeds)} random orders; "
        f"the band is one standard deviation of the random orders either side of their mean. An importance map "
        f"that ranks well keeps the score longer than random when the least important heads go first, and "
        f"loses it sooner when the most important go first. " + pruning_reading(curve)))
    return curve


def neuron_section(request: HeadsRequest, loaded: LoadedModel, inputs: HeadInputs, layer: int,
                   head: int) -> NeuronView | None:
    st.subheader(f"Inside layer {layer}, head {head}", anchor=NEURON_ANCHOR)
    tokens = inputs.tokens
    clamp_view("heads_token", len(tokens), "token")
    token = st.selectbox("Query token", list(range(len(tokens))), key=widget_key("heads_token"),
                         format_func=lambda i: f"{i}: {tokens[i]}",
                         help="The token whose attention row the head computes below.")
    try:
        with st.spinner("Looking inside the head…"):
            view = cached.head_cache().neuron(request, loaded, inputs, layer, head, int(token))
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        view = None
    else:
        charts.plotly_chart(neuron_view_figure(view), key="heads_neuron", config=share.chart_config(
                            chart_filename("neuron view", f"layer {layer}", f"head {head}", f"token {token}")),
                        width="stretch")
        st.caption(NEURON_CAPTION)
    scroll.scroll_if_asked(f"#{NEURON_ANCHOR}")
    return view


def export_section(request: HeadsRequest, importance: HeadImportance, curve: PruningCurve | None,
                   view: NeuronView | None) -> None:
    """The page's numbers as one JSON file (importance maps, pruning curve, neuron view)."""
    st.subheader("Export")

    def document() -> str:
        return heads_document(request, importance, curve, view)

    st.download_button("Download JSON", data=document, file_name=f"heads-{share.slug(request.text)}.json",
                       mime="application/json", key="heads_json", icon=":material/download:",
                       help="The three importance maps with their rank correlations, the pruning curve and the "
                            "neuron view shown, as numbers.")
    share.image_format_control("heads_share")
    st.caption("The address bar is a link to this view (the selected head, the query token and the pruning "
               "order included). To save one chart, use the camera icon that appears above it on hover.")


def heads_request(state: ViewState, loaded: LoadedModel) -> HeadsRequest:
    return HeadsRequest(spec=loaded.spec, text=state.text, target=state.target_spec(),
                        max_tokens=int(state.max_tokens), pair=state.pair.strip(), question=state.question.strip())


def main() -> None:
    cached.startup()
    load_from_url(PAGE, FIELDS)
    tasks.keep_task_values()
    st.title("Heads: which matter, and what one computes")
    show_notices(PAGE)
    with st.sidebar:
        st.header("Model")
        spec = controls.model_picker("model", "Model")
    loaded = load_model_or_error(spec)
    info = loaded.info if loaded else None
    with st.sidebar:
        kind = controls.target_controls(info)
        options = list(MAX_TOKEN_CHOICES)
        if st.session_state.get(widget_key("max_tokens")) not in options:
            options.append(st.session_state.get(widget_key("max_tokens")))
        st.selectbox("Token limit", sorted(o for o in options if isinstance(o, int)), key=widget_key("max_tokens"),
                     on_change=leave_saved, help="Longer texts are truncated to this many tokens.")
    tasks.text_inputs(kind, info)
    state = current(FIELDS)
    write_url(state, FIELDS)
    if loaded is None:
        return
    if not state.text.strip():
        st.info("Type or paste a sentence above to see which heads matter for the model's output.")
        return
    if tasks.missing_input(state, kind):
        st.info(markdown_escape(tasks.missing_input(state, kind)))
        return
    request = heads_request(tasks.request_state(state, kind, info), loaded)
    cache = cached.head_cache()

    def rank_heads(progress) -> tuple[HeadInputs, HeadImportance]:
        inputs = cache.inputs(request, loaded, progress)
        return inputs, cache.importance(request, loaded, inputs, progress)

    done = (cache.get(cache.inputs_key(request)), cache.get(cache.importance_key(request)))
    try:
        inputs, importance = done if all(part is not None for part in done) else run_with_progress(
            rank_heads, f"Ranking the heads of {loaded.spec}")
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        return

    st.markdown(markdown_escape(
        f"Every map ranks the {importance.gradient.size} heads ({importance.gradient.shape[0]} layers × "
        f"{importance.gradient.shape[1]}) by how much they matter for {importance.description}, which is "
        f"{format_score(importance.score)} on this text ({loaded.spec}). Click a cell to look inside that head."))
    n_layers, n_heads = importance.gradient.shape
    clamp_view("heads_layer", n_layers, "layer")
    clamp_view("heads_head", n_heads, "head")
    layer = int(st.session_state[widget_key("heads_layer")])
    head = int(st.session_state[widget_key("heads_head")])
    st.subheader("Which heads matter")
    importance_section(importance, layer, head)
    layer, head = selection_controls(n_layers, n_heads)
    view = neuron_section(request, loaded, inputs, layer, head)
    curve = pruning_section(request, loaded, inputs, importance)
    export_section(request, importance, curve, view)
    write_url(current(FIELDS), FIELDS)


main()
