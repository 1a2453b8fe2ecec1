from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import threading
import zlib
from pathlib import Path

import numpy as np
import pytest

from explain.errors import ExplainError
from explain.records import (
    Analysis,
    AnalysisRequest,
    AttentionMaps,
    ModelInfo,
    Prediction,
    TokenAttribution,
    Tokens,
    Words,
)
from explain.store import STORE_SCHEMA_VERSION, AnalysisStore, StoreError, content_id, default_store_path

NOBODY = 65534


def tiny_analysis() -> Analysis:
    rng = np.random.default_rng(0)
    w = rng.random((2, 2, 4, 4)).astype(np.float32)
    return Analysis(
        request=AnalysisRequest("Good film."),
        model=ModelInfo("minilm", "tiny", "encoder", 2, 2, 64, ("similarity",)),
        tokens=Tokens(["[CLS]", "good", "film", "[SEP]"], np.array([[0, 0], [0, 4], [5, 9], [0, 0]], np.int32),
                      np.array([True, False, False, True])),
        words=Words(["Good", "film", "."], np.array([[0, 4], [5, 9], [9, 10]], np.int32),
                    np.array([-1, 0, 1, -1], np.int32)),
        attention=AttentionMaps(w / w.sum(-1, keepdims=True)),
        prediction=Prediction(["similarity"], np.array([0.7], np.float32), 0, "cosine similarity", "similarity"),
        attribution=TokenAttribution(np.array([0.0, 0.4, 0.25, 0.0]), 0.7, 0.05, 0.0, 16, "pad"),
        word_scores=np.array([0.4, 0.25, 0.0]),
    )


def save(store: AnalysisStore, document: dict, **kw) -> str:
    kw.setdefault("kind", "explore")
    kw.setdefault("preview", "Good film.")
    kw.setdefault("models", ["minilm"])
    return store.save(document, **kw).id


def test_store_error_is_an_explain_error():
    assert issubclass(StoreError, ExplainError)


def test_round_trip_keeps_the_analysis_json_byte_for_byte(tmp_path):
    store = AnalysisStore(tmp_path / "nested" / "dir" / "analyses.sqlite3")  # parents made on first write
    analysis = tiny_analysis()
    text = analysis.to_json()
    document = {"analyses": [text], "view": {"layer": 1, "head": "mean", "tokens": False}, "app_version": "0.1.0"}
    analysis_id = store.save(document, kind="explore", preview="Good film.", models=["minilm"]).id
    assert re.fullmatch(r"[a-z2-7]{12}", analysis_id)

    saved = AnalysisStore(tmp_path / "nested" / "dir" / "analyses.sqlite3").load(analysis_id)
    assert saved.document == document
    assert saved.document["analyses"][0].encode("utf-8") == text.encode("utf-8")
    assert (saved.id, saved.kind, saved.preview, saved.models, saved.app_version) == (
        analysis_id, "explore", "Good film.", ["minilm"], "0.1.0"
    )
    again = Analysis.from_json(saved.document["analyses"][0])
    np.testing.assert_array_equal(again.attention.weights, analysis.attention.weights)
    assert store.load(analysis_id.upper()).id == analysis_id  # ids are case-insensitive


def test_same_content_same_id_and_no_duplicate(tmp_path):
    store = AnalysisStore(tmp_path / "a.sqlite3")
    first = save(store, {"analyses": ["x"], "view": {"a": 1, "b": 2}})
    second = save(store, {"view": {"b": 2, "a": 1}, "analyses": ["x"]})  # key order does not matter
    assert first == second
    assert store.count() == 1 and len(store.list()) == 1


def test_different_content_different_id(tmp_path):
    store = AnalysisStore(tmp_path / "a.sqlite3")
    ids = {save(store, {"analyses": [str(i)]}) for i in range(20)}
    ids.add(save(store, {"analyses": ["0"], "view": {}}))
    assert len(ids) == 21
    assert store.count() == 21


def test_list_is_newest_first_with_preview_and_models(tmp_path):
    store = AnalysisStore(tmp_path / "a.sqlite3")
    first = save(store, {"n": 1}, preview="first text", models=["minilm"])
    second = save(store, {"n": 2}, kind="compare", preview="  second\n text " + "x" * 300, models=["minilm", "bert"])
    third = save(store, {"n": 3}, preview="third", models=[])
    listed = store.list()
    assert [s.id for s in listed] == [third, second, first]
    assert listed[1].kind == "compare"
    assert listed[1].models == ["minilm", "bert"]
    assert listed[1].preview == ("second text " + "x" * 300)[:200]  # whitespace collapsed, 200 characters
    assert listed[2].preview == "first text" and listed[0].models == []
    assert listed[0].created_at >= listed[1].created_at >= listed[2].created_at
    assert listed[0].created_at.endswith("+00:00")
    assert [s.id for s in store.list(limit=2)] == [third, second]
    assert store.list(limit=0) == []


def test_delete_needs_the_token_given_to_whoever_saved_it(tmp_path):
    store = AnalysisStore(tmp_path / "a.sqlite3")
    keep = save(store, {"n": 1})
    drop = store.save({"n": 2}, kind="explore", preview="p", models=[])
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", drop.delete_token)
    for wrong in ("", "x" * 32, store.save({"n": 3}, kind="explore", preview="p", models=[]).delete_token):
        with pytest.raises(StoreError) as info:
            store.delete(drop.id, wrong)
        assert str(info.value) == f"That delete token does not belong to the saved analysis {drop.id!r}, " \
                                  "so nothing was deleted."
    assert store.load(drop.id).document == {"n": 2}
    assert store.delete(drop.id, drop.delete_token) is True
    with pytest.raises(StoreError, match="No saved analysis has the id"):
        store.load(drop.id)
    with pytest.raises(StoreError, match="No saved analysis has the id"):
        store.delete(drop.id, drop.delete_token)
    assert keep in [s.id for s in store.list()]
    assert not store.list()[0].id == drop.id


def test_the_token_is_kept_only_as_a_hash(tmp_path):
    path = tmp_path / "a.sqlite3"
    saved = AnalysisStore(path).save({"n": 1}, kind="explore", preview="p", models=[])
    with sqlite3.connect(path) as conn:
        dump = "\n".join(conn.iterdump())
    assert saved.delete_token not in dump
    assert hashlib.sha256(saved.delete_token.encode()).hexdigest() in dump


def test_two_savers_of_the_same_analysis_each_remove_only_their_own_claim(tmp_path):
    store = AnalysisStore(tmp_path / "a.sqlite3")
    alice = store.save({"n": 1}, kind="explore", preview="p", models=[])
    bob = store.save({"n": 1}, kind="explore", preview="p", models=[])
    assert alice.id == bob.id and alice.delete_token != bob.delete_token
    again = store.save({"n": 1}, kind="explore", preview="p", models=[], delete_token=alice.delete_token)
    assert again == alice  # saving again with one's own token adds no second claim
    assert store.delete(alice.id, alice.delete_token) is False  # Bob's link still works
    assert store.load(bob.id).document == {"n": 1}
    with pytest.raises(StoreError, match="does not belong"):
        store.delete(alice.id, alice.delete_token)
    assert store.delete(bob.id, bob.delete_token) is True
    assert store.count() == 0


def test_list_can_be_limited_to_some_ids(tmp_path):
    store = AnalysisStore(tmp_path / "a.sqlite3")
    ids = [save(store, {"n": i}) for i in range(4)]
    assert [s.id for s in store.list(ids=[ids[2], ids[0], "unknownidxyz"])] == [ids[2], ids[0]]
    assert store.list(ids=[]) == []


def test_a_document_over_the_size_limit_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "a.sqlite3"
    store = AnalysisStore(path, max_document_bytes=10_000)
    save(store, {"text": "x" * 9_000})
    with pytest.raises(StoreError) as info:
        save(store, {"text": "x" * 20_000})
    assert str(info.value) == ("This analysis takes 20011 bytes as JSON, more than the 10000 bytes one saved analysis "
                               "may take, so nothing was saved.")
    assert store.count() == 1
    monkeypatch.setenv("EXPLAIN_MAX_DOCUMENT_MB", "1.5")
    with pytest.raises(StoreError, match=r"takes 2 MB as JSON, more than the 1.5 MB one saved analysis may take"):
        save(AnalysisStore(path), {"text": "x" * 2**21})
    monkeypatch.setenv("EXPLAIN_MAX_DOCUMENT_MB", "lots")
    with pytest.raises(ExplainError, match="EXPLAIN_MAX_DOCUMENT_MB='lots' is not a positive number."):
        AnalysisStore(path)


def test_the_whole_store_is_bounded_by_default(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLAIN_MAX_STORE_MB", "0.0625")
    path = tmp_path / "a.sqlite3"
    store = AnalysisStore(path)
    assert store.max_bytes == 65536
    rng = np.random.default_rng(0)
    with pytest.raises(StoreError, match="is full .* its size limit of 65536 bytes"):
        for _ in range(100):
            save(store, {"noise": rng.bytes(5000).hex()})
    assert path.stat().st_size <= 65536
    monkeypatch.delenv("EXPLAIN_MAX_STORE_MB")
    assert AnalysisStore(path).max_bytes == 2048 * 2**20


def test_a_store_written_before_delete_tokens_is_read_and_upgraded(tmp_path):
    """A schema-1 store file (as the previous release wrote it): readable, listed, and its rows are the admin's."""
    path = tmp_path / "old.sqlite3"
    document = {"n": 1}
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    old_id = content_id(canonical)
    with sqlite3.connect(path) as conn:
        conn.executescript(OLD_SCHEMA)
        conn.execute("INSERT INTO analyses VALUES (?, '2026-01-01T00:00:00+00:00', 'explore', 'old', "
                     "'[\"minilm\"]', '0.1.0', 'json+zlib', ?, ?)", (old_id, len(canonical), zlib.compress(canonical)))
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    store = AnalysisStore(path)
    assert store.load(old_id).document == document
    assert [s.preview for s in store.list()] == ["old"]
    new = store.save({"n": 2}, kind="explore", preview="new", models=[])  # the first write upgrades the file
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == STORE_SCHEMA_VERSION == 2
    with pytest.raises(StoreError, match="does not belong"):
        store.delete(old_id, new.delete_token)
    claim = store.save(document, kind="explore", preview="old", models=[])  # the same content saved anew ...
    assert claim.id == old_id
    assert store.delete(claim.id, claim.delete_token) is False  # ... does not let its new saver remove the old row
    assert store.load(old_id).document == document
    assert store.remove(old_id) is True  # the server's admin can
    assert [s.preview for s in store.list()] == ["new"]


OLD_SCHEMA = """
CREATE TABLE analyses (
    id          TEXT PRIMARY KEY,
    created_at  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    preview     TEXT NOT NULL,
    models      TEXT NOT NULL,
    app_version TEXT NOT NULL DEFAULT '',
    encoding    TEXT NOT NULL,
    size        INTEGER NOT NULL,
    document    BLOB NOT NULL
);
CREATE INDEX analyses_newest ON analyses (created_at DESC);
"""


def test_unknown_id_message(tmp_path):
    store = AnalysisStore(tmp_path / "a.sqlite3")
    save(store, {"n": 1})
    with pytest.raises(StoreError) as info:
        store.load("abcdefghijkl")
    assert str(info.value) == "No saved analysis has the id 'abcdefghijkl'."
    empty = AnalysisStore(tmp_path / "missing.sqlite3")
    with pytest.raises(StoreError, match="No saved analysis has the id 'abcdefghijkl'"):
        empty.load("abcdefghijkl")
    assert empty.list() == []
    with pytest.raises(StoreError, match="No saved analysis has the id 'abcdefghijkl'"):
        empty.delete("abcdefghijkl", "token")
    assert not (tmp_path / "missing.sqlite3").exists()  # reads never create the store


@pytest.mark.parametrize("bad", ["", "abc", "abcdefghijk1", "abcdefghijklm", "x' OR '1'='1", "../etc/passwd", 42, None])
def test_malformed_id_message(tmp_path, bad):
    store = AnalysisStore(tmp_path / "a.sqlite3")
    save(store, {"n": 1})
    with pytest.raises(StoreError, match=r"is not a saved-analysis id; an id is 12 characters of letters a-z and "
                                         r"digits 2-7\.$"):
        store.load(bad)
    with pytest.raises(StoreError, match="is not a saved-analysis id"):
        store.delete(bad, "token")
    assert store.count() == 1


def test_bad_documents_are_refused(tmp_path):
    store = AnalysisStore(tmp_path / "a.sqlite3")
    with pytest.raises(StoreError, match="not plain JSON data"):
        save(store, {"array": np.zeros(2)})
    with pytest.raises(StoreError, match="Only a JSON object"):
        save(store, ["not", "a", "dict"])  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="The kind 'other' is not one of explore, compare."):
        save(store, {"n": 1}, kind="other")
    assert not (tmp_path / "a.sqlite3").exists()


@pytest.mark.parametrize("round_", range(5))  # fresh files each round: creating the store races too
def test_concurrent_saves_from_threads_all_land(tmp_path, round_):
    path = tmp_path / "a.sqlite3"
    barrier = threading.Barrier(8)
    ids: list[tuple[int, int, str]] = []
    errors: list[BaseException] = []
    payload = "x" * 50_000  # big enough that writes overlap

    def worker(t: int) -> None:
        store = AnalysisStore(path) if t % 2 else shared  # own store objects and one shared one
        barrier.wait()
        for k in range(5):
            try:
                ids.append((t, k, save(store, {"thread": t, "k": k, "round": round_, "payload": payload})))
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    shared = AnalysisStore(path)
    threads = [threading.Thread(target=worker, args=(t,)) for t in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    store = AnalysisStore(path)
    assert store.count() == 40 and len({i for _, _, i in ids}) == 40
    for t, k, analysis_id in ids:
        assert store.load(analysis_id).document == {"thread": t, "k": k, "round": round_, "payload": payload}


def test_schema_version_and_wal(tmp_path):
    path = tmp_path / "a.sqlite3"
    save(AnalysisStore(path), {"n": 1})
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == STORE_SCHEMA_VERSION
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "a.sqlite3"
    save(AnalysisStore(path), {"n": 1})
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="written by a newer version of this app") as info:
        AnalysisStore(path).list()
    assert str(tmp_path) not in str(info.value)
    with pytest.raises(StoreError, match="written by a newer version of this app") as info:
        save(AnalysisStore(path), {"n": 2})
    assert str(tmp_path) not in str(info.value)


def test_damaged_row_is_reported(tmp_path):
    path = tmp_path / "a.sqlite3"
    store = AnalysisStore(path)
    analysis_id = save(store, {"n": 1})
    conn = sqlite3.connect(path)
    conn.execute("UPDATE analyses SET document = ? WHERE id = ?", (b"garbage", analysis_id))
    conn.commit()
    conn.close()
    with pytest.raises(StoreError) as info:
        store.load(analysis_id)
    assert str(info.value) == f"The saved analysis '{analysis_id}' is damaged and cannot be read."


def test_garbage_file_is_not_a_sqlite_database(tmp_path):
    path = tmp_path / "a.sqlite3"
    garbage = b"this is not a database\n" * 200
    path.write_bytes(garbage)
    expected = "The analysis store's file is not a SQLite database, so it cannot hold saved analyses."
    for operation in (lambda s: save(s, {"n": 1}), lambda s: s.list(), lambda s: s.load("abcdefghijkl")):
        with pytest.raises(StoreError) as info:
            operation(AnalysisStore(path))
        assert str(info.value) == expected and info.value.path == path  # the operator still learns which file
    assert path.read_bytes() == garbage  # left untouched


def test_parent_that_is_a_file(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a regular file where the folder should be")
    store = AnalysisStore(blocker / "analyses.sqlite3")
    with pytest.raises(StoreError) as info:
        save(store, {"n": 1})
    assert str(info.value) == (
        "The analysis store cannot be created (a file stands where its folder should be), so nothing was saved."
    )
    assert info.value.path == blocker / "analyses.sqlite3"
    assert store.list() == []


def test_read_only_mode_refuses_writes_and_keeps_rows(tmp_path):
    """SQLite's own read-only open (URI mode=ro): the refusal comes from SQLite, whatever the user id."""
    path = tmp_path / "a.sqlite3"
    saved = AnalysisStore(path).save({"n": 1}, kind="explore", preview="p", models=[])
    kept = saved.id
    store = AnalysisStore(path, read_only=True)
    for write in (lambda: save(store, {"n": 2}), lambda: store.delete(kept, saved.delete_token)):
        with pytest.raises(StoreError, match=re.escape("The analysis store is read-only, so nothing was")):
            write()
    assert [s.id for s in store.list()] == [kept]
    assert store.load(kept).document == {"n": 1}
    assert AnalysisStore(path).count() == 1
    with pytest.raises(StoreError, match="is read-only, so nothing was saved."):
        save(AnalysisStore(tmp_path / "new.sqlite3", read_only=True), {"n": 1})


@pytest.fixture
def shared_folder():
    """A folder that other users can reach (pytest's tmp folders are private to their owner)."""
    folder = Path(tempfile.mkdtemp(prefix="explain-store-"))
    folder.chmod(0o755)
    if not all(p.stat().st_mode & stat.S_IXOTH for p in folder.parents):
        shutil.rmtree(folder)
        pytest.skip(f"the temp folder {folder.parent} cannot be reached by other users")
    yield folder
    folder.chmod(stat.S_IRWXU)
    for child in folder.iterdir():
        child.chmod(0o600)
    shutil.rmtree(folder)


def _as_unprivileged_user(operation):
    """Run `operation()` where file permissions apply; returns ("ok", value) or ("error", message).

    Root ignores permission bits, so as root the operation runs in a forked child
    that first drops to the `nobody` user (SQLite opens files by absolute path, so
    the store must sit in a folder everyone can reach: see `shared_folder`).
    """
    if os.geteuid() != 0:
        return _outcome(operation)
    if not hasattr(os, "fork"):
        pytest.skip("needs os.fork to drop root privileges")
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report through the pipe, never return into pytest
        try:
            os.close(read_end)
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            result = _outcome(operation)
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            result = ("setup", repr(exc))
        os.write(write_end, json.dumps(result).encode())
        os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    status, value = json.loads(b"".join(chunks))
    if status == "setup":
        pytest.skip(f"cannot drop root privileges here: {value}")
    return status, value


def _outcome(operation):
    try:
        return "ok", operation()
    except StoreError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("locked", ["file", "folder"])
def test_read_only_permissions_refuse_saves_and_keep_rows(shared_folder, locked):
    """A real read-only store file (0444) or folder (0555); as root the check runs as `nobody`."""
    path = shared_folder / "a.sqlite3"
    saved = AnalysisStore(path).save({"n": 1}, kind="explore", preview="kept", models=[])
    kept = saved.id
    assert sorted(p.name for p in shared_folder.iterdir()) == ["a.sqlite3"]  # WAL folded back in on close
    if locked == "file":  # only the file: anyone may create the -wal/-shm files next to it
        path.chmod(0o444)
        shared_folder.chmod(0o777)
    else:  # only the folder: the file itself is writable by anyone
        path.chmod(0o666)
        shared_folder.chmod(0o555)
    store = AnalysisStore(path)
    try:
        assert _as_unprivileged_user(lambda: save(store, {"n": 2})) == (
            "error", "The analysis store is read-only, so nothing was saved."
        )
        assert _as_unprivileged_user(lambda: store.delete(kept, saved.delete_token)) == (
            "error", "The analysis store is read-only, so nothing was deleted."
        )
        assert _as_unprivileged_user(lambda: [s.preview for s in store.list()]) == ("ok", ["kept"])
        assert _as_unprivileged_user(lambda: store.load(kept).document) == ("ok", {"n": 1})
    finally:
        shared_folder.chmod(0o755)
        path.chmod(0o644)
    assert [s.id for s in AnalysisStore(path).list()] == [kept]


def test_size_limit_reports_full_and_keeps_rows(tmp_path):
    """A store capped with max_bytes fails like a full disk (SQLITE_FULL) without losing saved rows."""
    path = tmp_path / "a.sqlite3"
    store = AnalysisStore(path, max_bytes=64 * 1024)
    kept = save(store, {"n": 1})
    noise = np.random.default_rng(0).bytes(200_000).hex()  # incompressible
    with pytest.raises(StoreError) as info:
        save(store, {"noise": noise})
    assert str(info.value) == (
        "The analysis store is full (no space left on its disk or its size limit of 65536 bytes), "
        "so nothing was saved."
    )
    assert [s.id for s in store.list()] == [kept]
    assert AnalysisStore(path).load(kept).document == {"n": 1}
    save(store, {"n": 2})  # small saves still fit


def test_default_store_path(tmp_path, monkeypatch):
    monkeypatch.delenv("EXPLAIN_STORE_PATH", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_store_path() == tmp_path / "data" / "analyses.sqlite3"
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(tmp_path / "elsewhere" / "s.sqlite3"))
    assert default_store_path() == tmp_path / "elsewhere" / "s.sqlite3"
    analysis_id = save(AnalysisStore(default_store_path()), {"n": 1})
    assert (tmp_path / "elsewhere" / "s.sqlite3").is_file()
    assert AnalysisStore(default_store_path()).load(analysis_id).document == {"n": 1}


@pytest.mark.parametrize("n_bytes, shown", [
    (65536, "65536 bytes"), (int(1.5 * 2**20), "1.5 MB"), (int(25.6 * 2**20), "25.6 MB"),
    (2050 * 2**20, "2,050 MB"), (256 * 2**20, "256 MB"), (2**40, "1,048,576 MB"),
])
def test_sizes_read_as_numbers_people_write(n_bytes, shown):
    """Never "2.05e+03 MB": whole megabytes with thousands separators from 100 MB on."""
    from explain.store import format_size

    assert format_size(n_bytes) == shown


def test_exists_answers_without_reading_the_document(tmp_path):
    path = tmp_path / "a.sqlite3"
    assert not AnalysisStore(path).exists("abcdefghijkl") and not path.exists()  # nothing created to answer
    kept = save(AnalysisStore(path), {"n": 1})
    assert AnalysisStore(path).exists(kept) and AnalysisStore(path).exists(kept.upper())
    AnalysisStore(path).remove(kept)
    assert not AnalysisStore(path).exists(kept)
    with pytest.raises(StoreError, match="is not a saved-analysis id"):
        AnalysisStore(path).exists("../etc")
