"""The corpus commands: `python -m explain corpus FILE ...` runs a job, `python -m explain corpus-report DIR`
prints (and optionally writes as HTML) its summary tables."""

from __future__ import annotations

import argparse
import html
import sys
from pathlib import Path

import pyarrow as pa

from explain.corpus.job import DEFAULT_BATCH_SIZE, ENGINES, CorpusJob, CorpusProgress, run_job
from explain.corpus.readers import FORMATS, SAMPLE, CorpusColumns, ReaderLimits, sample_columns, spreadsheet_safe
from explain.errors import ExplainError, InputError


def corpus_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="explain corpus", description="Explain every text of a data file.")
    parser.add_argument("file", nargs="?", default=None, help="CSV/TSV, JSON Lines, Parquet or text file; 'sample' "
                        "for the built-in labelled sample")
    parser.add_argument("--sample", action="store_true", help="run the built-in labelled sample (200 texts)")
    parser.add_argument("--text-column", default="text")
    parser.add_argument("--label-column", default=None, help="gold labels, to measure accuracy")
    parser.add_argument("--pair-column", default=None, help="a second text read with the first")
    parser.add_argument("--question-column", default=None, help="a question asked about the text")
    parser.add_argument("--id-column", default=None)
    parser.add_argument("--format", choices=FORMATS, default=None, help="the file format (default: from its name)")
    parser.add_argument("--encoding", default="utf-8")
    parser.add_argument("--max-rows", type=int, default=None)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--method", action="append", default=None, help="a method name (repeat for several)")
    parser.add_argument("--steps", type=int, default=50, help="integrated gradients: steps (cap for adaptive rules)")
    parser.add_argument("--integration", default="adaptive_simpson")
    parser.add_argument("--faithfulness", action="store_true", help="comprehensiveness and sufficiency per method")
    parser.add_argument("--heads", action="store_true", help="per text, layer and head: attention statistics and "
                        "gradient importance, averaged over the data in the report")
    parser.add_argument("--head-ablation", action="store_true", help="with --heads: also each head's ablation "
                        "effect (one forward pass per head and text)")
    parser.add_argument("--naopc", action=argparse.BooleanOptionalAction, default=True,
                        help="with --faithfulness, NAOPC per method (exact up to 12 words, a beam above; up to "
                        "4,096 inputs per text); --no-naopc leaves it out (default on)")
    parser.add_argument("--out", type=Path, required=True, help="the run folder (rerun to resume)")
    parser.add_argument("--engine", choices=ENGINES, default="local")
    parser.add_argument("--actors", type=int, default=None, help="ray: model copies working at once (default: one "
                        "per CPU of the cluster)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    return parser


def progress_bar(progress: CorpusProgress) -> None:
    width = 30
    filled = int(width * progress.fraction)
    left = "" if progress.seconds_left != progress.seconds_left else f", {progress.seconds_left:.0f} s left"
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {progress.done}/{progress.total} texts, "
                     f"{progress.failed} failed{left}   ")
    sys.stderr.flush()


def run_corpus(argv: list[str]) -> int:
    args = corpus_parser().parse_args(argv)
    from explain.models import configure_threads

    configure_threads()
    try:
        sample = args.sample or args.file == SAMPLE
        if not sample and not args.file:
            raise InputError("Name a data file, or give --sample for the built-in sample.")
        columns = sample_columns() if sample else CorpusColumns(
            text=args.text_column, label=args.label_column, pair=args.pair_column, question=args.question_column,
            id=args.id_column)
        job = CorpusJob(source=SAMPLE if sample else args.file, columns=columns,
                        methods=tuple(args.method or ["gradient_x_input"]), model=args.model, n_steps=args.steps,
                        integration=args.integration, faithfulness=args.faithfulness, naopc=args.naopc,
                        heads=args.heads, head_ablation=args.head_ablation, batch_size=args.batch_size,
                        file_format=args.format, limits=ReaderLimits(max_rows=args.max_rows, encoding=args.encoding))
        outcome = run_job(job, args.out, engine=args.engine, progress=progress_bar, actors=args.actors)
    except ExplainError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ncancelled; rerun the same command to resume.", file=sys.stderr)
        return 130
    print(f"\n{outcome.status}: {outcome.texts} texts explained, {outcome.failed} skipped, in {outcome.seconds:.1f} s; "
          f"wrote {outcome.folder}")
    print(f"summary: python -m explain corpus-report {outcome.folder}")
    return 0


def format_table(table: pa.Table, limit: int = 20) -> str:
    rows = table.slice(0, limit).to_pylist()
    if not rows:
        return "  (none)"
    names = table.column_names

    def cell(value: object) -> str:
        text = spreadsheet_safe(value.replace("\n", " ")) if isinstance(value, str) else (
            f"{value:.4g}" if isinstance(value, float) else str(value))
        return text if len(text) <= 60 else text[:57] + "..."

    cells = [[cell(r[n]) for n in names] for r in rows]
    widths = [max(len(n), *(len(c[i]) for c in cells)) for i, n in enumerate(names)]
    lines = ["  " + "  ".join(n.ljust(w) for n, w in zip(names, widths))]
    lines += ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def report_sections(folder: Path) -> list[tuple[str, pa.Table]]:
    from explain.corpus import summary

    run = summary.open_run(folder)
    methods = run.methods
    sections: list[tuple[str, pa.Table]] = [("slices", summary.slices(run))]
    ranking = summary.method_ranking(run)
    if ranking.methods:
        sections.append(("faithfulness by method (ranked; 95% bootstrap intervals)", ranking.table()))
        if ranking.paired is not None:
            p = ranking.paired
            sections.append((f"paired test (Wilcoxon) of comprehensiveness, {p.first} vs {p.second}",
                             pa.Table.from_pylist([{"texts": p.texts, "mean_difference": p.mean_difference,
                                                    "p_value": p.p_value}])))
        sections.append((f"least faithful texts ({ranking.methods[0].method})",
                         summary.least_faithful(run, ranking.methods[0].method, 5)))
    for name in methods:
        sections.append((f"candidate shortcuts and strongest words ({name})", summary.shortcuts(run, name)))
        sections.append((f"misclassified texts with their top words ({name})", summary.misclassified(run, name)))
    if run.heads:
        sections.append(("heads over the data (top 10 by gradient importance normalised per layer; mean ± std over "
                         "texts)", summary.spread_table(summary.top_heads(run, top=10))))
    if len(methods) >= 2:
        sections.append((f"where {methods[0]} and {methods[1]} disagree most",
                         summary.disagreements(run, methods[0], methods[1], 5)))
    sections.append(("skipped rows", summary.failures(run)))
    return sections


def report_html(folder: Path, sections: list[tuple[str, pa.Table]]) -> str:
    from explain.corpus import summary
    from explain.viz.corpus import head_importance_figure, method_ranking_figure, shortcut_figure, slices_figure

    run = summary.open_run(folder)
    figures = [slices_figure(summary.slices(run))]
    ranking = summary.method_ranking(run)
    if ranking.methods:
        figures.append(method_ranking_figure(ranking.table()))
    figures.append(shortcut_figure(summary.shortcuts(run, run.methods[0])))
    if run.heads:
        figures.append(head_importance_figure(summary.head_summary(run)))
    parts = [f.to_html(full_html=False, include_plotlyjs="cdn" if i == 0 else False) for i, f in enumerate(figures)]
    for title, table in sections:
        rows = table.slice(0, 50).to_pylist()
        head = "".join(f"<th>{html.escape(n)}</th>" for n in table.column_names)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r.values()) + "</tr>" for r in rows)
        parts.append(f"<h2>{html.escape(title)}</h2><table><tr>{head}</tr>{body}</table>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Corpus report</title></head><body>"
            f"<h1>Corpus report: {html.escape(str(folder))}</h1>{''.join(parts)}</body></html>")


def run_report(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="explain corpus-report", description="Summaries of a corpus run.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--html", type=Path, default=None, help="also write the tables and figures as HTML")
    args = parser.parse_args(argv)
    try:
        sections = report_sections(args.folder)
        for title, table in sections:
            print(f"{title}:\n{format_table(table)}\n")
        if args.html:
            args.html.write_text(report_html(args.folder, sections), encoding="utf-8")
            print(f"wrote {args.html}")
    except ExplainError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str]) -> int:
    """argv: the command ("corpus" or "corpus-report") and its arguments."""
    return run_corpus(argv[1:]) if argv[0] == "corpus" else run_report(argv[1:])
