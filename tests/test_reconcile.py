"""A draft begun under an older script (or another script) is reconciled when resumed: answers whose questions
still exist and still fit are kept and not asked again, the rest are asked anew with any new question, the cadre
is told what changed, and the visit records the version it now follows — in the console and over Telegram."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from bot.app import make_app
from storage.db import Database
from survey import engine
from survey.script import build_script, load_script
from tests.cli_support import clean_env, ok, query, zoufang
from tests.fake_telegram import FakeTelegram
from tests.test_console import ANSWERS, County, answers_of, county, imported, questions, typed  # noqa: F401
from tests.test_telegram import Webhook, bound, pick_first_household, settings_for, stored_session

DEFAULT = Path(__file__).parents[1] / "survey" / "default_script.json"
NOW = "2026.2"  # the default script's version
NEXT = "2026.3"


def next_version(edit: Any) -> dict[str, Any]:
    """The default script as the next version, changed by `edit(definition)`."""
    definition = json.loads(DEFAULT.read_text(encoding="utf-8"))
    assert definition["version"] == NOW
    definition["version"] = NEXT
    edit(definition)
    return definition


def question(definition: dict[str, Any], name: str) -> dict[str, Any]:
    return next(q for s in definition["sections"] for q in s["questions"] if q["name"] == name)


def the_change(definition: dict[str, Any]) -> None:
    """因病 is no longer a cause (main_cause's answer no longer fits) and a question is new after members."""
    cause = question(definition, "main_cause")
    cause["choices"] = [c for c in cause["choices"] if c["value"] != "因病"]
    basic = next(s for s in definition["sections"] if s["name"] == "basic")
    basic["questions"].insert(
        1,
        {"name": "elderly", "type": "integer", "min": 0, "max": 20, "label": {"zh_CN": "其中60岁以上老人数"}},
    )


# --- the engine ---------------------------------------------------------------------------------------------


def walk(script: Any, inputs: list[Any]) -> dict[str, Any]:
    session, _ = engine.start(script, "DEMO0001")
    for given in inputs:
        session, reply = engine.answer(script, session, given)
        assert reply.error is None, (given, reply.error)
    return session


def test_reconcile_keeps_what_fits_drops_what_does_not_and_asks_the_new_question():
    old = load_script()
    session = walk(old, ["3", "2", "因病", "低保"])  # no GPS on this channel: members … support
    new = build_script(next_version(the_change))
    assert engine.needs_reconcile(new, session) and not engine.needs_reconcile(old, session)
    done = engine.reconcile(new, session)
    assert done.from_version == NOW
    assert set(done.kept) == {"members", "labour_members", "support"}
    assert done.dropped == ("main_cause",)
    assert done.session["script_version"] == NEXT
    reply = engine.current(new, done.session)
    assert reply.step.key == "elderly"  # the new question first, then main_cause again
    session, reply = engine.answer(new, done.session, "1")
    assert reply.step.key == "main_cause"
    session, reply = engine.answer(new, session, "因残")
    assert session["answers"]["support"] == ["低保"]  # kept: not asked again
    assert reply.step.key != "support"


def test_a_draft_whose_talks_were_confirmations_keeps_them_now_they_are_yes_no():
    """Under 2026.1 the four talks were `confirm` (only "done" was taken); a draft begun then and resumed under
    the yes/no talks keeps its answers: a confirmation is a yes."""
    definition = json.loads(DEFAULT.read_text(encoding="utf-8"))
    definition["version"] = "2026.1"
    for name in ("talk_party", "talk_policy", "talk_hope", "talk_aspiration"):
        question(definition, name)["type"] = "confirm"
    old = build_script(definition)
    session = walk(old, ["3", "2", "因病", "低保"])
    session["answers"].update(talk_party=True, talk_policy=True)
    done = engine.reconcile(load_script(), session)
    assert done.from_version == "2026.1" and {"talk_party", "talk_policy"} <= set(done.kept)
    assert done.dropped == ()


def test_a_bound_that_no_longer_holds_drops_the_answer_and_its_dependant_is_checked_again():
    session = walk(load_script(), ["3", "2"])

    def smaller(definition: dict[str, Any]) -> None:
        question(definition, "members")["max"] = 2

    new = build_script(next_version(smaller))
    done = engine.reconcile(new, session)
    assert done.dropped == ("members",) and "labour_members" in done.kept
    assert engine.current(new, done.session).step.key == "members"
    session, reply = engine.answer(new, done.session, "1")  # now labour_members (2) > members: asked again
    assert reply.step.key == "labour_members"


def test_a_finished_visit_is_shown_under_any_script():
    old = load_script()
    session = copy.deepcopy(walk(old, ["3", "2"]))
    session["state"] = "cancelled"
    other = build_script({**next_version(the_change), "id": "another-county-script"})
    assert not engine.needs_reconcile(other, session)
    assert isinstance(engine.current(other, session).step, engine.Cancelled)


# --- the console --------------------------------------------------------------------------------------------


def test_the_console_resumes_a_draft_under_the_new_version_and_says_what_changed(county: County):  # noqa: F811
    code = county.households[0]
    first = ok(
        zoufang(
            county.folder,
            "console",
            "--cadre",
            county.secretary,
            "--household",
            code,
            input=typed(ANSWERS[:4]),
        )
    )  # members, labour, cause, support: then the process ends, the draft kept
    assert "走访进度已保存" in first.stdout
    newer = county.folder / f"script-{NEXT}.json"
    newer.write_text(json.dumps(next_version(the_change), ensure_ascii=False), encoding="utf-8")
    env = clean_env(county.folder, ZOUFANG_SCRIPT=str(newer))
    rest = ["1", "因残", *ANSWERS[4:]]  # the new question, main_cause again, then on as before
    second = ok(
        zoufang(
            county.folder,
            "console",
            "--cadre",
            county.secretary,
            "--household",
            code,
            input=typed(rest),
            env=env,
        )
    )
    out = second.stdout
    assert f"走访脚本已更新（版本 {NOW} → {NEXT}）" in out and "main_cause 的回答不再适用" in out
    asked = questions(out)
    assert asked[0] == "【问基本信息】其中60岁以上老人数" and asked[1] == "【问基本信息】主要致贫原因"
    assert "【问基本信息】家庭共同生活人口数（人）" not in asked  # kept, not asked again
    assert "走访已提交" in out
    [(visit_id, version)] = query(
        county.db, "SELECT v.id, v.script_version FROM visits v JOIN households h ON h.id = v.household_id "
        "WHERE h.code = ?", code,
    )  # fmt: skip
    assert version == NEXT
    answers = answers_of(county, visit_id)
    assert answers["members"][0][2] == 3 and answers["elderly"][0][2] == 1
    assert answers["main_cause"][0][4] == "因残"


# --- Telegram -----------------------------------------------------------------------------------------------


async def test_telegram_answers_a_draft_of_another_script_and_cancel_works(
    roster: Database, fake_telegram: FakeTelegram, fsm_redis_url: str
):
    settings = settings_for(fake_telegram, redis_url=fsm_redis_url)
    async with TestClient(TestServer(make_app(roster, load_script(), settings))) as client:
        webhook = Webhook(client, fake_telegram)
        await bound(webhook, roster)
        await pick_first_household(webhook)
        await webhook.say("跳过")
        await webhook.say("3")
    # the county changes ZOUFANG_SCRIPT to a script of its own (another id) and restarts the server
    other = build_script({**next_version(the_change), "id": "county-own"})
    async with TestClient(TestServer(make_app(roster, other, settings))) as client:
        webhook = Webhook(client, fake_telegram)
        reply = await webhook.say("2")  # meant for labour_members under the old script: not taken
        assert f"走访脚本已更新（版本 {NOW} → {NEXT}）" in reply and "其中60岁以上老人数" in reply
        session = await stored_session(roster)
        assert session["script_id"] == "county-own" and session["answers"] == {"members": 3}
        assert "取消" in await webhook.say("/cancel")  # answered, not a 500: the cadre can always get out


async def test_a_tick_on_a_draft_of_the_old_script_is_told_what_changed(
    roster: Database, fake_telegram: FakeTelegram, fsm_redis_url: str
):
    from tests.fake_telegram import callback_update

    settings = settings_for(fake_telegram, redis_url=fsm_redis_url)
    async with TestClient(TestServer(make_app(roster, load_script(), settings))) as client:
        webhook = Webhook(client, fake_telegram)
        await bound(webhook, roster)
        await pick_first_household(webhook)
        for text in ("跳过", "3", "2"):
            await webhook.say(text)
        await webhook.tap(webhook.button("因病"))  # now at the several-of question (support)
        tick = webhook.button("低保")
    async with TestClient(
        TestServer(make_app(roster, build_script(next_version(the_change)), settings))
    ) as client:
        webhook = Webhook(client, fake_telegram)
        before = len(fake_telegram.sent())
        assert await webhook.post(callback_update(7001, tick)) == 200
        shown = fake_telegram.sent()[before:]
        assert shown and "走访脚本已更新" in shown[-1]["text"]  # a message saying so, not a silent tick
