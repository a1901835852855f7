"""`zoufang problem list|show|decide|close|merge|reopen`: the township queue without Telegram (escalation.md).

The same flow and state machine as the Telegram buttons (bot.flows.escalation): every move lands in
problem_events with its actor, so the minutes, the tally and the overdue list see CLI moves as they see the
bot's. `--as` names who looks or acts: their role and township decide what they may see and do.
"""

from __future__ import annotations

from typing import Any

import click

from bot.cli.base import Failure, main, run, settings, with_db

_as = click.option(
    "--as", "actor_code", required=True, help="干部编号 of who looks or acts (their role decides)"
)
_id = click.argument("problem_id", type=click.IntRange(min=1))


def _say(name: str, locale: str, **params: Any) -> str:
    from messages import error_text

    return error_text(name, locale, source="problems/cli_parts.txt", **params)


async def _cadre(db: Any, code: str, locale: str, line: str = "no_cadre") -> Any:
    from storage.visits import cadre_by_code

    async with db.reading() as s:
        cadre = await cadre_by_code(s, code.strip())
    if cadre is None:
        raise Failure(_say(line, locale, who=code))
    return cadre


def _refused(exc: Any, locale: str) -> Failure:
    return Failure(_say("refused", locale, reason=exc.text(locale)))


@main.group()
def problem() -> None:
    """问题台账: the township queue, a problem's card, and the secretary's moves (决定、销号、合并、重新打开)."""


@problem.command(name="list")
@_as
def problem_list(actor_code: str) -> None:
    """The open problems the cadre sees: a township's whole queue for its secretaries, else those they raised."""
    from bot.flows.escalation import queue_view
    from messages import render

    conf = settings()

    async def go() -> str:
        async with with_db(conf.db_url) as db:
            cadre = await _cadre(db, actor_code, conf.locale)
            view = await queue_view(db, conf, cadre)
            return render(
                "problems/cli_queue.txt",
                conf.locale,
                mine=view.mine,
                township=cadre.township.name,
                count=view.count,
                items=view.lines,
                actor=actor_code,
            )

    click.echo(run(go()))


@problem.command(name="show")
@_id
@_as
def problem_show(problem_id: int, actor_code: str) -> None:
    """One problem: details, the meeting it is on, the decision and its whole history."""
    from bot.flows.escalation import ActionRefused, card

    conf = settings()

    async def go() -> str:
        async with with_db(conf.db_url) as db:
            cadre = await _cadre(db, actor_code, conf.locale)
            try:
                return (await card(db, conf, cadre, problem_id, conf.locale)).text
            except ActionRefused as exc:
                raise _refused(exc, conf.locale) from exc

    click.echo(run(go()))


def _move(problem_id: int, actor_code: str, action: str, responsible: str | None = None, **kw: Any) -> None:
    """Carry out one move as `actor_code` and show the card as it stands after it; a refusal is one line."""
    from datetime import UTC, datetime

    from bot.flows.escalation import ActionRefused, act, card

    conf = settings()

    async def go() -> str:
        async with with_db(conf.db_url) as db:
            cadre = await _cadre(db, actor_code, conf.locale)
            if responsible is not None:
                kw["responsible_id"] = (await _cadre(db, responsible, conf.locale, "no_responsible")).id
            try:
                await act(db, conf, cadre.id, problem_id, action, datetime.now(UTC), **kw)
                return (await card(db, conf, cadre, problem_id, conf.locale, done=action)).text
            except ActionRefused as exc:
                raise _refused(exc, conf.locale) from exc

    click.echo(run(go()))


@problem.command(name="decide")
@_id
@_as
@click.option("--responsible", required=True, help="干部编号 of the responsible cadre (of the township)")
@click.option("--due-days", required=True, type=int, help="days to settle it in (7, 15 or 30)")
@click.option("--note", default="", help="the meeting's words (optional)")
def problem_decide(problem_id: int, actor_code: str, responsible: str, due_days: int, note: str) -> None:
    """决定: the meeting names who settles the problem and by when."""
    _move(problem_id, actor_code, "decide", responsible, due_days=due_days, note=note)


@problem.command(name="close")
@_id
@_as
@click.option("--note", required=True, help="处理结果: how it was settled")
def problem_close(problem_id: int, actor_code: str, note: str) -> None:
    """销号: the problem is settled."""
    _move(problem_id, actor_code, "close", note=note)


@problem.command(name="merge")
@_id
@_as
@click.option("--into", "into_id", required=True, type=click.IntRange(min=1), help="the problem it repeats")
def problem_merge(problem_id: int, actor_code: str, into_id: int) -> None:
    """合并: the problem repeats another of the township's, which carries on."""
    _move(problem_id, actor_code, "merge", into_id=into_id)


@problem.command(name="reopen")
@_id
@_as
@click.option("--note", required=True, help="why it is not settled after all")
def problem_reopen(problem_id: int, actor_code: str, note: str) -> None:
    """重新打开: back on the next meeting's agenda."""
    _move(problem_id, actor_code, "reopen", note=note)
