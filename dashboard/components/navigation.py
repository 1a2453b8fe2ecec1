"""The pages (one declaration for st.navigation and for the sidebar's links) and the links themselves.

The sidebar links are st.page_link with the destination's query: the text, the model, the target and the method
travel in the link, so a page opens on them with one browser-history entry (Back and Forward step page by page).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

VIEWS = Path(__file__).resolve().parent.parent / "views"


@dataclass(frozen=True)
class PageSpec:
    name: str  # its file in views/ and its URL path
    title: str
    icon: str
    default: bool = False


PAGES = (
    PageSpec("explore", "Explore", ":material/search:", default=True),
    PageSpec("compare", "Compare", ":material/compare_arrows:"),
    PageSpec("methods", "Methods", ":material/view_list:"),
    PageSpec("corpus", "Corpus", ":material/dataset:"),
    PageSpec("heads", "Heads", ":material/grid_view:"),
    PageSpec("saved", "Saved", ":material/bookmarks:"),
)


def pages() -> list[st.Page]:
    return [st.Page(VIEWS / f"{p.name}.py", title=p.title, icon=p.icon, url_path=p.name, default=p.default)
            for p in PAGES]


def page_name(page: st.Page) -> str:
    """The name (`PageSpec.name`) of a page from `pages()`."""
    return next(p.name for p in PAGES if p.title == page.title)


def draw_links(slot, query_for: Callable[[str], dict[str, str]]) -> None:
    """One link per page in `slot` (a placeholder at the top of the sidebar), each carrying its page's query."""
    with slot.container():
        for p, page in zip(PAGES, pages()):
            st.page_link(page, label=p.title, icon=p.icon, query_params=query_for(p.name) or None, width="stretch")
        st.divider()
