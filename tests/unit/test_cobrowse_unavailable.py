"""Co-browsing when the shared store (Redis) cannot be reached: every request answers ``unavailable`` with
``retry_after``, nothing raises, and a timer that cannot reach the store gives up quietly."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from contact_center.cobrowse import CobrowseRelay
from contact_center.documents import DocumentPushes
from contact_center.ports import StateUnavailable


class DownStore:
    """A CobrowseStore whose every call fails as the Redis adapter does when Redis is gone."""

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise StateUnavailable("redis down")
        return fail


def _relay() -> CobrowseRelay:
    return CobrowseRelay(sio=None, hub=None, store=DownStore(), secret="s")  # type: ignore[arg-type]


CUSTOMER = {"room": 7, "customer_id": 3, "visitor": "visitor_down_0001"}


async def test_the_customers_requests_answer_unavailable() -> None:
    relay = _relay()
    piece = {"session_id": "a" * 24, "seq": 0, "data": json.dumps([{"type": 4}])}
    for ack in (
        await relay.customer_events("sid1", CUSTOMER, piece),
        await relay.customer_join("sid1", CUSTOMER, {"code": "123456"}, "10.0.0.1"),
    ):
        assert ack["ok"] is False and ack["error"]["code"] == "unavailable" and ack["error"]["retry_after"] > 0, ack


async def test_a_document_event_answers_unavailable_and_a_timer_gives_up() -> None:
    from contact_center.cobrowse import _acked

    pushes = DocumentPushes(hub=None, secret="s", store=DownStore())  # type: ignore[arg-type]

    async def run() -> dict[str, Any]:
        return await pushes.customer_event(CUSTOMER, {"push_id": "p" * 24, "event": "opened"})

    ack = await _acked(run)
    assert ack["error"]["code"] == "unavailable"
    relay = _relay()
    relay._timer("s" * 24, 0.01, lambda: relay._no_answer("s" * 24, 7))
    await asyncio.sleep(0.1)
    assert not relay._timers  # fired, failed, logged; nothing left behind
    await relay.customer_gone("sid1", CUSTOMER)  # a socket that never recorded: nothing to ask
