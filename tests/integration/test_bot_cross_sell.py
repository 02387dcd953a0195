"""Issue 18: the bot's cross-sell after an order confirmed on chat, through the hub's real API (the bot's client and
``bot/actions/cross_sell.py`` run here; they need no rasa_sdk). Only where the shop's setting allows it, only on
a chat channel and the first order of the conversation, never a product in the order, never a declined one; the
offer is recorded as offered, so the supervisor's figures count it."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import pytest
from aiohttp.test_utils import TestClient

from bot.actions.cross_sell import maybe_cross_sell
from bot.actions.hub import HubClient, close_sessions
from bot.actions.shop import cross_sell_offer, cross_sell_text
from contact_center.app import create_app
from contact_center.settings import Settings
from crm_store.db import Database
from crm_store.demo import seed_demo

NOW = datetime(2026, 11, 23, 10, tzinfo=timezone.utc)
TOKEN = "test-service-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_the_offer_and_its_words() -> None:
    view = {"offers": [{"source": "rule", "title": "10 % off", "sku": None},
                       {"source": "association", "title": "Suggest Merino Wool Socks", "sku": "SCK-WOOL"},
                       {"source": "association", "title": "Suggest Sport Socks (5-pack)", "sku": "SCK-SPORT"}]}
    assert cross_sell_offer(view, ["SNK-TRAIL"])["sku"] == "SCK-WOOL"
    assert cross_sell_offer(view, ["sck-wool"])["sku"] == "SCK-SPORT"  # never what was just ordered
    assert cross_sell_offer({"offers": [view["offers"][0]]}, []) is None  # rules are for agents
    assert cross_sell_text(view["offers"][1], "Trail Sneakers") == (
        "By the way, customers who buy the Trail Sneakers often add the Merino Wool Socks. "
        "If you'd like one too, just say \u201cI'd like the Merino Wool Socks\u201d.")


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: Any) -> AsyncIterator[TestClient]:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/cc.db")
    await db.create_all()
    await seed_demo(db, customers=300, today=NOW.date())
    await db.dispose()
    settings = Settings(database_url=db.url, service_tokens=(TOKEN,), demo_data=False, auto_migrate=False)
    c = await aiohttp_client(create_app(settings, clock=lambda: NOW))
    yield c
    await close_sessions()


async def test_cross_sell_through_the_hub(client: TestClient) -> None:
    assert (await client.post("/api/evaluation/recompute", json={"what": "all"}, headers=AUTH)).status == 200
    hub = HubClient(str(client.make_url("")), TOKEN)
    # a customer the hub has an association suggestion for
    cid, offer = None, None
    for candidate in range(1, 301):
        view = await hub.customer_value(candidate)
        offer = cross_sell_offer(view, [])
        if offer is not None:
            cid = candidate
            break
    assert cid is not None and offer is not None
    kw: dict[str, Any] = {"customer_id": cid, "ordered_skus": ["NOT-IN-THE-SHOP"], "product_name": "Trail Sneakers",
                          "conversation_id": None}
    # off by default
    assert (await hub.evaluation_settings())["bot_cross_sell"] is False
    assert await maybe_cross_sell(hub, **kw) is None
    r = await client.put("/api/evaluation/settings", json={"bot_cross_sell": True}, headers=AUTH)
    assert r.status == 200 and (await r.json())["settings"]["bot_cross_sell"] is True
    assert (await client.put("/api/evaluation/settings", json={"bot_cross_sell": "yes"}, headers=AUTH)).status == 400
    # not on the phone, not after a second order of the conversation
    assert await maybe_cross_sell(hub, **kw, channel="voice") is None
    assert await maybe_cross_sell(hub, **kw, first_order=False) is None
    said = await maybe_cross_sell(hub, **kw, channel="chat")
    assert said is not None and said["sku"] == offer["sku"] and "customers who buy the Trail Sneakers" in said["text"]
    stats = (await (await client.get("/api/offers/stats", headers=AUTH)).json())["stats"]
    assert any(s["source"] == "association" and s["offered"] == 1 for s in stats), stats
    # the customer declined it (an agent marked it): never offered again
    r = await client.post(f"/api/customers/{cid}/offers", json={"outcome": "declined", "source": "association",
                                                                 "sku": offer["sku"], "title": offer["title"]}, headers=AUTH)
    assert r.status == 201
    again = await maybe_cross_sell(hub, **kw)
    assert again is None or again["sku"] != offer["sku"]
