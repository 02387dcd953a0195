"""An email's sanitised HTML for the console: only its agent (supervisors: any) reads it, sandboxed, remote images off until asked.

``GET /console/conversations/{id}/messages/{seq}/html`` (``contact_center/console_email.py``) on a real app
(SQLite, the file media store). The conversation and its messages are written with the repositories, as the
email ingest leaves them: the message's ``channel`` attachment carries ``html_key``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from contact_center.app import create_app
from contact_center.keys import DB_KEY
from contact_center.media_routes import MEDIA_KEY
from contact_center.settings import Settings
from crm_store.models import Customer
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import conversations as conversations_repo

HTML = b'<div style="color:#123"><p>Hello <b>team</b></p><img src="https://tracker.example/p.gif"></div>'
CSP = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:"
CSP_IMAGES = "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data: https: http:"
PASSWORD = "pw-for-tests-123"


@dataclass
class Hub:
    base: str
    conv_id: int  # assigned to ann: seq 1 with HTML, seq 2 without, seq 3 whose HTML is not in the store
    other_id: int  # assigned to bob


@pytest.fixture
async def hub(tmp_path) -> AsyncIterator[Hub]:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/e.db", service_tokens=("t",), demo_data=False,
                        session_secret="s" * 32, media_dir=str(tmp_path / "media"))
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    stored = await app[MEDIA_KEY].put(HTML, "text/html", "message.html")
    async with app[DB_KEY].transaction() as s:
        ann = await agents_repo.create_agent(s, "ann", PASSWORD, display_name="Ann")
        bob = await agents_repo.create_agent(s, "bob", PASSWORD, display_name="Bob")
        await agents_repo.create_agent(s, "sue", PASSWORD, display_name="Sue", role="supervisor")
        customer = Customer(display_name="Cleo Customer")
        s.add(customer)
        await s.flush()
        assert customer.id is not None and ann.id is not None and bob.id is not None
        ids = []
        for who, thread in ((ann.id, "<t1@mail.example>"), (bob.id, "<t2@mail.example>")):
            conv = await conversations_repo.open_conversation(s, customer.id, "email", thread_key=thread,
                                                              customer_address="cleo@example.com", our_address="support@shop.example")
            conv.assigned_agent_id = who
            conv.status = "assigned"
            assert conv.id is not None
            ids.append(conv.id)
            channel = {"type": "channel", "kind": "email", "subject": "Order 10234", "html_key": stored.key, "quote_at": None}
            await conversations_repo.append_message(s, conv.id, "customer", "Hello team", attachments=[channel])
            await conversations_repo.append_message(s, conv.id, "customer", "Plain only",
                                                    attachments=[{**channel, "html_key": None}])
            await conversations_repo.append_message(s, conv.id, "customer", "Lost HTML",
                                                    attachments=[{**channel, "html_key": "0" * 64}])
    try:
        yield Hub(str(server.make_url("")).rstrip("/"), ids[0], ids[1])
    finally:
        await server.close()


async def _login(http: aiohttp.ClientSession, base: str, username: str) -> None:
    r = await http.post(f"{base}/auth/login", json={"username": username, "password": PASSWORD})
    assert r.status == 200, await r.text()


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_the_assigned_agent_reads_the_html_sandboxed(hub: Hub) -> None:
    async with _session() as http:
        await _login(http, hub.base, "ann")
        r = await http.get(f"{hub.base}/console/conversations/{hub.conv_id}/messages/1/html")
        assert r.status == 200
        assert await r.read() == HTML
        assert r.headers["Content-Type"] == "text/html; charset=utf-8"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Content-Security-Policy"] == CSP  # remote images off: the tracker is not loaded
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert "attachment" not in r.headers.get("Content-Disposition", "")


async def test_remote_images_only_when_asked(hub: Hub) -> None:
    url = f"{hub.base}/console/conversations/{hub.conv_id}/messages/1/html"
    async with _session() as http:
        await _login(http, hub.base, "ann")
        on = await http.get(f"{url}?images=1")
        assert on.status == 200 and on.headers["Content-Security-Policy"] == CSP_IMAGES
        for other in ("?images=0", "?images=true", "?images=", "?img=1"):
            r = await http.get(f"{url}{other}")
            assert r.status == 200 and r.headers["Content-Security-Policy"] == CSP, other


async def test_only_the_assigned_agent_or_a_supervisor(hub: Hub) -> None:
    path = f"/console/conversations/{hub.conv_id}/messages/1/html"
    async with aiohttp.ClientSession() as anon:
        r = await anon.get(f"{hub.base}{path}")
        assert r.status == 401
        assert "Hello" not in await r.text()
    async with _session() as bob:
        await _login(bob, hub.base, "bob")
        r = await bob.get(f"{hub.base}{path}")
        assert r.status == 403
        assert "Hello" not in await r.text()
        assert (await bob.get(f"{hub.base}/console/conversations/{hub.other_id}/messages/1/html")).status == 200
    async with _session() as sue:
        await _login(sue, hub.base, "sue")
        for conv_id in (hub.conv_id, hub.other_id):
            r = await sue.get(f"{hub.base}/console/conversations/{conv_id}/messages/1/html")
            assert r.status == 200 and await r.read() == HTML
    async with _session() as ann:
        await _login(ann, hub.base, "ann")
        assert (await ann.post(f"{hub.base}/auth/logout")).status == 200
        assert (await ann.get(f"{hub.base}{path}")).status == 401  # a logged-out session reads nothing


async def test_not_found(hub: Hub) -> None:
    async with _session() as http:
        await _login(http, hub.base, "ann")
        base = f"{hub.base}/console/conversations"
        assert (await http.get(f"{base}/{hub.conv_id}/messages/2/html")).status == 404  # plain text only
        assert (await http.get(f"{base}/{hub.conv_id}/messages/3/html")).status == 404  # HTML not in the store
        assert (await http.get(f"{base}/{hub.conv_id}/messages/99/html")).status == 404
        assert (await http.get(f"{base}/999999/messages/1/html")).status == 404
        assert (await http.get(f"{base}/abc/messages/1/html")).status == 404
        assert (await http.get(f"{base}/{hub.conv_id}/messages/-1/html")).status == 404


async def test_the_messages_own_pictures_show_inline_and_nothing_else_is_fetched(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """cid: pictures become data: URLs in the served HTML (the sandbox loads nothing, not even from the hub);
    an SVG or an unknown cid stays unresolved."""
    import base64

    from contact_center.console_email import inline_cids
    from integrations.media.files import FileMediaStore

    media = FileMediaStore(str(tmp_path / "m"))
    picture = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    encoded = base64.b64encode(picture).decode()
    png = await media.put(picture, "image/png", "logo.png")
    svg = await media.put(b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "image/svg+xml", "x.svg")
    html = b'<p><img src="cid:logo@m"> <img src=\'cid:vec@m\'> <img src="cid:gone@m"></p>'
    out = (await inline_cids(html, {"logo@m": f"/media/{png.key}", "vec@m": f"/media/{svg.key}"}, media)).decode()
    assert f'src="data:image/png;base64,{encoded}"' in out
    assert "src='cid:vec@m'" in out and 'src="cid:gone@m"' in out  # never an SVG; unknown ones left alone
