"""A per-key token bucket for asyncio: how fast each Twilio sender may send.

A US or Canadian long code sends about 1 message a second, toll-free numbers and short codes more
(``TWILIO_SEND_RATE``). Twilio queues what is sent faster and fails messages when that queue
overflows (error 30001); spacing the sends here keeps each sender within its rate.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable


@dataclass
class _Bucket:
    tokens: float
    updated: float
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class SendRateLimiter:
    """``await limiter.acquire(key)`` returns when ``key`` may send one more message.

    :param rate: tokens added a second (messages a second per key).
    :param burst: how many may go at once after a quiet spell (1: evenly spaced).
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be above 0 and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._sleep = sleep
        self._buckets: dict[str, _Bucket] = {}

    def _bucket(self, key: str) -> _Bucket:
        if key not in self._buckets:
            self._buckets[key] = _Bucket(tokens=self.burst, updated=self._clock())
        return self._buckets[key]

    def _refill(self, bucket: _Bucket) -> None:
        now = self._clock()
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now

    async def acquire(self, key: str) -> None:
        """Wait for a token of ``key`` and take it (callers of one key are served in turn)."""
        bucket = self._bucket(key)
        async with bucket.lock:
            self._refill(bucket)
            while bucket.tokens < 1:
                await self._sleep((1 - bucket.tokens) / self.rate)
                self._refill(bucket)
            bucket.tokens -= 1
