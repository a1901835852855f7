"""Scenario tests as data (tests/scenarios/*.json): a script, the inputs, the expected prompts and answers.

Each step may `send` an input (text, {"location": [lat, lon]}, {"photo": id}, or {"repeat": s, "times": n}),
or `change_section`; then `expect` names where the engine stands and what the rendered text says.
The session is round-tripped through JSON after every step, as storage does.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.flows.visit import render_reply
from survey import engine
from survey.facts import Lines
from survey.script import load_script

SCENARIOS = Path(__file__).parent / "scenarios"
FILES = sorted(p for p in SCENARIOS.glob("*.json") if p.name != "mini_script.json")


def _input(send: Any) -> engine.Input:
    if isinstance(send, str):
        return send
    if "location" in send:
        return engine.Location(*send["location"])
    if "photo" in send:
        return engine.Photo(send["photo"])
    return send["repeat"] * send["times"]


def _where(reply: engine.Reply) -> str:
    step = reply.step
    if isinstance(step, engine.Ask):
        return step.key
    return {
        engine.Summary: "summary",
        engine.ConfirmCancel: "confirm_cancel",
        engine.Submitted: "submitted",
        engine.Cancelled: "cancelled",
    }[type(step)]


def _check(expect: dict[str, Any], reply: engine.Reply, text: str, where: str) -> None:
    assert _where(reply) == expect.get("ask", _where(reply)), where
    assert (reply.error.code if reply.error else None) == expect.get("error"), f"{where}: {text}"
    assert reply.notice == expect.get("notice"), where
    for fragment in expect.get("text", []):
        assert fragment in text, f"{where}: {fragment!r} not in {text!r}"
    for fragment in expect.get("text_absent", []):
        assert fragment not in text, f"{where}: {fragment!r} in {text!r}"
    if "current" in expect:
        assert reply.step.current == expect["current"], where
    if "answers" in expect:
        answers = reply.step.answers
        for key, value in expect["answers"].items():
            assert answers.get(key) == value, f"{where}: {key} = {answers.get(key)!r}"
        for key in expect.get("absent", []):
            assert key not in answers, f"{where}: {key} should have been dropped"


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_scenario(path: Path) -> None:
    case = json.loads(path.read_text(encoding="utf-8"))
    script = load_script(SCENARIOS / case["script"])
    locale = case.get("locale", "zh_CN")
    session, reply = engine.start(script, "H1", locale=locale, capabilities=frozenset(case["capabilities"]))
    for number, step in enumerate(case["steps"], start=1):
        session = json.loads(json.dumps(session))  # what storage keeps is plain JSON
        if "send" in step:
            session, reply = engine.answer(script, session, _input(step["send"]), for_key=step.get("for_key"))
        elif "change_section" in step:
            session, reply = engine.change_section(script, session, step["change_section"])
        text = render_reply(
            script, reply, locale, "测试村 张三户（H1）", answers=session["answers"], lines=Lines()
        )
        _check(step.get("expect", {}), reply, text, f"{path.stem} step {number}")


def test_finished_session_refuses_more_input() -> None:
    script = load_script(SCENARIOS / "mini_script.json")
    session, _ = engine.start(script, "H1")
    session["state"] = "submitted"
    with pytest.raises(engine.SessionError):
        engine.answer(script, session, "1")


def test_session_of_another_script_is_refused() -> None:
    session, _ = engine.start(load_script(SCENARIOS / "mini_script.json"), "H1")
    with pytest.raises(engine.SessionError):
        engine.current(load_script(), session)


def test_answer_does_not_mutate_the_given_session() -> None:
    script = load_script(SCENARIOS / "mini_script.json")
    session, _ = engine.start(script, "H1")
    before = json.dumps(session)
    engine.answer(script, session, "3")
    assert json.dumps(session) == before
