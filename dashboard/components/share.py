"""Save-and-share, and exports: JSON, standalone HTML, scores as CSV; PNG or SVG through each chart's camera button."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import streamlit as st

from dashboard import cached
from dashboard.components.panels import lazy_panel
from dashboard.components.text import markdown_escape
from dashboard.components.url_state import set_value
from dashboard.state import ViewState
from explain import Analysis, ExplainError
from explain.document import Document
from explain.exports import IMAGE_FORMATS, image_config
from explain.store import SaveReceipt, new_delete_token
from explain.viz.report import ReportView

# The chosen chart image format, kept outside any widget key so it survives moving between pages.
IMAGE_FORMAT_KEY = "chart_image_format"


# The toolbar keeps only the camera button: each of Plotly's buttons is a tab stop (eight a chart before), and
# zooming and panning stay on the mouse (drag, double-click to reset).
CHART_BUTTONS = [["toImage"]]


def chart_config(filename: str) -> dict[str, Any]:
    """Plotly config for one chart: its camera button (the toolbar's only one) saves `filename` in the format
    chosen under the charts."""
    image_format = st.session_state.get(IMAGE_FORMAT_KEY, IMAGE_FORMATS[0])
    config = image_config(filename, image_format if image_format in IMAGE_FORMATS else IMAGE_FORMATS[0])
    return {**config, "modeBarButtons": CHART_BUTTONS}


def report_view(state: ViewState, *, level: str | None = None) -> ReportView:
    """The page's current view for the HTML export; `level` overrides the state's (the Compare page shows words)."""
    return ReportView(level=level or state.level, layer=state.layer, head=state.head,
                      hide_special=state.hide_special, aggregate=state.aggregate, stat=state.stat,
                      token=state.token, layer_b=state.layer_b, head_b=state.head_b, mode=state.mode)


def image_format_control(key: str) -> None:
    """PNG or SVG for every chart's camera button (Streamlit passes chart configs as JSON, so no second button)."""
    widget = f"{key}_image_format"
    if widget not in st.session_state:
        st.session_state[widget] = st.session_state.get(IMAGE_FORMAT_KEY, IMAGE_FORMATS[0])

    def remember() -> None:
        st.session_state[IMAGE_FORMAT_KEY] = st.session_state[widget] or IMAGE_FORMATS[0]

    st.segmented_control("Charts save as", IMAGE_FORMATS, key=widget, required=True, on_change=remember,
                         format_func=lambda f: {"png": "PNG image", "svg": "SVG (vector)"}[f],
                         help="The format the camera icon above each chart saves, on this page and the others.")


SESSION_TOKEN_KEY = "saved_delete_token"  # one delete token per browser session, for everything it saves
SESSION_SAVED_KEY = "saved_ids"  # the ids this browser session saved (its own analyses)


def session_delete_token() -> str:
    """This browser session's delete token (made on first use; the store keeps only its hash)."""
    if SESSION_TOKEN_KEY not in st.session_state:
        st.session_state[SESSION_TOKEN_KEY] = new_delete_token()
    return st.session_state[SESSION_TOKEN_KEY]


def saved_ids() -> list[str]:
    """The ids of the analyses this browser session saved, oldest first."""
    return list(st.session_state.get(SESSION_SAVED_KEY, []))


def forget_saved_id(analysis_id: str) -> None:
    st.session_state[SESSION_SAVED_KEY] = [i for i in saved_ids() if i != analysis_id]


def save_document(document: Document) -> SaveReceipt:
    """Save `document` under this session's delete token and remember it as this session's own."""
    receipt = cached.get_store().save(document.to_data(), kind=document.kind, preview=document.preview,
                                      models=document.models, delete_token=session_delete_token())
    if receipt.id not in saved_ids():
        st.session_state[SESSION_SAVED_KEY] = [*saved_ids(), receipt.id]
    return receipt


def show_delete_token(receipt: SaveReceipt) -> None:
    """The delete token, shown once, right after a save."""
    st.caption("Only whoever holds its delete token can delete it. This browser session keeps the token; to delete "
               "it later from elsewhere, keep it now (it is not shown again):")
    st.code(receipt.delete_token, language=None)


def page_url(page_path: str, analysis_id: str) -> str:
    """An absolute link to `page_path?analysis=id` on this server (relative if the URL is unknown)."""
    current = st.context.url or ""
    origin = re.match(r"^(https?://[^/]+)", current)
    base = origin.group(1) if origin else ""
    path = "" if page_path == "explore" else page_path  # the default page lives at the root
    return f"{base}/{path}?analysis={analysis_id}"


def share_controls(make_document: Callable[[], Document], make_html: Callable[[], str], *, page_path: str,
                   file_stem: str, key: str, make_csv: Callable[[], str] | None = None) -> None:
    """The save button (save to the store and show the link), then an expander with the downloads (JSON,
    standalone HTML, the scores as CSV) and the charts' image format, sent only while it is open (`{key}_downloads`):
    the first screen does not need them."""
    # The link shown belongs to the analysis it was made for: it disappears when the request changes.
    fingerprint = repr([a.request for a in make_document().analyses])
    receipt = None
    if st.button("Save and share", key=f"{key}_save", icon=":material/share:", type="primary"):
        try:
            receipt = save_document(make_document())
        except ExplainError as exc:
            st.error(markdown_escape(exc))
        else:
            st.session_state[f"{key}_saved"] = (receipt.id, fingerprint)
            set_value("analysis", receipt.id)
    saved = st.session_state.get(f"{key}_saved")
    if saved and saved[1] == fingerprint:
        st.success("Saved. Anyone who can reach this server can open it with this link:")
        st.code(page_url(page_path, saved[0]), language=None)
        if receipt is not None:
            show_delete_token(receipt)
    panel = lazy_panel("Download: JSON, standalone HTML" + (", scores as CSV" if make_csv else "")
                       + "; the charts' image format", f"{key}_downloads")
    if panel is None:
        return
    with panel:
        downloads(make_document, make_html, file_stem=file_stem, key=key, make_csv=make_csv)


def downloads(make_document: Callable[[], Document], make_html: Callable[[], str], *, file_stem: str, key: str,
              make_csv: Callable[[], str] | None = None) -> None:
    """The download buttons, what each holds, and the charts' image format."""
    json_col, html_col, csv_col = st.columns(3)
    json_col.download_button("Download JSON", data=lambda: make_document().to_json(), file_name=f"{file_stem}.json",
                             mime="application/json", key=f"{key}_json", icon=":material/download:")
    html_col.download_button("Download HTML", data=make_html, file_name=f"{file_stem}.html", mime="text/html",
                             key=f"{key}_html", icon=":material/download:")
    if make_csv is not None:
        csv_col.download_button("Download CSV", data=make_csv, file_name=f"{file_stem}.csv", mime="text/csv",
                                key=f"{key}_csv", icon=":material/table:")
    st.caption("JSON: the whole analysis; upload it on the Saved page to reopen it. HTML: a standalone page showing "
               "this view (level, layer, head, aggregate) that works offline."
               + (" CSV: the attribution score of every word (or token, at the subword level)." if make_csv else ""))
    image_format_control(key)
    st.caption("To save one chart, use the camera icon that appears above it on hover; it saves the format "
               "chosen here.")

WRONG_PAGE = {
    "explore": "is a comparison; open it on the Compare page",
    "compare": "holds one model; open it on the Explore page",
}


def open_saved(analysis_id: str, kind: str) -> tuple[list[Analysis] | None, str]:
    """The analyses of the saved document a link names, and when it was saved.

    None (with the reason shown and the id dropped, so the page analyses live) when the id is
    unknown, the store unreadable, or the document belongs on the other page.
    """
    if not analysis_id:
        return None, ""
    try:
        document, created = cached.saved_document(analysis_id)
    except ExplainError as exc:
        st.error(markdown_escape(exc))
        set_value("analysis", "")
        return None, ""
    if document.kind != kind:
        st.error(markdown_escape(f"The saved analysis '{analysis_id}' {WRONG_PAGE[kind]}."))
        set_value("analysis", "")
        return None, ""
    return document.analyses, created


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "analysis"
