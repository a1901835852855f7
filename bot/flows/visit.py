"""The home visit, for every channel: load the session, call the engine, save, render what it says.

Every answer is saved before it is acknowledged: if the transaction fails, the exception reaches the channel,
which says so (`save_failed`), and the stored session is still the one before the answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bot.flows.poll import schedule_after_visit
from messages import error_text, render
from storage.db import Connection, Database, Session
from storage.models import Cadre, Household, Problem, Visit, utcnow
from storage.telegram import record_processed
from storage.visits import (
    HouseholdLine,
    VisitRow,
    county_lines,
    draft_row,
    dump_session,
    household_line,
    insert_draft,
    previous_facts,
    save_reconciled,
    save_session,
    store_submission,
    visit_by_id,
    visit_for_submit,
    visit_row,
)
from survey import engine
from survey.facts import WARNING_LABELS, WARNING_LABELS_EN, Lines, derive, per_capita_net
from survey.script import Question, Script, pick

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class VisitOutcome:
    visit_id: int
    reply: engine.Reply
    text: str
    duplicate: bool = False  # the input was applied before (a redelivered update): nothing changed
    locale: str = "zh_CN"  # the visit's language, fixed when it started
    reconciled: bool = (
        False  # the draft was brought under the script in force just now: `text` says what changed
    )

    @property
    def finished(self) -> bool:
        return isinstance(self.reply.step, engine.Submitted | engine.Cancelled)


class VisitNotFound(LookupError):
    pass


class _VisitEnds(Exception):
    """The input ends the visit: its transaction is rolled back and the end is done with the ORM."""


class VisitFlow:
    def __init__(self, db: Database, script: Script, settings: Any, clock: Clock = utcnow) -> None:
        self.db = db
        self.script = script
        self.settings = settings
        self.clock = clock

    async def start(
        self,
        cadre: Cadre,
        household: Household | HouseholdLine,
        *,
        channel: str,
        capabilities: frozenset[str] = frozenset(),
        locale: str | None = None,
    ) -> VisitOutcome:
        """Start a visit, or resume this cadre's unfinished one for the same household."""
        line = household if isinstance(household, HouseholdLine) else household_line(household)
        locale = locale or self.settings.locale
        now = self.clock()

        def begin(conn: Connection) -> tuple[VisitRow, dict[str, Any], engine.Reply, str | None]:
            draft = draft_row(conn, cadre.id, line.id)
            if draft is not None:
                stored, notice = self._reconciled(conn, draft, json.loads(draft.session), now)
                return draft, stored, engine.current(self.script, stored), notice
            session, reply = engine.start(self.script, line.code, locale=locale, capabilities=capabilities)
            values = {
                "household_id": line.id,
                "cadre_id": cadre.id,
                "script_id": self.script.id,
                "script_version": self.script.version,
                "channel": channel,
                "status": "draft",
                "started_at": now,
                "updated_at": now,
                "session": dump_session(session),
            }
            visit_id = insert_draft(conn, values)
            # no county lines on this row: a new visit's first step is a question, never the summary
            row = VisitRow(
                visit_id, cadre.id, "draft", values["session"], None, line.village, line.head_name, line.code
            )
            return row, session, reply, None

        return self._render(*await self.db.run(begin))

    async def resume(self, visit_id: int, *, owner: int | None = None) -> VisitOutcome:
        row = await self.db.run(lambda conn: visit_row(conn, visit_id), write=False)
        if row is None or (owner is not None and row.cadre_id != owner):
            raise VisitNotFound(visit_id)
        session = json.loads(row.session)
        if row.status == "draft" and engine.needs_reconcile(self.script, session):
            now = self.clock()

            def bring_up_to_date(conn: Connection) -> tuple[dict[str, Any], str | None]:
                locked = visit_row(conn, visit_id, lock=True)
                assert locked is not None
                return self._reconciled(conn, locked, json.loads(locked.session), now)

            session, notice = await self.db.run(bring_up_to_date)
            return self._render(row, session, engine.current(self.script, session), notice)
        return self._render(row, session, engine.current(self.script, session))

    async def answer(
        self,
        visit_id: int,
        given: engine.Input,
        *,
        for_key: str | None = None,
        dedupe: tuple[str, str] | None = None,
        owner: int | None = None,
    ) -> VisitOutcome:
        """Apply one input. `dedupe` (source, id) is recorded in the same transaction as the answer, so a
        redelivered update is applied once: the second time nothing changes and `duplicate` is set."""
        now = self.clock()

        def one_answer(conn: Connection) -> VisitOutcome | tuple[VisitRow, dict[str, Any], engine.Reply]:
            step = self._step(conn, visit_id, given, for_key, dedupe, owner, now)
            if isinstance(step, VisitOutcome):
                return step
            _, session, reply = step
            if isinstance(reply.step, engine.Submitted | engine.Cancelled):
                raise _VisitEnds  # rolled back: done again below, with the ORM
            save_session(conn, visit_id, dump_session(session), now)
            return step

        try:  # one question answered (39 inputs in 40): one read and one write in one transaction, plain Core
            step = await self.db.run(one_answer)
        except _VisitEnds:
            return await self._finish(visit_id, given, for_key, dedupe, owner)
        return step if isinstance(step, VisitOutcome) else self._render(*step)

    async def _finish(
        self,
        visit_id: int,
        given: engine.Input,
        for_key: str | None,
        dedupe: tuple[str, str] | None,
        owner: int | None,
    ) -> VisitOutcome:
        """The input that submits or cancels the visit: answers, problems, facts, work log and the next day's
        poll, with the ORM, in one transaction (on SQLite in the database's thread)."""
        now = self.clock()

        def finish(s: Session) -> VisitOutcome | tuple[VisitRow, dict[str, Any], engine.Reply]:
            step = self._step(s.connection(), visit_id, given, for_key, dedupe, owner, now)
            if isinstance(step, VisitOutcome):
                return step
            row, session, reply = step
            visit = visit_for_submit(s, visit_id)
            visit.session, visit.updated_at = dump_session(session), now
            if isinstance(reply.step, engine.Cancelled):
                visit.status = "cancelled"
            else:
                self._submit(s, visit, reply.step.answers, now)  # type: ignore[union-attr]
            s.flush()
            return replace(row, warnings=visit.warnings, uncollected=visit.uncollected), session, reply

        step = await self.db.run_orm(finish)
        return step if isinstance(step, VisitOutcome) else self._render(*step)

    def _step(
        self,
        conn: Connection,
        visit_id: int,
        given: engine.Input,
        for_key: str | None,
        dedupe: tuple[str, str] | None,
        owner: int | None,
        now: datetime,
    ) -> VisitOutcome | tuple[VisitRow, dict[str, Any], engine.Reply]:
        """The visit (locked), the input recorded, the engine's step; a VisitOutcome when it was applied before."""
        row = visit_row(conn, visit_id, lock=True)
        if row is None or (owner is not None and row.cadre_id != owner):
            raise VisitNotFound(visit_id)
        stored, notice = self._reconciled(conn, row, json.loads(row.session), now)
        if dedupe is not None and not record_processed(conn, *dedupe, now):
            outcome = self._render(row, stored, engine.current(self.script, stored), notice)
            return replace(outcome, duplicate=True)
        if row.status != "draft":
            raise VisitNotFound(visit_id)  # finished: a later input belongs to another visit
        if notice is not None:  # the input answered a question of the old script: say what changed, ask on
            return self._render(row, stored, engine.current(self.script, stored), notice)
        session, reply = engine.answer(self.script, stored, given, for_key=for_key)
        return row, session, reply

    async def change_section(self, visit_id: int, section: str, *, owner: int | None = None) -> VisitOutcome:
        """Ask a whole section again (Telegram's per-section buttons on the summary)."""
        async with self.db.session() as s:
            visit = await self._load(s, visit_id, lock=True, owner=owner)
            if visit.status != "draft":
                return self._outcome(visit, engine.current(self.script, json.loads(visit.session)), None)
            stored = json.loads(visit.session)
            if engine.needs_reconcile(self.script, stored):  # then the section asked for may not exist
                stored = engine.reconcile(self.script, stored).session
                visit.script_id, visit.script_version = self.script.id, self.script.version
            session, reply = engine.change_section(self.script, stored, section)
            visit.session = dump_session(session)
            visit.updated_at = self.clock()
            lines = await s.run_sync(lambda sync: county_lines(sync, visit.household, self.settings.lines))
            return self._outcome(visit, reply, lines, answers=session["answers"])

    async def _load(self, s: Any, visit_id: int, *, lock: bool = False, owner: int | None = None) -> Visit:
        """The visit; `owner` (a cadre id) must match when given, so nobody answers another cadre's visit."""
        visit = await visit_by_id(s, visit_id, lock=lock)
        if visit is None or (owner is not None and visit.cadre_id != owner):
            raise VisitNotFound(visit_id)
        return visit

    def _submit(self, s: Session, visit: Visit, answers: dict[str, Any], now: datetime) -> None:
        household = visit.household
        lines = county_lines(s, household, self.settings.lines)
        previous = previous_facts(s, household.id, visit.id)
        facts = derive(answers, lines, household.status, previous, self.script.roles)
        problems = answers.get("problems", [])
        resolved = sum(1 for p in problems if p.get("resolved_on_site"))
        log_locale = self.settings.locale
        visit_log = render(
            "worklog/visit.txt",
            log_locale,
            village=household.village.name,
            head_name=household.head_name,
            code=household.code,
            satisfaction=answers.get(self.script.roles.first("satisfaction") or ""),
            problems=len(problems),
            resolved=resolved,
            escalated=len(problems) - resolved,
        )

        def problem_log(problem: Problem) -> str:
            return render(
                "worklog/problem_resolved.txt",
                log_locale,
                category=problem.category,
                description=problem.description,
            )

        day = now.astimezone(self.settings.tz).date()
        store_submission(s, self.script, visit, answers, facts, now, day, visit_log, problem_log)
        # the villager's own say: a satisfaction SMS the next day at 10:00 (the same transaction: no visit
        # is stored without its poll being queued)
        schedule_after_visit(s, household, now, self.settings)

    def _reconciled(
        self, conn: Connection, row: VisitRow, stored: dict[str, Any], now: datetime
    ) -> tuple[dict[str, Any], str | None]:
        """The draft under the script in force (saved, with the script's id and version) and what to tell the
        cadre, when it was begun under another; else as it was, and nothing to tell."""
        if row.status != "draft" or not engine.needs_reconcile(self.script, stored):
            return stored, None
        done = engine.reconcile(self.script, stored)
        save_reconciled(conn, row.id, dump_session(done.session), self.script, now)
        notice = render(
            "visit/reconciled.txt",
            done.session["locale"],
            old=done.from_version or "?",
            new=self.script.version,
            kept=len(done.kept),
            dropped=list(done.dropped),
        )
        return done.session, notice.strip()

    def _render(
        self, row: VisitRow, session: dict[str, Any], reply: engine.Reply, notice: str | None = None
    ) -> VisitOutcome:
        label = household_text(row.village, row.head_name, row.code)
        text = render_reply(
            self.script,
            reply,
            session["locale"],
            label,
            answers=session["answers"],
            warnings=(row.warnings or "").split(","),
            uncollected=(row.uncollected or "").split(","),
            lines=row.lines(self.settings.lines),
        )
        if notice:
            text = f"{notice}\n{text}"
        return VisitOutcome(
            visit_id=row.id, reply=reply, text=text, locale=session["locale"], reconciled=bool(notice)
        )

    def _outcome(
        self,
        visit: Visit,
        reply: engine.Reply,
        lines: Lines | None,
        answers: dict[str, Any] | None = None,
    ) -> VisitOutcome:
        """`lines` None: the settings' defaults (a finished visit shows no summary)."""
        session = json.loads(visit.session)
        text = render_reply(
            self.script,
            reply,
            session["locale"],
            household_label(visit.household),
            answers=answers if answers is not None else session["answers"],
            warnings=(visit.warnings or "").split(","),
            uncollected=(visit.uncollected or "").split(","),
            lines=lines or self.settings.lines,
        )
        return VisitOutcome(visit_id=visit.id, reply=reply, text=text, locale=session["locale"])


def household_label(household: Household) -> str:
    return household_text(household.village.name, household.head_name, household.code)


def household_text(village: str, head_name: str, code: str) -> str:
    return f"{village} {head_name}户（{code}）"


# --- rendering ---------------------------------------------------------------------------------------------


def render_reply(
    script: Script,
    reply: engine.Reply,
    locale: str,
    household: str,
    *,
    answers: dict[str, Any] | None = None,
    warnings: list[str] | None = None,
    uncollected: list[str] | None = None,
    show_choices: bool = True,
    lines: Lines,
) -> str:
    """`lines`: the household's county's lines and whether 保底收益 counts (the summary's 人均纯收入)."""
    parts = []
    if reply.notice == "stale":
        parts.append(render("visit/stale.txt", locale))
    if reply.error is not None:
        parts.append(_reason(reply, locale))
    parts.append(
        _render_step(
            script,
            reply.step,
            locale,
            household,
            answers or {},
            warnings or [],
            show_choices,
            uncollected or [],
            lines,
        )
    )
    return "\n".join(p for p in parts if p)


BOUND_ERRORS = frozenset({"too_small", "too_large", "too_long"})


def _reason(reply: engine.Reply, locale: str) -> str:
    """Why the answer was refused: the script's own constraint message for a bound, if it has one."""
    assert reply.error is not None
    step = reply.step
    question = step.question if isinstance(step, engine.Ask) else None
    if reply.error.code in BOUND_ERRORS and question is not None and question.constraint_message:
        return pick(question.constraint_message, locale)
    return error_text(reply.error.code, locale, **reply.error.params)


def _render_step(
    script: Script,
    step: engine.Step,
    locale: str,
    household: str,
    answers: dict[str, Any],
    warnings: list[str],
    show_choices: bool,
    uncollected: list[str],
    lines: Lines,
) -> str:
    if isinstance(step, engine.Ask):
        return render_ask(script, step, locale, show_choices=show_choices)
    if isinstance(step, engine.Summary):
        return render_summary(script, step, locale, household, lines)
    if isinstance(step, engine.ConfirmCancel):
        return render("visit/confirm_cancel.txt", locale)
    if isinstance(step, engine.Cancelled):
        return render("visit/cancelled.txt", locale)
    problems = step.answers.get("problems", [])
    resolved = sum(1 for p in problems if p.get("resolved_on_site"))
    labels = WARNING_LABELS if locale == "zh_CN" else WARNING_LABELS_EN
    return render(
        "visit/submitted.txt",
        locale,
        household=household,
        problems=len(problems),
        resolved=resolved,
        escalated=len(problems) - resolved,
        warnings=[labels[w] for w in warnings if w in labels],
        # the warnings the script's questions could not judge (未采集): said, so no warning is not read as none
        unjudged=[labels[w] for w in uncollected if w in labels],
    )


def render_ask(script: Script, ask: engine.Ask, locale: str, *, show_choices: bool = True) -> str:
    question = ask.question
    label = question.again if ask.adding and ask.item and question.again else question.label
    return render(
        "visit/ask.txt",
        locale,
        section=pick(script.section(question.section).label, locale),
        label=pick(label, locale),
        adding=ask.adding,
        item=ask.item,
        kind=question.type,
        choices=[pick(c.label, locale) for c in question.choices],
        several=question.type == "several_of",
        show_choices=show_choices,
        current=None if ask.current is None or ask.adding else display(question, ask.current, locale),
        skippable=ask.skippable,
        number=ask.number,
        total=ask.total,
    )


def render_summary(script: Script, summary: engine.Summary, locale: str, household: str, lines: Lines) -> str:
    """The answers to check, and the 人均纯收入 they give under the county's lines (None: no household size)."""
    answers: dict[str, Any] = {line.key: line.value for line in summary.lines if line.item is None}
    per_capita = per_capita_net(answers, lines, script.roles)
    sections: dict[str, list[dict[str, Any]]] = {}
    for line in summary.lines:
        section = pick(script.section(line.section).label, locale)
        sections.setdefault(section, []).append(
            {
                "number": line.number,
                "item": line.item,
                "label": pick(line.question.label, locale),
                "value": display(line.question, line.value, locale),
            }
        )
    return render(
        "visit/summary.txt",
        locale,
        household=household,
        sections=list(sections.items()),
        choosing=summary.choosing_line,
        count=len(summary.lines),
        actions=summary.actions,
        per_capita=None if per_capita is None else f"{per_capita:,.2f}",
    )


def display(question: Question, value: Any, locale: str) -> str:
    """An answer as people read it: 是/否, option labels, 、-joined lists (the words: visit/parts.txt)."""
    if value is None:
        return _word("not_answered", locale)
    if isinstance(value, bool):
        return _word("yes" if value else "no", locale)
    if question.type == "one_of":
        return _choice_label(question, value, locale)
    if question.type == "several_of":
        return _word("several", locale, labels=[_choice_label(question, v, locale) for v in value])
    if question.type == "location":
        return f"{value['lat']:.5f}, {value['lon']:.5f}"
    if question.type == "photo":
        return _word("photo", locale)
    return str(value)


def _word(name: str, locale: str, **params: Any) -> str:
    return error_text(name, locale, source="visit/parts.txt", **params)


def _choice_label(question: Question, value: str, locale: str) -> str:
    # a draft begun under an older script version may hold a choice the county has since removed
    known = {c.value: c for c in question.choices}
    return pick(known[value].label, locale) if value in known else value
