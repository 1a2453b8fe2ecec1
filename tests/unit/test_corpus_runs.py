"""Kept corpus runs: ids, CLI folders confined to the roots, column names of uploads, the page's limits."""

from __future__ import annotations

import json

import pytest

from explain.corpus import CorpusJob, sample_columns
from explain.corpus.readers import SAMPLE
from explain.corpus.runs import (
    PageLimits,
    check_cli_folder,
    check_run_id,
    check_upload_size,
    file_columns,
    run_id,
    stage_upload,
)
from explain.errors import InputError

OUTSIDE = "That folder is outside the folders this server allows, or holds no corpus run."


def test_cli_folders_outside_the_roots_get_the_same_sentence_whether_or_not_they_exist(tmp_path, monkeypatch):
    root, other = tmp_path / "root", tmp_path / "other"
    for folder in (root / "run", other / "run"):
        folder.mkdir(parents=True)
        (folder / "manifest.json").write_text("{}")
    monkeypatch.setenv("EXPLAIN_CORPUS_ROOTS", str(root))
    assert check_cli_folder(str(root / "run")) == (root / "run").resolve()
    for value in (str(other / "run"), str(other / "missing"), str(root / "run" / ".." / ".." / "other" / "run"),
                  str(root / "missing"), ""):
        with pytest.raises(InputError) as caught:
            check_cli_folder(value)
        assert str(caught.value) == OUTSIDE


def test_run_ids_are_checked_and_follow_the_content_not_the_path(tmp_path):
    for bad in ("", "../x", "0123456789ABCDEF", "0123456789abcde", "0123456789abcdef0"):
        with pytest.raises(InputError):
            check_run_id(bad)
    job = CorpusJob(source=SAMPLE, columns=sample_columns())
    assert check_run_id(run_id(job, "")) == run_id(job, "")

    def make(source: str) -> CorpusJob:
        return CorpusJob(source=source, columns=sample_columns())

    first, job_a = stage_upload(b"id,text,label\n1,good,positive\n", "a.csv", tmp_path, make)
    second, job_b = stage_upload(b"id,text,label\n1,good,positive\n", "b.csv", tmp_path, make)
    third, _ = stage_upload(b"id,text,label\n1,bad,negative\n", "a.csv", tmp_path, make)
    assert first == second != third
    assert job_a.source == str(tmp_path / first / "input.csv")


def test_column_names_of_each_format(tmp_path):
    (tmp_path / "a.csv").write_text("id,sentence,gold\n1,x,y\n")
    (tmp_path / "a.jsonl").write_text(json.dumps({"text": "x", "label": "y"}) + "\n")
    (tmp_path / "a.txt").write_text("one text\n")
    assert file_columns(tmp_path / "a.csv") == ["id", "sentence", "gold"]
    assert file_columns(tmp_path / "a.jsonl") == ["text", "label"]
    assert file_columns(tmp_path / "a.txt") == ["text"]
    with pytest.raises(InputError):
        file_columns(tmp_path / "a.xlsx")


def test_the_upload_cap_comes_from_the_settings(monkeypatch):
    monkeypatch.setenv("EXPLAIN_CORPUS_UPLOAD_MB", "2")
    limits = PageLimits.from_environment()
    check_upload_size(2 * 2 ** 20, limits)
    with pytest.raises(InputError, match="python -m explain corpus"):
        check_upload_size(2 * 2 ** 20 + 1, limits)
