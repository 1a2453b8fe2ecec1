"""What a corpus run says, in SQL over its Parquet parts (DuckDB): which method to believe, which words the
model relies on, slices, and finders. Every result is a frozen dataclass or a pyarrow table.

    run = open_run("runs/sample")
    ranking = method_ranking(run)            # faithfulness with bootstrap 95% intervals, paired test
    words = word_attributions(run, "gradient_x_input")
    flagged = shortcuts(run, "gradient_x_input")
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
from scipy.stats import wilcoxon

from explain.corpus.heads import HEAD_METRICS
from explain.corpus.job import MANIFEST
from explain.corpus.tables import SCHEMAS, table_glob
from explain.errors import InputError

BOOTSTRAP_SAMPLES = 1000
# Candidate shortcut: a word form in at least SHORTCUT_MIN_TEXTS texts, SHORTCUT_SHARE of them predicted as one
# class, whose mean |attribution| is at least SHORTCUT_STRENGTH times the median form's (same method).
SHORTCUT_MIN_TEXTS = 5
SHORTCUT_SHARE = 0.8
SHORTCUT_STRENGTH = 2.0
LENGTH_BUCKETS = ((1, 5), (6, 10), (11, 20), (21, 40), (41, 1_000_000))


@dataclass(frozen=True)
class CorpusRun:
    """A finished or partial run folder and its manifest."""

    folder: Path
    manifest: dict[str, Any]

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.manifest["request"]["methods"])

    @property
    def heads(self) -> bool:
        """Whether the run wrote the heads table (the job's heads option)."""
        return bool(self.manifest["request"].get("heads"))

    def sql(self, query: str, params: list[Any] | None = None) -> pa.Table:
        """`query` with views texts, words, faithfulness, failures, read_failures and heads over the parts."""
        connection = duckdb.connect()
        try:
            for table in ("texts", "words", "faithfulness", "failures", "read_failures", "heads"):
                columns = ", ".join(f"CAST(NULL AS {duck_type(f.type)}) AS {f.name}" for f in SCHEMAS[table])
                if list((self.folder / "parts" / table).glob("part-*.parquet")):
                    source = f"SELECT * FROM read_parquet('{table_glob(self.folder, table)}')"
                else:
                    source = f"SELECT {columns} WHERE false"
                connection.execute(f"CREATE VIEW {table} AS {source}")
            return connection.sql(query, params=params or None).to_arrow_table()
        finally:
            connection.close()


def duck_type(kind: pa.DataType) -> str:
    return {pa.string(): "VARCHAR", pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.float64(): "DOUBLE",
            pa.bool_(): "BOOLEAN"}[kind]


def open_run(folder: str | Path) -> CorpusRun:
    """The run in `folder`; InputError when it holds none."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(f"'{folder}' holds no corpus run (no {MANIFEST}).")
    try:
        return CorpusRun(folder, json.loads(path.read_text(encoding="utf-8")))
    except ValueError:
        raise InputError(f"The manifest in '{folder}' cannot be read.") from None


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float


@dataclass(frozen=True)
class MethodFaithfulness:
    """One method's mean faithfulness over the texts, with bootstrap 95% intervals (NAOPC nan when absent)."""

    method: str
    texts: int
    comprehensiveness: Interval
    sufficiency: Interval
    naopc: Interval


@dataclass(frozen=True)
class PairedTest:
    """Wilcoxon signed-rank test of per-text comprehensiveness between the two best methods."""

    first: str
    second: str
    texts: int
    mean_difference: float
    p_value: float


@dataclass(frozen=True)
class MethodRanking:
    """Methods ranked by mean comprehensiveness (higher first; ties by sufficiency, lower first)."""

    methods: tuple[MethodFaithfulness, ...]
    paired: PairedTest | None

    def table(self) -> pa.Table:
        rows = [{"rank": i + 1, "method": m.method, "texts": m.texts,
                 "comprehensiveness": m.comprehensiveness.mean, "comprehensiveness_low": m.comprehensiveness.low,
                 "comprehensiveness_high": m.comprehensiveness.high, "sufficiency": m.sufficiency.mean,
                 "sufficiency_low": m.sufficiency.low, "sufficiency_high": m.sufficiency.high,
                 "naopc": m.naopc.mean, "naopc_low": m.naopc.low, "naopc_high": m.naopc.high}
                for i, m in enumerate(self.methods)]
        return pa.Table.from_pylist(rows)


def bootstrap(values: np.ndarray, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> Interval:
    """Mean and percentile bootstrap 95% interval of the mean (nan for no values)."""
    values = values[~np.isnan(values)]
    if not len(values):
        return Interval(math.nan, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(samples, len(values)))].mean(1)
    return Interval(float(values.mean()), float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5)))


def method_ranking(run: CorpusRun, samples: int = BOOTSTRAP_SAMPLES, seed: int = 0) -> MethodRanking:
    """Which explanation to believe on this data: faithfulness per method, ranked, and a paired test."""
    data = run.sql("SELECT method, text_id, comprehensiveness, sufficiency, naopc FROM faithfulness "
                   "ORDER BY method, text_id").to_pydict()
    found = []
    for name in dict.fromkeys(data["method"]):
        pick = [i for i, m in enumerate(data["method"]) if m == name]

        def column(key: str, pick: list[int] = pick) -> np.ndarray:
            return np.array([np.nan if data[key][i] is None else data[key][i] for i in pick], dtype=np.float64)

        found.append(MethodFaithfulness(name, len(pick), bootstrap(column("comprehensiveness"), samples, seed),
                                        bootstrap(column("sufficiency"), samples, seed),
                                        bootstrap(column("naopc"), samples, seed)))
    found.sort(key=lambda m: (-np.nan_to_num(m.comprehensiveness.mean, nan=-np.inf), m.sufficiency.mean))
    paired = None
    if len(found) >= 2:
        a, b = found[0].method, found[1].method
        pairs = run.sql("SELECT x.comprehensiveness AS a, y.comprehensiveness AS b FROM faithfulness x JOIN "
                        "faithfulness y USING (text_id) WHERE x.method = ? AND y.method = ?", [a, b]).to_pydict()
        diff = np.array(pairs["a"], dtype=np.float64) - np.array(pairs["b"], dtype=np.float64)
        p = float(wilcoxon(diff).pvalue) if len(diff) and np.any(diff != 0) else 1.0
        paired = PairedTest(a, b, len(diff), float(diff.mean()) if len(diff) else math.nan, p)
    return MethodRanking(tuple(found), paired)


def word_attributions(run: CorpusRun, method: str, by: str = "prediction", min_texts: int = 1) -> pa.Table:
    """Per word form and class (`by`: "prediction" or "gold"): texts, count, mean signed and mean |attribution|."""
    if by not in ("prediction", "gold"):
        raise InputError("Group words by 'prediction' or 'gold'.")
    return run.sql(
        f"SELECT w.form, t.{by} AS class, count(DISTINCT w.text_id) AS texts, count(*) AS count, "
        "avg(w.score) AS mean_signed, avg(abs(w.score)) AS mean_abs FROM words w JOIN texts t USING (text_id) "
        f"WHERE w.method = ? AND t.{by} IS NOT NULL GROUP BY w.form, t.{by} HAVING count(DISTINCT w.text_id) >= ? "
        "ORDER BY mean_abs DESC, w.form", [method, min_texts])


def shortcuts(run: CorpusRun, method: str, min_texts: int = SHORTCUT_MIN_TEXTS, share: float = SHORTCUT_SHARE,
              strength: float = SHORTCUT_STRENGTH) -> pa.Table:
    """Every word form in at least `min_texts` texts with its majority predicted class, that class's share of its
    texts, its mean signed and |attribution|, and `flagged`: share >= `share` and mean |attribution| >=
    `strength` x the median form's (a candidate shortcut: frequent in one class and carrying large attributions)."""
    return run.sql(
        "WITH per AS (SELECT w.form, t.prediction, count(DISTINCT w.text_id) AS n FROM words w JOIN texts t "
        "USING (text_id) WHERE w.method = ? GROUP BY ALL), "
        "totals AS (SELECT form, sum(n) AS texts, arg_max(prediction, n) AS class, max(n) / sum(n) AS share "
        "FROM per GROUP BY form), "
        "scores AS (SELECT form, avg(score) AS mean_signed, avg(abs(score)) AS mean_abs FROM words WHERE method = ? "
        "GROUP BY form), "
        "median AS (SELECT median(mean_abs) AS m FROM scores) "
        "SELECT t.form, t.texts, t.class, t.share, s.mean_signed, s.mean_abs, "
        "(t.share >= ? AND s.mean_abs >= ? * median.m) AS flagged FROM totals t JOIN scores s USING (form), median "
        "WHERE t.texts >= ? ORDER BY flagged DESC, s.mean_abs DESC, t.form",
        [method, method, share, strength, min_texts])


def slices(run: CorpusRun) -> pa.Table:
    """Texts, accuracy (where gold labels exist) and mean explained score by gold label, prediction, correct or
    wrong, and length in words."""
    bucket = " ".join(f"WHEN n_words BETWEEN {a} AND {b} THEN '{a}-{b}'" if b < 1_000_000 else
                      f"WHEN n_words >= {a} THEN '{a}+'" for a, b in LENGTH_BUCKETS)
    parts = [f"SELECT '{name}' AS slice, CAST({expr} AS VARCHAR) AS value, count(*) AS texts, "
             "avg(CAST(correct AS DOUBLE)) AS accuracy, avg(explained_score) AS mean_explained_score "
             f"FROM texts GROUP BY {expr}"
             for name, expr in (("all", "'all'"), ("gold", "gold"), ("prediction", "prediction"),
                                ("correct", "correct"), ("length", f"CASE {bucket} END"))]
    return run.sql(" UNION ALL ".join(parts) + " ORDER BY slice, value")


def disagreements(run: CorpusRun, first: str, second: str, top: int = 10) -> pa.Table:
    """The texts where two methods rank the words most differently (Spearman of their word scores, lowest first)."""
    return run.sql(
        "WITH r AS (SELECT text_id, method, word_index, rank() OVER (PARTITION BY text_id, method ORDER BY score) "
        "AS r FROM words WHERE method IN (?, ?)) "
        "SELECT a.text_id, t.text, corr(a.r, b.r) AS spearman FROM r a JOIN r b USING (text_id, word_index) "
        "JOIN texts t USING (text_id) WHERE a.method = ? AND b.method = ? GROUP BY a.text_id, t.text "
        "HAVING count(*) >= 2 ORDER BY spearman NULLS LAST, a.text_id LIMIT ?", [first, second, first, second, top])


def least_faithful(run: CorpusRun, method: str, top: int = 10) -> pa.Table:
    """The texts whose explanation by `method` is least faithful (lowest comprehensiveness)."""
    return run.sql("SELECT f.text_id, t.text, f.comprehensiveness, f.sufficiency FROM faithfulness f JOIN texts t "
                   "USING (text_id) WHERE f.method = ? ORDER BY f.comprehensiveness, f.text_id LIMIT ?",
                   [method, top])


def misclassified(run: CorpusRun, method: str, words: int = 3, top: int = 20) -> pa.Table:
    """Misclassified texts with the words that pushed most toward the explained (predicted) class."""
    return run.sql(
        "WITH ranked AS (SELECT text_id, word, score, row_number() OVER (PARTITION BY text_id ORDER BY score DESC) "
        "AS k FROM words WHERE method = ?) "
        "SELECT t.text_id, t.text, t.gold, t.prediction, string_agg(r.word, ' | ' ORDER BY r.k) AS top_words "
        "FROM texts t JOIN ranked r USING (text_id) WHERE t.correct = false AND r.k <= ? "
        "GROUP BY t.text_id, t.text, t.gold, t.prediction, t.row ORDER BY t.row LIMIT ?", [method, words, top])


def where_word_matters(run: CorpusRun, form: str, method: str, top: int = 10) -> pa.Table:
    """The texts where the word form `form` gets the largest |attribution| from `method`."""
    return run.sql("SELECT w.text_id, t.text, w.word, w.score, t.prediction FROM words w JOIN texts t "
                   "USING (text_id) WHERE w.method = ? AND w.form = ? ORDER BY abs(w.score) DESC, w.text_id LIMIT ?",
                   [method, form.casefold(), top])


def failures(run: CorpusRun) -> pa.Table:
    """Rows skipped while reading or explaining, in file order."""
    return run.sql("SELECT row, text_id, reason FROM read_failures UNION ALL SELECT row, text_id, reason FROM "
                   "failures ORDER BY row")


def head_summary(run: CorpusRun) -> pa.Table:
    """Heads over the data: per layer and head, the texts and each metric's mean and sample standard deviation
    over the texts (`<metric>`, `<metric>_std`; HEAD_METRICS), and `gradient_normalised`: the mean gradient
    importance divided by the l2 norm of its layer's means, as Michel et al. (2019) normalise head importance."""
    parts = ", ".join(f'avg("{m}") AS "{m}", stddev_samp("{m}") AS "{m}_std"' for m in HEAD_METRICS)
    return run.sql(
        f"WITH per AS (SELECT layer, head, count(*) AS texts, {parts} FROM heads GROUP BY layer, head) "
        "SELECT *, gradient / nullif(sqrt(sum(gradient * gradient) OVER (PARTITION BY layer)), 0) "
        "AS gradient_normalised FROM per ORDER BY layer, head")


def top_heads(run: CorpusRun, by: str = "gradient_normalised", top: int = 10) -> pa.Table:
    """The `top` heads by `by` (a column of `head_summary`; |value| for the signed ablation effect), largest first."""
    table = head_summary(run)
    if by not in table.column_names:
        raise InputError(f"Rank heads by one of: {', '.join(table.column_names[3:])}.")
    values = np.array([np.nan if v is None else abs(v) for v in table.column(by).to_pylist()], dtype=np.float64)
    order = sorted(range(len(values)), key=lambda i: (np.isnan(values[i]), -np.nan_to_num(values[i])))
    return table.take(pa.array(order[:top], type=pa.int64()))


def spread_table(heads: pa.Table, metrics: tuple[str, ...] = ("gradient", "ablation", "entropy", "distance", "cls",
                                                                "sep")) -> pa.Table:
    """Rows of `head_summary` (or `top_heads`) for reading: layer, head, texts, the normalised importance, and each
    of `metrics` as 'mean ± std' over the texts ('-' where not computed)."""

    def spread(mean: float | None, std: float | None) -> str:
        if mean is None:
            return "-"
        return f"{mean:.3g} ± {std:.2g}" if std is not None else f"{mean:.3g}"

    return pa.Table.from_pylist([
        {"layer": r["layer"], "head": r["head"], "texts": r["texts"], "importance": r["gradient_normalised"],
         **{name: spread(r[name], r[f"{name}_std"]) for name in metrics}} for r in heads.to_pylist()],
        schema=pa.schema([("layer", pa.int32()), ("head", pa.int32()), ("texts", pa.int64()),
                          ("importance", pa.float64()), *((name, pa.string()) for name in metrics)]))
