"""The audit trail (操作记录): every recorded action between two local days, oldest first."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from bot.reports.base import Context
from bot.reports.output import Report
from storage.db import Database

# the audit actions people read by name (the phrase audit_action(action) in messages/templates/*/reports/)
AUDIT_ACTIONS = (
    "visit.submit",
    "problem.decide",
    "problem.close",
    "problem.merge",
    "problem.reopen",
    "problem.escalate",
    "problem.overdue",
    "problem.county",
    "problem.resolve_on_site",
    "import.households",
    "import.cadres",
    "household.create",
    "household.update",
    "cadre.update",
    "telegram.bind",
    "web.invite",
    "web.revoke",
    "sms.opt_out",
    "sms.opt_in",
)


async def audit_trail(db: Database, ctx: Context, since: date, until: date | None) -> Report:
    """The audit trail from `since` through `until` (local days, both included), oldest first."""
    from storage.audit import entries

    tz = ctx.settings.tz
    start = datetime.combine(since, time(), tz)
    end = datetime.combine(until + timedelta(days=1), time(), tz) if until else None
    async with db.reading() as s:
        found = await entries(s, start, end)
    named = {e.action for e in found if e.action in AUDIT_ACTIONS}  # each action's name rendered once
    actions = {code: ctx.say("audit_action", action=code) for code in sorted(named)}
    rows = [
        {
            "at": e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            "actor": e.actor,
            "action": actions.get(e.action, e.action),
            "code": e.action,
            "subject": e.subject,
            "before": e.before,
            "after": e.after,
        }
        for e in found
    ]
    span = f"{since}～{until}" if until else ctx.say("audit_since", since=since)
    return Report(
        name="audit",
        title=ctx.say("audit_title", span=span),
        columns=[
            ctx.column("at", "time"),
            ctx.column("actor"),
            ctx.column("action"),
            ctx.column("code", "action_code", screen=False),
            ctx.column("subject"),
            ctx.column("before"),
            ctx.column("after"),
        ],
        rows=rows,
        locale=ctx.locale,
        empty=ctx.say("audit_empty"),
    )
