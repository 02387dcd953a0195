"""Socket.IO client managers whose disconnect does not scan every room of the namespace.

python-socketio's ``BaseManager.basic_disconnect`` copies and scans all the rooms of a namespace to
find the ones a socket is in. Every socket has a room of its own, so one disconnect costs O(sockets)
and a mass disconnect (a deploy, a network blip) O(sockets^2): 10,000 widgets took ~40 s of a saturated
core to go, while the hub missed its pings (bench/connections.py). The managers here keep a reverse
index, socket -> rooms, so a disconnect costs O(rooms of that socket). Everything else is python-socketio's.
"""

from __future__ import annotations

import asyncio
from typing import Any, Hashable

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


class LocalSkipMixin:
    """Skip a local emit that no socket of this process would receive, before python-socketio encodes it.

    python-socketio encodes the packet first and then looks at the room's members. Most of the hub's
    emits have nobody here to go to: the echo of a customer's message to their other tabs (usually just
    the sending tab, which is skipped), and, with several processes, every emit to a socket on another
    node (each node handles every published emit). A broadcast to a whole namespace (``room`` None) is
    left to python-socketio.
    """

    rooms: dict[str, dict[Hashable, Any]]

    def has_local_recipient(self, namespace: str | None, room: Any, skip_sid: Any) -> bool:
        """Whether an emit to ``room`` of ``namespace`` reaches at least one socket of this process."""
        if room is None or (hasattr(room, "__len__") and not isinstance(room, str)):
            return True  # the whole namespace, or several rooms at once: python-socketio's own path
        members = self.rooms.get(namespace or "/", {}).get(room)
        if not members:
            return False
        if skip_sid is None:
            return True
        skip = skip_sid if isinstance(skip_sid, list) else (skip_sid,)
        return any(sid not in skip for sid in members)


class IndexedAsyncManager(RoomIndexMixin, socketio.AsyncManager):  # type: ignore[misc]
    """The in-process manager (one hub process) with the disconnect index."""


class IndexedAsyncRedisManager(RoomIndexMixin, LocalSkipMixin, socketio.AsyncRedisManager):  # type: ignore[misc]
    """python-socketio's Redis manager (several hub processes) with the disconnect index and one publisher.

    python-socketio publishes each emit with its own ``PUBLISH``, on a connection of a pool: under load
    every emit in flight takes (and may first open) a connection of its own, and emits published from two
    connections can reach the other nodes out of order. Here every message for the other nodes goes
    through one outbox, in order: the messages queued while a flush is on its way go out together in the
    next one (one pipeline, one write), and consecutive emits are joined into one pub/sub message
    (python-socketio's emit message with the others under ``also``, handled in order by every node), so
    every node also reads and decodes fewer messages. An emit does not wait for its flush (python-socketio's
    publish never reported a failure to the emitter either) unless more than ``high_water`` messages wait
    (Redis slow or down); a failed flush is retried once on a new connection and then logged, as
    python-socketio does (the messages are in SQL; clients catch up by sequence number). Nodes of the previous
    version read the joined messages too (they handled ``also`` already).
    """

    max_flush = 256  # messages per flush at most
    high_water = 10_000  # messages waiting: beyond this an emit waits for the next flush (Redis is slow or down)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._outbox: list[Any] = []
        self._flusher: asyncio.Task[None] | None = None
        self._flushed: asyncio.Event | None = None
        self.flushes = 0  # flushes sent (for the tests and the benchmark)
        self.published = 0  # pub/sub messages those flushes carried

    async def _publish(self, data: Any) -> Any:
        """Queue a message for the other nodes (in order); wait only when the outbox is over its high water mark."""
        self._outbox.append(data)
        if self._flusher is None or self._flusher.done():
            self._flushed = asyncio.Event()
            self._flusher = asyncio.get_running_loop().create_task(self._flush_all())  # kept: tasks are held weakly
        while len(self._outbox) > self.high_water and self._flushed is not None:
            flushed = self._flushed
            await flushed.wait()
        return None

    async def flush(self) -> None:
        """Wait until every message queued so far has been handed to Redis (or given up on)."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)

    async def _flush_all(self) -> None:
        """Send the outbox until it is empty (one flush in flight at a time: the order is kept)."""
        while self._outbox:
            batch, self._outbox = self._outbox[: self.max_flush], self._outbox[self.max_flush:]
            try:
                await self._send(joined(batch))
            finally:
                flushed, self._flushed = self._flushed, asyncio.Event()
                if flushed is not None:
                    flushed.set()

    async def _send(self, messages: list[Any]) -> None:
        for retries_left in (1, 0):
            try:
                if not self.connected:
                    self._redis_connect()
                if len(messages) == 1:
                    await self.redis.publish(self.channel, self.json.dumps(messages[0]))
                else:
                    pipe = self.redis.pipeline(transaction=False)
                    for message in messages:
                        pipe.publish(self.channel, self.json.dumps(message))
                    await pipe.execute()
                self.flushes += 1
                self.published += len(messages)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - python-socketio's own rule: retry once, then log
                if retries_left:
                    self._get_logger().error("Cannot publish to redis... retrying", extra={"redis_exception": str(exc)})
                    self.connected = False
                else:
                    self._get_logger().error("Cannot publish to redis... giving up", extra={"redis_exception": str(exc)})

    async def _handle_emit(self, message: dict[str, Any]) -> None:
        """A published emit, and the emits joined to it (``also``), in order; skipped where nobody here gets it."""
        for one in (message, *(message.get("also") or ())):
            if isinstance(one, dict) and self.has_local_recipient(one.get("namespace"), one.get("room"), one.get("skip_sid")):
                await super()._handle_emit(one)


def joined(messages: list[Any]) -> list[Any]:
    """The pub/sub messages for a flush: each run of consecutive emits as one emit message (the rest under ``also``)."""
    out: list[Any] = []
    run: list[dict[str, Any]] = []
    for data in messages:
        if isinstance(data, dict) and data.get("method") == "emit":
            run.append(data)
            continue
        if run:
            out.append(_one_emit(run))
            run = []
        out.append(data)
    if run:
        out.append(_one_emit(run))
    return out


def _one_emit(run: list[dict[str, Any]]) -> dict[str, Any]:
    first, *rest = run
    return {**first, "also": rest} if rest else first
