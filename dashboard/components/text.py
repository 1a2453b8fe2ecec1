"""Text shown through Streamlit's Markdown (st.info, st.warning, st.caption, st.markdown...)."""

from __future__ import annotations

MARKDOWN_SPECIAL = set("\\`*_{}[]()#+-.!|<>~$")


def markdown_escape(text: str) -> str:
    """`text` shown literally in Markdown: every character Markdown (or its HTML, links, images, math)
    could read is backslash-escaped, and line breaks become spaces, so a label such as
    "[x](http://...)" stays text and never becomes a link or an image."""
    flat = " ".join(text.splitlines())
    return "".join("\\" + c if c in MARKDOWN_SPECIAL else c for c in flat)
