"""How fast the explore page renders in a real browser, and how much it sends.

For each case a fresh dashboard server is started as `make run` starts it (`python -m dashboard.serve`, on a free
loopback port: it imports the dashboard, loads the embedded model and computes the default page's analysis before it
listens) and headless Chromium (Debian's /usr/bin/chromium, driven by Playwright) opens the explore page:

- server ready: seconds from starting the server's process to its /_stcore/health answering (the dashboard's
  includes that warm-up; the floor's is Streamlit's start alone);
- cold: the first visit once the server is ready: the default page (the bare address `make run` prints: the
  default sentence on the embedded model), in a fresh browser context (empty HTTP cache; in --pair, the returning
  browser's still empty profile). Its model and analysis were computed by the warm-up, so it is the page's first
  script run (its figures built), the transfer and all rendering; the floor's cold visit is its own first visit;
- first visit of the link: next, the case's own URL (below) for the first time: its analysis runs (and for bert-base
  the model loads), not counted among the warm loads;
- warm: the same URL again in a new page (new Streamlit session; the browser's HTTP cache is warm): the model,
  the analysis and its figures come from the server's caches, so this is rendering and transfer only; measured in
  a private context (Playwright's new_context(), incognito-like) and in a returning browser (a persistent on-disk
  profile, visited once before timing, which keeps V8's compiled code for the Plotly chunk as a person's does).

"Rendered" = the app is connected and idle (script not running, no stale elements), the token highlights are
there, the prediction's bars are there (HTML, with their scores as text) and the single-head map has been drawn by
Plotly (SVG plus the heatmap image), as has any other chart the page sent: the first screen. The floor's is its one
heatmap drawn. Time runs from page.goto() to that point, measured in this process.

Bytes: `len(explain.viz.attention.attention_grid(weights).to_json())` for the real weights of that input (what the
page sends for the grid), the websocket frame that actually carried the grid (found by its "heads" trace), and
every websocket payload the page received (uncompressed payload sizes as Playwright reports them).

Cases: (0) the floor: benchmarks/floor_app.py, one Plotly heatmap on an otherwise empty Streamlit page; (a) the embedded all-MiniLM-L6-v2 at 32 tokens; (b) a random bert-base-size BertModel (12 layers x 12 heads,
hidden 768), saved with save_pretrained to a temporary folder with a BertTokenizer on the embedded model's vocab,
at 128 tokens (mx=128). Targets: warm render of (a) under 2 s; grid of (b) under 2 MB; (a) within 1.3x of the floor
in the same run, judged on the interleaved measurement (--pair, also part of a full run): both servers up, one
returning browser loading the floor and the page alternately, so that a change of load hits both alike.

Run: .venv/bin/python benchmarks/dashboard_render.py [--warm N] [--only floor|minilm|bert-base] [--pair] [--no-write]
Writes docs/benchmarks-dashboard.md (same table) unless --no-write.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import common  # noqa: E402

from testkit.server import CHROMIUM, CHROMIUM_ARGS, launch_browser, running_server  # noqa: E402

DOC = HERE.parent / "docs" / "benchmarks-dashboard.md"
VIEWPORT = {"width": 1440, "height": 2000}
TIMEOUT_MS = 900_000
WARM_TARGET_S = 2.0
GRID_TARGET_BYTES = 2_000_000
PAIR_TARGET_RATIO = 1.3
COLD_TARGET_RATIO = 2.0  # first visit of the page against the floor's, same run
SERVER_TIMEOUT_S = 900  # the warm-up (imports, model load, one analysis) takes minutes on a loaded 2-core machine

# The first screen: the prediction's bars (HTML) and the token highlights there, the single-head map drawn (its
# heatmap image included), and any other chart the page sent drawn too (the other views are drawn when opened).
RENDERED = """() => {
  const app = document.querySelector("[data-testid='stApp']");
  if (!app || app.getAttribute('data-test-connection-state') !== 'CONNECTED'
      || app.getAttribute('data-test-script-state') !== 'notRunning') return false;
  if (document.querySelector("[data-stale='true']")) return false;
  if (document.querySelector("[data-testid='stException'], [data-testid='stAlertContentError']")) return 'error';
  const drawn = (gd, heatmap) => !!(gd && gd._fullLayout && gd.querySelector('.main-svg')
    && (heatmap ? gd.querySelector('.heatmaplayer image') : !gd.querySelector('.heatmaplayer')
        || gd.querySelector('.heatmaplayer image')));
  const chart = (key) => document.querySelector(`.st-key-${key} .js-plotly-plot`);
  const all = Array.from(document.querySelectorAll("[data-testid='stPlotlyChart']"));
  const bars = document.querySelector(".st-key-prediction [data-testid='stHtml'] table tr");
  return !!bars && drawn(chart('head_map'), true)
    && all.every((el) => drawn(el.querySelector('.js-plotly-plot'), false))
    && document.querySelectorAll("[data-testid='stHtml'] span[title]").length > 0;
}"""
FLOOR_RENDERED = """() => {
  const app = document.querySelector("[data-testid='stApp']");
  return !!(app && app.getAttribute('data-test-connection-state') === 'CONNECTED'
    && app.getAttribute('data-test-script-state') === 'notRunning'
    && document.querySelector('.st-key-floor .js-plotly-plot .heatmaplayer image'));
}"""
FLOOR_APP = HERE / "floor_app.py"


# Installed before any page script: notes (performance.now(), ms from navigation start) when the script run ends
# and when the first screen's charts are drawn, to split a render into server rerun vs browser drawing.
MARKS = """(() => {
  const m = window.__renderMarks = {};
  const tick = () => {
    const app = document.querySelector("[data-testid='stApp']");
    const state = app && app.getAttribute('data-test-script-state');
    if (state === 'running') m.running = m.running || performance.now();
    if (state === 'notRunning' && m.running && !m.done) m.done = performance.now();
    if (!m.charts && document.querySelector('.st-key-head_map .js-plotly-plot .main-svg')) m.charts = performance.now();
    if (!(m.done && m.charts)) requestAnimationFrame(tick);
  };
  tick();
})();"""


@dataclass
class Load:
    seconds: float
    ws_bytes: int
    grid_frame_bytes: int
    script_done: float  # s from navigation start until the script run finished (server side done)
    main_thread: float  # s the page's main thread was busy (Chrome's TaskDuration), JavaScript included
    script_js: float  # of which running JavaScript (ScriptDuration)


@dataclass
class Case:
    name: str
    model: str  # the m= value ("" = the embedded default)
    text: str
    n_tokens: int
    max_tokens: int | None = None
    app: Path | None = None  # another Streamlit script (the floor case), None for the dashboard
    cold: Load | None = None  # the default page (the floor's own page), first visit once the server is ready
    first_link: Load | None = None  # the case's own URL, first visit (after cold; dashboard only)
    ready: float | None = None  # s from starting the server to its health check answering
    warm: list[Load] = field(default_factory=list)
    returning: list[Load] = field(default_factory=list)
    grid_json_bytes: int = 0

    def url(self, base: str) -> str:
        if self.app == FLOOR_APP:
            return f"{base}/"
        params = {"t": self.text}
        if self.model:
            params["m"] = self.model
        if self.max_tokens:
            params["mx"] = str(self.max_tokens)
        return f"{base}/?{urlencode(params)}"

    def cold_url(self, base: str) -> str:
        """The first visit's address: the bare one, as a person opens what `make run` prints."""
        return f"{base}/"


@contextlib.contextmanager
def timed_server(case: Case, env: dict[str, str], **kwargs) -> Iterator[str]:
    """`running_server` (the dashboard through its warm-up launcher unless `app` is given), with case.ready set to
    the seconds from its start to its health check answering."""
    kwargs.setdefault("warm", "app" not in kwargs)
    start = time.perf_counter()
    with running_server(env=env, timeout=SERVER_TIMEOUT_S, **kwargs) as base:
        case.ready = time.perf_counter() - start
        yield base


def open_and_time(context, address: str, rendered: str = RENDERED) -> Load:
    """Open `address` in a new page of `context`; seconds until rendered, websocket bytes received."""
    page = context.new_page()
    frames: list[bytes] = []

    def on_socket(ws) -> None:
        ws.on("framereceived", lambda payload: frames.append(payload if isinstance(payload, bytes)
                                                              else payload.encode("utf-8")))

    page.on("websocket", on_socket)
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")
    start = time.perf_counter()
    page.goto(address, timeout=TIMEOUT_MS)
    state = page.wait_for_function(rendered, timeout=TIMEOUT_MS, polling=20).json_value()
    seconds = time.perf_counter() - start
    if state == "error":
        text = page.locator("[data-testid='stException'], [data-testid='stAlertContentError']").first.inner_text()
        raise RuntimeError(f"the page shows an error: {text[:500]}")
    page.wait_for_timeout(300)  # frames already on their way (none are expected once the run is over)
    grid = [len(f) for f in frames if b'"name":"heads"' in f]
    marks = page.evaluate("() => window.__renderMarks || {}")
    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
    load = Load(seconds, sum(len(f) for f in frames), max(grid, default=0), marks.get("done", float("nan")) / 1000,
                metrics.get("TaskDuration", float("nan")), metrics.get("ScriptDuration", float("nan")))
    page.close()
    return load


def new_context(browser):
    context = browser.new_context(viewport=VIEWPORT)
    context.add_init_script(MARKS)
    return context


def measure(case: Case, warm_repeats: int) -> str:
    """Fill in case.cold, case.warm and case.returning; return the browser's version."""
    env = {"EXPLAIN_STORE_PATH": str(Path(tempfile.mkdtemp()) / "a.sqlite3")}
    rendered = FLOOR_RENDERED if case.app else RENDERED
    with timed_server(case, env, **({"app": case.app} if case.app else {})) as base, launch_browser() as browser:
        address = case.url(base)
        cold_context = new_context(browser)
        case.cold = open_and_time(cold_context, case.cold_url(base), rendered)
        if not case.app:
            case.first_link = open_and_time(cold_context, address, rendered)
        cold_context.close()
        context = new_context(browser)
        for _ in range(warm_repeats):
            case.warm.append(open_and_time(context, address, rendered))
        context.close()
        # A returning user's browser: an on-disk profile keeps V8's compiled code for Streamlit's Plotly chunk,
        # which a private (incognito-like) context such as Playwright's new_context() does not.
        with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
            returning = browser.browser_type.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
            returning.add_init_script(MARKS)
            open_and_time(returning, address, rendered)  # the profile's first visit, not counted
            for _ in range(warm_repeats):
                case.returning.append(open_and_time(returning, address, rendered))
            returning.close()
        return browser.version


def rendered_of(checkout: Path) -> str:
    """The other checkout's own "rendered" condition (its first screen), read from its copy of this script."""
    tree = ast.parse((checkout / "benchmarks" / "dashboard_render.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "RENDERED" for t in node.targets):
            return ast.literal_eval(node.value)
    raise RuntimeError(f"{checkout} has no RENDERED condition in benchmarks/dashboard_render.py")


def measure_pair(floor: Case, page: Case, repeats: int, against: Case | None = None) -> list[tuple[float, float]]:
    """Returning browser only: load the floor and the page (and `against`, another checkout's page) in turn (all
    servers up, one persistent profile), so that a change of load on a shared machine hits them alike; (floor, page)
    seconds per round."""
    env = {"EXPLAIN_STORE_PATH": str(Path(tempfile.mkdtemp()) / "a.sqlite3")}
    with (timed_server(floor, env, app=floor.app) as floor_base, timed_server(page, env) as page_base,
          timed_server(against, env, app=against.app) if against else contextlib.nullcontext("") as against_base,
          launch_browser() as browser, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile):
        returning = browser.browser_type.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
        returning.add_init_script(MARKS)
        targets = [(floor, floor_base, FLOOR_RENDERED), (page, page_base, RENDERED)]
        if against is not None:
            targets.append((against, against_base, rendered_of(against.app.parents[1])))
        targets = [(case, base, case.url(base), rendered) for case, base, rendered in targets]
        for case, base, address, rendered in targets:  # cold, then the profile's first visit of the URL: not counted
            case.cold = open_and_time(returning, case.cold_url(base), rendered)
            first = open_and_time(returning, address, rendered)
            if case is not floor:
                case.first_link = first
        rounds = []
        for i in range(repeats):
            order = targets if i % 2 == 0 else targets[::-1]
            loads = {id(case): open_and_time(returning, address, rendered) for case, _, address, rendered in order}
            for case, _, _, _ in targets:
                case.returning.append(loads[id(case)])
            rounds.append((loads[id(floor)].seconds, loads[id(page)].seconds))
        returning.close()
    return rounds


def report_pair(floor: Case, page: Case, against: Case | None = None) -> str:
    """Medians of the interleaved floor and page loads and their ratio, with each one's script-over time (and the
    page of another checkout, `against`, beside them)."""
    def med(loads: list[Load], attr: str) -> float:
        return statistics.median(getattr(w, attr) for w in loads)

    shown = (floor, page) if against is None else (floor, page, against)
    f, p = med(floor.returning, "seconds"), med(page.returning, "seconds")
    rows = [[c.name, f"{s(min(w.seconds for w in c.returning))} / {s(med(c.returning, 'seconds'))} "
             f"(n={len(c.returning)})", s(med(c.returning, "script_done")),
             f"{s(med(c.returning, 'main_thread'))} ({s(med(c.returning, 'script_js'))})",
             s(c.ready) if c.ready is not None else "-", s(c.cold.seconds) if c.cold else "-",
             s(c.first_link.seconds) if c.first_link else "-"]
            for c in shown]
    table = common.table(["input (returning browser, interleaved)", "warm render (best / median)",
                          "script run over at (median)", "main thread busy (of which JS), median",
                          "server ready (start to health OK)", "first visit (cold, the bare address)",
                          "first visit of the link (its analysis runs)"], rows)
    ok = "met" if p / f <= PAIR_TARGET_RATIO else "NOT met"
    out = (f"{table}\n\n- ratio of the medians, page / floor: {p / f:.2f}x "
           f"(target within {PAIR_TARGET_RATIO}x: {ok}).")
    if page.cold and floor.cold:
        cold = page.cold.seconds / floor.cold.seconds
        ok = "met" if cold <= COLD_TARGET_RATIO else "NOT met"
        out += f"\n- first visit (cold), page / floor: {cold:.2f}x (target within {COLD_TARGET_RATIO}x: {ok})."
    if page.ready and floor.ready:
        out += f"\n- server ready, page / floor: {page.ready / floor.ready:.1f}x (the page's includes its warm-up)."
    if against is not None:
        a = med(against.returning, "seconds")
        out += f"\n- ratio of the medians, {against.name} / floor: {a / f:.2f}x; page / that: {p / a:.2f}x."
        if floor.cold and against.cold:
            out += (f"\n- first visit (cold), that / floor: {against.cold.seconds / floor.cold.seconds:.2f}x "
                    "(that checkout's server is started with `streamlit run`, no warm-up).")
    return out


# Submit: the page is open and warm; a person edits the text and presses Ctrl+Enter. Each new text swaps the first
# word ("The") for another one-token word, so the token count stays the same and the text is new to the server.
SUBMIT_WORDS = ["A", "This", "That", "Our", "Its", "One", "His", "Her", "Some", "Any"]
HIGHLIGHTS_OF = """(first) => {
  const span = document.querySelector("[data-testid='stHtml'] span[title]");
  return !!(span && span.title.startsWith(first + ': ') && !span.closest("[data-stale='true']"));
}"""


@dataclass
class Submit:
    n_tokens: int
    new: list[tuple[float, float]] = field(default_factory=list)  # (to highlights, to idle) for a text not seen yet
    again: list[tuple[float, float]] = field(default_factory=list)  # the same for a text analysed before


def submit_and_time(page, text: str, first_word: str) -> tuple[float, float]:
    """Put `text` in the text box, press Ctrl+Enter; seconds until its highlights show, and until the page is idle."""
    area = page.locator(".st-key-w_text textarea")
    area.fill(text)
    start = time.perf_counter()
    area.press("Control+Enter")
    page.wait_for_function(HIGHLIGHTS_OF, arg=first_word, timeout=TIMEOUT_MS, polling=10)
    highlights = time.perf_counter() - start
    page.wait_for_timeout(100)  # the rerun has started; wait for it and the charts to finish
    page.wait_for_function(RENDERED, timeout=TIMEOUT_MS, polling=10)
    return highlights, time.perf_counter() - start


def measure_submit(token_counts: list[int], repeats: int) -> list[Submit]:
    """Warm page, embedded model: submit new texts (analysis runs) and texts analysed before (from the cache)."""
    tok = common.tokenizer()
    out = []
    env = {"EXPLAIN_STORE_PATH": str(Path(tempfile.mkdtemp()) / "a.sqlite3")}
    with running_server(env=env) as base, launch_browser() as browser:
        context = new_context(browser)
        for n in token_counts:
            text = common.text_of_tokens(tok, n)
            if not text.startswith("The "):
                raise RuntimeError("the benchmark text should start with 'The '")
            result = Submit(n)
            page = context.new_page()
            page.goto(f"{base}/?{urlencode({'t': text})}", timeout=TIMEOUT_MS)
            page.wait_for_function(RENDERED, timeout=TIMEOUT_MS, polling=20)
            previous = ("The", text)
            for word in SUBMIT_WORDS[: max(1, repeats)]:
                variant = word + text[3:]
                if len(tok(variant)["input_ids"]) != n:
                    raise RuntimeError(f"{word!r} changes the token count")
                result.new.append(submit_and_time(page, variant, word))
                result.again.append(submit_and_time(page, previous[1], previous[0]))
                submit_and_time(page, variant, word)  # back to a cached text, so the next new one starts alike
                previous = (word, variant)
            page.close()
            out.append(result)
        context.close()
    return out


def report_submit(rows: list[Submit]) -> str:
    def cell(pairs: list[tuple[float, float]], i: int) -> str:
        values = [p[i] for p in pairs]
        return f"{s(statistics.median(values))} ({s(min(values))} - {s(max(values))})"

    return common.table(
        ["embedded model, tokens", "new text: submit to highlights, median (range)", "new text: submit to page idle",
         "text analysed before: submit to highlights", "text analysed before: submit to page idle", "n"],
        [[r.n_tokens, cell(r.new, 0), cell(r.new, 1), cell(r.again, 0), cell(r.again, 1), len(r.new)] for r in rows],
    )


def grid_json_bytes(case: Case) -> int:
    """The grid figure's JSON for this input's real attention (the same request the page makes)."""
    from explain import AnalysisRequest, analyze, load_model
    from explain.viz.attention import attention_grid

    loaded = load_model(case.model or "minilm")
    request = AnalysisRequest(text=case.text, model=case.model or "minilm", n_steps=1,
                              max_tokens=case.max_tokens or 128)
    result = analyze(request, loaded)
    if len(result.tokens) != case.n_tokens:
        raise RuntimeError(f"{case.name}: {len(result.tokens)} tokens, expected {case.n_tokens}")
    return len(attention_grid(result.attention.weights).to_json())


def save_bert_base(folder: Path) -> Path:
    """A random bert-base-size BertModel with a BertTokenizer on the embedded model's WordPiece vocabulary."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    from explain.models import embedded_model_path

    # As testkit/tiny_models.py does: transformers 5's BertTokenizer takes the vocabulary as a dict (`vocab=`).
    lines = (embedded_model_path() / "vocab.txt").read_text(encoding="utf-8").splitlines()
    tok = BertTokenizer(vocab={token: i for i, token in enumerate(lines)}, model_max_length=512)
    torch.manual_seed(common.SEED)
    model = BertModel(BertConfig(vocab_size=tok.vocab_size))  # defaults: 12 layers x 12 heads, hidden 768
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def s(x: float) -> str:
    return f"{x:.2f} s"


def size(n: int) -> str:
    return f"{n / 1e6:.2f} MB" if n >= 100_000 else f"{n / 1e3:.1f} kB"


def report(cases: list[Case]) -> str:
    rows = []
    for c in cases:
        warm = [w.seconds for w in c.warm]
        back = [w.seconds for w in c.returning]
        done = statistics.median(w.script_done for w in c.warm)
        rows.append([
            c.name, c.n_tokens or "-", s(c.ready) if c.ready is not None else "-", s(c.cold.seconds),
            s(c.first_link.seconds) if c.first_link else "-",
            f"{s(min(warm))} / {s(statistics.median(warm))} (n={len(warm)})",
            f"{s(min(back))} / {s(statistics.median(back))} (n={len(back)})", s(done),
            f"{s(statistics.median(w.main_thread for w in c.warm))} ({s(statistics.median(w.script_js for w in c.warm))})",
            size(c.grid_json_bytes) if not c.app else "-", size(c.warm[-1].grid_frame_bytes) if not c.app else "-",
            size(c.cold.ws_bytes), size(statistics.median(w.ws_bytes for w in c.warm)),
        ])
    return common.table(
        ["input", "tokens", "server ready", "cold render (bare address)", "first visit of the link",
         "warm render, private context (best / median)",
         "warm render, returning browser (best / median)", "warm: script run over at (median)",
         "warm: browser main thread busy (of which JS), median",
         "grid figure JSON",
         "grid websocket frame", "websocket bytes, cold page", "websocket bytes, warm page"],
        rows,
    )


def verdicts(cases: list[Case]) -> list[str]:
    out = []
    for c in cases:
        if c.name.startswith("all-MiniLM"):
            for what, loads in (("a returning browser", c.returning), ("a private context", c.warm)):
                median = statistics.median(w.seconds for w in loads)
                ok = "met" if median < WARM_TARGET_S else "NOT met"
                out.append(f"- warm render of the embedded model at {c.n_tokens} tokens under {WARM_TARGET_S:.0f} s, "
                           f"{what}: {ok} ({s(median)} median, {s(min(w.seconds for w in loads))} best).")
        if c.name.startswith("bert-base"):
            ok = "met" if c.grid_json_bytes < GRID_TARGET_BYTES else "NOT met"
            out.append(f"- grid for bert-base at {c.n_tokens} tokens under 2 MB: {ok} ({size(c.grid_json_bytes)} "
                       f"figure JSON; {size(c.warm[-1].grid_frame_bytes)} websocket frame).")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--warm", type=int, default=5, help="warm page loads per case (default 5)")
    parser.add_argument("--only", choices=["floor", "minilm", "bert-base", "submit"], help="run one case")
    parser.add_argument("--submit", type=int, default=5, help="texts submitted per length (default 5)")
    parser.add_argument("--no-write", action="store_true", help=f"do not write {DOC.relative_to(HERE.parent)}")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="first wait up to this long for the 1-minute load average to fall below 0.5")
    parser.add_argument("--pair", action="store_true",
                        help="only the floor and the embedded model at 32 tokens, loaded alternately in one returning "
                             "browser; prints both medians and their ratio (never writes the document)")
    parser.add_argument("--against", type=Path, metavar="CHECKOUT",
                        help="with --pair: also load the explore page of another checkout of this repository (e.g. "
                             "`git worktree add /tmp/before <commit>`) in the same rounds, rendered by that "
                             "checkout's own definition (its first screen)")
    args = parser.parse_args()
    if args.wait_idle > 0:
        common.wait_for_idle(args.wait_idle)
    if not Path(CHROMIUM).exists():
        print(f"Chromium is missing at {CHROMIUM}: run `make browser`.", file=sys.stderr)
        return 2

    tok = common.tokenizer()
    header = common.machine_header()
    if args.pair:
        floor = Case("floor: a Streamlit page with one 32 x 32 Plotly heatmap", "", "", 0, app=FLOOR_APP)
        page = Case("all-MiniLM-L6-v2 (embedded, 6 x 12 heads)", "", common.text_of_tokens(tok, 32), 32)
        against = None
        if args.against:
            app = args.against.resolve() / "dashboard" / "app.py"
            if not app.exists():
                print(f"{args.against} is not a checkout of this repository (no dashboard/app.py).", file=sys.stderr)
                return 2
            against = Case(f"the same page at {args.against}", "", page.text, 32, app=app)
        measure_pair(floor, page, max(1, args.warm), against)
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"{header}\n- load average at the end (1, 5, 15 min): {load}\n\n{report_pair(floor, page, against)}")
        return 0
    cases: list[Case] = []
    version = "?"
    with tempfile.TemporaryDirectory(prefix="bert-base-") as tmp:
        if args.only in (None, "floor"):
            cases.append(Case("floor: a Streamlit page with one 32 x 32 Plotly heatmap", "", "", 0, app=FLOOR_APP))
        if args.only in (None, "minilm"):
            cases.append(Case("all-MiniLM-L6-v2 (embedded, 6 x 12 heads)", "", common.text_of_tokens(tok, 32), 32))
        if args.only in (None, "bert-base"):
            folder = save_bert_base(Path(tmp) / "bert-base-random")
            from transformers import AutoTokenizer

            saved = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
            text = common.text_of_tokens(saved, 128)
            if saved(text)["input_ids"] != tok(text)["input_ids"]:
                raise RuntimeError("the saved bert-base tokenizer does not tokenise like the embedded model's")
            cases.append(Case("bert-base size, random BertModel (12 x 12 heads)", str(folder), text, 128,
                              max_tokens=128))
        for case in cases:
            print(f"measuring {case.name} ({case.n_tokens} tokens)...", file=sys.stderr, flush=True)
            version = measure(case, max(1, args.warm))
            if not case.app:
                case.grid_json_bytes = grid_json_bytes(case)

    from playwright._repo_version import version as playwright_version

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    header += (f"\n- load average at the end (1, 5, 15 min): {load}"
               f"\n- browser: Chromium {version} headless ({CHROMIUM}), Playwright {playwright_version}")
    pair = ""
    if args.only is None:
        print("measuring the floor and the page alternately (returning browser)...", file=sys.stderr, flush=True)
        floor = Case("floor: a Streamlit page with one 32 x 32 Plotly heatmap", "", "", 0, app=FLOOR_APP)
        page = Case("all-MiniLM-L6-v2 (embedded, 6 x 12 heads)", "", common.text_of_tokens(tok, 32), 32)
        measure_pair(floor, page, max(1, args.warm))
        pair = report_pair(floor, page)
    submits: list[Submit] = []
    if args.only in (None, "submit"):
        print("measuring submit to highlights (32 and 128 tokens)...", file=sys.stderr, flush=True)
        submits = measure_submit([32, 128], args.submit)
    table = report(cases) if cases else ""
    notes = "\n".join(verdicts(cases))
    submit_table = report_submit(submits) if submits else ""
    print(f"## Dashboard render (headless Chromium)\n\n{header}\n\n{table}\n\n{notes}\n\n{pair}\n\n{submit_table}")
    if not args.no_write:
        words = {c.n_tokens: len(c.text.split()) for c in cases if not c.app}
        DOC.parent.mkdir(parents=True, exist_ok=True)
        if not cases or not submits:
            print("not writing the document: it needs every case (run without --only)", file=sys.stderr)
            return 0
        DOC.write_text(document(header, table, notes, words, submit_table, pair))
        print(f"\nwrote {DOC.relative_to(HERE.parent)}", file=sys.stderr)
    return 0


def document(header: str, table: str, notes: str, words: dict[int, int], submit_table: str, pair: str) -> str:
    texts = ", ".join(f"{n} tokens = {w} words" for n, w in sorted(words.items()))
    return f"""# Dashboard render benchmark

How long the explore page takes to appear in a real browser, and how much it sends. Written by
`benchmarks/dashboard_render.py`; numbers depend on the machine (below) and on what else it was doing (see the
load averages: on a 2-core machine shared with other jobs, the browser-side part in particular stretches).

{header}

{table}

Targets:

{notes}

## Page against the floor, same run

Both servers up, one returning browser (persistent profile) loading the floor and the explore page (embedded
model, 32 tokens) alternately, so that the other jobs on the machine slow both alike. Target: the page's median
within 1.3x of the floor's.

{pair}

## Where the time goes

Measured 2026-11-26 on this machine while it was shared (load average 8 to 11 on 2 cores), page = embedded model,
32 tokens, returning browser:

- **The server is not the part to cut.** The explore script's warm rerun takes 15 to 40 ms of Python (cProfile
  of the page function under AppTest, analysis and figures from the caches: half of it Plotly's `to_dict` and
  base64 of the four cached figures inside `st.plotly_chart`, the rest Streamlit's own bookkeeping). "Script run
  over at" in the tables is when the *browser* marked the run finished, i.e. after it had processed every element
  the script sent; on a loaded machine that is 1 to 3 s for the page against 0.6 to 0.7 s for the floor, nearly
  all of it the browser's main thread.
- **The browser's main thread** (DevTools CPU profile, three warm loads, about 3.9 s sampled per load under that
  load; the floor 1.4 s): Plotly about 1.7 s (floor 0.5 s): evaluating its 4.7 MB chunk (every page pays it), and
  drawing four charts, of which measuring tick labels (`Drawing.bBox`, one forced layout per new label) about
  0.23 s; Chrome's own work (compiling, style and layout, garbage collection) about 0.7 s; Streamlit's React
  front end (react-dom, emotion styles, Markdown for every caption, label and help text) about 0.8 s (floor
  0.1 s), for the page's forty-odd elements, sidebar and widgets included.
- **Every chart is drawn twice**, on the floor too: Streamlit's chart component applies its theme to the figure
  when the element is created and again in an effect right after mounting (its theme wraps the title in `<b>`
  each time, so the title always differs), and hands Plotly new copies of the data arrays; Plotly.react then
  replots the chart (same root SVG and same config, so not a new plot, but new tick label nodes: seen in the
  browser). Neither `theme=None` nor a `layout.datarevision`
  stopped the second draw (both tried, kept neither): it comes from Streamlit's front end, not from the figures.
  On the floor the second draw follows the first within 40 ms; on the page all four are redrawn 0.3 to 0.7 s
  later, after the rest of the page has been laid out.
- **The charts are the gap, not the rest of the page.** The same page with its four `st.plotly_chart` calls
  left out (a one-off edit, interleaved with the floor in one run, load average about 11) rendered in 1.05 s
  median against the floor's 2.49 s: sidebar, widgets, highlights, captions and export buttons together cost less
  than loading Plotly. With the charts, Streamlit loads its Plotly chunk and draws four charts twice; the page's
  first chart appears 1.5 to 2.8 s after the run was marked finished (the floor's within about 1 s).
- Plotly 3.8 (Streamlit's bundle) already draws heatmaps with linear axes and no gaps as one pixel per cell scaled
  by the browser (its "fast" path), so `zsmooth` has nothing left to give.
- In isolation (plotly.js 3 from the Python package, headless Chromium, first draw in a fresh page after one
  warm-up chart) the four figures draw in about 0.25 s together (prediction 30 to 50 ms, head map 75 ms, rollout
  40 ms, grid 65 ms); the rest of the page's Plotly time is the chunk, the second draw and contention.

Earlier changes (2026-11-25) took about 0.3 s off the median: the figures of an analysis are built once per view
and kept beside it (`dashboard.cached.FigureCache`), and every figure sets margins that already fit its tick labels
(`explain.viz.attention._label_margin`), so Plotly's automargin does not measure the labels and draw everything again
(a browser test checks that no chart's margins had to grow).

What is left above the floor is three more Plotly charts (and every chart drawn twice by Streamlit's front end),
competing for the main thread with Streamlit's rendering of forty-odd elements; the elements alone render faster
than the floor. Closing the gap to 1.3x needs fewer charts drawn on first paint (e.g. the prediction as HTML bars,
which would lose its camera button, or the all-heads grid drawn when asked for), or a Streamlit whose chart
component does not draw each chart a second time after mounting; not a faster server.

## Submit to highlights

The explore page is open on the embedded model (warm: model loaded, Plotly drawn once); a person edits the text
and presses Ctrl+Enter. Timed from the key press to the new text's token highlights on screen, and to the page
being idle again (script over, no stale elements, all four charts redrawn). A **new text** (the first word
swapped for another one-token word, so the token count stays) runs the whole analysis: attention and integrated
gradients at the default 50 steps on the CPU. A **text analysed before** comes from the server's analysis cache.

{submit_table}

## Method

- A fresh server per input, started as `make run` starts it (`python -m dashboard.serve` on a free loopback
  port: it imports the dashboard, loads the embedded model and computes the default page's analysis before it
  listens), headless Chromium (Debian's `/usr/bin/chromium`, Playwright) at 1440 x 2000. The floor's server is a
  plain `streamlit run benchmarks/floor_app.py`.
- **Server ready**: from starting the server's process to its `/_stcore/health` answering (the dashboard's
  includes the warm-up).
- **Cold**: the first visit once the server is ready, to the bare address (the default page: default sentence,
  embedded model), in a fresh browser context: the page's first script run with its model and analysis already in
  the server's caches, the transfer and all rendering. **First visit of the link**: the input's own URL next,
  for the first time: its analysis (attention and integrated gradients with the default integration and [PAD]
  baseline, on the CPU) runs, and for bert-base its model loads.
- **Warm**: the same URL again in a new page (a new Streamlit session): model, analysis and figures come from
  the server's caches, so it is Python rerun + transfer + Plotly drawing. Two kinds of browser: a **private
  context** (Playwright's `new_context()`, incognito-like: HTTP cache warm, but V8 keeps no compiled code across
  pages) and a **returning browser** (a persistent on-disk profile, as a person's browser is, visited once
  before timing; V8 reuses its compiled code for the 4.7 MB Plotly chunk). The target is judged on the median.
- **Rendered**: connected, script idle, no stale elements, token highlights present, the prediction's bars
  present and the single-head map drawn (heatmap image included), plus any other chart the page sent: the first
  screen. Since 2026-12-07 the aggregate views, the all-heads grid, the depth split and the information flow are
  drawn when opened (each behind a toggle kept in the link), the attention views rerun as one fragment (a change
  of head redraws the head's map alone), and the prediction is HTML bars with its scores as text (one Plotly
  chart on the first screen, as on the floor); the heads to knock out sit in a sidebar popover, whose widgets
  the browser draws only when it is opened. Figures before that date timed all four charts (prediction, single
  head, rollout, grid). Timed from `page.goto()`.
- **Script run over at**: when Streamlit reported the script idle, i.e. the server had sent everything; the
  rest of a warm render is the browser: Streamlit loads its Plotly chunk (`PlotlyChart.*.js`, 4.7 MB, from the
  HTTP cache; in a private context it is parsed and compiled again in every new page) and draws the charts.
  Columns from here on are for the private context.
- **Browser main thread busy**: Chrome's own `TaskDuration` (and `ScriptDuration`, JavaScript only) for the page,
  from the DevTools protocol's `Performance.getMetrics` at the rendered point: how long the page's main thread
  was running tasks (wall time, so it stretches under CPU contention too, but it leaves out time spent waiting
  for the server or the network).
- Reading a miss: if "script run over at" is well under the warm render, the time goes in the browser (Plotly's
  bundle and drawing; compare "main thread busy"); if it is close to it, the server's rerun is the part to cut.
- **Grid figure JSON**: `len(explain.viz.attention.attention_grid(weights).to_json())` for the input's real attention
  weights; **grid websocket frame**: the frame that carried that chart; **websocket bytes**: all payloads the
  page received (uncompressed sizes; Streamlit does not compress its websocket by default).
- **Floor**: `benchmarks/floor_app.py`, a Streamlit page holding one small Plotly heatmap and nothing else,
  measured the same way: what Streamlit and Plotly alone cost in this browser on this machine.
- Inputs: prefixes of the restaurant-review paragraph in `benchmarks/common.py` ({texts}, [CLS]/[SEP]
  included); bert-base is a random `BertModel(BertConfig())` saved with `save_pretrained` to a temporary folder
  with a `BertTokenizer` on the embedded model's vocabulary, opened as `m=<folder>&mx=128`.

## Rerun

    make install-dev browser          # once: the venv and Debian's chromium
    .venv/bin/python benchmarks/dashboard_render.py            # every case, 5 warm loads and 5 submits each
    .venv/bin/python benchmarks/dashboard_render.py --wait-idle 120 --warm 8   # as for the tables above
    .venv/bin/python benchmarks/dashboard_render.py --only minilm --warm 10 --no-write   # one case, printed only
    git worktree add /tmp/before <commit> && .venv/bin/python benchmarks/dashboard_render.py --pair --against /tmp/before
        # the floor, this page and another commit's page, loaded in turn in one returning browser
"""


if __name__ == "__main__":
    raise SystemExit(main())
