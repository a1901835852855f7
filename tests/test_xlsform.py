"""Scripts authored in Excel as XLSForm: zoufang's own script exported and read back unchanged, accepted by pyxform
(the reference XLSForm reader), a county's form used directly as ZOUFANG_SCRIPT in a console visit, and bad forms
refused whole with every fault named by sheet, row and column."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from pyxform.xls2xform import convert

from bot.script_files import load_script_file, load_xlsform, write_xlsform
from survey.script import load_script
from survey.xlsform import FormError, sheets_of
from tests.cli_support import clean_env, ok, query, zoufang, zoufang_process
from tests.test_console import County, answers_of, county, imported, submitted_visit, typed  # noqa: F401

SHIPPED = Path(__file__).parents[1] / "survey" / "default_script.xlsx"


def workbook(
    path: Path, survey: list[list[Any]], choices: list[list[Any]], settings: list[list[Any]]
) -> Path:
    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in (("survey", survey), ("choices", choices), ("settings", settings)):
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def test_the_built_in_script_exported_and_read_back_is_the_same_script(tmp_path: Path):
    path = tmp_path / "ours.xlsx"
    write_xlsform(load_script(), path)
    assert load_xlsform(path) == load_script()


def test_the_shipped_workbook_is_the_built_in_script_and_has_not_drifted():
    assert load_script_file(SHIPPED) == load_script()  # ZOUFANG_SCRIPT may name the .xlsx itself
    book = openpyxl.load_workbook(SHIPPED, read_only=True)
    cells = {
        ws.title: [[c if c is not None else "" for c in row] for row in ws.iter_rows(values_only=True)]
        for ws in book
    }
    assert cells == sheets_of(
        load_script()
    )  # regenerate with: zoufang script export --output survey/default_script.xlsx


def test_pyxform_converts_our_workbook_and_reads_each_relevant_as_we_do(tmp_path: Path):
    path = tmp_path / "ours.xlsx"
    write_xlsform(load_script(), path)
    result = convert(xlsform=str(path))
    assert "<h:title>五问四讲三看一化解入户走访</h:title>" in result.xform
    binds = dict(re.findall(r'<bind nodeset="[^"]*/([\w]+)"[^>]*?relevant="([^"]*)"', result.xform))
    ours = {q.name: q.relevant for q in _every_question(load_script()) if q.relevant}
    assert set(binds) == set(ours)
    for name, condition in ours.items():  # the same questions, the same values, the same operators
        xpath = binds[name].replace("&gt;", ">").replace("&lt;", "<").replace("&#39;", "'")
        for clause in condition.clauses():
            assert f"/{clause.field} " in xpath or f"/{clause.field}," in xpath, (name, xpath)
            literal = (
                {True: "'yes'", False: "'no'"}.get(clause.literal)
                if isinstance(clause.literal, bool)
                else None
            )
            assert (literal or str(clause.literal)) in xpath, (name, xpath)
    assert not [w for w in result.warnings if "max-pixels" not in w]


def _every_question(script):
    for q in script.questions():
        yield q
        yield from q.questions


# --- a county's own form ------------------------------------------------------------------------------------

COUNTY_SURVEY = [
    ["type", "name", "label::Chinese (zh)", "label::English (en)", "required", "relevant", "constraint",
     "constraint_message::Chinese (zh)", "again::Chinese (zh)"],
    ["start", "start", "", "", "", "", "", "", ""],
    ["integer", "members", "家庭人口（人）", "Members", "yes", "", ". >= 1 and . <= 20", "", ""],
    ["integer", "pupils", "在校学生人数", "Pupils", "yes", "", ". >= 0 and . <= ${members}",
     "学生人数不能超过家庭人口", ""],
    ["select_one yn", "aid", "是否享受教育资助？", "", "yes", "${pupils} > 0", "", "", ""],
    ["select_multiple help", "help", "需要的帮扶（可多选）", "", "yes", "", "", "", ""],
    ["date", "last_check", "上次体检日期", "", "", "selected(${help}, 'medical')", "", "", ""],
    ["note", "thanks", "感谢配合，下面登记问题。", "", "", "", "", "", ""],
    ["begin_repeat", "issues", "问题", "", "", "", "", "", "还有问题要登记吗？"],
    ["text", "issue", "问题描述", "", "yes", "", "string-length(.) <= 50", "", ""],
    ["end_repeat", "", "", "", "", "", "", "", ""],
]  # fmt: skip
COUNTY_CHOICES = [
    ["list_name", "name", "label::Chinese (zh)", "aliases", "exclusive"],
    ["yn", "yes", "是", "", ""],
    ["yn", "no", "否", "", ""],
    ["help", "medical", "医疗", "看病;医保", ""],
    ["help", "housing", "住房", "", ""],
    ["help", "none", "无", "", "yes"],
]
COUNTY_SETTINGS = [["form_title", "form_id", "version"], ["示范县入户走访", "shifan", 3]]


def test_a_countys_form_reads_into_the_model(tmp_path: Path):
    script = load_xlsform(workbook(tmp_path / "form.xlsx", COUNTY_SURVEY, COUNTY_CHOICES, COUNTY_SETTINGS))
    assert (script.id, script.version, script.title["zh_CN"]) == ("shifan", "3", "示范县入户走访")
    assert len(script.sections) == 1  # questions outside any group: one section of their own
    by_name = {q.name: q for q in script.questions()}
    assert [q.name for q in script.questions()] == [
        "members",
        "pupils",
        "aid",
        "help",
        "last_check",
        "thanks",
        "issues",
    ]
    assert (by_name["pupils"].min, by_name["pupils"].max) == (0, "members")
    assert by_name["pupils"].constraint_message == {"zh_CN": "学生人数不能超过家庭人口"}
    assert by_name["aid"].type == "yes_no" and by_name["aid"].relevant.source == "pupils > 0"
    help_ = by_name["help"]
    assert help_.type == "several_of" and help_.choice("medical").aliases == ("看病", "医保")
    assert help_.choice("none").exclusive
    assert by_name["last_check"].type == "date" and not by_name["last_check"].required
    assert by_name["last_check"].relevant.source == "help contains 'medical'"
    assert by_name["thanks"].type == "confirm" and not by_name["thanks"].required
    issues = by_name["issues"]
    assert issues.type == "repeat" and issues.again == {"zh_CN": "还有问题要登记吗？"}
    assert issues.child("issue").max_length == 50


def test_a_countys_form_as_zoufang_script_walks_a_console_visit(county: County):  # noqa: F811
    form = workbook(county.folder / "form.xlsx", COUNTY_SURVEY, COUNTY_CHOICES, COUNTY_SETTINGS)
    env = clean_env(county.folder, ZOUFANG_SCRIPT=str(form))
    ok(zoufang(county.folder, "script", "check", str(form), env=env))
    code = county.households[0]
    answers = ["3", "5", "2", "是", "看病、住房", "2026年3月15日", "好", "是", "屋顶漏雨", "否", "提交"]
    result = ok(
        zoufang(county.folder, "console", "--cadre", county.secretary, "--household", code,
                input=typed(answers), env=env)
    )  # fmt: skip
    assert "学生人数不能超过家庭人口" in result.stdout  # the form's own message for 5 > members
    assert "走访已提交" in result.stdout
    visit = submitted_visit(county, code)
    stored = answers_of(county, visit)
    assert stored["members"][0][2] == 3 and stored["pupils"][0][2] == 2
    assert stored["aid"][0][3] == 1
    assert sorted(row[4] for row in stored["help"]) == ["housing", "medical"]
    assert stored["last_check"][0][4] == "2026-03-15"
    assert stored["issue"][0][4] == "屋顶漏雨"
    assert query(county.db, "SELECT script_version FROM visits WHERE id = ?", visit) == [("3",)]


def test_script_import_writes_the_json_and_export_writes_the_workbook(tmp_path: Path):
    """`zoufang script import` and `script export` in real processes (their end-to-end test)."""
    form = workbook(tmp_path / "form.xlsx", COUNTY_SURVEY, COUNTY_CHOICES, COUNTY_SETTINGS)
    ok(zoufang_process(tmp_path, "script", "import", str(form), "--output", "form.json"))
    definition = json.loads((tmp_path / "form.json").read_text(encoding="utf-8"))
    assert definition["id"] == "shifan" and load_script(tmp_path / "form.json") == load_xlsform(form)
    ok(zoufang_process(tmp_path, "script", "export", "--output", "ours.xlsx"))
    assert load_xlsform(tmp_path / "ours.xlsx") == load_script()
    env = clean_env(tmp_path, ZOUFANG_SCRIPT=str(tmp_path / "form.json"))
    ok(
        zoufang_process(tmp_path, "script", "export", env=env)
    )  # the script in force, named by its id and version
    assert load_xlsform(tmp_path / "shifan-3.xlsx") == load_xlsform(form)


# --- bad forms ----------------------------------------------------------------------------------------------

BAD_SURVEY = [
    ["type", "name", "label", "relevant", "choice_filter", "constraint"],
    ["begin_group", "basic", "基本信息", "", "", ""],
    ["rank", "order", "排序", "", "", ""],  # row 3: a type zoufang cannot carry
    ["select_one nolist", "kind", "类型", "", "", ""],  # row 4: no such choice list
    ["integer", "n", "人数", "not(${m} > 1)", "", ""],  # row 5: not()
    ["integer", "m", "", "${n} > 1", "", ""],  # row 6: no label
    ["integer", "n", "重复", "", "", ""],  # row 7: a duplicate name
    ["select_one yn", "x", "选择", "(${n} > 1)", "region = ${m}", ""],  # row 8: parentheses, choice_filter
    ["integer", "later", "后题", "${zzz} = 1", "", ". * 2 > 3"],  # row 9: an unknown field, a constraint
    ["begin_repeat", "items", "条目", "", "", ""],  # row 10: never closed
    ["text", "t", "文本", "", "", ""],
    ["end_group", "", "", "", "", ""],
]
BAD_CHOICES = [["list_name", "name", "label"], ["yn", "yes", "是"], ["yn", "no", "否"], ["yn", "no", "不"]]


def test_a_bad_form_is_refused_whole_with_every_fault_named(tmp_path: Path):
    form = workbook(tmp_path / "bad.xlsx", BAD_SURVEY, BAD_CHOICES, [["form_id", "version"], ["bad", "1"]])
    with pytest.raises(FormError) as refused:
        load_xlsform(form)
    faults = refused.value.errors
    expected = [
        ("survey 第 3 行 type 列", "rank"),
        ("survey 第 4 行 type 列", "nolist"),
        ("survey 第 5 行 relevant 列", "not("),
        ("survey 第 6 行 label 列", "标签"),
        ("survey 第 7 行 name 列", "第 5 行重复"),
        ("survey 第 8 行 relevant 列", "括号"),
        ("survey 第 8 行 choice_filter 列", "不支持这一列"),
        ("survey 第 9 行 constraint 列", ". * 2 > 3"),
        ("survey 第 12 行 type 列", "第 10 行的 begin_repeat 还没有 end_repeat"),
        ("choices 第 4 行 name 列", "重复"),
    ]
    for where, what in expected:
        assert any(f.startswith(where) and what in f for f in faults), (where, what, faults)
    result = zoufang(tmp_path, "script", "check", str(form))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("zoufang: 脚本") and f"共 {len(faults)} 处" in lines[0]
    assert len(lines) == len(faults) + 1


def test_an_unknown_field_in_relevant_is_named_by_row(tmp_path: Path):
    survey = [
        ["type", "name", "label", "relevant"],
        ["integer", "a", "甲", "${b} > 1"],  # row 2 names a later question: the engine asks in order
        ["integer", "b", "乙", ""],
    ]
    form = workbook(
        tmp_path / "later.xlsx",
        survey,
        [["list_name", "name", "label"]],
        [["form_id", "version"], ["f", "1"]],
    )
    with pytest.raises(FormError) as refused:
        load_xlsform(form)
    assert any(f.startswith("survey 第 2 行（a）") and "'b'" in f for f in refused.value.errors), (
        refused.value.errors
    )


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("form.json", "{}", "不是 .xlsx"),
        ("missing.xlsx", None, "找不到文件"),
        ("broken.xlsx", b"PK\x03\x04 not really a workbook", "无法读取这个 Excel 文件"),
    ],
)
def test_script_import_of_what_is_no_workbook_is_one_line(
    tmp_path: Path, name: str, content: Any, expected: str
):
    if content is not None:
        path = tmp_path / name
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    result = zoufang(tmp_path, "script", "import", name)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert expected in result.stderr


@pytest.mark.parametrize(
    ("relevant", "fault"),
    [
        ("${help} = 'medical'", "多选题，请写 selected"),  # ODK compares the whole list
        ("${note_opt} != 'x'", "可能没有回答"),  # unanswered: ODK says true, zoufang false
    ],
)
def test_relevant_that_would_mean_something_else_here_is_refused(tmp_path: Path, relevant: str, fault: str):
    survey = [
        ["type", "name", "label", "required", "relevant"],
        ["select_multiple help", "help", "帮扶", "yes", ""],
        ["text", "note_opt", "备注", "", ""],
        ["integer", "later", "后题", "yes", relevant],
    ]
    choices = [["list_name", "name", "label"], ["help", "medical", "医疗"], ["help", "x", "其他"]]
    form = workbook(tmp_path / "f.xlsx", survey, choices, [["form_id", "version"], ["f", "1"]])
    with pytest.raises(FormError) as refused:
        load_xlsform(form)
    assert any(f.startswith("survey 第 4 行 relevant 列") and fault in f for f in refused.value.errors)


def test_a_choice_code_written_as_a_number_and_a_fractional_version(tmp_path: Path):
    survey = [
        ["type", "name", "label", "relevant"],
        ["select_one c", "a", "甲", ""],
        ["integer", "b", "乙", "${a} = 1"],
    ]
    choices = [["list_name", "name", "label"], ["c", 1, "一"], ["c", 2, "二"]]
    script = load_xlsform(workbook(tmp_path / "ok.xlsx", survey, choices, [["form_id", "version"], ["f", 3]]))
    assert script.question("b").relevant.source == "a == '1'"
    fractional = workbook(tmp_path / "v.xlsx", survey, choices, [["form_id", "version"], ["f", 2026.10]])
    with pytest.raises(FormError) as refused:
        load_xlsform(fractional)
    assert any("settings 第 2 行 version 列" in f and "写成文本" in f for f in refused.value.errors)


# --- roles (issue 17): the bind::zoufang:role column ---------------------------------------------------------


def test_the_role_column_reads_into_each_question_and_pyxform_carries_it_on_the_bind(tmp_path: Path):
    survey = [[*row, "bind::zoufang:role" if i == 0 else ""] for i, row in enumerate(COUNTY_SURVEY)]
    survey[2][-1] = "members"  # members
    survey[4][-1] = "policy_known"  # aid: a yes/no question
    settings = [[*COUNTY_SETTINGS[0], "namespaces"], [*COUNTY_SETTINGS[1], 'zoufang="urn:zoufang:xforms"']]
    form = workbook(tmp_path / "form.xlsx", survey, COUNTY_CHOICES, settings)
    script = load_xlsform(form)
    assert dict(script.roles.fields) == {"members": ("members",), "policy_known": ("aid",)}
    assert not script.roles.fallback
    xform = convert(xlsform=str(form)).xform
    assert re.search(r'<bind nodeset="/[^"]*/aid"[^>]*zoufang:role="policy_known"', xform)
    shipped = convert(xlsform=str(SHIPPED)).xform
    tagged = dict(re.findall(r'<bind nodeset="[^"]*/(\w+)"[^>]*?zoufang:role="(\w+)"', shipped))
    assert tagged == {q.name: q.role for q in load_script().questions() if q.role}


def test_a_role_on_a_question_of_the_wrong_type_is_refused_naming_the_row(tmp_path: Path):
    survey = [[*row, "bind::zoufang:role" if i == 0 else ""] for i, row in enumerate(COUNTY_SURVEY)]
    survey[5][-1] = "income"  # help: a select_multiple
    form = workbook(tmp_path / "form.xlsx", survey, COUNTY_CHOICES, COUNTY_SETTINGS)
    with pytest.raises(FormError) as refused:
        load_xlsform(form)
    (fault,) = refused.value.errors
    assert "第 6 行" in fault and "help" in fault and "role 'income'" in fault, fault
