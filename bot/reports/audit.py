"""The audit trail (操作记录): every recorded action between two local days, oldest first."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from bot.reports.base import Context
from bot.reports.output import Column, Report
from storage.db import Database

# what each audit action is called where people read it
AUDIT_ACTIONS = {
    "visit.submit": ("提交走访", "visit submitted"),
    "problem.decide": ("问题交办", "problem decided"),
    "problem.close": ("问题销号", "problem closed"),
    "problem.merge": ("问题合并", "problem merged"),
    "problem.reopen": ("问题重开", "problem reopened"),
    "problem.escalate": ("问题上报", "problem escalated"),
    "problem.overdue": ("问题逾期", "problem overdue"),
    "problem.county": ("问题报县", "problem sent to the county"),
    "problem.resolve_on_site": ("问题现场化解", "problem resolved on the spot"),
    "import.households": ("导入户花名册", "households imported"),
    "import.cadres": ("导入干部花名册", "cadres imported"),
    "household.update": ("户信息变更", "household changed"),
    "cadre.update": ("干部信息变更", "cadre changed"),
    "telegram.bind": ("绑定 Telegram", "Telegram bound"),
    "sms.opt_out": ("短信退订", "SMS opt-out"),
    "sms.opt_in": ("恢复短信", "SMS opt-in"),
}


async def audit_trail(db: Database, ctx: Context, since: date, until: date | None) -> Report:
    """The audit trail from `since` through `until` (local days, both included), oldest first."""
    from storage.audit import entries

    tz = ctx.settings.tz
    start = datetime.combine(since, time(), tz)
    end = datetime.combine(until + timedelta(days=1), time(), tz) if until else None
    async with db.reading() as s:
        found = await entries(s, start, end)
    rows = [
        {
            "at": e.at.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S"),
            "actor": e.actor,
            "action": ctx.t(*AUDIT_ACTIONS[e.action]) if e.action in AUDIT_ACTIONS else e.action,
            "code": e.action,
            "subject": e.subject,
            "before": e.before,
            "after": e.after,
        }
        for e in found
    ]
    span = f"{since}～{until}" if until else ctx.t(f"{since} 起", f"since {since}")
    return Report(
        name="audit",
        title=ctx.t(f"操作记录（{span}）", f"Audit trail ({span})"),
        columns=[
            Column("at", "时间", "time"),
            Column("actor", "操作人", "by"),
            Column("action", "操作", "action"),
            Column("code", "操作代码", "action code", screen=False),
            Column("subject", "对象", "subject"),
            Column("before", "变更前", "before"),
            Column("after", "变更后", "after"),
        ],
        rows=rows,
        locale=ctx.locale,
        empty=ctx.t("这段时间没有操作记录。", "Nothing was recorded in that time."),
    )
