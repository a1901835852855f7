"""The home visit in Telegram: household picker, keyboards for the engine's questions, /resume /todo /log /cancel.

The engine and `VisitFlow` do the work; this module turns taps and messages into engine inputs and the
engine's replies into messages with keyboards. Callback data name the visit and the question they were made
for (`a:<visit>:<key>:<code>`), so a tap on an earlier question's button changes nothing.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from aiogram import F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.methods import SendMessage
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from sqlalchemy import select

from bot.flows.visit import VisitFlow, VisitNotFound, VisitOutcome, household_label
from bot.settings import Settings
from messages import render
from storage.db import Database
from storage.models import Cadre, Household, WorkLogEntry
from storage.reports import coverage as coverage_of
from storage.visits import drafts_of, households_in_scope, visited_household_ids
from survey import engine
from survey.periods import coverage_target, current_period
from survey.script import Script, pick

PAGE_SIZE = 8
CAPABILITIES = frozenset({"location", "photo"})
CODES = {"y": "是", "n": "否", "s": "跳过", "b": "返回", "submit": "提交", "cancel": "取消"}


# --- keyboards ---------------------------------------------------------------------------------------------


def _button(text: str, data: str) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data)


def _rows(buttons: list[InlineKeyboardButton], per_row: int = 2) -> list[list[InlineKeyboardButton]]:
    return [buttons[i : i + per_row] for i in range(0, len(buttons), per_row)]


def keyboard(script: Script, outcome: VisitOutcome, locale: str, selected: set[int] | None = None) -> Any:
    """The keyboard for where the visit stands: buttons for choices, yes/no, skip, back; the summary's actions."""
    step, visit = outcome.reply.step, outcome.visit_id
    zh = locale == "zh_CN"
    if isinstance(step, engine.Ask):
        return _ask_keyboard(step, visit, locale, selected or set())
    if isinstance(step, engine.Summary):
        sections = dict.fromkeys(line.section for line in step.lines)
        rows = _rows(
            [
                _button(
                    ("修改·" if zh else "Edit: ") + pick(script.section(name).label, locale),
                    f"c:{visit}:{name}",
                )
                for name in sections
            ]
        )
        rows.append(
            [
                _button("提交" if zh else "Submit", f"a:{visit}:summary:submit"),
                _button("取消走访" if zh else "Cancel visit", f"a:{visit}:summary:cancel"),
            ]
        )
        return InlineKeyboardMarkup(inline_keyboard=rows)
    if isinstance(step, engine.ConfirmCancel):
        return InlineKeyboardMarkup(
            inline_keyboard=[
                [
                    _button("是" if zh else "Yes", f"a:{visit}:confirm_cancel:y"),
                    _button("否" if zh else "No", f"a:{visit}:confirm_cancel:n"),
                ]
            ]
        )
    return None


def _ask_keyboard(ask: engine.Ask, visit: int, locale: str, selected: set[int]) -> Any:
    zh, question, key = locale == "zh_CN", ask.question, ask.key
    if question.type == "location" and not ask.adding:
        return ReplyKeyboardMarkup(
            keyboard=[
                [KeyboardButton(text="📍 发送位置" if zh else "📍 Share location", request_location=True)],
                [KeyboardButton(text="跳过" if zh else "skip")],
            ],
            resize_keyboard=True,
            one_time_keyboard=True,
        )
    buttons: list[InlineKeyboardButton] = []
    if ask.adding or question.type == "yes_no":
        buttons = [
            _button("是" if zh else "Yes", f"a:{visit}:{key}:y"),
            _button("否" if zh else "No", f"a:{visit}:{key}:n"),
        ]
    elif question.type == "confirm":
        buttons = [_button("已完成" if zh else "Done", f"a:{visit}:{key}:y")]
    elif question.type == "one_of":
        buttons = [
            _button(pick(c.label, locale), f"a:{visit}:{key}:c{i}") for i, c in enumerate(question.choices)
        ]
    elif question.type == "several_of":
        buttons = [
            _button(("☑ " if i in selected else "☐ ") + pick(c.label, locale), f"t:{visit}:{key}:{i}")
            for i, c in enumerate(question.choices)
        ]
    rows = _rows(buttons)
    if question.type == "several_of":
        rows.append([_button("完成" if zh else "Done", f"d:{visit}:{key}")])
    extra = [_button("跳过" if zh else "Skip", f"a:{visit}:{key}:s")] if ask.skippable else []
    extra.append(_button("返回" if zh else "Back", f"a:{visit}:{key}:b"))
    rows.append(extra)
    return InlineKeyboardMarkup(inline_keyboard=rows)


def reply(chat_id: int, script: Script, outcome: VisitOutcome, locale: str) -> SendMessage:
    """The message for where the visit stands. Handlers return it: the webhook answers with it (no extra
    Bot API call), and polling sends it."""
    return SendMessage(
        chat_id=chat_id, text=outcome.text, reply_markup=keyboard(script, outcome, outcome.locale)
    )


async def ack(callback: CallbackQuery, text: str | None = None) -> None:
    """Stop the button's spinner. Cosmetic: a refused or late answer (Telegram allows one, within seconds)
    must not fail an update whose answer is already saved, or Telegram would redeliver it forever."""
    with contextlib.suppress(TelegramAPIError):
        await callback.answer(text)


def notice(chat_id: int, template: str, locale: str) -> SendMessage:
    return SendMessage(chat_id=chat_id, text=render(template, locale))


# --- which visit is active ---------------------------------------------------------------------------------


async def _answer_active(
    chat_id: int,
    given: engine.Input,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    state: FSMContext,
    dedupe: tuple[str, str],
) -> VisitOutcome | None:
    """Answer the chat's visit. None when there is no visit in progress.

    The FSM remembers the visit. Only when it remembers nothing at all (a restart with in-memory FSM storage)
    does a message continue the cadre's newest draft; once the remembered visit has ended (here or on
    another channel) text is never put into some other household's draft: /resume picks one explicitly."""
    data = await state.get_data()
    if "visit_id" not in data:
        async with db.reading() as s:
            drafts = await drafts_of(s, cadre.id)
        remembered = drafts[0].id if drafts else None
    else:
        remembered = data["visit_id"]
    if not remembered:
        return None
    try:
        outcome = await flow.answer(int(remembered), given, dedupe=dedupe, owner=cadre.id)
    except VisitNotFound:  # finished or cancelled meanwhile, perhaps on another channel
        await state.update_data(visit_id=None)
        return None
    return await _remember(state, outcome)


async def _remember(state: FSMContext, outcome: VisitOutcome) -> VisitOutcome:
    if outcome.finished:
        await state.update_data(visit_id=None, toggles={})
    else:
        await state.update_data(visit_id=outcome.visit_id)
    return outcome


async def _newest_draft(db: Database, cadre: Cadre, state: FSMContext) -> int | None:
    remembered = (await state.get_data()).get("visit_id")
    async with db.reading() as s:
        drafts = [d.id for d in await drafts_of(s, cadre.id)]
    if remembered in drafts:
        return int(remembered)
    return drafts[0] if drafts else None


# --- the picker --------------------------------------------------------------------------------------------


async def _candidates(
    db: Database, settings: Settings, cadre: Cadre, query: str
) -> list[tuple[Household, bool]]:
    target = coverage_target(cadre.role)
    period = current_period(target.period_kind or "quarter", datetime.now(settings.tz), settings.tz)
    async with db.reading() as s:
        households = await households_in_scope(s, cadre, target.scope)
        visited = await visited_household_ids(
            s, cadre.id, period.starts_at(settings.tz), period.ends_at(settings.tz)
        )
        drafts = {d.household_id for d in await drafts_of(s, cadre.id)}
    if query:
        households = [h for h in households if query in h.head_name or query in h.code]
    found = [(h, h.id in visited) for h in households]
    return sorted(found, key=lambda pair: (pair[0].id not in drafts, pair[1]))


def _picker(
    found: list[tuple[Household, bool]], page: int, locale: str
) -> tuple[str, InlineKeyboardMarkup | None]:
    pages = max(1, -(-len(found) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    shown = found[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    rows = [[_button(household_label(h) + (" ✓" if done else ""), f"h:{h.id}")] for h, done in shown]
    nav = []
    if page > 0:
        nav.append(_button("◀", f"p:{page - 1}"))
    if page < pages - 1:
        nav.append(_button("▶", f"p:{page + 1}"))
    if nav:
        rows.append(nav)
    text = render("telegram/picker.txt", locale, count=len(found), page=page + 1, pages=pages)
    return text, InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


async def _search(
    message: Message,
    query: str,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    state: FSMContext,
    locale: str,
) -> SendMessage:
    await state.update_data(query=query)
    text, markup = _picker(await _candidates(db, settings, cadre, query), 0, locale)
    return message.answer(text, reply_markup=markup)


async def visit_command(
    message: Message,
    command: CommandObject,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    state: FSMContext,
    locale: str,
) -> SendMessage:
    return await _search(message, (command.args or "").strip(), cadre, db, settings, state, locale)


async def picker_page(
    callback: CallbackQuery, cadre: Cadre, db: Database, settings: Settings, state: FSMContext, locale: str
) -> Any:
    query = (await state.get_data()).get("query", "")
    text, markup = _picker(
        await _candidates(db, settings, cadre, query), int(callback.data.split(":")[1]), locale
    )
    await ack(callback)
    if isinstance(callback.message, Message):
        return callback.message.edit_text(text, reply_markup=markup)
    return None


async def pick_household(
    callback: CallbackQuery,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
) -> SendMessage:
    household_id = int(callback.data.split(":")[1])
    async with db.reading() as s:
        scope = await households_in_scope(s, cadre, coverage_target(cadre.role).scope)
    household = next((h for h in scope if h.id == household_id), None)
    await ack(callback)
    if household is None:
        return notice(callback.from_user.id, "telegram/not_in_scope.txt", locale)
    outcome = await flow.start(cadre, household, channel="telegram", capabilities=CAPABILITIES, locale=locale)
    await state.update_data(visit_id=outcome.visit_id, toggles={})
    return reply(callback.from_user.id, script, outcome, locale)


# --- answering ---------------------------------------------------------------------------------------------


async def _tap_answer(
    callback: CallbackQuery,
    visit: str,
    key: str,
    text: str,
    cadre: Cadre,
    flow: VisitFlow,
    state: FSMContext,
    dedupe: tuple[str, str],
) -> VisitOutcome | None:
    try:
        outcome = await flow.answer(int(visit), text, for_key=key, dedupe=dedupe, owner=cadre.id)
    except VisitNotFound:
        outcome = None
    # answered after the save: if this call fails the update is redelivered, and the save is not repeated
    await ack(callback)
    return None if outcome is None else await _remember(state, outcome)


def _tapped(
    callback: CallbackQuery, outcome: VisitOutcome | None, script: Script, locale: str
) -> SendMessage:
    if outcome is None:
        return notice(callback.from_user.id, "telegram/no_visit.txt", locale)
    return reply(callback.from_user.id, script, outcome, locale)


async def tap(
    callback: CallbackQuery,
    cadre: Cadre,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    dedupe: tuple[str, str],
) -> SendMessage:
    _, visit, key, code = callback.data.split(":", 3)
    text = str(int(code[1:]) + 1) if code.startswith("c") else CODES.get(code, "")
    outcome = await _tap_answer(callback, visit, key, text, cadre, flow, state, dedupe)
    return _tapped(callback, outcome, script, locale)


def _ticks_key(visit: str, key: str) -> str:
    return f"{visit}:{key}"


def _ticked(toggles: dict[str, list[int]], visit: str, ask: engine.Ask) -> set[int]:
    """The options ticked so far for this visit's question; at first, its current answer (when changing it)."""
    stored = toggles.get(_ticks_key(visit, ask.key))
    if stored is not None:
        return set(stored)
    values = ask.question.choice_values
    return {values.index(v) for v in (ask.current or []) if v in values}


async def toggle(
    callback: CallbackQuery, cadre: Cadre, flow: VisitFlow, script: Script, state: FSMContext, locale: str
) -> Any:
    _, visit, key, index = callback.data.split(":", 3)
    try:
        current = await flow.resume(int(visit), owner=cadre.id)
    except VisitNotFound:
        current = None
    if current is None or not isinstance(current.reply.step, engine.Ask) or current.reply.step.key != key:
        await ack(callback, render("telegram/stale.txt", locale))
        return None
    toggles = (await state.get_data()).get("toggles", {})
    chosen = _ticked(toggles, visit, current.reply.step) ^ {int(index)}
    await state.update_data(toggles={**toggles, _ticks_key(visit, key): sorted(chosen)})
    await ack(callback)
    if isinstance(callback.message, Message):
        return callback.message.edit_reply_markup(
            reply_markup=keyboard(script, current, current.locale, chosen)
        )
    return None


async def toggles_done(
    callback: CallbackQuery,
    cadre: Cadre,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    dedupe: tuple[str, str],
) -> SendMessage:
    _, visit, key = callback.data.split(":", 2)
    toggles = (await state.get_data()).get("toggles", {})
    try:
        current = await flow.resume(int(visit), owner=cadre.id)
    except VisitNotFound:
        current = None
    ticked = (
        _ticked(toggles, visit, current.reply.step)
        if current and isinstance(current.reply.step, engine.Ask)
        else set()
    )
    text = " ".join(str(i + 1) for i in sorted(ticked))
    outcome = await _tap_answer(callback, visit, key, text, cadre, flow, state, dedupe)
    if outcome is not None and not outcome.reply.error and not outcome.reply.notice:
        toggles.pop(_ticks_key(visit, key), None)  # accepted: the ticks are spent
        await state.update_data(toggles=toggles)
    return _tapped(callback, outcome, script, locale)


async def change_section(
    callback: CallbackQuery, cadre: Cadre, flow: VisitFlow, script: Script, state: FSMContext, locale: str
) -> SendMessage:
    _, visit, section = callback.data.split(":", 2)
    await ack(callback)
    try:
        current = await flow.resume(int(visit), owner=cadre.id)
        if not isinstance(current.reply.step, engine.Summary):
            return reply(callback.from_user.id, script, current, locale)
        outcome = await flow.change_section(int(visit), section, owner=cadre.id)
    except VisitNotFound:
        return notice(callback.from_user.id, "telegram/no_visit.txt", locale)
    return reply(callback.from_user.id, script, outcome, locale)


async def _answer_message(
    message: Message,
    given: engine.Input,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    dedupe: tuple[str, str],
) -> SendMessage:
    outcome = await _answer_active(message.chat.id, given, cadre, db, flow, state, dedupe)
    if outcome is None:
        return notice(message.chat.id, "telegram/no_visit.txt", locale)
    return reply(message.chat.id, script, outcome, locale)


async def location(
    message: Message,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    dedupe: tuple[str, str],
) -> SendMessage:
    given = engine.Location(message.location.latitude, message.location.longitude)  # type: ignore[union-attr]
    return await _answer_message(message, given, cadre, db, flow, script, state, locale, dedupe)


async def photo(
    message: Message,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    dedupe: tuple[str, str],
) -> SendMessage:
    given = engine.Photo(message.photo[-1].file_id)  # type: ignore[index]  # the largest size comes last
    return await _answer_message(message, given, cadre, db, flow, script, state, locale, dedupe)


# --- commands ----------------------------------------------------------------------------------------------


async def resume(
    message: Message,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
) -> SendMessage:
    visit = await _newest_draft(db, cadre, state)
    if visit is None:
        return notice(message.chat.id, "telegram/no_visit.txt", locale)
    await state.update_data(visit_id=visit)
    return reply(message.chat.id, script, await flow.resume(visit, owner=cadre.id), locale)


async def cancel(
    message: Message,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    dedupe: tuple[str, str],
) -> SendMessage:
    return await _answer_message(message, "取消", cadre, db, flow, script, state, locale, dedupe)


async def todo(message: Message, cadre: Cadre, db: Database, settings: Settings, locale: str) -> SendMessage:
    target = coverage_target(cadre.role)
    if target.period_kind is None:
        return message.answer(render("telegram/todo_none.txt", locale, role=cadre.role))
    tz = settings.tz
    period = current_period(target.period_kind, datetime.now(tz), tz)
    async with db.reading() as s:
        counts = await coverage_of(s, [cadre.id], target.scope, period.starts_at(tz), period.ends_at(tz))
        coverage = counts[cadre.id]
        visited = await visited_household_ids(s, cadre.id, period.starts_at(tz), period.ends_at(tz))
        left = [h for h in await households_in_scope(s, cadre, target.scope) if h.id not in visited]
    rate = coverage.visited / coverage.in_scope if coverage.in_scope else None
    return message.answer(
        render(
            "telegram/todo.txt",
            locale,
            period=period.label,
            done=coverage.visited,
            total=coverage.in_scope,
            rate=rate,
            target=target.rate,
            left=[household_label(h) for h in left[:30]],
            more=max(0, len(left) - 30),
        )
    )


async def work_log(
    message: Message, cadre: Cadre, db: Database, settings: Settings, locale: str
) -> SendMessage:
    today = datetime.now(settings.tz).date()
    first = today.replace(day=1)
    async with db.reading() as s:
        query = (
            select(WorkLogEntry)
            .where(WorkLogEntry.cadre_id == cadre.id, WorkLogEntry.day >= first)
            .order_by(WorkLogEntry.day.desc(), WorkLogEntry.id.desc())
        )
        entries = list((await s.execute(query)).scalars())
    todays = [e.text for e in entries if e.day == today]
    return message.answer(
        render(
            "telegram/log.txt",
            locale,
            today=today.isoformat(),
            month=first.strftime("%Y-%m"),
            todays=todays,
            month_count=len(entries),
            recent=[f"{e.day:%m-%d} {e.text}" for e in entries if e.day != today][:10],
        )
    )


async def unknown_command(message: Message, locale: str) -> SendMessage:
    return message.answer(render("telegram/help.txt", locale))


async def text(
    message: Message,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    dedupe: tuple[str, str],
) -> SendMessage:
    """Text answers the visit in progress; with no visit, it searches the cadre's households."""
    outcome = await _answer_active(message.chat.id, message.text or "", cadre, db, flow, state, dedupe)
    if outcome is not None:
        return reply(message.chat.id, script, outcome, locale)
    return await _search(message, (message.text or "").strip(), cadre, db, settings, state, locale)


def make_router() -> Router:
    """A new router each time: an aiogram router belongs to one dispatcher (tests and workers make several)."""
    router = Router(name="visit")
    router.message.register(visit_command, Command("visit"))
    router.callback_query.register(picker_page, F.data.startswith("p:"))
    router.callback_query.register(pick_household, F.data.startswith("h:"))
    router.callback_query.register(tap, F.data.startswith("a:"))
    router.callback_query.register(toggle, F.data.startswith("t:"))
    router.callback_query.register(toggles_done, F.data.startswith("d:"))
    router.callback_query.register(change_section, F.data.startswith("c:"))
    router.message.register(location, F.location)
    router.message.register(photo, F.photo)
    router.message.register(resume, Command("resume"))
    router.message.register(cancel, Command("cancel"))
    router.message.register(todo, Command("todo"))
    router.message.register(work_log, Command("log"))
    router.message.register(unknown_command, F.text.startswith("/"))
    router.message.register(text, F.text)
    return router
