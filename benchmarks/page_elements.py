"""How much the warm explore page asks the browser to build: DOM nodes and Streamlit elements by kind.

A load-insensitive proxy for the warm render's main-thread time (benchmarks/dashboard_render.py measures the time,
which a loaded machine blurs): starts the dashboard as `make run` does, opens the page of dashboard_render.py's
minilm case (32 tokens, embedded model) once to warm the server's caches, then again in a new context at 1440 x 900
and counts, once the script is idle: every DOM node, the `stElementContainer`s by the testid of what they hold,
help icons, heading anchors, buttons, checkboxes and toggles, and Plotly charts. --floor counts the floor app too.

--loads N: also load it N more times in one returning browser (a persistent profile, as dashboard_render.py --pair)
and print the medians of Chrome's own counters for each load (DevTools protocol `Performance.getMetrics`, read once
dashboard_render.py's first screen is drawn): ThreadTime is the CPU time of the page's main thread, which a loaded
machine stretches far less than wall time; TaskDuration, ScriptDuration, LayoutDuration and RecalcStyleDuration are
how long its tasks, JavaScript, layout and style ran (wall time, while running); the counts of layouts and styles;
and, from /proc, the CPU seconds each load cost the server's process and the browser's processes together.

Run: .venv/bin/python benchmarks/page_elements.py [--floor] [--loads N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import common  # noqa: E402
from dashboard_render import FLOOR_RENDERED, MARKS, RENDERED  # noqa: E402

from testkit.server import CHROMIUM, CHROMIUM_ARGS, launch_browser, running_server, wait_for_app  # noqa: E402

FLOOR_APP = HERE / "floor_app.py"
VIEWPORT = {"width": 1440, "height": 900}
SERVER_TIMEOUT_S = 900

COUNT = """() => {
  const kinds = {}, nodes = {};
  for (const c of document.querySelectorAll('[data-testid="stElementContainer"]')) {
    const inner = c.querySelector('[data-testid]');
    const kind = inner ? inner.getAttribute('data-testid') : '(none)';
    kinds[kind] = (kinds[kind] || 0) + 1;
    nodes[kind] = (nodes[kind] || 0) + 1 + c.getElementsByTagName('*').length;
  }
  const n = (sel) => document.querySelectorAll(sel).length;
  const main = document.querySelector('[data-testid="stMain"]');
  const side = document.querySelector('[data-testid="stSidebar"]');
  const expanderNodes = [...document.querySelectorAll('[data-testid="stExpander"]')]
    .reduce((sum, e) => sum + 1 + e.getElementsByTagName('*').length, 0);
  return {
    dom_nodes: document.getElementsByTagName('*').length,
    main_dom_nodes: main ? main.getElementsByTagName('*').length : 0,
    sidebar_dom_nodes: side ? side.getElementsByTagName('*').length : 0,
    expander_dom_nodes: expanderNodes,
    element_containers: n('[data-testid="stElementContainer"]'),
    help_icons: n('[data-testid="stTooltipHoverTarget"]'),
    heading_anchors: n('[data-testid="stHeaderActionElements"]'),
    buttons: n('button'),
    checkboxes: n('input[type="checkbox"]'),
    expanders: n('[data-testid="stExpander"]'),
    plotly_charts: n('.js-plotly-plot'),
    kinds,
    nodes,
  };
}"""


def count(base: str, address: str) -> dict:
    with launch_browser() as browser:
        for visit in ("warm-up", "counted"):
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.goto(address, timeout=SERVER_TIMEOUT_S * 1000)
            wait_for_app(page, timeout=SERVER_TIMEOUT_S * 1000)
            page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")
            result = page.evaluate(COUNT)
            context.close()
            if visit == "counted":
                return result
    raise AssertionError("unreachable")


CPU_METRICS = ("ThreadTime", "TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration",
               "V8CompileDuration", "LayoutCount", "RecalcStyleCount", "Nodes", "JSEventListeners")


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def processes() -> dict[int, tuple[int, str]]:
    """Every process's (parent id, command line)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                out[int(entry.name)] = (parent, (entry / "cmdline").read_bytes().decode(errors="replace"))
            except OSError:
                continue
    return out


def server_pid(address: str) -> int:
    port = address.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1]
    return next(pid for pid, (_, cmd) in processes().items() if f"--server.port\0{port}\0" in cmd)


def browser_cpu() -> float:
    """CPU seconds so far of this process's Chromium processes (the driver's descendants), live ones only."""
    table = processes()
    mine, changed = {os.getpid()}, True
    while changed:
        more = {pid for pid, (parent, _) in table.items() if parent in mine} - mine
        mine |= more
        changed = bool(more)
    return sum(cpu_seconds(pid) for pid in mine if "chrom" in table[pid][1])


def cpu_metrics(address: str, loads: int, rendered: str) -> dict[str, float]:
    """Medians of `CPU_METRICS` over `loads` loads of `address` in one returning browser (its first visit not
    counted), each read when `rendered` holds."""
    samples: dict[str, list[float]] = {name: [] for name in (*CPU_METRICS, "seconds", "server_cpu", "browser_cpu")}
    server = server_pid(address)
    with launch_browser() as browser, tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        context = browser.browser_type.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
        context.add_init_script(MARKS)
        for i in range(loads + 1):
            page = context.new_page()
            cdp = context.new_cdp_session(page)
            cdp.send("Performance.enable")
            before = cpu_seconds(server), browser_cpu()
            page.goto(address, timeout=SERVER_TIMEOUT_S * 1000)
            page.wait_for_function(rendered, timeout=SERVER_TIMEOUT_S * 1000, polling=20)
            metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
            metrics["server_cpu"] = cpu_seconds(server) - before[0]
            metrics["browser_cpu"] = browser_cpu() - before[1]
            marks = page.evaluate("() => window.__renderMarks || {}")
            page.close()
            if i:
                for name in (*CPU_METRICS, "server_cpu", "browser_cpu"):
                    samples[name].append(metrics.get(name, float("nan")))
                samples["seconds"].append(max(marks.get("done", 0), marks.get("charts", 0)) / 1000)
        context.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def show_cpu(name: str, medians: dict[str, float], loads: int) -> None:
    print(f"## {name}: Chrome's counters, median of {loads} warm loads (returning browser)")
    for key, value in medians.items():
        print(f"{key}: {value:.3f}" if key.endswith(("Time", "Duration", "cpu")) or key == "seconds"
              else f"{key}: {value:g}")


def show(name: str, result: dict) -> None:
    print(f"## {name}")
    for key, value in result.items():
        if key not in ("kinds", "nodes"):
            print(f"{key}: {value}")
    print("element containers by kind (count, DOM nodes):")
    for kind, n in sorted(result["kinds"].items(), key=lambda kv: (-result["nodes"][kv[0]], kv[0])):
        print(f"  {n:4d} {result['nodes'][kind]:5d}  {kind}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floor", action="store_true", help="count the floor app as well")
    parser.add_argument("--loads", type=int, default=0, metavar="N",
                        help="also the medians of Chrome's CPU counters over N warm loads (returning browser)")
    args = parser.parse_args()
    text = common.text_of_tokens(common.tokenizer(), 32)
    with running_server(warm=True, timeout=SERVER_TIMEOUT_S) as base:
        address = f"{base}/?{urlencode({'t': text})}"
        show("explore (minilm, 32 tokens, warm)", count(base, address))
        if args.loads:
            show_cpu("explore", cpu_metrics(address, args.loads, RENDERED), args.loads)
    if args.floor:
        with running_server(app=FLOOR_APP, timeout=SERVER_TIMEOUT_S) as base:
            show("floor", count(base, f"{base}/"))
            if args.loads:
                show_cpu("floor", cpu_metrics(f"{base}/", args.loads, FLOOR_RENDERED), args.loads)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
