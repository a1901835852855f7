"""Send-rate budgets: a token bucket in Redis that every sender process shares, or one in this process.

A bucket grants `rate` tokens a second and holds at most `capacity` (one second's worth, at least one), so
over any stretch of time the senders together take at most `capacity + rate × seconds` tokens. A new bucket
holds a single token: a cold start does not burst. Both kinds answer `take()` (0 when a token was taken,
else the seconds until one may be) and `acquire(stop)` (wait for a token; False when `stop` was set first).

The Redis bucket is one hash (`zoufang:rate:<name>`: tokens, and the Redis server's time of the last take in
µs) changed by one Lua script, so the refill and the take are atomic and every process reads one clock. While
Redis does not answer, a Redis bucket grants nothing (it cannot know what the others spend) and asks again
every second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from typing import Any, Protocol

log = logging.getLogger("zoufang.ratelimit")

KEY_PREFIX = "zoufang:rate:"
UNREACHABLE_WAIT = 1.0  # seconds between tries while Redis does not answer

# KEYS[1]: the bucket's hash. ARGV: rate (tokens a second), capacity. Returns 0 (taken) or the wait in µs.
TAKE_SCRIPT = """
if redis.replicate_commands then redis.replicate_commands() end -- Redis < 5: TIME, then a write
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then
  tokens = 1
else
  tokens = math.min(capacity, tokens + math.max(0, now - at) * rate / 1000000)
end
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000000 / rate)
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'at', string.format('%.0f', now))
return wait
"""


class RateBucket(Protocol):
    rate: float

    async def take(self) -> float:
        """Take a token: 0.0, or the seconds to wait before one may be there (nothing taken)."""

    async def acquire(self, stop: asyncio.Event | None = None) -> bool: ...

    async def close(self) -> None: ...


def default_capacity(rate: float) -> float:
    """One second's worth of tokens, at least one."""
    return max(1.0, rate)


class _Acquiring:
    async def take(self) -> float:
        raise NotImplementedError

    async def acquire(self, stop: asyncio.Event | None = None) -> bool:
        """Take a token, sleeping the wait `take` names and trying again; False if `stop` is set first."""
        while True:
            if stop is not None and stop.is_set():
                return False
            wait = await self.take()
            if wait <= 0:
                return True
            if stop is None:
                await asyncio.sleep(wait)
            else:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)


class LocalBucket(_Acquiring):
    """The same bucket in this process only (no Redis configured); `rate` ≤ 0 grants every token at once."""

    def __init__(self, rate: float, capacity: float | None = None, clock: Any = time.monotonic) -> None:
        self.rate = rate
        self.capacity = capacity if capacity is not None else default_capacity(rate)
        self.clock = clock
        self.tokens = 1.0
        self.at = clock()

    async def take(self) -> float:
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate

    async def close(self) -> None:
        return None


class RedisBucket(_Acquiring):
    """A bucket every process with the same Redis and name shares (`zoufang:rate:<name>`)."""

    def __init__(self, redis_url: str, name: str, rate: float, capacity: float | None = None) -> None:
        from redis import exceptions
        from redis.asyncio import Redis

        self.outage = (exceptions.ConnectionError, exceptions.TimeoutError)
        self.rate = rate
        self.capacity = capacity if capacity is not None else default_capacity(rate)
        self.key = KEY_PREFIX + name
        self.redis = Redis.from_url(redis_url)
        self.script = self.redis.register_script(TAKE_SCRIPT)
        self.unreachable = False

    async def take(self) -> float:
        if self.rate <= 0:
            return 0.0
        try:
            wait_us = await self.script(keys=[self.key], args=[repr(self.rate), repr(self.capacity)])
        except self.outage as exc:  # no budget to share: send nothing until it is back
            if not self.unreachable:
                log.warning("Redis unreachable (%s): sending paused until it answers", exc)
            self.unreachable = True
            return UNREACHABLE_WAIT
        if self.unreachable:
            log.warning("Redis answers again: sending resumed")
            self.unreachable = False
        return int(wait_us) / 1_000_000

    async def close(self) -> None:
        await self.redis.aclose()


def make_bucket(redis_url: str, name: str, rate: float) -> RateBucket:
    """Shared through Redis when a URL is configured, else this process's own."""
    if redis_url and rate > 0 and math.isfinite(rate):
        return RedisBucket(redis_url, name, rate)
    return LocalBucket(rate)
