"""Control groups: model picker, target, attribution method and its settings (generated from the registry)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import streamlit as st

from dashboard.components.text import markdown_escape
from dashboard.components.url_state import leave_saved, widget_key
from dashboard.state import DEFAULT_METHOD, INTEGRATION_CHOICES, MAX_TOKEN_CHOICES, setting_pairs, settings_text
from explain import BUILTIN_MODELS, ModelInfo
from explain.attention import HEAD_STATISTICS
from explain.methods import METHODS, Method, SettingSpec
from explain.precision import server_bf16_support
from explain.records import BASELINES, MAX_STEPS, MIN_STEPS
from explain.targets import ANSWER_PARTS, PROMPT_TEMPLATE, SENTIMENT_LABELS, TARGET_FIELDS, TARGETS

PART_NAMES = {"": "start", "start": "start", "end": "end", "span": "whole span"}
BASELINE_NAMES = {"pad": "[PAD] tokens", "mask": "[MASK] tokens", "zero": "zero vectors"}
INTEGRATION_NAMES = {"adaptive_simpson": "adaptive (stops when the attributions settle)",
                     "gauss_legendre": "fixed steps"}
INTEGRATION_HELP = ("How integrated gradients adds up the gradients along the path from the baseline to the text. "
                    "Adaptive spends model evaluations where the gradients change fastest and stops once the "
                    "attributions settle: it usually ranks the words as precisely as fixed steps with about half the "
                    "evaluations. Fixed steps always uses as many evaluations as the slider says.")


def _ensure_option(name: str, options: list) -> None:
    """A value from the URL that is not among the built-ins is added as an option, not dropped."""
    value = st.session_state.get(widget_key(name))
    if value is not None and value not in options:
        options.append(value)


def model_picker(name: str, label: str) -> str:
    """Built-in models, or any Hub id / local folder typed into the box."""
    options = list(BUILTIN_MODELS)
    _ensure_option(name, options)
    value = st.selectbox(
        label,
        options,
        key=widget_key(name),
        accept_new_options=True, on_change=leave_saved,
        help="Pick a built-in model or type a Hugging Face Hub id (e.g. bert-base-uncased) or a local folder. "
        + " ".join(f"**{k}**: {v}." for k, v in BUILTIN_MODELS.items()),
    )
    return (value or "").strip()


def target_title(kind: str, info: ModelInfo | None = None) -> str:
    """A target kind as the picker names it (the registry's title); "" is the model's default kind."""
    if not kind:
        default = info.targets[0] if info and info.targets else ""
        return f"model default ({TARGETS[default].title})" if default in TARGETS else "model default"
    return TARGETS[kind].title if kind in TARGETS else kind


def effective_target(info: ModelInfo | None) -> str:
    """The target kind the request resolves to: the one picked, else the model's default."""
    kind = st.session_state.get(widget_key("target")) or ""
    return kind or (info.targets[0] if info and info.targets else "")


def target_controls(info: ModelInfo | None, *, tucked: bool = False) -> str:
    """Target kind and the settings it reads (its `TargetKind.reads`); the kinds offered follow the model's head.

    Returns the effective kind. The token a token-level target explains is picked beside the prediction
    (its choices are the predicted entities and the tokens of the text).
    tucked: the settings go in a popover named after them, whose widgets the browser draws only when it is opened.
    """
    kinds = [""] + list(info.targets if info else [])
    _ensure_option("target", kinds)
    kind = st.selectbox(
        "Explain", kinds, key=widget_key("target"), on_change=leave_saved,
        format_func=lambda k: target_title(k, info),
        help="Which output the attributions explain. " + " ".join(
            f"**{markdown_escape(TARGETS[k].title)}**: {markdown_escape(TARGETS[k].summary)}"
            for k in kinds if k in TARGETS),
    )
    effective = kind or (info.targets[0] if info else "")
    reads = TARGETS[effective].reads if effective in TARGETS else ()
    shown = [field for field in TARGET_FIELD_CONTROLS if field in reads]
    if shown:
        label = ", ".join(TARGET_SETTING_NAMES[field] for field in shown)
        with st.popover(label[0].upper() + label[1:], width="stretch") if tucked else contextlib.nullcontext():
            for field in shown:
                TARGET_FIELD_CONTROLS[field]()
    return effective


def labels_control() -> None:
    field = TARGET_FIELDS["labels"]
    labels = st.text_input(f"{field.title} (comma-separated)", key=widget_key("labels"), on_change=leave_saved,
                           placeholder=field.placeholder)
    names = [name.strip() for name in (labels or "").split(",") if name.strip()] or list(SENTIMENT_LABELS)
    st.text_input(
        "Prompts ('|'-separated, one per label)", key=widget_key("prompts"), on_change=leave_saved,
        placeholder=" | ".join(PROMPT_TEMPLATE.format(name) for name in names),
        help=f"Empty: '{PROMPT_TEMPLATE.format('<label>')}' for each label.",
    )


def reference_control() -> None:
    field = TARGET_FIELDS["reference"]
    st.text_input(field.title, key=widget_key("reference"), on_change=leave_saved, placeholder=field.placeholder)


def label_control() -> None:
    field = TARGET_FIELDS["label"]
    st.text_input(
        field.title, key=widget_key("label"), on_change=leave_saved, placeholder=field.placeholder,
        help="Empty explains the top prediction. For a masked-LM model, a single vocabulary token; for a "
             "token-classification model, a label at the picked token (e.g. B-PER).",
    )


def part_control() -> None:
    if st.session_state.get(widget_key("part")) == "start":
        st.session_state[widget_key("part")] = ""  # one link for the default
    options = ["", *(p for p in ANSWER_PARTS if p != "start")]
    _ensure_option("part", options)
    st.radio(TARGET_FIELDS["part"].title, options, key=widget_key("part"), on_change=leave_saved, horizontal=True,
             format_func=lambda p: PART_NAMES.get(p, p),
             help="The start logit or the end logit of the answer (at the answer's token, or the token picked "
                  "beside the prediction), or the whole span's score (start + end logit).")


def logit_control() -> None:
    st.checkbox(TARGET_FIELDS["logit"].title, key=widget_key("logit"), on_change=leave_saved,
                help="Explain the raw logit of the label instead of its probability: a probability also "
                     "moves when other labels' logits move; the logit is the head's own score for this label.")


# A target's settings (the fields its kind reads), in the order they are shown, and what the popover holding them
# calls each.
TARGET_FIELD_CONTROLS: dict[str, Callable[[], None]] = {
    "labels": labels_control, "reference": reference_control, "label": label_control, "part": part_control,
    "logit": logit_control,
}
TARGET_SETTING_NAMES = {"labels": "labels, prompts", "reference": "reference text", "label": "label to explain",
                        "part": "answer part", "logit": "logit"}


def integration_control() -> None:
    fast = bool(st.session_state.get(widget_key("fast")))
    st.selectbox(
        "Integration", list(INTEGRATION_CHOICES), key=widget_key("integration"), on_change=leave_saved, disabled=fast,
        format_func=lambda c: INTEGRATION_NAMES.get(c, c), help=INTEGRATION_HELP
        + (" Fast mode chooses its own adaptive steps." if fast else ""),
    )


def steps_control() -> None:
    fast = bool(st.session_state.get(widget_key("fast")))
    adaptive = fast or st.session_state.get(widget_key("integration")) != "gauss_legendre"
    st.slider(
        "At most this many model evaluations" if adaptive else "Integration steps", min_value=MIN_STEPS,
        max_value=MAX_STEPS, key=widget_key("steps"), on_change=leave_saved,
        help="Fast mode: the most model evaluations allowed; it stops earlier once the attributions add up to the "
        "score change within 1%, and says under the highlights how many it used." if fast else
        "Adaptive integration: the most model evaluations allowed; it stops earlier once the attributions settle "
        "and says under the highlights how many it used." if adaptive else
        "More steps make integrated gradients more exact (smaller convergence delta) and slower.",
    )


def delta_control() -> None:
    fast = bool(st.session_state.get(widget_key("fast")))
    delta = {s.name: s for s in METHODS[DEFAULT_METHOD].settings_type.specs()}["delta_tolerance"]
    st.number_input("Largest convergence delta (share of the score change)", min_value=float(delta.minimum or 0),
                    max_value=float(delta.maximum or 1), step=0.01, format="%g", key=widget_key("delta_tolerance"),
                    on_change=leave_saved,
                    disabled=fast or st.session_state.get(widget_key("integration")) != "adaptive_simpson",
                    help="Adaptive integration keeps adding evaluations until the attributions add up to the score "
                         f"change within this share (0: it stops once they settle; default {delta.default:g}).")


def fast_control() -> None:
    """Fast mode (bfloat16) where it is faster on this server; elsewhere one sentence on why it is off (and the
    toggle only while a link has it on, so that it can be turned off)."""
    support = server_bf16_support()
    if support.fast or st.session_state.get(widget_key("fast")):
        st.toggle("Fast mode", key=widget_key("fast"), on_change=leave_saved,
                  help="Adaptive steps (the slider is the cap) until the convergence delta is within 1% of the score "
                  "change, with the model in bfloat16: word rankings practically unchanged. The steps actually used "
                  "are shown under the highlights.")
    if not support.fast:
        st.caption(markdown_escape(support.reason))


# A method's settings that live in the request's own fields (its `request_fields`), in the order they are shown.
REQUEST_FIELD_CONTROLS: dict[str, Callable[[], None]] = {
    "integration": integration_control, "n_steps": steps_control, "delta_tolerance": delta_control,
    "precision": fast_control,
}


def attribution_controls(*, tucked: bool = False) -> None:
    """The method picker and the chosen method's settings (its declared ones, then those read from the request's
    fields), then what every method reads: the baseline and the token limit.

    tucked: the settings read from the request's fields, the baseline and the token limit go in a popover, whose
    widgets the browser draws only when it is opened (a page's first screen draws fewer widgets).
    """
    name = method_picker()
    fields = [field for field in REQUEST_FIELD_CONTROLS if field in METHODS[name].request_fields]
    label = "Integration, baseline, token limit" if fields else "Baseline, token limit"
    with st.popover(label, width="stretch") if tucked else contextlib.nullcontext():
        for field in fields:
            REQUEST_FIELD_CONTROLS[field]()
        baseline_and_limit()


def baseline_and_limit() -> None:
    """What every method reads: the baseline and the token limit."""
    st.selectbox("Baseline", BASELINES, key=widget_key("baseline"), on_change=leave_saved, format_func=BASELINE_NAMES.get,
                 help="The reference input: every non-special token replaced by this. [CLS]/[SEP] are kept.")
    options = list(MAX_TOKEN_CHOICES)
    _ensure_option("max_tokens", options)
    st.selectbox("Token limit", sorted(options), key=widget_key("max_tokens"), on_change=leave_saved,
                 help="Longer texts are truncated to this many tokens (and the page says so).")


def method_picker() -> str:
    """The attribution method shown (the URL's `me`), then the chosen method's own settings."""
    options = list(METHODS)
    name = st.selectbox(
        "Attribution method", options, key=widget_key("method"), on_change=leave_saved,
        format_func=lambda n: METHODS[n].title,
        help="How each word's share of the score is measured. " + " ".join(
            f"**{markdown_escape(m.title)}**: {markdown_escape(m.summary)}" for m in METHODS.values()),
    )
    method_settings_controls(METHODS[name])
    return name


def setting_widget_key(method: str, setting: str) -> str:
    return widget_key(f"ms.{method}.{setting}")


def method_settings_controls(method: Method) -> None:
    """One widget per declared setting of `method` (integrated gradients' are the steps and fast mode).

    The widgets' values are written back into the URL field `method_settings` as "method.setting=value"
    entries, only those off their default; entries of other methods are kept.
    """
    if method.name == DEFAULT_METHOD:
        return
    text_key = widget_key("method_settings")
    pairs = dict(setting_pairs(st.session_state.get(text_key, "")))
    for spec in method.settings_type.specs():
        key = setting_widget_key(method.name, spec.name)
        entry = f"{method.name}.{spec.name}"
        if key not in st.session_state:
            st.session_state[key] = method.settings_type.parse({spec.name: pairs[entry]}).as_dict()[spec.name] \
                if entry in pairs else spec.default
        value = setting_widget(spec, key)
        if value == spec.default:
            pairs.pop(entry, None)
        else:
            pairs[entry] = setting_value_text(value)
    st.session_state[text_key] = settings_text(pairs)


def setting_value_text(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return repr(value) if isinstance(value, float) else str(value)


def setting_widget(spec: SettingSpec, key: str) -> object:
    """A number input within the setting's range, a select box for choices, a checkbox for a flag."""
    label = spec.name.replace("_", " ").capitalize()
    help_text = markdown_escape(f"{spec.help} (default {spec.default})")
    if spec.kind is bool:
        return st.checkbox(label, key=key, on_change=leave_saved, help=help_text)
    if spec.choices:
        return st.selectbox(label, list(spec.choices), key=key, on_change=leave_saved, help=help_text)
    if spec.kind in (int, float):
        cast = spec.kind
        return st.number_input(
            label, key=key, on_change=leave_saved, help=help_text,
            min_value=None if spec.minimum is None else cast(spec.minimum),
            max_value=None if spec.maximum is None else cast(spec.maximum),
            step=1 if cast is int else None, format=None if cast is int else "%g",
        )
    return st.text_input(label, key=key, on_change=leave_saved, help=help_text)


def statistic_picker() -> str:
    return st.selectbox("Statistic", list(HEAD_STATISTICS), key=widget_key("stat"),
                        format_func=lambda s: f"{s}: {HEAD_STATISTICS[s]}")
