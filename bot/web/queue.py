"""The township page's queue and the secretary's moves: read with storage.problems, moved only through
`bot.flows.escalation.act` (the Telegram buttons' and the CLI's service and state machine; every move lands in
problem_events). A refusal is shown as the machine's reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from aiohttp import web

from bot.flows.escalation import ActionRefused, act
from bot.keys import CLOCK, DB
from bot.reports import Context
from bot.web.auth import SETTINGS, TABLES, Viewer
from storage import problems as store
from storage.db import Database
from storage.models import Township
from survey import problems as machine
from survey.meetings import Calendar

OPEN_SHOWN = 50  # open problems a page: a township with hundreds open gets pages, not megabytes of forms
CLOSED_SHOWN = 20  # the most recently closed or merged problems, for 重新打开


@dataclass(frozen=True)
class Queue:
    open: list[dict[str, Any]]
    closed: list[dict[str, Any]]
    meetings: list[date]
    may_act: bool
    cadres: list[tuple[int, str]]  # the township's cadres (id, "GB001 name role"): who may be responsible
    due_choices: tuple[int, ...]
    total_open: int = 0
    page: int = 1
    pages: int = 1


def _meetings(township: Township, today: date, count: int = 4) -> list[date]:
    calendar, days = Calendar.parse(township.meeting_days), []
    day = calendar.next_on_or_after(today)
    while len(days) < count:
        days.append(day)
        day = calendar.next_after(day)
    return days


async def _with_history(s: Any, items: list[store.QueueItem], ctx: Context) -> list[dict[str, Any]]:
    tz, today = ctx.settings.tz, ctx.now.astimezone(ctx.settings.tz).date()
    histories = await store.events_of_many(s, [item.id for item in items])
    shown = []
    for item in items:
        events = [
            {
                "at": event.at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                "action": event.action,
                "actor": name,
                "note": event.note,
                "due_on": event.due_on,
            }
            for event, name in histories[item.id]
        ]
        age = (today - item.created_at.astimezone(tz).date()).days
        shown.append({"item": item, "age": age, "events": events})
    return shown


async def township_queue(
    db: Database, ctx: Context, viewer: Viewer, township: Township, page: int = 1
) -> Queue:
    """The township's open problems oldest first, OPEN_SHOWN a page (`page` from 1), the latest closed ones,
    and its next meetings."""
    async with db.reading() as s:
        total = await store.count_open(s, township.id)
        pages = max(1, -(-total // OPEN_SHOWN))
        page = min(max(page, 1), pages)
        open_items = await store.queue_items(s, township.id, offset=(page - 1) * OPEN_SHOWN, limit=OPEN_SHOWN)
        closed_items = await store.queue_items(
            s, township.id, states=("closed", "merged"), limit=CLOSED_SHOWN, newest_first=True
        )
        shown_open = await _with_history(s, open_items, ctx)
        shown_closed = await _with_history(s, closed_items, ctx)
        cadres = [
            (c.id, f"{c.code} {c.name}（{c.role}）") for c in await store.township_cadres(s, township.id)
        ]
    may_act = viewer.cadre.role in machine.ACTING_ROLES and viewer.cadre.township_id == township.id
    today = ctx.now.astimezone(ctx.settings.tz).date()
    return Queue(
        shown_open,
        shown_closed,
        _meetings(township, today),
        may_act,
        cadres,
        machine.DUE_CHOICES_DAYS,
        total_open=total,
        page=page,
        pages=pages,
    )


def _number(form: Any, name: str) -> int | None:
    text = str(form.get(name, "")).strip().lstrip("#")
    return int(text) if text.isdigit() and len(text) < 12 else None


async def act_on_problem(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    """POST /dash/problem/{id}/{action}: one move; success goes back to the township page (303), a refusal
    shows it there with the machine's reason (409), a problem the viewer may not see is 404."""
    from bot.web.pages import township_page

    action = request.match_info["action"]
    problem_id = request.match_info["id"]
    if (
        action not in ("decide", "close", "merge", "reopen")
        or not problem_id.isdigit()
        or len(problem_id) > 12
    ):
        raise web.HTTPNotFound()
    form = await request.post()
    try:
        await act(
            request.app[DB],
            request.app[SETTINGS],
            viewer.cadre.id,
            int(problem_id),
            action,
            request.app[CLOCK](),
            responsible_id=_number(form, "responsible"),
            due_days=_number(form, "due_days"),
            note=str(form.get("note", "")),
            into_id=_number(form, "into"),
        )
    except ActionRefused as refused:
        if refused.code == "not_found" and refused.params.get("id") == int(problem_id):
            raise web.HTTPNotFound() from refused
        from bot.web.pages import locale_of

        notice = {"refused": refused.text(locale_of(request)), "id": int(problem_id)}
        return await township_page(request, viewer, notice, viewer.cadre.township_id)
    request.app[TABLES].clear()  # the mover sees the move in every table at once
    target = f"/dash/township/{viewer.cadre.township_id}?done={action}&p={problem_id}#p{problem_id}"
    raise web.HTTPSeeOther(target)
