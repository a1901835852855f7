"""Background tasks that never die silently: each long-running task of `zoufang serve` (the outbox senders, the
scheduler and its poll tick, housekeeping, the inbound SMS writer) and of `zoufang worker` runs under `supervise`
and reports to a `Health`.

- A task that raises is logged with its name and the restart count, and started again after a backoff (1 s,
  2 s, … up to a minute; back to 1 s once it has worked again). A task that returns before it was stopped is a
  fault too.
- A task calls `beat()` after each round that did its work (a send recorded, a tick whose jobs all ran) and
  `failed(exc)` when a round did not; `resting(s)` before a deliberate wait (an idle poll, a pause while the
  provider is down), so waiting is not mistaken for being stuck.
- A task is *stuck* when neither a beat nor a rest has covered the last `stale_after` seconds; `/healthz` lists
  every task with its last success and answers 503 while one is stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from storage.models import utcnow
from survey.phones import mask_phones_in

log = logging.getLogger("zoufang.tasks")

FIRST_BACKOFF = 1.0
MAX_BACKOFF = 60.0


class Health:
    """One task's last success and last fault, on a monotonic clock (`clock`) with wall times for people."""

    def __init__(
        self,
        name: str,
        stale_after: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], datetime] = utcnow,
    ) -> None:
        self.name, self.stale_after = name, stale_after
        self._clock, self._wall = clock, wall
        self._since = clock()  # a task that never succeeded is judged from its start
        self._rest_until = 0.0
        self._idle = False
        self.last_success: datetime | None = None
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.failures = 0  # since the last success
        self.restarts = 0

    def beat(self) -> None:
        self._since, self.last_success, self.failures = self._clock(), self._wall(), 0

    def failed(self, exc: BaseException | str) -> None:
        text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
        self.last_error, self.last_error_at = mask_phones_in(text)[:300], self._wall()
        self.failures += 1

    def resting(self, seconds: float) -> None:
        """A deliberate wait of `seconds` begins: it does not count towards being stuck."""
        self._rest_until = max(self._rest_until, self._clock() + seconds)

    def idle(self) -> None:
        """Nothing to do until work arrives (the inbound writer with no replies waiting): not stuck."""
        self._idle = True

    def busy(self) -> None:
        """Work has arrived: `stale_after` counts from now."""
        if self._idle:
            self._idle, self._rest_until = False, max(self._rest_until, self._clock())

    def stuck(self) -> bool:
        if self._idle:
            return False
        return self._clock() - max(self._since, self._rest_until) > self.stale_after

    def state(self) -> dict[str, Any]:
        return {
            "ok": not self.stuck(),
            "last_success": self.last_success.isoformat() if self.last_success else None,
            "stale_after_s": round(self.stale_after, 1),
            "failures": self.failures,
            "restarts": self.restarts,
            "last_error": self.last_error,
            "last_error_at": self.last_error_at.isoformat() if self.last_error_at else None,
        }


class Tasks:
    """The healths of one process's background tasks, by name (what /healthz shows)."""

    def __init__(self) -> None:
        self._by_name: dict[str, Health] = {}

    def add(self, name: str, stale_after: float) -> Health:
        health = self._by_name[name] = Health(name, stale_after)
        return health

    def stuck(self) -> list[str]:
        return [name for name, health in self._by_name.items() if health.stuck()]

    def state(self) -> dict[str, dict[str, Any]]:
        return {name: health.state() for name, health in self._by_name.items()}


async def supervise(
    health: Health,
    run: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    first_backoff: float = FIRST_BACKOFF,
    max_backoff: float = MAX_BACKOFF,
) -> None:
    """`run()` until `stop` is set; whatever it raises is logged and `run()` starts again after a backoff."""
    backoff = first_backoff
    while not stop.is_set():
        worked_before = health.last_success
        try:
            await run()
            if stop.is_set():
                return
            raise RuntimeError("the task returned before it was stopped")
        except Exception as exc:
            health.failed(exc)
            if health.last_success != worked_before:  # it had worked since the last restart: start gently
                backoff = first_backoff
            log.exception(
                "background task %s stopped (restart %d in %g s)", health.name, health.restarts + 1, backoff
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=backoff)
        health.restarts += 1
        backoff = min(backoff * 2, max_backoff)
