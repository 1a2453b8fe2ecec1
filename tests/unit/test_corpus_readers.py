"""Corpus readers: streamed formats, bad rows with their numbers, untrusted-file limits, the built-in sample."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from explain.corpus.readers import (
    BadRow,
    CorpusColumns,
    ReaderLimits,
    read_all,
    read_rows,
    sample_columns,
    sample_path,
    spreadsheet_safe,
)
from explain.errors import InputError


def test_csv_bad_rows_are_reported_with_their_numbers_and_skipped(tmp_path):
    path = tmp_path / "data.csv"
    path.write_bytes(b"id,text,label\n"
                     b"a,good film,positive\n"
                     b"b,,negative\n"
                     b"c,caf\xe9 au lait,positive\n"
                     b"d,\"two\nlines\",negative\n"
                     b"e,=HYPERLINK(\"http://x\"),negative\n")
    good, bad = read_all(path, CorpusColumns(text="text", label="label", id="id"))
    assert [(r.row, r.id, r.label) for r in good] == [(1, "a", "positive"), (4, "d", "negative"),
                                                       (5, "e", "negative")]
    assert good[1].text == "two\nlines"
    assert good[2].text == '=HYPERLINK("http://x")'  # kept as text
    assert [b.row for b in bad] == [2, 3]
    assert "empty" in bad[0].reason and "not utf-8" in bad[1].reason


def test_a_missing_column_names_the_columns_present(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("sentence\tgold\nhello\tpositive\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"no column 'text'; its columns are 'sentence', 'gold'\."):
        list(read_rows(path, CorpusColumns(text="text")))
    rows, _ = read_all(path, CorpusColumns(text="sentence", label="gold"))
    assert rows[0].text == "hello" and rows[0].label == "positive" and rows[0].id == "1"


def test_an_oversized_cell_is_skipped_without_being_held(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("text\n" + "x" * 50_000 + "\nshort one\n", encoding="utf-8")
    good, bad = read_all(path, CorpusColumns(), ReaderLimits(max_cell_chars=1000))
    assert [r.text for r in good] == ["short one"]
    assert bad[0].row == 1 and "cap" in bad[0].reason


def test_the_row_cap_stops_reading(tmp_path):
    path = tmp_path / "many.txt"
    path.write_text("".join(f"text {i}\n" for i in range(100)), encoding="utf-8")
    good, _ = read_all(path, CorpusColumns(), ReaderLimits(max_rows=7))
    assert len(good) == 7 and good[-1].row == 7


def test_a_file_in_another_encoding_stops_with_one_sentence(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("".join(f"caf\u00e9 {i}\n" for i in range(30)).encode("latin-1"))
    with pytest.raises(InputError, match="encoding"):
        list(read_rows(path, CorpusColumns()))
    good, bad = read_all(path, CorpusColumns(), ReaderLimits(encoding="latin-1"))
    assert len(good) == 30 and not bad and good[0].text == "caf\u00e9 0"


def test_json_lines_rows_that_are_not_text(tmp_path):
    path = tmp_path / "data.jsonl"
    lines = [{"t": "fine", "y": 1}, {"t": 42, "y": 0}, "not json", {"t": "also fine", "y": None}]
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n", encoding="utf-8")
    good, bad = read_all(path, CorpusColumns(text="t", label="y"))
    assert [(r.row, r.text, r.label) for r in good] == [(1, "fine", "1"), (4, "also fine", None)]
    assert [(b.row, "int" in b.reason or "JSON" in b.reason) for b in bad] == [(2, True), (3, True)]


def test_parquet_is_read_in_batches_of_the_named_columns(tmp_path):
    path = tmp_path / "data.parquet"
    pq.write_table(pa.table({"text": ["one", "", "three"], "label": ["a", "b", "c"], "other": [1, 2, 3]}), path)
    items = list(read_rows(path, CorpusColumns(text="text", label="label")))
    assert isinstance(items[1], BadRow) and items[1].row == 2
    assert [i.text for i in items if not isinstance(i, BadRow)] == ["one", "three"]
    with pytest.raises(InputError, match="its columns are 'text', 'label', 'other'"):
        list(read_rows(path, CorpusColumns(text="sentence")))


def test_formula_cells_are_escaped_for_export():
    assert spreadsheet_safe('=HYPERLINK("http://x")') == '\'=HYPERLINK("http://x")'
    assert spreadsheet_safe("@SUM(A1)").startswith("'") and spreadsheet_safe("plain") == "plain"


def test_the_built_in_sample_is_labelled_with_the_embedded_models_labels():
    from explain.targets.fields import SENTIMENT_LABELS

    good, bad = read_all("sample", sample_columns())
    assert not bad and 180 <= len(good) <= 220
    assert {r.label for r in good} == set(SENTIMENT_LABELS)
    assert len({r.id for r in good}) == len(good) and sample_path().is_file()


def test_line_formats_number_their_rows_and_skip_lines_over_the_cap(tmp_path):
    """Plain text counts every line; JSON Lines counts only non-blank ones; both skip a line over the cap."""
    text = tmp_path / "lines.txt"
    text.write_text("first\n" + "x" * 5000 + "\nthird\n", encoding="utf-8")
    good, bad = read_all(text, CorpusColumns(), ReaderLimits(max_cell_chars=1000))
    assert [(r.row, r.text) for r in good] == [(1, "first"), (3, "third")]
    assert [b.row for b in bad] == [2] and "cap" in bad[0].reason
    jsonl = tmp_path / "lines.jsonl"
    jsonl.write_text('{"text": "one"}\n\n' + json.dumps({"text": "y" * 5000}) + '\n{"text": "three"}\n',
                     encoding="utf-8")
    good, bad = read_all(jsonl, CorpusColumns(), ReaderLimits(max_cell_chars=1000))
    assert [(r.row, r.text) for r in good] == [(1, "one"), (3, "three")]
    assert [b.row for b in bad] == [2] and "cap" in bad[0].reason
