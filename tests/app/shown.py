"""What a visitor reads in a Markdown element: its source with the backslash escapes taken out."""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def rendered_text(markdown: str) -> str:
    """The text Streamlit's renderer ends up with (escapes removed, word joiners kept): what its linkifier sees."""
    return _ESCAPE.sub(r"\1", str(markdown))


def plain(markdown: str) -> str:
    """The text shown: escapes removed, and the invisible word joiners that keep URLs unlinked."""
    return _ESCAPE.sub(r"\1", str(markdown)).replace("\u2060", "")
