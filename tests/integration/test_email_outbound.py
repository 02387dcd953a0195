"""Outbound email against a real SMTP server (aiosmtpd, STARTTLS with a certificate made here, AUTH), on
SQLite and PostgreSQL: the headers that thread a reply, copies, attachments with their bytes, a refusal
shown to the agent with nothing lost, retries of a temporary failure, the local outbox, the
acknowledgement's rate limit, and the /dev/mail page.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field, replace
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any, AsyncIterator, Iterator

import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlmodel import col, select

from contact_center.channels import KNOWN, ChannelRegistry
from contact_center.hub.service import AgentRef, HubService
from contact_center.ports import InboundEvent, OutboundMessage
from contact_center.state.memory import MemoryStateStore
from crm_store.db import Database
from crm_store.models import Conversation, Customer, Message
from crm_store.models import EmailMessage as EmailRow
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import email as email_repo
from integrations.email.config import EmailConfig, SmtpRelay
from integrations.email.devmail import add_devmail_routes, list_outbox
from integrations.email.outbound import EmailAdapter, PerSenderLimit, text_to_html, trim_references
from integrations.email.threading import read_token, sign_token
from integrations.media.files import FileMediaStore

SECRET = b"test-secret-of-the-tokens"
OURS, CUSTOMER, ROOT = "support@shop.example", "ann@example.com", "root-1@mail.example"
USER, PASSWORD = "hub", "s3cret-relay"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n" + b"\x00\xff binary \r\n" * 100 + b"%%EOF\n"


# --- a real SMTP server ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (made with openssl, valid for a day)."""
    folder = tmp_path_factory.mktemp("certs")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


@dataclass
class Got:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    tls: bool
    login: str | None

    @property
    def msg(self) -> EmailMessage:
        parsed = BytesParser(policy=policy.default).parsebytes(self.data)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Relay:
    """The aiosmtpd handler: keeps what it took; refuses what the test asks it to."""

    received: list[Got] = field(default_factory=list)
    refuse: dict[str, str] = field(default_factory=dict)  # recipient -> the answer to its RCPT
    data_answers: list[str] = field(default_factory=list)  # answers to the next DATA commands (then 250)
    rcpts: int = 0
    datas: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any) -> str:
        self.rcpts += 1
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.datas += 1
        if self.data_answers:
            return self.data_answers.pop(0)
        login = session.auth_data.decode() if session.authenticated and isinstance(session.auth_data, bytes) else None
        self.received.append(Got(envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content or envelope.content,
                                 session.ssl is not None, login))
        return "250 2.0.0 Queued"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, auth_data=auth_data.login if ok else None, handled=False)


@pytest.fixture
def relay(certs: tuple[Path, Path]) -> Iterator[tuple[Relay, int]]:
    """A relay that wants STARTTLS, then AUTH, before it takes mail."""
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(str(certs[0]), str(certs[1]))
    handler, port = Relay(), _free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, server_hostname="relay.test", ready_timeout=10,
        tls_context=server_tls, require_starttls=True, authenticator=_authenticator, auth_required=True, auth_require_tls=True,
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@pytest.fixture
def listener() -> Iterator[tuple[Relay, int]]:
    """A plain SMTP listener, standing in for the hub's own SMTP port (for /dev/mail)."""
    handler, port = Relay(), _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="hub.test", ready_timeout=10)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


# --- the adapter and a conversation ---------------------------------------------------------------


class Sleeps:
    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def _config(tmp_path: Path, port: int | None, **kw: Any) -> EmailConfig:
    relay = SmtpRelay("127.0.0.1", port, starttls=True, username=USER, password=PASSWORD) if port else None
    return EmailConfig(addresses={OURS: "support"}, relay=relay, outbox_dir=str(tmp_path / "outbox"), **kw)


def _adapter(tmp_path: Path, db: Database, port: int | None, certs: tuple[Path, Path], **kw: Any) -> tuple[EmailAdapter, Sleeps]:
    sleeps = Sleeps()
    trust = ssl.create_default_context(cafile=str(certs[0]))
    config = _config(tmp_path, port, ack=kw.pop("ack", False))
    adapter = EmailAdapter(config, lambda: db, FileMediaStore(tmp_path / "media"), SECRET, "http://hub.test",
                           shop_name="Example Shop", sleep=sleeps, tls_context=trust, backoff=0.5, **kw)
    return adapter, sleeps


async def _conversation(db: Database, subject: str = "Order 10234") -> int:
    """An email conversation whose thread started with the customer's message ROOT."""
    async with db.transaction() as s:
        customer = Customer(display_name="Ann")
        s.add(customer)
        await s.flush()
        assert customer.id is not None
        conv = Conversation(customer_id=customer.id, channel="email", thread_key=ROOT, customer_address=CUSTOMER,
                            our_address=OURS, subject=subject)
        s.add(conv)
        await s.flush()
        assert conv.id is not None
        await _inbound(s, conv.id, ROOT, subject=subject)
        return conv.id


async def _inbound(s: Any, conversation_id: int, message_id: str, *, subject: str = "", in_reply_to: str | None = None,
                   references: tuple[str, ...] = ()) -> None:
    taken = await email_repo.take_in(s, mailbox=OURS, raw=message_id.encode(), raw_key="", message_id=f"<{message_id}>",
                                     source="smtp", from_addr=CUSTOMER, subject=subject, in_reply_to=in_reply_to,
                                     references=references)
    assert taken.row.id is not None
    await email_repo.mark_stored(s, taken.row.id, conversation_id=conversation_id, message_seq=1)


def _out(conversation_id: int, seq: int, text: str = "Hello Ann,\n\nYour order ships today.", **kw: Any) -> OutboundMessage:
    return OutboundMessage(conversation_id=conversation_id, seq=seq, channel="email", to_address=CUSTOMER,
                           from_address=OURS, text=text, thread_key=ROOT, **kw)


def _ids(header: object) -> list[str]:
    return re.findall(r"<([^<>]+)>", str(header or ""))


# --- replies --------------------------------------------------------------------------------------


async def test_a_reply_is_multipart_threaded_with_copies_and_attachments_over_starttls_and_auth(
    db: Database, tmp_path: Path, relay: tuple[Relay, int], certs: tuple[Path, Path],
) -> None:
    handler, port = relay
    adapter, sleeps = _adapter(tmp_path, db, port, certs)
    conv_id = await _conversation(db)
    png = await adapter.media.put(PNG, "image/png", "photo.png")
    pdf = await adapter.media.put(PDF, "application/pdf", "invoice 10234.pdf")
    text = "Hello Ann,\n\nTrack it at https://shop.example/track?id=1&x=2.\n<script>alert(1)</script> & <b>bold</b>"
    report = await adapter.deliver(_out(conv_id, 2, text, extra={"cc": ["Bob@Example.org", OURS, "not an address"]},
                                        media_keys=(png.key, pdf.key)))

    assert report.status == "sent" and report.error_code is None and sleeps.waits == []
    [got] = handler.received
    assert got.tls and got.login == USER  # STARTTLS, then AUTH, before the mail
    assert got.mail_from == OURS and got.rcpt_tos == [CUSTOMER, "Bob@example.org"]  # ours dropped from the copies
    msg = got.msg
    token = sign_token(conv_id, SECRET)
    assert msg["From"].addresses[0].addr_spec == OURS and msg["From"].addresses[0].display_name == "Example Shop"
    assert str(msg["To"]) == CUSTOMER and str(msg["Cc"]) == "Bob@example.org"
    assert msg["Reply-To"].addresses[0].addr_spec == f"support+c{token}@shop.example"
    assert read_token(token, SECRET) == conv_id
    assert str(msg["Subject"]) == f"Re: Order 10234 [#{token}]"
    mid = str(msg["Message-ID"])
    assert re.fullmatch(r"<[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}@shop\.example>", mid)
    assert _ids(msg["In-Reply-To"]) == [ROOT] and _ids(msg["References"]) == [ROOT]
    assert str(msg["X-Loop"]) == OURS and msg["Auto-Submitted"] is None  # an agent's reply is not automatic
    assert msg.get_content_type() == "multipart/mixed"
    alternative = next(p for p in msg.iter_parts() if p.get_content_type() == "multipart/alternative")
    assert [p.get_content_type() for p in alternative.iter_parts()] == ["text/plain", "text/html"]
    plain = msg.get_body(("plain",))
    html_part = msg.get_body(("html",))
    assert plain is not None and html_part is not None
    assert plain.get_content().replace("\r\n", "\n").rstrip("\n") == text
    rendered = html_part.get_content()
    assert "<script>" not in rendered and "&lt;script&gt;alert(1)&lt;/script&gt;" in rendered and "&lt;b&gt;bold" in rendered
    assert '<a href="https://shop.example/track?id=1&amp;x=2">' in rendered and "</a>." in rendered
    assert "<p>Hello Ann,</p>" in rendered
    files = {p.get_filename(): (p.get_content_type(), p.get_payload(decode=True)) for p in msg.iter_attachments()}
    assert files == {"photo.png": ("image/png", PNG), "invoice 10234.pdf": ("application/pdf", PDF)}

    bare = mid.strip("<>")
    assert report.provider_id == email_repo.provider_id(OURS, bare)
    async with db.session() as s:
        rows = await email_repo.thread_messages(s, conv_id)
    sent = rows[-1]
    assert (sent.direction, sent.state, sent.message_id, sent.message_seq) == ("out", "sent", bare, 2)
    assert sent.in_reply_to == ROOT and sent.references == [ROOT] and sent.subject == str(msg["Subject"])
    kept = await adapter.media.get(sent.raw_key)
    assert kept is not None and kept[0].content_type == "message/rfc822"
    assert BytesParser(policy=policy.default).parsebytes(kept[1])["Message-ID"] == mid

    again = await adapter.deliver(_out(conv_id, 2, text, extra={"cc": ["Bob@Example.org"]}, media_keys=(png.key, pdf.key)))
    assert again.provider_id == report.provider_id  # the same message sent again keeps its Message-ID
    async with db.session() as s:
        assert len(await email_repo.thread_messages(s, conv_id)) == len(rows)  # and is recorded once


async def test_replies_thread_on_the_customers_last_message_and_the_root(
    db: Database, tmp_path: Path, relay: tuple[Relay, int], certs: tuple[Path, Path],
) -> None:
    handler, port = relay
    adapter, _ = _adapter(tmp_path, db, port, certs)
    conv_id = await _conversation(db, subject="Where is my order?")
    assert (await adapter.deliver(_out(conv_id, 2))).status == "sent"
    first = handler.received[-1].msg
    first_id = _ids(first["Message-ID"])[0]
    # The customer answers our reply (their program quotes the thread in References) ...
    async with db.transaction() as s:
        await _inbound(s, conv_id, "answer-2@mail.example", subject=f"RE: {first['Subject']}", in_reply_to=f"<{first_id}>",
                       references=(f"<{ROOT}>", f"<{first_id}>"))
    assert (await adapter.deliver(_out(conv_id, 4, "Thanks, it is on its way."))).status == "sent"
    second = handler.received[-1].msg
    second_id = _ids(second["Message-ID"])[0]
    assert second_id != first_id
    assert _ids(second["In-Reply-To"]) == ["answer-2@mail.example"]
    assert _ids(second["References"]) == [ROOT, first_id, "answer-2@mail.example"]
    assert str(second["Subject"]) == str(first["Subject"]) == f"Re: Where is my order? [#{sign_token(conv_id, SECRET)}]"
    # ... and a second reply of ours before they answer again still answers their last message.
    assert (await adapter.deliver(_out(conv_id, 5, "PS: the tracking number is 1Z999."))).status == "sent"
    third = handler.received[-1].msg
    assert _ids(third["In-Reply-To"]) == ["answer-2@mail.example"] and _ids(third["References"]) == _ids(second["References"])


def test_references_keep_the_root_and_the_most_recent_and_the_html_is_made_from_text_only() -> None:
    chain = [f"m{i}@x.example" for i in range(40)]
    assert trim_references(chain) == ["m0@x.example", *chain[-19:]]
    assert trim_references(["a@x", "b@x", "a@x"]) == ["a@x", "b@x"]
    page = text_to_html('<img src=x onerror="alert(1)">\njavascript:alert(1) http://a.example/?q="x"')
    assert "<img" not in page and "onerror=&quot;" in page and 'href="javascript' not in page
    assert '<a href="http://a.example/?q=">' in page


async def test_a_bot_message_is_automatic_mail(
    db: Database, tmp_path: Path, relay: tuple[Relay, int], certs: tuple[Path, Path],
) -> None:
    handler, port = relay
    adapter, _ = _adapter(tmp_path, db, port, certs)
    conv_id = await _conversation(db)
    assert (await adapter.deliver(_out(conv_id, 2, "Order 10234 has shipped.", sender_kind="bot"))).status == "sent"
    assert str(handler.received[-1].msg["Auto-Submitted"]) == "auto-replied"


# --- failures -------------------------------------------------------------------------------------


async def _email_hub(db: Database, adapter: EmailAdapter) -> tuple[HubService, AgentRef]:
    async with db.transaction() as s:
        agent = await agents_repo.create_agent(s, "alice", "pw-alice-1", display_name="Alice", capacity={"email": 2})
        await agents_repo.create_queue(s, "support", channels=["email"])
    channels = ChannelRegistry()
    for spec in KNOWN:
        channels.register(spec, adapter if spec.name == "email" else None)
    hub = HubService(db, MemoryStateStore(), _NoEmits(), channels=channels, wrap_up_seconds=0)
    await hub.load_queues()
    assert agent.id is not None
    ref = AgentRef(agent.id, "alice", "Alice", "agent")
    await hub.agent_online(ref)
    await hub.set_status(ref, "available")
    return hub, ref


class _NoEmits:
    async def emit(self, event: str, data: Any = None, **kw: Any) -> None:
        return None

    async def emit_many(self, items: list[dict[str, Any]]) -> None:
        return None


async def _settle(hub: HubService) -> None:
    for _ in range(200):
        if not hub._delivery_tasks:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the delivery did not finish")


async def test_a_permanent_refusal_is_shown_to_the_agent_and_the_reply_stays(
    db: Database, tmp_path: Path, relay: tuple[Relay, int], certs: tuple[Path, Path],
) -> None:
    handler, port = relay
    handler.refuse[CUSTOMER] = "550 5.1.1 <ann@example.com>: Recipient address rejected: User unknown"
    adapter, sleeps = _adapter(tmp_path, db, port, certs)
    hub, agent = await _email_hub(db, adapter)
    got = await hub.receive_inbound(InboundEvent(
        channel="email", customer_address=CUSTOMER, our_address=OURS, text="Where is my order?", thread_key=ROOT,
        provider_id=email_repo.provider_id(OURS, ROOT), queue="support", extra={"kind": "email", "subject": "Order"},
    ))
    assert await hub.route_once() == 1
    await hub.accept(agent, got.conversation_id)
    await hub.reply(agent, got.conversation_id, "c-1", "Your order ships today.", raw_cc=["bob@example.org"])
    await _settle(hub)

    assert handler.received == [] and handler.rcpts == 1 and sleeps.waits == []  # a 5xx is not tried again
    async with db.session() as s:
        msg = (await s.exec(select(Message).where(Message.conversation_id == got.conversation_id, Message.sender_kind == "agent"))).one()
        out_rows = (await s.exec(select(EmailRow).where(col(EmailRow.direction) == "out"))).all()
    assert msg.body == "Your order ships today." and msg.delivery_status == "failed"
    assert msg.delivery_error_code == "550"
    assert msg.delivery_error is not None and "refused the customer's address ann@example.com" in msg.delivery_error
    assert "User unknown" in msg.delivery_error and "not sent" in msg.delivery_error
    assert out_rows == []  # nothing recorded as sent


async def test_a_temporary_failure_is_retried_with_back_off(
    db: Database, tmp_path: Path, relay: tuple[Relay, int], certs: tuple[Path, Path],
) -> None:
    handler, port = relay
    adapter, sleeps = _adapter(tmp_path, db, port, certs, tries=3)
    conv_id = await _conversation(db)
    handler.data_answers = ["451 4.3.0 Mail server temporarily busy"]
    report = await adapter.deliver(_out(conv_id, 2))
    assert report.status == "sent" and handler.datas == 2 and len(handler.received) == 1 and sleeps.waits == [0.5]

    handler.data_answers = ["421 4.7.0 Try again later"] * 3
    failed = await adapter.deliver(_out(conv_id, 3))
    assert failed.status == "failed" and failed.error_code == "421" and sleeps.waits == [0.5, 0.5, 1.0]
    assert failed.error_message is not None and "Tried 3 times" in failed.error_message and "not sent" in failed.error_message


async def test_an_unreachable_relay_is_retried_then_reported(db: Database, tmp_path: Path, certs: tuple[Path, Path]) -> None:
    adapter, sleeps = _adapter(tmp_path, db, _free_port(), certs, tries=2)  # nothing listens there
    conv_id = await _conversation(db)
    report = await adapter.deliver(_out(conv_id, 2))
    assert report.status == "failed" and report.error_code is None and sleeps.waits == [0.5]
    assert report.error_message is not None and "could not talk to the mail relay" in report.error_message


async def test_a_relay_refusing_the_login_is_a_permanent_failure(
    db: Database, tmp_path: Path, relay: tuple[Relay, int], certs: tuple[Path, Path],
) -> None:
    _, port = relay
    adapter, sleeps = _adapter(tmp_path, db, port, certs)
    adapter.config = replace(adapter.config, relay=SmtpRelay("127.0.0.1", port, starttls=True, username=USER, password="wrong"))
    conv_id = await _conversation(db)
    report = await adapter.deliver(_out(conv_id, 2))
    assert report.status == "failed" and report.error_code == "535" and sleeps.waits == []
    assert report.error_message is not None and "SMTP_URL" in report.error_message and "wrong" not in report.error_message


# --- the local outbox, the acknowledgement ----------------------------------------------------------


async def test_with_no_relay_mail_goes_to_the_local_outbox(db: Database, tmp_path: Path, certs: tuple[Path, Path]) -> None:
    adapter, _ = _adapter(tmp_path, db, None, certs)
    conv_id = await _conversation(db)
    report = await adapter.deliver(_out(conv_id, 2, extra={"cc": ["bob@example.org"]}))
    assert report.status == "sent"
    [path] = list((tmp_path / "outbox").glob("*.eml"))
    msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    assert str(msg["To"]) == CUSTOMER and str(msg["Cc"]) == "bob@example.org" and _ids(msg["In-Reply-To"]) == [ROOT]
    assert report.provider_id == email_repo.provider_id(OURS, _ids(msg["Message-ID"])[0])
    async with db.session() as s:
        assert [r.direction for r in await email_repo.thread_messages(s, conv_id)] == ["in", "out"]
    [listed] = list_outbox(tmp_path / "outbox")
    assert listed["subject"] == str(msg["Subject"]) and listed["text"].startswith("Hello Ann,") and listed["has_html"]


async def test_the_acknowledgement_is_automatic_and_rate_limited_per_sender(
    db: Database, tmp_path: Path, relay: tuple[Relay, int], certs: tuple[Path, Path],
) -> None:
    handler, port = relay
    clock = [1000.0]
    adapter, _ = _adapter(tmp_path, db, port, certs, ack=True, ack_limit=PerSenderLimit(3600, lambda: clock[0]))
    conv_id = await _conversation(db)
    first = await adapter.acknowledge(conv_id, CUSTOMER, "Order 10234", f"<{ROOT}>", OURS)
    assert first is not None and first.status == "sent"
    msg = handler.received[-1].msg
    token = sign_token(conv_id, SECRET)
    assert str(msg["Auto-Submitted"]) == "auto-replied" and str(msg["X-Loop"]) == OURS
    assert str(msg["Subject"]) == f"Re: Order 10234 [#{token}]" and _ids(msg["In-Reply-To"]) == [ROOT]
    assert msg["Reply-To"].addresses[0].addr_spec == f"support+c{token}@shop.example"
    body = msg.get_body(("plain",))
    assert body is not None and f"case #{conv_id}" in body.get_content()
    async with db.session() as s:
        assert [r.direction for r in await email_repo.thread_messages(s, conv_id)] == ["in", "out"]

    assert await adapter.acknowledge(conv_id, "ANN@example.com", "Another", None, OURS) is None  # the same sender, within the hour
    assert (await adapter.acknowledge(conv_id, "carl@example.net", "Hi", None, OURS)) is not None  # another sender
    assert await adapter.acknowledge(conv_id, "mailer-daemon@example.com", "Hi", None, OURS) is None
    assert await adapter.acknowledge(conv_id, "support@shop.example", "Hi", None, OURS) is None  # never to ourselves
    clock[0] += 3601
    assert await adapter.acknowledge(conv_id, CUSTOMER, "Later", None, OURS) is not None  # an hour later
    assert len(handler.received) == 3

    off, _ = _adapter(tmp_path, db, port, certs)  # EMAIL_ACK off
    assert await off.acknowledge(conv_id, "dora@example.com", "Hi", None, OURS) is None


# --- /dev/mail ------------------------------------------------------------------------------------


@pytest.fixture
async def devmail(tmp_path: Path, listener: tuple[Relay, int], aiohttp_client: Any) -> AsyncIterator[tuple[Any, Relay]]:
    handler, port = listener
    app = web.Application()
    add_devmail_routes(app, _config(tmp_path, None), port)
    yield await aiohttp_client(app), handler


async def test_dev_mail_lists_the_outbox_and_mails_the_hub_as_a_customer(
    db: Database, tmp_path: Path, devmail: tuple[Any, Relay], certs: tuple[Path, Path],
) -> None:
    client, hub_smtp = devmail
    adapter, _ = _adapter(tmp_path, db, None, certs)
    conv_id = await _conversation(db)
    await adapter.deliver(_out(conv_id, 2, "First answer"))
    time.sleep(0.001)
    await adapter.deliver(_out(conv_id, 3, "Second answer with <b>tags</b>"))

    page = await client.get("/dev/mail")
    assert page.status == 200 and "sandbox" not in (page.headers.get("Content-Security-Policy") or "x")
    assert "/dev/mail/app.js" in await page.text()
    listed = (await (await client.get("/dev/mail/api/messages")).json())["messages"]
    assert [m["text"].strip() for m in listed] == ["Second answer with <b>tags</b>", "First answer"]  # newest first, as text
    newest = listed[0]
    html_view = await client.get(f"/dev/mail/api/messages/{newest['id']}/html")
    assert html_view.status == 200 and html_view.headers["Content-Security-Policy"].startswith("sandbox")
    assert "&lt;b&gt;tags&lt;/b&gt;" in await html_view.text()
    assert (await client.get("/dev/mail/api/messages/..%2F..%2Fetc%2Fpasswd/raw")).status == 404

    token_address = re.search(r"<([^<>]+)>", newest["reply_to"]).group(1)  # type: ignore[union-attr]
    sent = await client.post("/dev/mail/api/send", json={
        "from": CUSTOMER, "from_name": "Ann", "to": token_address, "subject": "Re: " + newest["subject"],
        "text": "Thanks!", "in_reply_to": newest["message_id"], "references": f"{newest['references']} {newest['message_id']}",
    })
    assert sent.status == 200, await sent.text()
    [got] = hub_smtp.received
    msg = got.msg
    assert got.rcpt_tos == [token_address] and got.mail_from == CUSTOMER
    assert _ids(msg["In-Reply-To"]) == _ids(newest["message_id"])
    assert _ids(msg["References"]) == [ROOT, _ids(newest["message_id"])[0]]
    assert msg.get_body(("plain",)).get_content().strip() == "Thanks!"  # type: ignore[union-attr]

    plain = await client.post("/dev/mail/api/send", json={"from": "dan@example.com", "text": "Hello"})  # To: the first address
    assert plain.status == 200 and hub_smtp.received[-1].rcpt_tos == [OURS]
    hub_smtp.refuse["nobody@shop.example"] = "550 5.1.1 not our address"
    refused = await client.post("/dev/mail/api/send", json={"from": "dan@example.com", "to": "nobody@shop.example", "text": "x"})
    assert refused.status == 400 and "550" in (await refused.json())["error"]
    form = await client.post("/dev/mail/api/send", data={"from": "dan@example.com", "text": "x"})  # a cross-site form post
    assert form.status == 400
    bad = await client.post("/dev/mail/api/send", data=json.dumps({"from": "dan@example.com\r\nBcc: x@y.z", "text": "x"}),
                            headers={"Content-Type": "application/json"})
    assert bad.status == 400
