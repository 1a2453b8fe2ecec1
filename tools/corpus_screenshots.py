"""Screenshots of the Corpus page (1440x900): a run of the built-in sample's first texts on the embedded model,
computed here into a temporary store's run folder and reopened by its link.

    python tools/corpus_screenshots.py --out docs/screenshots --rows 40
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from testkit.server import launch_browser, running_server, wait_for_app  # noqa: E402

VIEWPORT = {"width": 1440, "height": 900}
SHOTS = {  # name: the heading scrolled to the top (None: the page's top)
    "corpus-run": None,
    "corpus-faithfulness": "Which explanation to believe on this data",
    "corpus-words": "Words the model relies on",
    "corpus-finders": "Finders",
}


def make_run(store: Path, rows: int) -> str:
    """Run the sample's first `rows` texts as the page would (same job, same run id) into the store's runs."""
    os.environ["EXPLAIN_STORE_PATH"] = str(store)
    from explain.corpus import CorpusJob, ReaderLimits, run_job, sample_columns
    from explain.corpus.readers import SAMPLE
    from explain.corpus.runs import run_id, runs_folder

    job = CorpusJob(source=SAMPLE, columns=sample_columns(), methods=("gradient_x_input", "saliency"),
                    model="minilm", faithfulness=True, batch_size=8, limits=ReaderLimits(max_rows=rows))
    identity = run_id(job, "")
    run_job(job, runs_folder() / identity, progress=lambda p: print(f"{p.done}/{p.total}", file=sys.stderr))
    return identity


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--scheme", choices=("light", "dark"), default="light",
                        help="the system colour scheme the browser reports (the dashboard follows it)")
    parser.add_argument("--width", type=int, nargs="*", default=[VIEWPORT["width"]],
                        help="viewport widths (px); names get -dark and -<width> as tools/screenshots.py's do")
    parser.add_argument("--only", nargs="*", help="these shots (default all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "analyses.sqlite3"
        identity = make_run(store, args.rows)
        with running_server(None, env={"EXPLAIN_STORE_PATH": str(store)}) as base, launch_browser() as browser:
            for width in args.width:
                suffix = ("-dark" if args.scheme == "dark" else "") + (f"-{width}" if width != VIEWPORT["width"] else "")
                page = browser.new_context(viewport={**VIEWPORT, "width": width}, color_scheme=args.scheme).new_page()
                page.goto(f"{base}/corpus?run={identity}")
                wait_for_app(page, charts=3, timeout=600_000)
                for name, heading in SHOTS.items():
                    if args.only and name not in args.only:
                        continue
                    if heading:
                        page.get_by_role("heading", name=heading).first.evaluate(
                            "e => e.scrollIntoView({block: 'start'})")
                        page.wait_for_timeout(800)
                    path = args.out / f"{name}{suffix}.png"
                    page.screenshot(path=str(path))
                    print(f"wrote {path}")
                page.context.close()


if __name__ == "__main__":
    main()
