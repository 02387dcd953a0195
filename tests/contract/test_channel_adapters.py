"""One contract for every channel adapter, run against the real hub: web chat (Socket.IO), SMS (Twilio webhooks
from the stand-in) and email (smtplib to the hub's own SMTP server; replies read from an aiosmtpd relay the
test runs, bounces sent back as delivery-status reports).

Each adapter must: normalise what arrives into one conversation on the customer's record (the customer
found again by their address), store a repeat once, carry the agent's reply back to the customer with
a delivery status that never moves backwards, and refuse bad input with a clear error, storing nothing.

Where channels differ the driver says so, and the contract checks each way: ``per_thread`` channels
(email) keep one conversation per thread, so an unrelated message from the same customer is a second
conversation on the same record, while an answer to our reply stays in its conversation; the others keep
one conversation per customer while it is open.
"""

from __future__ import annotations

import asyncio
import smtplib
import socket
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import formatdate
from typing import Any, AsyncIterator, Protocol

import aiohttp
import pytest
import socketio
from aiohttp.test_utils import TestServer
from aiosmtpd.controller import Controller
from sqlmodel import select

from contact_center.app import create_app
from contact_center.email_wiring import EMAIL_KEY, SMTP_KEY
from contact_center.keys import DB_KEY, HUB_KEY
from contact_center.twilio_wiring import STANDIN_APP_KEY
from contact_center.settings import Settings
from crm_store.models import Conversation, Message
from crm_store.models import EmailMessage as EmailRow
from crm_store.repositories import agents as agents_repo
from integrations.standins.twilio import STANDIN_KEY, TwilioStandin
from tests.sio_helpers import Inbox, sio_client

RANK = {None: -1, "queued": 0, "sent": 1, "delivered": 2, "undelivered": 2, "failed": 2, "read": 3}
SHOP_MAIL = "support@shop.example"
EMAIL_MAX_BYTES = 64 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Relay:
    """The mail relay the hub sends through (SMTP_URL): an aiosmtpd handler that keeps what it took."""

    received: list[tuple[list[str], EmailMessage]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = BytesParser(policy=policy.default).parsebytes(envelope.original_content or envelope.content)
        assert isinstance(parsed, EmailMessage)
        self.received.append((list(envelope.rcpt_tos), parsed))
        return "250 2.0.0 Queued"


class Hub:
    """A running hub with the Twilio stand-in, its own SMTP server and a mail relay, an agent's console, and the database."""

    def __init__(self, base: str, app: Any, relay: Relay) -> None:
        self.base, self.app, self.relay = base, app, relay
        self.agent: socketio.AsyncClient | None = None
        self.inbox = Inbox()

    @property
    def standin(self) -> TwilioStandin:
        return self.app[STANDIN_APP_KEY][STANDIN_KEY]

    @property
    def smtp_port(self) -> int:
        return int(self.app[SMTP_KEY].port)

    async def agent_takes_next(self) -> int:
        if self.agent is None:
            async with aiohttp.ClientSession() as http:
                r = await http.post(f"{self.base}/auth/login", json={"username": "ann", "password": "pw-ann-123"})
                cookie = f"cc_session={r.cookies['cc_session'].value}"
            self.agent = sio_client(self.inbox, "/agent", ("hello", "offer", "message", "message_status"))
            await self.agent.connect(self.base, namespaces=["/agent"], headers={"Cookie": cookie}, transports=["websocket"])
            await self.inbox.wait("hello")
            await self.agent.call("set_status", {"status": "available"}, namespace="/agent")
        offer = await self.inbox.wait("offer")
        ack = await self.agent.call("accept", {"conversation_id": offer["conversation_id"]}, namespace="/agent")
        assert ack["ok"], ack
        return int(offer["conversation_id"])

    async def reply(self, conversation_id: int, text: str) -> dict[str, Any]:
        assert self.agent is not None
        ack = await self.agent.call("reply", {"conversation_id": conversation_id, "client_msg_id": f"r-{text}", "text": text}, namespace="/agent")
        assert ack["ok"], ack
        return dict(ack["message"])

    async def messages(self) -> list[Message]:
        async with self.app[DB_KEY].session() as s:
            return list((await s.exec(select(Message).order_by(Message.id))).all())

    async def message_at(self, conversation_id: int, seq: int) -> Message:
        (m,) = [m for m in await self.messages() if m.conversation_id == conversation_id and m.seq == seq]
        return m

    async def conversations(self) -> list[Conversation]:
        async with self.app[DB_KEY].session() as s:
            return list((await s.exec(select(Conversation).order_by(Conversation.id))).all())


class Driver(Protocol):
    """A customer on one channel."""

    channel: str
    address: str  # the customer's address as the hub keeps it
    per_thread: bool  # one conversation per thread (email), not one per customer while it is open
    accepted_as: str | None  # the reply's status once the provider has taken it (None: live, delivered as published)

    async def send(self, text: str) -> None: ...  # continues the customer's current thread (starts one if none)

    async def send_new_topic(self, text: str) -> None: ...  # an unrelated message (a new thread where there are threads)

    async def answer(self, text: str) -> None: ...  # answers the agent's last reply (the customer's reply to it)

    async def repeat_last(self) -> None: ...

    async def send_bad(self) -> str: ...  # the refusal's code or reason

    async def received(self, text: str) -> None: ...  # waits until the customer got this text

    async def reply_bounces(self) -> str | None: ...  # the provider says later the reply did not arrive: the status due (None: no such notice)

    async def stale_notice(self) -> None: ...  # a late, out-of-date status notice for the reply, as the provider sends it

    async def close(self) -> None: ...


class WebChat:
    channel, address, per_thread, accepted_as = "chat", "visitor_contract_01", False, None

    def __init__(self, hub: Hub) -> None:
        self.hub, self.inbox, self.n = hub, Inbox(), 0
        self.sio = sio_client(self.inbox, "/customer", ("session", "message"))

    async def start(self) -> "WebChat":
        await self.sio.connect(self.hub.base, namespaces=["/customer"], auth={"visitor_id": self.address}, transports=["websocket"])
        await self.inbox.wait("session")
        return self

    async def send(self, text: str) -> None:
        self.n += 1
        ack = await self.sio.call("message", {"client_msg_id": f"c-{self.n}", "text": text}, namespace="/customer")
        assert ack["ok"], ack

    send_new_topic = answer = send  # one conversation per visitor: no threads

    async def repeat_last(self) -> None:
        ack = await self.sio.call("message", {"client_msg_id": f"c-{self.n}", "text": "again"}, namespace="/customer")
        assert ack["ok"] and ack["message"]["client_msg_id"] == f"c-{self.n}"

    async def send_bad(self) -> str:
        ack = await self.sio.call("message", {"client_msg_id": "bad", "text": "   "}, namespace="/customer")
        assert ack["ok"] is False
        return str(ack["error"]["code"])

    async def received(self, text: str) -> None:
        await self.inbox.wait("message", lambda m: m["text"] == text)

    async def reply_bounces(self) -> str | None:
        return None

    async def stale_notice(self) -> None:
        pass

    async def close(self) -> None:
        await self.sio.disconnect()


class Sms:
    channel, address, per_thread, accepted_as = "sms", "+14155550142", False, "delivered"

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def start(self) -> "Sms":
        return self

    async def send(self, text: str) -> None:
        outcome = await self.hub.standin.send_inbound("+1 415 555 0142", "+15005550006", text)
        assert outcome.hub_status == 200

    send_new_topic = answer = send  # one conversation per phone number: no threads

    async def repeat_last(self) -> None:
        assert await self.hub.standin.repost(self.hub.standin.callbacks[-1]) == 200

    async def send_bad(self) -> str:
        async with aiohttp.ClientSession() as http:
            unsigned = await http.post(f"{self.hub.base}/webhooks/twilio/messaging", data={"MessageSid": "SM" + "0" * 32, "Body": "x"})
            assert unsigned.status == 403
            form = {"AccountSid": self.hub.standin.account_sid, "From": "+14155550142", "To": "+15005550006", "Body": "no sid"}
            url = f"{self.hub.base}/webhooks/twilio/messaging"
            bad = await http.post(url, data=form, headers={"X-Twilio-Signature": self.hub.standin.sign(url, form)})
            assert bad.status == 400
            return await bad.text()

    async def received(self, text: str) -> None:
        for _ in range(100):
            if any(e.direction == "out" and e.body == text for e in self.hub.standin.conversation(self.address)):
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} never reached the phone")

    async def reply_bounces(self) -> str | None:
        return None  # Twilio's "delivered" is its last word

    async def stale_notice(self) -> None:
        """Twilio retries the reply's "sent" callback after its "delivered" one."""
        (sent,) = [c for c in self.hub.standin.callbacks if c.form.get("MessageStatus") == "sent"]
        assert await self.hub.standin.repost(sent) == 200

    async def close(self) -> None:
        pass


class Email:
    """A customer with a mail program: smtplib to the hub's SMTP port; the hub's replies read from the relay."""

    channel, address, per_thread, accepted_as = "email", "ann.customer@example.com", True, "sent"
    FROM = "Ann Customer <Ann.Customer@Example.COM>"  # the hub keeps the address lower-cased

    def __init__(self, hub: Hub) -> None:
        self.hub, self.n = hub, 0
        self.thread: list[str] = []  # the Message-IDs of the current thread, oldest first
        self.subject = ""
        self.last: tuple[bytes, list[str]] | None = None  # the last mail sent, and to whom
        self.got: EmailMessage | None = None  # the hub's last reply, as the customer received it

    async def start(self) -> "Email":
        return self

    # --- the customer's mail program --------------------------------------------------------------

    def _mail(self, text: str, *, to: str = SHOP_MAIL, extra: str = "") -> tuple[bytes, str]:
        self.n += 1
        mid = f"contract-{self.n}@example.com"
        head = f"From: {self.FROM}\r\nTo: {to}\r\nSubject: {self.subject}\r\nDate: {formatdate()}\r\nMessage-ID: <{mid}>\r\n"
        body = f"{extra}MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
        return (head + body).encode(), mid

    def _sendmail(self, raw: bytes, rcpts: list[str], sender: str) -> dict[str, Any]:
        with smtplib.SMTP("127.0.0.1", self.hub.smtp_port, timeout=30) as client:
            return dict(client.sendmail(sender, rcpts, raw))

    async def _deliver(self, raw: bytes, rcpts: list[str], sender: str | None = None) -> None:
        refused = await asyncio.to_thread(self._sendmail, raw, rcpts, self.address if sender is None else sender)
        assert refused == {}  # 250: the hub has kept it
        self.last = (raw, rcpts)
        await self.hub.app[EMAIL_KEY].drain()  # the 250 comes before the hub files the mail

    async def send(self, text: str) -> None:
        if not self.thread:
            self.subject = self.subject or "A question"
            raw, mid = self._mail(text)
        else:
            refs = " ".join(f"<{m}>" for m in self.thread)
            self.subject = self.subject if self.subject.startswith("Re:") else f"Re: {self.subject}"
            raw, mid = self._mail(text, extra=f"In-Reply-To: <{self.thread[-1]}>\r\nReferences: {refs}\r\n")
        self.thread.append(mid)
        await self._deliver(raw, [SHOP_MAIL])

    async def send_new_topic(self, text: str) -> None:
        self.thread, self.subject = [], "Something else"
        await self.send(text)

    async def answer(self, text: str) -> None:
        """Reply to the hub's reply as a mail program does: to its Reply-To, In-Reply-To its Message-ID."""
        assert self.got is not None
        ours = str(self.got["Message-ID"]).strip().strip("<>")
        refs = f"{self.got['References'] or ''} <{ours}>".strip()
        to = self.got["Reply-To"].addresses[0].addr_spec
        self.subject = str(self.got["Subject"])
        raw, mid = self._mail(text, to=to, extra=f"In-Reply-To: <{ours}>\r\nReferences: {refs}\r\n")
        self.thread += [ours, mid]
        await self._deliver(raw, [to])

    async def repeat_last(self) -> None:
        assert self.last is not None
        await self._deliver(*self.last)  # the same Message-ID, the same bytes: a mail server's retry

    async def send_bad(self) -> str:
        """Mail for an address that is not ours (550), and mail over EMAIL_MAX_BYTES, declared or not (552)."""
        raw, _ = self._mail("hello", to="someone@elsewhere.example")
        big, _ = self._mail("\r\n".join(["x" * 76] * (EMAIL_MAX_BYTES // 78 + 10)))

        def talk() -> str:
            with smtplib.SMTP("127.0.0.1", self.hub.smtp_port, timeout=30) as client:
                with pytest.raises(smtplib.SMTPRecipientsRefused) as not_ours:
                    client.sendmail(self.address, ["someone@elsewhere.example"], raw)
                ((code, why),) = not_ours.value.recipients.values()
                assert code == 550, (code, why)
                with pytest.raises(smtplib.SMTPSenderRefused) as declared:  # smtplib declares SIZE= on MAIL FROM
                    client.sendmail(self.address, [SHOP_MAIL], big)
                assert declared.value.smtp_code == 552, declared.value
            with smtplib.SMTP("127.0.0.1", self.hub.smtp_port, timeout=30) as client:  # no SIZE=: refused after DATA
                client.ehlo()
                assert client.mail(self.address)[0] == 250 and client.rcpt(SHOP_MAIL)[0] == 250
                code, words = client.data(big)  # smtplib hands back the answer after the final dot
                assert code == 552, (code, words)
            return why.decode()

        reason = await asyncio.to_thread(talk)
        await self.hub.app[EMAIL_KEY].drain()
        async with self.hub.app[DB_KEY].session() as s:
            assert (await s.exec(select(EmailRow))).all() == []  # not even the raw mail kept
        return reason

    async def received(self, text: str) -> None:
        """The reply reached the customer's mailbox, threaded under the customer's last mail."""
        for _ in range(200):
            for rcpts, msg in self.hub.relay.received:
                body = msg.get_body(preferencelist=("plain",))
                if rcpts == [self.address] and body is not None and body.get_content().strip() == text:
                    assert msg["In-Reply-To"] == f"<{self.thread[-1]}>", msg["In-Reply-To"]
                    assert f"<{self.thread[0]}>" in str(msg["References"]), msg["References"]
                    assert msg["From"].addresses[0].addr_spec == SHOP_MAIL and str(msg["Subject"]).startswith("Re: ")
                    self.got = msg
                    return
            await asyncio.sleep(0.05)
        raise AssertionError(f"{text!r} never reached the customer's mailbox")

    def _report(self, n: int, status: str, action: str, diagnostic: str) -> bytes:
        """A delivery-status report (RFC 3464) about the hub's last reply, as the relay's MTA sends it."""
        assert self.got is not None
        original = "".join(f"{k}: {v}\r\n" for k, v in self.got.items() if k in ("From", "To", "Subject", "Date", "Message-ID"))
        return (
            "From: Mail Delivery System <MAILER-DAEMON@relay.example>\r\n"
            f"To: {SHOP_MAIL}\r\nSubject: Undelivered Mail Returned to Sender\r\nDate: {formatdate()}\r\n"
            f"Message-ID: <dsn-{n}@relay.example>\r\nAuto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="DSN"\r\n\r\n'
            "--DSN\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYour message could not be delivered.\r\n\r\n"
            "--DSN\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; relay.example\r\n\r\n"
            f"Final-Recipient: rfc822; {self.address}\r\nAction: {action}\r\nStatus: {status}\r\n"
            f"Diagnostic-Code: smtp; {diagnostic}\r\n\r\n"
            f"--DSN\r\nContent-Type: text/rfc822-headers\r\n\r\n{original}\r\n--DSN--\r\n"
        ).encode()

    async def reply_bounces(self) -> str | None:
        """The customer's server refuses the reply after the relay took it: a DSN, permanent (5.1.1)."""
        await self._deliver(self._report(1, "5.1.1", "failed", "550 5.1.1 mailbox unavailable"), [SHOP_MAIL], sender="")
        return "failed"

    async def stale_notice(self) -> None:
        """A second, late report about the same reply, from another hop (4.4.7: delivery time expired)."""
        await self._deliver(self._report(2, "4.4.7", "failed", "451 4.4.7 delivery time expired"), [SHOP_MAIL], sender="")
        async with self.hub.app[DB_KEY].session() as s:
            (row,) = (await s.exec(select(EmailRow).where(EmailRow.message_id == "dsn-2@relay.example"))).all()
        ours = str(self.got["Message-ID"]).strip().strip("<>") if self.got is not None else None
        assert row.detail["bounce"]["original_message_id"] == ours  # read as a report about our reply ...
        assert "bounced_provider_id" not in row.detail  # ... that moved nothing

    async def close(self) -> None:
        pass


@pytest.fixture
async def hub(tmp_path) -> AsyncIterator[Hub]:  # type: ignore[no-untyped-def]
    port, relay_port = _free_port(), _free_port()
    base = f"http://127.0.0.1:{port}"
    relay = Relay()
    controller = Controller(relay, hostname="127.0.0.1", port=relay_port, server_hostname="relay.example", ready_timeout=10)
    controller.start()
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path}/contract.db", service_tokens=("t",), demo_data=False,
        session_secret="s" * 32, media_dir=str(tmp_path / "media"), twilio_standin=True, public_base_url=base,
        host="127.0.0.1", port=port, wrap_up_seconds=0,
        extra={"EMAIL_ADDRESSES": f"{SHOP_MAIL}=support", "SMTP_LISTEN": f"127.0.0.1:{_free_port()}",
               "SMTP_URL": f"smtp://127.0.0.1:{relay_port}?starttls=0", "EMAIL_MAX_BYTES": str(EMAIL_MAX_BYTES)},
    )
    app = create_app(settings)
    server = TestServer(app, host="127.0.0.1", port=port)
    await server.start_server()
    async with app[DB_KEY].transaction() as s:
        await agents_repo.create_agent(s, "ann", "pw-ann-123", display_name="Ann", capacity={"chat": 3, "sms": 4, "whatsapp": 4, "email": 4})
        await agents_repo.create_queue(s, "support", channels=["chat", "sms", "whatsapp", "email"])
    await app[HUB_KEY].load_queues()
    h = Hub(base, app, relay)
    try:
        yield h
    finally:
        if h.agent is not None:
            await h.agent.disconnect()
        await server.close()
        controller.stop()


DRIVERS: dict[str, Any] = {"chat": WebChat, "sms": Sms, "email": Email}


@pytest.fixture(params=list(DRIVERS))
async def customer(request: pytest.FixtureRequest, hub: Hub) -> AsyncIterator[Driver]:
    driver: Any = await DRIVERS[request.param](hub).start()
    try:
        yield driver
    finally:
        await driver.close()


async def test_inbound_is_one_conversation_on_the_customers_record(hub: Hub, customer: Driver) -> None:
    await customer.send("hello")
    await customer.send("I have a question")  # email: an answer in the same thread
    convs = await hub.conversations()
    assert len(convs) == 1 and convs[0].channel == customer.channel
    if customer.channel != "chat":
        assert convs[0].customer_address == customer.address  # normalised: E.164, a lower-cased email address
    assert [m.body for m in await hub.messages()] == ["hello", "I have a question"]


async def test_a_new_topic_is_a_new_conversation_on_the_same_record_only_per_thread(hub: Hub, customer: Driver) -> None:
    await customer.send("about my order")
    await customer.send_new_topic("something else entirely")
    convs = await hub.conversations()
    assert len(convs) == (2 if customer.per_thread else 1)
    assert {c.customer_id for c in convs} == {convs[0].customer_id} and {c.channel for c in convs} == {customer.channel}
    by_conv = [(m.conversation_id, m.body) for m in await hub.messages()]
    assert by_conv == [(convs[0].id, "about my order"), (convs[-1].id, "something else entirely")]


async def test_a_repeat_is_stored_once(hub: Hub, customer: Driver) -> None:
    await customer.send("only once")
    await customer.repeat_last()
    assert [m.body for m in await hub.messages()] == ["only once"]


async def test_the_customers_answer_to_our_reply_stays_in_its_conversation(hub: Hub, customer: Driver) -> None:
    await customer.send("where is my parcel?")
    conversation_id = await hub.agent_takes_next()
    await hub.reply(conversation_id, "It left today.")
    await customer.received("It left today.")
    await customer.answer("Thanks!")
    assert [c.id for c in await hub.conversations()] == [conversation_id]
    assert [(m.conversation_id, m.body) for m in await hub.messages()] == [
        (conversation_id, "where is my parcel?"), (conversation_id, "It left today."), (conversation_id, "Thanks!"),
    ]


async def test_the_reply_reaches_the_customer_and_its_status_only_moves_forward(hub: Hub, customer: Driver) -> None:
    await customer.send("can you help?")
    conversation_id = await hub.agent_takes_next()
    sent = await hub.reply(conversation_id, "Of course.")
    await customer.received("Of course.")
    if customer.accepted_as is None:
        assert sent["delivery_status"] is None  # live: delivered as published
        return
    def of_reply(d: dict[str, Any]) -> bool:
        return bool(d["conversation_id"] == conversation_id and d["seq"] == sent["seq"])
    final = await hub.inbox.wait("message_status", lambda d: of_reply(d) and d["delivery_status"] == customer.accepted_as)
    assert final["delivery_error"] is None
    bounced_as = await customer.reply_bounces()
    if bounced_as is not None:  # the provider's later word that the reply did not arrive after all
        final = await hub.inbox.wait("message_status", lambda d: of_reply(d) and d["delivery_status"] == bounced_as)
        assert final["delivery_error"] and final["delivery_error"]["message"], final
    seen = [d["delivery_status"] for d in hub.inbox.all("message_status") if of_reply(d)]
    assert [RANK[s] for s in seen] == sorted(RANK[s] for s in seen)
    row = await hub.message_at(conversation_id, sent["seq"])
    late_sent = await hub.app[HUB_KEY].delivery_update(customer.channel, row.provider_id or "", "sent")
    assert late_sent is False
    await customer.stale_notice()
    after = await hub.message_at(conversation_id, sent["seq"])
    assert (after.delivery_status, after.delivery_error_code, after.delivery_error) == (
        final["delivery_status"], row.delivery_error_code, row.delivery_error)
    assert [c.id for c in await hub.conversations()] == [conversation_id]  # no notice is a customer's message


async def test_bad_input_gets_a_clear_refusal_and_stores_nothing(hub: Hub, customer: Driver) -> None:
    reason = await customer.send_bad()
    assert reason and reason != "internal"
    assert await hub.messages() == [] and await hub.conversations() == []
