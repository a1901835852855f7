"""The home visit in Telegram: household picker, keyboards for the engine's questions, /resume /todo /log /cancel.

The engine and `VisitFlow` do the work; this module turns taps and messages into engine inputs and the
engine's replies into messages with keyboards. Callback data name the visit and the question they were made
for (`a:<visit>:<key>:<code>`), so a tap on an earlier question's button changes nothing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    Update,
)
from sqlalchemy import select

from bot.flows.visit import VisitFlow, VisitNotFound, VisitOutcome, household_label
from bot.settings import Settings
from messages import render
from storage.db import Database
from storage.models import Cadre, Household, Visit, WorkLogEntry
from storage.rollups import cadre_coverage
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


async def show(
    bot: Bot,
    chat_id: int,
    script: Script,
    outcome: VisitOutcome,
    locale: str,
    selected: set[int] | None = None,
) -> None:
    await bot.send_message(chat_id, outcome.text, reply_markup=keyboard(script, outcome, locale, selected))


# --- which visit is active ---------------------------------------------------------------------------------


async def active_visit(state: FSMContext, db: Database, cadre: Cadre) -> int | None:
    """The visit this chat is on: the one remembered in the FSM while it is a draft, else the newest draft
    (so after a restart with in-memory FSM storage any message continues the visit)."""
    remembered = (await state.get_data()).get("visit_id")
    async with db.reading() as s:
        if remembered:
            visit = await s.get(Visit, remembered)
            if visit is not None and visit.cadre_id == cadre.id and visit.status == "draft":
                return int(remembered)
        drafts = await drafts_of(s, cadre.id)
    return drafts[0].id if drafts else None


async def _apply(
    bot: Bot,
    chat_id: int,
    state: FSMContext,
    flow: VisitFlow,
    script: Script,
    locale: str,
    outcome: VisitOutcome,
) -> None:
    if outcome.finished:
        await state.update_data(visit_id=None, toggles={})
    await show(bot, chat_id, script, outcome, locale)


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


async def visit_command(
    message: Message,
    command: CommandObject,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    state: FSMContext,
    locale: str,
) -> None:
    query = (command.args or "").strip()
    await state.update_data(query=query)
    found = await _candidates(db, settings, cadre, query)
    text, markup = _picker(found, 0, locale)
    await message.answer(text, reply_markup=markup)


async def picker_page(
    callback: CallbackQuery, cadre: Cadre, db: Database, settings: Settings, state: FSMContext, locale: str
) -> None:
    query = (await state.get_data()).get("query", "")
    text, markup = _picker(
        await _candidates(db, settings, cadre, query), int(callback.data.split(":")[1]), locale
    )
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_text(text, reply_markup=markup)


async def pick_household(
    callback: CallbackQuery,
    bot: Bot,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
) -> None:
    household_id = int(callback.data.split(":")[1])
    async with db.reading() as s:
        scope = await households_in_scope(s, cadre, coverage_target(cadre.role).scope)
    household = next((h for h in scope if h.id == household_id), None)
    await callback.answer()
    if household is None:
        await bot.send_message(callback.from_user.id, render("telegram/not_in_scope.txt", locale))
        return
    outcome = await flow.start(cadre, household, channel="telegram", capabilities=CAPABILITIES, locale=locale)
    await state.update_data(visit_id=outcome.visit_id, toggles={})
    await show(bot, callback.from_user.id, script, outcome, locale)


# --- answering ---------------------------------------------------------------------------------------------


async def tap(
    callback: CallbackQuery,
    bot: Bot,
    cadre: Cadre,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    event_update: Update,
) -> None:
    _, visit, key, code = callback.data.split(":", 3)
    text = str(int(code[1:]) + 1) if code.startswith("c") else CODES.get(code, "")
    await callback.answer()
    try:
        outcome = await flow.answer(
            int(visit), text, for_key=key, dedupe=("telegram", str(event_update.update_id)), owner=cadre.id
        )
    except VisitNotFound:
        await bot.send_message(callback.from_user.id, render("telegram/no_visit.txt", locale))
        return
    await _apply(bot, callback.from_user.id, state, flow, script, locale, outcome)


async def toggle(
    callback: CallbackQuery, cadre: Cadre, flow: VisitFlow, script: Script, state: FSMContext, locale: str
) -> None:
    _, visit, key, index = callback.data.split(":", 3)
    current = await flow.resume(int(visit), owner=cadre.id)
    if not isinstance(current.reply.step, engine.Ask) or current.reply.step.key != key:
        await callback.answer(render("telegram/stale.txt", locale))
        return
    toggles = (await state.get_data()).get("toggles", {})
    chosen = set(toggles.get(key, [])) ^ {int(index)}
    await state.update_data(toggles={**toggles, key: sorted(chosen)})
    await callback.answer()
    if isinstance(callback.message, Message):
        await callback.message.edit_reply_markup(reply_markup=keyboard(script, current, locale, chosen))


async def toggles_done(
    callback: CallbackQuery,
    bot: Bot,
    cadre: Cadre,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    event_update: Update,
) -> None:
    _, visit, key = callback.data.split(":", 2)
    toggles = (await state.get_data()).get("toggles", {})
    text = " ".join(str(i + 1) for i in toggles.get(key, []))
    await callback.answer()
    outcome = await flow.answer(
        int(visit), text, for_key=key, dedupe=("telegram", str(event_update.update_id)), owner=cadre.id
    )
    if not outcome.reply.error and not outcome.reply.notice:
        toggles.pop(key, None)
        await state.update_data(toggles=toggles)
    await _apply(bot, callback.from_user.id, state, flow, script, locale, outcome)


async def change_section(
    callback: CallbackQuery,
    bot: Bot,
    cadre: Cadre,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
) -> None:
    _, visit, section = callback.data.split(":", 2)
    await callback.answer()
    current = await flow.resume(int(visit), owner=cadre.id)
    if not isinstance(current.reply.step, engine.Summary):
        await show(bot, callback.from_user.id, script, current, locale)
        return
    outcome = await flow.change_section(int(visit), section, owner=cadre.id)
    await _apply(bot, callback.from_user.id, state, flow, script, locale, outcome)


async def _answer_message(
    message: Message,
    given: engine.Input,
    bot: Bot,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    update_id: int,
) -> bool:
    visit = await active_visit(state, db, cadre)
    if visit is None:
        return False
    await state.update_data(visit_id=visit)
    outcome = await flow.answer(visit, given, dedupe=("telegram", str(update_id)), owner=cadre.id)
    await _apply(bot, message.chat.id, state, flow, script, locale, outcome)
    return True


async def location(
    message: Message,
    bot: Bot,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    event_update: Update,
) -> None:
    given = engine.Location(message.location.latitude, message.location.longitude)  # type: ignore[union-attr]
    if not await _answer_message(
        message, given, bot, cadre, db, flow, script, state, locale, event_update.update_id
    ):
        await message.answer(render("telegram/no_visit.txt", locale))


async def photo(
    message: Message,
    bot: Bot,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    event_update: Update,
) -> None:
    given = engine.Photo(message.photo[-1].file_id)  # type: ignore[index]  # the largest size comes last
    if not await _answer_message(
        message, given, bot, cadre, db, flow, script, state, locale, event_update.update_id
    ):
        await message.answer(render("telegram/no_visit.txt", locale))


# --- commands ----------------------------------------------------------------------------------------------


async def resume(
    message: Message,
    bot: Bot,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
) -> None:
    visit = await active_visit(state, db, cadre)
    if visit is None:
        await message.answer(render("telegram/no_visit.txt", locale))
        return
    await state.update_data(visit_id=visit)
    await show(bot, message.chat.id, script, await flow.resume(visit, owner=cadre.id), locale)


async def cancel(
    message: Message,
    bot: Bot,
    cadre: Cadre,
    db: Database,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    event_update: Update,
) -> None:
    if not await _answer_message(
        message, "取消", bot, cadre, db, flow, script, state, locale, event_update.update_id
    ):
        await message.answer(render("telegram/no_visit.txt", locale))


async def todo(message: Message, cadre: Cadre, db: Database, settings: Settings, locale: str) -> None:
    target = coverage_target(cadre.role)
    if target.period_kind is None:
        await message.answer(render("telegram/todo_none.txt", locale, role=cadre.role))
        return
    tz = settings.tz
    period = current_period(target.period_kind, datetime.now(tz), tz)
    async with db.reading() as s:
        coverage = await cadre_coverage(s, cadre, target.scope, period.starts_at(tz), period.ends_at(tz))
        visited = await visited_household_ids(s, cadre.id, period.starts_at(tz), period.ends_at(tz))
        left = [h for h in await households_in_scope(s, cadre, target.scope) if h.id not in visited]
    rate = coverage.visited / coverage.in_scope if coverage.in_scope else None
    await message.answer(
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


async def work_log(message: Message, cadre: Cadre, db: Database, settings: Settings, locale: str) -> None:
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
    await message.answer(
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


async def unknown_command(message: Message, locale: str) -> None:
    await message.answer(render("telegram/help.txt", locale))


async def text(
    message: Message,
    bot: Bot,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    flow: VisitFlow,
    script: Script,
    state: FSMContext,
    locale: str,
    event_update: Update,
) -> None:
    """Text answers the visit in progress; with no visit, it searches the cadre's households."""
    if await _answer_message(
        message, message.text or "", bot, cadre, db, flow, script, state, locale, event_update.update_id
    ):
        return
    query = (message.text or "").strip()
    await state.update_data(query=query)
    text_, markup = _picker(await _candidates(db, settings, cadre, query), 0, locale)
    await message.answer(text_, reply_markup=markup)


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
