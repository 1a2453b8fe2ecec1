"""How Jupyter shows an analysis that ends a cell; attached to `Analysis` by the package's `__init__`, so the
records never import drawing code."""

from __future__ import annotations

import html

from explain.records import Analysis


def notebook_html(analysis: Analysis) -> str:
    """The standalone report (highlights and figures, offline) in a frame of its own, so its styles and plotly.js
    stay out of the notebook; then each method's row when the analysis holds several."""
    from explain.viz.methods import method_rows, methods_highlights_html  # lazy: `import explain` skips plotly
    from explain.viz.report import standalone_html

    frame = (f'<iframe srcdoc="{html.escape(standalone_html(analysis), quote=True)}" style="width:100%;height:900px;'
             'border:1px solid #e4e7eb;" onload="this.style.height=(this.contentWindow.document.body'
             '.scrollHeight+40)+\'px\'"></iframe>')
    if len(analysis.methods) < 2:
        return frame
    return frame + methods_highlights_html(analysis.words.words, method_rows(analysis))


def attach_notebook_display() -> None:
    """Give `Analysis` its `_repr_html_` (Jupyter's hook for rich display)."""
    Analysis._repr_html_ = notebook_html  # type: ignore[attr-defined]
