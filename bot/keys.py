"""The aiohttp application's shared state keys, in a room of their own so every channel can reach them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from bot.group_commit import GroupCommit
from bot.jobs.supervise import Tasks
from storage.db import Database

DB = web.AppKey("db", Database)
SMS_CLOCK = web.AppKey("sms_clock", Callable[[], datetime])
CLOCK = SMS_CLOCK  # one clock for the SMS flow and the scheduler
SCHEDULER_EVERY = web.AppKey("scheduler_every", float)
INBOUND_WRITER = web.AppKey("inbound_writer", GroupCommit)
TASKS = web.AppKey("tasks", Tasks)  # the background tasks' healths, for /healthz
