"""The township queue end to end through bot.flows.escalation and the CLI: a problem's life across meeting dates
with a clock the tests set, permissions, the digest (golden files in zh-CN and en), minutes, tally, overdue list."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot.flows.escalation import ActionRefused, act, build_digest, daily_check, digest_sms, digest_text
from bot.settings import Settings
from storage.db import Database
from storage.models import Cadre, Household, OutboxMessage, Problem, ProblemEvent, TelegramAccount, Township
from storage.problems import creation_event
from survey.sms_text import segments
from tests.cli_support import clean_env, ok, zoufang, zoufang_process

TZ = ZoneInfo("Asia/Shanghai")
GOLDEN = Path(__file__).with_name("golden")
SETTINGS = Settings()


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


async def cadre_id(db: Database, code: str) -> int:
    async with db.session() as s:
        return (await s.execute(select(Cadre.id).where(Cadre.code == code))).scalar_one()


async def raise_problem(
    db: Database,
    household: str,
    raised_by: str | None,
    at: datetime,
    category: str = "饮水",
    text: str = "自来水管冻裂",
) -> int:
    raiser = None if raised_by is None else await cadre_id(db, raised_by)
    async with db.session() as s:
        household_id = (await s.execute(select(Household.id).where(Household.code == household))).scalar_one()
        problem = Problem(
            household_id=household_id,
            raised_by_id=raiser,
            source="visit" if raised_by else "sms",
            category=category,
            description=text,
            status="escalated",
            created_at=at,
            escalated_at=at,
        )
        s.add(problem)
        await s.flush()
        s.add(creation_event(problem))
        return problem.id


async def problem(db: Database, problem_id: int) -> Problem:
    async with db.session() as s:
        return await s.get(Problem, problem_id)


async def events(db: Database, problem_id: int) -> list[tuple[str, str, str, int | None]]:
    async with db.session() as s:
        rows = await s.execute(
            select(ProblemEvent.action, ProblemEvent.from_state, ProblemEvent.to_state, ProblemEvent.actor_id)
            .where(ProblemEvent.problem_id == problem_id)
            .order_by(ProblemEvent.id)
        )
        return [tuple(r) for r in rows]


# --- the life of a problem across meeting dates ---------------------------------------------------------------


async def test_raised_decided_at_the_meeting_closed_with_a_note(roster: Database):
    secretary = await cadre_id(roster, "GB012")  # 东风镇 乡镇党委书记
    responsible = await cadre_id(roster, "GB001")
    pid = await raise_problem(roster, "DEMO0001", "GB001", local("2026-11-10 10:00"))
    # before the 16th the meeting has not met on it
    with pytest.raises(ActionRefused) as refused:
        await act(
            roster,
            SETTINGS,
            secretary,
            pid,
            "decide",
            local("2026-11-12 10:00"),
            responsible_id=responsible,
            due_days=15,
        )
    assert refused.value.code == "not_yet_met"
    assert "11月16日专题党委会议程" in refused.value.text("zh_CN")
    done = await act(
        roster,
        SETTINGS,
        secretary,
        pid,
        "decide",
        local("2026-11-16 15:00"),
        responsible_id=responsible,
        due_days=15,
    )
    row = await problem(roster, pid)
    assert (row.status, row.responsible_id, str(row.due_on), str(row.meeting_on)) == (
        "decided",
        responsible,
        "2026-12-01",
        "2026-11-16",
    )
    assert row.decided_at is not None and done.move.meeting_on.isoformat() == "2026-11-16"
    with pytest.raises(ActionRefused, match="note_required"):
        await act(roster, SETTINGS, secretary, pid, "close", local("2026-11-20 10:00"), note=" ")
    await act(roster, SETTINGS, secretary, pid, "close", local("2026-11-20 10:00"), note="已更换水管")
    row = await problem(roster, pid)
    assert (row.status, row.resolution) == ("closed", "已更换水管")
    assert await events(roster, pid) == [
        ("escalate", "raised", "escalated", responsible),
        ("decide", "escalated", "decided", secretary),
        ("close", "decided", "closed", secretary),
    ]


async def test_overdue_then_county_with_the_daily_check(roster: Database):
    secretary = await cadre_id(roster, "GB012")
    pid = await raise_problem(roster, "DEMO0002", "GB001", local("2026-11-02 10:00"))
    await act(
        roster,
        SETTINGS,
        secretary,
        pid,
        "decide",
        local("2026-11-16 15:00"),
        responsible_id=secretary,
        due_days=7,
    )
    assert await daily_check(roster, SETTINGS, local("2026-11-23 09:00")) == 0  # due today
    assert await daily_check(roster, SETTINGS, local("2026-11-24 00:10")) == 1
    assert (await problem(roster, pid)).status == "overdue"
    assert await daily_check(roster, SETTINGS, local("2026-11-24 09:00")) == 0  # once
    assert await daily_check(roster, SETTINGS, local("2026-12-01 23:00")) == 0  # the next meeting is today
    assert await daily_check(roster, SETTINGS, local("2026-12-02 00:10")) == 1
    assert (await problem(roster, pid)).status == "county"
    assert (await events(roster, pid))[-2:] == [
        ("overdue", "decided", "overdue", None),
        ("county", "overdue", "county", None),
    ]


async def test_permissions_other_township_plain_cadre_and_specialist(roster: Database):
    pid = await raise_problem(roster, "DEMO0003", "GB001", local("2026-11-02 10:00"))
    other_secretary = await cadre_id(roster, "GB025")  # 福顺乡
    specialist = await cadre_id(roster, "GB013")  # 东风镇 扶贫专干
    raiser = await cadre_id(roster, "GB001")
    when = local("2026-11-16 15:00")
    with pytest.raises(ActionRefused) as refused:
        await act(
            roster, SETTINGS, other_secretary, pid, "decide", when, responsible_id=other_secretary, due_days=7
        )
    assert refused.value.code == "not_found"  # not even told it exists
    for cadre in (specialist, raiser):
        with pytest.raises(ActionRefused) as refused:
            await act(roster, SETTINGS, cadre, pid, "decide", when, responsible_id=raiser, due_days=7)
        assert refused.value.code == "not_allowed"
    # a responsible cadre from another township is refused too
    with pytest.raises(ActionRefused, match="responsible_elsewhere"):
        await act(
            roster,
            SETTINGS,
            await cadre_id(roster, "GB012"),
            pid,
            "decide",
            when,
            responsible_id=other_secretary,
            due_days=7,
        )
    assert (await problem(roster, pid)).status == "escalated"
    assert len(await events(roster, pid)) == 1


async def test_merge_and_reopen(roster: Database):
    secretary = await cadre_id(roster, "GB012")
    first = await raise_problem(roster, "DEMO0004", "GB001", local("2026-11-02 10:00"))
    duplicate = await raise_problem(roster, "DEMO0004", None, local("2026-11-03 10:00"))
    elsewhere = await raise_problem(roster, "DEMO0070", "GB014", local("2026-11-03 10:00"))  # 福顺乡
    # another township's problem is not a target, and its existence is not confirmed
    with pytest.raises(ActionRefused, match="not_found"):
        await act(
            roster, SETTINGS, secretary, duplicate, "merge", local("2026-11-16 15:00"), into_id=elsewhere
        )
    with pytest.raises(ActionRefused, match="merge_self"):
        await act(
            roster, SETTINGS, secretary, duplicate, "merge", local("2026-11-16 15:00"), into_id=duplicate
        )
    await act(roster, SETTINGS, secretary, duplicate, "merge", local("2026-11-16 15:00"), into_id=first)
    row = await problem(roster, duplicate)
    assert (row.status, row.merged_into_id) == ("merged", first)
    await act(
        roster, SETTINGS, secretary, duplicate, "reopen", local("2026-11-18 09:00"), note="不是同一件事"
    )
    row = await problem(roster, duplicate)
    assert (row.status, row.merged_into_id, row.closed_at) == ("escalated", None, None)
    assert row.escalated_at == local("2026-11-18 09:00")


# --- digest, minutes, tally, overdue ---------------------------------------------------------------------------


async def queue_for_digest(db: Database) -> None:
    """东风镇: two problems from visits, one from an SMS, one decided; 福顺乡 one (not in 东风镇's digest)."""
    secretary = await cadre_id(db, "GB012")
    await raise_problem(db, "DEMO0001", "GB001", local("2026-11-03 10:00"), "住房", "屋顶漏雨，申请危房改造")
    decided = await raise_problem(
        db, "DEMO0023", "GB004", local("2026-11-05 10:00"), "医疗", "慢性病报销手续不清楚"
    )
    await raise_problem(db, "DEMO0024", None, local("2026-11-20 10:00"), "其他", "村里路灯坏了半年没人修")
    await raise_problem(db, "DEMO0070", "GB014", local("2026-11-20 10:00"))
    await act(
        db,
        SETTINGS,
        secretary,
        decided,
        "decide",
        local("2026-11-16 15:00"),
        responsible_id=await cadre_id(db, "GB004"),
        due_days=30,
    )


async def test_the_digest_counts_problems_solved_on_the_spot_beside_the_rate(roster: Database):
    """The digest's 化解率 leaves out problems solved on the spot, and nothing said how many there were."""
    from storage.models import Problem

    await queue_for_digest(roster)
    async with roster.session() as s:
        for at in ("2026-11-05 10:00", "2026-10-30 10:00"):  # this month, and the month before
            s.add(
                Problem(
                    household_id=1,
                    source="visit",
                    category="饮水",
                    description="水龙头坏了",
                    resolved_on_site=True,
                    resolution="当场换好",
                    status="closed",
                    created_at=local(at),
                    closed_at=local(at),
                )
            )
        township = (await s.execute(select(Township).where(Township.name == "东风镇"))).scalar_one()
    digest = await build_digest(roster, SETTINGS, township, local("2026-11-30 08:00"))
    assert digest.on_site_in_month == 1 and digest.open == 3  # on the spot: never in the queue
    assert "- 本月走访时当场化解：1 个（不计入化解率）" in digest_text(digest, "zh_CN")
    assert "Solved on the spot during visits this month: 1 (not in the rate)" in digest_text(digest, "en")


@pytest.mark.parametrize("locale", ["zh_CN", "en"])
async def test_digest_matches_the_golden_file(roster: Database, locale: str):
    await queue_for_digest(roster)
    async with roster.session() as s:
        township = (await s.execute(select(Township).where(Township.name == "东风镇"))).scalar_one()
    digest = await build_digest(roster, SETTINGS, township, local("2026-11-30 08:00"))
    assert (digest.meeting.isoformat(), digest.new, digest.open, digest.overdue) == ("2026-12-01", 1, 3, 0)
    text = digest_text(digest, locale)
    golden = GOLDEN / f"digest.{locale}.md"
    if not golden.exists():  # first run writes it; review and commit it
        golden.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == golden.read_text(encoding="utf-8")
    assert "福顺乡" not in text and "DEMO0070" not in text
    sms = digest_sms(digest, locale)
    assert segments(sms) == 1, sms
    # the worst case still fits one segment: a long township name and three-digit counts
    from dataclasses import replace

    crowded = replace(
        digest, township="阿克塞哈萨克族乡", new=120, open=999, overdue=150, closed_in_month=300
    )
    for telegram in (True, False):
        assert segments(digest_sms(crowded, locale, telegram)) == 1, digest_sms(crowded, locale, telegram)
    assert ("Telegram" in digest_sms(digest, locale, False)) is False
    for specialist in (True, False):
        assert segments(digest_sms(crowded, locale, False, specialist=specialist)) == 1


async def test_digest_sms_does_not_tell_the_specialist_to_ask_the_specialist(roster: Database):
    """Issue 16: the SMS the 扶贫专干 got said 清单可向扶贫专干索取; the secretary is told to ask them, the
    specialist to have the list ready. (The English SMS has no room for either in one UCS-2 segment.)"""
    locale = "zh_CN"
    await queue_for_digest(roster)
    async with roster.session() as s:
        township = (await s.execute(select(Township).where(Township.name == "东风镇"))).scalar_one()
    digest = await build_digest(roster, SETTINGS, township, local("2026-11-30 08:00"))
    to_secretary = digest_sms(digest, locale, False)
    to_specialist = digest_sms(digest, locale, False, specialist=True)
    assert "扶贫专干" in to_secretary
    assert "扶贫专干" not in to_specialist
    assert to_specialist != to_secretary


async def test_minutes_tally_and_overdue_through_the_cli(roster: Database, db_path: Path):
    """`zoufang minutes`, `tally` and `report overdue` in real processes (their end-to-end test)."""
    await queue_for_digest(roster)
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    minutes = ok(
        zoufang_process(db_path.parent, "minutes", "--township", "东风镇", "--meeting", "2026-11-16", env=env)
    ).stdout
    assert "东风镇扶贫工作专题党委会 会议纪要" in minutes
    assert "慢性病报销手续不清楚" in minutes and "2026-12-16 前办结" in minutes
    assert "屋顶漏雨" not in minutes  # not decided at that meeting
    empty = ok(
        zoufang_process(db_path.parent, "minutes", "--township", "东风镇", "--meeting", "2026-11-01", env=env)
    ).stdout
    assert "本次会议没有记录决定事项" in empty
    html = ok(
        zoufang_process(
            db_path.parent,
            "minutes",
            "--township",
            "东风镇",
            "--meeting",
            "2026-11-16",
            "--format",
            "html",
            env=env,
        )
    ).stdout
    assert html.startswith("<!doctype html>") and "慢性病报销手续不清楚" in html

    tally = ok(
        zoufang_process(db_path.parent, "tally", "--township", "东风镇", "--month", "2026-11", env=env)
    ).stdout
    assert "本月已化解（销号）0 个，未化解 3 个" in tally
    out = db_path.parent / "tally.xlsx"
    ok(
        zoufang_process(
            db_path.parent,
            "tally",
            "--township",
            "东风镇",
            "--month",
            "2026-11",
            "--format",
            "xlsx",
            "--output",
            str(out),
            env=env,
        )
    )
    from openpyxl import load_workbook

    sheet = load_workbook(out).active
    assert [c.value for c in sheet[1]][:3] == ["编号", "行政村", "户编号"]
    rows = [[c.value for c in row] for row in sheet.iter_rows()]
    assert rows[4] == [None] * len(rows[0])  # the three unresolved problems, an empty row, then the counts
    assert rows[5][0].startswith("本月已化解（销号）") and "化解率" in rows[5][0] and len(rows) == 8
    assert rows[6][0].startswith("化解率 = 本月销号的上报问题")  # the rate's definition, right under it
    assert rows[7][0] == "本月走访时当场化解 0 个（不计入化解率）。"  # and what it leaves out, beside it

    overdue = ok(zoufang_process(db_path.parent, "report", "overdue", env=env)).stdout
    assert "没有逾期过会的问题" in overdue


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("digest", "--township", "西山乡"), "东风镇、福顺乡"),
        (("minutes", "--township", "东风镇", "--meeting", "11-16"), "YYYY-MM-DD"),
        (("tally", "--township", "东风镇", "--month", "2026Q4"), "YYYY-MM"),
        (("meeting", "set", "东风镇", "--days", "40"), "1,16"),
        (("report", "overdue", "--county", "无此县"), "示范县"),
    ],
)
def test_bad_input_is_one_line(roster: Database, db_path: Path, args: tuple[str, ...], expected: str):
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    # digest's one real-process test (the other commands have theirs below and above)
    result = (zoufang_process if args[0] == "digest" else zoufang)(db_path.parent, *args, env=env)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.stderr


def test_meeting_calendar_set_and_list(roster: Database, db_path: Path):
    """`zoufang meeting set` and `meeting list` in real processes (their end-to-end test)."""
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    ok(zoufang_process(db_path.parent, "meeting", "set", "福顺乡", "--days", "10，25", env=env))
    listed = ok(zoufang_process(db_path.parent, "meeting", "list", env=env)).stdout
    assert "福顺乡：每月 10,25 日" in listed
    assert "东风镇：每月 1,16 日（默认）" in listed


async def test_a_changed_calendar_moves_the_agenda(roster: Database, db_path: Path):
    async with roster.session() as s:
        township = (await s.execute(select(Township).where(Township.name == "东风镇"))).scalar_one()
        township.meeting_days = "10,25"
    secretary = await cadre_id(roster, "GB012")
    pid = await raise_problem(roster, "DEMO0005", "GB001", local("2026-11-12 10:00"))
    with pytest.raises(ActionRefused) as refused:
        await act(
            roster,
            SETTINGS,
            secretary,
            pid,
            "decide",
            local("2026-11-16 15:00"),
            responsible_id=secretary,
            due_days=7,
        )
    assert refused.value.params["meeting"].isoformat() == "2026-11-25"
    await act(
        roster,
        SETTINGS,
        secretary,
        pid,
        "decide",
        local("2026-11-25 15:00") + timedelta(hours=1),
        responsible_id=secretary,
        due_days=7,
    )
    assert str((await problem(roster, pid)).meeting_on) == "2026-11-25"


async def test_minutes_count_a_problem_decided_and_closed_at_one_meeting_once(
    roster: Database, db_path: Path
):
    secretary = await cadre_id(roster, "GB012")
    pid = await raise_problem(roster, "DEMO0001", "GB001", local("2026-11-10 10:00"), "住房", "屋顶漏雨")
    other = await raise_problem(roster, "DEMO0002", "GB001", local("2026-11-10 11:00"), "医疗", "报销不清楚")
    when = local("2026-11-16 15:00")
    for problem_id in (pid, other):
        await act(
            roster, SETTINGS, secretary, problem_id, "decide", when, responsible_id=secretary, due_days=15
        )
    await act(roster, SETTINGS, secretary, pid, "close", local("2026-11-16 16:00"), note="当场协调修好")
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    minutes = ok(
        zoufang(db_path.parent, "minutes", "--township", "东风镇", "--meeting", "2026-11-16", env=env)
    ).stdout
    assert "本次会议研究问题 2 项" in minutes  # was 3: the decided-and-closed one counted twice
    assert minutes.count(f"问题 #{pid}（") == 1 and minutes.count(f"问题 #{other}（") == 1
    first = minutes[minutes.index(f"问题 #{pid}（") : minutes.index(f"问题 #{other}（")]
    assert "决定：由" in first and "销号：当场协调修好" in first  # both moves under the one problem
    assert "2. 问题 #" in minutes and "3. 问题 #" not in minutes


# --- delivery to the supervision centre (督查指挥中心: GB028 in the demo roster) ------------------------------------


async def outbox_rows(db: Database) -> list[tuple[str, str, str, str]]:
    async with db.reading() as s:
        rows = await s.execute(
            select(OutboxMessage.channel, OutboxMessage.to, OutboxMessage.kind, OutboxMessage.body).order_by(
                OutboxMessage.id
            )
        )
        return [tuple(r) for r in rows]


async def bind_centre(db: Database, chat: int = 5550028) -> str:
    """GB028 bound in Telegram; their phone."""
    async with db.session() as s:
        centre = (await s.execute(select(Cadre).where(Cadre.code == "GB028"))).scalar_one()
        s.add(TelegramAccount(user_id=chat, cadre_id=centre.id, chat_id=chat))
        return centre.phone


async def test_minutes_send_reaches_the_supervision_centre_once(roster: Database, db_path: Path):
    await queue_for_digest(roster)  # one problem decided at the 2026-11-16 meeting
    phone = await bind_centre(roster)
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    args = ("minutes", "--township", "东风镇", "--meeting", "2026-11-16", "--send")
    first = ok(zoufang(db_path.parent, *args, env=env)).stdout
    assert "东风镇 2026-11-16 会议纪要已放入发件箱：督查指挥中心 1 人，2 条" in first
    sent = [r for r in await outbox_rows(roster) if r[2].startswith("minutes")]
    assert [(channel, to, kind) for channel, to, kind, _ in sent] == [
        ("telegram", "5550028", "minutes"),
        ("sms", phone, "minutes/sms"),
    ]
    assert "慢性病报销手续不清楚" in sent[0][3] and "会议纪要" in sent[0][3]  # the whole minutes
    assert (
        sent[1][3]
        == "【示范县扶贫办】东风镇11月16日专题党委会纪要：研究问题1项，决定1项，销号0项。全文已发Telegram。"
    )
    again = ok(zoufang(db_path.parent, *args, env=env)).stdout
    assert "已于" in again and "不再重复发送" in again
    assert len([r for r in await outbox_rows(roster) if r[2].startswith("minutes")]) == 2  # recorded once


async def test_overdue_send_lists_the_county_problems_for_the_centre(roster: Database, db_path: Path):
    secretary = await cadre_id(roster, "GB012")
    pid = await raise_problem(
        roster, "DEMO0002", "GB001", local("2026-11-02 10:00"), "住房", "危房改造没动工"
    )
    when = local("2026-11-16 15:00")
    await act(roster, SETTINGS, secretary, pid, "decide", when, responsible_id=secretary, due_days=7)
    await daily_check(roster, SETTINGS, local("2026-11-24 00:10"))
    await daily_check(roster, SETTINGS, local("2026-12-02 00:10"))
    assert (await problem(roster, pid)).status == "county"
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    out = ok(zoufang(db_path.parent, "report", "overdue", "--send", env=env)).stdout
    assert (
        "示范县" in out and "超期问题清单已放入发件箱：督查指挥中心 1 人，1 条" in out
    )  # not bound: SMS only
    [(channel, _, kind, body)] = [r for r in await outbox_rows(roster) if r[2].startswith("overdue")]
    assert (channel, kind) == ("sms", "overdue/sms")
    assert body.startswith("【示范县扶贫办】督查：超期未办结问题1项，涉及1个乡镇。")
    await bind_centre(roster)
    again = ok(zoufang(db_path.parent, "report", "overdue", "--send", env=env)).stdout
    assert "不再重复发送" in again  # once a day


async def test_sending_to_a_county_without_a_supervision_centre_is_one_line(roster: Database, db_path: Path):
    async with roster.session() as s:
        centre = (await s.execute(select(Cadre).where(Cadre.code == "GB028"))).scalar_one()
        centre.role = "乡镇包保干部"
    env = clean_env(db_path.parent, ZOUFANG_DB_URL=f"sqlite+aiosqlite:///{db_path}")
    done = zoufang(
        db_path.parent, "minutes", "--township", "东风镇", "--meeting", "2026-11-16", "--send", env=env
    )
    assert done.returncode == 1 and done.stderr.strip().count("\n") == 0
    assert "示范县没有登记督查指挥中心的人员" in done.stderr
    assert await outbox_rows(roster) == []
