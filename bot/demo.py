"""`zoufang demo`: a demo county in a fresh SQLite file, visits walked through the real engine and storage.

The roster goes through the real importer (as CSV files), each visit through `VisitFlow` one typed answer at a
time, the way a cadre types on a phone (1.2万, 三人, 是/否, option numbers) — nothing is written behind its back.
"""

from __future__ import annotations

import csv
import random
import shlex
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, replace
from datetime import datetime, time, timedelta, tzinfo
from pathlib import Path
from typing import TextIO

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from twilio.request_validator import RequestValidator

from bot import reports
from bot.app import SMS_CLOCK, make_app
from bot.channels.twilio import SMS_INBOUND
from bot.flows.poll import send_polls
from bot.flows.visit import VisitFlow
from bot.reports.base import Context
from bot.reports.output import WIDE, print_table
from bot.roster_files import import_file
from bot.script_files import load_script_file
from bot.settings import Settings
from storage.db import Database, sqlite_url
from storage.migrate import upgrade
from storage.models import Cadre, Household, OutboxMessage, Poll, utcnow
from storage.reports import Area
from storage.visits import cadre_by_code, households_in_scope
from survey.periods import coverage_target, current_period

COUNTY = "示范县"
TOWNSHIPS = {"东风镇": ["新华村", "永安村", "红旗村"], "福顺乡": ["福顺村", "前进村", "长胜村"]}
HOUSEHOLDS_PER_VILLAGE = 22
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
)
GIVEN = "国建志秀英华明永德海玉兰春福军平云芳红桂凤文金"
PROBLEMS = [
    ("饮水", "冬季自来水管冻裂，需要维修"),
    ("住房", "屋顶漏雨，申请危房改造"),
    ("医疗", "慢性病报销手续不清楚"),
    ("低保", "家中老人低保申请未批"),
    ("就业", "家中劳动力想外出务工，缺少信息"),
    ("基础设施", "入户道路雨天泥泞"),
    ("产业", "庭院养鸡缺少鸡苗"),
]


class DemoError(Exception):
    pass


def is_demo_database(path: Path) -> bool:
    """True for an empty file or an earlier demo's database: the only files the demo may replace."""
    if path.stat().st_size == 0:
        return True
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            names = [row[0] for row in conn.execute("SELECT name FROM counties")]
    except sqlite3.Error:
        return False
    return names == [COUNTY]


@dataclass(frozen=True)
class DemoCounts:
    households: int
    cadres: int


def write_roster(folder: Path, rng: random.Random) -> DemoCounts:
    """Roster CSVs in the county format (Chinese headers), as a county office would hand them over."""
    cadres = _cadre_rows()
    helpers = {v: c[0] for c in cadres if c[3] == "帮扶责任人" for v in c[5].split(";")}
    households = []
    number = 0
    for township, villages in TOWNSHIPS.items():
        for village in villages:
            for _ in range(HOUSEHOLDS_PER_VILLAGE):
                number += 1
                households.append(_household_row(rng, number, township, village, helpers[village]))
    _write_csv(folder / "cadres.csv", ["干部编号", "姓名", "手机", "角色", "乡镇", "行政村"], cadres)
    _write_csv(
        folder / "households.csv",
        [
            "户编号",
            "县",
            "乡镇",
            "行政村",
            "户主姓名",
            "联系电话",
            "家庭人口",
            "脱贫状态",
            "主要致贫原因",
            "帮扶责任人编号",
        ],
        households,
    )
    return DemoCounts(households=len(households), cadres=len(cadres))


def _cadre_rows() -> list[list[str]]:
    rows: list[list[str]] = []

    def add(role: str, township: str, villages: list[str]) -> None:
        code = f"GB{len(rows) + 1:03d}"
        rows.append(
            [
                code,
                _name(len(rows) * 7 + 3),
                f"1390000{len(rows) + 1:04d}",
                role,
                township,
                ";".join(villages),
            ]
        )

    for township, villages in TOWNSHIPS.items():
        for village in villages:
            add("第一书记", township, [village])
            add("帮扶责任人", township, [village])
            add("村党支部书记", township, [village])
        add("乡镇包保干部", township, villages)
        add("驻村工作队", township, villages[:1])
        add("乡镇党委书记", township, [])
        add("扶贫专干", township, [])
    add("市级包保领导", "东风镇", TOWNSHIPS["东风镇"])
    add("督查指挥中心", "东风镇", [])
    return rows


def _name(i: int) -> str:
    return SURNAMES[i % len(SURNAMES)] + GIVEN[(i * 5) % len(GIVEN)] + GIVEN[(i * 11 + 3) % len(GIVEN)]


def _household_row(rng: random.Random, number: int, township: str, village: str, helper: str) -> list[str]:
    status = rng.choices(["已脱贫", "未脱贫", "监测户"], weights=[6, 2, 2])[0]
    cause = rng.choice(["因病", "因残", "缺技术", "缺资金", "缺劳力", "因学"])
    phone = f"138{rng.randrange(10**8):08d}" if rng.random() < 0.9 else ""
    return [
        f"DEMO{number:04d}",
        COUNTY,
        township,
        village,
        _name(number * 13 + 1),
        phone,
        str(rng.randint(1, 6)),
        status,
        cause,
        helper,
    ]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


# --- answers typed the way cadres type them ----------------------------------------------------------------


def _money(rng: random.Random, yuan: int) -> str:
    if yuan >= 10000 and rng.random() < 0.4:
        return f"{yuan / 10000:g}万"
    if yuan >= 1000 and yuan % 1000 == 0 and rng.random() < 0.3:
        return f"{yuan // 1000}千"
    return str(yuan)


def visit_inputs(rng: random.Random, household: Household, *, open_problem: bool) -> list[str]:
    """One visit's typed inputs, ending with 提交 at the summary."""
    members = household.members
    inputs = [
        rng.choice(
            [str(members), f"{members}人", "一二三四五六"[members - 1] if members <= 6 else str(members)]
        )
    ]
    inputs += [str(rng.randint(0, members)), rng.choice(["因病", "2", "缺技术", "缺资金"])]
    inputs.append(rng.choices(["无", "低保", "1", "五保", "低保、残疾人补贴"], weights=[10, 3, 1, 1, 1])[0])
    inputs += _living(rng)
    inputs += _income(rng, members)
    inputs.append(rng.choices(["满意", "1", "基本满意", "不满意"], weights=[12, 4, 4, 1])[0])
    inputs.append(rng.choices(["是", "否"], weights=[9, 1])[0])
    inputs.append(rng.choice(["", "", "希望多组织技能培训", "跳过"]))
    inputs += ["是", "已讲", rng.choice(["1 3", "2,5", "1、7"]), "是", "是"]
    inputs += _looks(rng)
    inputs += _problems(rng, open_problem)
    return [*inputs, "提交"]


def _living(rng: random.Random) -> list[str]:
    # 两不愁三保障 were met at 脱贫 and stay met in all but a rare household (a county's 返贫预警 share is a few
    # percent): unmet food, dropout and missing medical insurance are one in a hundred or two.
    answers = [rng.choices(["是", "否"], weights=[199, 1])[0], "是"]
    children = rng.choice([0, 0, 1, 2])
    answers.append(str(children))
    if children:
        answers.append(rng.choices(["否", "是"], weights=[99, 1])[0])
    answers += [rng.choices(["是", "否"], weights=[99, 1])[0], rng.choice(["是", "否"]), "是", "是"]
    return answers


def _income(rng: random.Random, members: int) -> list[str]:
    # Per-capita net income mostly well above the 5000 monitoring line, as in a county years after 脱贫; a few
    # households near or under it (and 5000 itself, which is no warning: the line is strict).
    per_capita = rng.choices(
        [4200, 4800, 5000, 5600, 6500, 8000, 9500, 12000, 15000],
        weights=[1, 2, 2, 6, 10, 12, 10, 8, 4],
    )[0]
    production = rng.choice([0, 500, 1000, 2000])
    total = per_capita * members + production
    wages = total * rng.choice([0, 4, 6]) // 10
    business = (total - wages) // 2
    transfer = total - wages - business
    medical = rng.choices([0, 300, 800, 1500, 5000], weights=[6, 6, 4, 3, 1])[0]
    return [
        _money(rng, wages),
        _money(rng, business),
        "0",
        "0",
        _money(rng, transfer),
        _money(rng, production),
        _money(rng, medical),
        rng.choice(["0", "500", "1200"]),
    ]


def _looks(rng: random.Random) -> list[str]:
    answers = []
    # 三看: an unsafe house or unsafe water is what a visit is there to catch, but rare (a percent or two).
    if rng.random() < 0.015:
        answers += ["否", rng.choice(["C级", "D级", "3"])]
    else:
        answers.append("是")
    if rng.random() < 0.015:
        answers += ["否", rng.choice(["1", "4", "1 3"])]
    else:
        answers.append("是")
    return [*answers, "是", "是", rng.choices(["是", "否"], weights=[5, 1])[0]]


def _problems(rng: random.Random, open_problem: bool) -> list[str]:
    count = 1 if open_problem else rng.choices([0, 1, 2], weights=[5, 3, 1])[0]
    answers = []
    for i in range(count):
        category, description = rng.choice(PROBLEMS)
        answers += ["是", category, description]
        if (open_problem and i == 0) or rng.random() < 0.4:
            answers.append("否")
        else:
            answers += ["是", "已现场协调解决"]
    return [*answers, "否"]


# --- the run -----------------------------------------------------------------------------------------------


async def run_demo(settings: Settings, db_path: Path | None, *, visits: int, seed: int, out: TextIO) -> None:
    path = (db_path or Path(tempfile.mkdtemp(prefix="zoufang-demo-")) / "demo.db").resolve()
    if path.exists() and not is_demo_database(path):
        raise DemoError(f"{path} 已存在且不是示范数据库，未改动；请换一个 --db 路径")
    for stale in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        stale.unlink(missing_ok=True)
    print(path, file=out, flush=True)
    rng = random.Random(seed)
    db = Database(sqlite_url(path))
    try:
        await upgrade(db)
        with tempfile.TemporaryDirectory() as folder:
            counts = write_roster(Path(folder), rng)
            await import_file(db, "cadres", Path(folder) / "cadres.csv", county=COUNTY)
            await import_file(db, "households", Path(folder) / "households.csv")
        done = await _walk_visits(db, settings, rng, visits)
        outbox = await _poll_round(db, path, settings, rng)
        await _print_summary(db, path, settings, counts, done, outbox, out)
    finally:
        await db.close()


async def _walk_visits(db: Database, settings: Settings, rng: random.Random, visits: int) -> int:
    """Every visit typed answer by answer through the flow, one after another (SQLite has one writer; running
    cadres side by side only queues them, which measured slower)."""
    clock = FieldClock.before(utcnow(), settings, visits)
    flow = VisitFlow(db, load_script_file(settings.script or None), settings, clock=clock)
    plan = await _visit_plan(db, rng, visits)
    done = 0
    for n, (cadre, household) in enumerate(plan):
        inputs = visit_inputs(rng, household, open_problem=n < len(TOWNSHIPS))
        done += await _walk_one(flow, clock, cadre, household, inputs)
        clock.walk_to_next_household()
    return done


async def _walk_one(
    flow: VisitFlow, clock: FieldClock, cadre: Cadre, household: Household, inputs: list[str]
) -> bool:
    outcome = await flow.start(cadre, household, channel="demo")
    for text in inputs:
        clock.think()
        outcome = await flow.answer(outcome.visit_id, text)
        if outcome.reply.error is not None:
            raise RuntimeError(f"demo input {text!r} refused: {outcome.text}")
    return outcome.finished


class FieldClock:
    """The visits' clock: cadres in the field, an answer every ~40 s and half an hour's walk between households,
    in working hours (08:30–17:30 local) over the days before today, inside the current quarter. Walked at
    machine speed, every visit would take no time and the integrity report would rightly flag them all."""

    ANSWER = timedelta(seconds=40)
    WALK = timedelta(minutes=30)
    ANSWERS_PER_VISIT = 32
    DAY_STARTS, DAY_ENDS = time(8, 30), time(17, 30)

    def __init__(self, start: datetime, answer: timedelta, walk: timedelta, tz: tzinfo | None) -> None:
        self.now, self.answer, self.walk, self.tz = start, answer, walk, tz

    @classmethod
    def before(cls, now: datetime, settings: Settings, visits: int) -> FieldClock:
        tz = settings.tz
        quarter = current_period("quarter", now, tz)
        first_day = max(quarter.start, now.astimezone(tz).date() - timedelta(days=7))
        start = datetime.combine(first_day, cls.DAY_STARTS, tzinfo=tz)
        per_day = (cls.DAY_ENDS.hour - cls.DAY_STARTS.hour) * 60 // 51  # ~51 minutes a visit with the walk
        if start + timedelta(days=-(-visits // per_day)) <= now:
            return cls(start, cls.ANSWER, cls.WALK, tz)
        # A quarter only hours or days old: squeeze the visits into the time it has had, around the clock.
        start = quarter.starts_at(tz)
        slot = (now - start) / max(visits, 1)
        answer = min(cls.ANSWER, slot / (2 * cls.ANSWERS_PER_VISIT))
        return cls(start, answer, slot - answer * cls.ANSWERS_PER_VISIT, None)

    def __call__(self) -> datetime:
        return self.now

    def think(self) -> None:
        self.now += self.answer

    def walk_to_next_household(self) -> None:
        self.now += max(self.walk, timedelta(0))
        if self.tz is None:
            return
        local = self.now.astimezone(self.tz)
        if local.time() >= self.DAY_ENDS:
            self.now = datetime.combine(local.date() + timedelta(days=1), self.DAY_STARTS, tzinfo=self.tz)


async def _visit_plan(db: Database, rng: random.Random, visits: int) -> list[tuple[Cadre, Household]]:
    """Mostly first secretaries in their villages, plus helpers and township cadres, spread over villages."""
    async with db.session() as s:
        codes = (await s.execute(select(Cadre.code).order_by(Cadre.code))).scalars()
        cadres = [c for c in [await cadre_by_code(s, code) for code in codes] if c is not None]
        pairs: list[tuple[Cadre, Household]] = []
        for cadre in cadres:
            target = coverage_target(cadre.role)
            households = await households_in_scope(s, cadre, target.scope)
            share = {"第一书记": 5, "帮扶责任人": 1, "乡镇包保干部": 2, "驻村工作队": 1}.get(cadre.role, 0)
            pairs += [(cadre, h) for h in rng.sample(households, min(share, len(households)))]
    first_of_township = {}
    for pair in pairs:
        first_of_township.setdefault(pair[1].village.township_id, pair)
    ordered = list(first_of_township.values()) + [p for p in pairs if p not in first_of_township.values()]
    return ordered[:visits]


# --- the SMS poll round -------------------------------------------------------------------------------------

DEMO_TWILIO_TOKEN = "zoufang-demo-auth-token"  # made up: the demo signs its own inbound replies with it
DEMO_BASE_URL = "https://zoufang-demo.invalid"
ANSWER_SHARE = 0.7  # of the polled phones; the rest stay unanswered
# Full-width digits as some phones type them: "２" is 基本满意, "３" is 不满意 (like "3").
REPLIES = ["1", "2", "２", "满意", "基本满意", "3", "３", "不满意"]
REPLY_WEIGHTS = [8, 4, 2, 6, 4, 1, 1, 1]
REASONS = ["村里路灯坏了半年没人修", "低保评定不公开", "自来水经常停", "医保报销太慢"]


def reply_plan(rng: random.Random, phones: list[str]) -> list[tuple[str, list[str]]]:
    """(phone, messages) for the phones that answer: mostly ratings, an unclear 一般 followed by a clear answer,
    an opt-out, and a 不满意 followed by its reason; the rest of the phones stay unanswered."""
    answering = rng.sample(phones, round(len(phones) * ANSWER_SHARE))
    fixed = [["一般", "2"], ["TD"], ["不满意", rng.choice(REASONS)], ["3 " + rng.choice(REASONS)]]
    plan = []
    for n, phone in enumerate(answering):
        if n < len(fixed):
            messages = fixed[n]
        else:
            first = rng.choices(REPLIES, weights=REPLY_WEIGHTS)[0]
            messages = [first]
            if first in ("3", "３", "不满意") and rng.random() < 0.6:
                messages.append(rng.choice(REASONS))
        plan.append((phone, messages))
    return plan


async def _poll_round(db: Database, path: Path, settings: Settings, rng: random.Random) -> int:
    """Poll every household with a phone (the visited ones were polled by the visit flow), then post the
    villagers' replies, signed as Twilio signs them, to the real inbound webhook on loopback. The outbox sender
    is not started: every SMS stays in the outbox. Returns the number of outbox rows."""
    now = utcnow()
    async with db.reading() as s:
        after_visits = (await s.execute(select(func.max(Poll.send_after)))).scalar_one()
    # The round goes out with the last visits' polls (the morning after the last field day), not at `now`:
    # at `now` the quiet hours would push it, and the replies after it, into the future.
    poll_at = min(after_visits or now, now)
    async with db.session() as s:
        for township in TOWNSHIPS:
            await send_polls(s, poll_at, settings, township=township)
    async with db.reading() as s:
        phones = list((await s.execute(select(Poll.phone).order_by(Poll.id))).scalars())
        last_send = (await s.execute(select(func.max(Poll.send_after)))).scalar_one()
    plan = reply_plan(rng, phones)
    clock = _ReplyClock.between(last_send, now, sum(len(messages) for _, messages in plan))
    sms_settings = replace(settings, twilio_auth_token=DEMO_TWILIO_TOKEN, public_base_url=DEMO_BASE_URL)
    app = make_app(
        Database(sqlite_url(path)), load_script_file(settings.script or None), sms_settings, webhook=False
    )
    _leave_out_outbox_sender(app)
    app[SMS_CLOCK] = clock
    validator = RequestValidator(DEMO_TWILIO_TOKEN)
    sids = _message_sids()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        for phone, messages in plan:
            for body in messages:
                form = inbound_form(next(sids), phone, body)
                signature = validator.compute_signature(DEMO_BASE_URL + SMS_INBOUND, form)
                response = await client.post(
                    SMS_INBOUND, data=form, headers={"X-Twilio-Signature": signature}
                )
                if response.status != 200:
                    raise RuntimeError(
                        f"demo reply {body!r} refused: {response.status} {await response.text()}"
                    )
                clock.advance()
    async with db.reading() as s:
        return (await s.execute(select(func.count(OutboxMessage.id)))).scalar_one()


class _ReplyClock:
    """The SMS flow's clock: the replies come in a minute or so apart, after the questions went out."""

    GAP = timedelta(hours=1)  # from the questions going out to the first reply
    STEP = timedelta(seconds=47)

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now, self.step = start, step

    @classmethod
    def between(cls, sent: datetime, now: datetime, replies: int) -> _ReplyClock:
        """Replies after `sent`, all before `now`: an hour on and 47 s apart when there is room, else closer."""
        room = max(now - sent, timedelta(0))
        gap = min(cls.GAP, room / 3)
        step = min(cls.STEP, (room - gap) / (replies + 1))
        return cls(sent + gap, step)

    def __call__(self) -> datetime:
        return self.now

    def advance(self) -> None:
        self.now += self.step


def _leave_out_outbox_sender(app: object) -> None:
    starters = app.on_startup  # type: ignore[attr-defined]
    outbox = [h for h in starters if getattr(h, "__qualname__", "").startswith("_start_outbox.")]
    if len(outbox) != 1:
        raise RuntimeError("demo: could not find the outbox sender to leave out")
    starters.remove(outbox[0])


def _message_sids() -> Iterator[str]:
    n = 0
    while True:
        n += 1
        yield f"SMdemo{n:028x}"


def inbound_form(
    sid: str, sender: str, body: str, *, account_sid: str = "AC" + "0" * 32, to: str = "+8610690000000"
) -> dict[str, str]:
    """The form Twilio posts for an incoming SMS (the demo, the tests and the benchmark sign and post it)."""
    return {
        "ToCountry": "CN",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": to,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": account_sid,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }


async def _print_summary(
    db: Database, path: Path, settings: Settings, counts: DemoCounts, done: int, outbox: int, out: TextIO
) -> None:
    """The headline figures, printed by the same report builders as `zoufang report …`."""
    out.write(
        f"示范县：{len(TOWNSHIPS)} 个乡镇，{sum(map(len, TOWNSHIPS.values()))} 个行政村，"
        f"{counts.households} 户，{counts.cadres} 名干部\n"
        f"完成走访：{done} 次（全部经由走访引擎逐题录入）\n"
        f"短信已写入发件箱（演示不发送）：{outbox} 条\n"
    )
    ctx = Context(settings, utcnow())
    quarter = current_period("quarter", ctx.now, settings.tz)
    script = load_script_file(settings.script or None)
    shown = [
        await reports.coverage(db, ctx, ["第一书记"], None, Area(), full_lists=False),
        await reports.satisfaction(db, ctx, "township", quarter, Area()),
        await reports.awareness(db, ctx, "township", quarter, Area(), script),
        await reports.targets(db, ctx, "township", quarter, Area(), script),
        await reports.households(db, ctx, None, Area()),
        await reports.warnings(db, ctx, None, Area()),
        await reports.exited_check(db, ctx, Area()),
        await reports.problems_by_township(db, ctx, quarter, Area()),
        await reports.integrity(db, ctx, quarter, Area()),
    ]
    for report in shown:
        out.write("\n")
        print_table(
            report, out, WIDE
        )  # a transcript of the whole demo, as before: `zoufang report …` fits 100
    out.write("\n" + next_commands(path, settings.locale) + "\n")


def next_commands(path: Path, locale: str | None) -> str:
    """The commands, exactly as a shell takes them, that run reports on the demo database: the reports read
    ZOUFANG_DB_URL (a URL, `sqlite+aiosqlite:////abs/path.db`), not a file path."""
    from messages import error_text

    url = "ZOUFANG_DB_URL=" + shlex.quote(sqlite_url(path))
    first_township = next(iter(TOWNSHIPS))
    commands = [
        f"{url} zoufang report satisfaction",
        f"{url} zoufang report households --warning",
        f"{url} zoufang digest --township {first_township}",
    ]
    return error_text("demo_next", locale, source="cli/parts.txt", commands=commands)
