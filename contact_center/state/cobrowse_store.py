"""Co-browsing and document-push state shared by the hub processes (the ``CobrowseStore`` port).

Two adapters, one contract (``tests/contract/test_cobrowse_store.py``):

- :class:`MemoryCobrowseStore`: one hub process (embedded mode, no ``REDIS_URL``);
- :class:`RedisCobrowseStore`: several hub processes sharing one Redis (same prefix as the routing state).

Records are small JSON objects (dicts). What must happen once across processes is one atomic Redis step:
creating a conversation's session (``SET NX``), changing or ending it (compare-and-set on the stored text, one
Lua script), using a call's code (get-and-delete, one Lua script), counting wrong codes (one Lua script), the first
``opened``/``downloaded`` of a push (``SET NX``). Every key has a TTL, so nothing outlives its use.

Redis layout (``P`` is the prefix, ``cc:{hub}:`` by default):

=================================  ======  =========================================================
key                                type    content (TTL)
=================================  ======  =========================================================
``P cb:conv:<conversation id>``    string  the conversation's current session (JSON) (``SESSION_TTL``)
``P cb:code:<hmac of the code>``   string  ``{session_id, conversation_id, expires_at}`` (the code's life)
``P cb:fail:<socket or address>``  string  wrong codes in the current window (``CODE_FAILURE_WINDOW``)
``P cb:lock:<socket or address>``  string  locked until (epoch seconds) (``CODE_LOCKOUT_SECONDS``)
``P cb:link:<visitor id>``         string  the call's conversation that browser joined (``SESSION_TTL``)
``P cb:rec:<session id>``          set     the customer sockets recording now, any process (``SESSION_TTL``)
``P cb:push:<push id>``            string  a pushed document (JSON) (link life + 1 h)
``P cb:own:<upload id>``           string  an agent's own file (JSON) (``OWN_SECONDS``)
``P cb:seen:<push id>:<event>``    string  ``1`` once that event was recorded (the push's TTL)
=================================  ======  =========================================================
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

from contact_center.ports import CobrowseStore  # noqa: F401 - the port this module implements
from contact_center.domain.cobrowse import CODE_FAILURE_WINDOW, CODE_LOCKOUT_SECONDS, CODE_MAX_FAILURES

SESSION_TTL = 12 * 3600  # a session record (and its visitor link, its recording set) is refreshed at every change


def _dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, separators=(",", ":"), sort_keys=True)


def _ttl(seconds: float) -> int:
    return max(1, int(math.ceil(seconds)))


class MemoryCobrowseStore:
    """:class:`CobrowseStore` in this process: dicts with deadlines (``time.monotonic``), no lock needed (no
    ``await`` inside any method, so each is atomic on the event loop)."""

    def __init__(self) -> None:
        self._data: dict[str, tuple[Any, float]] = {}
        self._writes = 0

    def _get(self, key: str) -> Any:
        found = self._data.get(key)
        if found is None:
            return None
        if found[1] <= time.monotonic():
            del self._data[key]
            return None
        return found[0]

    def _set(self, key: str, value: Any, ttl: float) -> None:
        self._data[key] = (value, time.monotonic() + ttl)
        self._writes += 1
        if self._writes % 1000 == 0:  # bounded memory: drop what expired
            now = time.monotonic()
            for k in [k for k, (_, d) in self._data.items() if d <= now]:
                del self._data[k]

    async def create_session(self, conversation_id: int, record: dict[str, Any], ttl: float) -> tuple[bool, dict[str, Any]]:
        key = f"conv:{int(conversation_id)}"
        current = self._get(key)
        if current is not None:
            return False, json.loads(current)
        self._set(key, _dumps(record), ttl)
        return True, json.loads(_dumps(record))

    async def get_session(self, conversation_id: int) -> dict[str, Any] | None:
        raw = self._get(f"conv:{int(conversation_id)}")
        return None if raw is None else json.loads(raw)

    async def swap_session(self, conversation_id: int, old: dict[str, Any], new: dict[str, Any] | None, ttl: float) -> bool:
        key = f"conv:{int(conversation_id)}"
        if self._get(key) != _dumps(old):
            return False
        if new is None:
            del self._data[key]
        else:
            self._set(key, _dumps(new), ttl)
        return True

    async def put_code(self, code_key: str, record: dict[str, Any], ttl: float) -> bool:
        if self._get(f"code:{code_key}") is not None:
            return False
        self._set(f"code:{code_key}", _dumps(record), ttl)
        return True

    async def take_code(self, code_key: str) -> dict[str, Any] | None:
        raw = self._get(f"code:{code_key}")
        if raw is None:
            return None
        del self._data[f"code:{code_key}"]
        return json.loads(raw)

    async def drop_code(self, code_key: str) -> None:
        self._data.pop(f"code:{code_key}", None)

    async def code_wait(self, keys: tuple[str, ...], now: float) -> float:
        return max([0.0, *(float(self._get(f"lock:{k}") or 0.0) - now for k in keys)])

    async def code_failed(self, keys: tuple[str, ...], now: float) -> None:
        for k in keys:
            n = int(self._get(f"fail:{k}") or 0) + 1
            if n >= CODE_MAX_FAILURES:
                self._data.pop(f"fail:{k}", None)
                self._set(f"lock:{k}", now + CODE_LOCKOUT_SECONDS, CODE_LOCKOUT_SECONDS)
            elif n == 1:
                self._set(f"fail:{k}", n, CODE_FAILURE_WINDOW)
            else:  # the window runs from the first wrong code (as Redis's INCR + EXPIRE on the first)
                self._data[f"fail:{k}"] = (n, self._data[f"fail:{k}"][1])

    async def code_forget(self, key: str) -> None:
        self._data.pop(f"fail:{key}", None)
        self._data.pop(f"lock:{key}", None)

    async def set_link(self, visitor: str, conversation_id: int, ttl: float) -> None:
        self._set(f"link:{visitor}", int(conversation_id), ttl)

    async def get_link(self, visitor: str) -> int | None:
        found = self._get(f"link:{visitor}")
        return None if found is None else int(found)

    async def drop_link(self, visitor: str, conversation_id: int) -> None:
        if self._get(f"link:{visitor}") == int(conversation_id):
            del self._data[f"link:{visitor}"]

    async def recording_add(self, session_id: str, sid: str, ttl: float) -> None:
        sids = set(self._get(f"rec:{session_id}") or ())
        sids.add(sid)
        self._set(f"rec:{session_id}", sids, ttl)

    async def recording_remove(self, session_id: str, sid: str) -> int:
        sids = self._get(f"rec:{session_id}")
        if not sids:
            return 0
        sids.discard(sid)
        if not sids:
            del self._data[f"rec:{session_id}"]
        return len(sids)

    async def recording_count(self, session_id: str) -> int:
        return len(self._get(f"rec:{session_id}") or ())

    async def recording_clear(self, session_id: str) -> None:
        self._data.pop(f"rec:{session_id}", None)

    async def put_record(self, kind: str, key: str, record: dict[str, Any], ttl: float) -> None:
        self._set(f"{kind}:{key}", _dumps(record), ttl)

    async def get_record(self, kind: str, key: str) -> dict[str, Any] | None:
        raw = self._get(f"{kind}:{key}")
        return None if raw is None else json.loads(raw)

    async def first_event(self, push_id: str, event: str, ttl: float) -> bool:
        key = f"seen:{push_id}:{event}"
        if self._get(key) is not None:
            return False
        self._set(key, 1, ttl)
        return True

    async def clear(self) -> None:
        self._data.clear()
