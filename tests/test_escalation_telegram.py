"""The secretaries' side in Telegram (/queue, /problem, decide, close, merge, reopen) end to end: the real webhook
and dispatcher over HTTP, the real aiogram client against the fake Bot API server, the demo roster."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select

from bot.app import make_app
from bot.flows.escalation import ActionRefused
from messages import render
from storage.db import Database
from storage.models import Cadre, Household, Problem, ProblemEvent, Township, Village, utcnow
from storage.visits import cadre_by_code
from survey.meetings import Calendar
from survey.script import load_script
from tests.fake_telegram import FakeTelegram, callback_update, message_update
from tests.test_escalation import raise_problem as add_problem
from tests.test_telegram import Webhook, invite_code, settings_for

SECRETARY_A = 7101  # GB012 乡镇党委书记, 东风镇
SPECIALIST_A = 7102  # GB013 扶贫专干, 东风镇
SECRETARY_B = 7201  # GB025 乡镇党委书记, 福顺乡
FIRST_SECRETARY = 7001  # GB001 第一书记, 新华村 (东风镇)
USERS = {SECRETARY_A: "GB012", SPECIALIST_A: "GB013", SECRETARY_B: "GB025", FIRST_SECRETARY: "GB001"}


class Chat:
    """One cadre's private chat: what they send, and the last message the bot sent or edited for them."""

    def __init__(self, hook: Webhook, user: int) -> None:
        self.hook, self.user = hook, user
        self.text, self.markup = "", {}

    @property
    def fake(self) -> FakeTelegram:
        return self.hook.fake

    async def say(self, text: str) -> str:
        return await self._post(message_update(self.user, text))

    async def tap(self, data: str) -> str:
        return await self._post(callback_update(self.user, data))

    async def _post(self, update: dict[str, Any]) -> str:
        before = len(self.fake.calls)
        assert await self.hook.post(update) == 200
        shown = [
            c.params
            for c in self.fake.calls[before:]
            if c.ok
            and c.method.lower() in ("sendmessage", "editmessagetext")
            and c.params.get("chat_id") == self.user
        ]
        if shown:
            self.text, self.markup = shown[-1]["text"], shown[-1].get("reply_markup") or {}
            return self.text
        return ""

    def buttons(self) -> list[tuple[str, str]]:
        return [
            (b["text"], b["callback_data"]) for row in self.markup.get("inline_keyboard", []) for b in row
        ]

    def button(self, label: str) -> str:
        for text, data in self.buttons():
            if label in text:
                return data
        raise AssertionError(f"no button {label!r} in {self.buttons()}")

    def labels(self) -> list[str]:
        return [text for text, _ in self.buttons()]


@pytest.fixture
async def hook(roster: Database, fake_telegram: FakeTelegram, fsm_redis_url: str):
    app = make_app(roster, load_script(), settings_for(fake_telegram, redis_url=fsm_redis_url))
    async with TestClient(TestServer(app)) as client:
        yield Webhook(client, fake_telegram)


async def chat(hook: Webhook, db: Database, user: int, locale: str | None = None) -> Chat:
    """A bound chat for that test user's cadre (optionally with its language set first)."""
    code = USERS[user]
    if locale:
        async with db.session() as s:
            (await cadre_by_code(s, code)).locale = locale  # type: ignore[union-attr]
    c = Chat(hook, user)
    reply = await c.say(f"/start {await invite_code(db, code)}")
    assert reply, "the cadre was not bound"
    return c


async def households_of(db: Database, village: str) -> list[str]:
    async with db.reading() as s:
        query = (
            select(Household.code)
            .join(Village, Village.id == Household.village_id)
            .where(Village.name == village)
            .order_by(Household.code)
        )
        return list((await s.execute(query)).scalars())


async def raise_problem(
    db: Database,
    household: str,
    raiser: str,
    *,
    days_ago: int = 40,
    category: str = "饮水",
    description: str = "水管冻裂",
) -> int:
    """An escalated problem as a submitted visit leaves it, raised `days_ago` days ago (so a meeting has met)."""
    return await add_problem(
        db, household, raiser, utcnow() - timedelta(days=days_ago), category, description
    )


async def problem_row(db: Database, problem_id: int) -> Problem:
    async with db.reading() as s:
        row = await s.get(Problem, problem_id)
    assert row is not None
    return row


async def events(db: Database, problem_id: int) -> list[ProblemEvent]:
    async with db.reading() as s:
        query = select(ProblemEvent).where(ProblemEvent.problem_id == problem_id).order_by(ProblemEvent.id)
        return list((await s.execute(query)).scalars())


async def cadre_id(db: Database, code: str) -> int:
    async with db.reading() as s:
        cadre = await cadre_by_code(s, code)
    assert cadre is not None
    return cadre.id


def today() -> datetime:
    return datetime.now(settings_for(FakeTelegram()).tz)


def refusal(code: str, locale: str = "zh_CN", **params: Any) -> str:
    return ActionRefused(code, **params).text(locale)


async def decide(c: Chat, problem_id: int, responsible: str, days: int) -> str:
    await c.say(f"/problem {problem_id}")
    assert "选择责任人" in await c.tap(c.button("决定"))
    assert "请选择办结期限" in await c.tap(c.button(responsible))
    return await c.tap(c.button(f"+{days}天"))


# --- the secretary of township A ---------------------------------------------------------------------------


async def test_secretary_sees_the_township_queue_and_decides(hook: Webhook, roster: Database):
    xinhua, fushun = await households_of(roster, "新华村"), await households_of(roster, "福顺村")
    older = await raise_problem(roster, xinhua[0], "GB001", days_ago=40)
    newer = await raise_problem(
        roster, xinhua[1], "GB001", days_ago=20, category="住房", description="屋顶漏雨"
    )
    elsewhere = await raise_problem(roster, fushun[0], "GB014")
    secretary = await chat(hook, roster, SECRETARY_A)

    queue = await secretary.say("/queue")
    assert "东风镇未办结问题共 2 个" in queue and "第 1/1 页" in queue
    assert f"#{older} 新华村 饮水" in queue and "（40天，待专题党委会研究）" in queue
    assert queue.index(f"#{older} ") < queue.index(f"#{newer} ")  # oldest first
    assert f"#{elsewhere} " not in queue
    assert [data for _, data in secretary.buttons()] == [f"eo:{older}", f"eo:{newer}"]

    card = await secretary.tap(f"eo:{older}")
    assert f"问题 #{older}｜待专题党委会研究" in card and "水管冻裂" in card and "刘平福走访提出" in card
    assert "****" in card and "上报专题党委会（刘平福）" in card
    assert secretary.labels() == ["决定", "合并"]  # nothing to close before a decision

    picker = await secretary.tap(secretary.button("决定"))
    assert f"问题 #{older}：请选择责任人" in picker and "第 1/2 页" in picker  # 15 cadres of 东风镇, 8 a page
    assert "刘平福·第一书记" in secretary.labels()
    await secretary.tap(secretary.button("›"))
    assert "第 2/2 页" in secretary.text and "曾文芳·扶贫专干" in secretary.labels()
    due = await secretary.tap(secretary.button("曾文芳"))
    assert "责任人 曾文芳" in due and [label[:4] for label in secretary.labels()[:3]] == [
        "+7天（",
        "+15天",
        "+30天",
    ]
    done = await secretary.tap(secretary.button("+15天"))
    assert done.startswith("✅ 已决定。") and "已决定，办理中" in done and "责任人 曾文芳" in done
    assert secretary.labels() == ["重新决定", "销号", "合并"]

    day = today().date()
    row = await problem_row(roster, older)
    assert row.status == "decided" and row.responsible_id == await cadre_id(roster, "GB013")
    assert row.due_on == day + timedelta(days=15)
    assert row.meeting_on == Calendar().latest_on_or_before(day)
    decided = (await events(roster, older))[-1]
    assert (decided.action, decided.from_state, decided.to_state) == ("decide", "escalated", "decided")
    assert decided.actor_id == await cadre_id(roster, "GB012") and decided.due_on == row.due_on
    assert decided.responsible_id == row.responsible_id and decided.meeting_on == row.meeting_on


async def test_close_with_a_note_then_reopen(hook: Webhook, roster: Database):
    problem = await raise_problem(roster, (await households_of(roster, "永安村"))[0], "GB004")
    secretary = await chat(hook, roster, SECRETARY_A)
    await decide(secretary, problem, "徐英文", 7)

    asked = await secretary.tap(secretary.button("销号"))
    assert f"问题 #{problem} 销号：请发送处理结果" in asked
    closed = await secretary.say("已更换水管，村民确认通水")
    assert closed.startswith("✅ 已销号。") and "处理结果：已更换水管，村民确认通水" in closed
    assert secretary.labels() == ["重新打开"]
    row = await problem_row(roster, problem)
    assert row.status == "closed" and row.resolution == "已更换水管，村民确认通水" and row.closed_at
    close = (await events(roster, problem))[-1]
    assert (close.action, close.note, close.meeting_on) == (
        "close",
        "已更换水管，村民确认通水",
        row.meeting_on,
    )

    assert "重新打开：请发送说明" in await secretary.tap(secretary.button("重新打开"))
    reopened = await secretary.say("村民反映又漏水了")
    assert "已重新打开" in reopened and "待专题党委会研究" in reopened and "列入" in reopened
    row = await problem_row(roster, problem)
    assert row.status == "escalated" and row.responsible_id is None and row.due_on is None
    last = (await events(roster, problem))[-1]
    assert (last.action, last.from_state, last.to_state, last.note) == (
        "reopen",
        "closed",
        "escalated",
        "村民反映又漏水了",
    )
    # the text after the action is not another note: with no visit it searches households, as always
    assert "没有找到符合的户" in await secretary.say("随便说点什么")
    assert len(await events(roster, problem)) == 4


async def test_merge_a_duplicate(hook: Webhook, roster: Database):
    homes = await households_of(roster, "红旗村")
    kept = await raise_problem(roster, homes[0], "GB007", days_ago=30)
    duplicate = await raise_problem(roster, homes[0], "GB008", days_ago=10)
    secretary = await chat(hook, roster, SECRETARY_A)
    await secretary.say(f"/problem {duplicate}")
    assert "要合并到的问题编号" in await secretary.tap(secretary.button("合并"))
    assert await secretary.say("那个") == render("problems/telegram_merge_number.txt", "zh_CN")
    merged = await secretary.say(f"#{kept}")
    assert merged.startswith("✅ 已合并。") and "已合并" in merged and f"合并（程海海）：#{kept}" in merged
    row = await problem_row(roster, duplicate)
    assert row.status == "merged" and row.merged_into_id == kept and row.closed_at is not None
    assert (await events(roster, duplicate))[-1].action == "merge"
    assert (await problem_row(roster, kept)).status == "escalated"
    queue = await secretary.say("/queue")
    assert f"#{kept} " in queue and f"#{duplicate} " not in queue


async def test_merge_into_a_closed_problem_is_refused(hook: Webhook, roster: Database):
    homes = await households_of(roster, "新华村")
    target = await raise_problem(roster, homes[2], "GB001")
    problem = await raise_problem(roster, homes[3], "GB001")
    async with roster.session() as s:
        (await s.get(Problem, target)).status = "closed"  # type: ignore[union-attr]
    secretary = await chat(hook, roster, SECRETARY_A)
    await secretary.tap(f"em:{problem}")
    answer = await secretary.say(str(target))
    assert answer == refusal("merge_target_closed", target=target, state="closed")
    assert (await problem_row(roster, problem)).status == "escalated"


async def test_close_without_a_decision_is_refused(hook: Webhook, roster: Database):
    problem = await raise_problem(roster, (await households_of(roster, "新华村"))[0], "GB001")
    secretary = await chat(hook, roster, SECRETARY_A)
    assert await secretary.tap(f"ec:{problem}") == refusal("not_decided")
    assert await secretary.say("修好了") != ""  # not taken as a note: nothing is pending
    row = await problem_row(roster, problem)
    assert row.status == "escalated" and row.resolution is None
    assert len(await events(roster, problem)) == 1


async def test_a_stale_button_answers_the_refusal_and_changes_nothing(hook: Webhook, roster: Database):
    problem = await raise_problem(roster, (await households_of(roster, "新华村"))[0], "GB001")
    secretary = await chat(hook, roster, SECRETARY_A)
    await secretary.say(f"/problem {problem}")
    old_decide = secretary.button("决定")
    await secretary.tap(old_decide)
    await secretary.tap(secretary.button("徐英文"))
    old_due = secretary.button("+30天")
    await secretary.tap(old_due)
    await secretary.tap(secretary.button("销号"))
    await secretary.say("办结")
    assert (await problem_row(roster, problem)).status == "closed"
    assert await secretary.tap(old_due) == refusal("bad_state", state="closed")
    assert await secretary.tap(old_decide) == refusal("bad_state", state="closed")
    assert len(await events(roster, problem)) == 3


async def test_not_yet_met_before_the_meeting(hook: Webhook, roster: Database):
    day = today().date()
    meeting_day = 2 if day.day == 1 else 1  # a calendar whose latest meeting precedes today
    async with roster.session() as s:
        township = (await s.execute(select(Township).where(Township.name == "东风镇"))).scalar_one()
        township.meeting_days = str(meeting_day)
    problem = await raise_problem(roster, (await households_of(roster, "新华村"))[0], "GB001", days_ago=0)
    secretary = await chat(hook, roster, SECRETARY_A)
    reply = await secretary.tap(f"ed:{problem}")
    assert reply == refusal("not_yet_met", meeting=Calendar((meeting_day,)).next_on_or_after(day))
    assert (await problem_row(roster, problem)).status == "escalated"


async def test_cancel_abandons_a_pending_note(hook: Webhook, roster: Database):
    problem = await raise_problem(roster, (await households_of(roster, "新华村"))[0], "GB001")
    secretary = await chat(hook, roster, SECRETARY_A)
    await decide(secretary, problem, "徐英文", 7)
    await secretary.tap(secretary.button("销号"))
    assert await secretary.say("/cancel") == "已放弃，问题没有改动。"
    await secretary.say("已修好")  # no longer a note
    assert (await problem_row(roster, problem)).status == "decided"
    await secretary.tap(f"ec:{problem}")
    await secretary.say("/queue")  # another command abandons it too, and is answered as usual
    assert "东风镇未办结问题共 1 个" in secretary.text
    await secretary.say("已修好")
    assert (await problem_row(roster, problem)).status == "decided"
    await secretary.tap(f"ec:{problem}")
    await secretary.tap(f"eo:{problem}")  # moving on to another queue button abandons it as well
    await secretary.say("已修好")
    assert (await problem_row(roster, problem)).status == "decided"


# --- who sees what ---------------------------------------------------------------------------------------------


async def test_another_townships_secretary_can_neither_see_nor_act(hook: Webhook, roster: Database):
    problem = await raise_problem(roster, (await households_of(roster, "新华村"))[0], "GB001")
    other = await chat(hook, roster, SECRETARY_B)
    assert "福顺乡目前没有未办结的问题" in await other.say("/queue")
    not_found = refusal("not_found", id=problem)
    assert await other.say(f"/problem {problem}") == not_found
    assert await other.tap(f"eo:{problem}") == not_found
    assert await other.tap(f"ed:{problem}") == not_found
    assert await other.tap(f"er:{problem}:{await cadre_id(roster, 'GB025')}") == not_found
    assert await other.tap(f"ew:{problem}:{await cadre_id(roster, 'GB012')}:7") == not_found
    assert await other.tap(f"ec:{problem}") == not_found
    assert await other.tap(f"em:{problem}") == not_found
    assert await other.say("随便") != not_found  # nothing pending
    assert (await problem_row(roster, problem)).status == "escalated"
    assert len(await events(roster, problem)) == 1


async def test_a_first_secretary_sees_only_what_they_raised(hook: Webhook, roster: Database):
    mine = await raise_problem(roster, (await households_of(roster, "新华村"))[0], "GB001")
    theirs = await raise_problem(roster, (await households_of(roster, "永安村"))[0], "GB004")
    cadre = await chat(hook, roster, FIRST_SECRETARY)
    queue = await cadre.say("/queue")
    assert "您提出的未办结问题共 1 个" in queue and f"#{mine} " in queue and f"#{theirs} " not in queue
    card = await cadre.tap(f"eo:{mine}")
    assert f"问题 #{mine}" in card and cadre.markup == {}  # read only: no buttons
    assert await cadre.say(f"/problem {theirs}") == refusal("not_found", id=theirs)
    assert await cadre.tap(f"ec:{mine}") == refusal("not_allowed")
    assert await cadre.tap(f"ed:{mine}") == refusal("not_allowed")
    assert await cadre.tap(f"ew:{mine}:{await cadre_id(roster, 'GB001')}:7") == refusal("not_allowed")
    assert (await problem_row(roster, mine)).status == "escalated"


async def test_the_specialist_sees_the_queue_but_cannot_act(hook: Webhook, roster: Database):
    problem = await raise_problem(roster, (await households_of(roster, "红旗村"))[0], "GB007")
    specialist = await chat(hook, roster, SPECIALIST_A)
    assert f"#{problem} 红旗村" in await specialist.say("/queue")
    assert f"问题 #{problem}" in await specialist.tap(specialist.button(f"#{problem}"))
    assert specialist.markup == {}
    assert await specialist.tap(f"ed:{problem}") == refusal("not_allowed")
    assert await specialist.tap(f"em:{problem}") == refusal("not_allowed")
    assert (await problem_row(roster, problem)).status == "escalated"


async def test_an_empty_queue_and_bad_numbers(hook: Webhook, roster: Database):
    secretary = await chat(hook, roster, SECRETARY_A)
    assert await secretary.say("/queue") == "东风镇目前没有未办结的问题。"
    usage = render("problems/telegram_usage.txt", "zh_CN")
    assert await secretary.say("/problem abc") == usage
    assert await secretary.say("/problem") == usage
    assert await secretary.say("/problem 987654") == refusal("not_found", id=987654)
    assert await secretary.say("/problem 99999999999999999999999") != ""  # too big: not found, no failure
    # a malformed or forged queue button is acknowledged (the spinner stops) and does nothing else
    for data in ("ew:1:x:7", "ew:1:2", "eo:+12", "eo: 12", "eo:1_2", "eq:-1", "ec:99999999999", "ed:1:2:3"):
        before = len(secretary.fake.calls)
        assert await secretary.tap(data) == "", data
        answered = [c for c in secretary.fake.calls[before:] if c.method.lower() == "answercallbackquery"]
        assert len(answered) == 1, data
    cadre = await chat(hook, roster, FIRST_SECRETARY)
    assert "您提出的问题目前都已办结" in await cadre.say("/queue")


async def test_the_queue_pages(hook: Webhook, roster: Database):
    homes = await households_of(roster, "永安村")
    ids = [await raise_problem(roster, homes[n], "GB004", days_ago=50 - n) for n in range(11)]
    secretary = await chat(hook, roster, SECRETARY_A)
    first = await secretary.say("/queue")
    assert "共 11 个" in first and "第 1/2 页" in first
    assert [d for _, d in secretary.buttons()] == [*(f"eo:{i}" for i in ids[:8]), "eq:1"]
    before = len(secretary.fake.sent("editMessageText"))
    second = await secretary.tap(secretary.button("›"))
    assert len(secretary.fake.sent("editMessageText")) == before + 1  # the page turns in place
    assert "第 2/2 页" in second and f"#{ids[8]} " in second and f"#{ids[0]} " not in second
    assert [d for _, d in secretary.buttons()] == [*(f"eo:{i}" for i in ids[8:]), "eq:0"]


async def test_a_page_that_cannot_be_edited(hook: Webhook, roster: Database):
    homes = await households_of(roster, "永安村")
    for n in range(9):
        await raise_problem(roster, homes[n], "GB004")
    secretary = await chat(hook, roster, SECRETARY_A)
    await secretary.say("/queue")
    sent = len(secretary.fake.sent())
    secretary.fake.fail_next("editMessageText", 400, description="Bad Request: message is not modified")
    assert await secretary.tap("eq:1") == ""  # the same page again: nothing to show, and no failure
    assert len(secretary.fake.sent()) == sent
    secretary.fake.fail_next("editMessageText", 400, description="Bad Request: message can't be edited")
    assert "第 2/2 页" in await secretary.tap("eq:1")  # an old message: the page comes as a new one
    assert len(secretary.fake.sent()) == sent + 1


async def test_english(hook: Webhook, roster: Database):
    problem = await raise_problem(roster, (await households_of(roster, "新华村"))[0], "GB001")
    secretary = await chat(hook, roster, SECRETARY_A, locale="en")
    queue = await secretary.say("/queue")
    assert "东风镇: 1 open problem (oldest first; page 1/1)" in queue and "awaiting the meeting" in queue
    card = await secretary.tap(f"eo:{problem}")
    assert f"Problem #{problem} | awaiting the meeting" in card and "raised by 刘平福 in a visit" in card
    assert secretary.labels() == ["Decide", "Merge"]
    decide_button = secretary.button("Decide")
    assert await secretary.tap(f"ec:{problem}") == refusal("not_decided", "en")
    assert "choose the responsible cadre" in await secretary.tap(decide_button)
    await secretary.tap(secretary.button("徐英文"))
    assert "Choose the due date" in secretary.text and "+7 days (" in secretary.labels()[0]
    done = await secretary.tap(secretary.button("+30 days"))
    assert done.startswith("✅ Decided.") and "Decision: 徐英文 responsible, due" in done
    assert "send what was done" in await secretary.tap(secretary.button("Close"))
    assert await secretary.say("/cancel") == "Abandoned; the problem is unchanged."
    assert await secretary.say("/problem x") == render("problems/telegram_usage.txt", "en")


async def test_the_menu_lists_queue_and_problem(hook: Webhook):
    commands = hook.fake.sent("setMyCommands")
    names = [c["command"] for c in commands[0]["commands"]]
    assert "queue" in names and "problem" in names
    english = next(c for c in commands if c.get("language_code") == "en")
    assert {"command": "queue", "description": "Problems queue"} in english["commands"]


async def test_nothing_else_is_written(hook: Webhook, roster: Database):
    """Reading the queue and the cards writes nothing."""
    problem = await raise_problem(roster, (await households_of(roster, "新华村"))[0], "GB001")
    secretary = await chat(hook, roster, SECRETARY_A)
    await secretary.say("/queue")
    await secretary.say(f"/problem {problem}")
    async with roster.reading() as s:
        assert (await s.execute(select(func.count(ProblemEvent.id)))).scalar_one() == 1
        assert (await s.execute(select(func.count(Cadre.id)))).scalar_one() == 28


async def test_a_redelivered_update_is_applied_once(hook: Webhook, roster: Database):
    problem = await raise_problem(roster, (await households_of(roster, "新华村"))[0], "GB001")
    secretary = await chat(hook, roster, SECRETARY_A)
    tap = callback_update(SECRETARY_A, f"ew:{problem}:{await cadre_id(roster, 'GB002')}:7")
    assert await hook.post(tap) == 200
    assert await hook.post(tap) == 200  # Telegram delivers it again
    assert [e.action for e in await events(roster, problem)] == ["escalate", "decide"]
    assert "已决定，办理中" in secretary.fake.sent()[-1]["text"]
    await secretary.tap(f"ec:{problem}")
    note = message_update(SECRETARY_A, "已修好")
    assert await hook.post(note) == 200
    assert await hook.post(note) == 200
    assert [e.action for e in await events(roster, problem)] == ["escalate", "decide", "close"]
