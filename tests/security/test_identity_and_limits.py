"""The widget identity token (contact_center/identity.py) and the customer rate limits shared across sockets and
hub processes (contact_center/rate_limits.py, CustomerNamespace): units, then through a running hub."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any, AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from contact_center.app import create_app
from contact_center.identity import DEV_PATH, IdentityError, IdentityVerifier, add_identity_routes, sign, verifier_for
from contact_center.keys import SIO_KEY
from contact_center.rate_limits import MemoryRateLimiter, RedisRateLimiter, limiter_for, new_conversation_limit
from contact_center.realtime import CustomerNamespace
from contact_center.settings import Settings
from tests.sio_helpers import Inbox, sio_client

SECRET = "shop-secret-0123456789abcdef"


class Clock:
    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- the token -------------------------------------------------------------------------------------------


def test_a_token_made_as_the_docs_say_verifies() -> None:
    """The documented recipe (docs/security.md), written out by hand, is what the hub accepts."""
    clock = Clock()
    payload = json.dumps({"customer_id": 42, "email": "ada@example.com", "exp": int(clock.now) + 600}).encode()
    body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
    mac = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).digest()
    token = f"{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    ident = IdentityVerifier(SECRET.encode(), clock=clock).verify(token)
    assert (ident.customer_id, ident.email, ident.expires_at) == (42, "ada@example.com", int(clock.now) + 600)
    assert IdentityVerifier(SECRET.encode(), clock=clock).verify(sign(SECRET, 7, now=clock.now)).customer_id == 7


@pytest.mark.parametrize("token, code", [
    ("", "identity_invalid"), ("abc", "identity_invalid"), ("a.b.c", "identity_invalid"), (17, "identity_invalid"),
    ("x" * 5000, "identity_invalid"), ("e30.!!!", "identity_invalid"),
])
def test_malformed_tokens_are_invalid(token: Any, code: str) -> None:
    with pytest.raises(IdentityError) as err:
        IdentityVerifier(SECRET.encode()).verify(token)
    assert err.value.code == code


def test_signature_expiry_and_payload_are_all_checked() -> None:
    clock = Clock()
    v = IdentityVerifier(SECRET.encode(), clock=clock)
    token = sign(SECRET, 5, "e@example.com", expires_in=60, now=clock.now)
    with pytest.raises(IdentityError) as wrong_key:
        IdentityVerifier(b"another secret", clock=clock).verify(token)
    assert wrong_key.value.code == "identity_invalid"
    clock.now += 60  # at exp: refused
    with pytest.raises(IdentityError) as expired:
        v.verify(token)
    assert expired.value.code == "identity_expired"
    clock.now -= 60

    def signed(payload: dict[str, Any]) -> str:
        body = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
        mac = hmac.new(SECRET.encode(), body.encode(), hashlib.sha256).digest()
        return f"{body}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"

    exp = int(clock.now) + 60
    for payload in ({"customer_id": "5", "exp": exp}, {"customer_id": True, "exp": exp}, {"customer_id": 0, "exp": exp},
                    {"customer_id": 5}, {"customer_id": 5, "exp": "soon"}, {"customer_id": 5, "exp": exp, "email": 3},
                    {"customer_id": 5, "exp": exp + 365 * 86400}, [5, exp]):
        with pytest.raises(IdentityError) as bad:
            v.verify(signed(payload))  # type: ignore[arg-type]
        assert bad.value.code == "identity_invalid", payload
    with pytest.raises(IdentityError) as off:
        IdentityVerifier(None).verify(token)
    assert off.value.code == "identity_unavailable"


def test_the_dev_route_exists_only_in_demo_mode_without_a_real_secret() -> None:
    demo = verifier_for(Settings(demo_data=True, session_secret="s" * 32), env={})
    assert demo.enabled and demo.dev
    real = verifier_for(Settings(demo_data=True, session_secret="s" * 32, extra={"WIDGET_IDENTITY_SECRET": SECRET}), env={})
    assert real.enabled and not real.dev and real.secret == SECRET.encode()
    assert verifier_for(Settings(demo_data=True, session_secret="s" * 32), env={"WIDGET_IDENTITY_SECRET": SECRET}).dev is False
    production = verifier_for(Settings(demo_data=False, session_secret="s" * 32), env={})
    assert not production.enabled and not production.dev
    for verifier, mounted in ((demo, True), (real, False), (production, False)):
        app = web.Application()
        add_identity_routes(app, verifier)
        assert any(getattr(r.resource, "canonical", "") == DEV_PATH for r in app.router.routes()) is mounted


# --- the limiters ----------------------------------------------------------------------------------------


async def test_the_memory_limiter_is_a_token_bucket() -> None:
    lim = MemoryRateLimiter()
    assert [await lim.take("k", 3, 1.0, 100.0) for _ in range(4)] == [0.0, 0.0, 0.0, 1.0]
    assert await lim.take("k", 3, 1.0, 100.5) == pytest.approx(0.5)
    assert await lim.take("k", 3, 1.0, 101.0) == 0.0
    assert await lim.take("other", 3, 1.0, 101.0) == 0.0
    assert new_conversation_limit({}) == 10 and new_conversation_limit({"WEBCHAT_NEW_CONVERSATIONS_PER_MINUTE": "0"}) == 0


async def test_the_redis_limiter_is_shared_by_two_processes_clients() -> None:
    import redis.asyncio as aioredis

    prefix = f"cc:{{test-{uuid.uuid4().hex[:8]}}}:"
    a, b = aioredis.Redis.from_url("redis://127.0.0.1:6379/0"), aioredis.Redis.from_url("redis://127.0.0.1:6379/0")
    try:
        one, two = RedisRateLimiter(a, prefix), RedisRateLimiter(b, prefix)  # as two hub processes would
        waits = [await (one if i % 2 else two).take("visitor:x", 4, 2.0, 500.0) for i in range(5)]
        assert waits[:4] == [0.0] * 4 and waits[4] == pytest.approx(0.5)
        assert await one.take("visitor:x", 4, 2.0, 500.5) == 0.0
        ttl = await a.pttl(prefix + "ratelimit:visitor:x")
        assert 0 < ttl <= 3000  # forgotten once it would be full again
    finally:
        keys = [k async for k in a.scan_iter(match=prefix + "*")]
        if keys:
            await a.delete(*keys)
        await a.aclose()
        await b.aclose()


def test_the_limiter_follows_the_state_store() -> None:
    class FakeRedisStore:
        prefix = "cc:{hub}:"

        class redis:  # noqa: N801 - only register_script is called
            @staticmethod
            def register_script(body: str) -> Any:
                return object()

    assert isinstance(limiter_for(FakeRedisStore()), RedisRateLimiter)
    assert isinstance(limiter_for(object()), MemoryRateLimiter)


# --- through a running hub -------------------------------------------------------------------------------


@pytest.fixture
async def hub(tmp_path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, CustomerNamespace]]:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("WEBCHAT_NEW_CONVERSATIONS_PER_MINUTE", raising=False)
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/limits.db", service_tokens=("t",), demo_data=False,
                        session_secret="s" * 32, media_dir=str(tmp_path / "media"))
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        ns = app[SIO_KEY].namespace_handlers["/customer"]
        assert isinstance(ns, CustomerNamespace)
        yield str(server.make_url("")).rstrip("/"), ns
    finally:
        await server.close()


async def test_new_conversations_per_address_are_limited_with_retry_after(hub: tuple[str, CustomerNamespace]) -> None:
    base, ns = hub
    assert ns.new_conversations_per_minute == 10  # the default
    ns.new_conversations_per_minute = 3
    clock = Clock()
    ns.clock = clock
    sockets = []
    try:
        acks = []
        for i in range(5):  # five "visitors" from one address, each opening a chat
            inbox = Inbox()
            sio = sio_client(inbox, "/customer", ("session",))
            await sio.connect(base, namespaces=["/customer"], auth={"visitor_id": f"visitor_flood_{i:04d}"}, transports=["websocket"])
            await inbox.wait("session")
            sockets.append(sio)
            acks.append(await sio.call("message", {"client_msg_id": "m1", "text": "hi"}, namespace="/customer", timeout=10))
        assert [a["ok"] for a in acks] == [True, True, True, False, False]
        refused = acks[3]["error"]
        assert refused["code"] == "rate_limited" and refused["retry_after"] == 20.0 and "new chats" in refused["message"]
        # a visitor whose chat is open writes on: only opening a conversation counts
        more = await sockets[0].call("message", {"client_msg_id": "m2", "text": "and more"}, namespace="/customer", timeout=10)
        assert more["ok"]
        clock.now += 20
        assert (await sockets[3].call("message", {"client_msg_id": "m1", "text": "hi"}, namespace="/customer", timeout=10))["ok"]
    finally:
        for sio in sockets:
            await sio.disconnect()
