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


# --- roles: which question feeds which derived fact (issue 17) ---

DEFAULT = json.loads(
    (Path(__file__).parents[1] / "survey" / "default_script.json").read_text(encoding="utf-8")
)


def default_with(change) -> dict:
    data = copy.deepcopy(DEFAULT)
    change(data)
    return data


def test_the_built_in_script_tags_every_role_the_facts_read():
    from survey.facts import BUILTIN_ROLES, ROLES
    from survey.script import role_warnings

    script = load_script()
    assert not script.roles.fallback
    assert dict(script.roles.fields) == {role: BUILTIN_ROLES[role] for role in script.roles.fields}
    assert set(script.roles.fields) == set(ROLES)
    assert role_warnings(script) == []


def test_a_role_declared_twice_where_one_is_allowed_names_both_questions():
    errors = errors_of(default_with(lambda d: q(d, "labour_members").update(role="members")))
    assert errors == [
        "question 'labour_members': role 'members' is already on question 'members' (only one allowed)"
    ]
    # income sources add up: several questions may carry it
    build_script(default_with(lambda d: q(d, "expense_education").update(role="income")))


def test_a_role_on_a_question_of_the_wrong_type_is_refused_with_the_question_named():
    errors = errors_of(default_with(lambda d: q(d, "opinion").update(role="income")))
    assert errors == ["question 'opinion': role 'income' needs a integer or decimal question, not text"]
    errors = errors_of(default_with(lambda d: q(d, "main_cause").update(role="water_safe")))
    assert "question 'main_cause': role 'water_safe' needs a yes_no question, not one_of" in errors


def test_an_unknown_role_a_role_in_a_repeat_and_satisfaction_with_other_choices_are_refused():
    errors = errors_of(default_with(lambda d: q(d, "opinion").update(role="mood")))
    assert errors[0].startswith("question 'opinion': unknown role 'mood' (known: members, income, ")
    errors = errors_of(default_with(lambda d: q(d, "resolved_on_site").update(role="water_safe")))
    assert errors == [
        "question 'resolved_on_site': role 'water_safe': a question inside the repeat group 'problems' "
        "cannot feed a fact"
    ]

    def five_point(data: dict) -> None:
        q(data, "satisfaction")["choices"] = ["很满意", "满意", "一般", "不满意", "很不满意"]

    errors = errors_of(default_with(five_point))
    assert errors == [
        "question 'satisfaction': role 'satisfaction' needs exactly the choices 不满意, 基本满意, 满意 "
        "(the reports count them)"
    ]


def _untagged(data: dict) -> None:
    for section in data["sections"]:
        for question in section["questions"]:
            question.pop("role", None)


def test_a_script_without_any_role_falls_back_to_the_built_in_names_and_says_so():
    from survey.script import role_warnings

    script = build_script(default_with(_untagged))
    assert script.roles.fallback
    assert script.roles.fields == load_script().roles.fields
    notes = role_warnings(script)
    assert len(notes) == 1 and "没有题目标注 role" in notes[0] and "income=income_wages+" in notes[0]


def test_once_one_role_is_tagged_the_built_in_names_are_not_read_and_the_missing_facts_are_named():
    from survey.script import role_warnings

    def only_awareness(data: dict) -> None:
        _untagged(data)
        q(data, "policy_known")["role"] = "policy_known"

    script = build_script(default_with(only_awareness))
    assert dict(script.roles.fields) == {"policy_known": ("policy_known",)}
    notes = role_warnings(script)
    expected = (
        "未采集 / not collected: 人均纯收入 (per_capita_net) — 缺少角色 / missing role: income, "
        "expense_production, members"
    )
    assert expected in notes
    assert not any("政策知晓率" in n for n in notes)
    assert not any("income_guaranteed" in n for n in notes)  # no income at all: nothing to leave out

    def income_without_guaranteed(data: dict) -> None:
        q(data, "income_guaranteed").pop("role")

    notes = role_warnings(build_script(default_with(income_without_guaranteed)))
    assert len(notes) == 1 and notes[0].startswith("没有 role income_guaranteed 的题")


def test_a_support_question_without_the_safety_net_options_is_warned_of():
    from survey.script import role_warnings

    def other_options(data: dict) -> None:
        q(data, "support")["choices"] = ["dibao", "wubao", "无"]

    notes = role_warnings(build_script(default_with(other_options)))
    assert notes == [
        "question 'support': role support 没有选项 低保、特困供养(五保)，不会有户分入政策兜底 / has no option "
        "低保、特困供养(五保): no household will be grouped 政策兜底"
    ]
