"""The message log (the chat hot path) on SQLite and PostgreSQL (group commit on both)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import pytest

from crm_store.db import Database
from crm_store.message_log import LogAppend, MessageLog, PgMessageLog, SessionMessageLog, SqliteMessageLog, open_message_log
from crm_store.models import Conversation, utcnow
from crm_store.repositories import conversations as conv_repo
from crm_store.repositories import customers as cust_repo


async def _conversation(db: Database, visitor: str, status: str = "queued", agent_id: int | None = None) -> int:
    async with db.transaction() as s:
        customer = (await cust_repo.resolve_identity(s, "web", visitor)).customer
        conv = await conv_repo.open_conversation(s, customer.id, "chat")
        conv.status = status
        s.add(conv)
        await s.flush()
        assert conv.id is not None
        return conv.id


@pytest.fixture
async def log(db: Database):  # type: ignore[no-untyped-def]
    message_log = open_message_log(db)
    yield message_log
    await message_log.close()


def test_the_fast_log_is_chosen_for_each_database(db: Database, log: MessageLog) -> None:
    assert isinstance(log, SqliteMessageLog if db.dialect == "sqlite" else PgMessageLog)


async def test_appends_get_consecutive_sequences_and_are_readable(db: Database, log: MessageLog) -> None:
    conv_id = await _conversation(db, "visitor_log_1")
    before = utcnow() - timedelta(seconds=1)
    results = [await log.append(conv_id, "customer", f"hello {i} <b>", sender_id="7", client_msg_id=f"c{i}") for i in range(3)]
    assert all(r is not None and r.created and r.status == "queued" and r.assigned_agent_id is None for r in results)
    assert [r.message.seq for r in results if r] == [1, 2, 3]
    async with db.session() as s:
        stored = await conv_repo.messages_after(s, conv_id, 0)
        conv = await s.get(Conversation, conv_id)
    assert conv is not None and conv.last_seq == 3
    assert [(m.seq, m.body, m.sender_kind, m.sender_id, m.client_msg_id, m.internal) for m in stored] == [
        (i + 1, f"hello {i} <b>", "customer", "7", f"c{i}", False) for i in range(3)
    ]
    for m, r in zip(stored, results):
        assert r is not None and m.id == r.message.id
        assert m.created_at.tzinfo is not None and before < m.created_at <= utcnow()
        assert abs((m.created_at - r.message.created_at).total_seconds()) < 0.001
        assert m.attachments == []


async def test_a_resend_returns_the_first_copy_and_writes_nothing(db: Database, log: MessageLog) -> None:
    conv_id = await _conversation(db, "visitor_log_2")
    first = await log.append(conv_id, "customer", "once", client_msg_id="same-id")
    again = await log.append(conv_id, "customer", "once (resent)", client_msg_id="same-id")
    assert first is not None and again is not None and first.created and not again.created
    assert again.message.id == first.message.id and again.message.seq == 1 and again.message.body == "once"
    async with db.session() as s:
        assert len(await conv_repo.messages_after(s, conv_id, 0)) == 1


async def test_closed_or_unknown_conversations_take_nothing(db: Database, log: MessageLog) -> None:
    conv_id = await _conversation(db, "visitor_log_3", status="closed")
    assert await log.append(conv_id, "customer", "too late", client_msg_id="late") is None
    assert await log.append(987654321, "customer", "nowhere") is None
    async with db.session() as s:
        assert await conv_repo.messages_after(s, conv_id, 0) == []
        conv = await s.get(Conversation, conv_id)
    assert conv is not None and conv.last_seq == 0


async def test_the_assignment_is_reported(db: Database, log: MessageLog) -> None:
    from crm_store.models import Agent

    async with db.transaction() as s:
        agent = Agent(username="loggy", display_name="Loggy", password_hash="not-a-login")
        s.add(agent)
        await s.flush()
        agent_id = agent.id
    conv_id = await _conversation(db, "visitor_log_4", status="assigned")
    async with db.transaction() as s:
        conv = await s.get(Conversation, conv_id)
        assert conv is not None
        conv.assigned_agent_id = agent_id
        s.add(conv)
    result = await log.append(conv_id, "agent", "hi", sender_id=str(agent_id), internal=True)
    assert result is not None and result.assigned_agent_id == agent_id and result.status == "assigned"
    assert result.message.internal is True


async def test_concurrent_appends_never_share_or_skip_a_sequence(db: Database, log: MessageLog) -> None:
    convs = [await _conversation(db, f"visitor_log_c{i}") for i in range(5)]
    per_conv = 40

    async def send(conv_id: int, i: int) -> None:
        result = await log.append(conv_id, "customer", f"m{i}", client_msg_id=f"k{i}")
        assert result is not None and result.created

    async def resend(conv_id: int) -> None:
        result = await log.append(conv_id, "customer", "dup", client_msg_id="dup-key")
        assert result is not None

    await asyncio.gather(
        *(send(c, i) for c in convs for i in range(per_conv)),
        *(resend(convs[0]) for _ in range(10)),
    )
    async with db.session() as s:
        for c in convs:
            seqs = [m.seq for m in await conv_repo.messages_after(s, c, 0)]
            expected = per_conv + (1 if c == convs[0] else 0)
            assert seqs == list(range(1, expected + 1))
    if isinstance(log, (SqliteMessageLog, PgMessageLog)):  # group commit: far fewer transactions than messages
        assert log.batches < (5 * per_conv + 10) / 4


async def test_appends_a_moment_apart_share_one_commit(db: Database) -> None:
    """Messages arriving one event-loop turn after another (as they do from many sockets) are batched.

    Without the commit interval, each would be written alone as soon as it is queued: three
    transactions for three messages here.
    """
    if db.dialect != "sqlite":
        pytest.skip("group commit is the SQLite log's")
    log = open_message_log(db)
    assert isinstance(log, SqliteMessageLog)
    log.commit_interval = 0.05  # wide, so that a slow machine cannot stretch the turns below past it
    conv_id = await _conversation(db, "visitor_log_window")
    try:
        assert await log.append(conv_id, "customer", "first") is not None  # a quiet log: written at once
        assert log.batches == 1
        second = asyncio.ensure_future(log.append(conv_id, "customer", "second"))
        await asyncio.sleep(0)  # the writer runs between the two, as with messages from two sockets
        await asyncio.sleep(0)
        third = asyncio.ensure_future(log.append(conv_id, "customer", "third"))
        results = await asyncio.gather(second, third)
        assert [r.message.seq for r in results if r] == [2, 3]
        assert log.batches == 2
        await asyncio.sleep(0.06)  # quiet again for longer than the interval: no wait
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await log.append(conv_id, "customer", "fourth") is not None
        assert loop.time() - started < 0.04 and log.batches == 3
    finally:
        await log.close()
    async with db.session() as s:
        assert [m.body for m in await conv_repo.messages_after(s, conv_id, 0)] == ["first", "second", "third", "fourth"]


async def test_the_portable_log_behaves_the_same(db: Database) -> None:
    log = SessionMessageLog(db)
    conv_id = await _conversation(db, "visitor_log_p")
    first = await log.append(conv_id, "customer", "a", client_msg_id="p1")
    again = await log.append(conv_id, "customer", "a", client_msg_id="p1")
    second = await log.append(conv_id, "customer", "b")
    assert first and again and second and first.created and not again.created
    assert (first.message.seq, again.message.seq, second.message.seq) == (1, 1, 2)
    closed = await _conversation(db, "visitor_log_pc", status="closed")
    assert await log.append(closed, "customer", "x") is None


async def test_one_bad_message_fails_alone_in_its_batch(db: Database) -> None:
    """A batch with an item the database refuses stores the others and fails only that one."""
    if db.dialect != "sqlite":
        pytest.skip("group commit is the SQLite log's")
    log = open_message_log(db)
    assert isinstance(log, SqliteMessageLog)
    conv_id = await _conversation(db, "visitor_log_bad")
    async with db.transaction() as s:  # a trigger stands in for any refusal (a full disk, a constraint)
        from sqlalchemy import text

        await s.execute(text(
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON messages WHEN NEW.body = 'poison' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
        ))
    try:
        results = await asyncio.gather(
            *(log.append(conv_id, "customer", body) for body in ("a", "poison", "b")), return_exceptions=True
        )
        assert isinstance(results[1], Exception)
        good = [r for r in (results[0], results[2]) if not isinstance(r, BaseException)]
        assert [r.message.body for r in good if r] == ["a", "b"]
        async with db.session() as s:
            assert [(m.seq, m.body) for m in await conv_repo.messages_after(s, conv_id, 0)] == [(1, "a"), (2, "b")]
    finally:
        await log.close()


async def test_a_held_write_lock_never_blocks_the_event_loop(db: Database) -> None:
    """The log writes on the event loop only when the lock is free; otherwise its thread waits for it."""
    import sqlite3
    import time

    if db.dialect != "sqlite":
        pytest.skip("the SQLite log's inline writes")
    log = open_message_log(db)
    assert isinstance(log, SqliteMessageLog)
    conv_id = await _conversation(db, "visitor_log_lock")
    assert (await log.append(conv_id, "customer", "before")) is not None
    other = sqlite3.connect(log.path, isolation_level=None, timeout=5)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock
    try:
        pending = asyncio.ensure_future(log.append(conv_id, "customer", "while locked"))
        started = time.perf_counter()
        await asyncio.sleep(0.3)
        assert time.perf_counter() - started < 1.0  # the loop kept running
        assert not pending.done()
        other.execute("COMMIT")
        result = await asyncio.wait_for(pending, 5)
        assert result is not None and result.message.seq == 2 and log.offloaded == 1
    finally:
        other.close()
        await log.close()
    async with db.session() as s:
        assert [m.body for m in await conv_repo.messages_after(s, conv_id, 0)] == ["before", "while locked"]


# --- provider channels: provider ids, attachments, delivery status ---------------------------------------

PICTURE = {"type": "media", "content_type": "image/jpeg", "url": "/media/abc.jpg", "name": "SMx-0.jpg", "size": 2048}


@pytest.fixture(params=["fast", "portable"])
async def any_log(request: pytest.FixtureRequest, db: Database):  # type: ignore[no-untyped-def]
    """The database's fast log, and the portable ORM one: both keep the same promises."""
    message_log = open_message_log(db) if request.param == "fast" else SessionMessageLog(db)
    yield message_log
    await message_log.close()


async def test_a_provider_message_keeps_its_id_attachments_and_status(db: Database, any_log: MessageLog) -> None:
    conv_id = await _conversation(db, "visitor_log_prov")
    sms = await any_log.append(conv_id, "customer", "a picture", sender_id="3", provider_id="SM" + "1" * 32, attachments=[PICTURE])
    sent = await any_log.append(conv_id, "agent", "thanks", sender_id="9", delivery_status="queued")
    assert sms is not None and sent is not None and sms.created and sent.created
    assert (sms.message.provider_id, sms.message.attachments, sms.message.delivery_status) == ("SM" + "1" * 32, [PICTURE], None)
    assert (sent.message.provider_id, sent.message.attachments, sent.message.delivery_status) == (None, [], "queued")
    async with db.session() as s:
        stored = await conv_repo.messages_after(s, conv_id, 0)
    assert [(m.seq, m.body, m.provider_id, m.attachments, m.delivery_status, m.client_msg_id) for m in stored] == [
        (1, "a picture", "SM" + "1" * 32, [PICTURE], None, None),
        (2, "thanks", None, [], "queued", None),
    ]
    assert [m.id for m in stored] == [sms.message.id, sent.message.id]


async def test_a_repeated_provider_id_returns_the_first_copy_and_writes_nothing(db: Database, any_log: MessageLog) -> None:
    conv_id = await _conversation(db, "visitor_log_prov2")
    sid = "SM" + "2" * 32
    first = await any_log.append(conv_id, "customer", "once", sender_id="3", provider_id=sid, attachments=[PICTURE])
    again = await any_log.append(conv_id, "customer", "once (Twilio's retry)", sender_id="3", provider_id=sid)
    assert first is not None and again is not None and first.created and not again.created
    assert again.message == first.message  # the first copy, as it was stored (its text and attachments)
    assert (again.status, again.assigned_agent_id) == ("queued", None)
    async with db.session() as s:
        assert len(await conv_repo.messages_after(s, conv_id, 0)) == 1
        conv = await s.get(Conversation, conv_id)
    assert conv is not None and conv.last_seq == 1


async def test_a_provider_id_is_one_message_across_conversations_even_once_closed(db: Database, any_log: MessageLog) -> None:
    """Provider ids are unique across all messages: a repeat anywhere gets the first copy, where it is."""
    first_conv = await _conversation(db, "visitor_log_prov3")
    other_conv = await _conversation(db, "visitor_log_prov4")
    sid = "SM" + "3" * 32
    first = await any_log.append(first_conv, "customer", "hello", provider_id=sid)
    assert first is not None and first.created
    async with db.transaction() as s:
        conv = await s.get(Conversation, first_conv)
        assert conv is not None
        conv.status = "closed"
        s.add(conv)
    for target in (first_conv, other_conv):  # its own conversation (closed by now), or another one
        again = await any_log.append(target, "customer", "hello", provider_id=sid)
        assert again is not None and not again.created
        assert (again.message.id, again.message.conversation_id, again.message.seq) == (first.message.id, first_conv, 1)
        assert again.status == "closed"
    async with db.session() as s:
        assert await conv_repo.messages_after(s, other_conv, 0) == []
        other = await s.get(Conversation, other_conv)
    assert other is not None and other.last_seq == 0


async def test_the_client_id_is_looked_up_before_the_provider_id(db: Database, any_log: MessageLog) -> None:
    conv_id = await _conversation(db, "visitor_log_prov5")
    a = await any_log.append(conv_id, "customer", "a", client_msg_id="c-a", provider_id="SM" + "4" * 32)
    b = await any_log.append(conv_id, "customer", "b", client_msg_id="c-b", provider_id="SM" + "5" * 32)
    again = await any_log.append(conv_id, "customer", "?", client_msg_id="c-b", provider_id="SM" + "4" * 32)
    assert a and b and again and not again.created and again.message.id == b.message.id


async def test_concurrent_repeats_of_a_provider_id_make_one_message(db: Database, any_log: MessageLog) -> None:
    convs = [await _conversation(db, f"visitor_log_prov_c{i}") for i in range(2)]
    sids = ["SM" + f"{i:032x}" for i in range(10)]

    async def send(conv_id: int, sid: str) -> Any:
        return await any_log.append(conv_id, "customer", sid, provider_id=sid)

    results = await asyncio.gather(*(send(c, sid) for sid in sids for c in convs for _ in range(2)))
    assert all(r is not None for r in results)
    by_sid: dict[str, set[int]] = {}
    for r in results:
        by_sid.setdefault(r.message.provider_id, set()).add(r.message.id)
    assert {sid: len(ids) for sid, ids in by_sid.items()} == {sid: 1 for sid in sids}
    assert sum(r.created for r in results) == len(sids)
    async with db.session() as s:
        stored = [m for c in convs for m in await conv_repo.messages_after(s, c, 0)]
        for c in convs:
            seqs = [m.seq for m in await conv_repo.messages_after(s, c, 0)]
            assert seqs == list(range(1, len(seqs) + 1))  # no gap from a refused duplicate
    assert sorted(m.provider_id or "" for m in stored) == sorted(sids)


async def test_the_wal_starts_over_once_the_log_is_quiet_and_not_while_messages_flow(db: Database) -> None:
    """A truncating checkpoint while messages flow holds every writer back (the chat relay's p99 tripled):
    the WAL is only truncated after the log has been quiet for a moment (or past a very long WAL)."""
    import os

    if db.dialect != "sqlite":
        pytest.skip("the WAL is SQLite's")
    log = open_message_log(db)
    assert isinstance(log, SqliteMessageLog)
    log.truncate_frames, log.idle_truncate_after, log.checkpoint_every = 1, 0.2, 0.0
    wal = f"{log.path}-wal" if hasattr(log, "path") else None
    conv_id = await _conversation(db, "visitor_wal")
    try:
        for i in range(30):
            assert await log.append(conv_id, "customer", f"m{i}" * 50) is not None
        path = wal or next(p for p in (f"{str(db.url).split(':///', 1)[1]}-wal",) if os.path.exists(p))
        await asyncio.sleep(0.05)  # a checkpoint during the flow: PASSIVE only, the WAL keeps its length
        assert os.path.getsize(path) > 0
        for _ in range(100):  # quiet: it is truncated
            await asyncio.sleep(0.05)
            if os.path.getsize(path) == 0:
                break
        assert os.path.getsize(path) == 0
    finally:
        await log.close()


# --- PostgreSQL: group commit ------------------------------------------------------------------------------


def _dsn(db: Database) -> str:
    from sqlalchemy.engine import make_url

    return make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
async def pg_log(db: Database):  # type: ignore[no-untyped-def]
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL's group commit")
    log = open_message_log(db)
    assert isinstance(log, PgMessageLog)
    yield log
    await log.close()


async def _transactions_of(db: Database, conv_id: int) -> int:
    """How many transactions wrote this conversation's messages, as PostgreSQL itself recorded it (xmin)."""
    import asyncpg

    conn = await asyncpg.connect(_dsn(db))
    try:
        return int(await conn.fetchval("SELECT count(DISTINCT xmin::text) FROM messages WHERE conversation_id = $1", conv_id))
    finally:
        await conn.close()


async def test_pg_concurrent_appends_to_one_conversation_share_transactions_with_no_gap(db: Database, pg_log: PgMessageLog) -> None:
    conv_id = await _conversation(db, "visitor_pg_burst")
    assert await pg_log.append(conv_id, "customer", "alone") is not None  # an idle log writes at once
    assert pg_log.batches == 1
    n = 60
    results = await asyncio.gather(*(pg_log.append(conv_id, "customer", f"m{i}", client_msg_id=f"b{i}") for i in range(n)))
    assert [r.message.seq for r in results if r] == list(range(2, n + 2))  # in the order they were appended
    async with db.session() as s:
        stored = await conv_repo.messages_after(s, conv_id, 0)
        conv = await s.get(Conversation, conv_id)
    assert [m.seq for m in stored] == list(range(1, n + 2)) and conv is not None and conv.last_seq == n + 1
    assert [m.id for m in stored[1:]] == [r.message.id for r in results if r]
    assert pg_log.batches <= 3 and pg_log.appended == n + 1
    assert await _transactions_of(db, conv_id) == pg_log.batches  # several messages per commit, counted by PostgreSQL


async def test_pg_a_duplicate_inside_a_batch_returns_the_first_copy_and_its_neighbours_are_stored(
    db: Database, pg_log: PgMessageLog
) -> None:
    conv_id = await _conversation(db, "visitor_pg_dup")
    other = await _conversation(db, "visitor_pg_dup_other")
    sid = "SM" + "d" * 32
    results = await asyncio.gather(
        pg_log.append(conv_id, "customer", "a", client_msg_id="x"),
        pg_log.append(other, "customer", "sms", provider_id=sid),
        pg_log.append(conv_id, "customer", "a (resent)", client_msg_id="x"),
        pg_log.append(conv_id, "customer", "sms again", provider_id=sid),
        pg_log.append(conv_id, "customer", "b", client_msg_id="y"),
    )
    assert pg_log.batches == 1 and pg_log.fallbacks == 0
    a, sms, resent, sms_again, b = results
    assert a and sms and resent and sms_again and b
    assert (a.created, resent.created, b.created) == (True, False, True)
    assert resent.message == a.message
    # the two copies of one provider id, in two conversations of one batch: one stored, the other gets it
    # (a batch is written conversation by conversation, so which one is not the arrival order)
    assert sms.created != sms_again.created and sms.message == sms_again.message
    async with db.session() as s:
        stored = await conv_repo.messages_after(s, conv_id, 0)
    assert [m.seq for m in stored] == list(range(1, len(stored) + 1))  # no gap where the resend was
    assert [m.body for m in stored] == ["a"] + (["sms again"] if sms_again.created else []) + ["b"]


async def test_pg_a_duplicate_that_loses_a_race_with_another_process_fails_none_of_its_batch(
    db: Database, pg_log: PgMessageLog
) -> None:
    """Another hub process holds an uncommitted copy of a provider id: our batch hits the unique index, is
    rolled back and written again message by message; the duplicate gets the first copy, the others are
    stored with consecutive sequences."""
    import asyncpg

    conv_id = await _conversation(db, "visitor_pg_race")
    elsewhere = await _conversation(db, "visitor_pg_race_other")
    sid = "SM" + "r" * 32
    other = await asyncpg.connect(_dsn(db))
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute(
            "UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1; ", elsewhere)
        await other.execute(
            "INSERT INTO messages (conversation_id, seq, sender_kind, body, attachments, internal, provider_id, created_at)"
            " VALUES ($1, 1, 'customer', 'first', '[]', false, $2, now())", elsewhere, sid)
        batch = asyncio.ensure_future(asyncio.gather(
            pg_log.append(conv_id, "customer", "before"),
            pg_log.append(conv_id, "customer", "racing", provider_id=sid),
            pg_log.append(conv_id, "customer", "after"),
        ))
        await asyncio.sleep(0.3)  # the batch waits on the unique index for the other transaction
        assert not batch.done()
        await tx.commit()
        before, racing, after = await asyncio.wait_for(batch, 10)
    finally:
        await other.close()
    assert pg_log.fallbacks == 1
    assert before and racing and after and before.created and after.created and not racing.created
    assert (racing.message.conversation_id, racing.message.body) == (elsewhere, "first")
    async with db.session() as s:
        assert [(m.seq, m.body) for m in await conv_repo.messages_after(s, conv_id, 0)] == [(1, "before"), (2, "after")]


async def test_pg_a_resend_racing_its_first_copy_in_another_process_gets_that_copy(
    db: Database, pg_log: PgMessageLog
) -> None:
    """Another hub process is committing the first copy of a client id (the customer resent it through another
    node): our append waits for that conversation, finds the copy once it is committed (not a new message, not a
    gap in the sequence, not "closed"), and the rest of its batch is stored."""
    import asyncpg

    conv_id = await _conversation(db, "visitor_pg_resend_race")
    other_conv = await _conversation(db, "visitor_pg_resend_race_other")
    other = await asyncpg.connect(_dsn(db))
    try:
        tx = other.transaction()
        await tx.start()
        await other.execute("UPDATE conversations SET last_seq = last_seq + 1 WHERE id = $1", conv_id)
        await other.execute(
            "INSERT INTO messages (conversation_id, seq, sender_kind, body, attachments, internal, client_msg_id, created_at)"
            " VALUES ($1, 1, 'customer', 'first', '[]', false, 'c-1', now())", conv_id)
        batch = asyncio.ensure_future(asyncio.gather(
            pg_log.append(other_conv, "customer", "elsewhere"),
            pg_log.append(conv_id, "customer", "first", client_msg_id="c-1"),
            pg_log.append(conv_id, "customer", "second", client_msg_id="c-2"),
        ))
        await asyncio.sleep(0.3)  # the batch waits for the other transaction's lock on the conversation
        assert not batch.done()
        await tx.commit()
        elsewhere, resent, second = await asyncio.wait_for(batch, 10)
    finally:
        await other.close()
    assert elsewhere and elsewhere.created and second and second.created
    assert resent and not resent.created and (resent.message.seq, resent.message.body) == (1, "first")
    assert second.message.seq == 2
    async with db.session() as s:
        assert [(m.seq, m.body) for m in await conv_repo.messages_after(s, conv_id, 0)] == [(1, "first"), (2, "second")]
        conv = await s.get(Conversation, conv_id)
        assert conv is not None and conv.last_seq == 2


async def test_pg_one_refused_message_fails_alone_in_its_batch(db: Database, pg_log: PgMessageLog) -> None:
    conv_id = await _conversation(db, "visitor_pg_poison")
    async with db.transaction() as s:
        from sqlalchemy import text

        await s.execute(text(
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF NEW.body = 'poison' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$"))
        await s.execute(text("CREATE TRIGGER refuse_poison BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_poison()"))
    try:
        results = await asyncio.gather(
            *(pg_log.append(conv_id, "customer", body) for body in ("a", "poison", "b")), return_exceptions=True
        )
        assert isinstance(results[1], Exception)
        assert [r.message.body for r in (results[0], results[2]) if isinstance(r, LogAppend)] == ["a", "b"]
        async with db.session() as s:
            assert [(m.seq, m.body) for m in await conv_repo.messages_after(s, conv_id, 0)] == [(1, "a"), (2, "b")]
    finally:
        async with db.transaction() as s:
            await s.execute(text("DROP TRIGGER refuse_poison ON messages"))
            await s.execute(text("DROP FUNCTION refuse_poison()"))


async def test_pg_nothing_is_acknowledged_before_its_commit(db: Database, pg_log: PgMessageLog) -> None:
    """A commit that fails (a deferred check, run at COMMIT) fails every append of its batch: none returns."""
    from sqlalchemy import text

    conv_id = await _conversation(db, "visitor_pg_commit")
    async with db.transaction() as s:
        await s.execute(text(
            "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN IF NEW.body = 'doomed' THEN RAISE EXCEPTION 'commit refused'; END IF; RETURN NULL; END $$"))
        await s.execute(text(
            "CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON messages DEFERRABLE INITIALLY DEFERRED"
            " FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()"))
    try:
        results = await asyncio.gather(
            *(pg_log.append(conv_id, "customer", body, client_msg_id=body) for body in ("a", "doomed", "b")),
            return_exceptions=True,
        )
        assert all(isinstance(r, Exception) for r in results), results
        async with db.session() as s:
            assert await conv_repo.messages_after(s, conv_id, 0) == []
            conv = await s.get(Conversation, conv_id)
        assert conv is not None and conv.last_seq == 0
        again = await pg_log.append(conv_id, "customer", "a", client_msg_id="a")  # the log goes on
        assert again is not None and again.created and again.message.seq == 1
    finally:
        async with db.transaction() as s:
            await s.execute(text("DROP TRIGGER refuse_at_commit ON messages"))
            await s.execute(text("DROP FUNCTION refuse_at_commit()"))


async def test_pg_an_append_to_a_long_conversation_does_not_read_its_messages(db: Database) -> None:
    """The append statement is prepared (and its plan chosen) while ``messages`` is nearly empty, with no
    statistics: a lookup of the client id before the insert then went through ``(conversation_id, seq)`` and read
    the conversation's every message on each append. Now the client id's unique index checks it (ON CONFLICT),
    and the lookup of a first copy runs only when nothing was inserted."""
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL's cached plans")
    import asyncpg

    from crm_store.migrate import upgrade
    from tests.conftest import PG_ADMIN_URL, _pg_admin

    name = f"cc_plan_{uuid.uuid4().hex[:8]}"  # a database of its own: new tables, no statistics
    await _pg_admin(f'CREATE DATABASE "{name}"')
    fresh = Database(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}")
    log = PgMessageLog(fresh)
    try:
        await asyncio.get_running_loop().run_in_executor(None, upgrade, fresh.url)
        conv_id = await _conversation(fresh, "visitor_plan")
        for i in range(8):  # the statement is prepared and its generic plan chosen on a table of a few rows
            assert await log.append(conv_id, "customer", f"early {i}", client_msg_id=f"early-{i}") is not None
        conn = await asyncpg.connect(_dsn(fresh))
        try:  # the conversation grows long (as one does over a day), written past the log
            await conn.execute(
                "INSERT INTO messages (conversation_id, seq, sender_kind, body, attachments, internal, client_msg_id, created_at)"
                " SELECT $1, 8 + g, 'customer', 'bulk', '[]', false, 'bulk-' || g, now() FROM generate_series(1, 5000) g", conv_id)
            await conn.execute("UPDATE conversations SET last_seq = 5008 WHERE id = $1", conv_id)
        finally:
            await conn.close()
        for i in range(4):
            late = await log.append(conv_id, "customer", f"late {i}", client_msg_id=f"late-{i}")
            assert late is not None and late.created and late.message.seq == 5009 + i
        resent = await log.append(conv_id, "customer", "late 0 again", client_msg_id="late-0")
        assert resent is not None and not resent.created and (resent.message.seq, resent.message.body) == (5009, "late 0")
        pool = await log._get_pool()
        async with pool.acquire() as c:  # the log's own connection, with the log's own prepared statement and plan
            stmt = await c.fetchval(
                "SELECT name FROM pg_prepared_statements WHERE statement LIKE '%INSERT INTO messages%'"
                " AND statement NOT LIKE '%pg_prepared_statements%' ORDER BY generic_plans DESC LIMIT 1")
            plan = [r[0] for r in await c.fetch(
                f"EXPLAIN (ANALYZE, BUFFERS) EXECUTE {stmt}({conv_id}, 'customer', NULL, 'x', 'probe', false, now(), NULL, '[]', NULL)")]
        scans = [line for line in plan if "on messages" in line and "Scan" in line]
        assert scans and all("never executed" in line for line in scans), "\n".join(plan)
    finally:
        await log.close()
        await fresh.dispose()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
