"""The script loader refuses a bad definition and names the question; the default script is valid."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from survey.script import ScriptError, build_script, load_script

MINI = json.loads((Path(__file__).parent / "scenarios" / "mini_script.json").read_text(encoding="utf-8"))


def broken(change) -> dict:
    data = copy.deepcopy(MINI)
    change(data)
    return data


def q(data: dict, name: str) -> dict:
    for section in data["sections"]:
        for question in section["questions"]:
            if question["name"] == name:
                return question
            for child in question.get("questions", []):
                if child["name"] == name:
                    return child
    raise KeyError(name)


def errors_of(data: dict) -> list[str]:
    with pytest.raises(ScriptError) as caught:
        build_script(data)
    return caught.value.errors


def test_default_script_has_every_part_of_the_visit():
    script = load_script()
    assert script.spec_version == 1 and script.version
    parts = [s.part for s in script.sections]
    for part in ("五问", "四讲", "三看", "一化解"):
        assert part in parts
    names = {q.name for q in script.questions()}
    assert {"members", "satisfaction", "talk_party", "housing_safe", "water_safe", "problems"} <= names
    assert script.question("dropout").relevant.source == "school_children > 0"
    assert [c.name for c in script.question("problems").questions] == [
        "category",
        "description",
        "resolved_on_site",
        "resolution",
    ]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda d: q(d, "members").update(type="number"), "question 'members': unknown type 'number'"),
        (lambda d: q(d, "workers").update(name="members"), "question 'members': duplicate name"),
        (
            lambda d: q(d, "dropout").update(relevant="children > 0"),
            "question 'dropout': relevant: the condition names an unknown or later field 'children'",
        ),
        (
            lambda d: q(d, "members").update(relevant="kids > 0"),
            "question 'members': relevant: the condition names an unknown or later field 'kids'",
        ),
        (
            lambda d: q(d, "dropout").update(relevant="kids >"),
            "question 'dropout': relevant: incomplete condition",
        ),
        (lambda d: q(d, "grade").pop("choices"), "question 'grade': the choice list is missing"),
        (
            lambda d: q(d, "members").update(min=30, max=20),
            "question 'members': the bounds cannot hold: min 30 is greater than max 20",
        ),
        (
            lambda d: q(d, "workers").update(max="note"),
            "question 'workers': bound 'note' must name an earlier integer or decimal question",
        ),
        (
            lambda d: q(d, "note").update(max_length=0),
            "question 'note': max_length must be a positive integer",
        ),
        (
            lambda d: q(d, "grade").update(relevant="house_safe == 'maybe'"),
            "question 'grade': relevant: 'house_safe' is yes/no",
        ),
        (lambda d: q(d, "members").pop("label"), "question 'members': a label with a zh_CN text is required"),
        (lambda d: d.update(spec_version=9), "spec_version: 9 is not supported"),
        (
            lambda d: q(d, "support")["choices"].append({"value": "低保"}),
            "question 'support': choice '低保' is listed twice",
        ),
        (lambda d: q(d, "problems").update(questions=[]), "question 'problems': a repeat group needs"),
    ],
    ids=[
        "unknown-type",
        "duplicate",
        "unknown-field",
        "later-field",
        "bad-syntax",
        "no-choices",
        "bounds",
        "bound-ref",
        "max-length",
        "literal-type",
        "no-label",
        "spec-version",
        "duplicate-choice",
        "empty-group",
    ],
)
def test_bad_definition_is_refused_naming_the_question(change, expected):
    errors = errors_of(broken(change))
    assert any(e.startswith(expected) for e in errors), errors


def test_every_error_is_reported_at_once():
    def two_faults(d):
        q(d, "members").update(type="nope")
        q(d, "grade").pop("choices")

    errors = errors_of(broken(two_faults))
    assert any(e.startswith("question 'members': unknown type") for e in errors)
    assert any(e.startswith("question 'grade': the choice list is missing") for e in errors)


def test_corrupt_file_refuses_to_load(tmp_path):
    path = tmp_path / "county.json"
    path.write_text('{"spec_version": 1, "id": "x", ', encoding="utf-8")
    with pytest.raises(ScriptError, match="not valid JSON"):
        load_script(path)
    with pytest.raises(ScriptError, match="cannot read"):
        load_script(tmp_path / "missing.json")


def test_a_county_script_file_loads(tmp_path):
    path = tmp_path / "county.json"
    path.write_text(json.dumps(MINI, ensure_ascii=False), encoding="utf-8")
    assert load_script(path).id == "mini"
