"""Socket.IO client managers whose disconnect does not scan every room of the namespace.

python-socketio's ``BaseManager.basic_disconnect`` copies and scans all the rooms of a namespace to
find the ones a socket is in. Every socket has a room of its own, so one disconnect costs O(sockets)
and a mass disconnect (a deploy, a network blip) O(sockets^2): 10,000 widgets took ~40 s of a saturated
core to go, while the hub missed its pings (bench/connections.py). The managers here keep a reverse
index, socket -> rooms, so a disconnect costs O(rooms of that socket). Everything else is python-socketio's.
"""

from __future__ import annotations

import contextlib
import contextvars
from typing import Any, AsyncIterator, Hashable

import socketio


class RoomIndexMixin:
    """A reverse index ``(namespace, sid) -> rooms`` kept beside python-socketio's ``rooms`` table."""

    rooms: dict[str, dict[Hashable, Any]]
    callbacks: dict[str, Any]
    pending_connect: dict[str, list[str]]
    pending_disconnect: dict[str, list[str]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rooms_of: dict[tuple[str, str], set[Hashable]] = {}

    def basic_enter_room(self, sid: str, namespace: str, room: Hashable, eio_sid: str | None = None) -> None:
        """Enter a room (python-socketio's checks and errors), then index it."""
        super().basic_enter_room(sid, namespace, room, eio_sid=eio_sid)  # type: ignore[misc]
        self._rooms_of.setdefault((namespace, sid), set()).add(room)

    def basic_leave_room(self, sid: str, namespace: str, room: Hashable) -> None:
        """Leave a room, and forget it in the index."""
        super().basic_leave_room(sid, namespace, room)  # type: ignore[misc]
        key = (namespace, sid)
        rooms = self._rooms_of.get(key)
        if rooms is not None:
            rooms.discard(room)
            if not rooms:
                del self._rooms_of[key]

    def basic_disconnect(self, sid: str, namespace: str, **kwargs: Any) -> None:
        """Leave exactly the rooms the socket is in; then python-socketio's bookkeeping of a disconnect."""
        if namespace not in self.rooms:
            return
        for room in list(self._rooms_of.get((namespace, sid), ())):
            self.basic_leave_room(sid, namespace, room)
        self.callbacks.pop(sid, None)
        for pending in (self.pending_connect, self.pending_disconnect):
            waiting = pending.get(namespace)
            if waiting is not None and sid in waiting:
                waiting.remove(sid)
                if not waiting:
                    del pending[namespace]

    def get_rooms(self, sid: str, namespace: str) -> list[Hashable]:
        """The rooms a client is in (its own room included, as python-socketio answers)."""
        return [r for r in self._rooms_of.get((namespace, sid), ()) if r is not None]


class IndexedAsyncManager(RoomIndexMixin, socketio.AsyncManager):  # type: ignore[misc]
    """The in-process manager (one hub process) with the disconnect index."""


# The emits published by the current task inside ``IndexedAsyncRedisManager.batch()`` (a context
# variable: another task's emits, interleaved at an await, are never swept into this batch).
_BATCH: contextvars.ContextVar[list[dict[str, Any]] | None] = contextvars.ContextVar("sio_emit_batch", default=None)


class IndexedAsyncRedisManager(RoomIndexMixin, socketio.AsyncRedisManager):  # type: ignore[misc]
    """python-socketio's Redis manager (several hub processes) with the disconnect index and batched emits.

    Every hub process receives and decodes every message published on the channel. A chat message
    goes to two rooms (the customer's other tabs, the agent), which python-socketio publishes as two
    messages; inside :meth:`batch` the emits of one task are published as one message instead, and
    each node handles them in order. Delivery on this node is unchanged (python-socketio handles its
    own emits locally before publishing).
    """

    @contextlib.asynccontextmanager
    async def batch(self) -> AsyncIterator[None]:
        """Publish the emits made inside this block (by this task) as one pub/sub message."""
        if _BATCH.get() is not None:  # already batching: the outer block publishes
            yield
            return
        token = _BATCH.set([])
        try:
            yield
        finally:
            pending = _BATCH.get() or []
            _BATCH.reset(token)
        if pending:
            first, *rest = pending
            await super()._publish({**first, "also": rest} if rest else first)

    async def _publish(self, data: Any) -> Any:
        pending = _BATCH.get()
        if pending is not None and isinstance(data, dict) and data.get("method") == "emit" and data.get("callback") is None:
            pending.append(data)
            return None
        return await super()._publish(data)

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        """A published emit, and the emits batched with it (``also``), in order."""
        await super()._handle_emit(message)
        for extra in message.get("also") or ():
            if isinstance(extra, dict):
                await super()._handle_emit(extra)
