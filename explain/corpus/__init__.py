"""Corpus mode: explain every text of a data set, write the results as Parquet parts, and summarise them.

readers (streamed CSV/TSV, JSON Lines, Parquet, text), job (request, manifest, resume, the local engine),
engine_ray (the same batch function on a Ray cluster), summary (DuckDB over the parts).
"""

from explain.corpus.job import CorpusJob, CorpusOutcome, CorpusProgress, JobPrice, price_job, run_job
from explain.corpus.readers import CorpusColumns, ReaderLimits, read_rows, sample_columns

__all__ = ["CorpusColumns", "CorpusJob", "CorpusOutcome", "CorpusProgress", "JobPrice", "ReaderLimits", "price_job",
           "read_rows", "run_job", "sample_columns"]
