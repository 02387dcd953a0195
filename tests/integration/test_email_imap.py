"""The IMAP poller against a real Dovecot (scripts/ensure-dovecot), on SQLite and PostgreSQL.

Mail is placed with IMAP APPEND. ``take`` deduplicates as the real ingest does (``take_in`` in a
transaction) and, before it returns, looks at the message on the server: it must not be \\Seen yet.
"""

from __future__ import annotations

import asyncio
import email
import hashlib
import logging
import re
import time
import uuid
from email import policy
from typing import Any, Callable

import pytest
from sqlmodel import select

from crm_store.db import Database
from crm_store.models import EmailMessage
from crm_store.repositories.email import take_in
from crm_store.repositories.imap import get_cursor
from integrations.email.config import ImapAccount
from integrations.email.imap import ImapPoller, mailbox_name
from tests.integration.dovecot import DovecotServer, dovecot  # noqa: F401  (the fixture)

ADDRESS = "support@shop.example"


def message(n: int, mid: str | None = None) -> bytes:
    mid = mid or f"{uuid.uuid4().hex}@customer.example"
    return (
        f"From: Ann <ann@customer.example>\r\nTo: {ADDRESS}\r\nSubject: order {n}\r\nMessage-ID: <{mid}>\r\n"
        f"Date: Mon, 01 Jan 2024 10:00:00 +0000\r\n\r\nWhere is order {n}?\r\n"
    ).encode()


def message_id(raw: bytes) -> str:
    return str(email.message_from_bytes(raw, policy=policy.default)["Message-ID"]).strip("<> ")


def _append(server: DovecotServer, folder: str, *raws: bytes) -> None:
    with server.client() as c:
        for raw in raws:
            typ, data = c.append(mailbox_name(folder), None, None, raw)
            assert typ == "OK", data


async def append(server: DovecotServer, folder: str, *raws: bytes) -> None:
    await asyncio.to_thread(_append, server, folder, *raws)


def _flags(server: DovecotServer, folder: str) -> dict[str, str]:
    """Message-ID -> FLAGS of every message in the folder (read-only: EXAMINE)."""
    with server.client() as c:
        typ, _ = c.select(mailbox_name(folder), readonly=True)
        assert typ == "OK"
        typ, data = c.fetch("1:*", "(FLAGS BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        out: dict[str, str] = {}
        for item in data:
            if isinstance(item, tuple):
                flags = re.search(rb"FLAGS \(([^)]*)\)", item[0])
                out[message_id(item[1])] = (flags.group(1) if flags else b"").decode()
        return out


async def flags(server: DovecotServer, folder: str) -> dict[str, str]:
    return await asyncio.to_thread(_flags, server, folder)


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> float:
    """Wait until ``check()``; the seconds it took."""
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"not within {timeout} s")
        await asyncio.sleep(0.02)
    return time.monotonic() - start


class Ingest:
    """``take`` as the real ingest does it (dedup on the ``db`` fixture), recording what it saw; ``process`` a fake."""

    def __init__(self, db: Database, server: DovecotServer, folder: str) -> None:
        self.db, self.server, self.folder = db, server, folder
        self.takes: list[tuple[str, str, str, bool]] = []  # (Message-ID, mailbox, source, created)
        self.seen_before_commit: list[str] = []  # Message-IDs already \Seen when take() ran: must stay empty
        self.processed: list[int] = []
        self.fail_next = 0
        self.during_take: list[bytes] = []  # appended to the folder while take() runs (once each)

    async def take(self, raw: bytes, mailbox: str, source: str) -> tuple[int, bool]:
        mid = message_id(raw)
        if "\\Seen" in (await flags(self.server, self.folder)).get(mid, ""):
            self.seen_before_commit.append(mid)
        if self.during_take:
            await append(self.server, self.folder, self.during_take.pop(0))
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("database is down")
        async with self.db.transaction() as s:
            taken = await take_in(s, mailbox=mailbox, raw=raw, raw_key="raw/" + hashlib.sha256(raw).hexdigest(),
                                  message_id=mid, source=source)
            row_id = taken.row.id
        assert row_id is not None
        self.takes.append((mid, mailbox, source, taken.created))
        return row_id, taken.created

    async def process(self, row_id: int) -> None:
        self.processed.append(row_id)

    def mids(self) -> list[str]:
        return [t[0] for t in self.takes]


@pytest.fixture
def folder(dovecot: DovecotServer) -> str:  # noqa: F811
    return dovecot.new_folder()


@pytest.fixture
def account(dovecot: DovecotServer, folder: str) -> ImapAccount:  # noqa: F811
    return ImapAccount(host=dovecot.host, port=dovecot.port, tls=False, username=dovecot.user,
                       password=dovecot.password, folder=folder, address=ADDRESS)


@pytest.fixture
def ingest(db: Database, dovecot: DovecotServer, folder: str) -> Ingest:  # noqa: F811
    return Ingest(db, dovecot, folder)


@pytest.fixture
async def pollers(db: Database, ingest: Ingest):  # type: ignore[no-untyped-def]
    """Makes pollers on the test's database and ingest; stops them all at the end."""
    made: list[ImapPoller] = []

    def make(account: ImapAccount, **kw: Any) -> ImapPoller:
        kw.setdefault("backoff", (0.1, 0.5))
        poller = ImapPoller(account, lambda: db, ingest.take, ingest.process, **kw)
        made.append(poller)
        return poller

    yield make
    for p in made:
        await p.stop()


async def rows(db: Database) -> list[EmailMessage]:
    async with db.session() as s:
        return list((await s.exec(select(EmailMessage).order_by(EmailMessage.id))).all())  # type: ignore[arg-type]


async def test_new_mail_is_taken_in_then_marked_seen_and_nothing_is_deleted(
    db: Database, dovecot: DovecotServer, folder: str, account: ImapAccount, ingest: Ingest, pollers: Any,  # noqa: F811
) -> None:
    raws = [message(i) for i in range(3)]
    await append(dovecot, folder, *raws)
    poller = pollers(account)
    await poller.start()
    await eventually(lambda: len(ingest.processed) == 3)
    await eventually(lambda: poller.state == "idle")

    assert ingest.mids() == [message_id(r) for r in raws]  # in UID order
    assert {(t[1], t[2], t[3]) for t in ingest.takes} == {(ADDRESS, "imap", True)}
    assert ingest.seen_before_commit == []  # \Seen only after take() returned
    on_server = await flags(dovecot, folder)
    assert set(on_server) == {message_id(r) for r in raws}  # all still there
    assert all("\\Seen" in f and "\\Deleted" not in f for f in on_server.values())
    stored = await rows(db)
    assert [(r.message_id, r.source, r.state) for r in stored] == [(message_id(r), "imap", "received") for r in raws]
    assert ingest.processed == [r.id for r in stored]
    async with db.session() as s:
        cursor = await get_cursor(s, account.account, folder)
    assert cursor is not None and cursor.last_uid == 3 and cursor.uidvalidity > 0


async def test_a_failed_take_leaves_the_message_unseen_and_is_retried(
    db: Database, dovecot: DovecotServer, folder: str, account: ImapAccount, ingest: Ingest, pollers: Any,  # noqa: F811
) -> None:
    raw = message(1)
    await append(dovecot, folder, raw)
    ingest.fail_next = 2
    poller = pollers(account)
    await poller.start()
    await eventually(lambda: ingest.fail_next == 0)
    assert "\\Seen" not in (await flags(dovecot, folder))[message_id(raw)]  # not committed: not seen
    await eventually(lambda: len(ingest.processed) == 1)
    assert poller.last_error and "database is down" in poller.last_error
    assert "\\Seen" in (await flags(dovecot, folder))[message_id(raw)]
    assert len(await rows(db)) == 1


async def test_a_restart_resumes_from_the_cursor(
    db: Database, dovecot: DovecotServer, folder: str, account: ImapAccount, ingest: Ingest, pollers: Any,  # noqa: F811
) -> None:
    first = [message(1), message(2)]
    await append(dovecot, folder, *first)
    one = pollers(account)
    await one.start()
    await eventually(lambda: len(ingest.processed) == 2 and one.state == "idle")
    await one.stop()

    two = pollers(account)
    await two.start()
    await eventually(lambda: two.state == "idle")
    assert two.taken == 0  # nothing fetched again
    later = message(3)
    await append(dovecot, folder, later)
    await eventually(lambda: len(ingest.processed) == 3)
    assert ingest.mids() == [message_id(r) for r in (*first, later)]
    assert two.taken == 1 and all(t[3] for t in ingest.takes)  # no repeat was ever fetched


async def test_mail_that_arrived_during_an_outage_is_backfilled(
    db: Database, dovecot: DovecotServer, folder: str, account: ImapAccount, ingest: Ingest, pollers: Any,  # noqa: F811
) -> None:
    before = message(1)
    await append(dovecot, folder, before)
    one = pollers(account)
    await one.start()
    await eventually(lambda: len(ingest.processed) == 1)
    await one.stop()

    during = [message(2), message(3)]
    await append(dovecot, folder, *during)  # the hub is down
    two = pollers(account)
    await two.start()
    await eventually(lambda: len(ingest.processed) == 3)
    assert ingest.mids() == [message_id(r) for r in (before, *during)]
    assert two.taken == 2
    assert all("\\Seen" in f for f in (await flags(dovecot, folder)).values())


async def test_a_uidvalidity_change_refetches_the_folder_without_doubling(
    db: Database, dovecot: DovecotServer, folder: str, account: ImapAccount, ingest: Ingest, pollers: Any,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="integrations.email.imap")
    old = [message(1), message(2)]
    await append(dovecot, folder, *old)
    poller = pollers(account, idle_refresh=1.0)  # a folder recreated under an IDLE sends no news: the refresh finds it
    await poller.start()
    await eventually(lambda: len(ingest.processed) == 2 and poller.state == "idle")
    async with db.session() as s:
        before = await get_cursor(s, account.account, folder)
    assert before is not None

    def recreate() -> None:  # while the poller is IDLE in it
        with dovecot.client() as c:
            assert c.delete(mailbox_name(folder))[0] == "OK"
            assert c.create(mailbox_name(folder))[0] == "OK"

    await asyncio.to_thread(recreate)
    new = message(3)
    await append(dovecot, folder, *old, new)  # the same two again, and one new
    await eventually(lambda: len(ingest.processed) == 3, timeout=15)
    await eventually(lambda: poller.state == "idle")

    assert ingest.mids() == [message_id(r) for r in (*old, *old, new)]
    assert [t[3] for t in ingest.takes] == [True, True, False, False, True]  # the repeats are deduplicated
    assert len(ingest.processed) == 3  # and never handed on again
    assert [r.message_id for r in await rows(db)] == [message_id(r) for r in (*old, new)]
    async with db.session() as s:
        after = await get_cursor(s, account.account, folder)
    assert after is not None and after.uidvalidity != before.uidvalidity and after.last_uid == 3
    assert "UIDVALIDITY changed" in caplog.text
    assert all("\\Seen" in f for f in (await flags(dovecot, folder)).values())


async def test_idle_delivers_within_a_couple_of_seconds_and_stop_is_prompt(
    db: Database, dovecot: DovecotServer, folder: str, account: ImapAccount, ingest: Ingest, pollers: Any,  # noqa: F811
) -> None:
    poller = pollers(account)  # polling would take 60 s: only IDLE can be this quick
    await poller.start()
    await eventually(lambda: poller.state == "idle")
    await asyncio.sleep(0.3)  # well inside the IDLE
    for n in range(2):
        await append(dovecot, folder, message(n))
        took = await eventually(lambda: len(ingest.processed) == n + 1, timeout=5)
        assert took < 2.0, f"IDLE took {took:.2f} s"
        await eventually(lambda: poller.state == "idle")
    started = time.monotonic()
    await poller.stop()
    assert time.monotonic() - started < 2.0 and poller.state == "stopped"


async def test_mail_arriving_while_it_takes_in_is_not_left_for_the_next_check(
    db: Database, dovecot: DovecotServer, folder: str, account: ImapAccount, ingest: Ingest, pollers: Any,  # noqa: F811
) -> None:
    # the server may announce it (EXISTS) in the answer to a FETCH or STORE, not in the next IDLE
    ingest.during_take = [message(2)]
    await append(dovecot, folder, message(1))
    poller = pollers(account)
    await poller.start()
    await eventually(lambda: len(ingest.processed) == 2, timeout=3)


async def test_without_idle_it_polls(
    db: Database, dovecot: DovecotServer, folder: str, account: ImapAccount, ingest: Ingest, pollers: Any,  # noqa: F811
) -> None:
    poller = pollers(account, use_idle=False, poll_interval=0.3)
    assert pollers(account, poll_interval=600).poll_interval == 60  # never slower than a minute
    await poller.start()
    await eventually(lambda: poller.state == "polling")
    await append(dovecot, folder, message(1))
    await eventually(lambda: len(ingest.processed) == 1, timeout=5)


async def test_the_password_never_appears_in_logs(
    db: Database, dovecot: DovecotServer, folder: str, account: ImapAccount, ingest: Ingest, pollers: Any,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_password = "Wr0ng-" + uuid.uuid4().hex
    wrong = ImapAccount(host=account.host, port=account.port, tls=False, username=account.username,
                        password=wrong_password, folder=folder, address=ADDRESS)
    bad = pollers(wrong)
    await bad.start()
    await eventually(lambda: "reconnecting" in caplog.text)  # a failed login, logged
    await bad.stop()
    missing = pollers(ImapAccount(host=account.host, port=account.port, tls=False, username=account.username,
                                  password=account.password, folder="no-such-folder", address=ADDRESS))
    await missing.start()
    await eventually(lambda: "no-such-folder" in caplog.text)  # an error after a good login
    await missing.stop()
    good = pollers(account)
    await good.start()
    await append(dovecot, folder, message(1))
    await eventually(lambda: len(ingest.processed) == 1)
    await good.stop()

    assert "AUTHENTICATIONFAILED" in caplog.text or "Authentication failed" in caplog.text
    assert account.account in caplog.text
    for secret in (account.password, wrong_password):
        assert secret not in caplog.text
        assert all(secret not in repr(r.args) for r in caplog.records)
    for p in (bad, missing, good):
        assert account.password not in repr(p) and wrong_password not in repr(p)
        assert wrong_password not in (p.last_error or "") and account.password not in (p.last_error or "")


def test_folder_names_are_quoted_and_encoded() -> None:
    assert mailbox_name("INBOX") == '"INBOX"'
    assert mailbox_name('a "b"\\c') == '"a \\"b\\"\\\\c"'
    assert mailbox_name("Entwürfe & Co") == '"Entw&APw-rfe &- Co"'  # RFC 3501 modified UTF-7
