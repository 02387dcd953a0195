"""Rate limits on customer traffic shared by every hub process: token buckets kept in Redis (one Lua script per
take) when the hub has ``REDIS_URL``, else in this process.

Two limits use it (``contact_center.realtime.CustomerNamespace``, ``docs/security.md``):

* **messages per visitor**, across all their sockets (tabs, devices, hub processes): the same size as each
  socket's own bucket, ``WEBCHAT_MESSAGE_BURST`` at once refilled at ``WEBCHAT_MESSAGES_PER_SECOND``, keyed by
  the customer (or, before their first message, the visitor id);
* **new conversations per client address**: ``WEBCHAT_NEW_CONVERSATIONS_PER_MINUTE`` (10) first messages that
  open a conversation, per minute, per address (at once: as many), so a script cannot open thousands of chats
  from one address by inventing visitor ids.

Over a limit the caller gets the seconds to wait (``retry_after``); nothing is ever dropped silently. If Redis
fails, the take is allowed (logged): a rate limit must not take the chat down with it.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Mapping, Protocol

log = logging.getLogger("contact_center.rate_limits")

NEW_CONVERSATIONS_PER_MINUTE = 10


def new_conversation_limit(env: Mapping[str, str] | None = None) -> int:
    """``WEBCHAT_NEW_CONVERSATIONS_PER_MINUTE`` (10): new conversations per client address per minute (0: off)."""
    env = os.environ if env is None else env
    raw = (env.get("WEBCHAT_NEW_CONVERSATIONS_PER_MINUTE") or "").strip()
    return int(raw) if raw else NEW_CONVERSATIONS_PER_MINUTE


class RateLimiter(Protocol):
    async def take(self, key: str, burst: float, per_second: float, now: float) -> float:
        """Spend one token of ``key``'s bucket: 0.0 when there was one, else the seconds until there is one."""
        ...


class MemoryRateLimiter:
    """Buckets in this process (one hub). Idle buckets are forgotten once they are full again."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)
        self.max_keys = max_keys

    async def take(self, key: str, burst: float, per_second: float, now: float) -> float:
        tokens, at = self._buckets.get(key, (burst, now))
        tokens = min(burst, tokens + max(0.0, now - at) * per_second)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            wait = 0.0
        else:
            self._buckets[key] = (tokens, now)
            wait = (1.0 - tokens) / per_second
        if len(self._buckets) > self.max_keys:
            self._forget_full(now, burst, per_second)
        return wait

    def _forget_full(self, now: float, burst: float, per_second: float) -> None:
        for k, (tokens, at) in list(self._buckets.items()):
            if tokens + (now - at) * per_second >= burst:
                del self._buckets[k]


_TAKE = """
local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 't', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 't', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate) * 1000) + 1000)
return tostring(wait)
"""


class RedisRateLimiter:
    """Buckets in Redis, shared by every hub process (a hash per key, expiring once it would be full again).

    ``now`` is the caller's clock: the processes' clocks must agree to within a fraction of a second (NTP).
    """

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis, self.prefix = redis, prefix + "ratelimit:"
        self._script = redis.register_script(_TAKE)

    async def take(self, key: str, burst: float, per_second: float, now: float) -> float:
        try:
            raw = await self._script(keys=[self.prefix + key], args=[burst, per_second, now])
        except Exception:  # noqa: BLE001 - Redis down: let the message through rather than refuse every customer
            log.warning("rate limit not checked (the shared state is unreachable)", exc_info=True)
            return 0.0
        return float(raw.decode() if isinstance(raw, bytes) else raw)


def limiter_for(store: Any) -> RateLimiter:
    """Redis's buckets when the hub's shared state is Redis (its client and prefix), else this process's."""
    redis, prefix = getattr(store, "redis", None), getattr(store, "prefix", None)
    if redis is not None and isinstance(prefix, str):
        return RedisRateLimiter(redis, prefix)
    return MemoryRateLimiter()
