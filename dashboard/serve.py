"""Start the dashboard warm: `python -m dashboard.serve [streamlit run flags]` (what `make run` does).

Before Streamlit listens, this process imports what the default page imports, loads the default model into the
dashboard's model cache and computes the default page's analysis into its analysis cache (dashboard.cached), one
line per step with its seconds. The server then answers /_stcore/health, and the first visitor's page is a cache
hit instead of paying about 40 s of imports, model load and integrated gradients. Streamlit starts in this same
process (its own CLI, same flags), so the caches it serves from are the ones filled here.

EXPLAIN_WARM_UP=0 starts at once. A warm-up that fails (the model cannot load) prints one sentence and the server
starts anyway; the page then shows its own error.
"""

from __future__ import annotations

import ast
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from explain import Analysis, AnalysisRequest, LoadedModel

DASHBOARD = Path(__file__).resolve().parent
APP = DASHBOARD / "app.py"
WARM_UP_ENV = "EXPLAIN_WARM_UP"
# Streamlit logs "No runtime found" once per st.cache_data function decorated before its runtime exists.
QUIET_LOGGERS = ("streamlit.runtime.caching.cache_data_api",)
# What Streamlit imports on the default page's first run, for its elements: st.dataframe (the score table) pandas
# and pyarrow, st.set_page_config's icon the emoji table (about 3.5 s of that run under load, measured).
STREAMLIT_LAZY = ("pandas", "pyarrow", "streamlit.emojis")


def script_imports(path: Path) -> list[tuple[str, list[str]]]:
    """The modules a script imports at its top level, each with the names it takes from it: what its first run
    imports."""
    found: list[tuple[str, list[str]]] = []
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            found += [(alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 and node.module != "__future__":
            found.append((node.module, [alias.name for alias in node.names]))
    return found


def import_default_page() -> None:
    """Import what app.py and the default page import (the page's own script is run by Streamlit per visit), and
    what Streamlit imports for that page's elements."""
    from dashboard.components.navigation import PAGES, VIEWS

    default = next(p for p in PAGES if p.default)
    wanted = script_imports(APP) + script_imports(VIEWS / f"{default.name}.py") + [(m, []) for m in STREAMLIT_LAZY]
    for name, taken in wanted:
        module = importlib.import_module(name)
        for attribute in taken:  # `from package import module` imports the module too
            if not hasattr(module, attribute):
                importlib.import_module(f"{name}.{attribute}")


def first_figure(result: Analysis) -> None:
    """Build one head's map as the page's first chart is built: Plotly loads the validators of a heatmap and its
    layout on the first figure of a process (about 0.5 s)."""
    from explain.viz.attention import attention_heatmap

    labels = list(result.tokens.tokens)
    attention_heatmap(result.attention.weights[0, 0], labels, labels, title="warm-up")


def default_request(loaded: LoadedModel) -> AnalysisRequest:
    """The analysis the explore page asks for on a visit with no link: the default state, read through the
    model's default target as the page's controls read it (dashboard.views.explore)."""
    from dashboard.components.tasks import request_state
    from dashboard.state import DEFAULTS

    return request_state(DEFAULTS, DEFAULTS.target or loaded.info.targets[0], loaded.info).request()


@contextmanager
def quiet_streamlit() -> Iterator[None]:
    """Drop Streamlit's log records about running without its runtime (a filter: Streamlit sets its loggers'
    levels itself when it creates them)."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    for logger in loggers:
        logger.addFilter(no_runtime)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(no_runtime)


def no_runtime(record: logging.LogRecord) -> bool:
    return "No runtime found" not in record.getMessage()


def timed(label: str, step: Callable[[], Any], say: Callable[[str], None]) -> Any:
    start = time.perf_counter()
    result = step()
    say(f"{label} … {time.perf_counter() - start:.1f} s")
    return result


def warm_up(say: Callable[[str], None] = print) -> bool:
    """Fill the caches the default page reads; True when its analysis is cached. A model or analysis that fails
    is reported in one sentence and leaves the caches as they were."""
    with quiet_streamlit():
        timed("Importing the dashboard", import_default_page, say)
        from dashboard import cached
        from explain.models import DEFAULT_MODEL

        cached.startup()
        try:
            loaded = timed(f"Loading model {DEFAULT_MODEL}", lambda: cached.get_model(DEFAULT_MODEL), say)
            cache = cached.analysis_cache()
            request = default_request(loaded)
            result = timed("Analysing the default sentence", lambda: cache.compute(request, loaded), say)
            timed("Building a first chart", lambda: first_figure(result), say)
        except Exception as exc:  # noqa: BLE001 - any failure: the server starts and the page reports it
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            say(f"Warm-up failed, starting the server anyway: {reason}")
            return False
    return True


def main(argv: list[str] | None = None) -> int:
    flags = sys.argv[1:] if argv is None else argv
    if os.environ.get(WARM_UP_ENV, "1") != "0":
        warm_up(lambda line: print(line, flush=True))
    from streamlit.web import cli

    return int(cli.main(args=["run", str(APP), *flags], prog_name="streamlit") or 0)


if __name__ == "__main__":
    raise SystemExit(main())
