"""Text a visitor or a document controls, made safe for Streamlit's Markdown.

st.info, st.caption, st.warning, st.error, st.markdown, widget labels and help texts render GitHub-flavoured
Markdown: a link or an image in a model name from a link would make every visitor's browser fetch from
anywhere. Backslash-escaping every ASCII punctuation character is allowed by CommonMark and shows the same
characters, leaving no link, image, HTML, emoji shortcode, colour directive or maths to interpret. Streamlit
also turns bare URLs, `www.` names and e-mail addresses in the rendered text into links, escapes or not, so an
invisible word joiner (U+2060) goes after each `:` and `@` and inside `www.`: the text reads the same, and no
link comes out of it.
"""

from __future__ import annotations

import re
import string

WORD_JOINER = "\u2060"
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
_LINK_STARTS = re.compile(r"([:@])|(?<=w)(?=ww\.)", re.IGNORECASE)


def markdown_escape(value: object) -> str:
    """`value` as Markdown that renders as exactly its text (one line, URLs unlinked)."""
    text = " ".join(str(value).splitlines())
    text = _LINK_STARTS.sub(lambda m: (m.group(1) or "") + WORD_JOINER, text)
    return _PUNCTUATION.sub(r"\\\1", text)
