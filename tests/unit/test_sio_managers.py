"""The Socket.IO managers with a disconnect index behave exactly like python-socketio's own."""

from __future__ import annotations

from typing import Any

import socketio
from hypothesis import given, settings
from hypothesis import strategies as st

from contact_center.sio_managers import IndexedAsyncManager

SIDS = [f"s{i}" for i in range(6)]
ROOMS = ["conv:1", "conv:2", "agent:7", "monitor:1"]
NAMESPACES = ["/customer", "/agent"]

op = st.one_of(
    st.tuples(st.just("connect"), st.sampled_from(SIDS), st.sampled_from(NAMESPACES)),
    st.tuples(st.just("enter"), st.sampled_from(SIDS), st.sampled_from(NAMESPACES), st.sampled_from(ROOMS)),
    st.tuples(st.just("leave"), st.sampled_from(SIDS), st.sampled_from(NAMESPACES), st.sampled_from(ROOMS)),
    st.tuples(st.just("disconnect"), st.sampled_from(SIDS), st.sampled_from(NAMESPACES)),
    st.tuples(st.just("close"), st.sampled_from(ROOMS), st.sampled_from(NAMESPACES)),
)


def _apply(manager: Any, step: tuple[Any, ...], connected: set[tuple[str, str]]) -> str:
    """Run one operation; its outcome ("ok" or the error's type) so both managers can be compared."""
    kind = step[0]
    try:
        if kind == "connect":
            _, sid, ns = step
            manager.basic_enter_room(sid, ns, None, eio_sid="eio-" + sid)
            manager.basic_enter_room(sid, ns, sid, eio_sid="eio-" + sid)
            connected.add((ns, sid))
        elif kind == "enter":
            _, sid, ns, room = step
            if (ns, sid) not in connected:
                return "skipped"  # python-socketio only lets connected sockets enter rooms
            manager.basic_enter_room(sid, ns, room)
        elif kind == "leave":
            _, sid, ns, room = step
            manager.basic_leave_room(sid, ns, room)
        elif kind == "disconnect":
            _, sid, ns = step
            manager.basic_disconnect(sid, ns)
            connected.discard((ns, sid))
        else:
            _, room, ns = step
            manager.basic_close_room(room, ns)
    except Exception as exc:  # noqa: BLE001 - the same error from both is the expected behaviour
        return type(exc).__name__
    return "ok"


def _rooms(manager: Any) -> dict[str, dict[Any, dict[str, str]]]:
    return {ns: {room: dict(members) for room, members in rooms.items()} for ns, rooms in manager.rooms.items()}


@settings(max_examples=300, deadline=None)
@given(st.lists(op, max_size=60))
def test_same_rooms_and_answers_as_python_socketio(steps: list[tuple[Any, ...]]) -> None:
    stock, indexed = socketio.AsyncManager(), IndexedAsyncManager()
    seen_stock: set[tuple[str, str]] = set()
    seen_indexed: set[tuple[str, str]] = set()
    for step in steps:
        assert _apply(stock, step, seen_stock) == _apply(indexed, step, seen_indexed), step
        assert _rooms(stock) == _rooms(indexed), step
    for ns in NAMESPACES:
        for sid in SIDS:
            assert sorted(map(str, stock.get_rooms(sid, ns))) == sorted(map(str, indexed.get_rooms(sid, ns)))
    # nothing is left in the index for sockets that are gone
    assert all(rooms for rooms in indexed._rooms_of.values())
    assert {key for key in indexed._rooms_of} == {
        (ns, sid) for ns, rooms in indexed.rooms.items() for members in rooms.values() for sid in members
    }


def test_a_disconnect_looks_only_at_the_sockets_own_rooms() -> None:
    """10,000 sockets: python-socketio's disconnect copies the namespace's 10,001 rooms; the index does not."""
    manager = IndexedAsyncManager()
    for i in range(10_000):
        manager.basic_enter_room(f"s{i}", "/customer", None, eio_sid=f"e{i}")
        manager.basic_enter_room(f"s{i}", "/customer", f"s{i}", eio_sid=f"e{i}")
    manager.basic_enter_room("s5", "/customer", "conv:5")

    class CountingDict(dict):  # type: ignore[type-arg]
        copies = 0

        def copy(self):  # type: ignore[no-untyped-def]
            CountingDict.copies += 1
            return super().copy()

    manager.rooms["/customer"] = CountingDict(manager.rooms["/customer"])
    manager.basic_disconnect("s5", "/customer")
    assert CountingDict.copies == 0
    assert "conv:5" not in manager.rooms["/customer"] and "s5" not in manager.rooms["/customer"][None]
    assert len(manager.rooms["/customer"][None]) == 9_999


def test_the_hub_uses_the_indexed_managers() -> None:
    from contact_center.realtime import create_sio
    from contact_center.sio_managers import IndexedAsyncRedisManager

    assert isinstance(create_sio("", None).manager, IndexedAsyncManager)
    assert isinstance(create_sio("redis://127.0.0.1:6379/0", None, channel="cc-test-socketio").manager, IndexedAsyncRedisManager)


async def test_an_emit_nobody_here_would_receive_is_not_even_encoded(monkeypatch: Any) -> None:
    """The echo of a customer's message to their only tab (the sender, skipped) costs no encode and no send."""
    from contact_center.realtime import create_sio

    sio = create_sio("", None)
    encoded: list[Any] = []
    sent: list[str] = []
    real_encode = sio.packet_class.encode

    def counting_encode(self: Any) -> Any:
        encoded.append(self.data)
        return real_encode(self)

    async def record(eio_sid: str, pkt: Any) -> None:
        sent.append(eio_sid)

    monkeypatch.setattr(sio.packet_class, "encode", counting_encode)
    monkeypatch.setattr(sio, "_send_eio_packet", record)
    for sid in ("tab-1", "tab-2"):
        sio.manager.basic_enter_room(sid, "/customer", None, eio_sid="eio-" + sid)
        sio.manager.basic_enter_room(sid, "/customer", sid, eio_sid="eio-" + sid)
    sio.manager.basic_enter_room("tab-1", "/customer", "conv:1")

    await sio.emit("message", {"text": "hi"}, to="conv:1", namespace="/customer", skip_sid="tab-1")  # only the sender
    await sio.emit("message", {"text": "hi"}, to="conv:2", namespace="/customer")  # an empty room
    await sio.emit("message", {"text": "hi"}, to="conv:1", namespace="/agent")  # a namespace nobody joined
    assert encoded == [] and sent == []

    sio.manager.basic_enter_room("tab-2", "/customer", "conv:1")  # a second tab: it gets the echo
    await sio.emit("message", {"text": "hi"}, to="conv:1", namespace="/customer", skip_sid="tab-1")
    assert sent == ["eio-tab-2"] and len(encoded) == 1
    await sio.emit("broadcast", {}, namespace="/customer")  # a whole namespace: python-socketio's own path
    assert sorted(sent) == ["eio-tab-1", "eio-tab-2", "eio-tab-2"]
    sent.clear()
    await sio.emit("several", {}, to=["conv:2", "tab-1"], namespace="/customer")  # a list of rooms: python-socketio's too
    assert sent == ["eio-tab-1"]
