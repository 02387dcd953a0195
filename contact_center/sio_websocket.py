"""python-engineio's aiohttp websocket, closed without leaving a reference cycle behind.

engineio's driver answers a closed websocket by raising ``OSError`` from ``wait()``. The error is
stored in engineio's wait task, and its traceback holds the frame of the connection's handler,
whose locals hold that task: a cycle, which drags the whole connection (aiohttp request, transport,
socket, websocket reader and writer, tasks; about 60 objects and 17 KB per socket) out of reach of
reference counting. Only a full garbage collection frees it, and CPython runs those rarely: 10,000
widgets reconnecting grew the hub by ~175 MB each time, 434 -> 613 -> 798 -> 964 MB over four waves
(``bench/connections.py --waves 4``).

Here ``wait()`` answers ``None`` for a close (or error) message instead: the value engineio's
handler already takes as "connection closed by client", so the handler ends normally and the
connection is freed when its last reference goes. During a polling -> websocket upgrade, ``None``
reads as a failed upgrade, as the error did.
"""

from __future__ import annotations

from typing import Any

import socketio
from engineio.async_drivers.aiohttp import WebSocket


class QuietCloseWebSocket(WebSocket):  # type: ignore[misc]
    """engineio's aiohttp websocket whose ``wait()`` answers ``None`` when the socket closes."""

    async def wait(self) -> Any:
        """The next text or binary frame; ``None`` once the socket is closing, closed or failed."""
        msg = await self._sock.receive()
        data = msg.data
        return data if isinstance(data, (bytes, str)) else None


def install(sio: socketio.AsyncServer) -> None:
    """Make ``sio``'s Engine.IO server open its websockets with :class:`QuietCloseWebSocket`."""
    drivers = sio.eio._async
    if drivers.get("websocket") is not WebSocket:
        raise RuntimeError("python-engineio's aiohttp websocket driver is not the one this module replaces")
    sio.eio._async = {**drivers, "websocket": QuietCloseWebSocket}
