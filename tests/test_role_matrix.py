"""Who may do what (issue 12, "Access"): every role × every bot command, every callback kind, forged ones too,
through the real webhook (the real aiogram client against the fake Bot API over HTTP), and the CLI's township
scope. The policy is the MATRIX below, in one place; the test walks it once and lists every cell that differs.

Roles are the roster's (survey/periods.py). The county office (县扶贫办) has no role in the code: it is the
operator of the CLI, whose reports are scoped by --township/--village, not by person (CLI_SCOPE below).
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import select

from bot.app import make_app
from bot.flows.escalation import ActionRefused, act
from bot.flows.visit import VisitFlow
from messages import render
from storage.db import Database
from storage.models import Base, Cadre, Household, Village, WorkLogEntry, utcnow
from storage.visits import cadre_by_code, household_by_code
from survey.meetings import Calendar
from survey.script import load_script
from tests.cli_support import clean_env, zoufang
from tests.fake_telegram import FakeTelegram, callback_update, message_update
from tests.report_data import TZ, add_poll, add_visit
from tests.test_escalation import raise_problem
from tests.test_telegram import Webhook, invite_code, settings_for

# --- who ---------------------------------------------------------------------------------------------------

# role → (Telegram user, 干部编号 in the demo roster). A township: 东风镇; B township: 福顺乡.
USERS: dict[str, tuple[int, str | None]] = {
    "cadre": (7301, "GB002"),  # 帮扶责任人, helper of 新华村's households
    "first_secretary": (7302, "GB001"),  # 第一书记, 新华村
    "village_secretary": (7303, "GB003"),  # 村党支部书记, 新华村
    "township_secretary": (7304, "GB012"),  # 乡镇党委书记, 东风镇
    "other_township_secretary": (7305, "GB025"),  # 乡镇党委书记, 福顺乡
    "specialist": (7306, "GB013"),  # 扶贫专干, 东风镇
    "supervision": (7307, "GB028"),  # 督查指挥中心
    "stranger": (0, None),  # not bound: a fresh Telegram user for every case
}
ROLES = tuple(USERS)


# --- what they see -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Allowed:
    """Allowed: the reply contains `shows`; `writes`: the database changes (else nothing may change);
    `buttons`: the inline buttons of the last message shown, when given."""

    shows: str
    writes: bool = False
    buttons: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Refused:
    """Refused: the reply is exactly this refusal, and nothing changed in the database."""

    reason: str
    params: dict[str, str] = field(default_factory=dict)


def ok(shows: str, **kw: Any) -> Allowed:
    return Allowed(shows, **kw)


def wrote(shows: str, **kw: Any) -> Allowed:
    return Allowed(shows, writes=True, **kw)


def no(reason: str, **params: str) -> Refused:
    return Refused(reason, params)


STRANGER = no("stranger")  # a message gets the onboarding refusal; a tap only stops the spinner
NOT_IN_SCOPE = no("not_in_scope")
NO_VISIT = no("no_visit")
STALE = no("stale")
NOT_ALLOWED = no("not_allowed")
IGNORED = no("ignored")  # nothing at all is sent


def nf(placeholder: str) -> Refused:
    return no("not_found", id=placeholder)


Cell = Allowed | Refused | None  # None: not applicable


def row(default: Cell, **cells: Cell) -> dict[str, Cell]:
    """One action's expectations: `default` for every role not named (the stranger is refused unless named)."""
    unknown = set(cells) - set(ROLES)
    assert not unknown, unknown
    return {role: cells.get(role, STRANGER if role == "stranger" else default) for role in ROLES}


def own_visit(cell: Cell) -> dict[str, Cell]:
    """A button of the role's own visit: the specialist and the centre have no households, hence no visit."""
    return row(cell, specialist=None, supervision=None)


READ_ONLY: tuple[str, ...] = ()
SECRETARY_BUTTONS = ("决定", "合并")
PICKER = "请选择要走访的户（共 {count} 户"
NOBODY = "没有找到符合的户"

# --- the policy --------------------------------------------------------------------------------------------
# action → the steps sent ("/…" or text: a message; "tap …": a button), then the expectation per role.
# Placeholders: {home} a household in the role's scope, {draft} the role's own unfinished visit, {other_draft}
# another cadre's (GB005's) visit, {p_*} problems of 东风镇 (p_b: of 福顺乡), {gb002}/{gb015} cadre ids.
# A two-step action (tap, then the note) stops at the first reply that is the expected refusal.

MATRIX: dict[str, tuple[tuple[str, ...], dict[str, Cell]]] = {
    # commands
    "/start": (("/start",), row(ok("您好。发送 /visit 开始走访"))),
    "/start BADCODE": (("/start 12345678",), row(ok("邀请码无效"), stranger=ok("邀请码无效"))),
    "/whoami": (
        ("/whoami",),
        row(
            ok("干部编号"),
            cadre=ok("（帮扶责任人），干部编号 GB002，东风镇，负责 新华村"),
            first_secretary=ok("（第一书记），干部编号 GB001"),
            village_secretary=ok("（村党支部书记），干部编号 GB003"),
            township_secretary=ok("（乡镇党委书记），干部编号 GB012，东风镇"),
            other_township_secretary=ok("（乡镇党委书记），干部编号 GB025，福顺乡"),
            specialist=ok("（扶贫专干），干部编号 GB013"),
            supervision=ok("（督查指挥中心），干部编号 GB028"),
        ),
    ),
    "/help": (("/help",), row(ok("zoufang 入户走访助手"))),
    "/lang zh": (("/lang zh",), row(wrote("已切换为中文"))),
    "/visit": (
        ("/visit",),
        row(
            ok(NOBODY),
            cadre=ok(PICKER.format(count=22)),
            first_secretary=ok(PICKER.format(count=22)),
            village_secretary=ok(PICKER.format(count=22)),
            township_secretary=ok(PICKER.format(count=66)),
            other_township_secretary=ok(PICKER.format(count=66)),
        ),
    ),
    "/todo": (
        ("/todo",),
        row(
            ok("没有入户走访考核"),
            cadre=ok("入户：0/22"),
            first_secretary=ok("入户：0/22"),
            village_secretary=ok("入户：0/22"),
            township_secretary=ok("入户：0/66"),
            other_township_secretary=ok("入户：0/66"),
        ),
    ),
    "/log": (
        ("/log",),
        row(ok("本月（"), cadre=ok("GB002自己的日志")),
    ),
    "/queue": (
        ("/queue",),
        row(
            ok("您提出的问题目前都已办结"),
            first_secretary=ok("您提出的未办结问题共 2 个"),
            township_secretary=ok("东风镇未办结问题共 5 个"),
            specialist=ok("东风镇未办结问题共 5 个"),
            other_township_secretary=ok("福顺乡未办结问题共 1 个"),
        ),
    ),
    "/problem A": (
        ("/problem {p_open}",),
        row(
            nf("{p_open}"),
            township_secretary=ok("新华村水管冻裂", buttons=SECRETARY_BUTTONS),
            specialist=ok("新华村水管冻裂", buttons=READ_ONLY),
            first_secretary=ok("新华村水管冻裂", buttons=READ_ONLY),  # raised it
        ),
    ),
    "/problem B (other township)": (
        ("/problem {p_b}",),
        row(nf("{p_b}"), other_township_secretary=ok("福顺乡的秘密问题", buttons=SECRETARY_BUTTONS)),
    ),
    "/resume": (("/resume",), row(ok("主要致贫原因"), specialist=NO_VISIT, supervision=NO_VISIT)),
    # the visit's buttons
    "p: picker page": (
        ("tap p:0",),
        row(
            ok(NOBODY),
            cadre=ok(PICKER.format(count=22)),
            first_secretary=ok(PICKER.format(count=22)),
            village_secretary=ok(PICKER.format(count=22)),
            township_secretary=ok(PICKER.format(count=66)),
            other_township_secretary=ok(PICKER.format(count=66)),
        ),
    ),
    "h: own household": (
        ("tap h:{home}",),
        row(wrote("请发送您当前的位置"), specialist=NOT_IN_SCOPE, supervision=NOT_IN_SCOPE),
    ),
    "h: same township, other village (forged)": (
        ("tap h:{yongan}",),
        row(NOT_IN_SCOPE, township_secretary=wrote("请发送您当前的位置")),
    ),
    "h: other township (forged)": (
        ("tap h:{qianjin}",),
        row(NOT_IN_SCOPE, other_township_secretary=wrote("请发送您当前的位置")),
    ),
    "a: own visit": (
        ("tap a:{draft}:main_cause:c0",),
        own_visit(wrote("享受的兜底保障")),
    ),
    "t: own visit": (
        ("tap t:{draft}:support:0:1",),
        own_visit(ok("[buttons edited]")),
    ),
    "d: own visit": (
        ("tap d:{draft}:support",),
        own_visit(wrote("不愁吃")),
    ),
    "c: own visit": (
        ("tap c:{draft}:basic",),
        own_visit(ok("不愁吃")),
    ),
    "a: another cadre's visit (forged)": (("tap a:{other_draft}:main_cause:c0",), row(NO_VISIT)),
    "t: another cadre's visit (forged)": (("tap t:{other_draft}:main_cause:0:1",), row(STALE)),
    "d: another cadre's visit (forged)": (("tap d:{other_draft}:main_cause",), row(NO_VISIT)),
    "c: another cadre's visit (forged)": (("tap c:{other_draft}:basic",), row(NO_VISIT)),
    "/cancel": (("/cancel",), row(wrote("确定"), specialist=NO_VISIT, supervision=NO_VISIT)),
    # the township queue's buttons
    "eq: queue page": (
        ("tap eq:0",),
        row(
            ok("您提出的问题目前都已办结"),
            first_secretary=ok("您提出的未办结问题共 2 个"),
            township_secretary=ok("东风镇未办结问题共 5 个"),
            specialist=ok("东风镇未办结问题共 5 个"),
            other_township_secretary=ok("福顺乡未办结问题共 1 个"),
        ),
    ),
    "eo: card": (
        ("tap eo:{p_open}",),
        row(
            nf("{p_open}"),
            township_secretary=ok("新华村水管冻裂", buttons=SECRETARY_BUTTONS),
            specialist=ok("新华村水管冻裂", buttons=READ_ONLY),
            first_secretary=ok("新华村水管冻裂", buttons=READ_ONLY),
        ),
    ),
    "eo: other township's card (forged)": (
        ("tap eo:{p_b}",),
        row(nf("{p_b}"), other_township_secretary=ok("福顺乡的秘密问题", buttons=SECRETARY_BUTTONS)),
    ),
    "ed: decide, pick responsible": (
        ("tap ed:{p_open}",),
        row(
            nf("{p_open}"),
            township_secretary=ok("请选择责任人"),
            specialist=NOT_ALLOWED,
            first_secretary=NOT_ALLOWED,
        ),
    ),
    "ed: picker page 2": (
        ("tap ed:{p_open}:1",),
        row(
            nf("{p_open}"),
            township_secretary=ok("第 2/2 页"),
            specialist=NOT_ALLOWED,
            first_secretary=NOT_ALLOWED,
        ),
    ),
    "ed: other township's problem (forged)": (
        ("tap ed:{p_b}",),
        row(nf("{p_b}"), other_township_secretary=ok("请选择责任人")),
    ),
    "er: responsible of the township": (
        ("tap er:{p_open}:{gb002}",),
        row(
            nf("{p_open}"),
            township_secretary=ok("请选择办结期限"),
            specialist=NOT_ALLOWED,
            first_secretary=NOT_ALLOWED,
        ),
    ),
    "er: responsible of another township (forged)": (
        ("tap er:{p_open}:{gb015}",),
        row(
            nf("{p_open}"),
            township_secretary=no("responsible_elsewhere"),
            specialist=NOT_ALLOWED,
            first_secretary=NOT_ALLOWED,
        ),
    ),
    "ew: decide with due date": (
        ("tap ew:{p_decide}:{gb002}:7",),
        row(
            nf("{p_decide}"),
            township_secretary=wrote("✅ 已决定。"),
            specialist=NOT_ALLOWED,
            first_secretary=NOT_ALLOWED,
        ),
    ),
    "ew: responsible of another township (forged)": (
        ("tap ew:{p_open}:{gb015}:7",),
        row(
            nf("{p_open}"),
            # the move's values are checked before the actor's right: a refusal either way
            township_secretary=no("responsible_elsewhere"),
            specialist=no("responsible_elsewhere"),
            first_secretary=no("responsible_elsewhere"),
        ),
    ),
    "ew: other township's problem (forged)": (
        ("tap ew:{p_b}:{gb015}:7",),
        row(nf("{p_b}"), other_township_secretary=wrote("✅ 已决定。")),
    ),
    "ec: close (销号) + note": (
        ("tap ec:{p_close}", "已更换水管"),
        row(nf("{p_close}"), township_secretary=wrote("✅ 已销号。"), specialist=NOT_ALLOWED),
    ),
    "ec: other township's problem (forged)": (
        ("tap ec:{p_b}", "已修好"),
        row(nf("{p_b}"), other_township_secretary=wrote("✅ 已销号。")),
    ),
    "eu: reopen + note": (
        ("tap eu:{p_reopen}", "村民反映又坏了"),
        row(nf("{p_reopen}"), township_secretary=wrote("已重新打开"), specialist=NOT_ALLOWED),
    ),
    "em: merge + number": (
        ("tap em:{p_merge}", "#{p_into}"),
        row(nf("{p_merge}"), township_secretary=wrote("✅ 已合并。"), specialist=NOT_ALLOWED),
    ),
    "em: into another township's problem (forged)": (
        ("tap em:{p_open}", "#{p_b}"),
        row(
            nf("{p_open}"),
            township_secretary=nf("{p_b}"),
            specialist=NOT_ALLOWED,
            first_secretary=NOT_ALLOWED,
        ),
    ),
    # a group chat: the bot answers nobody there (its members would read a cadre's households and problems),
    # and takes nothing said there as a visit's answer
    "/todo in a group chat": (("group /todo",), row(IGNORED, stranger=IGNORED)),
    "/problem in a group chat": (("group /problem {p_open}",), row(IGNORED, stranger=IGNORED)),
    "text in a group chat": (("group 3",), row(IGNORED, stranger=IGNORED)),
    "eo: in a group chat": (("group tap eo:{p_open}",), row(IGNORED, stranger=IGNORED)),
}

# Text that only these roles may ever be shown (checked on every reply of every case).
SECRETS = {
    "新华村水管冻裂": {"township_secretary", "specialist", "first_secretary"},  # p_open's description
    "福顺乡的秘密问题": {"other_township_secretary"},  # p_b's
    "GB002自己的日志": {"cadre"},
    "GB005的日志": set(),
}


# --- the world ---------------------------------------------------------------------------------------------


@dataclass
class World:
    values: dict[str, int] = field(default_factory=dict)
    homes: dict[str, int] = field(default_factory=dict)
    drafts: dict[str, int] = field(default_factory=dict)

    def fill(self, text: str, role: str) -> str:
        extra = {"home": self.homes.get(role, self.values["xinhua"]), "draft": self.drafts.get(role, 0)}
        return text.format(**self.values, **extra)


async def _ids(db: Database, query: Any) -> list[Any]:
    async with db.reading() as s:
        return list((await s.execute(query)).scalars())


async def _codes_in(db: Database, village: str) -> list[str]:
    query = (
        select(Household.code)
        .join(Village, Village.id == Household.village_id)
        .where(Village.name == village)
        .order_by(Household.code)
    )
    return await _ids(db, query)


async def _household_id(db: Database, code: str) -> int:
    return (await _ids(db, select(Household.id).where(Household.code == code)))[0]


async def _cadre_id(db: Database, code: str) -> int:
    return (await _ids(db, select(Cadre.id).where(Cadre.code == code)))[0]


async def _draft_at_main_cause(flow: VisitFlow, db: Database, cadre_code: str, household: str) -> int:
    """An unfinished visit of this cadre, standing at 主要致贫原因 (a one-of question with buttons)."""
    async with db.reading() as s:
        cadre, home = await cadre_by_code(s, cadre_code), await household_by_code(s, household)
    outcome = await flow.start(cadre, home, channel="telegram")  # type: ignore[arg-type]
    for text in ("跳过", "3", "2"):
        outcome = await flow.answer(outcome.visit_id, text)
    assert "主要致贫原因" in outcome.text, outcome.text
    return outcome.visit_id


async def _log(db: Database, cadre_code: str, text: str) -> None:
    cadre = await _cadre_id(db, cadre_code)
    async with db.session() as s:
        s.add(WorkLogEntry(cadre_id=cadre, day=datetime.now(TZ).date(), kind="visit", text=text))


async def build_world(db: Database, settings: Any) -> World:
    w = World()
    xinhua, yongan, hongqi = [await _codes_in(db, v) for v in ("新华村", "永安村", "红旗村")]
    fushun, qianjin = [await _codes_in(db, v) for v in ("福顺村", "前进村")]
    past = utcnow() - timedelta(days=40)  # a meeting has met since
    w.values = {
        "xinhua": await _household_id(db, xinhua[0]),
        "yongan": await _household_id(db, yongan[0]),
        "qianjin": await _household_id(db, qianjin[0]),
        "gb002": await _cadre_id(db, "GB002"),
        "gb015": await _cadre_id(db, "GB015"),
        "p_open": await raise_problem(db, xinhua[0], "GB001", past, "饮水", "新华村水管冻裂"),
        "p_decide": await raise_problem(db, xinhua[1], "GB001", past),
        "p_close": await raise_problem(db, hongqi[2], "GB007", past),
        "p_reopen": await raise_problem(db, hongqi[3], "GB007", past),
        "p_merge": await raise_problem(db, yongan[4], "GB004", past),
        "p_into": await raise_problem(db, yongan[5], "GB004", past),
        "p_b": await raise_problem(db, fushun[0], "GB014", past, "住房", "福顺乡的秘密问题"),
    }
    secretary, now = await _cadre_id(db, "GB012"), utcnow()
    for problem in ("p_close", "p_reopen"):
        pid = w.values[problem]
        await act(db, settings, secretary, pid, "decide", now, responsible_id=w.values["gb002"], due_days=7)
    await act(db, settings, secretary, w.values["p_reopen"], "close", now, note="已修好")
    # each visiting role: its own unfinished visit, and another household of its scope to pick
    flow = VisitFlow(db, load_script(), settings)
    scope = {
        "cadre": xinhua[2:4],
        "first_secretary": xinhua[4:6],
        "village_secretary": xinhua[6:8],
        "township_secretary": hongqi[0:2],
        "other_township_secretary": fushun[1:3],
    }
    for role, (draft, home) in scope.items():
        w.drafts[role] = await _draft_at_main_cause(flow, db, USERS[role][1] or "", draft)
        w.homes[role] = await _household_id(db, home)
    w.values["other_draft"] = await _draft_at_main_cause(flow, db, "GB005", yongan[1])
    await _log(db, "GB002", "GB002自己的日志")
    await _log(db, "GB005", "GB005的日志")
    return w


# --- running a case ----------------------------------------------------------------------------------------

# The tables a chat can write (a stranger's refusal count and the updates' dedupe keys left out: bookkeeping).
# The roster's places, the SMS side and the scheduler's tables are not: reading them every case costs time.
WATCHED = (
    "cadres", "households", "invites", "telegram_accounts", "visits", "answers", "problems", "problem_events",
    "work_log_entries", "polls", "outbox_messages",
)  # fmt: skip
TABLES = [Base.metadata.tables[name] for name in WATCHED]


async def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    return await db.run(_rows, write=False)  # one hop to the database's thread on SQLite


def _rows(conn: Any) -> dict[str, list[tuple[Any, ...]]]:
    return {t.name: sorted(map(tuple, conn.execute(select(t)).all())) for t in TABLES}


GROUP = -1001234567


class Walk:
    """Posts each role's messages and taps through the webhook, reads back what that user was shown, and
    keeps the last snapshot of the database (one case's "after" is the next one's "before")."""

    def __init__(self, hook: Webhook, db: Database, world: World) -> None:
        self.hook, self.db, self.world = hook, db, world
        self.strangers = iter(range(9300, 9999))
        self.last: dict[str, list[tuple[Any, ...]]] = {}
        self.shown = ""  # what the last case's user was shown

    async def bind(self) -> None:
        for user, code in USERS.values():
            if code is not None:
                shown, _ = await self.step(user, f"/start {await invite_code(self.db, code)}")
                assert shown.startswith("绑定成功"), shown
        self.last = await snapshot(self.db)

    async def step(self, user: int, step: str) -> tuple[str, dict[str, Any]]:
        """Send one message or tap; what the user was shown (texts sent or edited, a tap's answer text,
        "[buttons edited]"), and the inline keyboard of the last text."""
        fake = self.hook.fake
        before = len(fake.calls)
        group, step = step.startswith("group "), step.removeprefix("group ")
        tap = step.startswith("tap ")
        update = callback_update(user, step[4:]) if tap else message_update(user, step)
        if group:  # the same, said in (or tapped on a message of) a group the user and the bot are in
            message = update["callback_query"]["message"] if tap else update["message"]
            message["chat"] = {"id": GROUP, "type": "supergroup", "title": "新华村群"}
        assert await self.hook.post(update) == 200
        shown, markup = [], {}
        for call in fake.calls[before:]:
            method, params = call.method.lower(), call.params
            if not call.ok or params.get("chat_id", user) not in (user, GROUP):
                continue
            if method in ("sendmessage", "editmessagetext"):
                shown.append(params["text"])
                markup = params.get("reply_markup") or {}
            elif method == "editmessagereplymarkup":
                shown.append("[buttons edited]")
            elif method == "answercallbackquery" and params.get("text"):
                shown.append(params["text"])
        return "\n".join(shown), markup

    async def case(self, role: str, steps: tuple[str, ...], expected: Allowed | Refused) -> list[str]:
        """Carry out one cell: what went otherwise than the matrix says (nothing when all is well)."""
        user = USERS[role][0] or next(self.strangers)
        reply, markup, wanted = "", {}, None
        for raw in steps:
            step = self.world.fill(raw, role)
            reply, markup = await self.step(user, step)
            if isinstance(expected, Refused):
                wanted = refusal(expected, " tap " in f" {step}", self.world, role)
                if reply == wanted:
                    break  # refused here: the rest (a note for a close) is not sent
        self.shown = reply
        now = await snapshot(self.db)
        changed, self.last = now != self.last, now
        wrong = [
            f"leaks {text!r}" for text, owners in SECRETS.items() if text in reply and role not in owners
        ]
        if isinstance(expected, Refused):
            if reply != wanted:
                wrong.append(f"expected the refusal {wanted!r}")
            if changed:
                wrong.append("the database changed")
            return wrong
        if expected.shows not in reply:
            wrong.append(f"expected to see {expected.shows!r}")
        if changed != expected.writes:
            wrong.append("the database changed" if changed else "the database did not change")
        if expected.buttons is not None and labels(markup) != expected.buttons:
            wrong.append(f"expected the buttons {expected.buttons}, got {labels(markup)}")
        return wrong


def refusal(expected: Refused, tap: bool, w: World, role: str) -> str:
    """The exact text of a refusal, as the user sees it."""
    if expected.reason == "ignored":
        return ""
    if expected.reason == "stranger":
        return "" if tap else render("telegram/refused.txt", "zh_CN")
    if expected.reason in ("not_in_scope", "no_visit", "stale"):
        return render(f"telegram/{expected.reason}.txt", "zh_CN")
    params = {k: w.fill(v, role) for k, v in expected.params.items()}
    return ActionRefused(expected.reason, **params).text("zh_CN")


def labels(markup: dict[str, Any]) -> tuple[str, ...]:
    return tuple(b["text"] for r in markup.get("inline_keyboard", []) for b in r)


@pytest.fixture
async def hook(roster: Database, fake_telegram: FakeTelegram, fsm_redis_url: str):
    app = make_app(roster, load_script(), settings_for(fake_telegram, redis_url=fsm_redis_url))
    async with TestClient(TestServer(app)) as client:
        yield Webhook(client, fake_telegram)


async def test_role_matrix(hook: Webhook, roster: Database):
    walk = Walk(hook, roster, await build_world(roster, settings_for(hook.fake)))
    await walk.bind()
    failures, cases = [], 0
    for action, (steps, expectations) in MATRIX.items():  # action by action: the secretary's moves in order
        for role, expected in expectations.items():
            if expected is None:
                continue
            cases += 1
            wrong = await walk.case(role, steps, expected)
            if wrong:
                failures.append(f"{action} × {role}: {'; '.join(wrong)} — shown: {walk.shown[:300]!r}")
    assert not failures, f"{len(failures)} of {cases} cells differ:\n" + "\n".join(failures)


# --- the CLI: an operator's tool, scoped by place, not by person --------------------------------------------
# The CLI has no notion of who runs it (the county office at the server): its scope options are the policy.
# Each row: the command, what its output must show, and what it must not (the other township's rows).
# Placeholders: {month} this month, {meeting} the latest meeting day, {year}/{raised} the problems' year/month.

CLI_SCOPE: list[tuple[str, tuple[str, ...], tuple[str, ...]]] = [
    ("report satisfaction --township 东风镇 --format csv", ("东风镇,新华村,1,", "合计,,1,"), ("福顺乡",)),
    ("report satisfaction --village 新华村 --format csv", ("东风镇,新华村,1,",), ("永安村", "福顺乡")),
    (
        "report satisfaction --by cadre --township 东风镇 --format csv",
        ("GB001,刘平福,东风镇",),
        ("GB014", "福顺乡"),
    ),
    (
        "report coverage --township 东风镇 --format csv",
        ("GB001,刘平福,第一书记,东风镇",),
        ("GB014", "福顺乡"),
    ),
    ("report households --township 东风镇 --format csv", ("合计,1,",), ("合计,2,",)),
    ("report integrity --township 东风镇 --format csv", ("走访用时过短,东风镇,新华村",), ("福顺乡",)),
    ("report problems --period {year} --township 东风镇 --format csv", ("{raised},1,",), ("{raised},2,",)),
    (
        "report problems --by township --period {year} --township 东风镇 --format csv",
        ("东风镇,1,",),
        ("福顺乡",),
    ),
    ("digest --township 东风镇", ("东风镇的问题",), ("福顺乡的问题",)),
    ("digest --township 福顺乡", ("福顺乡的问题",), ("东风镇的问题",)),
    ("tally --township 东风镇 --month {month} --format csv", ("东风镇的问题",), ("福顺乡的问题",)),
    ("minutes --township 东风镇 --meeting {meeting}", ("东风镇的问题",), ("福顺乡的问题",)),
    ("worklog --cadre GB002 --month {month}", ("GB002自己的日志",), ("GB005的日志",)),
]


def cli(args: list[str], db_url: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """`zoufang ARGS` in this process (tests.cli_support.zoufang), on the test's database, in an empty folder
    (no .env) and with no other setting of ours from the environment."""
    empty = Path(tempfile.mkdtemp(dir=folder))
    return zoufang(empty, *args, env=clean_env(empty, ZOUFANG_DB_URL=db_url))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # click's get_text_stream, as in test_report_cli
async def test_cli_scope(roster: Database, tmp_path: Path):
    """Both townships have a visit, an SMS answer, a problem decided at the latest meeting and a work-log
    entry; each scoped command shows its own township's and never the other's."""
    settings, now = settings_for(FakeTelegram()), utcnow()
    raised = now - timedelta(days=40)
    places = (
        ("DEMO0001", "GB001", "GB012", "GB002", "东风镇"),
        ("DEMO0067", "GB014", "GB025", "GB015", "福顺乡"),
    )
    for household, visitor, secretary, responsible, township in places:
        await add_visit(roster, household, visitor, now - timedelta(minutes=5), minutes=2)  # too short
        await add_poll(roster, household, now - timedelta(minutes=1), "不满意")
        problem = await raise_problem(roster, household, visitor, raised, "饮水", f"{township}的问题")
        who, to = await _cadre_id(roster, secretary), await _cadre_id(roster, responsible)
        await act(roster, settings, who, problem, "decide", now, responsible_id=to, due_days=7)
    await _log(roster, "GB002", "GB002自己的日志")
    await _log(roster, "GB005", "GB005的日志")
    today, raised_day = now.astimezone(settings.tz).date(), raised.astimezone(settings.tz).date()
    values = {
        "month": f"{today:%Y-%m}",
        "meeting": str(Calendar().latest_on_or_before(today)),
        "year": str(raised_day.year),
        "raised": f"{raised_day:%Y-%m}",
    }
    failures = []
    for command, shows, hides in CLI_SCOPE:
        args = command.format(**values).split()
        result = await asyncio.to_thread(cli, args, roster.url, tmp_path)
        output = result.stdout + result.stderr
        missing = [text for text in (t.format(**values) for t in shows) if text not in output]
        leaked = [text for text in (t.format(**values) for t in hides) if text in output]
        if result.returncode or missing or leaked:
            failures.append(
                f"zoufang {' '.join(args)}: exit {result.returncode}, missing {missing}, "
                f"shows {leaked}\n{output}"
            )
    assert not failures, "\n".join(failures)
