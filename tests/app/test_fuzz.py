"""Fuzz the pages' URL parameters and typed text: whatever a link or a user sends, never a traceback.

Hypothesis draws query strings over every key dashboard/state.py knows (plus unknown keys, repeated keys and
odd values) and texts with odd Unicode, HTML, control characters, empty and very long strings. The Explore and
Compare pages run under AppTest on the tiny random models (forced unless the model key is the one fuzzed) with
few integration steps, so each example takes well under a second.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from streamlit.testing.v1 import AppTest

from dashboard import state as url_keys

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
TIMEOUT = 60
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "25"))  # e.g. FUZZ_EXAMPLES=500 for a longer hunt
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

KNOWN_KEYS = {getattr(url_keys, name) for name in dir(url_keys) if name.startswith("KEY_")}
assert KNOWN_KEYS >= {"t", "m", "tg", "lb", "ls", "pr", "ref", "n", "b", "mx", "v", "l", "h", "sp", "tok", "st",
                      "m2", "t2", "l2", "h2", "cm", "analysis"}

ODD_TEXTS = [
    "", " ", "\t\n\r", "<script>alert(1)</script>", "<img src=x onerror=alert(1)> good", "</textarea><b>x</b>",
    "{{7*7}} ${7*7} %s %n", "'; DROP TABLE analyses; --", "\x00", "bell\x07 escape\x1b[31m red", "a\u202eb\u202c",
    "\u200b\u200c\u200d\ufeff", "e\u0301" * 200, "𝕳𝖊𝖑𝖑𝖔 🤖 🏳️‍🌈 👨‍👩‍👧", "ﷺ" * 50, "مرحبا بالعالم", "漢字かなカナ",
    "[MASK]", "[CLS] [SEP] [PAD] [UNK]", "the film was [MASK] .", "good film", "the food was great",
    "%00%ff%", "../../etc/passwd", "a" * 5000, "a" * 5001, "word " * 1500, "\U0010ffff" * 10, "\ud7ff\ue000",
    "ⅷ ² ³ ١٢٣", "　", "\u0085\u2028\u2029",
]
NUMBERS = [
    "", " ", "0", "1", "2", "3", "-1", "-0", "+3", " 3", "3 ", "00004", "4.0", "1e3", "0x10", "nan", "inf",
    "²", "٣", "Ⅻ", "9" * 40, "-" * 3, "99", "100", "511", "512", "513", "1000", "1001",
]


def odd_text(max_size: int = 60) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(ODD_TEXTS),
        st.text(max_size=max_size),
        st.text(st.characters(max_codepoint=0x7F), max_size=max_size),  # ASCII incl. control characters
        st.builds(lambda c, n: c * n, st.characters(), st.integers(1, 6000)),  # long runs of one character
        st.lists(st.sampled_from(["the", "film", "was", "good", "bad", "[MASK]", ",", ".", "<", ">", "é", "🤖"]),
                 max_size=30).map(" ".join),
    )


def number(low: int, high: int) -> st.SearchStrategy[str]:
    return st.one_of(st.integers(low, high).map(str), st.sampled_from(NUMBERS), st.text(max_size=6))


def choice(values) -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(list(values)), st.text(max_size=12), st.sampled_from(ODD_TEXTS[:12]))


TINY = ("encoder", "classification", "masked_lm", "encoder_alt")


def model_specs() -> st.SearchStrategy[str]:
    """Tiny models ("@name", filled in per test) and specs that cannot load.

    Never the 90 MB embedded model (examples on it would take seconds each), nor "~" or "/": the folder check
    walks everything below a folder before it looks for config.json (20 s for "~" here). "~unknown-user" is
    left to test_faults.py while it raises (a bug this fuzz found).
    """
    return st.sampled_from([
        *(f"@{name}" for name in TINY), "@encoder/", "@encoder/config.json", "/no/such/folder", "", " ", "..",
        "../../etc", "no-such-org/no-such-model", "a" * 200, "<script>", "\x00", "http://127.0.0.1:1/x",
        "bert-base-uncased",
    ])


def repeated(value: st.SearchStrategy[str]) -> st.SearchStrategy[str | list[str]]:
    """Mostly one value; sometimes the key repeated (?t=a&t=b), as a hand-edited link can have it."""
    return st.one_of(value, value, value, st.lists(value, min_size=2, max_size=3))


def url_params(page: str) -> st.SearchStrategy[dict]:
    values = {
        "t": odd_text(), "m": model_specs(), "tg": choice(("", "class", "masked_token", "zero_shot",
                                                                    "similarity")),
        "lb": st.one_of(st.sampled_from(["positive", "negative", "neutral", "good", "[MASK]", "nope"]), odd_text()),
        "ls": st.one_of(st.just("positive, negative"), st.just(",,,"), st.just(", " * 150), odd_text()),
        "pr": st.one_of(st.just("This is good. | This is bad."), st.just("|||"), odd_text()),
        "ref": odd_text(), "n": number(-3, 12), "b": choice(("pad", "mask", "zero")),
        "mx": number(0, 600), "v": choice(("word", "subword")), "l": number(-2, 120), "h": number(-2, 120),
        "sp": choice(("0", "1")), "tok": number(-2, 600), "st": choice(("entropy", "max", "cls", "sep", "self")),
        "analysis": st.one_of(st.sampled_from(["abcdefghijkl", "ABCDEFGHIJKL", "zzzzzzzzzzzz", "2222222222222"]),
                              st.text(max_size=14)),
    }
    if page == "compare":
        values |= {"m2": model_specs(), "t2": odd_text(), "l2": number(-2, 120), "h2": number(-2, 120),
                   "cm": choice(("models", "texts"))}
    else:  # compare-only keys on the Explore page are ignored, not errors
        values |= {"m2": st.text(max_size=8), "cm": choice(("models", "texts"))}
    known = st.fixed_dictionaries({}, optional={key: repeated(v) for key, v in values.items()})
    unknown = st.dictionaries(st.text(min_size=1, max_size=12).filter(lambda k: k not in KNOWN_KEYS),
                              st.text(max_size=20), max_size=2)
    return st.builds(lambda a, b: {**b, **a}, known, unknown)


def forced(params: dict, tiny_dirs: dict[str, str], page: str) -> dict:
    """Fill in the tiny models' folders, and keep each example cheap where those keys are not drawn."""
    def fill(value):
        if isinstance(value, list):
            return [fill(v) for v in value]
        for name in TINY:
            if value.startswith(f"@{name}"):
                return tiny_dirs[name] + value[len(name) + 1:]
        return value

    params = {key: fill(value) for key, value in params.items()}
    params.setdefault("m", tiny_dirs["encoder"])
    params.setdefault("n", "4")
    if page == "compare":
        params.setdefault("m2", tiny_dirs["encoder_alt"])
    return params


def assert_no_traceback(at: AppTest, what: str) -> None:
    assert not at.exception, f"{what}: {[e.message for e in at.exception]}"
    assert at.title, f"{what}: the page drew nothing"
    # what the page ended up showing (see --hypothesis-show-statistics)
    event("analysis drawn" if at.get("plotly_chart") else "error shown" if at.error else "no analysis, no error")
    if at.warning:
        event("link notices shown")


@pytest.fixture(scope="module", autouse=True)
def private_store(tmp_path_factory):
    """Saved-analysis lookups (the `analysis` key) go to an empty store of this module's own."""
    path = tmp_path_factory.mktemp("fuzz-store") / "analyses.sqlite3"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EXPLAIN_STORE_PATH", str(path))
        yield path
    assert not path.exists()  # nothing fuzzed ever wrote to it


def open_page(params: dict, page: str) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for key, value in params.items():
        at.query_params[key] = value
    if page != "explore":
        at.switch_page(f"views/{page}.py")
    return at.run()


def test_the_tiny_models_are_there(tiny_dirs):
    assert all(os.path.isdir(p) for p in tiny_dirs.values())


def check_page(page: str, tiny_dirs: dict[str, str], params: dict, typed: str | None) -> None:
    params = forced(params, tiny_dirs, page)
    at = open_page(params, page)
    assert_no_traceback(at, f"opening {page} with {params!r}")
    if typed is not None and at.text_area(key="w_text"):
        at.text_area(key="w_text").set_value(typed).run()
        assert_no_traceback(at, f"typing {typed!r} after opening {page} with {params!r}")


@SETTINGS
@given(params=url_params("explore"), typed=st.none() | odd_text(200))
def test_explore_survives_any_link_and_any_typed_text(tiny_dirs, params, typed):
    check_page("explore", tiny_dirs, params, typed)


@settings(SETTINGS, max_examples=max(1, EXAMPLES * 3 // 5))
@given(params=url_params("compare"), typed=st.none() | odd_text(120))
def test_compare_survives_any_link_and_any_typed_text(tiny_dirs, params, typed):
    check_page("compare", tiny_dirs, params, typed)


@pytest.mark.parametrize("raw", ["²", "--3", "1²"])
def test_a_malformed_number_gets_the_plain_notice(raw):
    state, notices = url_keys.from_query({"n": raw})
    assert state.steps == url_keys.DEFAULTS.steps
    assert notices == ["The link's 'n' value was ignored: expected a whole number from 1 to 1000."]
