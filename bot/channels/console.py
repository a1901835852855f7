"""The console channel: `zoufang console --cadre ID`. Works interactively and with piped standard input."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import TextIO

from sqlalchemy.exc import SQLAlchemyError

from bot.flows.picker import HouseholdPicker, label
from bot.flows.visit import VisitFlow, VisitOutcome
from bot.settings import Settings
from messages import render
from storage.db import Database
from storage.models import Cadre
from storage.visits import HouseholdLine, cadre_by_code, drafts_of
from survey.answers import code_key
from survey.script import Script

ReadLine = Callable[[], Awaitable[str | None]]


class ConsoleError(Exception):
    """A reason to stop, printed as one line on standard error."""


def stdin_reader(stream: TextIO = sys.stdin) -> ReadLine:
    """Lines of `stream`, None at its end. A stream with a file descriptor (a terminal, a pipe) is read straight
    from the descriptor by a daemon thread of its own: Ctrl-C then stops the visit at once. Read through
    asyncio.to_thread, asyncio.run waited on exit for the executor's thread, blocked in readline, until Enter."""
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation: an in-memory stream
        fd = None
    if fd is not None:
        return _DescriptorLines(fd, getattr(stream, "encoding", None) or "utf-8").read

    async def read() -> str | None:
        line = await asyncio.to_thread(stream.readline)
        return None if line == "" else line.rstrip("\r\n")

    return read


class _DescriptorLines:
    """The lines of a file descriptor, read ahead by a daemon thread (os.read: it holds none of sys.stdin's
    locks, so the process can exit while it waits) and handed to the event loop one by one."""

    def __init__(self, fd: int, encoding: str) -> None:
        self._fd, self._encoding = fd, encoding
        self._lines: asyncio.Queue[str | None] | None = None
        self._ended = False

    async def read(self) -> str | None:
        if self._ended:
            return None
        if self._lines is None:
            self._lines = asyncio.Queue()
            args = (asyncio.get_running_loop(), self._lines)
            threading.Thread(target=self._pump, args=args, name="zoufang-stdin", daemon=True).start()
        line = await self._lines.get()
        self._ended = line is None
        return line

    def _pump(self, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str | None]) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._fd, 65536)
            except OSError:
                chunk = b""
            *done, pending = (pending + chunk).split(b"\n")
            found: list[str | None] = [raw.rstrip(b"\r").decode(self._encoding, "replace") for raw in done]
            if not chunk:
                found += [pending.decode(self._encoding, "replace")] if pending else []
                found.append(None)
            try:
                for line in found:
                    loop.call_soon_threadsafe(lines.put_nowait, line)
            except RuntimeError:  # the loop is closed: nobody reads any more
                return
            if not chunk:
                return


class Console:
    def __init__(self, db: Database, script: Script, settings: Settings, read: ReadLine, out: TextIO) -> None:
        self.db, self.script, self.settings = db, script, settings
        self.read, self.out = read, out
        self.flow = VisitFlow(db, script, settings)
        self.locale = settings.locale

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def run(self, cadre_code: str, household_code: str | None = None) -> None:
        async with self.db.reading() as s:
            cadre = await cadre_by_code(s, cadre_code)
            if cadre is None:
                raise ConsoleError(render("console/no_cadre.txt", self.locale, code=cadre_code))
            self.locale = cadre.locale or self.locale
            drafts = [d.household_id for d in await drafts_of(s, cadre.id)]
        candidates = await HouseholdPicker(self.db, self.settings).candidates(cadre)
        household = await self._choose(cadre, candidates, household_code, drafts)
        if household is None:
            return
        outcome = await self.flow.start(cadre, household, channel="console", locale=self.locale)
        await self._walk(outcome)

    async def _choose(
        self, cadre: Cadre, candidates: list[HouseholdLine], household_code: str | None, drafts: list[int]
    ) -> HouseholdLine | None:
        if household_code is not None:
            match = _by_code(candidates, household_code)
            if not match:
                raise ConsoleError(render("console/not_in_scope.txt", self.locale, code=household_code))
            return match[0]
        if not candidates:
            raise ConsoleError(render("console/no_households.txt", self.locale, role=cadre.role))
        resumable = [c for c in candidates if c.id in drafts]
        if resumable:
            # drafts come newest first; resume the newest one still in the cadre's scope
            draft = min(resumable, key=lambda h: drafts.index(h.id))
            self.say(render("console/resuming.txt", self.locale, household=label(draft)))
            return draft
        return await self._pick(candidates)

    async def _pick(self, candidates: list[HouseholdLine]) -> HouseholdLine | None:
        self.say(
            render(
                "console/picker.txt",
                self.locale,
                candidates=[{"label": label(c), "visited": c.visited, "draft": c.draft} for c in candidates],
            )
        )
        while True:
            line = await self.read()
            if line is None:
                return None
            chosen = _match(candidates, line.strip())
            if chosen is not None:
                return chosen
            self.say(render("console/pick_again.txt", self.locale, count=len(candidates)))

    async def _walk(self, outcome: VisitOutcome) -> None:
        self.say(outcome.text)
        while not outcome.finished:
            line = await self.read()
            if line is None:
                self.say(render("console/paused.txt", self.locale))
                return
            try:
                outcome = await self.flow.answer(outcome.visit_id, line)
            except SQLAlchemyError as exc:
                # nothing was saved: say so, and ask the same question again from what is stored
                self.say(render("visit/save_failed.txt", self.locale))
                try:
                    outcome = await self.flow.resume(outcome.visit_id)
                except SQLAlchemyError:
                    raise ConsoleError(render("console/db_down.txt", self.locale, reason=exc.orig)) from exc
            self.say(outcome.text)


def _by_code(candidates: list[HouseholdLine], code: str) -> list[HouseholdLine]:
    """The household of 户编号 `code`: as stored, else as typed loosely (gb002, full-width, spaces: code_key)."""
    exact = [c for c in candidates if c.code == code]
    return exact or [c for c in candidates if code_key(c.code) == code_key(code)]


def _match(candidates: list[HouseholdLine], text: str) -> HouseholdLine | None:
    """A household by its number in the list, its 户编号, or its head's name (when only one matches)."""
    if not text:
        return None
    if text.isdecimal() and 1 <= int(text) <= len(candidates):
        return candidates[int(text) - 1]
    by_code = _by_code(candidates, text)
    if by_code:
        return by_code[0]
    named = [c for c in candidates if text in c.head_name]
    return named[0] if len(named) == 1 else None
