"""Benchmark: the `zoufang report …` commands on a county-sized database (SQLite by default).

One command does everything::

    python benchmarks/reports.py [--households H] [--visits V] [--polls P] [--problems N] [--runs R]
                                 [--limit S] [--db PATH | --db-url URL] [--reuse] [--json PATH]

1. Builds a fresh, migrated database (storage.migrate.upgrade) with SQLAlchemy Core bulk inserts (executemany,
   chunks of --chunk rows, one transaction per chunk): 1 county, --townships townships, --villages villages,
   H households (phone, lat/lon, helper), ~2,000 cadres of every role of survey.periods.ROLES (per village a
   第一书记, two 驻村工作队, a 村党支部书记 and the 帮扶责任人; per township a 乡镇党委书记, 乡镇包保干部 over a few
   villages each, a 市级包保领导 over all its villages and a 扶贫专干; two 督查指挥中心) with their cadre_villages,
   V submitted visits over the current year (a share in the current quarter; started 15–60 min before
   submission, a few 3–10 min; the fix near the household, a few far; satisfaction, group, unmet and warning
   codes, answers digests mostly unique, a few shared; a few bursts of three visits in ten minutes; a session
   JSON as long as a real one), P SMS polls (distinct (household, quarter) pairs: every household in the
   current quarter, then the quarters before it; mostly answered with a rating, some expired, unclear or opted
   out, the latest still open; a few villages rate far lower by SMS than in visits) and N problems (from visits
   and SMS; resolved on site, or escalated and then decided, overdue, on the county list, merged or closed,
   mostly after a meeting decision). No `answers` or `problem_events` rows: the reports never read them.
   The build time is reported per table. With --db-url postgresql+asyncpg://…, the schema `public` is dropped
   and recreated first, and the build ends with VACUUM ANALYZE, what autovacuum would do after such a load
   (--no-vacuum to time tables never vacuumed nor analyzed). --reuse times an existing database as it is.
2. Times every report the way `zoufang report …` builds it (bot.reports with a Context whose `now` is fixed
   inside the data's current quarter; the default options, plus the year for satisfaction): each report in a
   worker process of its own (this script, --role worker) that calls the builder --runs times and reports each
   run; a report still running after --limit seconds is stopped and shown as STOPPED.
3. Times the real CLI as subprocesses (ZOUFANG_DB_URL set, a temp working directory): `zoufang report --help`
   and `zoufang report satisfaction --format csv`; and, in one more subprocess, runs every report command
   through bot.cli.main (the slow-at-scale ones on an empty past period), then says whether aiogram or twilio
   (or aiohttp, matplotlib, openpyxl, rich) got imported.
4. Prints the figure table with the 1-minute load average beside each figure (other work on the machine
   shows there; aim: ≤ 1 s per report on SQLite, ≤ 0.5 s on PostgreSQL, --help < 1 s; the verdict takes the
   slowest run); --json PATH writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import bisect
import contextlib
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

# run as `python benchmarks/<name>.py`: the folder is on sys.path
from harness import BenchError, child_env, run_benchmark, zoufang_command

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = Path(__file__).resolve()
TIMEZONE = "Asia/Shanghai"  # the default ZOUFANG_TIMEZONE, which the reports run with
AIM_SECONDS = 1.0
AIM_POSTGRES_SECONDS = 0.5  # issue 11: every report ≤ 1 s on SQLite, ≤ 0.5 s on PostgreSQL


def aim_for(url: str) -> float:
    return AIM_POSTGRES_SECONDS if url.startswith("postgresql") else AIM_SECONDS


COUNTY = "基准县"
TOWNSHIP_NAMES = [
    "东风镇",
    "福顺乡",
    "黑水镇",
    "万宝镇",
    "那金镇",
    "安定镇",
    "野马乡",
    "车力乡",
    "呼和车力",
    "永茂乡",
]
_STEMS = "新胜前进红旗光明富民和平太平永安长发兴隆双山三合四方五星六合七井八里九龙十家团结"
VILLAGE_STEMS = tuple(_STEMS[i : i + 2] for i in range(0, len(_STEMS), 2))
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎"
)
GIVEN = "建国文华秀英玉兰凤桂平志明海军红梅德福永春丽娟宝山金凤淑珍国庆长林成龙春生树林振华"
CENTRE = (45.34, 122.79)  # roughly where the demo county lies
SATISFACTION = (("满意", 70), ("基本满意", 22), ("不满意", 5), (None, 3))
SMS_RATING = (("满意", 58), ("基本满意", 28), ("不满意", 14))
SMS_RATING_LOW = (("满意", 35), ("基本满意", 25), ("不满意", 40))  # a few villages where villagers disagree
CATEGORIES = ("产业", "低保", "医疗", "就业", "饮水", "住房", "教育", "其他")
SESSION = (
    '{"format":1,"script_id":"wuwen-sijiang-sankan-yihuajie","script_version":"2026.1","household":"@CODE@",'
    '"locale":"zh_CN","capabilities":["location","photo"],"answers":{"members":4,"labour_members":2,'
    '"main_cause":"因病","support":["低保","残疾人补贴"],"food_secure":true,"clothing_secure":true,'
    '"school_children":1,"dropout":false,"medical_insured":true,"chronic_illness":true,"family_doctor":true,'
    '"pension_insured":true,"income_wages":10800,"income_business":3600,"income_property":0,'
    '"income_guaranteed":0,"income_transfer":3600,"expense_production":0,"expense_medical":1300,'
    '"expense_education":1200,"satisfaction":"满意","policy_known":true,"talk_party":true,"talk_policy":true,'
    '"policies_explained":["教育资助","就业扶贫"],"talk_hope":true,"talk_aspiration":true,"housing_safe":true,'
    '"water_safe":true,"handbook_current":true,"income_sheet_current":true,"medical_sheet_current":true,'
    '"location":{"lat":45.3,"lon":122.8},"problems":[]},"visited":["members","labour_members","main_cause",'
    '"support","food_secure","clothing_secure","school_children","dropout","medical_insured","chronic_illness",'
    '"family_doctor","pension_insured","income_wages","income_business","income_property","income_guaranteed",'
    '"income_transfer","expense_production","expense_medical","expense_education","satisfaction","policy_known",'
    '"opinion","talk_party","talk_policy","policies_explained","talk_hope","talk_aspiration","housing_safe",'
    '"water_safe","handbook_current","income_sheet_current","medical_sheet_current","location","problems#0"],'
    '"state":"submitted"}'
)  # a submitted visit's session JSON is about this long (~1.6 kB in the demo): rows as wide as real ones


def pick(rng: random.Random, weighted: Iterable[tuple[Any, int]]) -> Any:
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def person(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))


def chunked(rows: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- the county --------------------------------------------------------------------------------------------


@dataclass
class County:
    """What the generator made, for the tables built after it (ids are 1-based and dense)."""

    now: datetime
    tz: ZoneInfo
    townships: int
    village_township: list[int] = field(default_factory=list)  # index village_id - 1
    village_centre: list[tuple[float, float]] = field(default_factory=list)
    household_village: list[int] = field(default_factory=list)  # index household_id - 1
    household_place: list[tuple[float, float]] = field(default_factory=list)
    household_helper: list[int] = field(default_factory=list)
    household_phone: list[str] = field(default_factory=list)
    village_cadres: dict[tuple[int, str], list[int]] = field(default_factory=dict)  # (village, role) → ids
    township_cadres: dict[tuple[int, str], list[int]] = field(default_factory=dict)  # (township, role) → ids
    roles: dict[str, int] = field(default_factory=dict)
    links: int = 0
    low_villages: set[int] = field(default_factory=set)  # villagers' SMS well below what visits record
    visits: list[tuple[int, int, int, datetime]] = field(default_factory=list)  # (id, household, cadre, at)
    # per household, its visits' (submitted_at, id) in that order: the stored attributions are computed here,
    # apart from the SQL that keeps them in zoufang, so the benchmark's data is also a check of that SQL
    household_visits: dict[int, list[tuple[datetime, int]]] = field(default_factory=dict)

    def rated_visit(self, household: int, at: datetime) -> int | None:
        """The household's latest visit at or before `at` (ties: the higher id), as polls.visit_id holds it."""
        visits = self.household_visits.get(household, [])
        before = bisect.bisect_right(visits, (at, math.inf))
        return visits[before - 1][1] if before else None

    @property
    def households(self) -> int:
        return len(self.household_village)

    @property
    def year_start(self) -> datetime:
        return datetime.combine(date(self.now.astimezone(self.tz).year, 1, 1), clock(0), self.tz)

    def quarter_start(self) -> datetime:
        from survey.periods import current_period

        return current_period("quarter", self.now, self.tz).starts_at(self.tz)


def place_rows(county: County, villages: int, rng: random.Random) -> dict[str, list[dict[str, Any]]]:
    townships = [
        {
            "id": i + 1,
            "county_id": 1,
            "name": TOWNSHIP_NAMES[i] if i < len(TOWNSHIP_NAMES) else f"第{i + 1}镇",
        }
        for i in range(county.townships)
    ]
    village_rows = []
    for v in range(villages):
        township = v * county.townships // villages + 1
        stem = VILLAGE_STEMS[v % len(VILLAGE_STEMS)]  # 新胜一村 … : unique in the county, as --village needs
        village_rows.append(
            {"id": v + 1, "township_id": township, "name": f"{stem}{v // len(VILLAGE_STEMS) + 1}村"}
        )
        county.village_township.append(township)
        county.village_centre.append((CENTRE[0] + rng.uniform(-0.4, 0.4), CENTRE[1] + rng.uniform(-0.5, 0.5)))
    county.low_villages = {v for v in range(1, villages + 1) if v % 25 == 7}
    return {
        "counties": [
            {"id": 1, "name": COUNTY, "income_line": None, "monitoring_line": None, "count_guaranteed": None}
        ],
        "townships": townships,
        "villages": village_rows,
    }


def cadre_rows(
    county: County, helpers_per_village: int, rng: random.Random
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Cadres of every role and their villages (cadre_villages)."""
    cadres: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    villages_of: dict[int, list[int]] = {}
    for v, t in enumerate(county.village_township, start=1):
        villages_of.setdefault(t, []).append(v)

    def add(role: str, township: int, villages: list[int]) -> int:
        cid = len(cadres) + 1
        cadres.append(
            {
                "id": cid,
                "code": f"GB{cid:05d}",
                "name": person(rng),
                "phone": f"+86138{cid:08d}",
                "role": role,
                "township_id": township,
                "locale": None,
            }
        )
        links.extend({"cadre_id": cid, "village_id": v} for v in villages)
        for v in villages:
            county.village_cadres.setdefault((v, role), []).append(cid)
        county.township_cadres.setdefault((township, role), []).append(cid)
        county.roles[role] = county.roles.get(role, 0) + 1
        return cid

    for township in range(1, county.townships + 1):
        own = villages_of.get(township, [])
        add("乡镇党委书记", township, [])
        add("扶贫专干", township, [])
        add("市级包保领导", township, own)
        for start in range(0, len(own), 3):  # 乡镇包保干部: three (or four) villages each
            add("乡镇包保干部", township, own[start : start + 3])
        for v in own:
            add("第一书记", township, [v])
            add("驻村工作队", township, [v])
            add("驻村工作队", township, [v])
            add("村党支部书记", township, [v])
            for _ in range(helpers_per_village):
                add("帮扶责任人", township, [v])
    add("督查指挥中心", 1, [])
    add("督查指挥中心", 1, [])
    county.links = len(links)
    return cadres, links


def household_rows(county: County, count: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    villages = len(county.village_township)
    for i in range(count):
        village = i * villages // count + 1  # a roster lists a village's households together
        lat0, lon0 = county.village_centre[village - 1]
        lat, lon = lat0 + rng.uniform(-0.006, 0.006), lon0 + rng.uniform(-0.008, 0.008)
        helper = rng.choice(county.village_cadres[(village, "帮扶责任人")])
        phone = f"+86139{i:08d}"
        county.household_village.append(village)
        county.household_place.append((lat, lon))
        county.household_helper.append(helper)
        county.household_phone.append(phone)
        yield {
            "id": i + 1,
            "code": f"2208{village:04d}{i + 1:07d}",
            "village_id": village,
            "hamlet": f"{rng.randint(1, 6)}屯",
            "head_name": person(rng),
            "phone": phone,
            "members": rng.randint(1, 6),
            "status": pick(rng, (("已脱贫", 80), ("监测户", 12), ("未脱贫", 8))),
            "cause": rng.choice(("因病", "因残", "缺技术", "缺资金", "缺劳力", "因学")),
            "lat": lat,
            "lon": lon,
            "helper_id": helper,
        }


# --- visits ------------------------------------------------------------------------------------------------

VISITOR_ROLES = (
    ("帮扶责任人", 55),
    ("第一书记", 14),
    ("驻村工作队", 12),
    ("村党支部书记", 8),
    ("乡镇包保干部", 6),
    ("市级包保领导", 2),
    ("乡镇党委书记", 3),
)


def working_moment(county: County, lo: datetime, hi: datetime, rng: random.Random) -> datetime:
    """A local working-hours moment (08:00–18:00) on a day in [lo, hi), never after hi."""
    first, last = lo.astimezone(county.tz).date(), hi.astimezone(county.tz).date()
    for _ in range(20):
        day = first + timedelta(days=rng.randrange((last - first).days + 1))
        moment = datetime.combine(day, clock(8), county.tz) + timedelta(seconds=rng.randrange(10 * 3600))
        if lo <= moment < hi:
            return moment.astimezone(UTC)
    return (hi - timedelta(minutes=rng.randint(5, 600))).astimezone(UTC)


def visitor(county: County, household: int, rng: random.Random) -> int:
    village = county.household_village[household - 1]
    role = pick(rng, VISITOR_ROLES)
    if role == "帮扶责任人":
        return county.household_helper[household - 1]
    if role == "乡镇党委书记":
        return county.township_cadres[(county.village_township[village - 1], role)][0]
    return rng.choice(county.village_cadres[(village, role)])


def visit_plan(county: County, count: int, quarter_share: float, rng: random.Random) -> list[tuple]:
    """(household, cadre, submitted_at) for `count` visits, in submission order; ~1 % come as bursts of three
    visits by one cadre within ten minutes (neighbours in one village)."""
    quarter, year, now = county.quarter_start(), county.year_start, county.now - timedelta(minutes=30)
    plan: list[tuple] = []
    while len(plan) < count:
        in_quarter = rng.random() < quarter_share or quarter <= year
        at = working_moment(county, quarter if in_quarter else year, now if in_quarter else quarter, rng)
        household = rng.randint(1, county.households)
        cadre = visitor(county, household, rng)
        if rng.random() < 0.0033 and len(plan) + 3 <= count:
            for step in range(3):
                neighbour = min(county.households, household + step)
                plan.append((neighbour, cadre, at + timedelta(minutes=4 * step, seconds=rng.randint(0, 50))))
        else:
            plan.append((household, cadre, at))
    plan.sort(key=lambda row: row[2])
    return plan


def codes(rng: random.Random, share: float, pool: tuple[str, ...]) -> str:
    if rng.random() >= share:
        return ""
    return ",".join(sorted(rng.sample(pool, rng.choice((1, 1, 2))), key=pool.index))


def visit_rows(county: County, plan: list[tuple], rng: random.Random) -> Iterator[dict[str, Any]]:
    from survey.facts import GROUPS, UNMET_ITEMS, WARNINGS

    shared = [f"{rng.getrandbits(128):032x}" for _ in range(150)]  # answer sets a few households share
    groups = tuple(zip(GROUPS, (10, 20, 50, 20), strict=True))
    for vid, (household, cadre, submitted) in enumerate(plan, start=1):
        county.visits.append((vid, household, cadre, submitted))
        bisect.insort(county.household_visits.setdefault(household, []), (submitted, vid))
        took = rng.uniform(180, 600) if rng.random() < 0.04 else rng.uniform(900, 3600)
        home_lat, home_lon = county.household_place[household - 1]
        where = rng.random()
        if where < 0.02:  # no fix (console visit)
            lat, lon = None, None
        elif where < 0.05:  # 2–20 km away
            distance, angle = rng.uniform(0.02, 0.2), rng.uniform(0, 2 * math.pi)
            lat, lon = home_lat + distance * math.sin(angle), home_lon + distance * math.cos(angle)
        else:
            lat, lon = home_lat + rng.gauss(0, 0.0006), home_lon + rng.gauss(0, 0.0008)
        income = Decimal(rng.randint(4000, 60000))
        members = rng.randint(1, 6)
        code = f"2208{county.household_village[household - 1]:04d}{household:07d}"
        yield {
            "id": vid,
            "household_id": household,
            "cadre_id": cadre,
            "script_id": "wuwen-sijiang-sankan-yihuajie",
            "script_version": "2026.1",
            "channel": "telegram" if rng.random() < 0.8 else "console",
            "status": "submitted",
            "started_at": submitted - timedelta(seconds=took),
            "updated_at": submitted,
            "submitted_at": submitted,
            "lat": lat,
            "lon": lon,
            "session": SESSION.replace("@CODE@", code),
            "counted_income": income,
            "per_capita_net": (income / members).quantize(Decimal("0.01")),
            "household_group": pick(rng, groups),
            "warnings": codes(rng, 0.06, WARNINGS),
            "unmet": codes(rng, 0.08, UNMET_ITEMS),
            "satisfaction": pick(rng, SATISFACTION),
            "answers_digest": rng.choice(shared) if rng.random() < 0.005 else f"{rng.getrandbits(128):032x}",
        }


# --- polls -------------------------------------------------------------------------------------------------


def poll_periods(county: County, polls: int) -> list[Any]:
    """Quarters, oldest first, that hold `polls` distinct (household, quarter) pairs: the current quarter and
    as many before it as needed (the last of them partly)."""
    from survey.periods import period_of

    needed = max(1, math.ceil(polls / county.households))
    periods, day = [], county.now.astimezone(county.tz).date()
    for _ in range(needed):
        period = period_of("quarter", day)
        periods.append(period)
        day = period.start - timedelta(days=1)
    return list(reversed(periods))


def poll_rows(county: County, polls: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    periods = poll_periods(county, polls)
    full = polls // county.households
    pid = 0
    for index, period in enumerate(periods):
        partial = index < len(periods) - full  # the oldest quarter holds the remainder
        households = polls % county.households if partial else county.households
        lo, hi = period.starts_at(county.tz), min(period.ends_at(county.tz), county.now)
        span = (hi - lo).total_seconds()
        chosen = sorted(rng.sample(range(1, county.households + 1), households)) if partial else None
        picked = chosen if chosen is not None else range(1, county.households + 1)
        created = sorted((lo + timedelta(seconds=rng.uniform(0, span)), h) for h in picked)
        for at, household in created:
            pid += 1
            yield poll_row(county, pid, household, period.label, at, rng)


def poll_row(
    county: County, pid: int, household: int, period: str, created: datetime, rng: random.Random
) -> dict[str, Any]:
    send_after = datetime.combine(
        created.astimezone(county.tz).date() + timedelta(days=1), clock(10), county.tz
    ).astimezone(UTC)
    row: dict[str, Any] = {
        "id": pid,
        "household_id": household,
        "village_id": county.household_village[household - 1],
        "visit_id": county.rated_visit(household, created),
        "phone": county.household_phone[household - 1],
        "period": period,
        "state": "queued",
        "locale": "zh_CN",
        "created_at": created,
        "send_after": send_after,
        "sent_at": None,
        "asked_at": None,
        "reminded_at": None,
        "clarified": False,
        "clarified_at": None,
        "asked_reason_at": None,
        "closed_at": None,
        "rating": None,
        "reason": None,
        "comment": None,
        "callback": False,
        "due_at": send_after,
        "problem_id": None,
    }
    if send_after > county.now:
        return row
    sent = send_after + timedelta(seconds=rng.randint(0, 3600))
    row["sent_at"] = row["asked_at"] = sent
    fate = rng.random()
    if sent > county.now - timedelta(days=3) and fate < 0.5:  # not answered yet
        row["state"], row["due_at"] = "sent", sent + timedelta(days=1)
        return row
    row["due_at"] = None
    if fate < 0.80:
        low = county.household_village[household - 1] in county.low_villages
        rating = pick(rng, SMS_RATING_LOW if low else SMS_RATING)
        row.update(state="answered", rating=rating, closed_at=sent + timedelta(minutes=rng.randint(1, 1440)))
        if rating == "不满意":
            if rng.random() < 0.7:
                row["reason"] = rng.choice(("村里的路下雨就没法走", "低保没批", "自来水冬天冻管", "路灯坏了"))
                row["asked_reason_at"] = sent + timedelta(minutes=5)
            else:
                row["callback"] = True
    elif fate < 0.95:
        row.update(state="expired", reminded_at=sent + timedelta(days=1), closed_at=sent + timedelta(days=3))
    elif fate < 0.99:
        row.update(
            state="unclear",
            clarified=True,
            clarified_at=sent + timedelta(minutes=20),
            closed_at=sent + timedelta(hours=2),
        )
    else:
        row.update(state="opted_out", closed_at=sent + timedelta(minutes=30))
    return row


# --- problems ----------------------------------------------------------------------------------------------


def problem_rows(county: County, count: int, rng: random.Random) -> Iterator[dict[str, Any]]:
    """From visits (~70 %: nearly half resolved on site) and SMS. The escalated ones (survey.problems): about
    half closed (销号) later, mostly after a meeting decision; the rest awaiting the meeting, decided and in
    hand, overdue, on the county list, or merged into an earlier one."""
    made: list[tuple[datetime, int, int | None, int | None, str]] = []
    for _ in range(count):
        if rng.random() < 0.7 and county.visits:
            vid, household, cadre, at = rng.choice(county.visits)
            made.append((at, household, vid, cadre, "visit"))
        else:
            at = working_moment(county, county.year_start, county.now, rng)
            made.append((at, rng.randint(1, county.households), None, None, "sms"))
    made.sort(key=lambda row: row[0])
    today = county.now.astimezone(county.tz).date()
    for pid, (at, household, vid, cadre, source) in enumerate(made, start=1):
        on_site = source == "visit" and rng.random() < 0.45
        row: dict[str, Any] = {
            "id": pid,
            "household_id": household,
            "visit_id": vid,
            "raised_by_id": cadre,
            "source": source,
            "category": rng.choice(CATEGORIES),
            "description": "问题描述："
            + rng.choice(("缺少务工信息", "慢性病报销手续不清楚", "屋顶漏雨", "水量不足")),
            "resolved_on_site": on_site,
            "resolution": "现场解答" if on_site else None,
            "status": "closed" if on_site else "escalated",
            "created_at": at,
            "closed_at": at if on_site else None,
            "decided_at": None,
            "escalated_at": None if on_site else at,
            "responsible_id": None,
            "due_on": None,
            "meeting_on": None,
            "merged_into_id": None,
            "overdue_on": None,
        }
        if not on_site:
            row.update(escalated_moves(county, household, at, today, pid, rng))
        yield row


def escalated_moves(
    county: County, household: int, raised: datetime, today: date, pid: int, rng: random.Random
) -> dict[str, Any]:
    """Where an escalated problem has got to: the meeting a week or two on, a deadline, 销号 or not."""
    meeting = raised + timedelta(days=rng.uniform(2, 16))
    if meeting >= county.now:
        return {}  # still awaiting the meeting
    fate = rng.random()
    if fate < 0.03 and pid > 1:
        return {"status": "merged", "merged_into_id": rng.randint(max(1, pid - 500), pid - 1)}
    township = county.village_township[county.household_village[household - 1] - 1]
    decided = {
        "decided_at": meeting,
        "meeting_on": meeting.astimezone(county.tz).date(),
        "responsible_id": rng.choice(county.township_cadres[(township, "乡镇包保干部")]),
        "due_on": meeting.astimezone(county.tz).date() + timedelta(days=rng.choice((7, 15, 30))),
        "status": "decided",
    }
    closed = meeting + timedelta(days=rng.uniform(1, 40))
    if fate < 0.75 and closed < county.now:
        if rng.random() < 0.08:  # closed with no meeting decision recorded: an integrity flag
            decided.update(decided_at=None, meeting_on=None)
        return {**decided, "status": "closed", "closed_at": closed, "resolution": "专题党委会研究解决"}
    if decided["due_on"] < today and fate < 0.9:
        late = decided["due_on"] + timedelta(days=1)
        return {**decided, "status": "county" if fate > 0.85 else "overdue", "overdue_on": late}
    return decided


# --- the build ---------------------------------------------------------------------------------------------


@dataclass
class Build:
    seconds: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


async def fresh_database(url: str) -> Any:
    """A Database on an empty, migrated schema (SQLite: a new file; PostgreSQL: `public` dropped first)."""
    from sqlalchemy.engine import make_url

    from storage.db import Database
    from storage.migrate import upgrade

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                Path(f"{path}{suffix}").unlink()
    db = Database(url)
    if db.engine.dialect.name == "postgresql":
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            await conn.exec_driver_sql("CREATE SCHEMA public")
    await upgrade(db)
    return db


async def insert(db: Any, table: str, rows: Iterable[dict[str, Any]], chunk: int, build: Build) -> None:
    from storage.models import Base

    target = Base.metadata.tables[table]
    known = set(target.c.keys())  # the models may have lost a column the generator still fills
    started = time.perf_counter()
    done = 0
    for batch in chunked(({k: v for k, v in row.items() if k in known} for row in rows), chunk):
        async with db.engine.begin() as conn:
            await conn.execute(target.insert(), batch)
        done += len(batch)
        if done % (chunk * 20) == 0:
            print(f"  … {table}: {done}", file=sys.stderr, flush=True)
    build.seconds[table] = build.seconds.get(table, 0.0) + time.perf_counter() - started
    build.rows[table] = build.rows.get(table, 0) + done


async def latest_visits(db: Any, county: County, chunk: int, build: Build) -> None:
    """households.latest_visit_id, once the visits it refers to are in (households go in first)."""
    from sqlalchemy import bindparam, update

    from storage.models import Household

    started = time.perf_counter()
    latest = [{"b_id": h, "latest": visits[-1][1]} for h, visits in sorted(county.household_visits.items())]
    statement = (
        update(Household.__table__)
        .where(Household.__table__.c.id == bindparam("b_id"))
        .values(latest_visit_id=bindparam("latest"))
    )
    for first in range(0, len(latest), chunk):
        async with db.engine.begin() as conn:
            await conn.execute(statement, latest[first : first + chunk])
    build.seconds["(latest visits)"] = time.perf_counter() - started


async def build_database(db: Any, args: argparse.Namespace, county: County) -> Build:
    rng = random.Random(args.seed)
    build = Build()
    for table, rows in place_rows(county, args.villages, rng).items():
        await insert(db, table, rows, args.chunk, build)
    cadres, links = cadre_rows(county, args.helpers, rng)
    await insert(db, "cadres", cadres, args.chunk, build)
    await insert(db, "cadre_villages", links, args.chunk, build)
    await insert(db, "households", household_rows(county, args.households, rng), args.chunk, build)
    started = time.perf_counter()
    plan = visit_plan(county, args.visits, args.quarter_share, rng)
    build.seconds["(visit plan)"] = time.perf_counter() - started
    await insert(db, "visits", visit_rows(county, plan, rng), args.chunk, build)
    await latest_visits(db, county, args.chunk, build)
    polls = min(args.polls, county.households * 40)
    await insert(db, "polls", poll_rows(county, polls, rng), args.chunk, build)
    await insert(db, "problems", problem_rows(county, args.problems, rng), args.chunk, build)
    started = time.perf_counter()
    async with db.engine.begin() as conn:
        if db.engine.dialect.name == "postgresql":
            for table in (
                "counties",
                "townships",
                "villages",
                "cadres",
                "households",
                "visits",
                "polls",
                "problems",
            ):
                await conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
        if args.analyze:
            await conn.exec_driver_sql("ANALYZE")
    if db.engine.dialect.name == "sqlite":
        async with db.reader.connect() as conn:  # outside a transaction (the writer's begins one)
            await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    build.seconds["(finish)"] = time.perf_counter() - started
    if db.engine.dialect.name == "postgresql" and not args.no_vacuum:
        # What autovacuum does minutes after a load on any default server (this machine's runs with
        # autovacuum = off): without it no page is all-visible, so every index-only scan reads the table too,
        # and the planner has no statistics. A county's database a year old has been vacuumed many times.
        started = time.perf_counter()
        async with db.engine.connect() as conn:
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.exec_driver_sql("VACUUM ANALYZE")
        build.seconds["(vacuum analyze)"] = time.perf_counter() - started
    return build


async def table_counts(db: Any) -> dict[str, int]:
    tables = ("townships", "villages", "cadres", "cadre_villages", "households", "visits", "answers", "polls")
    counts = {}
    async with db.engine.connect() as conn:
        for table in (*tables, "problems"):
            counts[table] = (await conn.exec_driver_sql(f"SELECT count(*) FROM {table}")).scalar_one()
    return counts


async def latest_visit(db: Any) -> datetime | None:
    from sqlalchemy import func, select

    from storage.models import Visit

    async with db.reading() as s:
        return (await s.execute(select(func.max(Visit.submitted_at)))).scalar_one()


# --- timing the reports ------------------------------------------------------------------------------------


CASES = (
    "satisfaction --by village",
    "satisfaction --by township",
    "satisfaction --by cadre",
    "satisfaction --by village --period <year>",
    "satisfaction --by cadre --period <year>",
    "coverage (screen table)",
    "coverage --format csv (long lists)",
    "households",
    "households --warning",
    "integrity",
    "problems",
    "problems --by township",
    "overdue",
)


def report_case(db: Any, ctx: Any, case: str) -> Callable[[], Awaitable[Any]]:
    """A report as `zoufang report …` builds it (bot.cli), the options of the case's name, the rest default."""
    from bot import reports

    async def go() -> Any:
        area = await reports.area_from(db, None, None, ctx)
        if case.startswith("satisfaction"):
            by = case.split()[2]
            year = reports.period_from(None, "year", ctx).label if "--period" in case else None
            chosen = reports.period_from(year, ctx.settings.poll_period, ctx)
            return await reports.satisfaction(db, ctx, by, chosen, area)
        if case.startswith("coverage"):
            roles = reports.role_from(None, ctx)
            return await reports.coverage(db, ctx, roles, None, area, full_lists="csv" in case)
        if case == "households":
            return await reports.households(db, ctx, None, area)
        if case == "households --warning":
            return await reports.warnings(db, ctx, None, area)
        if case == "integrity":
            return await reports.integrity(db, ctx, reports.period_from(None, "quarter", ctx), area)
        if case == "problems":
            return await reports.problems(db, ctx, reports.period_from(None, "year", ctx), area)
        if case == "problems --by township":
            year = reports.period_from(None, "year", ctx)
            return await reports.problems_by_township(db, ctx, year, area)
        if case == "overdue":
            return await reports.overdue(db, ctx, None)
        raise BenchError(f"unknown case {case!r}")

    return go


async def run_worker(url: str, now: str, case: str, runs: int) -> None:
    """One report, `runs` times, in this process: one JSON line per run (so a stopped worker's runs count)."""
    sys.path.insert(0, str(ROOT))
    from bot.reports.base import Context
    from bot.settings import load_settings
    from storage.db import Database

    conf = load_settings({"ZOUFANG_DB_URL": url}, dotenv=None)
    db = Database(url)
    try:
        build = report_case(db, Context(conf, datetime.fromisoformat(now)), case)
        for _ in range(runs):
            started = time.perf_counter()
            try:
                report = await build()
            except Exception as exc:  # a crash is a finding, not the end of the benchmark
                first = str(exc).splitlines()[0][:200] if str(exc) else ""
                print(json.dumps({"error": f"{type(exc).__name__}: {first}"}), flush=True)
                return
            print(
                json.dumps({"seconds": time.perf_counter() - started, "rows": len(report.rows)}), flush=True
            )
    finally:
        await db.close()


@dataclass
class Timing:
    name: str
    rows: int
    runs: list[float]
    note: str = ""
    load: float = 0.0  # the 1-minute load average, the higher of before and after (other work on the machine)
    aim: float = AIM_SECONDS

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def worst(self) -> float:
        return max(self.runs)

    @property
    def ok(self) -> bool:
        return not self.note

    @property
    def meets(self) -> bool:
        return self.ok and self.worst <= self.aim

    @property
    def verdict(self) -> str:
        if self.note.startswith("FAILED"):
            return "FAILED"
        if self.note.startswith("STOPPED"):
            return "STOPPED"
        return "ok" if self.meets else "OVER"

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "rows": self.rows,
            "median_s": round(self.median, 4),
            "max_s": round(self.worst, 4),
            "runs_s": [round(r, 4) for r in self.runs],
            "aim_s": self.aim,
            "meets_aim": self.meets,
            "note": self.note,
            "load_average": round(self.load, 2),
        }


def text_of(output: str | bytes | None) -> str:
    return output.decode(errors="replace") if isinstance(output, bytes) else output or ""


def time_case(url: str, now: datetime, case: str, runs: int, limit: float, folder: Path) -> Timing:
    """The case in a worker process (this script, --role worker), stopped after `limit` seconds in all."""
    argv = [sys.executable, str(SCRIPT), "--role", "worker", "--db-url", url, "--now", now.isoformat()]
    argv += ["--case", case, "--runs", str(runs)]
    stopped = False
    load = os.getloadavg()[0]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=limit, cwd=folder, env=child_env()
        )
        out, err = done.stdout, done.stderr
    except subprocess.TimeoutExpired as exc:  # the child is killed
        out, err, stopped = text_of(exc.stdout), text_of(exc.stderr), True
    seconds, rows, note = [], 0, ""
    for line in out.splitlines():
        with contextlib.suppress(ValueError):
            result = json.loads(line)
            if "error" in result:
                note = f"FAILED: {result['error']}"
            else:
                seconds.append(result["seconds"])
                rows = result["rows"]
    if stopped:
        note = f"STOPPED: {len(seconds)} of {runs} runs done within {limit:g} s"
        if not seconds:
            seconds = [limit]
    elif not seconds and not note:
        note = f"FAILED: worker exited with nothing to say: {err.strip()[-300:]}"
    if not seconds:  # a failure before its first run still gets a line in the table
        seconds = [0.0]
    return Timing(case, rows, seconds, note, max(load, os.getloadavg()[0]), aim_for(url))


def time_reports(url: str, now: datetime, args: argparse.Namespace, folder: Path) -> list[Timing]:
    year = str(now.astimezone(ZoneInfo(TIMEZONE)).year)
    timings = []
    for case in CASES:
        if args.only and args.only not in case:
            continue
        timing = time_case(url, now, case, args.runs, args.limit, folder)
        timing.name = case.replace("<year>", year)
        timings.append(timing)
        print(
            f"  {timing.name:<44} {timing.median:7.3f} s median, {timing.worst:7.3f} s max, {timing.rows:>7} rows"
            + (f"  {timing.note}" if timing.note else ""),
            flush=True,
        )
    return timings


# --- the CLI -----------------------------------------------------------------------------------------------

IMPORT_CHECK = """
import json, sys, time
from bot.cli import main
took = {}
for args in json.loads(sys.argv[1]):
    started = time.perf_counter()
    main(args, standalone_mode=False)
    took[" ".join(args)] = round(time.perf_counter() - started, 3)
watched = ("aiogram", "twilio", "aiohttp", "matplotlib", "openpyxl", "rich")
print("IMPORTS " + json.dumps({"loaded": {m: m in sys.modules for m in watched}, "seconds": took}))
"""
PAST = "2000Q1"  # an empty period: the commands that are slow at scale still run every line of their code
CHECKED_COMMANDS = [
    ["report", "--help"],
    ["report", "satisfaction", "--format", "csv"],
    ["report", "satisfaction", "--by", "cadre", "--period", PAST, "--format", "csv"],
    ["report", "coverage", "--period", PAST],
    ["report", "households", "--format", "csv"],
    ["report", "households", "--warning", "--format", "csv"],
    ["report", "integrity", "--format", "csv"],
    ["report", "problems", "--format", "csv"],
    ["report", "problems", "--by", "township", "--format", "csv"],
    ["report", "overdue", "--format", "csv"],
]


def time_command(
    label: str, argv: list[str], env: dict[str, str], folder: Path, args: argparse.Namespace
) -> Timing:
    seconds, out = [], ""
    load = os.getloadavg()[0]
    for _ in range(args.runs):
        started = time.perf_counter()
        try:
            done = subprocess.run(
                argv, env=env, cwd=folder, capture_output=True, text=True, timeout=args.limit
            )
        except subprocess.TimeoutExpired:
            return Timing(label, 0, [*seconds, args.limit], f"STOPPED: not done within {args.limit:g} s")
        seconds.append(time.perf_counter() - started)
        if done.returncode != 0:
            return Timing(label, 0, seconds, f"FAILED: {(done.stderr.strip() or done.stdout.strip())[-300:]}")
        out = done.stdout
    return Timing(label, max(0, len(out.splitlines()) - 1), seconds, load=max(load, os.getloadavg()[0]))


def time_cli(url: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    env = child_env(ZOUFANG_DB_URL=url)
    zoufang = zoufang_command()
    results: dict[str, Any] = {}
    for words in (["report", "--help"], ["report", "satisfaction", "--format", "csv"]):
        label = "zoufang " + " ".join(words)
        timing = results[label] = time_command(label, [zoufang, *words], env, folder, args)
        print(
            f"  {label:<44} {timing.median:7.3f} s median, {timing.worst:7.3f} s max"
            + (f"  {timing.note}" if timing.note else ""),
            flush=True,
        )
    try:
        check = subprocess.run(
            [sys.executable, "-c", IMPORT_CHECK, json.dumps(CHECKED_COMMANDS)],
            env=env,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=args.limit * 3,
        )
    except subprocess.TimeoutExpired:
        results["imports"] = {"error": f"not done within {args.limit * 3:g} s"}
        return results
    found = [line for line in check.stdout.splitlines() if line.startswith("IMPORTS ")]
    if check.returncode != 0 or not found:
        results["imports"] = {"error": (check.stderr.strip() or check.stdout.strip())[-500:]}
    else:
        results["imports"] = json.loads(found[-1].removeprefix("IMPORTS "))
    return results


# --- the run -----------------------------------------------------------------------------------------------


def database_url(args: argparse.Namespace, folder: Path) -> str:
    from storage.db import sqlite_url

    if args.db_url:
        return str(args.db_url)
    return sqlite_url(Path(args.db) if args.db else folder / "reports.db")


def database_size(url: str) -> int | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    return sum(
        Path(f"{parsed.database}{s}").stat().st_size
        for s in ("", "-wal")
        if Path(f"{parsed.database}{s}").exists()
    )


async def prepare(args: argparse.Namespace, url: str, now: datetime, county: County) -> tuple[Any, Any]:
    """Build the database (or take it as it is with --reuse); (row counts, Build or None)."""
    from storage.db import Database

    build: Build | None = None
    if args.reuse:
        db = Database(url)
        latest = await latest_visit(db)
        if latest is None:
            await db.close()
            raise BenchError(f"--reuse: no submitted visit in {url}")
        print(
            f"reusing {url} (latest visit {latest.isoformat()}); the reports run with now = {now.isoformat()}"
        )
    else:
        print(
            f"building {args.households} households, {args.visits} visits, {args.polls} polls, "
            f"{args.problems} problems in {url}",
            flush=True,
        )
        db = await fresh_database(url)
        build = await build_database(db, args, county)
    try:
        return await table_counts(db), build
    finally:
        await db.close()


async def run_in(args: argparse.Namespace, folder: Path) -> int:
    url = database_url(args, folder)
    now = args.now or datetime.now(UTC).replace(microsecond=0)
    county = County(now=now, tz=ZoneInfo(TIMEZONE), townships=args.townships)
    counts, build = await prepare(args, url, now, county)
    size = database_size(url)
    print(
        "  rows: "
        + ", ".join(f"{t} {n}" for t, n in counts.items())
        + (f"; file {size / 1e6:.0f} MB" if size else "")
    )
    if counts["answers"] == 0:
        print("  (no `answers` rows: the reports never read them, so the benchmark does not write them)")
    if build is not None:
        per_table = ", ".join(f"{t} {s:.1f} s" for t, s in build.seconds.items())
        print(f"  build: {build.total:.1f} s ({per_table})", flush=True)
    print(
        f"timing the reports ({args.runs} runs each in a worker process, stopped after {args.limit:g} s), "
        f"now = {now.isoformat()}",
        flush=True,
    )
    timings = time_reports(url, now, args, folder)
    cli: dict[str, Any] = {}
    if not args.no_cli:
        print(f"timing the CLI ({args.runs} runs each) and checking its imports", flush=True)
        cli = time_cli(url, folder, args)
    summary(county, counts, build, timings, cli, size)
    if args.json:
        write_json(args.json, args, url, counts, build, timings, cli, size, now)
        print(f"wrote {args.json}")
    failed = [t for t in timings if t.note.startswith("FAILED")]
    loaded = cli.get("imports", {}).get("loaded", {})
    return 1 if failed or loaded.get("aiogram") or loaded.get("twilio") else 0


def summary(
    county: County,
    counts: dict[str, int],
    build: Build | None,
    timings: list[Timing],
    cli: dict[str, Any],
    size: int | None,
) -> None:
    print()
    print(
        f"zoufang report — {counts['households']} households, {counts['visits']} visits, {counts['polls']} polls, "
        f"{counts['problems']} problems, {counts['cadres']} cadres, {counts['villages']} villages"
        + (f" ({size / 1e6:.0f} MB)" if size else "")
    )
    if build is not None:
        print(f"  build (untimed for the aim)              {build.total:8.1f} s")
        if county.roles:
            print(
                "  cadres by role                           "
                + ", ".join(f"{r} {n}" for r, n in county.roles.items())
            )
    aim = timings[0].aim if timings else AIM_SECONDS
    print(
        f"  {'report (in-process, seconds)':<44} {'median':>8} {'max':>8} {'rows':>7} {'load':>5}  aim ≤ {aim:g} s"
    )
    for t in timings:
        print(f"  {t.name:<44} {t.median:8.3f} {t.worst:8.3f} {t.rows:>7} {t.load:5.1f}  {t.verdict}")
    for label, timing in cli.items():
        if isinstance(timing, Timing):
            print(
                f"  {label:<44} {timing.median:8.3f} {timing.worst:8.3f} {'':>7} {timing.load:5.1f}  "
                f"{timing.verdict} (subprocess)"
            )
    for t in [*timings, *(t for t in cli.values() if isinstance(t, Timing))]:
        if t.note:
            print(f"  note: {t.name}: {t.note}")
    if "error" in cli.get("imports", {}):
        print(f"  import check FAILED: {cli['imports']['error']}")
    elif "imports" in cli:
        loaded = cli["imports"]["loaded"]
        print(
            "  imported after `report --help` and every report command (bot.cli.main): "
            + ", ".join(f"{m} {'YES' if v else 'no'}" for m, v in loaded.items())
        )
        for command, took in cli["imports"]["seconds"].items():
            print(f"    zoufang {command:<50} {took:7.3f} s (in that process)")


def write_json(
    path: Path,
    args: argparse.Namespace,
    url: str,
    counts: dict[str, int],
    build: Build | None,
    timings: list[Timing],
    cli: dict[str, Any],
    size: int | None,
    now: datetime,
) -> None:
    from sqlalchemy.engine import make_url

    figures = {
        "benchmark": "reports",
        "backend": make_url(url).get_backend_name(),
        "now": now.isoformat(),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "rows": counts,
        "database_bytes": size,
        "build": None
        if build is None
        else {
            "total_s": round(build.total, 2),
            "per_table_s": {t: round(s, 2) for t, s in build.seconds.items()},
        },
        "aim_s": aim_for(url),
        "reports": [t.as_json() for t in timings],
        "cli": {label: t.as_json() for label, t in cli.items() if isinstance(t, Timing)},
        "imports": cli.get("imports"),
        "args": {k: (str(v) if isinstance(v, Path | datetime) else v) for k, v in vars(args).items()},
    }
    Path(path).write_text(json.dumps(figures, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


async def main_async(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    if args.keep:
        folder = Path(tempfile.mkdtemp(prefix="zoufang-bench-reports-"))
        print(f"keeping the run's files in {folder}")
        return await run_in(args, folder)
    with tempfile.TemporaryDirectory(prefix="zoufang-bench-reports-") as tmp:
        return await run_in(args, Path(tmp))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--households", type=int, default=250_000, help="households (default 250000)")
    parser.add_argument("--visits", type=int, default=200_000, help="submitted visits (default 200000)")
    parser.add_argument("--polls", type=int, default=1_000_000, help="SMS polls (default 1000000)")
    parser.add_argument("--problems", type=int, default=20_000, help="problems (default 20000)")
    parser.add_argument("--townships", type=int, default=10, help="townships (default 10)")
    parser.add_argument("--villages", type=int, default=200, help="villages (default 200)")
    parser.add_argument("--helpers", type=int, default=5, help="帮扶责任人 per village (default 5)")
    parser.add_argument(
        "--quarter-share",
        type=float,
        default=0.3,
        help="share of visits in the current quarter (default 0.3)",
    )
    parser.add_argument("--runs", type=int, default=3, help="runs per report (default 3)")
    parser.add_argument(
        "--chunk", type=int, default=10_000, help="rows per insert transaction (default 10000)"
    )
    parser.add_argument("--seed", type=int, default=2026, help="random seed (default 2026)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", type=Path, help="SQLite file to (re)build (default: in a temp folder)")
    where.add_argument(
        "--db-url", help="database URL, e.g. postgresql+asyncpg://root@127.0.0.1/test (dropped!)"
    )
    parser.add_argument("--reuse", action="store_true", help="time the reports on --db/--db-url as it is")
    parser.add_argument(
        "--analyze", action="store_true", help="run ANALYZE after the build (zoufang does not)"
    )
    parser.add_argument(
        "--no-vacuum",
        action="store_true",
        help="PostgreSQL: skip the VACUUM ANALYZE after the build (autovacuum's work) and time the reports on "
        "tables never vacuumed nor analyzed",
    )
    parser.add_argument("--only", help="time only the reports whose name contains this")
    parser.add_argument(
        "--limit",
        type=float,
        default=120.0,
        help="stop a report's runs after this many seconds (default 120)",
    )
    parser.add_argument(
        "--now",
        type=aware,
        help="the reports' clock, ISO 8601 with a zone (default: the run's start; the data is built around it)",
    )
    parser.add_argument(
        "--no-cli", action="store_true", help="skip the CLI subprocess timings and import check"
    )
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (the database)")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.households, args.visits, args.townships, args.helpers, args.runs, args.chunk) < 1:
        parser.error("--households, --visits, --townships, --helpers, --runs and --chunk must be at least 1")
    if args.villages < args.townships or args.households < args.villages:
        parser.error("need townships ≤ villages ≤ households")
    if args.reuse and not (args.db or args.db_url):
        parser.error("--reuse needs --db or --db-url")
    return args


def aware(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{text!r} has no zone (e.g. 2026-11-23T08:00:00+08:00)")
    return moment.astimezone(UTC)


ROLES: dict[str, Callable[[argparse.Namespace], Awaitable[None]]] = {
    "worker": lambda a: run_worker(a.db_url, a.now.isoformat(), a.case, a.runs),
}


def main(argv: list[str] | None = None) -> int:
    return run_benchmark(parse_args(argv), ROLES, main_async)


if __name__ == "__main__":
    sys.exit(main())
