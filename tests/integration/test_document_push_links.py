"""Document push beyond the library and the web (issue 17): an agent's own file, the same push as a link by SMS
(or WhatsApp, email) and as a text to a caller's number, and removing a document from the library."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

from contact_center.app import CHANNELS_KEY
from contact_center.channels import EMAIL, SMS
from contact_center.documents import DOCUMENTS_KEY
from contact_center.media_routes import MEDIA_KEY
from contact_center.ports import DeliveryReport, OutboundMessage
from crm_store.db import Database
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import conversations as conversations_repo
from crm_store.repositories import customers as customers_repo
from crm_store.repositories import documents as documents_repo
from crm_store.repositories import interactions as interactions_repo
from tests.integration.test_cobrowse_relay import CUSTOMER_EVENTS, _agent
from tests.integration.test_hub_chat import _APPS, PASSWORD, _login, hub  # noqa: F401 - the hub fixture
from tests.sio_helpers import Inbox, sio_client

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
LINK = re.compile(r"https://hub\.example(/documents/push/[A-Za-z0-9_-]+\?exp=\d+&sig=[0-9a-f]+)")


class RecordingSms:
    """The SMS channel's adapter for these tests: keeps what it is asked to deliver."""

    def __init__(self) -> None:
        self.sent: list[OutboundMessage] = []

    async def deliver(self, message: OutboundMessage) -> DeliveryReport:
        self.sent.append(message)
        return DeliveryReport("sent", provider_id=f"{id(self)}-{len(self.sent)}")


async def _upload(base: str, cookie: str, path: str, data: bytes, name: str) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{base}{path}", data=form, headers={"Cookie": cookie})
        return r.status, await r.json()


async def _conversation(db: Database, username: str, channel: str, kind: str, address: str, thread: str | None = None) -> tuple[int, int]:
    async with db.transaction() as s:
        agent = await agents_repo.get_agent_by_username(s, username)
        assert agent is not None
        res = await customers_repo.resolve_identity(s, kind, address, display_name="Sam Sender")
        conv = await conversations_repo.open_conversation(s, int(res.customer.id), channel, thread_key=thread,
                                                          customer_address=address, our_address="+15005550006")
        conv.status, conv.assigned_agent_id = "assigned", agent.id
        await s.flush()
        return int(conv.id), int(res.customer.id)


async def _timeline(db: Database, customer_id: int) -> list[Any]:
    async with db.session() as s:
        page = await interactions_repo.timeline(s, customer_id, kinds=["document_push"])
    return list(page.items)


async def _wait(pred: Any, timeout: float = 5.0) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        got = pred()
        if got:
            return got
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.05)


async def test_an_agents_own_file_is_pushed_like_a_library_document(hub: str, db: Database) -> None:  # noqa: F811
    alice_cookie, bob_cookie = await _login(hub, "alice"), await _login(hub, "bob")
    status, body = await _upload(hub, alice_cookie, "/console/documents/own", b"<html><script>x</script>", "offer.png")
    assert status == 415 and body["error"] == "unsupported_media", body  # sniffed: not an image whatever its name
    status, body = await _upload(hub, alice_cookie, "/console/documents/own", PNG, "my_chart.png")
    assert status == 201 and body["content_type"] == "image/png", body
    upload_id, sha = body["upload_id"], body["sha256"]
    _, bobs = await _upload(hub, bob_cookie, "/console/documents/own", PNG, "bob.png")
    async with aiohttp.ClientSession() as http:
        r = await http.post(f"{hub}/console/documents/own", data=b"x")
        assert r.status == 401
        listed = await (await http.get(f"{hub}/console/documents", headers={"Cookie": alice_cookie})).json()
    assert all(d["name"] != "my_chart.png" for d in listed["documents"])  # not in the library

    alice, a_in = await _agent(hub, "alice")
    assert (await alice.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]
    inbox = Inbox()
    cust = sio_client(inbox, "/customer", CUSTOMER_EVENTS + ("document",))
    await cust.connect(hub, namespaces=["/customer"], auth={"visitor_id": "visitor_ownfile_01"}, transports=["websocket"])
    await inbox.wait("session")
    cid = int((await cust.call("message", {"client_msg_id": "m1", "text": "show me"}, namespace="/customer"))["message"]["conversation_id"])
    await a_in.wait("offer", lambda d: d["conversation_id"] == cid)
    assert (await alice.call("accept", {"conversation_id": cid}, namespace="/agent"))["ok"]

    ack = await alice.call("document_push", {"conversation_id": cid, "upload_id": bobs["upload_id"]}, namespace="/agent")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"  # another agent's upload
    ack = await alice.call("document_push", {"conversation_id": cid, "upload_id": upload_id}, namespace="/agent")
    assert ack["ok"] and ack["push"]["name"] == "my_chart.png" and ack["push"]["via"] == "web", ack
    got = await inbox.wait("document")
    async with aiohttp.ClientSession() as http:
        assert (await http.get(f"{hub}{got['url']}")).status == 403  # the web link still needs the visitor id
        r = await http.get(f"{hub}{got['url']}", headers={"X-CC-Visitor": "visitor_ownfile_01"})
        assert r.status == 200 and await r.read() == PNG
    customer_id = await _customer_of(db, cid)
    rows = await _timeline(db, customer_id)
    assert [r.payload["event"] for r in rows] == ["pushed"]
    assert rows[0].payload["source"] == "agent_file" and rows[0].payload["sha256"] == sha and rows[0].agent_id is not None
    await alice.disconnect()
    await cust.disconnect()


async def _customer_of(db: Database, conversation_id: int) -> int:
    from crm_store.models import Conversation

    async with db.session() as s:
        conv = await s.get(Conversation, conversation_id)
        assert conv is not None
        return int(conv.customer_id)


async def test_the_push_goes_as_a_link_by_sms_and_as_a_text_on_a_call(hub: str, db: Database) -> None:  # noqa: F811
    app = _APPS[-1]
    sms = RecordingSms()
    app[CHANNELS_KEY].register(SMS, sms)
    stored = await app[MEDIA_KEY].put(PDF, "application/pdf", "prices.pdf")
    async with db.transaction() as s:
        doc = await documents_repo.add_document(s, "prices.pdf", "application/pdf", stored.size, stored.key, None)
    alice, _ = await _agent(hub, "alice")
    sms_id, sms_customer = await _conversation(db, "alice", "sms", "sms", "+12125550160")
    call_id, call_customer = await _conversation(db, "alice", "phone", "phone", "+12125550161", thread="CA" + "5" * 32)

    # no public address: a link cannot leave the web
    ack = await alice.call("document_push", {"conversation_id": sms_id, "document_id": doc.id}, namespace="/agent")
    assert ack["ok"] is False and ack["error"]["code"] == "conflict", ack
    app[DOCUMENTS_KEY].base_url = "https://hub.example"

    ack = await alice.call("document_push", {"conversation_id": sms_id, "document_id": doc.id}, namespace="/agent")
    assert ack["ok"] and ack["push"]["via"] == "sms", ack
    texted = await _wait(lambda: [m for m in sms.sent if m.to_address == "+12125550160"])
    link = LINK.search(texted[0].text)
    assert link and "prices.pdf" in texted[0].text and "15 minutes" in texted[0].text, texted[0].text

    ack = await alice.call("document_push", {"conversation_id": call_id, "document_id": doc.id}, namespace="/agent")
    assert ack["ok"] and ack["push"]["via"] == "sms", ack
    on_call = await _wait(lambda: [m for m in sms.sent if m.to_address == "+12125550161"])
    assert on_call[0].from_address == "+15005550006" and LINK.search(on_call[0].text)

    async with aiohttp.ClientSession() as http:
        url = f"{hub}{link.group(1)}"
        r = await http.get(url)  # the message is the proof: no visitor id needed
        assert r.status == 200 and await r.read() == PDF and "sandbox" in r.headers["Content-Security-Policy"]
        assert (await http.get(url.replace("sig=", "sig=0"))).status == 404
        app[DOCUMENTS_KEY].clock = lambda: 10**12
        assert (await http.get(url)).status == 410
        app[DOCUMENTS_KEY].clock = __import__("time").time

    # on email the link is the agent's reply in the thread (stored in the conversation, sent by the email adapter)
    mail = RecordingSms()
    app[CHANNELS_KEY].register(EMAIL, mail)
    email_id, _ = await _conversation(db, "alice", "email", "email", "erin@example.com", thread="thread-erin")
    ack = await alice.call("document_push", {"conversation_id": email_id, "document_id": doc.id}, namespace="/agent")
    assert ack["ok"] and ack["push"]["via"] == "email", ack
    async with db.session() as s:
        sent = await conversations_repo.messages_after(s, email_id, 0)
    assert any(m.sender_kind == "agent" and LINK.search(m.body) for m in sent), [m.body for m in sent]
    mailed = await _wait(lambda: [m for m in mail.sent if m.to_address == "erin@example.com"])
    assert LINK.search(mailed[0].text)

    rows = await _timeline(db, sms_customer)
    assert sorted(r.payload["event"] for r in rows) == ["opened", "pushed"]
    assert all(r.payload["via"] == "sms" and r.payload["sha256"] == stored.key for r in rows)
    rows = await _timeline(db, call_customer)
    assert [r.payload["event"] for r in rows] == ["pushed"] and rows[0].conversation_id == call_id
    await alice.disconnect()


async def test_removing_a_document_stops_new_pushes_and_keeps_pushed_links_until_they_expire(hub: str, db: Database) -> None:  # noqa: F811
    app = _APPS[-1]
    async with db.transaction() as s:
        await agents_repo.create_agent(s, "sam", PASSWORD, display_name="Sam", role="supervisor")
    stored = await app[MEDIA_KEY].put(PNG, "image/png", "old.png")
    async with db.transaction() as s:
        doc = await documents_repo.add_document(s, "old.png", "image/png", stored.size, stored.key, None)
    alice, a_in = await _agent(hub, "alice")
    assert (await alice.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]
    inbox = Inbox()
    cust = sio_client(inbox, "/customer", CUSTOMER_EVENTS + ("document",))
    await cust.connect(hub, namespaces=["/customer"], auth={"visitor_id": "visitor_removed_01"}, transports=["websocket"])
    await inbox.wait("session")
    cid = int((await cust.call("message", {"client_msg_id": "m1", "text": "hi"}, namespace="/customer"))["message"]["conversation_id"])
    await a_in.wait("offer", lambda d: d["conversation_id"] == cid)
    assert (await alice.call("accept", {"conversation_id": cid}, namespace="/agent"))["ok"]
    assert (await alice.call("document_push", {"conversation_id": cid, "document_id": doc.id}, namespace="/agent"))["ok"]
    got = await inbox.wait("document")

    alice_cookie, sam_cookie = await _login(hub, "alice"), await _login(hub, "sam")
    async with aiohttp.ClientSession() as http:
        assert (await http.delete(f"{hub}/console/documents/{doc.id}", headers={"Cookie": alice_cookie})).status == 403
        assert (await http.delete(f"{hub}/console/documents/{doc.id}")).status == 401
        r = await http.delete(f"{hub}/console/documents/{doc.id}", headers={"Cookie": sam_cookie})
        assert r.status == 200 and (await r.json())["removed"] is True
        assert (await http.delete(f"{hub}/console/documents/{doc.id}", headers={"Cookie": sam_cookie})).status == 404
        assert (await http.delete(f"{hub}/console/documents/abc", headers={"Cookie": sam_cookie})).status == 404
        listed = await (await http.get(f"{hub}/console/documents", headers={"Cookie": alice_cookie})).json()
        assert all(d["id"] != doc.id for d in listed["documents"])
        # the link pushed before the removal still opens (until it expires)
        r = await http.get(f"{hub}{got['url']}", headers={"X-CC-Visitor": "visitor_removed_01"})
        assert r.status == 200
    ack = await alice.call("document_push", {"conversation_id": cid, "document_id": doc.id}, namespace="/agent")
    assert ack["ok"] is False and ack["error"]["code"] == "not_found"
    await alice.disconnect()
    await cust.disconnect()


async def test_an_order_of_the_customer_is_pushed_as_a_pdf_summary(hub: str, db: Database) -> None:  # noqa: F811
    from datetime import date

    from crm_store.domain.validation import LineRequest, OrderRequest
    from crm_store.services import place_order
    from tests.factories import add_product

    await add_product(db, "MUG-1", name="Blue (big) mug", price_minor=1250, stock=20)
    alice, a_in = await _agent(hub, "alice")
    assert (await alice.call("set_status", {"status": "available"}, namespace="/agent"))["ok"]
    inbox = Inbox()
    cust = sio_client(inbox, "/customer", CUSTOMER_EVENTS + ("document",))
    await cust.connect(hub, namespaces=["/customer"], auth={"visitor_id": "visitor_order_pdf_01"}, transports=["websocket"])
    await inbox.wait("session")
    cid = int((await cust.call("message", {"client_msg_id": "m1", "text": "my order?"}, namespace="/customer"))["message"]["conversation_id"])
    await a_in.wait("offer", lambda d: d["conversation_id"] == cid)
    assert (await alice.call("accept", {"conversation_id": cid}, namespace="/agent"))["ok"]
    customer_id = await _customer_of(db, cid)
    request = OrderRequest(lines=[LineRequest("MUG-1", 3)], delivery_address="Main Street 1\nBerlin", phone="+12125550170")
    mine = await place_order(db, request, today=date(2026, 12, 7), customer_id=customer_id)
    async with db.transaction() as s:
        other_customer = (await customers_repo.resolve_identity(s, "email", "other@example.com")).customer.id
    theirs = await place_order(db, OrderRequest(lines=[LineRequest("MUG-1", 1)], delivery_address="Elsewhere 2", email="other@example.com"),
                               today=date(2026, 12, 7), customer_id=int(other_customer))

    for bad, code in (({"order_id": int(theirs.view.order.id)}, "not_found"), ({"order_id": 10**9}, "not_found"), ({"order_id": "1"}, "bad_request")):
        ack = await alice.call("document_push", {"conversation_id": cid, **bad}, namespace="/agent")
        assert ack["ok"] is False and ack["error"]["code"] == code, (bad, ack)
    ack = await alice.call("document_push", {"conversation_id": cid, "order_id": int(mine.view.order.id)}, namespace="/agent")
    assert ack["ok"] and ack["push"]["name"] == f"order-{int(mine.view.order.id)}.pdf" and ack["push"]["content_type"] == "application/pdf", ack
    got = await inbox.wait("document")
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{hub}{got['url']}", headers={"X-CC-Visitor": "visitor_order_pdf_01"})
        body = await r.read()
    assert r.status == 200 and body.startswith(b"%PDF-1.4")
    assert b"3 x Blue \\(big\\) mug" in body and b"12.50 EUR each = 37.50 EUR" in body and b"Main Street 1" in body
    rows = await _timeline(db, customer_id)
    pushed = [r for r in rows if r.payload["event"] == "pushed"]
    assert pushed and pushed[0].payload["source"] == "order_summary"
    await alice.disconnect()
    await cust.disconnect()
