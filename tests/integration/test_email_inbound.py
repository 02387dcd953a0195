"""Inbound email end to end: smtplib over TCP into the real aiosmtpd server, into a real hub core.

The hub is built by ``create_app`` (SQLite and PostgreSQL); the email wiring of the composition root is
not written yet, so each test builds ``EmailIngest`` and ``SmtpServer`` around ``app[HUB_KEY]`` itself,
with the email channel registered behind a stand-in for the outbound adapter (it gives each agent
reply a Message-ID and records it with ``email_repo.record_sent``, as the real adapter does). Each test
checks what the customer's record (the customer API) and the conversation (the console's history)
show for the corpus messages of tests/fixtures/email.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
import time
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from sqlmodel import col, select

from contact_center.app import CHANNELS_KEY, create_app
from contact_center.channels import EMAIL
from contact_center.hub.service import AgentRef, HubService
from contact_center.keys import DB_KEY, HUB_KEY
from contact_center.media_routes import MEDIA_KEY, media_signer
from contact_center.ports import DeliveryReport, OutboundMessage
from contact_center.settings import Settings
from crm_store.models import Conversation, Customer, EmailMessage, Message
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import email as email_repo
from integrations.email.config import EmailConfig
from integrations.email.ingest import EmailIngest
from integrations.email.smtp_server import SmtpServer
from integrations.email.threading import sign_token, token_address

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "email"
SECRET = b"integration-test-thread-secret"
AUTH = {"Authorization": "Bearer t"}
SUPPORT, SALES = "support@shop.example", "sales@shop.example"
MAX_BYTES = 256 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def corpus(name: str, **subst: str) -> bytes:
    raw = (CORPUS / name).read_bytes()
    for key, value in subst.items():
        raw = raw.replace(f"%%{key}%%".encode(), value.encode())
    assert b"%%" not in raw, f"{name}: a placeholder is left"
    return crlf(raw)


def simple(frm: str, subject: str, text: str, *, mid: str, to: str = SUPPORT, headers: str = "") -> bytes:
    return crlf(
        f"From: {frm}\nTo: {to}\nSubject: {subject}\nDate: Mon, 3 Jun 2024 09:00:00 +0000\nMessage-ID: <{mid}>\n"
        f"{headers}MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n{text}\n".encode()
    )


class OutboundStandIn:
    """The email channel's outbound face as the core sees it: each reply gets a Message-ID of ours,
    recorded in email_messages (threading) and returned as the provider id (bounces)."""

    def __init__(self) -> None:
        self.app: Any = None
        self.sent: list[tuple[OutboundMessage, str]] = []

    async def deliver(self, message: OutboundMessage) -> DeliveryReport:
        mid = f"hub-{message.conversation_id}-{message.seq}-{len(self.sent)}@hub.shop.example"
        async with self.app[DB_KEY].transaction() as s:
            await email_repo.record_sent(
                s, mailbox=message.from_address or SUPPORT, message_id=mid, conversation_id=message.conversation_id,
                message_seq=message.seq, raw_key="", size=0, subject="Re: ...", in_reply_to=None, references=(),
            )
        self.sent.append((message, mid))
        return DeliveryReport("sent", provider_id=email_repo.provider_id(message.from_address or SUPPORT, mid))


class FailingMedia:
    """A media store that cannot keep anything (a full disk)."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.fail = inner, True

    async def put(self, data: bytes, content_type: str, name: str = "") -> Any:
        if self.fail:
            raise OSError("No space left on device")
        return await self.inner.put(data, content_type, name)

    async def get(self, key: str) -> Any:
        return await self.inner.get(key)


class Mail:
    """The hub, its SMTP server and ingest, and the look-ups a test needs."""

    def __init__(self, app: Any, base: str, ingest: EmailIngest, smtp: SmtpServer, outbound: OutboundStandIn, agent: AgentRef) -> None:
        self.app, self.base, self.ingest, self.smtp, self.outbound, self.agent = app, base, ingest, smtp, outbound, agent
        self.acks: list[tuple[Any, ...]] = []

    @property
    def hub(self) -> HubService:
        return self.app[HUB_KEY]

    # --- sending ---------------------------------------------------------------------------------

    def _sendmail(self, raw: bytes, rcpts: list[str], sender: str) -> dict[str, Any]:
        with smtplib.SMTP("127.0.0.1", self.smtp.port, timeout=30) as client:
            return dict(client.sendmail(sender, rcpts, raw))

    async def send(self, raw: bytes, rcpts: list[str] | None = None, sender: str = "customer@example.net", *, settle: bool = True) -> dict[str, Any]:
        refused = await asyncio.to_thread(self._sendmail, raw, rcpts or [SUPPORT], sender)
        if settle:
            await self.ingest.drain()
        return refused

    # --- the agent -------------------------------------------------------------------------------

    async def assign(self, conversation_id: int) -> None:
        await self.hub.agent_online(self.agent)
        await self.hub.set_status(self.agent, "available")
        for _ in range(200):
            offers = [o.conversation_id for o in await self.hub.store.offers_of(self.agent.id)]
            if conversation_id in offers:
                await self.hub.accept(self.agent, conversation_id)
                return
            if await self.hub.store.assignment_of(conversation_id) == self.agent.id:
                return
            await self.hub.route_once()
            await asyncio.sleep(0.01)
        raise AssertionError(f"conversation {conversation_id} was never offered")

    async def reply(self, conversation_id: int, text: str) -> str:
        """The agent answers; the Message-ID our reply went out with."""
        await self.assign(conversation_id)
        before = len(self.outbound.sent)
        await self.hub.reply(self.agent, conversation_id, f"r-{time.monotonic_ns()}", text)
        for _ in range(300):
            if len(self.outbound.sent) > before:
                mid = self.outbound.sent[-1][1]
                async with self.app[DB_KEY].session() as s:
                    row = (await s.exec(select(Message).where(Message.provider_id == email_repo.provider_id(SUPPORT, mid)))).first()
                if row is not None:
                    return mid
            await asyncio.sleep(0.01)
        raise AssertionError("the reply was not delivered")

    async def close(self, conversation_id: int) -> None:
        await self.assign(conversation_id)
        await self.hub.close(self.agent, conversation_id, "resolved")

    # --- what the record and the console show ------------------------------------------------------

    async def conversations(self, **where: Any) -> list[Conversation]:
        async with self.app[DB_KEY].session() as s:
            stmt = select(Conversation).where(Conversation.channel == "email").order_by(col(Conversation.id))
            for k, v in where.items():
                stmt = stmt.where(getattr(Conversation, k) == v)
            return list((await s.exec(stmt)).all())

    async def conversation(self, conversation_id: int) -> Conversation:
        async with self.app[DB_KEY].session() as s:
            conv = await s.get(Conversation, conversation_id)
        assert conv is not None
        return conv

    async def customer(self, customer_id: int) -> Customer:
        async with self.app[DB_KEY].session() as s:
            c = await s.get(Customer, customer_id)
        assert c is not None
        return c

    async def console(self, conversation_id: int) -> list[dict[str, Any]]:
        """The conversation as the agent's console gets it (history with the message's extra)."""
        return await self.hub.history(conversation_id, 0, for_customer=False)

    async def record(self, customer_id: int) -> dict[str, Any]:
        """The customer's record (customer 360) over the HTTP API."""
        async with aiohttp.ClientSession() as http:
            r = await http.get(f"{self.base}/api/customers/{customer_id}", headers=AUTH)
            assert r.status == 200, await r.text()
            return dict(await r.json())

    async def rows(self) -> list[EmailMessage]:
        async with self.app[DB_KEY].session() as s:
            return list((await s.exec(select(EmailMessage).order_by(col(EmailMessage.id)))).all())

    async def only_conversation_of(self, address: str) -> Conversation:
        convs = await self.conversations(customer_address=address)
        assert len(convs) == 1, [(c.id, c.thread_key) for c in convs]
        return convs[0]

    async def new_thread(self, frm: str, text: str, mid: str, subject: str = "A question") -> Conversation:
        await self.send(simple(frm, subject, text, mid=mid))
        return await self.only_conversation_of(frm.rsplit("<", 1)[-1].strip(">").lower())


async def _truncate(url: str) -> None:
    from crm_store.db import Database
    from tests.conftest import _truncate_pg

    db = Database(url)
    try:
        await _truncate_pg(db)
    finally:
        await db.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
async def mail(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Mail]:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        await _truncate(url)
    else:
        url = f"sqlite+aiosqlite:///{tmp_path}/email.db"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = Settings(
        database_url=url, service_tokens=("t",), demo_data=False, session_secret="s" * 32, media_dir=str(tmp_path / "media"),
        public_base_url=base, host="127.0.0.1", port=port, wrap_up_seconds=0, bot_channels=(),
    )
    app = create_app(settings)
    outbound = OutboundStandIn()
    outbound.app = app
    app[CHANNELS_KEY].register(EMAIL, outbound)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    async with app[DB_KEY].transaction() as s:
        alice = await agents_repo.create_agent(s, "alice", "pw-alice-123", display_name="Alice", capacity={"email": 20})
        await agents_repo.create_queue(s, "support", channels=["email"])
        await agents_repo.create_queue(s, "sales", channels=["email"])
    await app[HUB_KEY].load_queues()
    assert alice.id is not None
    config = EmailConfig(addresses={SUPPORT: "support", SALES: "sales"}, smtp_listen=("127.0.0.1", 0), max_bytes=MAX_BYTES, ack=True)
    m: Mail
    async def ack(*args: Any) -> None:
        m.acks.append(args)
    ingest = EmailIngest(lambda: app[DB_KEY], app[HUB_KEY], app[MEDIA_KEY], config, SECRET, ack, authserv_id="mx.shop.example")
    smtp = SmtpServer(config, ingest)
    await smtp.start()
    ingest.start()
    m = Mail(app, base, ingest, smtp, outbound, AgentRef(alice.id, "alice", "Alice", "agent"))
    try:
        yield m
    finally:
        await smtp.stop()
        await ingest.stop()
        await server.close()


# --- new threads, replies, threading rules ---------------------------------------------------------------------


async def test_a_gmail_message_opens_a_queued_conversation_on_the_senders_record(mail: Mail) -> None:
    await mail.send(corpus("gmail_new.eml"), sender="ann.example@gmail.com")
    conv = await mail.only_conversation_of("ann.example@gmail.com")
    assert conv.status == "queued" and conv.thread_key == "CAE9x7Qp1dfG3=Zk2xJ4a8nWq0w@mail.gmail.com"
    assert conv.subject == "Where is my order 10234?"  # the email's subject titles the conversation
    assert conv.our_address == SUPPORT
    customer = await mail.customer(conv.customer_id)
    assert customer.display_name == "Ann Example"
    record = await mail.record(conv.customer_id)
    points = {(p["kind"], p["value"]): p["verified"] for p in record["contact_points"]}
    assert points == {("email", "ann.example@gmail.com"): True}
    assert any("Email thread started" in i["summary"] and "order 10234" in i["summary"] for i in record["timeline"]["items"])
    (msg,) = await mail.console(conv.id)
    assert msg["sender_kind"] == "customer" and msg["text"].startswith("Hello,\n\nI ordered two red t-shirts")
    extra = msg["extra"]
    assert extra["kind"] == "email" and extra["subject"] == "Where is my order 10234?"
    assert extra["from"] == {"address": "ann.example@gmail.com", "name": "Ann Example"} and extra["to"] == [SUPPORT]
    assert (extra["spoofed"], extra["auth"], extra["auto"], extra["quote_at"], extra["omitted"]) == (False, "pass", None, None, [])
    html = await mail.app[MEDIA_KEY].get(extra["html_key"])
    assert html is not None and html[0].content_type == "text/html" and b"<div" in html[1]
    raw = await mail.app[MEDIA_KEY].get(extra["raw_key"])
    assert raw is not None and raw[0].content_type == "message/rfc822" and raw[1].startswith(b"Return-Path: <ann.example@gmail.com>\r\n")
    (row,) = await mail.rows()
    assert (row.state, row.conversation_id, row.message_seq, row.source, row.mailbox) == ("stored", conv.id, 1, "smtp", SUPPORT)
    assert mail.acks == [(conv.id, "ann.example@gmail.com", "Where is my order 10234?", "CAE9x7Qp1dfG3=Zk2xJ4a8nWq0w@mail.gmail.com", SUPPORT)]


async def test_the_same_message_id_twice_is_one_message(mail: Mail) -> None:
    raw = corpus("gmail_new.eml")
    await mail.send(raw)
    await mail.send(raw)  # the sender retried after a lost 250
    conv = await mail.only_conversation_of("ann.example@gmail.com")
    assert len(await mail.console(conv.id)) == 1 and len(await mail.rows()) == 1 and len(mail.acks) == 1


async def test_two_fetches_at_once_give_one_conversation(mail: Mail) -> None:
    """The IMAP copy (another trace header) and the SMTP delivery of one message, taken at the same moment."""
    raw = corpus("gmail_new.eml")
    imap_copy = b"Received: from mx.shop.example by imap.shop.example; Mon, 3 Jun 2024 07:02:01 +0000\r\n" + raw
    results = await asyncio.gather(
        mail.ingest.take(imap_copy, SUPPORT, "imap"), mail.ingest.take(raw, SUPPORT, "smtp"),
        asyncio.to_thread(mail._sendmail, raw, [SUPPORT], "ann.example@gmail.com"),
    )
    await mail.ingest.drain()
    created = [r[1] for r in results[:2]]
    assert created.count(True) <= 1
    conv = await mail.only_conversation_of("ann.example@gmail.com")
    assert len(await mail.console(conv.id)) == 1 and len(await mail.rows()) == 1


async def test_a_gmail_reply_threads_by_the_address_token(mail: Mail) -> None:
    await mail.send(corpus("gmail_new.eml"))
    conv = await mail.only_conversation_of("ann.example@gmail.com")
    ours = await mail.reply(conv.id, "Your order left on Friday; the parcel number is 00340434161094042557.")
    token = sign_token(conv.id, SECRET)
    await mail.send(corpus("gmail_reply.eml", TOKEN=token, OUR_MSGID=ours, ROOT_MSGID="CAE9x7Qp1dfG3=Zk2xJ4a8nWq0w@mail.gmail.com"),
                    rcpts=[token_address(SUPPORT, token)])
    assert [c.id for c in await mail.conversations()] == [conv.id]
    history = await mail.console(conv.id)
    assert [m["sender_kind"] for m in history] == ["customer", "agent", "customer"]
    reply = history[2]
    assert reply["extra"]["quote_at"] is not None
    assert reply["text"][reply["extra"]["quote_at"]:].startswith("On Mon, 3 Jun 2024 at 10:02, Shop Support")
    assert reply["text"][: reply["extra"]["quote_at"]].strip().endswith("if I'm not home?\n\nAnn")
    rows = await mail.rows()
    assert rows[-1].detail["threaded_by"] == "address_token" and rows[-1].conversation_id == conv.id
    assert len(mail.acks) == 1  # no acknowledgement of a reply


async def test_an_outlook_desktop_reply_with_a_rewritten_message_id_threads_by_the_token(mail: Mail) -> None:
    conv = await mail.new_thread("Jürgen Müller <Juergen.Mueller@firma-mueller.de>", "Bitte an die Firmenadresse liefern.", "j-1@firma-mueller.de")
    await mail.reply(conv.id, "An welche Adresse dürfen wir liefern?")
    token = sign_token(conv.id, SECRET)
    await mail.send(corpus("outlook_desktop_reply.eml", TOKEN=token), rcpts=[token_address(SUPPORT, token)])
    assert [c.id for c in await mail.conversations()] == [conv.id]
    last = (await mail.console(conv.id))[-1]
    assert last["extra"]["subject"] == f"AW: Re: Lieferung an die Firmenadresse [#{token}]"
    assert last["text"][last["extra"]["quote_at"]:].startswith("Von: Shop Support")
    assert "Müller GmbH, Hauptstraße 5" in last["text"]


async def test_an_outlook_web_reply_threads_by_references(mail: Mail) -> None:
    conv = await mail.new_thread("priya.raman@outlook.com", "Where is 10240?", "p-1@outlook.com")
    ours = await mail.reply(conv.id, "Your order 10240 is on its way.")
    await mail.send(corpus("outlook_web_reply.eml", OUR_MSGID=ours))
    assert [c.id for c in await mail.conversations()] == [conv.id]
    last = (await mail.console(conv.id))[-1]
    assert last["text"][last["extra"]["quote_at"]:].startswith("________________________________\nFrom: Shop Support")
    assert (await mail.rows())[-1].detail["threaded_by"] == "references"


async def test_an_apple_mail_reply_threads_by_in_reply_to(mail: Mail) -> None:
    conv = await mail.new_thread("claire.dupont@icloud.com", "Je veux retourner le pull.", "c-1@icloud.com")
    ours = await mail.reply(conv.id, "Vous pouvez renvoyer le pull avec l'étiquette jointe.")
    await mail.send(corpus("apple_mail_reply.eml", OUR_MSGID=ours, ROOT_MSGID="c-1@icloud.com"))
    assert [c.id for c in await mail.conversations()] == [conv.id]
    last = (await mail.console(conv.id))[-1]
    assert last["text"].startswith("Merci beaucoup !") and (await mail.rows())[-1].detail["threaded_by"] == "in_reply_to"


async def test_a_token_in_the_subject_alone_threads_but_the_subject_words_alone_never_do(mail: Mail) -> None:
    conv = await mail.new_thread("kim@example.com", "My order 10400", "k-1@example.com", subject="Order 10400")
    token = sign_token(conv.id, SECRET)
    await mail.send(simple("kim@example.com", f"Re: Order 10400 [#{token}]", "Any news?", mid="k-2@example.com"))
    await mail.send(simple("kim@example.com", "Re: Order 10400", "Hello again?", mid="k-3@example.com"))
    forged = f"{conv.id}-0000000000"
    await mail.send(simple("kim@example.com", f"Re: Order 10400 [#{forged}]", "Forged token", mid="k-4@example.com"))
    convs = await mail.conversations(customer_address="kim@example.com")
    assert len(convs) == 3  # the token's reply joined; the bare subject and the forged token opened their own
    assert [m["text"] for m in await mail.console(conv.id)] == ["My order 10400", "Any news?"]


async def test_a_reply_to_a_closed_conversation_reopens_it(mail: Mail) -> None:
    conv = await mail.new_thread("rita@example.com", "Is 10401 shipped?", "r-1@example.com")
    ours = await mail.reply(conv.id, "Yes, yesterday.")
    await mail.close(conv.id)
    assert (await mail.conversation(conv.id)).status == "closed"
    await mail.send(simple("rita@example.com", "Re: Is 10401 shipped?", "It has not arrived.", mid="r-2@example.com",
                           headers=f"In-Reply-To: <{ours}>\nReferences: <r-1@example.com> <{ours}>\n"))
    assert [c.id for c in await mail.conversations()] == [conv.id]
    assert (await mail.conversation(conv.id)).status == "queued"


# --- automatic mail -----------------------------------------------------------------------------------------------


async def test_an_exchange_out_of_office_is_filed_and_does_not_reopen(mail: Mail) -> None:
    conv = await mail.new_thread("tom.baker@bakerandsons.example", "Order 10262?", "t-1@bakerandsons.example")
    ours = await mail.reply(conv.id, "Your order 10262 has shipped.")
    await mail.close(conv.id)
    await mail.send(corpus("exchange_ooo.eml", OUR_MSGID=ours))
    assert [c.id for c in await mail.conversations()] == [conv.id]
    assert (await mail.conversation(conv.id)).status == "closed"
    last = (await mail.console(conv.id))[-1]
    assert last["extra"]["auto"] == "out_of_office" and "out of the office" in last["text"]
    assert await mail.hub.store.waiting() == []
    assert len(mail.acks) == 1  # the first message only


async def test_a_gmail_vacation_reply_is_filed_without_requeueing(mail: Mail) -> None:
    conv = await mail.new_thread("lena.vogel@gmail.com", "Bestellung 10263", "l-1@gmail.com")
    ours = await mail.reply(conv.id, "Ihre Bestellung ist unterwegs.")
    assigned = await mail.conversation(conv.id)
    await mail.send(corpus("gmail_vacation.eml", OUR_MSGID=ours))
    after = await mail.conversation(conv.id)
    assert (after.status, after.assigned_agent_id) == (assigned.status, assigned.assigned_agent_id)
    assert (await mail.console(conv.id))[-1]["extra"]["auto"] == "out_of_office"


async def test_a_newsletter_reply_is_filed_never_acknowledged(mail: Mail) -> None:
    await mail.send(corpus("newsletter_reply.eml"), sender="shop-friends-bounces@lists.example.net")
    conv = await mail.only_conversation_of("marco.rossi@example.com")
    assert conv.status == "closed" and mail.acks == []
    (msg,) = await mail.console(conv.id)
    assert msg["extra"]["auto"] == "list" and msg["extra"]["cc"] == [SUPPORT]


async def test_a_postfix_bounce_fails_our_message_with_its_reason(mail: Mail) -> None:
    conv = await mail.new_thread("nobody.here@example.org", "Gift card balance?", "n-1@example.org")
    ours = await mail.reply(conv.id, "Your gift card has a balance of 25.00 EUR.")
    await mail.send(corpus("postfix_bounce.eml", OUR_MSGID=ours, ROOT_MSGID="n-1@example.org", TOKEN=sign_token(conv.id, SECRET)),
                    sender="")
    agent_msg = [m for m in await mail.console(conv.id) if m["sender_kind"] == "agent"][0]
    assert agent_msg["delivery_status"] == "failed"
    assert agent_msg["delivery_error"]["code"] == "5.1.1" and "User unknown" in agent_msg["delivery_error"]["message"]
    assert "permanent" in agent_msg["delivery_error"]["message"]
    assert len(await mail.console(conv.id)) == 2  # the report is not a customer message
    bounce_row = (await mail.rows())[-1]
    assert (bounce_row.state, bounce_row.conversation_id) == ("ignored", conv.id)
    assert bounce_row.detail["bounce"]["status"] == "5.1.1" and bounce_row.detail["auto"] == "bounce"
    assert len(await mail.conversations()) == 1
    assert bounce_row.detail["undeliverable"] is True  # the address is marked: the next reply is refused in words


async def test_our_own_mail_coming_back_is_ignored(mail: Mail) -> None:
    await mail.send(simple(SUPPORT, "Re: something", "a loop", mid="loop-1@hub.shop.example", headers=f"X-Loop: {SUPPORT}\n"))
    assert await mail.conversations() == []
    (row,) = await mail.rows()
    assert row.state == "ignored" and row.detail["auto"] == "loop"


# --- identity -------------------------------------------------------------------------------------------------------


async def test_a_spoofed_sender_gets_a_customer_of_its_own(mail: Mail) -> None:
    await mail.send(corpus("gmail_new.eml"))
    ann = await mail.only_conversation_of("ann.example@gmail.com")
    await mail.send(corpus("spoofed.eml"))
    convs = await mail.conversations(customer_address="ann.example@gmail.com")
    assert len(convs) == 2
    spoofed = convs[1]
    assert spoofed.customer_id != ann.customer_id and spoofed.thread_key.startswith("spoofed:")
    (msg,) = await mail.console(spoofed.id)
    assert (msg["extra"]["spoofed"], msg["extra"]["auth"]) == (True, "fail")
    record = await mail.record(ann.customer_id)
    assert not any("Thief Lane" in i["summary"] for i in record["timeline"]["items"])
    assert len(mail.acks) == 1  # never an acknowledgement to a forged sender


async def test_reply_to_is_kept_but_not_the_identity(mail: Mail) -> None:
    await mail.send(corpus("reused_message_id_a.eml"))
    (conv,) = await mail.conversations()
    assert conv.customer_address == "noreply-form@webforms.example"
    assert (await mail.console(conv.id))[0]["extra"]["reply_to"] == "olga.ivanova@example.com"


# --- content ----------------------------------------------------------------------------------------------------------


async def test_html_without_an_html_tag_and_script_payloads(mail: Mail) -> None:
    await mail.send(corpus("html_no_html_tag.eml"))
    await mail.send(corpus("xss_payloads.eml"))
    po = (await mail.console((await mail.only_conversation_of("orders@bigcorp.example")).id))[0]
    assert "TSHIRT-RED-M\t40\t9.90" in po["text"]
    xss = (await mail.console((await mail.only_conversation_of("mallory@evil.example")).id))[0]
    found = await mail.app[MEDIA_KEY].get(xss["extra"]["html_key"])
    assert found is not None
    html = found[1].decode().lower()
    for bad in ("<script", "onerror", "onload", "javascript:", "<iframe", "<svg", "expression(", "<form"):
        assert bad not in html, bad
    assert "<table>" in html and "alert" not in xss["text"]


async def test_an_svg_with_onload_is_a_download_and_the_exe_is_listed_as_omitted(mail: Mail) -> None:
    await mail.send(corpus("svg_attachment.eml"))
    (msg,) = await mail.console((await mail.only_conversation_of("pat@design.example")).id)
    assert [(a["name"], a["content_type"]) for a in msg["attachments"]] == [("logo.svg", "application/octet-stream")]
    assert [o["name"] for o in msg["extra"]["omitted"]] == ["setup.exe"]
    assert "executable" in msg["extra"]["omitted"][0]["reason"]
    link = media_signer("s" * 32, mail.base)(msg["attachments"][0]["url"])
    async with aiohttp.ClientSession() as http:  # served as a download, never inline
        r = await http.get(link)
        assert r.status == 200 and b"onload" in await r.read()
        assert r.headers["Content-Disposition"].startswith("attachment") and r.headers["X-Content-Type-Options"] == "nosniff"


async def test_seventy_pdfs_are_all_on_the_message(mail: Mail) -> None:
    await mail.send(corpus("seventy_pdfs.eml"))
    (msg,) = await mail.console((await mail.only_conversation_of("ap@bigcorp.example")).id)
    assert len(msg["attachments"]) == 70 and msg["extra"]["omitted"] == []
    assert {a["content_type"] for a in msg["attachments"]} == {"application/pdf"}
    assert len({a["url"] for a in msg["attachments"]}) == 70


async def test_split_subject_windows_1258_and_legacy_charsets(mail: Mail) -> None:
    for name in ("split_subject.eml", "windows1258_qp.eml", "legacy_charsets.eml", "malformed_headers.eml"):
        await mail.send(corpus(name))
    hans = (await mail.console((await mail.only_conversation_of("hans.mueller@example.de")).id))[0]
    assert hans["extra"]["subject"] == "Bestellung für Müller – Lieferadresse ändern"
    hoa = await mail.only_conversation_of("hoa.nguyen@example.vn")
    assert "12 Lý Thường Kiệt, Hà Nội" in (await mail.console(hoa.id))[0]["text"]
    assert (await mail.customer(hoa.customer_id)).display_name == "Nguyễn Thị Hoa"
    wang = await mail.only_conversation_of("wang.wei@example.cn")
    assert (await mail.console(wang.id))[0]["extra"]["subject"] == "訂單 10290 查詢"
    broken = await mail.only_conversation_of("broken@example.com")
    assert "The body is still here" in (await mail.console(broken.id))[0]["text"]


async def test_no_message_id_is_kept_once_by_its_bytes(mail: Mail) -> None:
    raw = corpus("no_message_id.eml")
    await mail.send(raw, sender="cron@legacy.example")
    await mail.send(raw, sender="cron@legacy.example")
    conv = await mail.only_conversation_of("cron@legacy.example")
    assert len(await mail.console(conv.id)) == 1
    (row,) = await mail.rows()
    assert row.message_id is None and row.dedup_key.startswith("sha256:") and conv.thread_key == row.dedup_key


async def test_a_reused_message_id_is_two_messages_not_a_repeat(mail: Mail) -> None:
    await mail.send(corpus("reused_message_id_a.eml"))
    await mail.send(corpus("reused_message_id_b.eml"))
    convs = await mail.conversations(customer_address="noreply-form@webforms.example")
    texts = sorted([m["text"] for c in convs for m in await mail.console(c.id)])
    assert len(convs) == 2 and len(texts) == 2
    assert "grey" in texts[0] and "refund" in texts[1]
    rows = await mail.rows()
    assert len(rows) == 2 and rows[1].dedup_key.startswith("contactform@webforms.example#reused-")


async def test_one_message_to_two_of_our_addresses_is_one_message_in_one_conversation(mail: Mail) -> None:
    await mail.send(corpus("two_addresses.eml"), rcpts=[SUPPORT, "Sales@Shop.Example"])
    conv = await mail.only_conversation_of("sofia.garcia@example.com")
    (msg,) = await mail.console(conv.id)
    assert msg["extra"]["to"] == [SUPPORT, SALES]
    rows = await mail.rows()
    assert sorted(r.mailbox for r in rows) == [SALES, SUPPORT]
    assert {(r.state, r.conversation_id, r.message_seq) for r in rows} == {("stored", conv.id, 1)}
    assert conv.our_address == SUPPORT and len(mail.acks) == 1


# --- the SMTP dialogue -----------------------------------------------------------------------------------------------


async def test_mail_for_an_address_not_ours_gets_550(mail: Mail) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        await mail.send(corpus("gmail_new.eml"), rcpts=["someone@else.example"])
    code, reason = err.value.recipients["someone@else.example"]
    assert code == 550 and b"no such mailbox" in reason
    refused = await mail.send(corpus("gmail_new.eml"), rcpts=[SUPPORT, "ceo@shop.example", "support+anything@shop.example"])
    assert list(refused) == ["ceo@shop.example"]
    assert len(await mail.rows()) == 1  # kept once, for support@


def _exact_size(n: int) -> bytes:
    head = b"From: big@example.com\r\nTo: support@shop.example\r\nSubject: big\r\nMessage-ID: <big-%d@example.com>\r\n\r\n" % n
    line = b"x" * 76 + b"\r\n"
    body = bytearray()
    while len(head) + len(body) + len(line) <= n - 2:
        body += line
    body += b"y" * (n - len(head) - len(body) - 2) + b"\r\n"
    raw = head + bytes(body)
    assert len(raw) == n
    return raw


async def test_size_is_advertised_and_one_byte_over_the_limit_gets_552(mail: Mail) -> None:
    def dialogue() -> tuple[Any, Any, Any, Any]:
        with smtplib.SMTP("127.0.0.1", mail.smtp.port, timeout=30) as c:
            c.ehlo()
            size = c.esmtp_features.get("size")
            declared = c.mail("big@example.com", [f"SIZE={MAX_BYTES + 1}"])
            c.rset()
            c.mail("big@example.com")
            c.rcpt(SUPPORT)
            over = c.data(_exact_size(MAX_BYTES + 1))
            c.mail("big@example.com")
            c.rcpt(SUPPORT)
            at_limit = c.data(_exact_size(MAX_BYTES))
            return size, declared, over, at_limit
    size, declared, over, at_limit = await asyncio.to_thread(dialogue)
    await mail.ingest.drain()
    assert size == str(MAX_BYTES) and declared[0] == 552 and over[0] == 552 and at_limit[0] == 250
    (row,) = await mail.rows()
    assert row.message_id == f"big-{MAX_BYTES}@example.com"


async def test_bare_lf_smuggling_is_refused_and_nothing_is_kept(mail: Mail) -> None:
    smuggled = (
        b"From: ann.example@gmail.com\r\nTo: support@shop.example\r\nSubject: hi\r\nMessage-ID: <s-1@gmail.com>\r\n\r\n"
        b"first message\n.\nMAIL FROM:<ceo@shop.example>\nRCPT TO:<support@shop.example>\nDATA\n"
        b"From: ceo@shop.example\nSubject: wire the money\n\nsmuggled\r\n.\r\n"
    )
    def dialogue() -> tuple[int, bytes]:
        with smtplib.SMTP("127.0.0.1", mail.smtp.port, timeout=30) as c:
            c.ehlo()
            c.mail("ann.example@gmail.com")
            c.rcpt(SUPPORT)
            code, _ = c.docmd("DATA")
            assert code == 354
            c.send(smuggled)
            return c.getreply()
    code, reason = await asyncio.to_thread(dialogue)
    await mail.ingest.drain()
    assert code == 550 and b"bare LF" in reason
    assert await mail.rows() == [] and await mail.conversations() == []


async def test_when_the_bytes_cannot_be_kept_the_answer_is_451_and_a_retry_is_one_message(mail: Mail) -> None:
    failing = FailingMedia(mail.app[MEDIA_KEY])
    mail.ingest.media = failing  # type: ignore[assignment]
    with pytest.raises(smtplib.SMTPDataError) as err:
        await mail.send(corpus("gmail_new.eml"))
    assert err.value.smtp_code == 451
    assert await mail.rows() == []
    failing.fail = False
    await mail.send(corpus("gmail_new.eml"))
    conv = await mail.only_conversation_of("ann.example@gmail.com")
    assert len(await mail.console(conv.id)) == 1


async def test_rows_left_received_by_a_crash_are_finished_by_recovery(mail: Mail) -> None:
    await mail.ingest.stop()  # the worker is gone: the 250 is answered, nothing more happens
    await mail.send(corpus("gmail_new.eml"), settle=False)
    (row,) = await mail.rows()
    assert row.state == "received" and await mail.conversations() == []
    assert await mail.ingest.recover() == 1
    conv = await mail.only_conversation_of("ann.example@gmail.com")
    (row,) = await mail.rows()
    assert (row.state, row.conversation_id) == ("stored", conv.id)
    assert await mail.ingest.recover() == 0


async def test_a_sender_the_core_refuses_is_marked_failed_with_the_reason_at_once(mail: Mail) -> None:
    await mail.send(simple("root@localhost", "cron", "disk full", mid="cron-1@localhost"))
    (row,) = await mail.rows()
    assert row.state == "failed" and "the domain localhost has no dot" in row.detail["error"]
    assert await mail.conversations() == [] and row.raw_key  # the raw message is still kept
