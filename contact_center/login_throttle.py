"""The login throttle: failed logins counted per account and per client address, growing delays, lockouts.

Each key (``account:<username>``, ``address:<ip>``) has a record: ``n``, the failures in a row (forgotten an hour
after the last one, reset by a success on the account), ``until``, the moment before which no attempt is taken,
and ``locked``, a lockout's end (-1: until an admin lifts it).

* An attempt is counted *before* the password is checked (pessimistically), in one atomic step over both keys:
  a key locked or waiting refuses the attempt (nothing is counted then); otherwise both counts go up. So a burst
  of parallel guesses cannot slip through between a check and a count. A success takes the count back (the
  account's record is dropped; the address's count goes down by one).
* The ``free``-th failure in a row, and each after it, makes the key wait ``min(base * 2^(n - free), max_delay)``
  seconds: 15 s, 30 s, 1 min, 2 min ... 15 min with the defaults (5 failures, then growing delays).
* The ``lock_after``-th failure locks the key for ``lock_seconds`` (0: until lifted). An admin lifts it
  (``POST /auth/lockouts/clear``, or ``contact-center unlock-login`` when the state is in Redis).

Where the records live: in Redis when the hub has ``REDIS_URL`` (every hub process sees the same counts; one Lua
script per step), else in this process (one hub: the counts are lost on a restart, which also lifts the locks).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable, Protocol, Sequence

from aiohttp import web

from contact_center.settings import Settings

FORGET_SECONDS = 3600  # a key's failures are forgotten this long after its last one
BASE_DELAY_SECONDS = 15.0
MAX_DELAY_SECONDS = 900.0


@dataclass(frozen=True)
class Policy:
    """How a kind of key is throttled."""

    free: int  # failures in a row before each attempt waits
    lock_after: int  # failures in a row that lock the key (0: never)
    lock_seconds: int  # how long a lock lasts (0: until an admin lifts it)
    base_delay: float = BASE_DELAY_SECONDS
    max_delay: float = MAX_DELAY_SECONDS
    forget_seconds: int = FORGET_SECONDS

    def delay(self, n: int) -> float:
        """The wait after the ``n``-th failure in a row (0 below ``free``)."""
        if n < self.free:
            return 0.0
        return min(self.base_delay * 2.0 ** min(n - self.free, 60), self.max_delay)

    def args(self) -> list[float]:
        return [self.free, self.lock_after, self.base_delay, self.max_delay, self.lock_seconds, self.forget_seconds]


@dataclass(frozen=True)
class Verdict:
    """The outcome of :meth:`ThrottleStore.attempt`.

    :param status: ``go`` (counted; check the password), ``wait`` (too many failures: retry after ``until``) or
        ``locked`` (until ``until``; None: until an admin lifts it).
    :param key: the key that refused (``wait``/``locked``).
    :param counts: each key's failures in a row, this attempt included (``go``).
    """

    status: str
    key: str | None = None
    until: float | None = None
    counts: tuple[int, ...] = ()


class ThrottleStore(Protocol):
    """Where the throttle's records live."""

    async def attempt(self, keys: Sequence[tuple[str, Policy]], now: float) -> Verdict: ...

    async def succeeded(self, key: str, policy: Policy, *, reset: bool) -> None: ...

    async def clear(self, key: str) -> bool: ...

    async def lockouts(self, now: float) -> list[tuple[str, float | None]]: ...


@dataclass
class _Record:
    n: int = 0
    until: float = 0.0
    locked: float = 0.0  # 0 none, -1 until lifted, else its end
    expires: float = math.inf


@dataclass
class MemoryThrottleStore:
    """The records in this process (one hub)."""

    records: dict[str, _Record] = field(default_factory=dict)
    prune_above: int = 10_000  # past this many records, forgotten ones are dropped (guessed usernames pile up)

    def _prune(self, now: float) -> None:
        if len(self.records) > self.prune_above:
            for key in [k for k, rec in self.records.items() if rec.expires <= now]:
                del self.records[key]

    def _get(self, key: str, now: float) -> _Record:
        rec = self.records.get(key)
        if rec is None or rec.expires <= now:
            rec = self.records[key] = _Record()
        return rec

    async def attempt(self, keys: Sequence[tuple[str, Policy]], now: float) -> Verdict:
        self._prune(now)
        recs = []
        for key, _policy in keys:
            rec = self._get(key, now)
            if rec.locked:
                if rec.locked < 0 or rec.locked > now:
                    return Verdict("locked", key, None if rec.locked < 0 else rec.locked)
                rec.n, rec.until, rec.locked = 0, 0.0, 0.0  # an expired lockout starts afresh
            if rec.until > now:
                return Verdict("wait", key, rec.until)
            recs.append(rec)
        for rec, (_key, policy) in zip(recs, keys):
            rec.n += 1
            rec.until = 0.0
            if policy.lock_after and rec.n >= policy.lock_after:
                rec.locked = now + policy.lock_seconds if policy.lock_seconds else -1.0
            elif rec.n >= policy.free:
                rec.until = now + policy.delay(rec.n)
            rec.expires = math.inf if rec.locked < 0 else max(now + policy.forget_seconds, rec.until, rec.locked)
        return Verdict("go", counts=tuple(rec.n for rec in recs))

    async def succeeded(self, key: str, policy: Policy, *, reset: bool) -> None:
        rec = self.records.get(key)
        if rec is None:
            return
        if reset:
            del self.records[key]
            return
        if not rec.locked:
            rec.n = max(rec.n - 1, 0)
            if rec.n < policy.free:
                rec.until = 0.0

    async def clear(self, key: str) -> bool:
        return self.records.pop(key, None) is not None

    async def lockouts(self, now: float) -> list[tuple[str, float | None]]:
        return sorted(
            (key, None if rec.locked < 0 else rec.locked)
            for key, rec in self.records.items()
            if rec.locked < 0 or rec.locked > now
        )


# KEYS: the records, then the set of locked keys. ARGV: now, then 6 numbers a record (Policy.args).
_ATTEMPT = r"""
local now = tonumber(ARGV[1])
local nrec = #KEYS - 1
local LOCKED = KEYS[#KEYS]
local recs = {}
for i = 1, nrec do
  local r = redis.call('HMGET', KEYS[i], 'n', 'until', 'locked')
  local n, untl, locked = tonumber(r[1]) or 0, tonumber(r[2]) or 0, tonumber(r[3]) or 0
  if locked ~= 0 then
    if locked < 0 or locked > now then return {'locked', i, tostring(locked)} end
    n, untl, locked = 0, 0, 0
    redis.call('ZREM', LOCKED, KEYS[i])
  end
  if untl > now then return {'wait', i, tostring(untl)} end
  recs[i] = n
end
local counts = {}
for i = 1, nrec do
  local o = 1 + (i - 1) * 6
  local free, lock_after, base = tonumber(ARGV[o + 1]), tonumber(ARGV[o + 2]), tonumber(ARGV[o + 3])
  local maxd, lock_s, forget = tonumber(ARGV[o + 4]), tonumber(ARGV[o + 5]), tonumber(ARGV[o + 6])
  local n = recs[i] + 1
  local untl, locked = 0, 0
  if lock_after > 0 and n >= lock_after then
    if lock_s > 0 then locked = now + lock_s else locked = -1 end
    redis.call('ZADD', LOCKED, locked < 0 and '+inf' or tostring(locked), KEYS[i])
  elseif n >= free then
    untl = now + math.min(base * 2 ^ math.min(n - free, 60), maxd)
  end
  redis.call('HSET', KEYS[i], 'n', n, 'until', tostring(untl), 'locked', tostring(locked))
  if locked < 0 then
    redis.call('PERSIST', KEYS[i])
  else
    redis.call('EXPIRE', KEYS[i], math.ceil(math.max(forget, untl - now, locked - now)))
  end
  counts[i] = n
end
return {'go', 0, '', unpack(counts)}
"""

# KEYS[1] the record. ARGV: free. The address's count goes down by one (the attempt was a success).
_SUCCEEDED = r"""
local r = redis.call('HMGET', KEYS[1], 'n', 'locked')
if not r[1] or (tonumber(r[2]) or 0) ~= 0 then return 0 end
local n = math.max(tonumber(r[1]) - 1, 0)
redis.call('HSET', KEYS[1], 'n', n)
if n < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'until', '0') end
return n
"""


class RedisThrottleStore:
    """The records in Redis, under the hub's prefix (``<prefix>login:<key>``), shared by every hub process."""

    def __init__(self, redis: Any, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix + "login:"
        self._attempt = redis.register_script(_ATTEMPT)
        self._succeeded = redis.register_script(_SUCCEEDED)

    @property
    def _locked_set(self) -> str:
        return self.prefix + "locked"

    def _key(self, key: str) -> str:
        return self.prefix + "k:" + key

    async def attempt(self, keys: Sequence[tuple[str, Policy]], now: float) -> Verdict:
        args: list[float] = [now]
        for _key, policy in keys:
            args += policy.args()
        out = await self._attempt(keys=[self._key(k) for k, _ in keys] + [self._locked_set], args=args)
        status = out[0].decode() if isinstance(out[0], bytes) else str(out[0])
        if status == "go":
            return Verdict("go", counts=tuple(int(c) for c in out[3:]))
        which = keys[int(out[1]) - 1][0]
        until = float(out[2].decode() if isinstance(out[2], bytes) else out[2])
        return Verdict(status, which, None if until < 0 else until)

    async def succeeded(self, key: str, policy: Policy, *, reset: bool) -> None:
        if reset:
            await self.clear(key)
        else:
            await self._succeeded(keys=[self._key(key)], args=[policy.free])

    async def clear(self, key: str) -> bool:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key(key))
            pipe.zrem(self._locked_set, self._key(key))
            deleted, _ = await pipe.execute()
        return bool(deleted)

    async def lockouts(self, now: float) -> list[tuple[str, float | None]]:
        await self.redis.zremrangebyscore(self._locked_set, "-inf", now)
        out = []
        for member, score in await self.redis.zrange(self._locked_set, 0, -1, withscores=True):
            name = member.decode() if isinstance(member, bytes) else str(member)
            out.append((name.removeprefix(self.prefix + "k:"), None if math.isinf(score) else float(score)))
        return sorted(out, key=lambda kv: kv[0])


def account_key(username: str) -> str:
    """The throttle's key of an account: the login name as the login reads it (trimmed, lower case, 80 chars)."""
    return "account:" + username.strip().lower()[:80]


def address_key(address: str) -> str:
    """The throttle's key of a client address."""
    return "address:" + address.strip()[:64]


class LoginThrottle:
    """Counts failed logins per account and per address (see the module's docstring)."""

    def __init__(self, store: ThrottleStore, account: Policy, address: Policy, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.account = account
        self.address = address
        self.clock = clock

    @classmethod
    def from_settings(cls, settings: Settings, store: ThrottleStore, clock: Callable[[], float] = time.time) -> "LoginThrottle":
        return cls(
            store,
            Policy(settings.login_max_failures, settings.login_lockout_failures, settings.login_lockout_seconds),
            Policy(settings.login_address_max_failures, settings.login_address_lockout_failures, settings.login_lockout_seconds),
            clock,
        )

    async def attempt(self, username: str, address: str) -> Verdict:
        """Count an attempt for both keys, or refuse it (``wait``/``locked``) without counting anything."""
        return await self.store.attempt([(account_key(username), self.account), (address_key(address), self.address)], self.clock())

    async def succeeded(self, username: str, address: str) -> None:
        """The attempt was right: forget the account's failures, take this attempt off the address's count."""
        await self.store.succeeded(account_key(username), self.account, reset=True)
        await self.store.succeeded(address_key(address), self.address, reset=False)

    async def unlock(self, *, username: str | None = None, address: str | None = None) -> list[str]:
        """Lift the lock (and forget the failures) of an account and/or an address; the keys that had a record."""
        keys = ([account_key(username)] if username else []) + ([address_key(address)] if address else [])
        return [key for key in keys if await self.store.clear(key)]

    async def lockouts(self) -> list[tuple[str, float | None]]:
        """The keys locked now and until when (None: until lifted)."""
        return await self.store.lockouts(self.clock())

    def locks_after(self, verdict: Verdict) -> list[str]:
        """Which keys this (failed) attempt locked: ``account`` and/or ``address``."""
        out = []
        for kind, policy, n in zip(("account", "address"), (self.account, self.address), verdict.counts):
            if policy.lock_after and n == policy.lock_after:
                out.append(kind)
        return out


THROTTLE_KEY = web.AppKey("login_throttle", LoginThrottle)


def throttle_context(settings: Settings, clock: Callable[[], float] = time.time) -> Callable[[web.Application], AsyncIterator[None]]:
    """The app's cleanup context that puts a :class:`LoginThrottle` at ``app[THROTTLE_KEY]``: its records in Redis
    when ``REDIS_URL`` is set (shared by every hub process), else in this process."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        client = None
        store: ThrottleStore
        if settings.redis_url:
            import redis.asyncio as aioredis

            client = aioredis.Redis.from_url(settings.redis_url)
            store = RedisThrottleStore(client, settings.redis_prefix)
        else:
            store = MemoryThrottleStore()
        app[THROTTLE_KEY] = LoginThrottle.from_settings(settings, store, clock)
        yield
        if client is not None:
            await client.aclose()

    return context
