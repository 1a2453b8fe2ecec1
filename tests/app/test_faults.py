"""Faults the dashboard must survive with one clear sentence and a live page (AppTest, real models, real SQLite).

Each test first shows the fault really happened (the error names it, or the store refused the write) and
then that the page is still usable: no traceback (`at.exception`), the text area and the analysis stay,
and a good model or store works again in the same session.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from explain import AnalysisRequest, analyze
from explain.document import Document, document_from_json
from explain.errors import SchemaError
from explain.store import AnalysisStore, StoreError
from tests.app.shown import plain

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 120
N_STEPS = "4"  # keeps integrated gradients cheap on the tiny models


@pytest.fixture(autouse=True)
def store_path(tmp_path, monkeypatch) -> Path:
    """Every test saves into its own store (never ./data)."""
    path = tmp_path / "store" / "analyses.sqlite3"
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(path))
    return path


def run_app(params: dict[str, str], page: str = "explore") -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    if page != "explore":
        at.switch_page(f"views/{page}.py")
    return at.run()


def html_text(at: AppTest) -> str:
    return "\n".join(str(h.proto.body) for h in at.get("html"))


def n_charts(at: AppTest) -> int:
    return len(at.get("plotly_chart"))


MIN_CHARTS = 1  # an analysis is drawn: attention (the exact set is the page's business)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [plain(e.value) for e in at.error]


def one_error(at: AppTest) -> str:
    """The page shows exactly one st.error, one plain sentence (no traceback), and no exception."""
    assert not at.exception, [e.message for e in at.exception]
    errors = [plain(e.value) for e in at.error]
    assert len(errors) == 1, errors
    message = errors[0].strip()
    assert message.endswith("."), message
    assert "\n" not in message and "Traceback" not in message, message
    return message


def type_model(at: AppTest, spec: str) -> AppTest:
    """Type a new entry into the model box (accept_new_options): the browser sends the typed string."""
    box = at.selectbox(key="w_model")
    if spec not in box.options:
        box.options.append(spec)  # AppTest only serialises values it finds among the options
    return box.set_value(spec).run()


def copy_model(tiny_dirs, head: str, folder: Path) -> Path:
    return Path(shutil.copytree(tiny_dirs[head], folder))


def make_read_only(path: Path) -> None:
    """Make a SQLite file read-only for SQLite itself, whoever runs the test (root ignores file modes).

    Byte 18 of the header is the file-format write version; SQLite opens a file whose write version is
    above 2 (and read version at most 2) read-only: reads work, every write fails with SQLITE_READONLY.
    """
    header = bytearray(path.read_bytes())
    assert header[:16] == b"SQLite format 3\x00" and header[19] <= 2
    header[18] = 3
    path.write_bytes(bytes(header))


# -- models ----------------------------------------------------------------------------------------------------


def test_a_loaded_model_keeps_answering_after_its_folder_is_deleted(tiny_dirs, tmp_path):
    folder = copy_model(tiny_dirs, "classification", tmp_path / "loaded")
    at = run_app({"m": str(folder), "t": "the film was good", "n": N_STEPS})
    assert_clean(at)
    assert n_charts(at) >= MIN_CHARTS

    shutil.rmtree(folder)
    at.text_area(key="w_text").set_value("the food was bad and slow").run()
    assert_clean(at)  # the server's cached model answers; nothing reads the folder again
    assert "slow" in html_text(at) and n_charts(at) >= MIN_CHARTS

    # another session (a new AppTest) naming the same deleted folder is served from the shared cache too
    other_session = run_app({"m": str(folder), "t": "the service was great", "n": N_STEPS})
    assert_clean(other_session)
    assert "service" in html_text(other_session)


def test_a_deleted_folder_that_was_never_loaded_is_one_clear_error(tiny_dirs, tmp_path):
    folder = copy_model(tiny_dirs, "encoder", tmp_path / "never-loaded")
    shutil.rmtree(folder)
    at = run_app({"m": str(folder), "t": "the film was good", "n": N_STEPS})
    message = one_error(at)
    assert message == f"The model folder '{folder}' does not exist."
    assert at.text_area(key="w_text").value == "the film was good"
    assert n_charts(at) == 0


def _unresolvable(path: str) -> bool:
    try:
        Path(path).resolve()
    except OSError:
        return True
    return False


def test_a_folder_with_a_link_it_cannot_follow_is_one_error(tiny_dirs, tmp_path):
    """A link to another process's working folder: unreadable here (PermissionError), or outside the folder."""
    folder = copy_model(tiny_dirs, "encoder", tmp_path / "linked")
    (folder / "elsewhere").symlink_to("/proc/1/cwd")
    at = run_app({"m": str(folder), "t": "the film was good", "n": N_STEPS})
    message = one_error(at)
    assert str(folder) in message
    assert at.text_area(key="w_text").value == "the film was good"


def test_a_home_folder_of_an_unknown_user_is_one_error():
    at = run_app({"m": "~no-such-user-here/model", "t": "the film was good", "n": N_STEPS})
    message = one_error(at)
    assert "~no-such-user-here/model" in message
    assert at.text_area(key="w_text").value == "the film was good"


def _garbage_config(folder: Path) -> None:
    (folder / "config.json").write_bytes(b"\x00\xff not json {{{")


def _truncated_weights(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])


def _garbage_tokenizer_config(folder: Path) -> None:
    (folder / "tokenizer_config.json").write_text("{not json")


def _wrongly_typed_config(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    config["hidden_size"] = "thirty-two"
    (folder / "config.json").write_text(json.dumps(config))


BROKEN_FOLDERS = [
    pytest.param(_garbage_config, "config.json", id="garbage-config"),
    pytest.param(_truncated_weights, "damaged", id="truncated-safetensors"),
    pytest.param(_garbage_tokenizer_config, "tokenizer_config.json", id="garbage-tokenizer-config"),
    pytest.param(_wrongly_typed_config, "config.json", id="wrongly-typed-config"),
]


@pytest.mark.parametrize("damage,mentions", BROKEN_FOLDERS)
def test_a_broken_model_folder_is_one_error_and_a_good_folder_works_again(tiny_dirs, tmp_path, damage, mentions):
    good = copy_model(tiny_dirs, "encoder", tmp_path / "good")
    bad = copy_model(tiny_dirs, "encoder", tmp_path / "bad")
    damage(bad)

    at = run_app({"m": str(good), "t": "the film was good", "n": N_STEPS})
    assert_clean(at)
    assert n_charts(at) >= MIN_CHARTS

    type_model(at, str(bad))
    message = one_error(at)
    assert str(bad) in message and mentions in message
    assert at.text_area(key="w_text").value == "the film was good"  # the page is alive
    assert at.session_state["w_model"] == str(bad)

    type_model(at, str(good))
    assert_clean(at)
    assert n_charts(at) >= MIN_CHARTS and "film" in html_text(at)


# -- the store -------------------------------------------------------------------------------------------------


def open_explore(tiny_dirs, text: str) -> AppTest:
    at = run_app({"m": tiny_dirs["encoder"], "t": text, "n": N_STEPS})
    assert_clean(at)
    return at


def assert_analysis_still_shown(at: AppTest, html_before: str, charts_before: int, text: str) -> None:
    assert html_text(at) == html_before
    assert n_charts(at) == charts_before
    assert at.text_area(key="w_text").value == text
    assert "analysis" not in at.query_params  # no link to something that was not saved
    assert not at.success  # and no "Saved" message


def test_saving_where_the_store_cannot_be_created_is_one_error(tiny_dirs, tmp_path, monkeypatch):
    blocker = tmp_path / "blocker"
    blocker.write_text("a regular file where the store's folder should be")
    path = blocker / "analyses.sqlite3"
    monkeypatch.setenv("EXPLAIN_STORE_PATH", str(path))

    at = open_explore(tiny_dirs, "the film was good")
    before, charts = html_text(at), n_charts(at)
    at.button(key="share_save").click().run()
    message = one_error(at)
    # visitors learn what went wrong, not where the server keeps its files
    assert message == "The analysis store cannot be created (a file stands where its folder should be), " \
                      "so nothing was saved."
    assert_analysis_still_shown(at, before, charts, "the film was good")
    assert blocker.read_text().startswith("a regular file")

    saved_page = run_app({}, page="saved")  # the Saved page lists nothing rather than failing
    assert not saved_page.exception and not saved_page.error
    assert any("Nothing saved yet" in plain(i.value) for i in saved_page.info)


def test_saving_into_a_read_only_store_keeps_the_saved_row(tiny_dirs, store_path):
    first = open_explore(tiny_dirs, "the film was good")
    first.button(key="share_save").click().run()
    assert_clean(first)
    kept = first.query_params["analysis"]
    assert [s.id for s in AnalysisStore(store_path).list()] == [kept]

    make_read_only(store_path)
    at = open_explore(tiny_dirs, "the food was bad")
    before, charts = html_text(at), n_charts(at)
    assert "food" in before
    at.button(key="share_save").click().run()
    message = one_error(at)
    assert message == "The analysis store is read-only, so nothing was saved."
    assert_analysis_still_shown(at, before, charts, "the food was bad")
    assert [s.id for s in AnalysisStore(store_path).list()] == [kept]

    reopened = run_app({"analysis": kept})  # reading a read-only store still works
    assert_clean(reopened)
    assert "film" in html_text(reopened) and any("saved analysis" in plain(i.value) for i in reopened.info)

    saved_page = first.switch_page("views/saved.py").run()  # the saver's own session may delete
    assert not saved_page.exception
    saved_page.button(key=f"del_{kept}").click().run()
    assert one_error(saved_page) == "The analysis store is read-only, so nothing was deleted."
    assert [s.id for s in AnalysisStore(store_path).list()] == [kept]
    assert saved_page.button(key=f"del_{kept}")  # still listed


def test_the_share_link_disappears_when_the_analysis_changes(tiny_dirs):
    at = open_explore(tiny_dirs, "the film was good")
    at.button(key="share_save").click().run()
    assert_clean(at)
    saved = at.query_params["analysis"]
    assert any(saved in plain(c.value) for c in at.get("code"))
    at.text_area(key="w_text").set_value("the food was bad").run()
    assert_clean(at)
    assert "analysis" not in at.query_params
    assert not any(saved in plain(c.value) for c in at.get("code")), "a link to the earlier analysis is still offered"


def test_saving_into_a_full_store_keeps_the_saved_row(tiny_dirs, store_path, monkeypatch):
    """A store at its size limit (SQLite's max_page_count: SQLITE_FULL, as on a full disk)."""
    from dashboard import cached

    limit = 16 * 1024
    capped = AnalysisStore(store_path, max_bytes=limit)
    rng = np.random.default_rng(0)
    kept: list[str] = []
    while True:  # fill it with incompressible rows until SQLite refuses one
        try:
            kept.append(capped.save({"filler": rng.bytes(300).hex()}, kind="explore", preview="filler",
                                    models=["x"]).id)
        except StoreError as exc:
            assert "is full" in str(exc)
            break
    monkeypatch.setattr(cached, "get_store", lambda: capped)

    at = open_explore(tiny_dirs, "the film was good")
    before, charts = html_text(at), n_charts(at)
    at.button(key="share_save").click().run()
    message = one_error(at)
    assert message == ("The analysis store is full (no space left on its disk or its size limit "
                       f"of {limit} bytes), so nothing was saved.")
    assert_analysis_still_shown(at, before, charts, "the film was good")
    assert sorted(s.id for s in AnalysisStore(store_path).list()) == sorted(kept)


# -- uploads on the Saved page ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tiny_dirs, tiny_models) -> dict:
    """A real document as the Download JSON button writes it (tiny encoder, 4 steps)."""
    request = AnalysisRequest("the film was good", model=tiny_dirs["encoder"], n_steps=4)
    return Document(kind="explore", analyses=[analyze(request, tiny_models["encoder"])]).to_data()


def _array(values, dtype=np.float32) -> dict:
    arr = np.ascontiguousarray(np.asarray(values, dtype=dtype))
    return {"__ndarray__": base64.b64encode(arr.tobytes()).decode(), "dtype": arr.dtype.str, "shape": list(arr.shape)}


def _edit(path: tuple, value):
    def edit(document: dict) -> bytes:
        document = copy.deepcopy(document)
        target = document
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
        return json.dumps(document).encode()
    return edit


def _remove(path: tuple):
    def edit(document: dict) -> bytes:
        document = copy.deepcopy(document)
        target = document
        for step in path[:-1]:
            target = target[step]
        del target[path[-1]]
        return json.dumps(document).encode()
    return edit


REFUSED_UPLOADS = [
    pytest.param(lambda d: b"\x89PNG\r\n\x1a\n\x00\x00 not json", "The file is not valid JSON.", id="binary"),
    pytest.param(lambda d: json.dumps(d).encode()[:500], "The file is not valid JSON.", id="truncated"),
    pytest.param(lambda d: b'{"name": "a package.json", "version": "1.0.0"}',
                 "This JSON is not an analysis exported by this dashboard.", id="foreign-json"),
    pytest.param(lambda d: b"[1, 2, 3]", "This JSON is not an analysis exported by this dashboard.", id="json-list"),
    pytest.param(_edit(("version",), 99), "This export has format version 99", id="future-version"),
    pytest.param(_edit(("kind",), "compare"), "does not hold the analyses its kind needs", id="kind-count"),
    pytest.param(_remove(("analyses", 0, "attention")), "This analysis JSON is damaged or incomplete",
                 id="missing-attention"),
    pytest.param(_edit(("analyses", 0, "attention", "weights", "__ndarray__"), "!!not base64!!"),
                 "This analysis JSON is damaged or incomplete", id="bad-base64"),
    pytest.param(_edit(("analyses", 0, "attention", "weights", "dtype"), "|O"),
                 "This analysis JSON is damaged or incomplete", id="object-dtype"),
]


def upload(data: bytes, name: str = "upload.json") -> AppTest:
    at = run_app({}, page="saved")
    assert not at.exception
    at.file_uploader(key="upload").set_value((name, data, "application/json")).run()
    return at


def test_a_good_upload_is_saved_and_reopens(exported, store_path):
    """The control for the refusals below: the same path with an untouched export."""
    at = upload(json.dumps(exported).encode(), "good.json")
    assert_clean(at)
    assert any("good.json holds a single-model analysis" in plain(s.value) for s in at.success)
    [saved] = AnalysisStore(store_path).list()
    reopened = run_app({"analysis": saved.id})
    assert_clean(reopened)
    assert "film" in html_text(reopened)


@pytest.mark.parametrize("make,expected", REFUSED_UPLOADS)
def test_a_corrupt_or_foreign_upload_is_one_error_and_nothing_is_saved(exported, store_path, make, expected):
    data = make(exported)
    with pytest.raises(SchemaError):  # the library refuses it ...
        document_from_json(data)
    at = upload(data, "suspect.json")
    message = one_error(at)  # ... and the page says so in one sentence, naming the file
    assert message.startswith("suspect.json: ") and expected in message, message
    assert not at.success
    assert AnalysisStore(store_path).count() == 0
    assert any("Nothing saved yet" in plain(i.value) for i in at.info)  # the page is alive
    assert at.file_uploader(key="upload")


INCONSISTENT_UPLOADS = [
    pytest.param(_edit(("analyses", 0, "timings"), [1.0]), id="timings-list"),
    pytest.param(_edit(("analyses", 0, "request", "text"), 5), id="text-not-a-string"),
    pytest.param(_edit(("analyses", 0, "attention", "weights"), _array([[1.0]])), id="attention-2d"),
    pytest.param(_edit(("analyses", 0, "word_scores"), _array([0.5])), id="word-scores-short"),
    pytest.param(_edit(("analyses", 0, "tokens", "tokens"), ["[CLS]"]), id="tokens-short"),
    pytest.param(_edit(("analyses", 0, "attention", "weights", "shape"), [-1]), id="negative-shape"),
]


@pytest.mark.parametrize("make", INCONSISTENT_UPLOADS)
def test_an_inconsistent_upload_is_refused_before_it_is_saved(exported, store_path, make):
    """Valid JSON whose parts do not fit together would crash the page that opens it, so it is refused."""
    data = make(exported)
    with pytest.raises(SchemaError):
        document_from_json(data)
    at = upload(data, "tampered.json")
    message = one_error(at)
    assert message.startswith("tampered.json: "), message
    assert AnalysisStore(store_path).count() == 0
    assert not at.success
