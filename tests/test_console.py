"""End to end: `zoufang console`, answers piped through standard input as a cadre types them.

In this process (tests.cli_support.zoufang), but for the resumed visit: two real processes (zoufang_process)."""

from __future__ import annotations

import csv
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.demo import write_roster
from tests.cli_support import ok, query, zoufang, zoufang_process


def typed(lines: list[str]) -> str:
    return "".join(f"{line}\n" for line in lines)


def questions(stdout: str) -> list[str]:
    """The question lines (【section】label) in the order the console printed them."""
    return [line for line in stdout.splitlines() if line.startswith("【")]


# --- the county: rosters imported through the CLI once, the database copied for each test -------------------


@dataclass(frozen=True)
class County:
    folder: Path
    secretary: str  # 干部编号 of a 第一书记
    village: str  # the secretary's village
    households: list[str]  # 户编号 of the village, in roster order
    elsewhere: str  # a 户编号 in another village

    @property
    def db(self) -> Path:
        return self.folder / "z.db"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("roster")
    write_roster(folder, random.Random(1))
    ok(zoufang(folder, "init"))
    ok(zoufang(folder, "import", "cadres", "cadres.csv", "--county", "示范县"))
    ok(zoufang(folder, "import", "households", "households.csv"))
    return folder


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def county(imported: Path, tmp_path: Path) -> County:
    for name in ("z.db", "z.db-wal", "z.db-shm", "cadres.csv", "households.csv"):
        if (imported / name).exists():
            shutil.copy(imported / name, tmp_path / name)
    secretary = next(row for row in _rows(tmp_path / "cadres.csv") if row["角色"] == "第一书记")
    households = _rows(tmp_path / "households.csv")
    village = secretary["行政村"]
    return County(
        folder=tmp_path,
        secretary=secretary["干部编号"],
        village=village,
        households=[h["户编号"] for h in households if h["行政村"] == village],
        elsewhere=next(h["户编号"] for h in households if h["行政村"] != village),
    )


# --- a whole visit of the default script, typed the way cadres type on a phone ------------------------------

ANSWERS = [
    "３人",  # 0 members: full-width digit and a unit
    "2",  # 1 labour_members
    "因病",  # 2 main_cause, by its text
    "1 3",  # 3 support: 低保 and 残疾人补贴, by numbers
    "是",  # 4 food_secure
    "y",  # 5 clothing_secure
    "1",  # 6 school_children
    "否",  # 7 dropout (asked because of the child)
    "是",  # 8 medical_insured
    "n",  # 9 chronic_illness
    "是",  # 10 family_doctor
    "是",  # 11 pension_insured
    "1.2万",  # 12 income_wages
    "3000",  # 13 income_business
    "0",  # 14 income_property
    "0",  # 15 income_guaranteed
    "2千",  # 16 income_transfer
    "500",  # 17 expense_production
    "800",  # 18 expense_medical
    "0",  # 19 expense_education
    "2",  # 20 satisfaction: 基本满意, by number
    "是",  # 21 policy_known
    "",  # 22 opinion: skipped with an empty line
    "是",  # 23 talk_party
    "已讲",  # 24 talk_policy
    "教育资助、危房改造",  # 25 policies_explained, by texts
    "是",  # 26 talk_hope
    "是",  # 27 talk_aspiration
    "是",  # 28 housing_safe
    "是",  # 29 water_safe
    "是",  # 30 handbook_current
    "是",  # 31 income_sheet_current
    "是",  # 32 medical_sheet_current
    "是",  # 33 problems: one to record
    "饮水",  # 34 category
    "冬季水管冻裂",  # 35 description
    "否",  # 36 resolved_on_site: left for the township meeting
    "否",  # 37 no other problem
    "提交",  # 38 at the summary
]
SATISFACTION = 20  # the first answer of the second half, for the resume test


def visits_of(county: County, code: str) -> list[tuple]:
    return query(
        county.db,
        "SELECT v.id, v.status, v.channel, c.code FROM visits v JOIN households h ON h.id = v.household_id "
        "JOIN cadres c ON c.id = v.cadre_id WHERE h.code = ? ORDER BY v.id",
        code,
    )


def answers_of(county: County, visit_id: int) -> dict[str, list[tuple]]:
    rows = query(
        county.db,
        "SELECT field, item, seq, value_int, value_bool, value_text FROM answers WHERE visit_id = ? "
        "ORDER BY field, item, seq",
        visit_id,
    )
    found: dict[str, list[tuple]] = {}
    for field, *rest in rows:
        found.setdefault(field, []).append(tuple(rest))
    return found


def submitted_visit(county: County, code: str) -> int:
    rows = visits_of(county, code)
    assert len(rows) == 1, rows
    visit_id, status, channel, cadre = rows[0]
    assert (status, channel, cadre) == ("submitted", "console", county.secretary)
    return visit_id


def test_a_whole_visit_through_standard_input(county: County) -> None:
    result = ok(zoufang(county.folder, "console", "--cadre", county.secretary, input=typed(["1", *ANSWERS])))
    assert "请选择要走访的户" in result.stdout
    picked = re.search(r"^1\. (\S+) \S+户（([A-Za-z0-9]+)）$", result.stdout, re.MULTILINE)
    assert picked is not None, result.stdout
    assert picked.group(1) == county.village
    code = picked.group(2)
    assert code in county.households
    assert f"走访已提交：{county.village}" in result.stdout
    assert "1 个已提交乡镇扶贫工作专题党委会研究" in result.stdout
    assert "这道题必须回答" not in result.stdout  # every answer was taken as typed

    visit_id = submitted_visit(county, code)
    answers = answers_of(county, visit_id)
    assert answers["members"] == [(-1, 0, 3, None, None)]
    assert answers["labour_members"] == [(-1, 0, 2, None, None)]
    assert answers["income_wages"] == [(-1, 0, 12000, None, None)]
    assert answers["income_transfer"] == [(-1, 0, 2000, None, None)]
    assert answers["main_cause"] == [(-1, 0, None, None, "因病")]
    assert [row[-1] for row in answers["support"]] == ["低保", "残疾人补贴"]
    assert [row[-1] for row in answers["policies_explained"]] == ["教育资助", "危房改造"]
    assert answers["clothing_secure"] == [(-1, 0, None, 1, None)]
    assert answers["chronic_illness"] == [(-1, 0, None, 0, None)]
    assert answers["dropout"] == [(-1, 0, None, 0, None)]
    assert answers["satisfaction"] == [(-1, 0, None, None, "基本满意")]
    assert "opinion" not in answers
    assert answers["description"] == [(0, 0, None, None, "冬季水管冻裂")]

    problems = query(
        county.db,
        "SELECT category, description, resolved_on_site, status FROM problems WHERE visit_id = ?",
        visit_id,
    )
    assert problems == [("饮水", "冬季水管冻裂", 0, "escalated")]
    log = query(
        county.db,
        "SELECT w.kind, w.text FROM work_log_entries w JOIN cadres c ON c.id = w.cadre_id "
        "WHERE w.visit_id = ? AND c.code = ?",
        visit_id,
        county.secretary,
    )
    assert len(log) == 1
    assert log[0][0] == "visit"
    assert code in log[0][1]


def test_every_question_says_its_place_in_the_visit_out_of_a_total_that_stays_the_same(
    county: County,
) -> None:
    """A cadre could not tell how far into the 36 questions the visit was (issue 16): each question now shows
    "第 x/36 题" — the script's questions the console can ask (no location, no photo), conditional ones
    counted whether asked or not, so the total never changes and a place skipped is a question that did not
    apply."""
    result = ok(zoufang(county.folder, "console", "--cadre", county.secretary, input=typed(["1", *ANSWERS])))
    places = re.findall(r"^第 (\d+)/(\d+) 题$", result.stdout, re.MULTILINE)
    assert {total for _, total in places} == {"36"}
    numbers = [int(n) for n, _ in places]
    assert numbers[0] == 1 and numbers == sorted(numbers) and numbers[-1] == 36  # the problems are the last
    lines = result.stdout.splitlines()
    assert lines[lines.index("第 24/36 题") + 1] == "【四讲】讲党恩：已宣讲？"


def _with(extra: dict[int, list[str]], replace: dict[int, str] | None = None) -> list[str]:
    """ANSWERS with wrong inputs typed before the answer at each index."""
    lines: list[str] = []
    for n, answer in enumerate(ANSWERS):
        lines += extra.get(n, [])
        lines.append((replace or {}).get(n, answer))
    return lines


def test_bad_answers_get_the_reason_and_the_question_again(county: County) -> None:
    code = county.households[1]
    opinion = "希望多组织技能培训"
    lines = _with(
        {0: ["abc", "25"], 4: [""], 12: ["-5"], 22: ["长" * 5000]},
        replace={22: opinion},
    )
    result = ok(
        zoufang(
            county.folder, "console", "--cadre", county.secretary, "--household", code, input=typed(lines)
        )
    )
    out = result.stdout
    members = "第 1/36 题\n【问基本信息】家庭共同生活人口数（人）"
    assert f"请输入一个整数，例如 3。\n{members}" in out
    assert f"不能大于 20。\n{members}" in out
    assert "这道题必须回答。\n第 5/36 题\n【问生活状况】不愁吃？" in out
    assert "不能小于 0。\n第 13/36 题\n【问家庭收支（元/年）】工资性收入（元/年）" in out
    assert (
        "回答太长（5000 字），最多 1000 字，请精简后重新输入。\n"
        "第 23/36 题\n【问意见建议】群众的意见建议（没有可跳过）" in out
    )
    assert questions(out).count(members.splitlines()[1]) == 3
    assert "长" * 1001 not in out  # the long text is not echoed back
    assert "走访已提交" in out

    answers = answers_of(county, submitted_visit(county, code))
    assert answers["members"][0][2] == 3
    assert answers["food_secure"][0][3] == 1
    assert answers["income_wages"][0][2] == 12000
    assert answers["opinion"] == [(-1, 0, None, None, opinion)]


def test_an_interrupted_visit_resumes_in_a_new_process(county: County) -> None:
    """`zoufang console` in real processes (its end-to-end test): the draft outlives the first."""
    first = ok(
        zoufang_process(
            county.folder, "console", "--cadre", county.secretary, input=typed(["1", *ANSWERS[:SATISFACTION]])
        )
    )
    assert "走访进度已保存" in first.stdout
    assert "走访已提交" not in first.stdout
    waiting = questions(first.stdout)[-1]
    assert waiting == "【问满意成效】对帮扶工作满意吗？"
    code = re.search(r"^1\. \S+ \S+户（([A-Za-z0-9]+)）$", first.stdout, re.MULTILINE).group(1)  # type: ignore[union-attr]
    assert [row[1] for row in visits_of(county, code)] == ["draft"]

    second = ok(
        zoufang_process(
            county.folder, "console", "--cadre", county.secretary, input=typed(ANSWERS[SATISFACTION:])
        )
    )
    assert "继续未完成的走访" in second.stdout
    assert code in second.stdout.splitlines()[0]
    assert "请选择要走访的户" not in second.stdout
    assert questions(second.stdout)[0] == waiting
    assert "走访已提交" in second.stdout

    answers = answers_of(county, submitted_visit(county, code))
    assert answers["members"][0][2] == 3  # from the first process
    assert answers["income_wages"][0][2] == 12000
    assert answers["satisfaction"][0][4] == "基本满意"  # from the second


def test_an_unknown_cadre_is_one_line_on_stderr(county: County) -> None:
    result = zoufang(county.folder, "console", "--cadre", "NOBODY", input=typed(["1", *ANSWERS]))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "NOBODY" in lines[0]
    assert query(county.db, "SELECT count(*) FROM visits") == [(0,)]


def test_a_household_outside_the_cadres_scope_is_refused(county: County) -> None:
    result = zoufang(
        county.folder,
        "console",
        "--cadre",
        county.secretary,
        "--household",
        county.elsewhere,
        input=typed(ANSWERS),
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert county.elsewhere in lines[0]
    assert query(county.db, "SELECT count(*) FROM visits") == [(0,)]


PICKER_LINE = re.compile(r"^(\d+)\. \S+ \S+户（([A-Za-z0-9]+)）(（本期已走访）)?$")


def picker(stdout: str) -> list[tuple[str, bool]]:
    found = [PICKER_LINE.match(line) for line in stdout.splitlines()]
    return [(m.group(2), m.group(3) is not None) for m in found if m]


def test_the_picker_puts_households_visited_this_period_last(county: County) -> None:
    before = picker(ok(zoufang(county.folder, "console", "--cadre", county.secretary)).stdout)
    assert sorted(code for code, _ in before) == sorted(county.households)
    assert not any(visited for _, visited in before)

    chosen = before[0][0]  # first in the list; chosen by its 户编号 this time
    ok(zoufang(county.folder, "console", "--cadre", county.secretary, input=typed([chosen, *ANSWERS])))
    submitted_visit(county, chosen)

    after = picker(ok(zoufang(county.folder, "console", "--cadre", county.secretary)).stdout)
    assert len(after) == len(before)
    assert after[-1] == (chosen, True)
    assert all(not visited for _, visited in after[:-1])
    assert [code for code, _ in after[:-1]] == [code for code, _ in before[1:]]


def test_back_and_change_from_the_summary(county: County) -> None:
    code = county.households[2]
    lines = [
        "4",  # members
        "返回",  # at labour_members: back to members, which shows its answer
        "5",
        "3",  # labour_members, now up to 5
        *ANSWERS[2:38],
        "修改 13",  # income_wages (line 13 while the dropout question is in)
        "2万",
        "修改 7",  # school_children
        "0",  # drops the dropout question
        "提交",
    ]
    result = ok(
        zoufang(
            county.folder, "console", "--cadre", county.secretary, "--household", code, input=typed(lines)
        )
    )
    out = result.stdout
    assert "已经是第一题了" not in out
    assert "当前答案：4（直接回车保留）" in out
    assert "当前答案：12000（直接回车保留）" in out
    assert "当前答案：1（直接回车保留）" in out
    summaries = out.split("请核对本次走访")
    assert len(summaries) == 4  # before the changes, after each change
    assert " 13. 工资性收入（元/年）：20000" in summaries[2]
    assert "辍学" in summaries[2]
    assert "辍学" not in summaries[3]
    assert " 1. 家庭共同生活人口数（人）：5" in summaries[3]
    assert "走访已提交" in summaries[3]

    answers = answers_of(county, submitted_visit(county, code))
    assert answers["members"][0][2] == 5
    assert answers["labour_members"][0][2] == 3
    assert answers["income_wages"][0][2] == 20000
    assert answers["school_children"][0][2] == 0
    assert "dropout" not in answers


def test_cancel_through_the_console_keeps_no_answers(county: County) -> None:
    code = county.households[3]
    result = ok(
        zoufang(
            county.folder,
            "console",
            "--cadre",
            county.secretary,
            "--household",
            code,
            input=typed(["３人", "取消", "是"]),
        )
    )
    assert "确定取消本次走访吗" in result.stdout
    assert "走访已取消" in result.stdout
    assert [row[1] for row in visits_of(county, code)] == ["cancelled"]
    assert query(county.db, "SELECT count(*) FROM answers") == [(0,)]


def test_a_draft_outside_the_new_scope_does_not_crash(county: County) -> None:
    """Regression: a draft whose household left the cadre's scope once crashed the picker (StopIteration)."""
    ok(zoufang(county.folder, "console", "--cadre", county.secretary, input=typed(["1", *ANSWERS[:3]])))
    rows = _rows(county.folder / "cadres.csv")
    other = next(r["行政村"] for r in rows if r["角色"] == "第一书记" and r["行政村"] != county.village)
    for row in rows:
        if row["干部编号"] == county.secretary:
            row["行政村"] = other
    with (county.folder / "moved.csv").open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    ok(zoufang(county.folder, "import", "cadres", "moved.csv"))

    # the draft's household is no longer the cadre's: no crash, the new village's households are offered
    result = ok(zoufang(county.folder, "console", "--cadre", county.secretary))
    listed = picker(result.stdout)
    assert listed
    assert all(code not in county.households for code, _ in listed)


def test_console_before_init_fails_with_one_line(tmp_path: Path) -> None:
    result = zoufang(tmp_path, "console", "--cadre", "GB001", input=typed(["1", *ANSWERS]))
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def loosely(code: str) -> str:
    """A roster id the way it gets typed: lower case, full-width, a space around it."""
    full_width = "".join(chr(ord(ch) + 0xFEE0) if ch.isascii() and ch.isalnum() else ch for ch in code[:2])
    return f" {full_width.lower()}{code[2:].lower()} "


def test_a_lower_case_household_and_cadre_id_are_found_not_reported_missing(county: County) -> None:
    """Issue 16: `--household gb002` (ids are upper case, GB002) was refused as 不存在; so was a cadre id."""
    code = county.households[4]
    assert code != code.lower()
    lines = ANSWERS
    result = ok(
        zoufang(
            county.folder,
            "console",
            "--cadre",
            loosely(county.secretary),
            "--household",
            loosely(code),
            input=typed(lines),
        )
    )
    assert "走访已提交" in result.stdout
    submitted_visit(county, code)


def test_a_household_picked_by_its_lower_case_id(county: County) -> None:
    code = county.households[5]
    result = ok(
        zoufang(county.folder, "console", "--cadre", county.secretary, input=typed([code.lower(), *ANSWERS]))
    )
    assert "走访已提交" in result.stdout
    submitted_visit(county, code)


def test_ctrl_c_at_the_console_stops_at_once_and_says_the_answers_are_saved(county: County) -> None:
    """Issue 16: Ctrl-C did nothing until Enter, then printed English "Aborted!" without a word about the answers.
    A real process, its standard input left open (as a terminal's is), interrupted while it waits for a line."""
    import os
    import signal
    import subprocess
    import threading
    import time

    from tests.cli_support import COMMAND, clean_env

    code = county.households[6]
    process = subprocess.Popen(
        [*COMMAND, "console", "--cadre", county.secretary, "--household", code],
        cwd=county.folder,
        env=clean_env(county.folder),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    seen: list[str] = []
    asked = threading.Event()

    def watch() -> None:
        assert process.stdout is not None
        for raw in process.stdout:
            seen.append(raw.decode("utf-8"))
            if raw.decode("utf-8").startswith("【") and len([s for s in seen if s.startswith("【")]) == 3:
                asked.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        assert process.stdin is not None
        process.stdin.write(typed(ANSWERS[:2]).encode("utf-8"))
        process.stdin.flush()
        assert asked.wait(60), "".join(seen)  # the third question is waiting for its answer
        time.sleep(0.2)
        os.kill(process.pid, signal.SIGINT)
        started = time.monotonic()
        returncode = process.wait(timeout=20)  # no Enter needed
        stopped_in = time.monotonic() - started
    finally:
        if process.poll() is None:
            process.kill()
        process.stdin.close()  # type: ignore[union-attr]
    watcher.join(5)
    err = process.stderr.read().decode("utf-8")  # type: ignore[union-attr]
    assert returncode == 130, (err, "".join(seen))
    assert stopped_in < 10
    assert "Aborted" not in err and "Traceback" not in err
    assert (
        err.strip()
        == f"已中断：已回答的题目都已保存；再次运行 zoufang console --cadre {county.secretary} 可从中断处继续"
    )
    rows = visits_of(county, code)
    assert [row[1] for row in rows] == ["draft"]
    resumed = ok(zoufang(county.folder, "console", "--cadre", county.secretary, input=typed(ANSWERS[2:])))
    assert "继续未完成的走访" in resumed.stdout and "走访已提交" in resumed.stdout
    assert answers_of(county, submitted_visit(county, code))["members"][0][2] == 3  # given before Ctrl-C
