"""`zoufang problem list|show|decide|close|merge|reopen`: a county without Telegram runs its meetings from the
shell, through the same flow and machine as the bot's buttons (every move in problem_events, with its actor, so
the tally counts it). In this process (tests.cli_support.zoufang), but each command once in a real process
(`process=True`)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from storage.db import Database
from tests.cli_support import clean_env, ok, query, zoufang, zoufang_process
from tests.test_escalation import cadre_id, raise_problem

TZ = ZoneInfo("Asia/Shanghai")
RAISED = datetime(2026, 11, 10, 10, 0, tzinfo=TZ)  # on the 16 November meeting's agenda, which has met


def run(db_path: Path, *args: str, locale: str = "zh_CN", process: bool = False) -> tuple[int, str, str]:
    """`zoufang problem ARGS` in this process, or with `process` in a real one."""
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}", ZOUFANG_LOCALE=locale)
    result = (zoufang_process if process else zoufang)(db_path.parent, "problem", *args, env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stdout, result.stderr.strip()


def refused(db_path: Path, *args: str) -> str:
    code, _, err = run(db_path, *args)
    assert code == 1 and len(err.splitlines()) == 1, err
    return err


async def test_a_meeting_run_from_the_shell(roster: Database, db_path: Path):
    """problem list, show, decide, close and reopen each once in a real process (their end-to-end test)."""
    pid = await raise_problem(roster, "DEMO0001", "GB001", RAISED, text="自来水管冻裂")
    other = await raise_problem(roster, "DEMO0002", "GB001", RAISED, text="水管又冻裂了")
    secretary, responsible = await cadre_id(roster, "GB012"), await cadre_id(roster, "GB001")

    _, listed, _ = run(db_path, "list", "--as", "GB012", process=True)
    assert "东风镇未办结问题共 2 个" in listed and f"#{pid} " in listed and f"#{other} " in listed
    _, mine, _ = run(db_path, "list", "--as", "GB001")  # a first secretary: only what they raised, read only
    assert "您提出的未办结问题共 2 个（只读" in mine
    _, card, _ = run(db_path, "show", str(pid), "--as", "GB012", process=True)
    assert f"问题 #{pid}｜" in card and "自来水管冻裂" in card

    assert "只有本乡镇党委书记可以" in refused(
        db_path, "decide", str(pid), "--as", "GB001", "--responsible", "GB001", "--due-days", "15"
    )
    assert "完成期限请选 7/15/30 天" in refused(
        db_path, "decide", str(pid), "--as", "GB012", "--responsible", "GB001", "--due-days", "9"
    )
    _, decided, _ = run(
        db_path,
        "decide",
        str(pid),
        "--as",
        "GB012",
        "--responsible",
        "GB001",
        "--due-days",
        "15",
        process=True,
    )
    assert "已决定" in decided and "责任人" in decided

    assert "请写明处理结果" in refused(db_path, "close", str(pid), "--as", "GB012", "--note", " ")
    _, closed, _ = run(db_path, "close", str(pid), "--as", "GB012", "--note", "已更换水管", process=True)
    assert "已销号" in closed and "处理结果：已更换水管" in closed
    # a closed problem takes no merges: the machine's reason, nothing moved
    assert "只能合并到未化解的问题" in refused(
        db_path, "merge", str(other), "--into", str(pid), "--as", "GB012"
    )
    _, reopened, _ = run(db_path, "reopen", str(pid), "--as", "GB012", "--note", "又漏水", process=True)
    assert "已重新打开" in reopened

    moves = query(
        db_path, "SELECT action, actor_id FROM problem_events WHERE problem_id = ? ORDER BY id", pid
    )
    assert moves == [
        ("escalate", responsible),
        ("decide", secretary),
        ("close", secretary),
        ("reopen", secretary),
    ]
    audited = query(db_path, "SELECT count(*) FROM audit_events WHERE action LIKE 'problem.%'")
    assert audited[0][0] >= 3


async def test_merge_and_the_tally_see_cli_moves(roster: Database, db_path: Path):
    """problem merge in a real process (its end-to-end test)."""
    first = await raise_problem(roster, "DEMO0001", "GB001", RAISED)
    second = await raise_problem(roster, "DEMO0002", "GB001", RAISED)
    _, merged, _ = run(db_path, "merge", str(second), "--into", str(first), "--as", "GB012", process=True)
    assert "已合并" in merged
    assert query(db_path, "SELECT status FROM problems WHERE id = ?", second) == [("merged",)]
    run(db_path, "decide", str(first), "--as", "GB012", "--responsible", "GB001", "--due-days", "7")
    run(db_path, "close", str(first), "--as", "GB012", "--note", "已修好")
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    month = datetime.now(TZ).strftime("%Y-%m")
    tally = ok(zoufang(db_path.parent, "tally", "--township", "东风镇", "--month", month, env=env)).stdout
    assert "本月已化解（销号）1 个" in tally


async def test_who_may_not_see_gets_one_line(roster: Database, db_path: Path):
    pid = await raise_problem(roster, "DEMO0001", "GB001", RAISED)
    not_found = f"没有编号为 {pid} 的问题，或您无权查看"
    assert not_found in refused(db_path, "show", str(pid), "--as", "GB025")  # another township's secretary
    assert not_found in refused(db_path, "close", str(pid), "--as", "GB025", "--note", "x")
    assert "没有编号为 987654 的问题" in refused(db_path, "show", "987654", "--as", "GB012")
    assert "没有干部编号 GB999" in refused(db_path, "list", "--as", "GB999")
    assert "没有干部编号 GB999" in refused(
        db_path, "decide", str(pid), "--as", "GB012", "--responsible", "GB999", "--due-days", "7"
    )
    assert "责任人须是本乡镇的干部" in refused(
        db_path, "decide", str(pid), "--as", "GB012", "--responsible", "GB025", "--due-days", "7"
    )
    code, _, err = run(db_path, "close", str(pid), "--as", "GB012")  # no --note: click's usage error
    assert code == 2 and "--note" in err
    assert query(db_path, "SELECT status FROM problems WHERE id = ?", pid) == [
        ("escalated",)
    ]  # nothing moved


async def test_in_english(roster: Database, db_path: Path):
    pid = await raise_problem(roster, "DEMO0001", "GB001", RAISED)
    _, listed, _ = run(db_path, "list", "--as", "GB012", locale="en")
    assert (
        "open problem" in listed
        and f"#{pid} " in listed
        and "zoufang problem show NUMBER --as GB012" in listed
    )
    code, _, err = run(db_path, "show", "987654", "--as", "GB012", locale="en")
    assert code == 1 and "not done: There is no problem number 987654" in err


async def test_a_number_past_the_databases_integers_is_not_found(roster: Database, db_path: Path):
    pid = await raise_problem(roster, "DEMO0001", "GB001", RAISED)
    huge = "99999999999"
    assert f"没有编号为 {huge} 的问题" in refused(db_path, "close", huge, "--as", "GB012", "--note", "x")
    assert f"没有编号为 {huge} 的问题" in refused(db_path, "merge", str(pid), "--into", huge, "--as", "GB012")
