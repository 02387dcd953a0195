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


def test_the_hub_uses_the_indexed_managers_and_knows_which_one_is_local() -> None:
    from contact_center.realtime import SioEmitter, create_sio
    from contact_center.sio_managers import IndexedAsyncRedisManager

    embedded = create_sio("", None)
    assert isinstance(embedded.manager, IndexedAsyncManager)
    assert SioEmitter(embedded)._local  # one process: the emitter may skip an echo nobody would get
    shared = create_sio("redis://127.0.0.1:6379/0", None, channel="cc-test-socketio")
    assert isinstance(shared.manager, IndexedAsyncRedisManager)
    assert not SioEmitter(shared)._local  # another node may hold the customer's other tab


def test_the_redis_manager_knows_which_emits_reach_a_socket_here() -> None:
    """A published emit is handled on a node only when a socket there gets it (not encoded for nobody)."""
    from contact_center.sio_managers import IndexedAsyncRedisManager

    manager = IndexedAsyncRedisManager("redis://127.0.0.1:6379/0", channel="cc-test-socketio")
    for sid in ("tab-1", "tab-2"):
        manager.basic_enter_room(sid, "/customer", None, eio_sid="eio-" + sid)
        manager.basic_enter_room(sid, "/customer", sid, eio_sid="eio-" + sid)
    manager.basic_enter_room("tab-1", "/customer", "conv:1")
    assert not manager.has_local_recipient("/customer", "conv:1", "tab-1")  # only the sender
    assert not manager.has_local_recipient("/customer", "conv:1", ["tab-1"])  # python-socketio's list form
    assert not manager.has_local_recipient("/customer", "conv:2", None)  # an empty room
    assert not manager.has_local_recipient("/agent", "conv:1", None)  # a namespace nobody joined
    assert manager.has_local_recipient("/customer", "conv:1", None)
    assert manager.has_local_recipient("/customer", None, None)  # the whole namespace
    assert manager.has_local_recipient("/customer", ["conv:2", "tab-1"], None)  # several rooms: python-socketio decides
    manager.basic_enter_room("tab-2", "/customer", "conv:1")
    assert manager.has_local_recipient("/customer", "conv:1", "tab-1")  # a second tab
