"""The notifier port over Socket.IO: which namespace and room each audience is, and one batch per send.

Room names live here and nowhere in the use cases:

* ``conv:<id>`` in ``/customer``: the customer's widgets on a conversation (live channels);
* ``agent:<id>`` in ``/agent``: all of one agent's console tabs;
* ``monitor:<id>`` in ``/supervisor``: the supervisors watching a conversation.
"""

from __future__ import annotations

from typing import Any, Awaitable, Callable, Protocol, Sequence

from contact_center.ports import Notice

CUSTOMER_NS, AGENT_NS, SUPERVISOR_NS = "/customer", "/agent", "/supervisor"


def room_conv(conversation_id: int) -> str:
    """The customer-side room of a conversation."""
    return f"conv:{conversation_id}"


def room_agent(agent_id: int) -> str:
    """The room of all of one agent's console tabs."""
    return f"agent:{agent_id}"


def room_monitor(conversation_id: int) -> str:
    """The /supervisor room of the supervisors watching a conversation."""
    return f"monitor:{conversation_id}"


def _everyone(_target: int) -> None:
    return None  # no room: the whole namespace


_WHERE: dict[str, tuple[str, Callable[[int], str | None]]] = {
    "customer": (CUSTOMER_NS, room_conv),
    "agent": (AGENT_NS, room_agent),
    "watchers": (SUPERVISOR_NS, room_monitor),
    "all_agents": (AGENT_NS, _everyone),
    "all_customers": (CUSTOMER_NS, _everyone),
}


class Emitter(Protocol):
    """Publishes an event to a room of a namespace (python-socketio's ``AsyncServer.emit``)."""

    def emit(
        self, event: str, data: Any = None, *, to: str | None = None, namespace: str | None = None, skip_sid: str | None = None
    ) -> Awaitable[None]: ...

    def emit_many(self, items: list[dict[str, Any]]) -> Awaitable[None]:
        """Several emits (each ``emit``'s arguments by name), in order; across processes as one publish."""
        ...


class SocketIONotifier:
    """:class:`contact_center.ports.Notifier` on a Socket.IO server (or anything with its ``emit``)."""

    def __init__(self, emitter: Emitter) -> None:
        self.emitter = emitter

    async def send(self, notices: Sequence[Notice]) -> None:
        items: list[dict[str, Any]] = []
        for n in notices:
            namespace, room = _WHERE[n.audience]
            item: dict[str, Any] = {"event": n.event, "data": n.data, "to": room(n.target), "namespace": namespace}
            if n.skip is not None:
                item["skip_sid"] = n.skip
            items.append(item)
        if len(items) == 1:
            await self.emitter.emit(**items[0])
        elif items:
            await self.emitter.emit_many(items)
