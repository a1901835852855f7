"""The township queue in Telegram: /queue, /problem N, and the secretary's buttons (decide, close, merge, reopen).

`bot.flows.escalation.act` and the state machine (survey.problems) decide everything; this module only turns taps
and texts into `act` calls and renders what came of them. Buttons are hidden where the state makes no sense of
them, and a tap that would be refused anyway (a stale button, a forged callback) is checked by a dry run of the
same machine move before the bot asks for more, so the refusal is the machine's own reason.

Callback data (all ids are numbers; a malformed one is ignored):

    eq:<page>                   the queue, that page (edits the message)
    eo:<problem>                the problem's card (a new message)
    ed:<problem>                decide: the responsible picker (a new message)
    ed:<problem>:<page>         … that page of it (edits the message)
    er:<problem>:<cadre>        decide: that cadre is responsible; the due-date choices (edits the message)
    ew:<problem>:<cadre>:<days> decide: done, due in that many days (a new message: the updated card)
    ec:<problem> / eu:<problem> close / reopen: the next text message is the note
    em:<problem>                merge: the next text message is the number of the problem to merge into

A pending note or number is kept in the FSM (state `Pending.text`, data key `pending`) next to the visit's own
data, which it never clears; /cancel abandons it, and any other command abandons it and is then handled as usual.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from aiogram import F, Router
from aiogram.dispatcher.event.bases import SkipHandler
from aiogram.exceptions import TelegramAPIError, TelegramBadRequest
from aiogram.filters import Command, CommandObject, StateFilter, or_f
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.methods import SendMessage
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.channels.telegram import callbacks as cb
from bot.channels.telegram.callbacks import MAX_ID
from bot.flows.escalation import ActionRefused, act, card, check_move, queue_view
from bot.settings import Settings
from messages import error_text, render
from storage import problems as store
from storage.db import Database
from storage.models import Cadre
from storage.telegram import mark_processed
from survey import problems as machine

PAGE_SIZE = 8


async def ack(callback: CallbackQuery, text: str | None = None) -> None:
    """Stop the button's spinner. Cosmetic: a refused or late answer (Telegram allows one, within seconds)
    must not fail an update whose answer is already saved, or Telegram would redeliver it forever."""
    with contextlib.suppress(TelegramAPIError):
        await callback.answer(text)


class Pending(StatesGroup):
    text = State()  # waiting for a note (close, reopen) or a problem number (merge)


# --- small helpers -------------------------------------------------------------------------------------------


def _label(name: str, locale: str, **params: Any) -> str:
    """A button's text: one macro of `problems/telegram_parts.txt`."""
    return error_text(name, locale, source="problems/telegram_parts.txt", **params)


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def _markup(rows: list[list[InlineKeyboardButton]]) -> InlineKeyboardMarkup | None:
    rows = [row for row in rows if row]
    return InlineKeyboardMarkup(inline_keyboard=rows) if rows else None


def _number(text: str | None) -> int | None:
    """'12', '#12', '＃１２' → 12; anything else None."""
    value = unicodedata.normalize("NFKC", text or "").strip().lstrip("#№").strip()
    return int(value) if value.isascii() and value.isdigit() else None


def _pages(count: int) -> int:
    return max(1, -(-count // PAGE_SIZE))


def _nav(page: int, pages: int, data: Callable[[int], CallbackData]) -> list[InlineKeyboardButton]:
    nav = []
    if page > 0:
        nav.append(_button("‹", data(page - 1)))
    if page < pages - 1:
        nav.append(_button("›", data(page + 1)))
    return nav


async def _show(callback: CallbackQuery, text: str, markup: InlineKeyboardMarkup | None, edit: bool) -> Any:
    """Edit the tapped message in place, or send a new one (also when the old one can no longer be edited).
    A tap that changes nothing on screen (the same page again) is no error: Telegram's "not modified" is
    swallowed, or the update would fail and be redelivered."""
    if edit and isinstance(callback.message, Message):
        try:
            await callback.message.edit_text(text, reply_markup=markup)
            return None
        except TelegramBadRequest as refused:
            if "not modified" in str(refused):
                return None
    return SendMessage(chat_id=callback.from_user.id, text=text, reply_markup=markup)


def _say(chat_id: int, text: str) -> SendMessage:
    return SendMessage(chat_id=chat_id, text=text)


# --- the queue -----------------------------------------------------------------------------------------------


async def _queue(db: Database, settings: Settings, cadre: Cadre, page: int, locale: str) -> tuple[str, Any]:
    """The queue's page (the flow's) with a button per problem and the page turners."""
    view = await queue_view(db, settings, cadre, page, PAGE_SIZE)
    text = render(
        "problems/telegram_queue.txt",
        locale,
        mine=view.mine,
        township=cadre.township.name,
        count=view.count,
        page=view.page + 1,
        pages=view.pages,
        items=view.lines,
    )
    rows = [
        [_button(_label("btn_problem", locale, item=i), cb.OpenProblem(problem_id=i.id))] for i in view.items
    ]
    rows.append(_nav(view.page, view.pages, lambda p: cb.QueuePage(page=p)))
    return text, _markup(rows)


async def queue_command(
    message: Message, cadre: Cadre, db: Database, settings: Settings, locale: str
) -> SendMessage:
    text, markup = await _queue(db, settings, cadre, 0, locale)
    return message.answer(text, reply_markup=markup)


async def queue_page(
    callback: CallbackQuery,
    callback_data: cb.QueuePage,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    state: FSMContext,
    locale: str,
) -> Any:
    await _move_on(state)
    await ack(callback)
    text, markup = await _queue(db, settings, cadre, callback_data.page, locale)
    return await _show(callback, text, markup, edit=True)


# --- one problem ---------------------------------------------------------------------------------------------


def _buttons(problem: machine.Problem, locale: str) -> list[list[InlineKeyboardButton]]:
    """The moves that make sense in the problem's state (the machine still has the last word)."""
    pid, state = problem.id, problem.state
    row = []
    if state in machine.OPEN_STATES:
        row.append(
            _button(
                _label("btn_decide" if state == "escalated" else "btn_redecide", locale),
                cb.Decide(problem_id=pid),
            )
        )
    if state in machine.CLOSABLE:
        row.append(_button(_label("btn_close", locale), cb.Close(problem_id=pid)))
    if state in machine.OPEN_STATES:
        row.append(_button(_label("btn_merge", locale), cb.Merge(problem_id=pid)))
    if state in ("closed", "merged"):
        row.append(_button(_label("btn_reopen", locale), cb.Reopen(problem_id=pid)))
    return [row]


async def _card(
    db: Database, settings: Settings, cadre: Cadre, problem_id: int, locale: str, done: str | None = None
) -> tuple[str, InlineKeyboardMarkup | None]:
    """The problem's card (the flow's), with the secretary's buttons when they may act on it."""
    shown = await card(db, settings, cadre, problem_id, locale, done)
    return shown.text, _markup(_buttons(shown.problem, locale)) if shown.may_act else None


async def problem_command(
    message: Message, command: CommandObject, cadre: Cadre, db: Database, settings: Settings, locale: str
) -> SendMessage:
    problem_id = _number(command.args)
    if problem_id is None:
        return message.answer(render("problems/telegram_usage.txt", locale))
    try:
        text, markup = await _card(
            db, settings, cadre, problem_id, locale
        )  # the flow refuses ids past MAX_ID
    except ActionRefused as refused:
        return message.answer(refused.text(locale))
    return message.answer(text, reply_markup=markup)


async def open_problem(
    callback: CallbackQuery,
    callback_data: cb.OpenProblem,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    state: FSMContext,
    locale: str,
) -> Any:
    await _move_on(state)
    await ack(callback)
    try:
        text, markup = await _card(db, settings, cadre, callback_data.problem_id, locale)
    except ActionRefused as refused:
        return _say(callback.from_user.id, refused.text(locale))
    return SendMessage(chat_id=callback.from_user.id, text=text, reply_markup=markup)


# --- decide: responsible, then due date ----------------------------------------------------------------------


async def decide_pick(
    callback: CallbackQuery,
    callback_data: cb.Decide | cb.DecidePage,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    clock: Callable[[], datetime],
    state: FSMContext,
    locale: str,
) -> Any:
    """`Decide` opens the responsible picker as a new message; `DecidePage` turns its pages."""
    await _move_on(state)
    await ack(callback)
    turning = isinstance(callback_data, cb.DecidePage)
    problem_id, page = callback_data.problem_id, (callback_data.page if turning else 0)
    try:
        _, township_id = await check_move(db, settings, cadre, problem_id, "decide", clock())
    except ActionRefused as refused:
        return _say(callback.from_user.id, refused.text(locale))
    async with db.reading() as s:
        cadres = await store.township_cadres(s, township_id)
    pages = _pages(len(cadres))
    page = min(page, pages - 1)
    shown = cadres[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    rows = [
        [_button(_label("btn_cadre", locale, cadre=c), cb.Responsible(problem_id=problem_id, cadre_id=c.id))]
        for c in shown
    ]
    rows.append(_nav(page, pages, lambda p: cb.DecidePage(problem_id=problem_id, page=p)))
    rows.append([_button(_label("btn_back", locale), cb.OpenProblem(problem_id=problem_id))])
    text = render(
        "problems/telegram_pick_responsible.txt",
        locale,
        id=problem_id,
        township=cadre.township.name,
        page=page + 1,
        pages=pages,
    )
    return await _show(callback, text, _markup(rows), edit=turning)


async def decide_responsible(
    callback: CallbackQuery,
    callback_data: cb.Responsible,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    clock: Callable[[], datetime],
    state: FSMContext,
    locale: str,
) -> Any:
    await _move_on(state)
    await ack(callback)
    problem_id, responsible_id = callback_data.problem_id, callback_data.cadre_id
    now = clock()
    try:
        _, township_id = await check_move(db, settings, cadre, problem_id, "decide", now)
        async with db.reading() as s:
            responsible = await s.get(Cadre, responsible_id)
        if responsible is None or responsible.township_id != township_id:
            raise ActionRefused("responsible_elsewhere")
    except ActionRefused as refused:
        return _say(callback.from_user.id, refused.text(locale))
    today = now.astimezone(settings.tz).date()
    row = [
        _button(
            _label("btn_due", locale, days=days, due=today + timedelta(days=days)),
            cb.DueIn(problem_id=problem_id, cadre_id=responsible_id, days=days),
        )
        for days in machine.DUE_CHOICES_DAYS
    ]
    back = [_button(_label("btn_back", locale), cb.DecidePage(problem_id=problem_id, page=0))]
    text = render("problems/telegram_pick_due.txt", locale, id=problem_id, responsible=responsible.name)
    return await _show(callback, text, _markup([row, back]), edit=True)


async def decide_done(
    callback: CallbackQuery,
    callback_data: cb.DueIn,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    clock: Callable[[], datetime],
    state: FSMContext,
    locale: str,
    dedupe: tuple[str, str],
) -> Any:
    await _move_on(state)
    await ack(callback)
    return await _act(
        callback.from_user.id,
        cadre,
        db,
        settings,
        locale,
        callback_data.problem_id,
        "decide",
        clock(),
        dedupe,
        responsible_id=callback_data.cadre_id,
        due_days=callback_data.days,
    )


async def _act(
    chat_id: int,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    locale: str,
    problem_id: int,
    action: str,
    now: datetime,
    dedupe: tuple[str, str],
    **kw: Any,
) -> SendMessage:
    """Carry out the move; the updated card on success, the reason (and nothing changed) on refusal.

    The update is recorded as processed first, so a redelivered one (after a failure to answer) is applied at
    most once: it only shows the problem as it stands. Should the move itself fail, the apology tells the
    secretary to tap again."""
    async with db.session() as s:
        fresh = await mark_processed(s, *dedupe, now)
    try:
        if fresh:
            await act(db, settings, cadre.id, problem_id, action, now, **kw)
        text, markup = await _card(db, settings, cadre, problem_id, locale, done=action if fresh else None)
    except ActionRefused as refused:
        return _say(chat_id, refused.text(locale))
    return SendMessage(chat_id=chat_id, text=text, reply_markup=markup)


# --- close, reopen, merge: the next text message ----------------------------------------------------------------


async def ask_text(
    callback: CallbackQuery,
    callback_data: cb.Close | cb.Reopen | cb.Merge,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    clock: Callable[[], datetime],
    state: FSMContext,
    locale: str,
) -> Any:
    await ack(callback)
    action, problem_id = cb.ASKS[type(callback_data)], callback_data.problem_id
    try:
        await check_move(db, settings, cadre, problem_id, action, clock())
    except ActionRefused as refused:
        await _forget(state)
        return _say(callback.from_user.id, refused.text(locale))
    await state.set_state(Pending.text)
    await state.update_data(pending={"action": action, "problem": problem_id})
    return _say(
        callback.from_user.id, render("problems/telegram_ask.txt", locale, kind=action, id=problem_id)
    )


async def _forget(state: FSMContext) -> None:
    """Drop the pending input only: the visit's FSM data (visit id, ticks, search) stays."""
    await state.set_state(None)
    await state.update_data(pending=None)


async def _move_on(state: FSMContext) -> None:
    """Another queue button: a note or number still awaited for an earlier tap is not awaited any more."""
    if await state.get_state() == Pending.text.state:
        await _forget(state)


async def pending_text(
    message: Message,
    cadre: Cadre,
    db: Database,
    settings: Settings,
    clock: Callable[[], datetime],
    state: FSMContext,
    locale: str,
    dedupe: tuple[str, str],
) -> SendMessage:
    pending = (await state.get_data()).get("pending") or {}
    action, problem_id = pending.get("action"), pending.get("problem")
    if action not in cb.ASKS.values() or not isinstance(problem_id, int):
        await _forget(state)
        raise SkipHandler  # nothing usable remembered: the text is the visit's, as usual
    kw: dict[str, Any] = {"note": message.text or ""}
    if action == "merge":
        into = _number(message.text)
        if into is None:
            return message.answer(render("problems/telegram_merge_number.txt", locale))  # still waiting
        if into > MAX_ID:
            await _forget(state)
            return message.answer(ActionRefused("not_found", id=into).text(locale))
        kw = {"into_id": into}
    await _forget(state)
    return await _act(message.chat.id, cadre, db, settings, locale, problem_id, action, clock(), dedupe, **kw)


async def cancel_pending(message: Message, state: FSMContext, locale: str) -> SendMessage:
    await _forget(state)
    return message.answer(render("problems/telegram_cancelled.txt", locale))


async def other_command(message: Message, state: FSMContext) -> None:
    """Another command abandons the pending input, then goes where it always goes."""
    await _forget(state)
    raise SkipHandler


def make_router() -> Router:
    """A new router each time (an aiogram router belongs to one dispatcher). Include it before the visit's
    router: its /cancel and free text are taken here while a note or number is pending."""
    router = Router(name="escalation")
    router.message.register(cancel_pending, StateFilter(Pending.text), Command("cancel"))
    router.message.register(other_command, StateFilter(Pending.text), F.text.startswith("/"))
    router.message.register(pending_text, StateFilter(Pending.text), F.text)
    router.message.register(queue_command, Command("queue"))
    router.message.register(problem_command, Command("problem"))
    router.callback_query.register(queue_page, cb.QueuePage.filter())
    router.callback_query.register(open_problem, cb.OpenProblem.filter())
    router.callback_query.register(decide_pick, or_f(cb.Decide.filter(), cb.DecidePage.filter()))
    router.callback_query.register(decide_responsible, cb.Responsible.filter())
    router.callback_query.register(decide_done, cb.DueIn.filter())
    router.callback_query.register(ask_text, or_f(cb.Close.filter(), cb.Reopen.filter(), cb.Merge.filter()))
    router.callback_query.register(malformed, F.data.regexp(rf"^({'|'.join(cb.PREFIXES)}):"))
    return router


async def malformed(callback: CallbackQuery, state: FSMContext) -> None:
    """A queue button whose data no handler reads (forged, truncated, a number out of range): acknowledged, so
    the spinner stops, and nothing else."""
    await _move_on(state)
    await ack(callback)


__all__ = ["PAGE_SIZE", "Pending", "make_router"]
