"""Streaming readers for a corpus file: CSV/TSV, JSON Lines, Parquet and plain text, one row at a time.

A data file is untrusted input. Lines are read in capped pieces (a cell of megabytes never
sits in memory whole), the row count can be capped, an unreadable encoding or a missing
column stops the run with one sentence, and a bad row (empty, not text, undecodable, too
long) is reported with its row number and skipped. Formula-looking cells (`=HYPERLINK(...)`)
are kept as text; `spreadsheet_safe` escapes them whenever a table is exported.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from explain.errors import InputError

FORMATS = ("csv", "tsv", "jsonl", "parquet", "text")
SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl",
            ".parquet": "parquet", ".pq": "parquet", ".txt": "text", ".text": "text"}
# A text of 20,000 characters is ~40 BERT windows: beyond that a cell is almost surely not a sentence.
DEFAULT_MAX_CELL_CHARS = 20_000
# Rows read before the run stops (None: no cap); the dashboard sets a small one, the CLI none.
DEFAULT_MAX_ROWS: int | None = None
# If every one of the first rows fails to decode, the file is in another encoding: stop instead of skipping all.
ENCODING_PROBE_ROWS = 20
PARQUET_READ_ROWS = 1024
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SAMPLE = "sample"


@dataclass(frozen=True)
class CorpusColumns:
    """Which columns hold the text and, optionally, the gold label, a second text or question, and an id."""

    text: str = "text"
    label: str | None = None
    pair: str | None = None
    question: str | None = None
    id: str | None = None

    def __post_init__(self) -> None:
        if not self.text:
            raise InputError("Name the column that holds the texts.")
        if self.pair and self.question:
            raise InputError("Give either a second-text column or a question column, not both.")

    def named(self) -> tuple[str, ...]:
        return tuple(c for c in (self.text, self.label, self.pair, self.question, self.id) if c)


@dataclass(frozen=True)
class ReaderLimits:
    """Bounds on untrusted input: characters per cell, rows read (None: all), and the file's encoding."""

    max_cell_chars: int = DEFAULT_MAX_CELL_CHARS
    max_rows: int | None = DEFAULT_MAX_ROWS
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if self.max_cell_chars < 1:
            raise InputError("The cell size cap must be at least one character.")
        if self.max_rows is not None and self.max_rows < 1:
            raise InputError("The row cap must be at least one row.")
        try:
            "".encode(self.encoding)
        except LookupError:
            raise InputError(f"Unknown text encoding '{self.encoding}'.") from None


@dataclass(frozen=True)
class CorpusRow:
    """One usable row: its 1-based row number in the file (header not counted), id, texts and gold label."""

    row: int
    id: str
    text: str
    label: str | None = None
    pair: str | None = None
    question: str | None = None


@dataclass(frozen=True)
class BadRow:
    """A row that was skipped, and why (one sentence)."""

    row: int
    reason: str


def spreadsheet_safe(value: str) -> str:
    """`value` as a spreadsheet shows it as text: a cell starting like a formula gets a leading apostrophe."""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def file_format(path: str | Path, fmt: str | None = None) -> str:
    """The format named, or the one the file's suffix says; InputError when neither says."""
    if fmt:
        if fmt not in FORMATS:
            raise InputError(f"Unknown file format '{fmt}'; choose one of {', '.join(FORMATS)}.")
        return fmt
    found = SUFFIXES.get(Path(path).suffix.lower())
    if found is None:
        raise InputError(f"Cannot tell the format of '{Path(path).name}' from its name; give one of "
                         f"{', '.join(FORMATS)}.")
    return found


def sample_path() -> Path:
    """The built-in labelled sample (about 200 short English texts with gold sentiment labels)."""
    return Path(__file__).parent / "data" / "sample.csv"


def sample_columns() -> CorpusColumns:
    return CorpusColumns(text="text", label="label", id="id")


def read_rows(path: str | Path, columns: CorpusColumns, limits: ReaderLimits | None = None,
              fmt: str | None = None) -> Iterator[CorpusRow | BadRow]:
    """Every row of the file, in order, as a CorpusRow or a BadRow; never loads the file whole.

    Raises InputError for a missing file or column, an unreadable encoding, or an unknown format.
    """
    limits = limits or ReaderLimits()
    if str(path) == SAMPLE:
        path = sample_path()
    path = Path(path)
    if not path.is_file():
        raise InputError(f"There is no file '{path}'.")
    kind = file_format(path, fmt)
    if kind == "parquet":
        records: Iterator[tuple[int, dict[str, Any] | str]] = parquet_records(path, columns)
    elif kind == "jsonl":
        records = jsonl_records(path, columns, limits)
    elif kind == "text":
        records = text_records(path, columns, limits)
    else:
        records = delimited_records(path, columns, limits, "\t" if kind == "tsv" else ",")
    count = 0
    decoded_any = False
    for row, record in records:
        if limits.max_rows is not None and count >= limits.max_rows:
            break
        count += 1
        if isinstance(record, str):
            yield BadRow(row, record)
            if record.startswith("undecodable") and not decoded_any and row >= ENCODING_PROBE_ROWS:
                raise InputError(f"The first {ENCODING_PROBE_ROWS} rows are not {limits.encoding} text; give the "
                                 "file's encoding (--encoding latin-1, for example).")
            continue
        decoded_any = True
        yield checked_row(row, record, columns, limits)


def checked_row(row: int, record: dict[str, Any], columns: CorpusColumns, limits: ReaderLimits
                ) -> CorpusRow | BadRow:
    """A record (column -> value) as a CorpusRow, or a BadRow saying what is wrong with it."""
    values: dict[str, str | None] = {}
    for role in ("text", "label", "pair", "question", "id"):
        name = getattr(columns, role)
        if not name:
            values[role] = None
            continue
        value = record.get(name)
        if role in ("text", "pair", "question"):
            if value is None or (isinstance(value, float) and math.isnan(value)):
                return BadRow(row, f"the {role} column '{name}' is empty")
            if not isinstance(value, str):
                return BadRow(row, f"the {role} column '{name}' holds {type(value).__name__}, not text")
            if not value.strip():
                return BadRow(row, f"the {role} column '{name}' is empty")
            if len(value) > limits.max_cell_chars:
                return BadRow(row, f"the {role} column '{name}' has {len(value):,} characters, more than the cap "
                                   f"of {limits.max_cell_chars:,}")
            values[role] = value
        else:
            text = None if value is None or (isinstance(value, float) and math.isnan(value)) else str(value)
            if text is not None and len(text) > limits.max_cell_chars:
                return BadRow(row, f"the {role} column '{name}' is longer than the cap of {limits.max_cell_chars:,}")
            values[role] = text.strip() if text is not None and text.strip() else None
    return CorpusRow(row=row, id=values["id"] or str(row), text=str(values["text"]), label=values["label"],
                     pair=values["pair"], question=values["question"])


def missing_column(name: str, present: list[str]) -> InputError:
    shown = ", ".join(repr(c) for c in present[:20]) + (" ..." if len(present) > 20 else "")
    return InputError(f"The file has no column '{name}'; its columns are {shown or 'none'}.")


def capped_lines(path: Path, limits: ReaderLimits) -> Iterator[tuple[bytes | None, int]]:
    """(line bytes, physical line number) of a file read in capped pieces: an over-long line is None."""
    cap = limits.max_cell_chars * 4 + 1024  # 4 bytes per character at most in UTF-8, plus separators
    with path.open("rb") as handle:
        number = 0
        while True:
            line = handle.readline(cap)
            if not line:
                return
            number += 1
            if len(line) >= cap and not line.endswith(b"\n"):
                while True:  # skip the rest of the over-long line without holding it
                    rest = handle.readline(cap)
                    if not rest or rest.endswith(b"\n"):
                        break
                yield None, number
                continue
            yield line, number


def decoded(line: bytes, encoding: str, first: bool) -> str | None:
    try:
        text = line.decode(encoding)
    except UnicodeDecodeError:
        return None
    return text.lstrip("\ufeff") if first else text


def text_records(path: Path, columns: CorpusColumns, limits: ReaderLimits
                 ) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Plain text: each line is one text (under the text column's name)."""
    for number, text, problem in decoded_lines(path, limits, skip_blank=False):
        yield number, problem if text is None else {columns.text: text.rstrip("\r\n")}


def decoded_lines(path: Path, limits: ReaderLimits, *, skip_blank: bool
                  ) -> Iterator[tuple[int, str | None, str]]:
    """(row, text, "") per line, or (row, None, why) for a line over the cap or not in the encoding; rows count
    the file's lines, or only the non-blank ones with `skip_blank` (which leaves blank lines out)."""
    row = 0
    for line, number in capped_lines(path, limits):
        if skip_blank and line is not None and not line.strip():
            continue
        row = row + 1 if skip_blank else number
        if line is None:
            yield row, None, f"the line is longer than the cap of {limits.max_cell_chars:,} characters"
            continue
        text = decoded(line, limits.encoding, row == 1)
        if text is None:
            yield row, None, f"undecodable: the line is not {limits.encoding} text"
            continue
        yield row, text, ""


def jsonl_records(path: Path, columns: CorpusColumns, limits: ReaderLimits
                  ) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """JSON Lines: one object per line; blank lines are skipped without a number of their own."""
    checked = False
    for row, text, problem in decoded_lines(path, limits, skip_blank=True):
        if text is None:
            yield row, problem
            continue
        try:
            record = json.loads(text)
        except ValueError:
            yield row, "the line is not valid JSON"
            continue
        if not isinstance(record, dict):
            yield row, "the line is not a JSON object"
            continue
        if not checked:
            for name in columns.named():
                if name not in record:
                    raise missing_column(name, list(record))
            checked = True
        yield row, record


def delimited_records(path: Path, columns: CorpusColumns, limits: ReaderLimits, delimiter: str
                      ) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """CSV or TSV with a header row; a quoted cell may span lines."""
    bad_lines: set[int] = set()
    long_lines: set[int] = set()

    def lines() -> Iterator[str]:
        for line, number in capped_lines(path, limits):
            if line is None:
                long_lines.add(number)
                yield "\n"
                continue
            text = decoded(line, limits.encoding, number == 1)
            if text is None:
                bad_lines.add(number)
                text = line.decode(limits.encoding, errors="replace")
            yield text

    csv.field_size_limit(max(limits.max_cell_chars * 4 + 1024, 131072))
    source = lines()
    reader = csv.reader(source, delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InputError("The file is empty; it needs a header row naming the columns.") from None
    except csv.Error as exc:
        raise InputError(f"The header row cannot be read as {'TSV' if delimiter == chr(9) else 'CSV'}: {exc}.") from None
    if 1 in bad_lines:
        raise InputError(f"The header row is not {limits.encoding} text; give the file's encoding "
                         "(--encoding latin-1, for example).")
    header = [h.strip() for h in header]
    for name in columns.named():
        if name not in header:
            raise missing_column(name, header)
    row = 0
    start = reader.line_num
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            row += 1
            yield row, f"the row cannot be read: {exc}"
            start = reader.line_num
            continue
        end = reader.line_num
        physical = set(range(start + 1, end + 1))
        start = end
        if physical & long_lines:
            row += 1
            yield row, f"a line of the row is longer than the cap of {limits.max_cell_chars:,} characters"
            continue
        if not cells:
            continue
        row += 1
        if physical & bad_lines:
            yield row, f"undecodable: the row is not {limits.encoding} text"
            continue
        if len(cells) != len(header):
            yield row, f"the row has {len(cells)} cells but the header names {len(header)} columns"
            continue
        yield row, dict(zip(header, cells))


def parquet_records(path: Path, columns: CorpusColumns) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """Parquet, read in record batches of the named columns only."""
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is not Parquet
        raise InputError(f"'{path.name}' cannot be read as Parquet ({type(exc).__name__}).") from None
    present = handle.schema_arrow.names
    for name in columns.named():
        if name not in present:
            raise missing_column(name, list(present))
    row = 0
    for batch in handle.iter_batches(batch_size=PARQUET_READ_ROWS, columns=list(dict.fromkeys(columns.named()))):
        for record in batch.to_pylist():
            row += 1
            yield row, record


def read_all(path: str | Path, columns: CorpusColumns, limits: ReaderLimits | None = None, fmt: str | None = None
             ) -> tuple[list[CorpusRow], list[BadRow]]:
    """Every row of a small file, split into usable and bad rows (tests, previews)."""
    good: list[CorpusRow] = []
    bad: list[BadRow] = []
    for item in read_rows(path, columns, limits, fmt):
        (good if isinstance(item, CorpusRow) else bad).append(item)  # type: ignore[arg-type]
    return good, bad


__all__ = ["FORMATS", "SAMPLE", "BadRow", "CorpusColumns", "CorpusRow", "ReaderLimits", "file_format", "read_all",
           "read_rows", "sample_columns", "sample_path", "spreadsheet_safe"]

