"""What a visitor reads in a Markdown element: its source with the backslash escapes taken out."""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def plain(markdown: str) -> str:
    """The text shown: escapes removed, and the invisible word joiners that keep URLs unlinked."""
    return _ESCAPE.sub(r"\1", str(markdown)).replace("\u2060", "")
