"""Saved analyses: newest first, open or delete them, or upload a JSON export."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard import cached
from explain import ExplainError
from explain.document import document_from_json

PAGE = "saved"
VIEWS = Path(__file__).resolve().parent
MAX_UPLOAD_BYTES = 50 * 1024 * 1024


def upload_section() -> None:
    st.subheader("Open a JSON export")
    upload = st.file_uploader("JSON exported from this dashboard (or written by `python -m explain --out`)",
                              type=["json"], key="upload")
    if upload is None:
        return
    try:
        if upload.size > MAX_UPLOAD_BYTES:
            raise ExplainError(f"The file is larger than {MAX_UPLOAD_BYTES // 2**20} MB.")
        document = document_from_json(upload.getvalue())
        analysis_id = cached.get_store().save(document.to_data(), kind=document.kind, preview=document.preview,
                                              models=document.models)
    except ExplainError as exc:
        st.error(f"{upload.name}: {exc}")
        return
    page = "explore" if document.kind == "explore" else "compare"
    st.success(f"{upload.name} holds a {'single-model analysis' if page == 'explore' else 'comparison'} "
               f"of «{document.preview[:80]}».")
    st.page_link(VIEWS / f"{page}.py", label=f"Open it on the {page.title()} page", icon=":material/arrow_forward:",
                 query_params={"analysis": analysis_id})


def delete(analysis_id: str) -> None:
    try:
        cached.get_store().delete(analysis_id)
        cached.forget_saved()
        st.session_state["_deleted"] = analysis_id
    except ExplainError as exc:
        st.session_state["_delete_error"] = str(exc)


def list_section() -> None:
    if st.session_state.get("_deleted"):
        st.toast(f"Deleted {st.session_state.pop('_deleted')}.")
    if st.session_state.get("_delete_error"):
        st.error(st.session_state.pop("_delete_error"))
    try:
        items = cached.get_store().list(limit=200)
    except ExplainError as exc:
        st.error(str(exc))
        return
    if not items:
        st.info("Nothing saved yet: use “Save and share” on the Explore or Compare page.")
        return
    for item in items:
        with st.container(border=True):
            text_col, open_col, delete_col = st.columns([6, 1.2, 1.4], vertical_alignment="center")
            page = "explore" if item.kind == "explore" else "compare"
            text_col.text(item.preview or "(no text)")
            text_col.caption(f"{item.kind} · {', '.join(item.models)} · saved {item.created_at[:16].replace('T', ' ')}"
                             f" UTC · id {item.id}")
            open_col.page_link(VIEWS / f"{page}.py", label="Open", icon=":material/open_in_new:", query_params={"analysis": item.id})
            delete_col.button("Delete", key=f"del_{item.id}", on_click=delete, args=(item.id,), icon=":material/delete:")


def main() -> None:
    st.title("Saved analyses")
    list_section()
    upload_section()


main()
