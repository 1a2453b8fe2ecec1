"""Saved analyses: newest first, open them, delete one's own, or upload a JSON export.

Anyone may open a saved analysis; only its saver deletes it: this browser session's own
analyses have a Delete button, and any other one needs the delete token its saver was
shown. With EXPLAIN_TEAM_MODE=1 the list holds only this session's own analyses, so
visitors do not see each other's texts.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from dashboard import cached
from dashboard.components.share import (
    forget_saved_id,
    save_document,
    saved_ids,
    session_delete_token,
    show_delete_token,
)
from dashboard.components.text import markdown_escape
from explain import ExplainError
from explain.document import document_from_json
from explain.store import format_size

PAGE = "saved"
VIEWS = Path(__file__).resolve().parent
MAX_UPLOAD_BYTES = 50 * 1024 * 1024  # server.maxUploadSize in .streamlit/config.toml
TEAM_MODE_ENV = "EXPLAIN_TEAM_MODE"


def team_mode() -> bool:
    """Whether the Saved page lists only this session's analyses ($EXPLAIN_TEAM_MODE is 1, true, yes or on)."""
    return os.environ.get(TEAM_MODE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def upload_section() -> None:
    st.subheader("Open a JSON export")
    upload = st.file_uploader("JSON exported from this dashboard (or written by `python -m explain --out`)",
                              type=["json"], key="upload")
    if upload is None:
        return
    done = st.session_state.get("_upload_saved")
    if done and done[0] == upload.file_id:  # saved on an earlier run: not again (it may have been deleted since)
        _, analysis_id, kind, preview = done
        fresh = None
    else:
        try:
            limit = min(MAX_UPLOAD_BYTES, cached.get_store().max_document_bytes)
            if upload.size > limit:
                raise ExplainError(f"The file is {format_size(upload.size)}, more than the {format_size(limit)} "
                                   "an upload may be.")
            document = document_from_json(upload.getvalue())
            fresh = save_document(document)
        except ExplainError as exc:
            st.error(markdown_escape(f"{upload.name}: {exc}"))
            return
        analysis_id, kind, preview = fresh.id, document.kind, document.preview
        st.session_state["_upload_saved"] = (upload.file_id, analysis_id, kind, preview)
    page = "explore" if kind == "explore" else "compare"
    st.success(markdown_escape(f"{upload.name} holds a {'single-model analysis' if page == 'explore' else 'comparison'} "
                               f"of «{preview[:80]}»."))
    st.page_link(VIEWS / f"{page}.py", label=f"Open it on the {page.title()} page", icon=":material/arrow_forward:",
                 query_params={"analysis": analysis_id})
    if fresh is not None:
        show_delete_token(fresh)


def delete(analysis_id: str, token: str, *, error_key: str = "_delete_error") -> None:
    """Delete with `token`; the outcome is shown on the next run (a failure under `error_key`)."""
    try:
        gone = cached.get_store().delete(analysis_id, token)
    except ExplainError as exc:
        st.session_state[error_key] = str(exc)
        return
    cached.forget_saved()
    if token == session_delete_token():
        forget_saved_id(analysis_id)
    st.session_state["_deleted"] = (f"Deleted {analysis_id}." if gone else
                                    f"Removed your claim on {analysis_id}; it stays saved for someone else who "
                                    "saved the same analysis.")


def delete_own(analysis_id: str) -> None:
    delete(analysis_id, session_delete_token())


TOKEN_ERROR_KEY = "_delete_token_error"  # shown inside the token panel, which then stays open


def delete_with_token() -> None:
    delete(st.session_state.get("delete_id", "").strip(), st.session_state.get("delete_token_input", "").strip(),
           error_key=TOKEN_ERROR_KEY)


def list_section() -> None:
    if st.session_state.get("_deleted"):
        st.toast(markdown_escape(st.session_state.pop("_deleted")))
    if st.session_state.get("_delete_error"):
        st.error(markdown_escape(st.session_state.pop("_delete_error")))
    own = saved_ids()
    try:
        items = cached.get_store().list(limit=200, ids=own if team_mode() else None)
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        return
    if not items:
        st.info("Nothing saved yet: use “Save and share” on the Explore or Compare page."
                + (" This server lists only the analyses saved in your own browser session." if team_mode() else ""))
        return
    if team_mode():
        st.caption("This server lists only the analyses saved in your own browser session.")
    for item in items:
        with st.container(border=True):
            text_col, open_col, delete_col = st.columns([6, 1.2, 1.4], vertical_alignment="center")
            page = "explore" if item.kind == "explore" else "compare"
            text_col.text(item.preview or "(no text)")
            details = cached.saved_details(item.id)
            text_col.caption(markdown_escape(f"{item.kind} · {', '.join(item.models)}"
                                             + (f" · {details}" if details else "") + " · saved "
                                             f"{item.created_at[:16].replace('T', ' ')} UTC · id {item.id}"))
            open_col.page_link(VIEWS / f"{page}.py", label="Open", icon=":material/open_in_new:", query_params={"analysis": item.id})
            if item.id in own:
                delete_col.button("Delete", key=f"del_{item.id}", on_click=delete_own, args=(item.id,),
                                  icon=":material/delete:")


def token_section() -> None:
    error = st.session_state.pop(TOKEN_ERROR_KEY, None)
    with st.expander("Delete an analysis saved in another browser session", expanded=error is not None):
        if error is not None:
            st.error(markdown_escape(error))
        st.text_input("Id", key="delete_id", placeholder="the 12 characters after ?analysis= in its link")
        st.text_input("Delete token", key="delete_token_input", type="password",
                      help="The token shown when it was saved.")
        st.button("Delete", key="delete_with_token", on_click=delete_with_token, icon=":material/delete:")


def main() -> None:
    st.title("Saved analyses")
    list_section()
    token_section()
    upload_section()


main()
