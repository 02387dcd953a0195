"""The contact repository against SQLite and the real PostgreSQL server (same assertions for both)."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta, timezone

import pytest

from crm_store.db import Database
from crm_store.domain.identity import InvalidAddress
from crm_store.domain.orders import IllegalTransition
from crm_store.domain.validation import LineRequest, OrderRequest, ValidationFailed
from crm_store.models import Customer, CustomerMerge, Interaction, Product
from crm_store.repositories import agents as agents_repo
from crm_store.repositories import conversations as conv_repo
from crm_store.repositories import customers as cust_repo
from crm_store.repositories import interactions as inter_repo
from crm_store.repositories import orders as orders_repo
from crm_store.services import cancel_order, place_order, transition_order
from tests.factories import add_product

TODAY = date(2026, 11, 23)  # a Monday


def _order(sku: str = "TSHIRT", qty: int = 1, **options: str) -> OrderRequest:
    return OrderRequest(
        lines=[LineRequest(sku=sku, quantity=qty, options=options)],
        delivery_address="1 Main St, Springfield",
        phone="+1 415 555 2671",
    )


async def test_identity_resolution_normalises_and_finds_the_same_customer(db: Database) -> None:
    async with db.transaction() as s:
        first = await cust_repo.resolve_identity(s, "phone", "(415) 555-2671", display_name="Ann Lee")
        again = await cust_repo.resolve_identity(s, "phone", "+1 415-555-2671")
        mail1 = await cust_repo.resolve_identity(s, "email", "  Ann.Lee@Example.COM ")
        mail2 = await cust_repo.resolve_identity(s, "email", "ann.lee@example.com")
    assert first.created and not again.created
    assert first.customer.id == again.customer.id
    assert first.contact_point.value == "+14155552671"
    assert mail1.contact_point.value == "ann.lee@example.com"
    assert mail1.created and not mail2.created and mail1.customer.id == mail2.customer.id
    # a new address is a new customer until something verified links it: no merge on a weak signal
    assert mail1.customer.id != first.customer.id


async def test_invalid_address_is_refused_and_nothing_is_written(db: Database) -> None:
    with pytest.raises(InvalidAddress):
        async with db.transaction() as s:
            await cust_repo.resolve_identity(s, "phone", "12")
    async with db.session() as s:
        assert (await s.exec(__import__("sqlmodel").select(Customer))).all() == []


async def test_shared_name_never_merges_and_link_refuses_anothers_address(db: Database) -> None:
    async with db.transaction() as s:
        a = await cust_repo.resolve_identity(s, "email", "jo@example.com", display_name="Jo Smith")
        b = await cust_repo.resolve_identity(s, "phone", "+442079460958", display_name="Jo Smith")
    assert a.customer.id != b.customer.id
    async with db.transaction() as s:
        linked = await cust_repo.link_contact_point(s, a.customer.id, "web", "visitor_abcdef12")
        assert linked.verified and linked.customer_id == a.customer.id
    with pytest.raises(cust_repo.ContactPointTaken) as info:
        async with db.transaction() as s:
            await cust_repo.link_contact_point(s, a.customer.id, "phone", "+44 20 7946 0958")
    assert info.value.owner_id == b.customer.id
    async with db.session() as s:
        points = await cust_repo.contact_points(s, a.customer.id)
    assert sorted(p.kind for p in points) == ["email", "web"]


async def test_merge_moves_all_history_and_leaves_an_audit_record(db: Database) -> None:
    await add_product(db)
    async with db.transaction() as s:
        keep = (await cust_repo.resolve_identity(s, "email", "keep@example.com", display_name="Kim")).customer
        dup = (await cust_repo.resolve_identity(s, "phone", "+14155552671")).customer
        await inter_repo.record_interaction(s, dup.id, "call", "phone", "asked about sizes")
        conv = await conv_repo.open_conversation(s, dup.id, "chat")
    placed = await place_order(db, _order(), today=TODAY)  # resolved by phone: the duplicate
    assert placed.view.order.customer_id == dup.id
    async with db.transaction() as s:
        audit = await cust_repo.merge_customers(s, dup.id, keep.id, actor="admin:1", reason="same person")
    assert audit.moved == {"contact_points": 1, "interactions": 2, "conversations": 1, "orders": 1}
    async with db.session() as s:
        assert (await cust_repo.get_customer(s, dup.id)).id == keep.id  # old links still lead somewhere
        page = await inter_repo.timeline(s, keep.id)
        assert {i.kind for i in page.items} == {"call", "order_event"}
        assert [o.id for o in await orders_repo.orders_of_customer(s, keep.id)] == [placed.view.order.id]
        assert (await s.get(type(conv), conv.id)).customer_id == keep.id
        audits = (await s.exec(__import__("sqlmodel").select(CustomerMerge))).all()
        assert len(audits) == 1 and audits[0].actor == "admin:1"
    with pytest.raises(cust_repo.MergeRefused):
        async with db.transaction() as s:
            await cust_repo.merge_customers(s, dup.id, keep.id, actor="admin:1")


async def test_timeline_is_newest_first_and_pages_without_gaps_or_repeats(db: Database) -> None:
    base = datetime(2026, 1, 1, tzinfo=timezone.utc)
    async with db.transaction() as s:
        c = (await cust_repo.resolve_identity(s, "email", "t@example.com")).customer
        for i in range(25):  # pairs share a timestamp to exercise the (time, id) cursor
            await inter_repo.record_interaction(
                s, c.id, ["chat", "email", "call"][i % 3], "web", f"touch {i}", occurred_at=base + timedelta(minutes=i // 2)
            )
    seen: list[int] = []
    cursor = None
    async with db.session() as s:
        while True:
            page = await inter_repo.timeline(s, c.id, limit=7, cursor=cursor)
            seen.extend(i.id for i in page.items)
            times = [i.occurred_at for i in page.items]
            assert times == sorted(times, reverse=True)
            assert all(t.tzinfo is not None for t in times)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
    assert len(seen) == 25 and len(set(seen)) == 25
    with pytest.raises(inter_repo.BadCursor):
        async with db.session() as s:
            await inter_repo.timeline(s, c.id, cursor="not-a-cursor!")


async def test_place_order_prices_reserves_and_records(db: Database) -> None:
    await add_product(db, "TSHIRT", price_minor=1500, stock=10, options={"size": ["S", "M", "L"]})
    placed = await place_order(db, _order("tshirt", 4, size="m"), today=TODAY, channel="chat")
    order, lines, events = placed.view.order, placed.view.lines, placed.view.events
    assert order.status == "placed" and order.subtotal_minor == 6000 and order.shipping_minor == 0
    assert order.total_minor == 6000 and lines[0].options == {"size": "M"} and lines[0].line_total_minor == 6000
    assert order.promised_date == date(2026, 11, 26)  # 1 day lead + 2 transit business days
    assert [(e.from_status, e.to_status) for e in events] == [(None, "placed")]
    async with db.session() as s:
        product = (await s.exec(__import__("sqlmodel").select(Product))).one()
        assert product.stock == 6
        page = await inter_repo.timeline(s, order.customer_id)
        assert page.items[0].kind == "order_event" and page.items[0].order_id == order.id


async def test_validation_errors_name_the_field_and_write_nothing(db: Database) -> None:
    await add_product(db, "TSHIRT", stock=2, options={"size": ["S", "M"]})
    bad = OrderRequest(
        lines=[LineRequest("TSHIRT", 3, {"size": "XL"}), LineRequest("NOPE", 1)],
        delivery_address="",
        email="not-an-email",
    )
    with pytest.raises(ValidationFailed) as info:
        await place_order(db, bad, today=TODAY)
    fields = {e.field for e in info.value.errors}
    assert {"lines[0].options.size", "lines[1].sku", "delivery_address", "email"} <= fields
    async with db.session() as s:
        assert (await s.exec(__import__("sqlmodel").select(Customer))).all() == []
        assert (await s.exec(__import__("sqlmodel").select(Product))).one().stock == 2


async def test_transitions_follow_the_rules_and_cancel_releases_stock(db: Database) -> None:
    await add_product(db, stock=5)
    order_id = (await place_order(db, _order(qty=2), today=TODAY)).view.order.id
    view = await transition_order(db, order_id, "confirmed", actor="agent:1")
    assert view.order.status == "confirmed"
    with pytest.raises(IllegalTransition):
        await transition_order(db, order_id, "delivered", actor="agent:1")
    view = await cancel_order(db, order_id, actor="customer", reason="changed my mind")
    assert [e.to_status for e in view.events] == ["placed", "confirmed", "cancelled"]
    async with db.session() as s:
        assert (await s.exec(__import__("sqlmodel").select(Product))).one().stock == 5
        kinds = [i.summary for i in (await inter_repo.timeline(s, view.order.customer_id)).items]
        assert kinds[0].startswith(f"Order {order_id} cancelled")
    with pytest.raises(IllegalTransition):
        await cancel_order(db, order_id, actor="customer")


async def test_shipped_orders_cannot_be_cancelled_but_can_be_returned(db: Database) -> None:
    await add_product(db, stock=5)
    order_id = (await place_order(db, _order(), today=TODAY)).view.order.id
    for status in ("confirmed", "picking", "shipped"):
        await transition_order(db, order_id, status, actor="warehouse")
    with pytest.raises(IllegalTransition):
        await cancel_order(db, order_id, actor="customer")
    for status in ("delivered", "returned", "refunded"):
        view = await transition_order(db, order_id, status, actor="warehouse")
    assert view.order.status == "refunded"


async def test_idempotency_key_replays_the_first_order(db: Database) -> None:
    await add_product(db, stock=5)
    first = await place_order(db, _order(), today=TODAY, idempotency_key="bot-conv-9-turn-4")
    second = await place_order(db, _order(), today=TODAY, idempotency_key="bot-conv-9-turn-4")
    assert not first.replayed and second.replayed and first.view.order.id == second.view.order.id
    async with db.session() as s:
        assert (await s.exec(__import__("sqlmodel").select(Product))).one().stock == 4


async def test_no_oversell_under_concurrent_orders(db: Database) -> None:
    """Many customers race for the last items: exactly the stock is sold, never more."""
    stock, buyers = 7, 40
    await add_product(db, "LAST", stock=stock)

    async def buy(i: int) -> bool:
        req = OrderRequest([LineRequest("LAST", 1)], "1 Main St", email=f"buyer{i}@example.com")
        try:
            await place_order(db, req, today=TODAY)
            return True
        except ValidationFailed:
            return False

    results = await asyncio.gather(*(buy(i) for i in range(buyers)))
    assert sum(results) == stock
    async with db.session() as s:
        from sqlmodel import func, select

        from crm_store.models import Order

        assert (await s.exec(select(Product))).one().stock == 0
        assert (await s.exec(select(func.count()).select_from(Order))).one() == stock


async def test_overdue_lists_unshipped_orders_past_their_promise(db: Database) -> None:
    await add_product(db, stock=10)
    late = (await place_order(db, _order(), today=date(2026, 11, 2))).view.order.id
    shipped = (await place_order(db, _order(), today=date(2026, 11, 2))).view.order.id
    fresh = (await place_order(db, _order(), today=TODAY)).view.order.id
    for st in ("confirmed", "picking", "shipped"):
        await transition_order(db, shipped, st, actor="warehouse")
    async with db.session() as s:
        overdue = [o.id for o in await orders_repo.overdue_orders(s, TODAY)]
    assert overdue == [late] and fresh not in overdue


async def test_messages_get_increasing_sequences_and_resends_are_not_duplicated(db: Database) -> None:
    async with db.transaction() as s:
        c = (await cust_repo.resolve_identity(s, "web", "visitor_0123456789")).customer
        conv = await conv_repo.open_conversation(s, c.id, "chat")
    async with db.transaction() as s:
        m1 = await conv_repo.append_message(s, conv.id, "customer", "hello", client_msg_id="c1")
        m2 = await conv_repo.append_message(s, conv.id, "agent", "hi!", sender_id="7")
        again = await conv_repo.append_message(s, conv.id, "customer", "hello", client_msg_id="c1")
        sms = await conv_repo.append_message(s, conv.id, "customer", "txt", provider_id="SM123")
        sms_again = await conv_repo.append_message(s, conv.id, "customer", "txt", provider_id="SM123")
    assert [m1.message.seq, m2.message.seq, sms.message.seq] == [1, 2, 3]
    assert not again.created and again.message.id == m1.message.id
    assert not sms_again.created and sms_again.message.id == sms.message.id
    async with db.session() as s:
        missed = await conv_repo.messages_after(s, conv.id, after_seq=1)
        assert [m.seq for m in missed] == [2, 3]
    with pytest.raises(conv_repo.ConversationNotFound):
        async with db.transaction() as s:
            await conv_repo.append_message(s, 999999, "customer", "lost?")


async def test_concurrent_appends_never_share_a_sequence(db: Database) -> None:
    async with db.transaction() as s:
        c = (await cust_repo.resolve_identity(s, "web", "visitor_concurrent1")).customer
        conv = await conv_repo.open_conversation(s, c.id, "chat")

    async def send(i: int) -> int:
        async with db.transaction() as s:
            return (await conv_repo.append_message(s, conv.id, "customer", f"m{i}", client_msg_id=f"k{i}")).message.seq

    seqs = await asyncio.gather(*(send(i) for i in range(30)))
    assert sorted(seqs) == list(range(1, 31))


async def test_concurrent_resends_of_one_message_store_it_once_without_a_gap(db: Database) -> None:
    async with db.transaction() as s:
        c = (await cust_repo.resolve_identity(s, "web", "visitor_resends_1")).customer
        conv = await conv_repo.open_conversation(s, c.id, "chat")

    async def send() -> conv_repo.Appended:
        async with db.transaction() as s:
            return await conv_repo.append_message(s, conv.id, "agent", "on my way", sender_id="7", client_msg_id="same")

    results = await asyncio.gather(*(send() for _ in range(12)))
    assert sum(r.created for r in results) == 1
    assert {r.message.seq for r in results} == {1} and {r.message.body for r in results} == {"on my way"}
    async with db.transaction() as s:  # every resend gave its number back: the next message is 2
        after = await conv_repo.append_message(s, conv.id, "agent", "next", sender_id="7", client_msg_id="other")
    assert after.created and after.message.seq == 2
    async with db.session() as s:
        assert [m.seq for m in await conv_repo.messages_after(s, conv.id, after_seq=0)] == [1, 2]


async def test_pg_an_append_with_a_client_id_does_not_read_a_long_conversation(db: Database) -> None:
    """On PostgreSQL the lookup of a client id before the insert was a prepared statement whose generic plan, chosen
    on a near-empty table without statistics, went through ``(conversation_id, seq)``: each append read every
    message of its conversation. The client id's unique index now checks it in the insert (ON CONFLICT)."""
    if db.dialect != "postgresql":
        pytest.skip("PostgreSQL's cached plans")
    import uuid

    import asyncpg
    from sqlalchemy import text

    from crm_store.migrate import upgrade
    from tests.conftest import PG_ADMIN_URL, _pg_admin

    name = f"cc_ormplan_{uuid.uuid4().hex[:8]}"  # a database of its own: new tables, no statistics
    await _pg_admin(f'CREATE DATABASE "{name}"')
    fresh = Database(f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}", pool_size=1)  # one connection: one statement cache
    dsn = f"postgresql://{PG_ADMIN_URL.split('://', 1)[1].rsplit('/', 1)[0]}/{name}"
    try:
        await asyncio.get_running_loop().run_in_executor(None, upgrade, fresh.url)
        async with fresh.transaction() as s:
            c = (await cust_repo.resolve_identity(s, "web", "visitor_plan_orm")).customer
            conv = await conv_repo.open_conversation(s, c.id, "chat")
        for i in range(8):  # prepared, and the generic plan chosen, on a table of a few rows
            async with fresh.transaction() as s:
                await conv_repo.append_message(s, conv.id, "agent", f"early {i}", sender_id="7", client_msg_id=f"early-{i}")
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(
                "INSERT INTO messages (conversation_id, seq, sender_kind, body, attachments, internal, client_msg_id, created_at)"
                " SELECT $1, 8 + g, 'customer', 'bulk', '[]', false, 'bulk-' || g, now() FROM generate_series(1, 5000) g", conv.id)
            await conn.execute("UPDATE conversations SET last_seq = 5008 WHERE id = $1", conv.id)

            async def seq_index_reads() -> int:
                async with fresh.transaction() as s:  # the pool's connection reports its counts at its next commit
                    await s.execute(text("SELECT pg_stat_force_next_flush()"))
                async with fresh.transaction() as s:
                    await s.execute(text("SELECT 1"))
                for _ in range(50):
                    await asyncio.sleep(0.1)
                    got = await conn.fetchval("SELECT idx_tup_read FROM pg_stat_user_indexes WHERE indexrelname = 'uq_messages_conversation_seq'")
                    if got is not None:
                        return int(got)
                return 0

            before = await seq_index_reads()
            for i in range(4):
                async with fresh.transaction() as s:
                    late = await conv_repo.append_message(s, conv.id, "agent", f"late {i}", sender_id="7", client_msg_id=f"late-{i}")
                assert late.created and late.message.seq == 5009 + i
            async with fresh.transaction() as s:
                again = await conv_repo.append_message(s, conv.id, "agent", "late 0 again", sender_id="7", client_msg_id="late-0")
            assert not again.created and (again.message.seq, again.message.body) == (5009, "late 0")
            read = await seq_index_reads() - before
            assert read < 1000, f"{read} entries of (conversation_id, seq) read for 5 appends: the conversation was scanned"
        finally:
            await conn.close()
    finally:
        await fresh.dispose()
        await _pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_agents_authenticate_with_hashed_passwords(db: Database) -> None:
    async with db.transaction() as s:
        agent = await agents_repo.create_agent(s, "Alice", "correct horse", role="supervisor", skills={"orders": 3})
    assert agent.password_hash.startswith("$argon2id$") and "correct horse" not in agent.password_hash
    async with db.transaction() as s:
        assert (await agents_repo.authenticate(s, "alice", "correct horse")).id == agent.id
        assert await agents_repo.authenticate(s, "alice", "wrong password") is None
        assert await agents_repo.authenticate(s, "nobody", "correct horse") is None
    with pytest.raises(ValueError):
        async with db.transaction() as s:
            await agents_repo.create_agent(s, "bob", "short")


async def test_search_by_phone_email_and_name(db: Database) -> None:
    async with db.transaction() as s:
        a = (await cust_repo.resolve_identity(s, "phone", "+14155552671", display_name="Ann Lee")).customer
        b = (await cust_repo.resolve_identity(s, "email", "bo@example.com", display_name="Bo 100% Real")).customer
    async with db.session() as s:
        assert [c.id for c in await cust_repo.search_customers(s, phone="415-555-2671")] == [a.id]
        assert [c.id for c in await cust_repo.search_customers(s, email="BO@example.com")] == [b.id]
        assert [c.id for c in await cust_repo.search_customers(s, name="ann")] == [a.id]
        assert [c.id for c in await cust_repo.search_customers(s, name="100%")] == [b.id]
        assert await cust_repo.search_customers(s, name="a%") == []  # % is literal, not a wildcard


async def test_customer_with_contact_points_in_one_read(db: Database) -> None:
    async with db.transaction() as s:
        a = (await cust_repo.resolve_identity(s, "email", "one@example.com")).customer
        await cust_repo.link_contact_point(s, a.id, "phone", "+12127365000")
        bare = await cust_repo.get_customer(s, a.id)  # noqa: F841
        b = (await cust_repo.resolve_identity(s, "web", "visitor_merge_read")).customer
        await cust_repo.merge_customers(s, b.id, a.id, actor="admin")
    async with db.session() as s:
        c, points = await cust_repo.customer_with_contact_points(s, a.id)
        assert c.id == a.id and [p.kind for p in points] == ["email", "phone", "web"]
        merged, merged_points = await cust_repo.customer_with_contact_points(s, b.id)
        assert merged.id == a.id and len(merged_points) == 3
        with pytest.raises(cust_repo.CustomerNotFound):
            await cust_repo.customer_with_contact_points(s, 987654)


def _attrs(row: object, table: object) -> dict[str, object]:
    """A read row's column values, whatever its type (Core row, ORM object or attribute row)."""
    return {c.name: getattr(row, c.name) for c in table.columns}  # type: ignore[attr-defined]


async def test_read_views_agree_with_the_portable_statements(db: Database) -> None:
    """On PostgreSQL the order and 360 views are one JSON-nesting statement; they must read exactly
    what the portable three-statement views read (types, time zones, order, paging, merges)."""
    from crm_store.models import ContactPoint, Order, OrderEvent, OrderLine
    from crm_store.repositories import views as views_repo

    await add_product(db, "TSHIRT", price_minor=1500, stock=50, options={"size": ["S", "M", "L"]})
    placed = [await place_order(db, _order("TSHIRT", n, size="L"), today=TODAY) for n in (1, 2, 3)]
    await transition_order(db, placed[0].view.order.id, "confirmed", actor="test")
    cid = placed[0].view.order.customer_id
    base = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=timezone.utc)
    async with db.transaction() as s:
        for i in range(30):  # pairs share a timestamp: the page boundary must fall the same way
            await inter_repo.record_interaction(s, cid, "note", "web", f"n{i}", {"i": i}, occurred_at=base + timedelta(seconds=i // 2))
        other = (await cust_repo.resolve_identity(s, "email", "Old.Address@Example.com")).customer
        await cust_repo.merge_customers(s, other.id, cid, actor="test")

    for reader in (db.reader, db.session):
        async with reader() as s:
            for p in placed:
                fast = await orders_repo.get_order(s, p.view.order.id)
                slow = await orders_repo.get_order_portable(s, p.view.order.id)
                assert _attrs(fast.order, Order.__table__) == _attrs(slow.order, Order.__table__)
                assert [_attrs(x, OrderLine.__table__) for x in fast.lines] == [_attrs(x, OrderLine.__table__) for x in slow.lines]
                assert [_attrs(x, OrderEvent.__table__) for x in fast.events] == [_attrs(x, OrderEvent.__table__) for x in slow.events]
                assert fast.order.created_at.tzinfo is not None and isinstance(fast.order.promised_date, date)
            assert len((await orders_repo.get_order(s, placed[0].view.order.id)).events) == 2
            assert (await orders_repo.get_order(s, placed[0].view.order.id, with_events=False)).events == ()
            with pytest.raises(orders_repo.OrderNotFound):
                await orders_repo.get_order(s, 10**9)

            for asked in (cid, other.id):  # the survivor, and the id merged into it
                fast360 = await views_repo.customer_360(s, asked, timeline_limit=7, orders_limit=2)
                slow360 = await views_repo.customer_360_portable(s, asked, 7, 2)
                assert _attrs(fast360.customer, Customer.__table__) == _attrs(slow360.customer, Customer.__table__)
                assert fast360.merged_from == slow360.merged_from == (None if asked == cid else asked)
                assert [_attrs(p, ContactPoint.__table__) for p in fast360.contact_points] == [
                    _attrs(p, ContactPoint.__table__) for p in slow360.contact_points
                ]
                assert [p.kind for p in fast360.contact_points] == ["phone", "email"]
                assert [_attrs(i, Interaction.__table__) for i in fast360.timeline.items] == [
                    _attrs(i, Interaction.__table__) for i in slow360.timeline.items
                ]
                assert len(fast360.timeline.items) == 7 and fast360.timeline.next_cursor == slow360.timeline.next_cursor
                assert fast360.timeline.next_cursor is not None
                assert [o.id for o in fast360.orders] == [placed[2].view.order.id, placed[1].view.order.id]
                assert [_attrs(o, Order.__table__) for o in fast360.orders] == [_attrs(o, Order.__table__) for o in slow360.orders]
            with pytest.raises(cust_repo.CustomerNotFound):
                await views_repo.customer_360(s, 10**9)
            by_phone = await orders_repo.orders_by_contact(s, "phone", "+14155552671", limit=2)
            assert [o.id for o in by_phone] == [placed[2].view.order.id, placed[1].view.order.id]
            assert [o.id for o in await orders_repo.orders_of_customer(s, cid, limit=5)] == [p.view.order.id for p in reversed(placed)]


async def test_one_open_chat_per_customer_and_a_merge_of_two_open_chats_is_refused(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    async with db.transaction() as s:
        a = (await cust_repo.resolve_identity(s, "email", "one-chat-a@example.com")).customer
        b = (await cust_repo.resolve_identity(s, "email", "one-chat-b@example.com")).customer
        first = await conv_repo.open_conversation(s, a.id, "chat")
        await conv_repo.open_conversation(s, a.id, "email")  # other channels are not limited
        await conv_repo.open_conversation(s, b.id, "chat")
    with pytest.raises(IntegrityError):  # what a second hub process racing the first one gets
        async with db.transaction() as s:
            await conv_repo.open_conversation(s, a.id, "chat")
    with pytest.raises(cust_repo.MergeRefused, match="chat in progress"):
        async with db.transaction() as s:
            await cust_repo.merge_customers(s, b.id, a.id, actor="admin:1")
    async with db.transaction() as s:  # once one of them is closed, the merge goes through
        conv = await s.get(type(first), first.id)
        conv.status = "closed"
        s.add(conv)
        await conv_repo.open_conversation(s, a.id, "chat")  # and a closed chat does not block a new one
    async with db.transaction() as s:
        open_a = await conv_repo.find_open_conversation(s, a.id, "chat")
        open_a.status = "closed"
        s.add(open_a)
    async with db.transaction() as s:
        audit = await cust_repo.merge_customers(s, b.id, a.id, actor="admin:1")
    assert audit.moved["conversations"] == 1
