"""Explain a whole data set: the built-in sample or an uploaded file, run batch by batch on the server's scheduler,
then which method to believe, the words the model relies on, slices and finders (explain.corpus)."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import streamlit as st

from dashboard import cached
from dashboard.components import controls
from dashboard.components.corpus_results import show_run
from dashboard.components.loading import load_model_or_error
from dashboard.components.text import markdown_escape
from dashboard.components.url_state import current, load_from_url, set_value, show_notices, widget_key, write_url
from dashboard.state import CORPUS_FIELDS
from explain import ExplainError, LoadedModel
from explain.corpus import CorpusColumns, CorpusJob, CorpusProgress, ReaderLimits, price_job, run_job, sample_columns
from explain.corpus.readers import SAMPLE, sample_path
from explain.corpus.runs import (
    PageLimits,
    batch_turns,
    check_cli_folder,
    check_price,
    check_upload_size,
    file_columns,
    prune_runs,
    run_id,
    run_path,
    runs_folder,
    stage_upload,
)
from explain.methods import METHODS
from explain.pipeline import supported_methods
from explain.records import AnalysisRequest

PAGE = "corpus"
BATCH_SIZE = 8  # small batches: each is one turn on the model, so other visitors' work goes between them
DEFAULT_METHODS = ("gradient_x_input", "saliency")
RUNNING = "_corpus_running"  # session: the run id this session started and has not seen finish
OPENED = "_corpus_cli_folder"  # session: a CLI run folder opened (resolved, inside the roots)
NONE = "(none)"
TARGET_NAMES = ("model", "target", "label", "labels", "prompts", "reference", "target_token", "part", "logit")


@st.cache_resource(show_spinner=False)
def running_runs() -> tuple[threading.Lock, set[str]]:
    """Run ids being computed on this server, so two tabs never write one run folder at once."""
    return threading.Lock(), set()


def claim(identity: str) -> bool:
    lock, ids = running_runs()
    with lock:
        if identity in ids:
            return False
        ids.add(identity)
        return True


def release(identity: str) -> None:
    lock, ids = running_runs()
    with lock:
        ids.discard(identity)


def run_link(identity: str) -> str:
    import re

    origin = re.match(r"^(https?://[^/]+)", st.context.url or "")
    return f"{origin.group(1) if origin else ''}/corpus?run={identity}"


def source_controls(limits: PageLimits) -> tuple[str, str, CorpusColumns | None, bytes | None]:
    """(source kind, file name, columns, uploaded bytes); columns None while the upload is missing or unreadable."""
    kind = st.radio("Texts", ["sample", "upload"], horizontal=True, key="corpus_source",
                    format_func={"sample": "Built-in sample (200 labelled short texts)",
                                 "upload": "Upload a file"}.get)
    if kind == "sample":
        return kind, sample_path().name, sample_columns(), None
    upload = st.file_uploader("CSV, TSV, JSON Lines, Parquet or plain text (one text per line)",
                              type=["csv", "tsv", "tab", "jsonl", "ndjson", "parquet", "txt"], key="corpus_file",
                              help=f"Up to {limits.upload_bytes // 2 ** 20} MB here; larger files run with "
                                   "`python -m explain corpus FILE --out DIR`.")
    if upload is None:
        return kind, "", None, None
    try:
        check_upload_size(upload.size, limits)
        data = upload.getvalue()
        names = probe_columns(data, upload.name)
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        return kind, upload.name, None, None
    if not names:
        st.error("The file has no columns to read texts from.")
        return kind, upload.name, None, None
    left, middle, right = st.columns(3)
    text = left.selectbox("Text column", names, key="corpus_text_column", index=pick(names, ("text", "sentence")))
    optional = [NONE] + names
    label = middle.selectbox("Gold label column (optional)", optional, key="corpus_label_column",
                             index=pick(optional, ("label", "gold")))
    ident = right.selectbox("Id column (optional)", optional, key="corpus_id_column", index=pick(optional, ("id",)))
    try:
        columns = CorpusColumns(text=text, label=None if label == NONE else label, id=None if ident == NONE else ident)
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        return kind, upload.name, None, None
    return kind, upload.name, columns, data


def pick(options: list[str], wanted: tuple[str, ...]) -> int:
    lowered = [o.casefold() for o in options]
    return next((lowered.index(w) for w in wanted if w in lowered), 0)


def probe_columns(data: bytes, name: str) -> list[str]:
    """The column names of an uploaded file (written to a temporary file to read the first record)."""
    import tempfile

    suffix = Path(name).suffix.lower()
    with tempfile.NamedTemporaryFile(suffix=suffix) as handle:
        handle.write(data[: 1 << 20] if suffix != ".parquet" else data)
        handle.flush()
        return file_columns(Path(handle.name))


def method_controls(loaded: LoadedModel, target) -> tuple[list[str], bool, bool, bool]:
    names = supported_methods(loaded, AnalysisRequest(text="x", model=loaded.spec, target=target))
    default = [m for m in DEFAULT_METHODS if m in names] or names[:1]
    chosen = st.multiselect("Methods", names, default=default, key="corpus_methods",
                            format_func=lambda n: METHODS[n].title,
                            help="Each method explains every text; gradient methods are batched across texts.")
    faithful = st.toggle("Faithfulness", value=True, key="corpus_faithfulness",
                         help="Comprehensiveness and sufficiency of every method on every text, to rank the methods "
                              "on this data (slower).")
    heads = st.checkbox("Heads over the data", value=False, key="corpus_heads",
                        help="Per text, layer and head: attention statistics (entropy, distance, attention to special "
                             "tokens) and gradient importance (Michel et al.), averaged over the texts.")
    ablation = st.checkbox("With each head's ablation effect", value=False, key="corpus_head_ablation",
                           disabled=not heads, help="The score change when each head alone is removed: one forward "
                                                    "pass per head and text (much slower than the gradient).")
    return chosen, faithful, heads, heads and ablation


def progress_text(progress: CorpusProgress) -> str:
    left = "" if progress.seconds_left != progress.seconds_left else f", about {progress.seconds_left:.0f} s left"
    failed = f", {progress.failed} skipped" if progress.failed else ""
    return f"{progress.done} of {progress.total} texts explained{failed}{left}"


def run(job: CorpusJob, identity: str, folder: Path, loaded: LoadedModel, limits: PageLimits) -> bool:
    """Run (or resume) the job into its folder, batch by batch in turns; True when it finished."""
    if not claim(identity):
        st.info("This run is being computed in another tab or by another visitor; open its link in a minute.")
        return False
    st.session_state[RUNNING] = identity
    try:
        prune_runs(folder.parent, limits.max_runs, protect=identity)
        bar = st.progress(0.0, text="Reading the texts…")
        st.button("Cancel", key="corpus_cancel", help="Stops after the batch in flight; running again resumes.")
        turn = batch_turns(cached.shared_schedulers(), loaded, price_of(job, loaded), job.batch_size,
                           session=("corpus", cached.current_session()),
                           waiting=lambda text: bar.progress(0.0, text=markdown_escape(f"Waiting: {text}")))
        outcome = run_job(job, folder, loaded=loaded, turn=turn,
                          progress=lambda p: bar.progress(min(p.fraction, 1.0), text=progress_text(p)))
        bar.empty()
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        return False
    finally:
        release(identity)
    st.session_state.pop(RUNNING, None)
    return outcome.status == "done"


def price_of(job: CorpusJob, loaded: LoadedModel):
    key = ("corpus_price", job)
    if st.session_state.get("_corpus_price_key") != key:
        st.session_state["_corpus_price"] = price_job(job, loaded)
        st.session_state["_corpus_price_key"] = key
    return st.session_state["_corpus_price"]


def open_from_url(value: str) -> Path | None:
    if not value:
        return None
    try:
        return run_path(value)
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        set_value("run", "")
        return None


def cli_folder_controls() -> None:
    with st.expander("Open a run folder the CLI wrote"):
        st.caption("A folder written by `python -m explain corpus ... --out DIR`, inside the folders this server "
                   "allows (EXPLAIN_CORPUS_ROOTS).")
        value = st.text_input("Run folder", key="corpus_cli_path", placeholder="runs/sample")
        if st.button("Open", key="corpus_cli_open") and value:
            try:
                st.session_state[OPENED] = str(check_cli_folder(value))
                set_value("run", "")
            except ExplainError as exc:
                st.error(markdown_escape(exc))


def main() -> None:
    cached.startup()
    load_from_url(PAGE, CORPUS_FIELDS)
    st.title("Explain a corpus")
    st.caption("Explain every text of a data set at once: which method to believe on it, which words the model "
               "relies on, where it is wrong, and the texts worth a closer look.")
    show_notices(PAGE)
    limits = PageLimits.from_environment()
    with st.sidebar:
        st.header("Model")
        spec = controls.model_picker("model", "Model")
    loaded = load_model_or_error(spec)
    with st.sidebar:
        controls.target_controls(loaded.info if loaded else None)
        st.header("Methods")
        chosen, faithful, heads, ablation = (method_controls(loaded, current(set(TARGET_NAMES)).target_spec())
                                             if loaded else ([], False, False, False))
    state = current(CORPUS_FIELDS | set(TARGET_NAMES))
    opened = open_from_url(state.run)
    kind, name, columns, data = source_controls(limits)
    rows = st.number_input("Texts to read (from the top of the file)", min_value=1, max_value=limits.max_rows,
                           value=min(200, limits.max_rows), key="corpus_rows",
                           help=f"Up to {limits.max_rows} here; the CLI reads any number.")
    cli_folder_controls()
    started = st.button("Run", type="primary", key="corpus_run", disabled=loaded is None or columns is None
                        or not chosen)
    if loaded is not None and st.session_state.get(RUNNING) and not started:
        st.warning(markdown_escape("The last run stopped before it finished; run it again to resume from its "
                                   "finished batches."))
        st.session_state.pop(RUNNING, None)
    if started and loaded is not None and columns is not None:
        try:
            def make(source: str) -> CorpusJob:
                return CorpusJob(source=source, columns=columns, methods=tuple(chosen), model=loaded.spec,
                                 target=state.target_spec(), faithfulness=faithful, heads=heads,
                                 head_ablation=ablation, batch_size=BATCH_SIZE,
                                 limits=ReaderLimits(max_rows=int(rows)))

            if kind == "sample":
                job = make(SAMPLE)
                identity = run_id(job, "")
            else:
                assert data is not None
                identity, job = stage_upload(data, name, runs_folder(), make)
            check_price(price_of(job, loaded), job, limits)
        except ExplainError as exc:
            st.error(markdown_escape(exc))
            return
        folder = runs_folder() / identity
        if run(job, identity, folder, loaded, limits):
            st.session_state.pop(OPENED, None)
            set_value("run", identity)
            opened = folder
    state = replace(state, run=st.session_state.get(widget_key("run"), ""))
    write_url(state, CORPUS_FIELDS)
    try:
        if opened is not None:
            show_run(opened, run_link(opened.name))
        elif st.session_state.get(OPENED):
            show_run(Path(st.session_state[OPENED]), None)
    except ExplainError as exc:
        st.error(markdown_escape(exc))

main()
