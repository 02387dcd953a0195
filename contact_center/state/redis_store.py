"""The Redis state store: several hub processes share routing state; each atomic step is one Lua script.

Layout (``P`` is the prefix, ``cc:{hub}:`` by default; every key carries the ``{hub}`` hash tag, so
all of them live in one Redis Cluster slot and one script may touch any of them):

==========================  ===========  ===================================================
key                         type         content
==========================  ===========  ===================================================
``P presence``              hash         agent id -> presence record (JSON)
``P entry``                 hash         conversation id -> queue entry record (JSON), while
                                         the conversation is waiting, offered or assigned
``P waiting:<queue>``       sorted set   waiting conversation ids, score = -priority*1e10 +
                                         enqueued_at
``P qlen``                  hash         queue -> number of waiting conversations (> 0)
``P waiting_gen``           hash         waiting conversation id -> generation of its push;
                                         ``#`` -> the last generation given, ``epoch`` -> an
                                         id of this key's life, ``trim`` -> see waiting_log
``P waiting_log``           sorted set   conversation id -> generation of its last push into or
                                         pop out of a waiting set (a change log: a reader asks
                                         only what changed since its last read); trimmed below
                                         ``trim``
``P offer``                 hash         conversation id -> offer record (JSON)
``P offer_expiry``          sorted set   offered conversation ids, score = expires_at
``P assign``                hash         conversation id -> agent id
``P agent_offers:<agent>``  set          conversation ids offered to the agent
``P agent_assign:<agent>``  set          conversation ids assigned to the agent
``P customer_seen:<id>``    string       when the customer was last seen connected (a widget on
                                         some hub process); expires a day later
==========================  ===========  ===================================================

Every script declares every key it touches in ``KEYS``. A script that works on one conversation
needs that conversation's queue key and its agent's keys, which only the stored records tell, so
the Python side first reads them (one MULTI), then runs the script with those keys; the script checks
that the records still say the same thing before it writes anything and, if not (the conversation
was closed and queued elsewhere in between), returns ``__retry__`` and the call starts again.
"""

from __future__ import annotations

import bisect
import functools
import inspect
import json
import uuid
from typing import Any, Collection, Iterable, Mapping, Sequence

import redis.asyncio as aioredis
from redis import exceptions as redis_errors

from contact_center.ports import AgentPresence, Offer, QueueEntry, StateUnavailable
from contact_center.state.base import (
    CUSTOMER_SEEN_TTL,
    dumps,
    entry_from_json,
    entry_record,
    fnum,
    normalize_entry,
    normalize_presence,
    offer_from_json,
    presence_from_json,
    presence_record,
    sort_offers_by_conversation,
    sort_offers_by_expiry,
    sort_waiting,
    waiting_order,
)

DEFAULT_PREFIX = "cc:{hub}:"
RETRY = "__retry__"
_ATTEMPTS = 50

# Shared head of every writing script. Key and argument layout:
#   KEYS[1..8]   presence, entry, offer, offer_expiry, assign, qlen, waiting_gen, waiting_log
#   KEYS[8+i]    waiting:<ARGV[1+i]>, i = 1..N where N = ARGV[1]
#   KEYS[9+N]    agent_offers:<AGENT>, KEYS[10+N] agent_assign:<AGENT>   (only when AGENT ~= "")
#   ARGV[2+N]    AGENT ("" when the operation has no agent)
#   ARGV[3+N]..  the operation's own arguments, as A[1], A[2], ...
_PRELUDE = r"""
local PRESENCE, ENTRY, OFFER, EXPIRY, ASSIGN, QLEN, WGEN, WLOG = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local N = tonumber(ARGV[1])
local WAIT = {}
for i = 1, N do WAIT[ARGV[1 + i]] = KEYS[8 + i] end
local AGENT = ARGV[2 + N]
local AOFFERS, AASSIGN = KEYS[9 + N], KEYS[10 + N]
local A = {}
for i = 3 + N, #ARGV do A[#A + 1] = ARGV[i] end
local RETRY = '__retry__'

-- An entry's record only changes as it (re-)enters a waiting set (enqueue, a decline or expiry, an agent
-- gone), so each push gets a new generation (WGEN: conversation -> generation, '#' -> the last one given):
-- a reader that decoded a record at that generation need not read it again (RedisStateStore.waiting).
-- Every push and pop is also logged (WLOG: conversation -> the generation of its last change), so a
-- reader asks only for what changed since the generation it last read; the log keeps its last
-- LOG_KEEP generations (older ones are trimmed, and WGEN's 'trim' says where: a reader further behind
-- reads everything again).
local LOG_KEEP = 65536
local function logged(conv)
  local g = redis.call('HINCRBY', WGEN, '#', 1)
  redis.call('ZADD', WLOG, g, conv)
  if g % 1024 == 0 and g > LOG_KEEP then
    redis.call('ZREMRANGEBYSCORE', WLOG, '-inf', g - LOG_KEEP)
    redis.call('HSET', WGEN, 'trim', g - LOG_KEEP)
  end
  return g
end

local function queue_push(conv, e)
  redis.call('ZADD', WAIT[e.queue], e.score, conv)
  redis.call('HINCRBY', QLEN, e.queue, 1)
  redis.call('HSET', WGEN, conv, logged(conv))
end

local function queue_pop(conv, queue)
  if redis.call('ZREM', WAIT[queue], conv) == 1 then
    if redis.call('HINCRBY', QLEN, queue, -1) <= 0 then redis.call('HDEL', QLEN, queue) end
    redis.call('HDEL', WGEN, conv)
    logged(conv)
  end
end

local function get_presence(agent)
  local raw = redis.call('HGET', PRESENCE, agent)
  if raw then return cjson.decode(raw) end
  return nil
end

local function put_presence(agent, p)
  redis.call('HSET', PRESENCE, agent, cjson.encode(p))
end

-- base.is_free
local function is_free(load)
  for _, n in pairs(load) do
    if tonumber(n) > 0 then return false end
  end
  return true
end

-- base.reserve
local function reserve(agent, p, channel)
  p.load[channel] = (tonumber(p.load[channel]) or 0) + 1
  put_presence(agent, p)
end

-- base.unreserve (now = false for an offer: idle_since stays)
local function unreserve(agent, channel, now)
  local p = get_presence(agent)
  if not p then return end
  local left = (tonumber(p.load[channel]) or 0) - 1
  if left > 0 then p.load[channel] = left else p.load[channel] = nil end
  if now and is_free(p.load) then p.idle_since = now end
  put_presence(agent, p)
end

-- base.declined, then back into the waiting set with the original score
local function requeue_declined(conv, agent, e, now)
  e.declined_at = now
  local seen = false
  for _, a in ipairs(e.declined_by) do
    if tostring(a) == agent then seen = true end
  end
  if not seen then table.insert(e.declined_by, agent) end
  local raw = cjson.encode(e)
  redis.call('HSET', ENTRY, conv, raw)
  queue_push(conv, e)
  return raw
end

local function drop_offer(conv)
  redis.call('HDEL', OFFER, conv)
  redis.call('ZREM', EXPIRY, conv)
  redis.call('SREM', AOFFERS, conv)
end

local function offer_agent(raw)
  return tostring(cjson.decode(raw).agent_id)
end
"""

_SCRIPTS: dict[str, str] = {
    # A = conversation id, entry JSON -> 1 queued, 0 already known
    "enqueue": r"""
local conv = A[1]
if redis.call('HEXISTS', ENTRY, conv) == 1 then return 0 end
local e = cjson.decode(A[2])
if not WAIT[e.queue] then return redis.error_reply('queue key not declared') end
redis.call('HSET', ENTRY, conv, A[2])
queue_push(conv, e)
return 1
""",
    # A = conversation id, entry JSON -> 1 restored as assigned to AGENT, 0 already known
    "restore_assignment": r"""
local conv = A[1]
if redis.call('HEXISTS', ENTRY, conv) == 1 then return 0 end
local e = cjson.decode(A[2])
redis.call('HSET', ENTRY, conv, A[2])
redis.call('HSET', ASSIGN, conv, AGENT)
redis.call('SADD', AASSIGN, conv)
local p = get_presence(AGENT)
if p then reserve(AGENT, p, e.channel) end
return 1
""",
    # A = conversation id -> entry JSON | nil
    "remove_from_queue": r"""
local conv = A[1]
local raw = redis.call('HGET', ENTRY, conv)
if not raw then return false end
if redis.call('HEXISTS', OFFER, conv) == 1 or redis.call('HEXISTS', ASSIGN, conv) == 1 then return false end
local e = cjson.decode(raw)
if not WAIT[e.queue] then return RETRY end
queue_pop(conv, e.queue)
redis.call('HDEL', ENTRY, conv)
return raw
""",
    # A = conversation id, expires_at, check_capacity ('1'/'0') -> offer JSON | nil
    "offer": r"""
local conv = A[1]
local raw = redis.call('HGET', ENTRY, conv)
if not raw then return false end
if redis.call('HEXISTS', OFFER, conv) == 1 or redis.call('HEXISTS', ASSIGN, conv) == 1 then return false end
local e = cjson.decode(raw)
if not WAIT[e.queue] then return RETRY end
local p = get_presence(AGENT)
if A[3] == '1' then
  -- base.has_room
  if not p then return false end
  if (tonumber(p.load[e.channel]) or 0) >= (tonumber(p.capacity[e.channel]) or 0) then return false end
end
queue_pop(conv, e.queue)
local o = cjson.encode({conversation_id = conv, agent_id = AGENT, expires_at = A[2], queue = e.queue, channel = e.channel})
redis.call('HSET', OFFER, conv, o)
redis.call('ZADD', EXPIRY, A[2], conv)
redis.call('SADD', AOFFERS, conv)
if p then reserve(AGENT, p, e.channel) end
return o
""",
    # A = conversation id -> 1 assigned, 0 no such offer for this agent
    "accept": r"""
local conv = A[1]
local raw = redis.call('HGET', OFFER, conv)
if not raw or offer_agent(raw) ~= AGENT then return 0 end
drop_offer(conv)
redis.call('HSET', ASSIGN, conv, AGENT)
redis.call('SADD', AASSIGN, conv)
return 1
""",
    # A = conversation id, now -> entry JSON | nil
    "decline": r"""
local conv = A[1]
local raw = redis.call('HGET', OFFER, conv)
if not raw or offer_agent(raw) ~= AGENT then return false end
local e = cjson.decode(redis.call('HGET', ENTRY, conv))
if not WAIT[e.queue] then return RETRY end
drop_offer(conv)
unreserve(AGENT, e.channel, false)
return requeue_declined(conv, AGENT, e, A[2])
""",
    # A = conversation id, now -> entry JSON | nil   (AGENT = the offered agent as read before)
    "expire": r"""
local conv = A[1]
local raw = redis.call('HGET', OFFER, conv)
if not raw then return false end
if offer_agent(raw) ~= AGENT then return RETRY end
if tonumber(cjson.decode(raw).expires_at) > tonumber(A[2]) then return false end
local e = cjson.decode(redis.call('HGET', ENTRY, conv))
if not WAIT[e.queue] then return RETRY end
drop_offer(conv)
unreserve(AGENT, e.channel, false)
return requeue_declined(conv, AGENT, e, A[2])
""",
    # A = conversation id, now -> agent id | nil   (AGENT = the holder as read before, or "")
    "release": r"""
local conv = A[1]
local raw = redis.call('HGET', ENTRY, conv)
if not raw then return false end
local e = cjson.decode(raw)
local holder = redis.call('HGET', ASSIGN, conv)
if holder then
  if holder ~= AGENT then return RETRY end
  redis.call('HDEL', ASSIGN, conv)
  redis.call('SREM', AASSIGN, conv)
  redis.call('HDEL', ENTRY, conv)
  unreserve(AGENT, e.channel, A[2])
  return AGENT
end
local oraw = redis.call('HGET', OFFER, conv)
if oraw then
  if offer_agent(oraw) ~= AGENT then return RETRY end
  drop_offer(conv)
  redis.call('HDEL', ENTRY, conv)
  unreserve(AGENT, e.channel, false)
  return AGENT
end
if not WAIT[e.queue] then return RETRY end
queue_pop(conv, e.queue)
redis.call('HDEL', ENTRY, conv)
return false
""",
    # A = now -> list of entry JSON   (WAIT = the queues of the agent's conversations as read before)
    "requeue_agent": r"""
local offered = redis.call('SMEMBERS', AOFFERS)
local assigned = redis.call('SMEMBERS', AASSIGN)
local entries = {}
for _, list in ipairs({offered, assigned}) do
  for _, conv in ipairs(list) do
    local raw = redis.call('HGET', ENTRY, conv)
    if raw then
      local e = cjson.decode(raw)
      if not WAIT[e.queue] then return RETRY end
      entries[conv] = e
    end
  end
end
local out = {}
for _, conv in ipairs(offered) do
  redis.call('HDEL', OFFER, conv)
  redis.call('ZREM', EXPIRY, conv)
  if entries[conv] then out[#out + 1] = requeue_declined(conv, AGENT, entries[conv], A[1]) end
end
for _, conv in ipairs(assigned) do
  redis.call('HDEL', ASSIGN, conv)
  if entries[conv] then
    queue_push(conv, entries[conv])
    out[#out + 1] = redis.call('HGET', ENTRY, conv)
  end
end
redis.call('DEL', AOFFERS, AASSIGN)
-- base.gone_offline
local p = get_presence(AGENT)
if p then
  if p.status ~= 'offline' then
    p.status = 'offline'
    p.since = A[1]
  end
  p.load = {}
  put_presence(AGENT, p)
end
return out
""",
    # A = hold, channel -> 1 held, 0 not free (base.can_hold, then base.reserve)
    "hold_agent": r"""
local p = get_presence(AGENT)
if not p then return 0 end
if p.status ~= 'available' and p.status ~= 'busy' then return 0 end
if not is_free(p.load) then return 0 end
if (tonumber(p.capacity[A[2]]) or 0) < 1 then return 0 end
reserve(AGENT, p, A[1])
return 1
""",
    # A = hold, now -> 1 released, 0 none held (base.unreserve with now)
    "release_hold": r"""
local p = get_presence(AGENT)
if not p or (tonumber(p.load[A[1]]) or 0) <= 0 then return 0 end
unreserve(AGENT, A[1], A[2])
return 1
""",
    # A = status, now -> presence JSON | nil
    "set_status": r"""
local p = get_presence(AGENT)
if not p then return false end
-- base.with_status
if p.status ~= A[1] then
  if A[1] == 'available' and is_free(p.load) then p.idle_since = A[2] end
  p.status = A[1]
  p.since = A[2]
  put_presence(AGENT, p)
end
return cjson.encode(p)
""",
}

# Read-only scripts: one consistent snapshot in one round trip. HMGET in chunks (Lua's unpack limit).
_HMGET = r"""
local function hmget_into(hash, ids, out)
  for i = 1, #ids, 500 do
    local chunk = {}
    for j = i, math.min(i + 499, #ids) do chunk[#chunk + 1] = ids[j] end
    for _, v in ipairs(redis.call('HMGET', hash, unpack(chunk))) do
      if v then out[#out + 1] = v end
    end
  end
end
local out = {}
"""
# "<conversation> <generation>" (generation "-" when none) for each of ``ids``, appended to ``out``; HMGET 500 at a time
_GENS = r"""
local function gens_into(gen_key, ids, out)
  for c = 1, #ids, 500 do
    local chunk = {}
    for j = c, math.min(c + 499, #ids) do chunk[#chunk + 1] = ids[j] end
    local gens = redis.call('HMGET', gen_key, unpack(chunk))
    for j = 1, #chunk do out[#out + 1] = chunk[j] .. ' ' .. (gens[j] or '-') end
  end
end
"""
_READERS: dict[str, str] = {
    # KEYS = a hash of JSON records -> its values joined by newlines, ONE string (JSON has no raw newline)
    "read_hash_values": r"""
return table.concat(redis.call('HVALS', KEYS[1]), "\n")
""",
    # KEYS = entry, waiting:<q>... -> entry JSONs
    # KEYS = waiting_gen, waiting:<q>... -> ONE string, "<conversation> <generation>" per waiting entry joined
    # by newlines (one bulk reply: redis-py parses each element of a reply in Python, ~10 us each), the
    # generation "-" when none was recorded; the records themselves are read only for the generations the
    # reader has not decoded yet (RedisStateStore.waiting)
    "read_waiting_gens": _GENS + r"""
local out = {}
for i = 2, #KEYS do
  gens_into(KEYS[1], redis.call('ZRANGE', KEYS[i], 0, -1), out)
end
return table.concat(out, "\n")
""",
    # KEYS = waiting_gen, waiting_log; ARGV = the generation last read, its epoch -> {} when the reader must
    # read everything again (another epoch: Redis lost its data; or the log was trimmed past it), else {the
    # last generation given, ONE string: "<conversation> <generation>" for each conversation pushed or popped
    # since, the generation "-" for one not waiting any more}
    "read_waiting_changes": _GENS + r"""
local since = tonumber(ARGV[1])
local top = tonumber(redis.call('HGET', KEYS[1], '#') or '0')
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[2] or top < since
   or since < tonumber(redis.call('HGET', KEYS[1], 'trim') or '0') then
  return {}
end
local out = {}
gens_into(KEYS[1], redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ARGV[1], '+inf'), out)
return {tostring(top), table.concat(out, "\n")}
""",
    # KEYS = offer_expiry, offer; ARGV = now -> offer JSONs
    "read_due": _HMGET + r"""
hmget_into(KEYS[2], redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1]), out)
return out
""",
    # KEYS = a set of conversation ids, a hash -> the hash's values for them
    "read_set": _HMGET + r"""
hmget_into(KEYS[2], redis.call('SMEMBERS', KEYS[1]), out)
return out
""",
}


def _text(raw: str | bytes) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _bytes(raw: str | bytes) -> bytes:
    return raw if isinstance(raw, bytes) else raw.encode()


def _pairs(joined: str | bytes | None) -> Iterable[tuple[bytes, bytes]]:
    """The (conversation, generation) pairs of a "<conversation> <generation>" per line reply: one split."""
    if not joined:
        return ()
    words = iter(_bytes(joined).split())
    return zip(words, words)


def _glob_escape(s: str) -> str:
    """``s`` as a literal in a SCAN MATCH pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in s)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class StateConflict(RuntimeError):
    """The records of one conversation kept changing under an operation (should never happen)."""


def _port_errors(cls: type) -> type:
    """Every public coroutine of ``cls`` raises :class:`StateUnavailable` when Redis cannot be reached (the
    callers speak the port's language, not redis-py's)."""

    def wrap(fn: Any) -> Any:
        @functools.wraps(fn)
        async def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return await fn(*args, **kwargs)
            except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
                raise StateUnavailable(f"the shared state (Redis) cannot be reached: {exc}") from exc

        return call

    for name, fn in list(vars(cls).items()):
        if not name.startswith("_") and inspect.iscoroutinefunction(fn):
            setattr(cls, name, wrap(fn))
    return cls


@_port_errors
class RedisStateStore:
    """:class:`~contact_center.ports.StateStore` in Redis, for several hub processes.

    :param redis: a ``redis.asyncio.Redis`` client (``decode_responses`` either way).
    :param prefix: put in front of every key; keep a ``{...}`` hash tag in it for Redis Cluster.
        Processes that share state use the same prefix.
    """

    def __init__(self, redis: aioredis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.redis = redis
        self.prefix = prefix
        self._presence = prefix + "presence"
        self._entry = prefix + "entry"
        self._offer = prefix + "offer"
        self._expiry = prefix + "offer_expiry"
        self._watch = prefix + "watchers"  # a set of "<conversation id>|<watcher>"
        self._assign = prefix + "assign"
        self._qlen = prefix + "qlen"
        self._wgen = prefix + "waiting_gen"  # conversation -> generation of its push into a waiting set
        self._wlog = prefix + "waiting_log"  # conversation -> generation of its last push or pop
        self._seal = prefix + "sealed"  # hash: node -> 1 after its rebuild from SQL; gone if Redis lost its data
        self._missed = prefix + "missed"  # agent id -> offers let time out in a row
        self._reason = prefix + "status_reason"  # agent id -> JSON: why the hub set the agent's state
        self._seen_prefix = prefix + "customer_seen:"  # one string per customer: last seen connected (expires)
        self._scripts = {name: redis.register_script(_PRELUDE + body) for name, body in _SCRIPTS.items()}
        self._readers = {name: redis.register_script(body) for name, body in _READERS.items()}
        self._presences: dict[bytes, AgentPresence] = {}  # all_presence(): the last read's records, decoded
        self._presence_blob: bytes | None = None  # ... the last read's reply
        self._presence_order: list[AgentPresence] = []  # ... and its answer
        self._decoded: dict[bytes, tuple[bytes, QueueEntry]] = {}  # waiting(): conversation -> (generation, entry)
        self._since: tuple[bytes, bytes] | None = None  # (epoch, generation) _decoded holds every waiting entry as of
        self._order: list[QueueEntry] = []  # _decoded's entries in waiting order (the last full answer)

    # --- keys and plumbing ---------------------------------------------------------------------

    def _waiting_key(self, queue: str) -> str:
        return f"{self.prefix}waiting:{queue}"

    def _agent_offers_key(self, agent_id: int) -> str:
        return f"{self.prefix}agent_offers:{agent_id}"

    def _agent_assign_key(self, agent_id: int) -> str:
        return f"{self.prefix}agent_assign:{agent_id}"

    async def _run(self, name: str, *, queues: Sequence[str] = (), agent: int | None = None, args: Sequence[Any] = ()) -> Any:
        """Run a writing script with the key/argument layout of ``_PRELUDE``."""
        queues = _unique(queues)
        keys = [self._presence, self._entry, self._offer, self._expiry, self._assign, self._qlen, self._wgen, self._wlog]
        keys += [self._waiting_key(q) for q in queues]
        if agent is not None:
            keys += [self._agent_offers_key(agent), self._agent_assign_key(agent)]
        argv = [len(queues), *queues, "" if agent is None else str(agent), *args]
        return await self._scripts[name](keys=keys, args=argv)

    async def _locate(self, cid: int) -> tuple[str | None, int | None, str | None]:
        """(queue of the entry, agent holding it by offer or assignment, offer JSON) — one snapshot."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hget(self._entry, str(cid))
            pipe.hget(self._offer, str(cid))
            pipe.hget(self._assign, str(cid))
            raw_entry, raw_offer, raw_assign = await pipe.execute()
        queue = None if raw_entry is None else entry_from_json(raw_entry).queue
        holder: int | None = None
        if raw_assign is not None:
            holder = int(_text(raw_assign))
        elif raw_offer is not None:
            holder = offer_from_json(raw_offer).agent_id
        return queue, holder, None if raw_offer is None else _text(raw_offer)

    @staticmethod
    def _is_retry(res: Any) -> bool:
        return isinstance(res, (str, bytes)) and _text(res) == RETRY

    @staticmethod
    def _conflict(what: str, cid: int) -> StateConflict:
        return StateConflict(f"{what} of conversation {cid}: its records changed {_ATTEMPTS} times in a row")

    # --- presence ------------------------------------------------------------------------------

    async def set_presence(self, p: AgentPresence) -> None:
        p = normalize_presence(p)
        await self.redis.hset(self._presence, str(p.agent_id), dumps(presence_record(p)))

    async def get_presence(self, agent_id: int) -> AgentPresence | None:
        raw = await self.redis.hget(self._presence, str(int(agent_id)))
        return None if raw is None else presence_from_json(raw)

    async def all_presence(self) -> list[AgentPresence]:
        # the router reads every presence every pass; most are unchanged: one bulk reply (redis-py parses each
        # element of a multi-element reply in Python), each record decoded once, the same answer reused whole
        # while nothing changed
        blob = _bytes(await self._readers["read_hash_values"](keys=[self._presence]) or b"")
        if blob == self._presence_blob:
            return list(self._presence_order)
        cache, fresh = self._presences, {}
        for raw in blob.split(b"\n") if blob else ():
            p = cache.get(raw)
            fresh[raw] = p if p is not None else presence_from_json(raw)
        self._presences, self._presence_blob = fresh, blob
        self._presence_order = sorted(fresh.values(), key=lambda p: p.agent_id)
        return list(self._presence_order)

    async def set_status(self, agent_id: int, status: str, now: float) -> AgentPresence | None:
        res = await self._run("set_status", agent=int(agent_id), args=[str(status), fnum(now)])
        return None if res is None else presence_from_json(res)

    async def remove_presence(self, agent_id: int) -> None:
        await self.redis.hdel(self._presence, str(int(agent_id)))

    # --- queue ---------------------------------------------------------------------------------

    async def enqueue(self, e: QueueEntry) -> bool:
        e = normalize_entry(e)
        res = await self._run("enqueue", queues=[e.queue], args=[str(e.conversation_id), dumps(entry_record(e))])
        return bool(res)

    async def waiting(self, queue: str | None = None) -> list[QueueEntry]:
        """The waiting entries (of one queue, or of all) in waiting order.

        The router reads every waiting entry on every pass, and a long queue hardly changes between two
        passes. So all queues' entries are kept decoded here between calls, with the generation they were
        read at, and a call asks Redis only for the conversations pushed or popped since (the change log,
        one script), then reads and decodes only the records it does not hold yet (one HMGET). Everything is
        read again the first time, when Redis lost its data (another epoch), or when this process fell
        further behind than the log keeps.
        """
        if queue is not None:
            ordered: list[QueueEntry] = await self._read_queues([str(queue)], keep=False)
            return ordered
        if self._since is not None:
            epoch, since = self._since
            changes = await self._readers["read_waiting_changes"](keys=[self._wgen, self._wlog], args=[since, epoch])
            if changes:
                top, joined = changes
                await self._apply_changes(_pairs(joined))
                self._since = (epoch, _bytes(top))
                return list(self._order)
        async with self.redis.pipeline(transaction=True) as pipe:  # where the log starts, then what waits
            pipe.hsetnx(self._wgen, "epoch", uuid.uuid4().hex)
            pipe.hget(self._wgen, "epoch")
            pipe.hget(self._wgen, "#")
            pipe.hkeys(self._qlen)
            _, epoch, top, queues = await pipe.execute()
        # a push into a queue listed here is in this read; one into a queue that appeared after is after
        # ``top``, so in the next call's changes
        fresh = await self._read_queues(sorted(_text(q) for q in queues), keep=True)
        self._decoded = {str(e.conversation_id).encode(): entry for e, entry in fresh}
        self._order = [e for e, _ in fresh]
        self._since = (_bytes(epoch), _bytes(top or b"0"))
        return list(self._order)

    async def _read_queues(self, queues: list[str], *, keep: bool) -> Any:
        """Every entry waiting in ``queues``, reusing the records already decoded at the same generation.

        The entries in waiting order; with ``keep``, (entry, (generation, entry)) pairs, for the caller to keep.
        """
        known = self._decoded
        if not queues:
            return []
        joined = await self._readers["read_waiting_gens"](keys=[self._wgen, *(self._waiting_key(q) for q in queues)])
        fresh: dict[bytes, tuple[bytes, QueueEntry]] = {}
        missing = []
        for cid, gen in _pairs(joined):
            seen = known.get(cid)
            if seen is not None and seen[0] == gen and gen != b"-":
                fresh[cid] = seen
            else:
                missing.append((cid, gen))
        for cid, gen, entry in await self._records(missing):
            if entry is not None:  # gone meanwhile (offered, closed): not waiting any more
                fresh[cid] = (gen, entry)
        ordered = sort_waiting(e for _, e in fresh.values())
        if not keep:
            return ordered
        return [(e, fresh[str(e.conversation_id).encode()]) for e in ordered]

    async def _apply_changes(self, pairs: Iterable[tuple[bytes, bytes]]) -> None:
        """Bring the decoded entries up to date with the conversations pushed or popped since the last read."""
        decoded = self._decoded
        missing = []
        gone: set[int] = set()  # conversations whose entry left the order (popped, or re-pushed: a new record)
        for cid, gen in pairs:
            if gen == b"-":  # popped: not waiting any more
                if decoded.pop(cid, None) is not None:
                    gone.add(int(cid))
            else:
                seen = decoded.get(cid)
                if seen is None or seen[0] != gen:
                    missing.append((cid, gen))
        added: list[QueueEntry] = []
        for cid, gen, entry in await self._records(missing):
            if decoded.pop(cid, None) is not None:
                gone.add(int(cid))
            if entry is not None:  # None: popped (and its record gone) after the log was read; the next call sees it too
                decoded[cid] = (gen, entry)
                added.append(entry)
        if not gone and not added:
            return
        if len(gone) + len(added) > len(decoded) // 8:  # much changed: sort again
            self._order = sort_waiting(e for _, e in decoded.values())
            return
        order = [e for e in self._order if e.conversation_id not in gone] if gone else self._order
        for e in added:  # a few: each into its place (one ordering of 10,000 entries costs ~5 ms)
            bisect.insort(order, e, key=waiting_order)
        self._order = order

    async def _records(self, wanted: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes, QueueEntry | None]]:
        """The queue entry records of some conversations (None for one that has none), 1,000 per HMGET."""
        out: list[tuple[bytes, bytes, QueueEntry | None]] = []
        for i in range(0, len(wanted), 1000):
            chunk = wanted[i:i + 1000]
            raws = await self.redis.hmget(self._entry, [cid for cid, _ in chunk])
            out.extend((cid, gen, None if raw is None else entry_from_json(raw)) for (cid, gen), raw in zip(chunk, raws))
        return out

    async def remove_from_queue(self, conversation_id: int) -> QueueEntry | None:
        cid = int(conversation_id)
        for _ in range(_ATTEMPTS):
            queue, holder, _offer = await self._locate(cid)
            if queue is None or holder is not None:
                return None
            res = await self._run("remove_from_queue", queues=[queue], args=[str(cid)])
            if not self._is_retry(res):
                return None if res is None else entry_from_json(res)
        raise self._conflict("remove_from_queue", cid)

    async def queue_lengths(self) -> dict[str, int]:
        raw = await self.redis.hgetall(self._qlen)
        lengths = {_text(q): int(n) for q, n in raw.items()}
        return {q: n for q, n in lengths.items() if n > 0}

    # --- offers --------------------------------------------------------------------------------

    async def offer(
        self, conversation_id: int, agent_id: int, expires_at: float, *, check_capacity: bool = False
    ) -> Offer | None:
        cid, aid = int(conversation_id), int(agent_id)
        for _ in range(_ATTEMPTS):
            queue, holder, _offer = await self._locate(cid)
            if queue is None or holder is not None:
                return None  # not waiting when we looked: someone else has it (or it is gone)
            res = await self._run(
                "offer", queues=[queue], agent=aid, args=[str(cid), fnum(expires_at), "1" if check_capacity else "0"]
            )
            if not self._is_retry(res):
                return None if res is None else offer_from_json(res)
        raise self._conflict("offer", cid)

    async def restore_assignment(self, e: QueueEntry, agent_id: int) -> bool:
        e = normalize_entry(e)
        res = await self._run(
            "restore_assignment", queues=[e.queue], agent=int(agent_id), args=[str(e.conversation_id), dumps(entry_record(e))]
        )
        return bool(res)

    async def accept(self, conversation_id: int, agent_id: int) -> bool:
        res = await self._run("accept", agent=int(agent_id), args=[str(int(conversation_id))])
        return bool(res)

    async def decline(self, conversation_id: int, agent_id: int, now: float) -> QueueEntry | None:
        cid, aid = int(conversation_id), int(agent_id)
        for _ in range(_ATTEMPTS):
            queue, holder, _offer = await self._locate(cid)
            if queue is None or holder != aid:
                return None
            res = await self._run("decline", queues=[queue], agent=aid, args=[str(cid), fnum(now)])
            if not self._is_retry(res):
                return None if res is None else entry_from_json(res)
        raise self._conflict("decline", cid)

    async def expired_offers(self, now: float) -> list[Offer]:
        raws = await self._readers["read_due"](keys=[self._expiry, self._offer], args=[fnum(now)])
        return sort_offers_by_expiry(offer_from_json(r) for r in raws)

    async def expire(self, conversation_id: int, now: float) -> QueueEntry | None:
        cid = int(conversation_id)
        for _ in range(_ATTEMPTS):
            queue, _holder, raw_offer = await self._locate(cid)
            if queue is None or raw_offer is None:
                return None
            o = offer_from_json(raw_offer)
            if o.expires_at > now:
                return None
            res = await self._run("expire", queues=[queue], agent=o.agent_id, args=[str(cid), fnum(now)])
            if not self._is_retry(res):
                return None if res is None else entry_from_json(res)
        raise self._conflict("expire", cid)

    async def offers_of(self, agent_id: int) -> list[Offer]:
        aid = int(agent_id)
        raws = await self._readers["read_set"](keys=[self._agent_offers_key(aid), self._offer])
        return sort_offers_by_conversation(o for o in map(offer_from_json, raws) if o.agent_id == aid)

    # --- assignments ---------------------------------------------------------------------------

    async def assignment_of(self, conversation_id: int) -> int | None:
        raw = await self.redis.hget(self._assign, str(int(conversation_id)))
        return None if raw is None else int(_text(raw))

    async def release(self, conversation_id: int, now: float) -> int | None:
        cid = int(conversation_id)
        for _ in range(_ATTEMPTS):
            queue, holder, _offer = await self._locate(cid)
            if queue is None:
                return None
            res = await self._run("release", queues=[queue], agent=holder, args=[str(cid), fnum(now)])
            if not self._is_retry(res):
                return None if res is None else int(_text(res))
        raise self._conflict("release", cid)

    async def assignments_of(self, agent_id: int) -> list[int]:
        raws = await self.redis.smembers(self._agent_assign_key(int(agent_id)))
        return sorted(int(_text(r)) for r in raws)

    # --- holds ---------------------------------------------------------------------------------

    async def hold_agent(self, agent_id: int, hold: str, channel: str) -> bool:
        return bool(await self._run("hold_agent", agent=int(agent_id), args=[str(hold), str(channel)]))

    async def release_hold(self, agent_id: int, hold: str, now: float) -> bool:
        return bool(await self._run("release_hold", agent=int(agent_id), args=[str(hold), fnum(now)]))

    # --- agent loss ----------------------------------------------------------------------------

    async def requeue_agent(self, agent_id: int, now: float) -> list[QueueEntry]:
        aid = int(agent_id)
        for _ in range(_ATTEMPTS):
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.smembers(self._agent_offers_key(aid))
                pipe.smembers(self._agent_assign_key(aid))
                offered, assigned = await pipe.execute()
            cids = sorted({_text(c) for c in offered} | {_text(c) for c in assigned})
            raws = await self.redis.hmget(self._entry, cids) if cids else []
            queues = sorted({entry_from_json(r).queue for r in raws if r is not None})
            res = await self._run("requeue_agent", queues=queues, agent=aid, args=[fnum(now)])
            if not self._is_retry(res):
                return sort_waiting(entry_from_json(r) for r in res)
        raise StateConflict(f"requeue_agent of agent {aid}: their conversations changed {_ATTEMPTS} times in a row")

    async def add_watcher(self, conversation_id: int, watcher: str) -> None:
        await self.redis.sadd(self._watch, f"{int(conversation_id)}|{watcher}")

    async def remove_watcher(self, conversation_id: int, watcher: str) -> None:
        await self.redis.srem(self._watch, f"{int(conversation_id)}|{watcher}")

    async def watched(self) -> set[int]:
        members = await self.redis.smembers(self._watch)
        out = set()
        for m in members:
            text = m.decode() if isinstance(m, bytes) else str(m)
            head = text.split("|", 1)[0]
            if head.isdigit():
                out.add(int(head))
        return out

    async def customers_seen(self, customer_ids: Collection[int], now: float) -> None:
        ids = sorted({int(c) for c in customer_ids})
        if not ids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for c in ids:
                pipe.set(f"{self._seen_prefix}{c}", fnum(now), ex=int(CUSTOMER_SEEN_TTL))
            await pipe.execute()

    async def customers_last_seen(self, customer_ids: Collection[int]) -> dict[int, float]:
        ids = sorted({int(c) for c in customer_ids})
        if not ids:
            return {}
        raws = await self.redis.mget([f"{self._seen_prefix}{c}" for c in ids])
        return {c: float(_text(r)) for c, r in zip(ids, raws) if r is not None}

    async def seal(self, node: str) -> None:
        await self.redis.hset(self._seal, str(node), "1")

    async def sealed(self, node: str) -> bool:
        return bool(await self.redis.hexists(self._seal, str(node)))

    async def offer_missed(self, agent_id: int) -> int:
        return int(await self.redis.hincrby(self._missed, str(int(agent_id)), 1))

    async def reset_missed(self, agent_id: int) -> None:
        await self.redis.hdel(self._missed, str(int(agent_id)))

    async def set_status_reason(self, agent_id: int, reason: Mapping[str, Any] | None) -> None:
        if reason is None:
            await self.redis.hdel(self._reason, str(int(agent_id)))
        else:
            await self.redis.hset(self._reason, str(int(agent_id)), json.dumps(dict(reason), separators=(",", ":")))

    async def status_reasons(self) -> dict[int, dict[str, Any]]:
        found = await self.redis.hgetall(self._reason)
        return {int(_text(a)): json.loads(_text(r)) for a, r in found.items()}

    async def clear(self) -> None:
        self._since, self._decoded, self._order = None, {}, []
        self._presences, self._presence_blob, self._presence_order = {}, None, []
        batch: list[Any] = []
        async for key in self.redis.scan_iter(match=_glob_escape(self.prefix) + "*", count=500):
            batch.append(key)
            if len(batch) >= 500:
                await self.redis.delete(*batch)
                batch.clear()
        if batch:
            await self.redis.delete(*batch)
