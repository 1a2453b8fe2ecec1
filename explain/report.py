"""Standalone HTML exports: one page per analysis, or two analyses side by side.

The pages work offline with no server: plotly.js is inlined once and every
figure after the first reuses it. All user-provided text is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio

from explain.analysis import APP_VERSION, Analysis
from explain.figures import (
    attention_grid,
    attention_heatmap,
    continues_word,
    prediction_figure,
    subword_pieces,
    token_highlights_html,
)

_CSS = """
body { font-family: Inter, 'Segoe UI', Helvetica, Arial, sans-serif; color: #1f2933; margin: 0;
       background: #f5f7fa; line-height: 1.5; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 12px; }
h2 { font-size: 19px; margin: 0 0 10px; }
h3 { font-size: 16px; margin: 16px 0 6px; }
section { background: #ffffff; border: 1px solid #e4e7eb; border-radius: 8px; padding: 16px 20px;
          margin: 16px 0; }
blockquote { margin: 0 0 12px; padding: 10px 14px; background: #f0f4f8; border-left: 4px solid #9fb3c8;
             white-space: pre-wrap; word-break: break-word; font-size: 16px; }
table.meta { border-collapse: collapse; font-size: 14px; }
table.meta th { text-align: left; font-weight: 600; padding: 2px 16px 2px 0; color: #52606d;
                vertical-align: top; white-space: nowrap; }
table.meta td { padding: 2px 0; word-break: break-word; }
.note { color: #52606d; font-size: 13px; }
.warn { color: #9b2c2c; }
.columns { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 16px; }
.columns > section { margin: 0; }
footer { color: #7b8794; font-size: 12px; margin-top: 24px; }
"""

_PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}


class _Figures:
    """Turns figures into HTML fragments; only the first one carries plotly.js."""

    def __init__(self) -> None:
        self._first = True

    def __call__(self, fig: go.Figure) -> str:
        fragment = pio.to_html(
            fig,
            full_html=False,
            include_plotlyjs=self._first,
            config=_PLOTLY_CONFIG,
            default_width="100%",
        )
        self._first = False
        return fragment


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str) -> str:
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n<main>\n"
        f"{body}\n"
        f"<footer>Exported by explain-dashboard {_e(APP_VERSION)}. "
        "Works offline: plotly.js is included in this file.</footer>\n"
        "</main>\n</body>\n</html>\n"
    )


def _meta_table(rows: Sequence[tuple[str, str]]) -> str:
    cells = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f'<table class="meta">{cells}</table>'


def _model_rows(analysis: Analysis) -> list[tuple[str, str]]:
    model, tokens, attribution = analysis.model, analysis.tokens, analysis.attribution
    n_tokens = f"{len(tokens)}"
    if tokens.truncated:
        n_tokens += f" (truncated from {tokens.n_tokens_full})"
    name = model.spec if model.spec == model.name else f"{model.spec} ({model.name})"
    return [
        ("model", name),
        ("architecture", f"{model.head}, {model.n_layers} layers x {model.n_heads} heads"),
        ("explained", analysis.prediction.description),
        (
            "method",
            f"{attribution.method.replace('_', ' ')}, {attribution.n_steps} steps, {attribution.baseline} baseline",
        ),
        ("tokens", n_tokens),
    ]


def _convergence_html(analysis: Analysis) -> str:
    a = analysis.attribution
    total = float(np.sum(a.scores))
    change = a.score_input - a.score_baseline
    relative = a.relative_delta
    verdict = (
        "the attributions account for the score change well"
        if relative <= 0.05
        else "the attributions do not add up to the score change; more steps would help"
    )
    rows = [
        ("score on the text", f"{a.score_input:.4f}"),
        ("score on the baseline", f"{a.score_baseline:.4f}"),
        ("sum of attributions", f"{total:.4f} (should equal {change:.4f})"),
        ("convergence delta", f"{a.delta:.2e} ({relative:.1%} of the change)"),
    ]
    cls = "note" if relative <= 0.05 else "note warn"
    return f'{_meta_table(rows)}<p class="{cls}">Completeness check: {_e(verdict)}.</p>'


def _highlights(analysis: Analysis) -> str:
    words = token_highlights_html(analysis.words.words, analysis.word_scores, title="Words")
    pieces = token_highlights_html(
        subword_pieces(analysis.tokens.tokens), analysis.attribution.scores, title="Tokens (as the model saw them)",
        joined=continues_word(analysis.tokens.tokens),
    )
    return f'{words}<div style="height:14px"></div>{pieces}'


def standalone_html(analysis: Analysis, *, title: str | None = None) -> str:
    """A complete offline HTML page for one analysis.

    Args:
        analysis: the result to show.
        title: page title; defaults to one built from the text.

    Returns:
        The page: text, model, prediction, word and token highlights, convergence,
        one attention head and the all-heads grid.
    """
    text = analysis.request.text
    if title is None:
        short = text if len(text) <= 60 else text[:57] + "..."
        title = f"Explanation of “{short}”"
    figure = _Figures()
    weights = np.asarray(analysis.attention.weights)
    tokens = analysis.tokens.tokens
    parts = [
        f"<h1>{_e(title)}</h1>",
        f"<section><h2>Text</h2><blockquote>{_e(text)}</blockquote>{_meta_table(_model_rows(analysis))}</section>",
        f"<section><h2>Prediction</h2>{figure(prediction_figure(analysis.prediction))}</section>",
        "<section><h2>Which tokens pushed the score</h2>"
        '<p class="note">Integrated-gradients attribution of the explained score; hover a token for its value.</p>'
        f"{_highlights(analysis)}<h3>Convergence</h3>{_convergence_html(analysis)}</section>",
    ]
    if weights.ndim == 4 and weights.shape[0] and weights.shape[1] and weights.shape[-1] == len(tokens):
        head = attention_heatmap(weights[0, 0], tokens, tokens, title="layer 0, head 0")
        grid = attention_grid(weights)
        parts.append(
            "<section><h2>Attention</h2>"
            f"{figure(head)}"
            "<h3>All layers and heads</h3>"
            '<p class="note">Each thumbnail is one head (rows: from, columns: to), downsampled and scaled to '
            "its own maximum.</p>"
            f"{figure(grid)}</section>"
        )
    return _page(title, "\n".join(parts))


def _column(analysis: Analysis, figure: _Figures) -> str:
    return (
        f"<section><h2>{_e(analysis.model.spec)}</h2>{_meta_table(_model_rows(analysis))}"
        f"<h3>Prediction</h3>{figure(prediction_figure(analysis.prediction))}"
        f"<h3>Attribution</h3>{_highlights(analysis)}"
        f"<h3>Convergence</h3>{_convergence_html(analysis)}</section>"
    )


def comparison_html(left: Analysis, right: Analysis, *, extra_sections: Sequence[tuple[str, str]] = ()) -> str:
    """A complete offline HTML page with two analyses side by side.

    Args:
        left: first analysis.
        right: second analysis.
        extra_sections: (heading, html_fragment) pairs appended below; headings are
            escaped, fragments are inserted as given and must already be safe HTML.
    """
    figure = _Figures()
    if left.request.text == right.request.text:
        texts = f"<blockquote>{_e(left.request.text)}</blockquote>"
    else:
        texts = (
            f"<h3>{_e(left.model.spec)}</h3><blockquote>{_e(left.request.text)}</blockquote>"
            f"<h3>{_e(right.model.spec)}</h3><blockquote>{_e(right.request.text)}</blockquote>"
        )
    title = f"Comparison: {left.model.spec} vs {right.model.spec}"
    parts = [
        f"<h1>{_e(title)}</h1>",
        f"<section><h2>Text</h2>{texts}</section>",
        f'<div class="columns">{_column(left, figure)}{_column(right, figure)}</div>',
    ]
    for heading, fragment in extra_sections:
        parts.append(f"<section><h2>{_e(heading)}</h2>{fragment}</section>")
    return _page(title, "\n".join(parts))
