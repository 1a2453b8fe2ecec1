"""The Parquet schemas of a corpus run, one table per kind of row, and the run folder's layout.

A run folder holds `manifest.json` and `parts/<table>/part-NNNNN.parquet`, one part per batch.
The texts part is written last, so a batch is finished exactly when its texts part exists.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CORPUS_SCHEMA_VERSION = 1

INPUT = pa.schema([
    ("row", pa.int64()), ("text_id", pa.string()), ("text", pa.string()), ("label", pa.string()),
    ("pair", pa.string()), ("question", pa.string()), ("batch", pa.int32()),
])
TEXTS = pa.schema([
    ("text_id", pa.string()), ("row", pa.int64()), ("text", pa.string()), ("prediction", pa.string()),
    ("prediction_score", pa.float64()), ("gold", pa.string()), ("correct", pa.bool_()), ("explained", pa.string()),
    ("explained_score", pa.float64()), ("baseline_score", pa.float64()), ("delta", pa.float64()),
    ("n_tokens", pa.int32()), ("n_words", pa.int32()), ("truncated", pa.bool_()), ("batch", pa.int32()),
])
WORDS = pa.schema([
    ("text_id", pa.string()), ("method", pa.string()), ("word_index", pa.int32()), ("word", pa.string()),
    ("form", pa.string()), ("score", pa.float64()),
])
FAITHFULNESS = pa.schema([
    ("text_id", pa.string()), ("method", pa.string()), ("comprehensiveness", pa.float64()),
    ("sufficiency", pa.float64()), ("naopc", pa.float64()), ("loo_spearman", pa.float64()),
])
# One row per text x layer x head: attention statistics (explain.attention.HEAD_STATISTICS), confidence, gradient
# importance and the ablation effect (null unless the job asks for it). Written only by jobs with heads on.
HEADS = pa.schema([
    ("text_id", pa.string()), ("layer", pa.int32()), ("head", pa.int32()), ("entropy", pa.float64()),
    ("distance", pa.float64()), ("cls", pa.float64()), ("sep", pa.float64()), ("self", pa.float64()),
    ("previous", pa.float64()), ("next", pa.float64()), ("confidence", pa.float64()), ("gradient", pa.float64()),
    ("ablation", pa.float64()),
])
FAILURES = pa.schema([("row", pa.int64()), ("text_id", pa.string()), ("reason", pa.string()), ("batch", pa.int32())])

SCHEMAS = {"input": INPUT, "texts": TEXTS, "words": WORDS, "faithfulness": FAITHFULNESS, "failures": FAILURES,
           "read_failures": FAILURES, "heads": HEADS}
# What a batch writes, in order: the texts part last marks the batch finished.
OUTPUT_TABLES = ("words", "faithfulness", "heads", "failures", "texts")


def part_path(folder: Path, table: str, batch: int) -> Path:
    return folder / "parts" / table / f"part-{batch:05d}.parquet"


def write_part(folder: Path, table: str, batch: int, data: pa.Table) -> Path:
    """Write one part atomically (a temporary file renamed into place), so a killed run leaves none half-written."""
    path = part_path(folder, table, batch)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(f".tmp{os.getpid()}")
    pq.write_table(data.cast(SCHEMAS[table]), temporary)
    os.replace(temporary, path)
    return path


def table_glob(folder: Path, table: str) -> str:
    return str(folder / "parts" / table / "part-*.parquet")


def read_table(folder: Path, table: str) -> pa.Table:
    """All parts of one table, in batch order (an empty table with the schema when there are none)."""
    paths = sorted((folder / "parts" / table).glob("part-*.parquet"))
    if not paths:
        return SCHEMAS[table].empty_table()
    return pa.concat_tables([pq.read_table(p).cast(SCHEMAS[table]) for p in paths])
