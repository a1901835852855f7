"""Facts follow the script (issue 17), through the real interface: a county's script whose question names all
differ from the built-in ones, walked in the console visit with ZOUFANG_SCRIPT set, then `zoufang report …`
and `zoufang script check`. Tagged with roles, its facts and reports come out as the built-in script's would;
the same script untagged, its facts are 未采集 and no household becomes 重点帮扶 or 返贫预警 from income
that was never asked."""

from __future__ import annotations

import copy
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.cli_support import clean_env, ok, query, zoufang
from tests.test_console import ANSWERS, County, county, imported, typed  # noqa: F401

DEFAULT = json.loads((Path(__file__).parents[1] / "survey" / "default_script.json").read_text("utf-8"))


def renamed(*, tagged: bool) -> dict[str, Any]:
    """The built-in script with every top-level question renamed (cun_…), its conditions and bounds too; the
    problems repeat keeps its name (the flows read it by name: not a derived fact)."""
    data = copy.deepcopy(DEFAULT)
    data["id"] = "county-own"
    names = [q["name"] for s in data["sections"] for q in s["questions"] if q["type"] != "repeat"]
    pattern = re.compile(r"\b(" + "|".join(names) + r")\b")
    for section in data["sections"]:
        for question in section["questions"]:
            if question["type"] == "repeat":
                continue
            question["name"] = f"cun_{question['name']}"
            if "relevant" in question:
                question["relevant"] = pattern.sub(r"cun_\1", question["relevant"])
            for bound in ("min", "max"):
                if isinstance(question.get(bound), str):
                    question[bound] = f"cun_{question[bound]}"
            if not tagged:
                question.pop("role", None)
    return data


def write(place: County, name: str, data: dict[str, Any]) -> dict[str, str]:
    path = place.folder / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return clean_env(place.folder, ZOUFANG_SCRIPT=str(path))


def visit(place: County, env: dict[str, str], code: str) -> str:
    done = ok(zoufang(place.folder, "console", "--cadre", place.secretary, "--household", code,
                      input=typed(ANSWERS), env=env))  # fmt: skip
    assert "走访已提交" in done.stdout, done.stdout
    return done.stdout


def facts_of(place: County, code: str) -> tuple:
    (row,) = query(
        place.db,
        "SELECT v.counted_income, v.per_capita_net, v.household_group, v.warnings, v.unmet, v.uncollected, "
        "v.satisfaction FROM visits v JOIN households h ON h.id = v.household_id WHERE h.code = ?",
        code,
    )
    return row


def test_a_tagged_county_script_with_other_names_gives_the_facts_and_reports_of_the_built_in(county: County):  # noqa: F811
    data = renamed(tagged=True)
    # a household that is not 政策兜底, so the income decides its group
    support = next(q for s in data["sections"] for q in s["questions"] if q["name"] == "cun_support")
    assert support["role"] == "support"
    env = write(county, "county.json", data)
    checked = ok(zoufang(county.folder, "script", "check", env=env)).stdout
    assert "income=cun_income_wages, cun_income_business, cun_income_property, cun_income_transfer" in checked
    assert "未采集" not in checked
    code = county.households[0]
    answers = [*ANSWERS]
    answers[3] = "3"  # support: 残疾人补贴 only
    answers[12] = "1000"  # wages: income 1000 + 3000 + 2000 = 6000, (6000 − 500) / 3 = 1833.33 < 3600
    out = ok(zoufang(county.folder, "console", "--cadre", county.secretary, "--household", code,
                     input=typed(answers), env=env)).stdout  # fmt: skip
    assert "返贫预警：低于监测线" in out and "未采集" not in out
    income, per_capita, group, warnings, unmet, uncollected, satisfaction = facts_of(county, code)
    assert (Decimal(str(income)), Decimal(str(per_capita))) == (Decimal(6000), Decimal("1833.33"))
    assert (group, warnings, unmet, uncollected, satisfaction) == (
        "key_support", "below_monitoring_line", "", None, "基本满意"
    )  # fmt: skip
    households = ok(zoufang(county.folder, "report", "households", "--format", "csv", env=env)).stdout
    assert "重点帮扶,1," in households and "未采集" not in households
    warned = ok(
        zoufang(county.folder, "report", "households", "--warning", "--format", "csv", env=env)
    ).stdout
    assert "1833.33" in warned and code in warned
    awareness = ok(zoufang(county.folder, "report", "awareness", "--by", "township", "--format", "csv",
                           env=env)).stdout  # fmt: skip
    assert "100.0%" in awareness and "未采集" not in awareness


def test_the_same_script_untagged_leaves_the_facts_uncollected_never_zero(county: County):  # noqa: F811
    env = write(county, "county.json", renamed(tagged=False))
    checked = ok(zoufang(county.folder, "script", "check", env=env)).stdout
    assert "没有题目标注 role" in checked
    assert (
        "未采集 / not collected: 人均纯收入 (per_capita_net) — 缺少角色 / missing role: income, " in checked
    )
    assert "未采集 / not collected: 政策知晓率 (awareness)" in checked
    code = county.households[0]
    out = visit(county, env, code)
    assert "返贫预警未采集" in out and "低于监测线" in out  # could not be judged, not raised
    assert "返贫预警：" not in out
    income, per_capita, group, warnings, unmet, uncollected, satisfaction = facts_of(county, code)
    assert (income, per_capita, group, warnings, unmet, satisfaction) == (None, None, None, "", "", None)
    assert "counted_income" in uncollected and "group" in uncollected and "water" in uncollected
    households = ok(zoufang(county.folder, "report", "households", "--format", "csv", env=env)).stdout
    assert "重点帮扶,0," in households and "未采集（脚本缺少分组所需题目）,1," in households
    assert "人均纯收入 1 户" in households
    warned = ok(zoufang(county.folder, "report", "households", "--warning", "--wide", env=env)).stdout
    assert "没有返贫预警户" in warned and "未能完整判断返贫预警" in warned and "低于监测线 1 户" in warned
    awareness = ok(zoufang(county.folder, "report", "awareness", env=env)).stdout
    assert "知晓率未采集" in awareness and "0.0%" not in awareness


def test_an_untagged_script_with_the_built_in_names_keeps_working(county: County):  # noqa: F811
    data = copy.deepcopy(DEFAULT)
    for section in data["sections"]:
        for question in section["questions"]:
            question.pop("role", None)
    env = write(county, "old.json", data)
    checked = ok(zoufang(county.folder, "script", "check", env=env)).stdout
    assert "没有题目标注 role：派生指标按内置题名读取" in checked and "未采集" not in checked
    code = county.households[0]
    visit(county, env, code)
    income, _net, group, _warnings, _unmet, uncollected, satisfaction = facts_of(county, code)
    assert Decimal(str(income)) == Decimal(17000) and group == "safety_net" and uncollected is None
    assert satisfaction == "基本满意"
