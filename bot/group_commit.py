"""Group commit: many requests' writes applied together, each request answered only after its write committed.

A webhook that writes a row per request spends most of its time on the transaction around the row. Here one
writer task takes every item waiting at that moment (up to `max_batch`) and hands them to `apply` as one
batch, one transaction; while it runs, new requests queue for the next batch. At low load a batch is one item
and costs what a direct write costs; under a burst the batches grow and the per-item cost falls.

- `submit` returns once the item's batch has committed, or raises what failed: nothing is acknowledged that
  was not stored.
- A failing batch is applied again item by item, so one bad item fails alone.
- More than `max_pending` waiting items, or the oldest waiting longer than `max_delay` seconds: `submit`
  raises `Overloaded` at once (the webhook answers 503 and the sender retries later), so a flood builds no
  queue that would answer everyone too late; the delay bound follows the capacity of the moment by itself.
- A waiter that gives up (its request timed out) is dropped from the queue if its batch has not begun.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from bot.jobs.supervise import Health

T = TypeVar("T")
log = logging.getLogger("zoufang.group_commit")


class Overloaded(Exception):
    """Too many items wait already: try again later."""


class GroupCommit(Generic[T]):
    def __init__(
        self,
        apply: Callable[[Sequence[T]], Awaitable[None]],
        *,
        name: str,
        max_batch: int = 256,
        max_pending: int = 2000,
        max_delay: float = 1.0,
    ) -> None:
        self.apply, self.name = apply, name
        self.max_batch, self.max_pending, self.max_delay = max_batch, max_pending, max_delay
        self._queue: deque[tuple[T, asyncio.Future[None]]] = deque()
        self._arrived: deque[float] = deque()  # when each waiting item came (loop time)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.health: Health | None = (
            None  # when set (zoufang serve): beats after each batch, idle when none wait
        )
        self.batches = 0  # counters for /healthz and the benchmarks
        self.items = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    def overloaded(self) -> bool:
        """Too many wait, or the oldest has waited too long: new items would be answered too late."""
        if len(self._queue) >= self.max_pending:
            return True
        return bool(self._arrived) and asyncio.get_running_loop().time() - self._arrived[0] > self.max_delay

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)
            self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The writer must never die unheard: what it raised is logged and every waiter gets it (their requests
        answer 503, Twilio retries); the next `submit` starts a new writer."""
        if task.cancelled() or task is not self._task:
            return
        exc = task.exception()
        self._task = None
        if exc is None:
            return
        log.error(
            "%s: the writer stopped (%r); a new one starts with the next item", self.name, exc, exc_info=exc
        )
        if self.health is not None:
            self.health.failed(exc)
        while self._queue:
            _, future = self._queue.popleft()
            self._arrived.popleft()
            _fail(future, exc)

    async def close(self) -> None:
        """Apply what is queued, then stop."""
        if self._task is None:
            return
        while self._queue and not self._task.done():
            await asyncio.sleep(0.01)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None

    async def submit(self, item: T) -> None:
        if self.overloaded():
            raise Overloaded(f"{self.name}: {len(self._queue)} waiting")
        self.start()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        self._queue.append((item, future))
        self._arrived.append(loop.time())
        self._wake.set()
        await future

    async def _run(self) -> None:
        while True:
            while not self._queue:
                if self.health is not None:
                    self.health.idle()
                self._wake.clear()
                await self._wake.wait()
            if self.health is not None:
                self.health.busy()
            batch = self._take()
            if batch:
                await self._commit(batch)

    def _take(self) -> list[tuple[T, asyncio.Future[None]]]:
        batch = []
        while self._queue and len(batch) < self.max_batch:
            item, future = self._queue.popleft()
            self._arrived.popleft()
            if not future.done():  # a waiter that gave up is not applied
                batch.append((item, future))
        return batch

    async def _commit(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        try:
            await self.apply([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                log.warning("%s: a write failed: %r", self.name, exc)
                _fail(batch[0][1], exc)
                return
            log.warning("%s: a batch of %d failed (%r); applying them one by one", self.name, len(batch), exc)
            for one in batch:
                await self._commit([one])
            return
        self.batches += 1
        self.items += len(batch)
        if self.health is not None:
            self.health.beat()
        for _, future in batch:
            if not future.done():
                future.set_result(None)


def _fail(future: asyncio.Future[None], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
