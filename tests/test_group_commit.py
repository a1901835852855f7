"""bot.group_commit: items waiting together are applied together; a failing batch is applied again item by
item, so one bad item fails alone; beyond the limit a new item is refused at once."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from bot.group_commit import GroupCommit, Overloaded


class Store:
    """What `apply` commits: all of a batch, or (raising) none of it."""

    def __init__(self, bad: set[int] | None = None, delay: float = 0.0) -> None:
        self.rows: list[int] = []
        self.batches: list[list[int]] = []
        self.bad, self.delay = bad or set(), delay

    async def apply(self, items: Sequence[int]) -> None:
        await asyncio.sleep(self.delay)
        if self.bad & set(items):
            raise ValueError(f"bad item in {list(items)}")
        self.rows += items
        self.batches.append(list(items))


async def test_items_waiting_together_are_one_batch_and_each_is_answered_after_it():
    store = Store(delay=0.01)
    writer: GroupCommit[int] = GroupCommit(store.apply, name="test")
    await asyncio.gather(*(writer.submit(i) for i in range(50)))
    assert sorted(store.rows) == list(range(50))
    assert len(store.batches) < 10  # the first alone, the rest waited together
    assert (writer.items, writer.batches) == (50, len(store.batches))
    await writer.close()


async def test_a_bad_item_fails_alone_and_the_others_are_stored():
    store = Store(bad={7})
    writer: GroupCommit[int] = GroupCommit(store.apply, name="test")
    results = await asyncio.gather(*(writer.submit(i) for i in range(20)), return_exceptions=True)
    assert [i for i, r in enumerate(results) if isinstance(r, Exception)] == [7]
    assert isinstance(results[7], ValueError)
    assert sorted(store.rows) == [i for i in range(20) if i != 7]
    await writer.close()


async def test_beyond_the_limit_an_item_is_refused_at_once_and_nothing_of_it_is_applied():
    store = Store(delay=0.2)
    writer: GroupCommit[int] = GroupCommit(store.apply, name="test", max_pending=3)
    first = asyncio.create_task(writer.submit(0))  # taken at once into a slow batch
    await asyncio.sleep(0.05)
    waiting = [asyncio.create_task(writer.submit(i)) for i in (1, 2, 3)]
    await asyncio.sleep(0)
    with pytest.raises(Overloaded):
        await writer.submit(4)
    await asyncio.gather(first, *waiting)
    assert sorted(store.rows) == [0, 1, 2, 3]
    await writer.close()


async def test_a_waiter_that_gave_up_before_its_batch_began_is_not_applied():
    store = Store(delay=0.2)
    writer: GroupCommit[int] = GroupCommit(store.apply, name="test")
    first = asyncio.create_task(writer.submit(0))
    await asyncio.sleep(0.05)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await writer.submit(1)
    await first
    await asyncio.sleep(0.3)
    assert store.rows == [0]
    await writer.close()


async def test_once_the_oldest_item_waited_too_long_new_ones_are_refused_until_the_queue_moves():
    store = Store(delay=0.3)
    writer: GroupCommit[int] = GroupCommit(store.apply, name="test", max_delay=0.1)
    first = asyncio.create_task(writer.submit(0))  # a slow batch
    await asyncio.sleep(0.05)
    second = asyncio.create_task(writer.submit(1))  # waits behind it
    await asyncio.sleep(0.15)
    assert writer.overloaded()
    with pytest.raises(Overloaded):
        await writer.submit(2)
    await asyncio.gather(first, second)
    assert not writer.overloaded()
    await writer.submit(3)
    assert sorted(store.rows) == [0, 1, 3]
    await writer.close()
