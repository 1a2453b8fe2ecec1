"""Text a visitor or a document controls, made safe for Streamlit's Markdown.

st.info, st.caption, st.warning, st.error, st.markdown, widget labels and help texts render GitHub-flavoured
Markdown: a link or an image in a model name from a link would make every visitor's browser fetch from
anywhere, and a bare URL becomes a link by itself. Backslash-escaping every ASCII punctuation character is
allowed by CommonMark, shows the same characters, and leaves no link, image, autolink, HTML, emoji shortcode,
colour directive or maths to interpret.
"""

from __future__ import annotations

import re
import string

_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


def markdown_escape(value: object) -> str:
    """`value` as Markdown that renders as exactly its text, on one line."""
    text = " ".join(str(value).splitlines())
    return _PUNCTUATION.sub(r"\\\1", text)
