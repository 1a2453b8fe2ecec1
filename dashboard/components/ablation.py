"""Knocking heads out: the head picker (kept in the URL as `ablate` / `ablate_mode`), the banner that says
which heads an analysis runs without, and the prediction change against the full model."""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from dashboard.components.text import markdown_escape
from dashboard.components.url_state import leave_saved, widget_key
from explain import Analysis, AnalysisRequest, InputError
from explain.heads import ABLATION_MODES, HeadSet
from explain.viz.theme import format_score

MODE_NAMES = {"zero": "zero", "mean": "mean over the text"}
MODE_HELP = ("What a removed head outputs: zeros, or its mean output over the text's tokens (from the full model). "
             "Mean ablation keeps the size of the layer's output, so it disturbs the later layers less.")
HEADS_PICK = "ablate_pick_heads"
LAYERS_PICK = "ablate_pick_layers"


def head_label(layer: int, head: int) -> str:
    return f"{layer}:{head}"


def parse_kept(text: str, n_layers: int, n_heads: int) -> tuple[HeadSet, list[str]]:
    """The heads of `text` this model has, and one sentence for each entry it does not have."""
    kept: list[tuple[int, int]] = []
    problems = []
    for entry in text.split(","):
        if not entry.strip():
            continue
        try:
            kept += HeadSet.parse(entry, n_layers, n_heads).heads
        except InputError as exc:
            problems.append(str(exc))
    return HeadSet(tuple(kept), n_layers, n_heads), problems


def removed_heads(result: Analysis) -> tuple[tuple[int, int], ...]:
    """The (layer, head) pairs the analysis ran without (none for a full-model analysis)."""
    if not result.request.ablate:
        return ()
    return parse_kept(result.request.ablate, result.model.n_layers, result.model.n_heads)[0].heads


def heads_text(text: str) -> str:
    """'0:1, 2:*' from '0:1,2:*' (plain text; escape it for Markdown)."""
    return ", ".join(text.split(","))


def _set_heads(heads: HeadSet) -> None:
    st.session_state[widget_key("ablate")] = heads.format()
    leave_saved()


def _picked(n_layers: int, n_heads: int) -> HeadSet:
    """The set the two pickers hold now (single heads "layer:head", whole layers)."""
    single = ",".join(st.session_state.get(HEADS_PICK) or [])
    layers = ",".join(f"{int(layer)}:*" for layer in st.session_state.get(LAYERS_PICK) or [])
    return HeadSet.parse(f"{single},{layers}", n_layers, n_heads)


def head_picker(n_layers: int, n_heads: int, *, outlined: tuple[int, int] | None = None, warn: bool = True
                ) -> HeadSet:
    """Controls that choose the heads to remove (single heads, whole layers) and how; returns the chosen set.

    The set lives in the page state's `ablate` text (so in the URL); the pickers are drawn from it on each run.
    Entries of a link that this model does not have are dropped (with a notice when `warn`).
    """
    text = str(st.session_state.get(widget_key("ablate"), "") or "")
    heads, problems = parse_kept(text, n_layers, n_heads)
    for problem in problems if warn else []:
        st.warning(markdown_escape(f"A head to remove was ignored: {problem}"))
    if heads.format() != text:
        st.session_state[widget_key("ablate")] = heads.format()
    whole = [layer for layer in range(n_layers) if all((layer, h) in heads for h in range(n_heads))]
    st.session_state[LAYERS_PICK] = whole
    st.session_state[HEADS_PICK] = [head_label(layer, h) for layer, h in heads if layer not in whole]

    def changed() -> None:
        _set_heads(_picked(n_layers, n_heads))

    st.multiselect("Heads to remove", [head_label(layer, h) for layer in range(n_layers) for h in range(n_heads)],
                   key=HEADS_PICK, on_change=changed, placeholder="layer:head, e.g. 0:1",
                   help="Each entry is layer:head (counted from 0). The analysis reruns with these heads' outputs "
                        "removed: prediction, highlights and attention all come from the model without them.")
    st.multiselect("Whole layers", list(range(n_layers)), key=LAYERS_PICK, on_change=changed,
                   format_func=lambda layer: f"layer {layer} (all {n_heads} heads)", placeholder="none")
    st.radio("A removed head outputs", list(ABLATION_MODES), key=widget_key("ablate_mode"), horizontal=True,
             format_func=MODE_NAMES.get, help=MODE_HELP, on_change=leave_saved)
    if outlined is not None:
        layer, head = outlined
        st.button(f"Remove head {layer}:{head}", key="ablate_add_outlined", disabled=outlined in heads,
                  on_click=lambda: _set_heads(HeadSet((*heads.heads, outlined), n_layers, n_heads)),
                  help="Add the head outlined in the grid (click a thumbnail to outline it).", width="stretch")
    st.button("Keep every head", key="ablate_clear", disabled=not len(heads), width="stretch",
              on_click=lambda: _set_heads(HeadSet((), n_layers, n_heads)))
    return heads


def same_label(request: AnalysisRequest, full: Analysis) -> AnalysisRequest:
    """The request explaining the very label the full model's analysis explains (the ablated model's top
    prediction may be another one, and the change of one score is what is shown)."""
    target = full.request.target
    if target is None:
        return request
    label = full.prediction.labels[full.prediction.explained_index] if target.kind != "similarity" else ""
    return replace(request, target=replace(target, label=label))


def ablation_banner(result: Analysis, full: Analysis | None) -> None:
    """'Without heads …': which heads, how many of all, how removed, and the prediction change (when the
    full model's analysis is at hand)."""
    n_removed = len(removed_heads(result))
    n_total = result.model.n_layers * result.model.n_heads
    how = "set to zero" if result.request.ablate_mode == "zero" else "set to their mean output over the text"
    st.info(markdown_escape(f"Without heads {heads_text(result.request.ablate)} — {n_removed} of {n_total} heads "
                            f"removed ({how}). The prediction, the highlights and the attention below are those "
                            "of the model without them."))
    if full is None:
        st.caption("The full model's prediction is not part of this saved analysis; open the page without the saved "
                   "analysis to compare against it.")
        return
    p, q = result.prediction, full.prediction
    ablated_score = float(p.scores[p.explained_index])
    full_score = float(q.scores[q.explained_index])
    fmt = format_score
    st.metric(markdown_escape(f"{p.description}, without {n_removed} of {n_total} heads"), fmt(ablated_score),
              # The sign stays unescaped: st.metric reads a leading "-" as a fall.
              delta=f"{ablated_score - full_score:+.3g} "
                    + markdown_escape(f"against the full model ({fmt(full_score)})"),
              delta_color="off" if ablated_score == full_score else "normal")
    top_full = q.labels[int(q.scores.argmax())]
    top_ablated = p.labels[int(p.scores.argmax())]
    if top_full != top_ablated:
        st.warning(markdown_escape(f"Without these heads the top prediction changes from {top_full} to "
                                   f"{top_ablated}."))
