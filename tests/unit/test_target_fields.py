"""Contract tests over the target fields' declarations: every field a target kind reads is declared once, and the
command line, the link and the dashboard offer exactly the declared fields under their declared names."""

from __future__ import annotations

import pytest

from dashboard.state import URL_FIELDS
from explain import InputError
from explain.cli import build_parser, request_from_args
from explain.targets import TARGET_FIELDS, TARGETS, TargetKind
from explain.targets.fields import SPAN_DISPLAYS


def test_every_kind_reads_declared_fields_and_shows_its_spans_one_declared_way():
    for kind in TARGETS.values():
        assert set(kind.reads) <= set(TARGET_FIELDS), kind.name
        assert kind.spans in SPAN_DISPLAYS
    assert TARGETS["token_class"].spans == "entities" and TARGETS["answer"].spans == "answer"


def test_a_kind_reading_an_undeclared_field_is_refused_where_it_is_declared():
    with pytest.raises(ValueError, match="unknown fields"):
        TargetKind(name="x", title="x", summary="x", heads=(), resolve=lambda *a: None, reads=("colour",))


def test_every_declared_field_has_its_flag_and_its_url_key():
    options = {a for action in build_parser()._actions for a in action.option_strings}
    keys = {f.key for f in URL_FIELDS}
    for field in TARGET_FIELDS.values():
        assert field.flag in options and field.url_key in keys, field.name


def test_the_command_line_fills_the_target_from_the_declarations():
    args = build_parser().parse_args(["x", "--target", "zero_shot", "--labels", "good, bad ,", "--prompts",
                                      "It is good.|It is bad.", "--logit"])
    spec = request_from_args(args).target
    assert spec.labels == ("good", "bad") and spec.prompts == ("It is good.", "It is bad.") and spec.logit
    assert spec.token == TARGET_FIELDS["token"].default and spec.reference == ""


@pytest.mark.parametrize("name, raw, message", [
    ("token", "-1", "must be from 0 to 511"),
    ("token", "first", "must be a whole number"),
    ("part", "middle", "must be one of start, end, span"),
])
def test_a_bad_value_is_one_sentence(name, raw, message):
    with pytest.raises(InputError, match=message) as error:
        TARGET_FIELDS[name].parse(raw)
    assert str(error.value).endswith(".") and ". " not in str(error.value)
