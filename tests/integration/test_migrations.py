"""The Alembic migrations build exactly the schema the models describe, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.ext.asyncio import create_async_engine

from crm_store.db import metadata
from crm_store.migrate import upgrade


async def _diff(url: str) -> list[object]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return await conn.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync, opts={"compare_type": True}), metadata)
            )
    finally:
        await engine.dispose()


def _in_thread(fn, *args):  # type: ignore[no-untyped-def]
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def test_sqlite_migrations_match_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/m.db"
    upgrade(url)
    assert asyncio.run(_diff(url)) == []


def test_postgres_migrations_match_models(pg_url: str) -> None:
    # pg_url was migrated by the fixture; the diff runs in a thread (the fixture set-up may own a loop)
    assert _in_thread(lambda: asyncio.run(_diff(pg_url))) == []


def test_migrations_are_repeatable(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/again.db"
    upgrade(url)
    upgrade(url)  # a second run finds nothing to do and does not fail
    assert asyncio.run(_diff(url)) == []


def _channels_migration_with_data(url: str) -> None:
    """0004 -> 0005 on a SQLite database with data: duplicates closed, capacities extended, new columns usable."""
    import json

    import sqlalchemy as sa

    upgrade(url, "0004")
    engine = sa.create_engine(url.replace("+aiosqlite", ""))
    with engine.begin() as c:
        c.execute(sa.text("INSERT INTO customers (id, display_name, tier, created_at, updated_at) VALUES (1, 'A', 'standard', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        for cid, channel in ((1, "sms"), (2, "sms"), (3, "chat")):
            c.execute(sa.text(
                "INSERT INTO conversations (id, customer_id, channel, status, priority, subject, last_seq, created_at, updated_at)"
                f" VALUES ({cid}, 1, '{channel}', 'queued', 0, '', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ))
        c.execute(sa.text(
            "INSERT INTO agents (id, username, display_name, password_hash, role, skills, capacity, active, created_at)"
            " VALUES (1, 'x', 'X', 'h', 'agent', '{}', :cap, 1, CURRENT_TIMESTAMP)"
        ), {"cap": json.dumps({"chat": 3, "phone": 1})})
    upgrade(url)
    with engine.begin() as c:
        rows = c.execute(sa.text("SELECT id, status, disposition, thread_key, customer_address FROM conversations ORDER BY id")).all()
        cap = json.loads(c.execute(sa.text("SELECT capacity FROM agents WHERE id = 1")).scalar_one())
        c.execute(sa.text("INSERT INTO webhook_receipts (provider, kind, key, payload, received_at) VALUES ('twilio', 'inbound', 'SM1', '{}', CURRENT_TIMESTAMP)"))
        try:
            c.execute(sa.text("INSERT INTO webhook_receipts (provider, kind, key, payload, received_at) VALUES ('twilio', 'inbound', 'SM1', '{}', CURRENT_TIMESTAMP)"))
            duplicate_refused = False
        except sa.exc.IntegrityError:
            duplicate_refused = True
    engine.dispose()
    assert [(r.id, r.status, r.disposition) for r in rows] == [(1, "closed", "duplicate"), (2, "queued", None), (3, "queued", None)]
    assert all(r.thread_key is None and r.customer_address == "" for r in rows)
    assert cap == {"chat": 3, "phone": 1, "sms": 4, "whatsapp": 4}
    assert duplicate_refused


def test_the_channels_migration_runs_forward_on_data(tmp_path: Path) -> None:
    _channels_migration_with_data(f"sqlite+aiosqlite:///{tmp_path}/data.db")
    assert asyncio.run(_diff(f"sqlite+aiosqlite:///{tmp_path}/data.db")) == []


# --- 0004 -> 0005 with a shop's worth of data, on PostgreSQL (and the same on SQLite) ------------------

def _on(url: str, fn):  # type: ignore[no-untyped-def]
    """Run ``fn(sync_connection)`` in one transaction on ``url`` (an async URL: there is no sync PG driver here)."""
    async def go() -> Any:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as conn:
                return await conn.run_sync(fn)
        finally:
            await engine.dispose()

    return _in_thread(lambda: asyncio.run(go()))


def _tables_at_0004() -> dict[str, Any]:
    """The tables the data goes into, as they are at 0004 (the models describe head)."""
    import sqlalchemy as sa

    from crm_store.models import UTCDateTime

    def t(name: str, *cols: sa.ColumnClause) -> sa.TableClause:  # type: ignore[type-arg]
        return sa.table(name, sa.column("id", sa.Integer), *cols)

    c = sa.column
    return {
        "customers": t("customers", c("display_name"), c("tier"), c("created_at", UTCDateTime()), c("updated_at", UTCDateTime())),
        "contact_points": t("contact_points", c("customer_id"), c("kind"), c("value"), c("verified", sa.Boolean), c("created_at", UTCDateTime())),
        "queues": t("queues", c("name"), c("skills_required", sa.JSON), c("channels", sa.JSON), c("sl_target_seconds"),
                    c("sl_target_ratio", sa.Float), c("max_waiting")),
        "agents": t("agents", c("username"), c("display_name"), c("password_hash"), c("role"), c("skills", sa.JSON),
                    c("capacity", sa.JSON), c("active", sa.Boolean), c("created_at", UTCDateTime())),
        "conversations": t("conversations", c("customer_id"), c("channel"), c("status"), c("queue_id"), c("priority"),
                           c("assigned_agent_id"), c("subject"), c("last_seq"), c("disposition"), c("created_at", UTCDateTime()),
                           c("updated_at", UTCDateTime()), c("assigned_at", UTCDateTime()), c("closed_at", UTCDateTime()),
                           c("queued_at", UTCDateTime())),
        "messages": t("messages", c("conversation_id"), c("seq"), c("sender_kind"), c("sender_id"), c("body"),
                      c("attachments", sa.JSON), c("internal", sa.Boolean), c("client_msg_id"), c("provider_id"),
                      c("created_at", UTCDateTime())),
    }


def _seed_0004(conn) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Customers, contact points, queues, agents, conversations (an open chat among them) and messages; their ids by name."""
    from datetime import datetime, timedelta, timezone

    import sqlalchemy as sa

    T = _tables_at_0004()
    t0 = datetime(2026, 12, 1, 9, 0, tzinfo=timezone.utc)
    ids: dict[str, int] = {}

    def add(table: str, key: str, **values: object) -> int:
        ids[key] = conn.execute(sa.insert(T[table]).values(**values).returning(T[table].c.id)).scalar_one()
        return ids[key]

    for name in ("ann", "ben", "cy"):
        add("customers", name, display_name=name.title(), tier="gold" if name == "ann" else "standard", created_at=t0, updated_at=t0)
    for name, (who, kind, value) in {
        "ann_web": ("ann", "web", "visitor_ann_0001"), "ann_phone": ("ann", "phone", "+14155550101"),
        "ben_email": ("ben", "email", "ben@example.com"), "cy_phone": ("cy", "phone", "+14155550103"),
    }.items():
        add("contact_points", name, customer_id=ids[who], kind=kind, value=value, verified=kind != "web", created_at=t0)
    add("queues", "sales", name="sales", skills_required={}, channels=["chat"], sl_target_seconds=30, sl_target_ratio=0.8, max_waiting=50)
    add("queues", "support", name="support", skills_required={"returns": 1}, channels=["chat", "sms"], sl_target_seconds=60,
        sl_target_ratio=0.9, max_waiting=20)
    for name, capacity in {"alice": {"chat": 3}, "bob": {"chat": 2, "sms": 1}, "carol": {"phone": 1}}.items():
        add("agents", name, username=name, display_name=name.title(), password_hash="h", role="agent", skills={"en": 3},
            capacity=capacity, active=True, created_at=t0)

    def conv(name: str, who: str, channel: str, status: str, minutes: int, **more: object) -> int:
        at = t0 + timedelta(minutes=minutes)
        return add("conversations", name, customer_id=ids[who], channel=channel, status=status, priority=0, subject=name,
                   last_seq=0, created_at=at, updated_at=at, queue_id=more.pop("queue_id", ids["sales"]),
                   assigned_agent_id=more.pop("assigned_agent_id", None), disposition=more.pop("disposition", None),
                   assigned_at=more.pop("assigned_at", None), closed_at=more.pop("closed_at", None), queued_at=at)

    conv("ann_old_chat", "ann", "chat", "closed", 0, disposition="resolved", closed_at=t0 + timedelta(minutes=5))
    conv("ann_chat", "ann", "chat", "assigned", 10, assigned_agent_id=ids["alice"], assigned_at=t0 + timedelta(minutes=11))
    conv("ann_sms_dup", "ann", "sms", "queued", 20, queue_id=ids["support"])  # two open SMS of one customer: the older goes
    conv("ann_sms", "ann", "sms", "queued", 30, queue_id=ids["support"])
    conv("ben_chat", "ben", "chat", "bot", 15)
    conv("ben_old_chat", "ben", "chat", "closed", 1, disposition="abandoned", closed_at=t0 + timedelta(minutes=2))
    conv("cy_sms", "cy", "sms", "queued", 40, queue_id=ids["support"])

    messages = [
        ("ann_chat", "customer", None, "Where is my order?", [], False, "c-1", None),
        ("ann_chat", "agent", str(ids["alice"]), "Let me check.", [], False, "r-1", None),
        ("ann_chat", "agent", str(ids["alice"]), "VIP", [], True, "n-1", None),
        ("ann_sms", "customer", None, "Photo of the parcel", [{"content_type": "image/png", "url": "/media/k1", "name": "p.png", "size": 10}],
         False, None, "SM0001"),
        ("ann_sms_dup", "customer", None, "hello?", [], False, None, "SM0000"),
        ("ben_chat", "customer", None, "Hi bot", [], False, "b-1", None),
        ("ben_chat", "bot", None, "Hello! What can I do?", [], False, None, None),
    ]
    seqs: dict[str, int] = {}
    for conv_name, kind, sender, body, attachments, internal, client_id, provider_id in messages:
        seqs[conv_name] = seqs.get(conv_name, 0) + 1
        conn.execute(sa.insert(T["messages"]).values(
            conversation_id=ids[conv_name], seq=seqs[conv_name], sender_kind=kind, sender_id=sender, body=body,
            attachments=attachments, internal=internal, client_msg_id=client_id, provider_id=provider_id, created_at=t0,
        ))
    for conv_name, last in seqs.items():
        conn.execute(sa.update(T["conversations"]).where(T["conversations"].c.id == ids[conv_name]).values(last_seq=last))
    return ids


def _snapshot(conn) -> dict[str, list[tuple[object, ...]]]:  # type: ignore[no-untyped-def]
    """What must survive the migration, table by table (columns that exist before and after)."""
    import sqlalchemy as sa

    queries = {
        "customers": "SELECT id, display_name, tier, created_at FROM customers ORDER BY id",
        "contact_points": "SELECT id, customer_id, kind, value, verified FROM contact_points ORDER BY id",
        "queues": "SELECT id, name, skills_required, channels, sl_target_seconds, sl_target_ratio, max_waiting FROM queues ORDER BY id",
        "agents": "SELECT id, username, display_name, role, skills, active FROM agents ORDER BY id",
        "conversations": "SELECT id, customer_id, channel, queue_id, assigned_agent_id, subject, last_seq, created_at, assigned_at"
                         " FROM conversations ORDER BY id",
        "messages": "SELECT id, conversation_id, seq, sender_kind, sender_id, body, attachments, internal, client_msg_id, provider_id"
                    " FROM messages ORDER BY id",
    }
    # JSON comes back parsed on PostgreSQL and as text on SQLite through sa.text: compare it parsed
    import json

    def norm(v: object) -> object:
        if isinstance(v, str) and v[:1] in "[{":
            return json.loads(v)
        return v

    return {name: [tuple(norm(v) for v in row) for row in conn.execute(sa.text(q)).all()] for name, q in queries.items()}


def _expect_refused(url: str, sql: str, params: dict[str, object]) -> bool:
    import sqlalchemy as sa

    try:
        _on(url, lambda c: c.execute(sa.text(sql), params))
    except sa.exc.IntegrityError:
        return True
    return False


def _channels_migration_with_shop_data(url: str) -> None:
    """0004 -> head over representative data: nothing lost, duplicates closed, the new constraints hold."""
    import json

    import sqlalchemy as sa

    _in_thread(upgrade, url, "0004")
    ids = _on(url, _seed_0004)
    before = _on(url, _snapshot)
    _in_thread(upgrade, url)
    after = _on(url, _snapshot)
    assert after == before  # every row and value that existed is still there, unchanged

    def read(c):  # type: ignore[no-untyped-def]
        convs = {r.id: r for r in c.execute(sa.text(
            "SELECT id, status, disposition, closed_at, thread_key, customer_address, our_address FROM conversations")).all()}
        caps = {r.username: (r.capacity if isinstance(r.capacity, dict) else json.loads(r.capacity))
                for r in c.execute(sa.text("SELECT username, capacity FROM agents")).all()}
        msgs = c.execute(sa.text("SELECT delivery_status, delivery_error_code, delivery_error FROM messages")).all()
        points = c.execute(sa.text("SELECT opted_out_at FROM contact_points")).all()
        return convs, caps, msgs, points

    convs, caps, msgs, points = _on(url, read)
    status = {name: (convs[ids[name]].status, convs[ids[name]].disposition) for name in (
        "ann_old_chat", "ann_chat", "ann_sms_dup", "ann_sms", "ben_chat", "ben_old_chat", "cy_sms")}
    assert status == {
        "ann_old_chat": ("closed", "resolved"), "ann_chat": ("assigned", None), "ann_sms_dup": ("closed", "duplicate"),
        "ann_sms": ("queued", None), "ben_chat": ("bot", None), "ben_old_chat": ("closed", "abandoned"), "cy_sms": ("queued", None),
    }
    assert convs[ids["ann_sms_dup"]].closed_at is not None
    assert all(r.thread_key is None and r.customer_address == "" and r.our_address == "" for r in convs.values())
    assert caps == {"alice": {"chat": 3, "sms": 4, "whatsapp": 4}, "bob": {"chat": 2, "sms": 1, "whatsapp": 4}, "carol": {"phone": 1}}
    assert len(msgs) == 7 and all(tuple(m) == (None, None, None) for m in msgs)
    assert len(points) == 4 and all(p.opted_out_at is None for p in points)

    new_conv = ("INSERT INTO conversations (customer_id, channel, status, priority, subject, last_seq, created_at, updated_at, thread_key)"
                " VALUES (:customer, :channel, :status, 0, '', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, :thread)")
    ann, ben = ids["ann"], ids["ben"]
    # one open conversation per customer and channel ...
    assert _expect_refused(url, new_conv, {"customer": ann, "channel": "chat", "status": "queued", "thread": None})
    assert _expect_refused(url, new_conv, {"customer": ann, "channel": "sms", "status": "bot", "thread": None})
    # ... but closed ones, other channels and other customers are free
    assert not _expect_refused(url, new_conv, {"customer": ann, "channel": "chat", "status": "closed", "thread": None})
    assert not _expect_refused(url, new_conv, {"customer": ann, "channel": "whatsapp", "status": "queued", "thread": None})
    assert not _expect_refused(url, new_conv, {"customer": ids["cy"], "channel": "chat", "status": "queued", "thread": None})
    # threaded conversations (email) are unique per channel and thread key, not per customer
    assert not _expect_refused(url, new_conv, {"customer": ben, "channel": "email", "status": "queued", "thread": "<t1@x>"})
    assert not _expect_refused(url, new_conv, {"customer": ben, "channel": "email", "status": "queued", "thread": "<t2@x>"})
    assert _expect_refused(url, new_conv, {"customer": ann, "channel": "email", "status": "closed", "thread": "<t1@x>"})
    # the old constraints still hold after the migration
    assert _expect_refused(url, "INSERT INTO contact_points (customer_id, kind, value, verified, created_at)"
                           " VALUES (:c, 'phone', '+14155550101', :v, CURRENT_TIMESTAMP)", {"c": ben, "v": True})
    assert _expect_refused(url, "INSERT INTO messages (conversation_id, seq, sender_kind, body, attachments, internal, created_at)"
                           " VALUES (:c, 1, 'customer', 'x', '[]', :i, CURRENT_TIMESTAMP)", {"c": ids["ann_chat"], "i": False})
    # the webhook receipts table dedupes
    receipt = ("INSERT INTO webhook_receipts (provider, kind, key, payload, received_at)"
               " VALUES ('twilio', 'inbound', 'SM9', '{}', CURRENT_TIMESTAMP)")
    assert not _expect_refused(url, receipt, {})
    assert _expect_refused(url, receipt, {})


@pytest.fixture
def fresh_pg_url() -> Iterator[str]:
    """An empty PostgreSQL database (no schema), dropped afterwards."""
    from tests.conftest import PG_ADMIN_URL, _pg_admin

    name = f"cc_mig_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    _in_thread(lambda: asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"')))
    try:
        yield f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        _in_thread(lambda: asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')))


def test_the_channels_migration_runs_forward_on_shop_data_on_postgres(fresh_pg_url: str) -> None:
    _channels_migration_with_shop_data(fresh_pg_url)
    assert _in_thread(lambda: asyncio.run(_diff(fresh_pg_url))) == []


def test_the_channels_migration_runs_forward_on_shop_data_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/shop.db"
    _channels_migration_with_shop_data(url)
    assert asyncio.run(_diff(url)) == []
