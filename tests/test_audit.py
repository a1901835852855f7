"""The audit trail: every roster import, cadre role or township change, household change, problem move, submitted
visit, Telegram binding, opt-out and opt-in writes an `audit_events` row (who, when, what, before, after), in the
same transaction as the change; `zoufang audit --since DATE [--until DATE] [--format csv|xlsx]` shows them."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import select

from bot.demo import write_roster
from bot.flows.escalation import act
from storage.db import Database
from storage.models import AuditEvent
from tests.cli_support import clean_env, ok, query, zoufang, zoufang_process
from tests.test_cli import one_line_failure
from tests.test_escalation import cadre_id, raise_problem
from tests.test_poll_flow import send, village_phones
from tests.test_sms_webhooks import SMS_INBOUND, Clock, client_for, inbound, post, sms_settings

TZ = ZoneInfo("Asia/Shanghai")


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def audit_rows(folder: Path, env: dict[str, str], *args: str, process: bool = False) -> list[dict[str, str]]:
    out = ok(
        (zoufang_process if process else zoufang)(folder, "audit", *args, "--format", "csv", env=env)
    ).stdout
    return list(csv.DictReader(io.StringIO(out.lstrip("\ufeff"))))


async def audited(db: Database) -> list[str]:
    async with db.reading() as s:
        return list((await s.execute(select(AuditEvent.action).order_by(AuditEvent.id))).scalars())


async def test_problem_moves_and_opt_outs_are_in_the_trail_with_who_and_before_after(
    roster: Database, db_path: Path
):
    secretary = await cadre_id(roster, "GB012")  # 东风镇 乡镇党委书记
    responsible = await cadre_id(roster, "GB001")
    pid = await raise_problem(roster, "DEMO0001", "GB001", local("2026-11-10 10:00"))
    decided_at = local("2026-11-16 15:00")
    await act(
        roster, sms_settings(), secretary, pid, "decide", decided_at, responsible_id=responsible, due_days=15
    )
    await act(roster, sms_settings(), secretary, pid, "close", local("2026-11-20 10:00"), note="已更换水管")
    settings = sms_settings()
    await send(roster, settings)
    phone = (await village_phones(roster))[0]
    async with await client_for(roster, settings, Clock()) as client:
        for text in ("TD", "TD", "START", "START"):  # out, then back in; a repeat changes nothing to record
            assert (await post(client, SMS_INBOUND, inbound(phone, text))).status == 200

    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    rows = audit_rows(db_path.parent, env, "--since", "2026-11-01")
    moves = [r for r in rows if r["对象"] == f"problem:{pid}"]
    assert [(r["操作"], r["操作人"].split()[0]) for r in moves] == [
        ("问题交办", "GB012"),
        ("问题销号", "GB012"),
    ]
    decide, close = moves
    assert decide["时间"] == "2026-11-16 15:00:00"
    assert json.loads(decide["变更前"]) == {"state": "escalated"}
    assert json.loads(decide["变更后"]) == {
        "state": "decided",
        "responsible_id": responsible,
        "due_on": "2026-12-01",
        "meeting_on": "2026-11-16",
    }
    assert json.loads(close["变更后"]) == {
        "state": "closed",
        "note": "已更换水管",
        "meeting_on": "2026-11-16",
    }
    opts = [(r["操作代码"], r["操作人"], r["对象"]) for r in rows if r["操作代码"].startswith("sms.")]
    assert opts == [
        ("sms.opt_out", f"sms:{phone}", f"phone:{phone}"),
        ("sms.opt_in", f"sms:{phone}", f"phone:{phone}"),
    ]
    imports = [r["操作代码"] for r in rows if r["操作代码"].startswith("import.")]
    assert imports == ["import.cadres", "import.households"]  # the roster fixture's two imports

    # one day only (both ends included), and the same rows as a spreadsheet
    day = audit_rows(db_path.parent, env, "--since", "2026-11-16", "--until", "2026-11-16")
    assert [r["操作代码"] for r in day] == ["problem.decide"]
    book = db_path.parent / "audit.xlsx"
    ok(
        zoufang(
            db_path.parent,
            "audit",
            "--since",
            "2026-11-16",
            "--until",
            "2026-11-20",
            "--format",
            "xlsx",
            "--output",
            str(book),
            env=env,
        )
    )
    sheet = openpyxl.load_workbook(book).active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    header = next(r for r in values if r and r[0] == "时间")
    at = values.index(header)
    assert header[:3] == ["时间", "操作人", "操作"]
    codes = [r[header.index("操作代码")] for r in values[at + 1 :] if r[0]]
    assert [c for c in codes if c.startswith("problem.")] == ["problem.decide", "problem.close"]


def test_a_role_change_and_a_household_change_by_reimport_are_audited(tmp_path: Path):
    write_roster(tmp_path, random.Random(7))
    ok(zoufang(tmp_path, "init"))
    ok(zoufang(tmp_path, "import", "cadres", "cadres.csv", "--county", "示范县"))
    ok(zoufang(tmp_path, "import", "households", "households.csv"))
    cadres = (tmp_path / "cadres.csv").read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(cadres)))
    header = rows[0]
    code, role = header.index("干部编号"), header.index("角色")
    target = next(r for r in rows[1:] if r[role] == "帮扶责任人")
    target[role] = "村党支部书记"
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)
    (tmp_path / "cadres.csv").write_text(buffer.getvalue(), encoding="utf-8-sig")
    ok(zoufang(tmp_path, "import", "cadres", "cadres.csv"))
    households = list(csv.reader(io.StringIO((tmp_path / "households.csv").read_text(encoding="utf-8-sig"))))
    members = households[0].index("家庭人口")
    moved = households[1]
    old_members, moved[members] = int(moved[members]), str(int(moved[members]) + 1)
    buffer = io.StringIO()
    csv.writer(buffer).writerows(households)
    (tmp_path / "households.csv").write_text(buffer.getvalue(), encoding="utf-8-sig")
    ok(zoufang(tmp_path, "import", "households", "households.csv"))

    today = datetime.now(TZ).date().isoformat()
    trail = audit_rows(
        tmp_path, clean_env(tmp_path), "--since", today, process=True
    )  # audit's end-to-end test
    changes = [r for r in trail if r["操作代码"] == "cadre.update"]
    assert [(r["对象"], json.loads(r["变更前"]), json.loads(r["变更后"])) for r in changes] == [
        (f"cadre:{target[code]}", {"role": "帮扶责任人"}, {"role": "村党支部书记"})
    ]
    assert changes[0]["操作人"].startswith("cli")
    [household] = [r for r in trail if r["操作代码"] == "household.update"]
    assert household["对象"] == f"household:{moved[0]}"
    assert (json.loads(household["变更前"]), json.loads(household["变更后"])) == (
        {"members": old_members},
        {"members": old_members + 1},
    )
    assert [r["操作代码"] for r in trail if r["操作代码"].startswith("import.")] == [
        "import.cadres",
        "import.households",
        "import.cadres",
        "import.households",
    ]
    assert query(tmp_path / "z.db", "SELECT count(*) FROM audit_events")[0][0] == len(trail)


def test_a_refused_import_leaves_no_trace_in_the_trail(tmp_path: Path):
    write_roster(tmp_path, random.Random(7))
    ok(zoufang(tmp_path, "init"))
    (tmp_path / "bad.csv").write_text("干部编号,姓名\nGB1,张三\n", encoding="utf-8")
    assert zoufang(tmp_path, "import", "cadres", "bad.csv", "--county", "示范县").returncode != 0
    assert query(tmp_path / "z.db", "SELECT count(*) FROM audit_events") == [(0,)]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--since", "2026-13-01"), "--since '2026-13-01' 不是日期"),
        (("--since", "2026-12-01", "--until", "2026-11-01"), "--until 2026-11-01 早于 --since 2026-12-01"),
    ],
)
def test_bad_dates_are_one_line(tmp_path: Path, args: tuple[str, ...], expected: str):
    ok(zoufang(tmp_path, "init"))
    assert expected in one_line_failure(zoufang(tmp_path, "audit", *args))


def test_an_empty_span_says_so(tmp_path: Path):
    ok(zoufang(tmp_path, "init"))
    assert (
        "这段时间没有操作记录"
        in ok(zoufang(tmp_path, "audit", "--since", "2020-01-01", "--until", "2020-01-31")).stdout
    )
