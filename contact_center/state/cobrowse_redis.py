"""The Redis adapter of the ``CobrowseStore`` port (``contact_center/state/cobrowse_store.py`` has the layout)."""

from __future__ import annotations

import json
from typing import Any

from contact_center.domain.cobrowse import CODE_FAILURE_WINDOW, CODE_LOCKOUT_SECONDS, CODE_MAX_FAILURES
from contact_center.state.cobrowse_store import _dumps, _ttl
from contact_center.state.redis_store import DEFAULT_PREFIX, _glob_escape, _port_errors

_SWAP = r"""
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3])) end
return 1
"""

_TAKE = r"""
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
"""

# KEYS: fail:<k>, lock:<k> pairs; ARGV: max failures, window, lockout, until (text)
_FAILED = r"""
local max, window, lockout = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
for i = 1, #KEYS, 2 do
  local n = redis.call('INCR', KEYS[i])
  if n == 1 then redis.call('EXPIRE', KEYS[i], window) end
  if n >= max then
    redis.call('DEL', KEYS[i])
    redis.call('SET', KEYS[i + 1], ARGV[4], 'EX', lockout)
  end
end
return 1
"""

_DROP_LINK = r"""
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
"""

_REC_REMOVE = r"""
redis.call('SREM', KEYS[1], ARGV[1])
return redis.call('SCARD', KEYS[1])
"""


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)


@_port_errors
class RedisCobrowseStore:
    """:class:`CobrowseStore` in Redis, for several hub processes (keys under ``<prefix>cb:``; see the module)."""

    def __init__(self, redis: Any, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis, self.prefix = redis, prefix
        self._p = prefix + "cb:"
        self._swap = redis.register_script(_SWAP)
        self._take = redis.register_script(_TAKE)
        self._failed = redis.register_script(_FAILED)
        self._drop_link = redis.register_script(_DROP_LINK)
        self._rec_remove = redis.register_script(_REC_REMOVE)

    def _conv(self, cid: int) -> str:
        return f"{self._p}conv:{int(cid)}"

    async def create_session(self, conversation_id: int, record: dict[str, Any], ttl: float) -> tuple[bool, dict[str, Any]]:
        text = _dumps(record)
        for _ in range(5):
            if await self.redis.set(self._conv(conversation_id), text, nx=True, ex=_ttl(ttl)):
                return True, json.loads(text)
            current = await self.redis.get(self._conv(conversation_id))
            if current is not None:
                return False, json.loads(_text(current))
        raise RuntimeError("co-browsing session kept appearing and vanishing")

    async def get_session(self, conversation_id: int) -> dict[str, Any] | None:
        raw = await self.redis.get(self._conv(conversation_id))
        return None if raw is None else json.loads(_text(raw))

    async def swap_session(self, conversation_id: int, old: dict[str, Any], new: dict[str, Any] | None, ttl: float) -> bool:
        res = await self._swap(keys=[self._conv(conversation_id)],
                               args=[_dumps(old), "" if new is None else _dumps(new), _ttl(ttl)])
        return bool(int(res))

    async def put_code(self, code_key: str, record: dict[str, Any], ttl: float) -> bool:
        return bool(await self.redis.set(f"{self._p}code:{code_key}", _dumps(record), nx=True, ex=_ttl(ttl)))

    async def take_code(self, code_key: str) -> dict[str, Any] | None:
        raw = await self._take(keys=[f"{self._p}code:{code_key}"])
        return None if raw is None else json.loads(_text(raw))

    async def drop_code(self, code_key: str) -> None:
        await self.redis.delete(f"{self._p}code:{code_key}")

    async def code_wait(self, keys: tuple[str, ...], now: float) -> float:
        raws = await self.redis.mget([f"{self._p}lock:{k}" for k in keys])
        return max([0.0, *(float(_text(r)) - now for r in raws if r is not None)])

    async def code_failed(self, keys: tuple[str, ...], now: float) -> None:
        redis_keys: list[str] = []
        for k in keys:
            redis_keys += [f"{self._p}fail:{k}", f"{self._p}lock:{k}"]
        await self._failed(keys=redis_keys, args=[CODE_MAX_FAILURES, _ttl(CODE_FAILURE_WINDOW), _ttl(CODE_LOCKOUT_SECONDS),
                                                  repr(float(now + CODE_LOCKOUT_SECONDS))])

    async def code_forget(self, key: str) -> None:
        await self.redis.delete(f"{self._p}fail:{key}", f"{self._p}lock:{key}")

    async def set_link(self, visitor: str, conversation_id: int, ttl: float) -> None:
        await self.redis.set(f"{self._p}link:{visitor}", str(int(conversation_id)), ex=_ttl(ttl))

    async def get_link(self, visitor: str) -> int | None:
        raw = await self.redis.get(f"{self._p}link:{visitor}")
        return None if raw is None else int(_text(raw))

    async def drop_link(self, visitor: str, conversation_id: int) -> None:
        await self._drop_link(keys=[f"{self._p}link:{visitor}"], args=[str(int(conversation_id))])

    async def recording_add(self, session_id: str, sid: str, ttl: float) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(f"{self._p}rec:{session_id}", sid)
            pipe.expire(f"{self._p}rec:{session_id}", _ttl(ttl))
            await pipe.execute()

    async def recording_remove(self, session_id: str, sid: str) -> int:
        return int(await self._rec_remove(keys=[f"{self._p}rec:{session_id}"], args=[sid]))

    async def recording_count(self, session_id: str) -> int:
        return int(await self.redis.scard(f"{self._p}rec:{session_id}"))

    async def recording_clear(self, session_id: str) -> None:
        await self.redis.delete(f"{self._p}rec:{session_id}")

    async def put_record(self, kind: str, key: str, record: dict[str, Any], ttl: float) -> None:
        await self.redis.set(f"{self._p}{kind}:{key}", _dumps(record), ex=_ttl(ttl))

    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = await self.redis.get(f"{self._p}{kind}:{key}")
        return None if raw is None else json.loads(_text(raw))

    async def first_event(self, push_id: str, event: str, ttl: float) -> bool:
        return bool(await self.redis.set(f"{self._p}seen:{push_id}:{event}", "1", nx=True, ex=_ttl(ttl)))

    async def clear(self) -> None:
        keys = [k async for k in self.redis.scan_iter(match=_glob_escape(self._p) + "*", count=500)]
        if keys:
            await self.redis.delete(*keys)
