"""Socket.IO test helpers: a client that records what it receives and can wait for an event."""

from __future__ import annotations

import asyncio
from typing import Any

import socketio


class Inbox:
    """Collects the events a Socket.IO client receives, and waits for them."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self._cond = asyncio.Condition()

    async def push(self, name: str, data: Any) -> None:
        async with self._cond:
            self.events.append((name, data))
            self._cond.notify_all()

    async def wait(self, name: str, pred: Any = lambda d: True, timeout: float = 10.0) -> Any:
        async def find() -> Any:
            async with self._cond:
                while True:
                    for n, d in self.events:
                        if n == name and pred(d):
                            return d
                    await self._cond.wait()

        return await asyncio.wait_for(find(), timeout)

    def all(self, name: str) -> list[Any]:
        return [d for n, d in self.events if n == name]


def sio_client(inbox: Inbox, namespace: str, events: tuple[str, ...]) -> socketio.AsyncClient:
    sio = socketio.AsyncClient(reconnection=False)
    for ev in events:
        async def handler(data: Any = None, _ev: str = ev) -> None:
            await inbox.push(_ev, data)

        sio.on(ev, handler, namespace=namespace)
    return sio


