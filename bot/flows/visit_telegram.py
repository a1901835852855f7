"""The home visit in a chat (Telegram): household picker, buttons for the engine's questions, /resume /todo /log.

The engine and `VisitFlow` do the work; this module turns taps and messages (`ChatInput`) into engine inputs
and the engine's replies into text with buttons (`Answer`, plain values: the Telegram channel's webhook and
dispatcher, bot.channels.telegram, turn them into Bot API calls). Button data name the visit and the question they were made for
(bot.flows.taps), so a tap on an earlier question's button changes nothing.

What a chat remembers between updates (the visit it is in, the options ticked so far, the picker's search) is
its `ChatState`: aiogram's FSM storage (in memory, or Redis with several workers), read once per update.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from bot.flows import taps
from bot.flows.picker import HouseholdPicker, label
from bot.flows.replies import Answer, Button, Buttons, ChatInput, Edit, Keyboard, LocationRequest, Say, rows
from bot.flows.visit import VisitFlow, VisitNotFound, VisitOutcome, household_label
from bot.settings import Settings
from messages import error_text, render
from storage.db import Database
from storage.models import Cadre
from storage.visits import (
    HouseholdLine,
    drafts_of,
    work_log_since,
)
from survey import engine
from survey.script import Script, pick

PAGE_SIZE = 8
CAPABILITIES = frozenset({"location", "photo"})
CODES = {"y": "是", "n": "否", "s": "跳过", "b": "返回", "submit": "提交", "cancel": "取消"}
COMMANDS = frozenset({"visit", "resume", "cancel", "todo", "log"})


class ChatState(Protocol):
    """What the chat remembers (aiogram's FSMContext has this shape)."""

    async def get_data(self) -> dict[str, Any]: ...

    async def update_data(self, data: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]: ...


def command_of(text: str) -> tuple[str, str] | None:
    """ "/visit 张" → ("visit", "张"); None when the text is no command. A command naming a bot (/visit@x) is
    left to the channel's own command filter."""
    if not text.startswith("/"):
        return None
    word, _, args = text[1:].partition(" ")
    return word, args.strip()


def is_visit_input(inp: ChatInput) -> bool:
    """Whether this input is the visit's: its buttons, a location or photo, its commands, any other text."""
    if inp.data is not None:
        return inp.data.startswith(taps.PREFIXES)
    if inp.location is not None or inp.photo is not None:
        return True
    if inp.text is None:
        return False
    command = command_of(inp.text)
    return command is None or command[0] in COMMANDS


# --- keyboards ---------------------------------------------------------------------------------------------


def keyboard(
    script: Script, outcome: VisitOutcome, locale: str, selected: set[int] | None = None
) -> Keyboard | None:
    """The buttons for where the visit stands: choices, yes/no, skip, back; the summary's actions."""
    step, visit = outcome.reply.step, outcome.visit_id
    word = _words(locale)
    if isinstance(step, engine.Ask):
        return _ask_keyboard(step, visit, locale, selected or set())
    if isinstance(step, engine.Summary):
        sections = dict.fromkeys(line.section for line in step.lines)
        buttons = rows(
            [
                Button(
                    _word("btn_edit", locale, section=pick(script.section(name).label, locale)),
                    taps.ChangeSection(visit, name).pack(),
                )
                for name in sections
            ]
        )
        actions = (
            Button(word("btn_submit"), taps.AnswerTap(visit, "summary", "submit").pack()),
            Button(word("btn_cancel_visit"), taps.AnswerTap(visit, "summary", "cancel").pack()),
        )
        return (*buttons, actions)
    if isinstance(step, engine.ConfirmCancel):
        return (
            (
                Button(word("btn_yes"), taps.AnswerTap(visit, "confirm_cancel", "y").pack()),
                Button(word("btn_no"), taps.AnswerTap(visit, "confirm_cancel", "n").pack()),
            ),
        )
    return None


def _word(name: str, locale: str, **params: Any) -> str:
    """A button's label, from messages' visit/parts.txt."""
    return error_text(name, locale, source="visit/parts.txt", **params)


def _words(locale: str) -> Callable[[str], str]:
    return lambda name: _word(name, locale)


def _ask_keyboard(ask: engine.Ask, visit: int, locale: str, selected: set[int]) -> Keyboard:
    word, question, key = _words(locale), ask.question, ask.key
    if question.type == "location" and not ask.adding:
        return LocationRequest(share=word("btn_share_location"), skip=word("btn_skip_location"))
    buttons: list[Button] = []
    if ask.adding or question.type == "yes_no":
        buttons = [
            Button(word("btn_yes"), taps.AnswerTap(visit, key, "y").pack()),
            Button(word("btn_no"), taps.AnswerTap(visit, key, "n").pack()),
        ]
    elif question.type == "confirm":
        buttons = [Button(word("btn_confirmed"), taps.AnswerTap(visit, key, "y").pack())]
    elif question.type == "one_of":
        buttons = [
            Button(pick(c.label, locale), taps.AnswerTap(visit, key, f"c{i}").pack())
            for i, c in enumerate(question.choices)
        ]
    elif question.type == "several_of":
        buttons = [
            # the tap says what the box becomes, not "flip": a redelivered tap then changes nothing more
            Button(
                ("☑ " if i in selected else "☐ ") + pick(c.label, locale),
                taps.Toggle(visit, key, i, i not in selected).pack(),
            )
            for i, c in enumerate(question.choices)
        ]
    grid = list(rows(buttons))
    if question.type == "several_of":
        grid.append((Button(word("btn_done"), taps.TogglesDone(visit, key).pack()),))
    extra = [Button(word("btn_skip"), taps.AnswerTap(visit, key, "s").pack())] if ask.skippable else []
    extra.append(Button(word("btn_back"), taps.AnswerTap(visit, key, "b").pack()))
    grid.append(tuple(extra))
    return tuple(grid)


def say(script: Script, outcome: VisitOutcome) -> Say:
    """The message for where the visit stands."""
    return Say(outcome.text, keyboard(script, outcome, outcome.locale))


def notice(template: str, locale: str) -> Say:
    return Say(render(template, locale))


def _ticks_key(visit: int, key: str) -> str:
    return f"{visit}:{key}"


def _ticked(toggles: dict[str, list[int]], visit: int, ask: engine.Ask) -> set[int]:
    """The options ticked so far for this visit's question; at first, its current answer (when changing it)."""
    stored = toggles.get(_ticks_key(visit, ask.key))
    if stored is not None:
        return set(stored)
    values = ask.question.choice_values
    return {values.index(v) for v in (ask.current or []) if v in values}


class VisitChat(HouseholdPicker):
    """One cadre's chat with the visit: every input the visit owns (`is_visit_input`) goes through `handle`; the
    household picker and /todo's list are the flow's (HouseholdPicker), the same as the console's."""

    def __init__(self, db: Database, flow: VisitFlow, script: Script, settings: Settings) -> None:
        self.db, self.flow, self.script, self.settings = db, flow, script, settings

    async def handle(
        self, inp: ChatInput, cadre: Cadre, locale: str, state: ChatState, dedupe: tuple[str, str]
    ) -> Answer:
        data = await state.get_data()
        turn = _Turn(self, inp, cadre, locale, state, data, dedupe)
        if inp.data is not None:
            return await turn.tap(inp.data)
        if inp.location is not None:
            return await turn.message(engine.Location(*inp.location))
        if inp.photo is not None:
            return await turn.message(engine.Photo(inp.photo))
        text = inp.text or ""
        command = command_of(text)
        if command is None:
            return await turn.text(text)
        return await turn.command(*command)


def picker(found: list[HouseholdLine], page: int, locale: str) -> tuple[str, Buttons | None]:
    pages = max(1, -(-len(found) // PAGE_SIZE))
    page = min(max(page, 0), pages - 1)
    shown = found[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]
    grid = [(Button(label(h) + (" ✓" if h.visited else ""), taps.Pick(h.id).pack()),) for h in shown]
    nav = []
    if page > 0:
        nav.append(Button("◀", taps.Page(page - 1).pack()))
    if page < pages - 1:
        nav.append(Button("▶", taps.Page(page + 1).pack()))
    if nav:
        grid.append(tuple(nav))
    text = render("telegram/picker.txt", locale, count=len(found), page=page + 1, pages=pages)
    return text, tuple(grid) if grid else None


class _Turn:
    """One update of one chat: the input, who sent it, and what the chat remembered when it came."""

    def __init__(
        self,
        chat: VisitChat,
        inp: ChatInput,
        cadre: Cadre,
        locale: str,
        state: ChatState,
        data: dict[str, Any],
        dedupe: tuple[str, str],
    ) -> None:
        self.chat, self.inp, self.cadre, self.locale = chat, inp, cadre, locale
        self.state, self.data, self.dedupe = state, data, dedupe
        self.flow, self.script = chat.flow, chat.script

    # --- remembering -----------------------------------------------------------------------------------

    async def remember(self, **changes: Any) -> None:
        """Store what changed (nothing when nothing did: with Redis every write is a round trip)."""
        changed = {k: v for k, v in changes.items() if self.data.get(k, ...) != v}
        if changed:
            self.data.update(changed)
            await self.state.update_data(changed)

    async def after(self, outcome: VisitOutcome) -> VisitOutcome:
        if outcome.finished:
            await self.remember(visit_id=None, toggles={})
        else:
            await self.remember(visit_id=outcome.visit_id)
        return outcome

    # --- taps ------------------------------------------------------------------------------------------

    async def tap(self, data: str) -> Answer:
        tap = taps.parse(data)
        if isinstance(tap, taps.Page):
            return await self.page(tap)
        if isinstance(tap, taps.Pick):
            return await self.pick(tap)
        if isinstance(tap, taps.AnswerTap):
            return await self.answer_tap(tap)
        if isinstance(tap, taps.Toggle):
            return await self.toggle(tap)
        if isinstance(tap, taps.TogglesDone):
            return await self.toggles_done(tap)
        if isinstance(tap, taps.ChangeSection):
            return await self.change_section(tap)
        return Answer(None, ack=True)  # forged or mangled button data: nothing happens

    async def page(self, tap: taps.Page) -> Answer:
        found = await self.chat.candidates(self.cadre, self.data.get("query", ""))
        text, markup = picker(found, tap.page, self.locale)
        return Answer(Edit(markup, text), ack=True)

    async def pick(self, tap: taps.Pick) -> Answer:
        household = await self.chat.in_scope(self.cadre, tap.household_id)
        if household is None:
            return Answer(notice("telegram/not_in_scope.txt", self.locale), ack=True)
        outcome = await self.flow.start(
            self.cadre, household, channel="telegram", capabilities=CAPABILITIES, locale=self.locale
        )
        await self.remember(visit_id=outcome.visit_id, toggles={})
        return Answer(say(self.script, outcome), ack=True)

    async def _tap_answer(self, visit: int, key: str, text: str) -> VisitOutcome | None:
        try:
            outcome = await self.flow.answer(
                visit, text, for_key=key, dedupe=self.dedupe, owner=self.cadre.id
            )
        except VisitNotFound:
            return None
        return await self.after(outcome)

    def _tapped(self, outcome: VisitOutcome | None) -> Answer:
        # the tap is answered after the save: if that fails the update is redelivered, the save not repeated
        if outcome is None:
            return Answer(notice("telegram/no_visit.txt", self.locale), ack=True)
        return Answer(say(self.script, outcome), ack=True)

    async def answer_tap(self, tap: taps.AnswerTap) -> Answer:
        if tap.code.startswith("c"):  # choice i, answered as the number a cadre would type
            choice = taps.number(tap.code[1:])
            if choice is None:
                return Answer(None, ack=True)
            text = str(choice + 1)
        else:
            text = CODES.get(tap.code, "")
        return self._tapped(await self._tap_answer(tap.visit_id, tap.key, text))

    async def _current(self, visit: int) -> VisitOutcome | None:
        try:
            return await self.flow.resume(visit, owner=self.cadre.id)
        except VisitNotFound:
            return None

    async def toggle(self, tap: taps.Toggle) -> Answer:
        visit, key = tap.visit_id, tap.key
        current = await self._current(visit)
        if current is not None and current.reconciled:  # the script changed under the draft: say so, ask on
            return Answer(say(self.script, current), ack=True)
        if current is None or not isinstance(current.reply.step, engine.Ask) or current.reply.step.key != key:
            return Answer(None, ack=True, ack_text=render("telegram/stale.txt", self.locale))
        toggles = self.data.get("toggles", {})
        ticked = _ticked(toggles, visit, current.reply.step)
        if tap.becomes is None:  # a button from before the boxes said what they become: it flips
            chosen = ticked ^ {tap.index}
        else:
            chosen = ticked | {tap.index} if tap.becomes else ticked - {tap.index}
        await self.remember(toggles={**toggles, _ticks_key(visit, key): sorted(chosen)})
        markup = keyboard(self.script, current, current.locale, chosen)
        return Answer(Edit(markup if isinstance(markup, tuple) else None), ack=True)

    async def toggles_done(self, tap: taps.TogglesDone) -> Answer:
        visit, key = tap.visit_id, tap.key
        toggles = dict(self.data.get("toggles", {}))
        current = await self._current(visit)
        if current is not None and current.reconciled:  # the ticks were for the old script's question
            return self._tapped(current)
        step = current.reply.step if current else None
        ticked = _ticked(toggles, visit, step) if isinstance(step, engine.Ask) else set()
        outcome = await self._tap_answer(visit, key, " ".join(str(i + 1) for i in sorted(ticked)))
        if outcome is not None and not outcome.reply.error and not outcome.reply.notice:
            toggles.pop(_ticks_key(visit, key), None)  # accepted: the ticks are spent
            await self.remember(toggles=toggles)
        return self._tapped(outcome)

    async def change_section(self, tap: taps.ChangeSection) -> Answer:
        try:
            current = await self.flow.resume(tap.visit_id, owner=self.cadre.id)
            if current.reconciled or not isinstance(current.reply.step, engine.Summary):
                return Answer(say(self.script, current), ack=True)
            outcome = await self.flow.change_section(tap.visit_id, tap.section, owner=self.cadre.id)
        except VisitNotFound:
            return Answer(notice("telegram/no_visit.txt", self.locale), ack=True)
        return Answer(say(self.script, outcome), ack=True)

    # --- messages --------------------------------------------------------------------------------------

    async def active(self, given: engine.Input) -> VisitOutcome | None:
        """Answer the chat's visit. None when there is no visit in progress.

        The chat remembers the visit. Only when it remembers nothing at all (a restart with in-memory state)
        does a message continue the cadre's newest draft; once the remembered visit has ended (here or on
        another channel) text is never put into some other household's draft: /resume picks one explicitly."""
        if "visit_id" not in self.data:
            async with self.chat.db.reading() as s:
                drafts = await drafts_of(s, self.cadre.id)
            remembered = drafts[0].id if drafts else None
        else:
            remembered = self.data["visit_id"]
        if not remembered:
            return None
        try:
            outcome = await self.flow.answer(int(remembered), given, dedupe=self.dedupe, owner=self.cadre.id)
        except VisitNotFound:  # finished or cancelled meanwhile, perhaps on another channel
            await self.remember(visit_id=None)
            return None
        return await self.after(outcome)

    async def message(self, given: engine.Input) -> Answer:
        outcome = await self.active(given)
        if outcome is None:
            return Answer(notice("telegram/no_visit.txt", self.locale))
        return Answer(say(self.script, outcome))

    async def text(self, text: str) -> Answer:
        """Text answers the visit in progress; with no visit, it searches the cadre's households."""
        outcome = await self.active(text)
        if outcome is not None:
            return Answer(say(self.script, outcome))
        return await self.search(text.strip())

    async def search(self, query: str) -> Answer:
        await self.remember(query=query)
        text, markup = picker(await self.chat.candidates(self.cadre, query), 0, self.locale)
        return Answer(Say(text, markup))

    async def command(self, name: str, args: str) -> Answer:
        if name == "visit":
            return await self.search(args)
        if name == "resume":
            return await self.resume()
        if name == "cancel":
            return await self.message("取消")
        if name == "todo":
            return Answer(Say(await self.todo()))
        if name == "log":
            return Answer(Say(await self.work_log()))
        return Answer(notice("telegram/help.txt", self.locale))  # a command nobody knows

    async def resume(self) -> Answer:
        remembered = self.data.get("visit_id")
        async with self.chat.db.reading() as s:
            drafts = [d.id for d in await drafts_of(s, self.cadre.id)]
        visit = int(remembered) if remembered in drafts else (drafts[0] if drafts else None)
        if visit is None:
            return Answer(notice("telegram/no_visit.txt", self.locale))
        await self.remember(visit_id=visit)
        return Answer(say(self.script, await self.flow.resume(visit, owner=self.cadre.id)))

    async def todo(self) -> str:
        todo = await self.chat.todo(self.cadre)
        if todo is None:
            return render("telegram/todo_none.txt", self.locale, role=self.cadre.role)
        return render(
            "telegram/todo.txt",
            self.locale,
            period=todo.period,
            done=todo.done,
            total=todo.total,
            rate=todo.rate,
            target=todo.target,
            left=[household_label(h) for h in todo.left[:30]],
            more=max(0, len(todo.left) - 30),
        )

    async def work_log(self) -> str:
        today = datetime.now(self.chat.settings.tz).date()
        first = today.replace(day=1)
        async with self.chat.db.reading() as s:
            entries = await work_log_since(s, self.cadre.id, first)
        return render(
            "telegram/log.txt",
            self.locale,
            today=today.isoformat(),
            month=first.strftime("%Y-%m"),
            todays=[e.text for e in entries if e.day == today],
            month_count=len(entries),
            recent=[f"{e.day:%m-%d} {e.text}" for e in entries if e.day != today][:10],
        )
