"""What a visitor reads in a Markdown element: its source with the backslash escapes taken out."""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


def plain(markdown: str) -> str:
    return _ESCAPE.sub(r"\1", str(markdown))
