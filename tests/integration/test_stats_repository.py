"""Supervisor statistics in SQL on SQLite and PostgreSQL: the scripted day of the service-level unit tests,
stored as conversations, read back and counted per interval in SQL; agent state history."""

from __future__ import annotations

import asyncio
from dataclasses import astuple
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from contact_center.domain.service_levels import agent_figures, interval_figures, summarize
from crm_store.db import Database
from crm_store.models import Agent, AgentStateLog, Conversation, Customer, Queue
from crm_store.repositories import stats
from tests.unit import test_service_levels as day

DAY, NOW = day.DAY, day.NOW


async def _scripted_day(db: Database) -> dict[int, int]:
    """Store the unit tests' scripted day; returns {scripted agent number: agent id}."""
    async with db.transaction() as s:
        customer = Customer(display_name="Pat")
        sales = Queue(name="sales", sl_target_seconds=20)
        support = Queue(name="support", sl_target_seconds=30)
        agents = {n: Agent(username=f"agent{n}", display_name=f"Agent {n}", password_hash="x") for n in (1, 2)}
        s.add_all([customer, sales, support, *agents.values()])
        await s.flush()
        queue_ids = {"sales": sales.id, "support": support.id}
        contacts = [*day.DAY_CONTACTS, day.YESTERDAY]
        people = [Customer(display_name=f"Customer {i}") for i in range(len(contacts))]  # one open chat each at most
        s.add_all(people)
        await s.flush()
        for c, person in zip(contacts, people):
            s.add(
                Conversation(
                    customer_id=person.id,
                    channel=c.channel,
                    status="closed" if c.ended_at else "assigned" if c.answered_at else "queued",
                    queue_id=queue_ids[c.queue],
                    assigned_agent_id=agents[c.agent_id].id if c.agent_id else None,
                    created_at=c.queued_at - timedelta(seconds=3),
                    queued_at=c.queued_at,
                    assigned_at=c.answered_at,
                    abandoned_at=c.ended_at if c.abandoned else None,
                    closed_at=c.ended_at,
                )
            )
        # a conversation that never entered a queue (e.g. the bot handled it) is not a contact
        s.add(Conversation(customer_id=customer.id, channel="chat", created_at=day.at(9, 1)))
    return {n: a.id for n, a in agents.items()}  # type: ignore[misc]


async def test_contact_records_read_back_the_day(db: Database) -> None:
    agent_ids = await _scripted_day(db)
    records = await stats.contact_records(db, DAY, DAY + timedelta(days=1))
    assert len(records) == 11  # not yesterday's contact, not the unqueued conversation
    by_time = {r.queued_at: r for r in records}
    for expected in day.DAY_CONTACTS:
        got = by_time[expected.queued_at]
        assert (got.queue, got.channel, got.answered_at, got.ended_at, got.abandoned) == (
            expected.queue, expected.channel, expected.answered_at, expected.ended_at, expected.abandoned
        )
        assert got.handle_seconds == expected.handle_seconds
        assert got.agent_id == (agent_ids[expected.agent_id] if expected.agent_id else None)
        assert got.queued_at.tzinfo is not None
    assert [r.queued_at for r in records] == sorted(r.queued_at for r in records)
    # the pure figures over the SQL records are the hand-computed ones of the unit tests
    report = summarize(records, NOW, {"sales": 20, "support": 30})
    assert report.by_queue["sales"].service_level == pytest.approx(0.6)
    assert report.by_queue["support"].service_level == pytest.approx(1 / 3)
    assert report.total.service_level == pytest.approx(0.5)
    assert report.total.aht_seconds == pytest.approx(468.0)
    assert report.by_channel["phone"].abandonment_rate == pytest.approx(2 / 5)
    # half-open window
    assert len(await stats.contact_records(db, day.at(9, 30), day.at(9, 45))) == 2  # P2 (09:30:00), S5


async def test_interval_stats_are_counted_in_sql(db: Database) -> None:
    await _scripted_day(db)
    rows = await stats.interval_stats(db, DAY, 30)
    got = {(r.queue, r.start): r for r in rows}
    assert list(got) == [("sales", day.at(9, 0)), ("sales", day.at(9, 30)), ("support", day.at(9, 0)), ("support", day.at(9, 30))]
    s0 = got[("sales", day.at(9, 0))]  # S1 S2 S3 S4 (see the unit test for the working)
    assert (s0.offered, s0.handled, s0.abandoned, s0.answered_within_target, s0.abandoned_within_target) == (4, 3, 1, 2, 1)
    assert s0.service_level == pytest.approx(2 / 3)
    assert s0.asa_seconds == pytest.approx(75 / 3) and s0.aht_seconds == pytest.approx(380.0)
    assert got[("sales", day.at(9, 30))].service_level == pytest.approx(0.5)
    assert got[("support", day.at(9, 0))].service_level == pytest.approx(1.0)
    p1 = got[("support", day.at(9, 30))]  # P2 queued exactly at 09:30:00.000 belongs here
    assert (p1.offered, p1.handled, p1.abandoned, p1.answered_within_target) == (3, 1, 1, 0)
    assert p1.service_level == pytest.approx(0.0) and p1.abandonment_rate == pytest.approx(0.5)
    # the SQL counts equal the pure computation over the same records, field by field
    records = await stats.contact_records(db, DAY - timedelta(days=1), DAY + timedelta(days=1))
    pure = interval_figures(records, DAY, 30, {"sales": 20, "support": 30})
    assert [astuple(r) for r in rows] == [astuple(r) for r in pure]


async def test_interval_stats_quarter_hours_and_target_overrides(db: Database) -> None:
    await _scripted_day(db)
    rows = await stats.interval_stats(db, DAY, 15)
    assert {(r.queue, r.start.strftime("%H:%M")): r.offered for r in rows} == {
        ("sales", "09:00"): 3, ("sales", "09:15"): 1, ("sales", "09:30"): 1, ("sales", "09:45"): 2,
        ("support", "09:15"): 1, ("support", "09:30"): 1, ("support", "09:45"): 2,
    }
    # a 45 s target for sales makes S3 (45 s) within: 09:00 -> 3 / (3 + 1 - 1) = 1.0
    overridden = await stats.interval_stats(db, DAY, 30, {"sales": 45})
    first = next(r for r in overridden if r.queue == "sales" and r.start == day.at(9, 0))
    assert first.answered_within_target == 3 and first.service_level == pytest.approx(1.0)
    # support keeps its own 30 s target from the queues table
    assert next(r for r in overridden if r.queue == "support" and r.start == day.at(9, 0)).service_level == 1.0
    # yesterday holds one contact, at 23:50 (answered in 5 s)
    yesterday = await stats.interval_stats(db, DAY - timedelta(days=1), 30)
    assert [(r.queue, r.start, r.offered, r.answered_within_target) for r in yesterday] == [
        ("sales", DAY - timedelta(minutes=30), 1, 1)
    ]
    with pytest.raises(ValueError, match="interval_minutes"):
        await stats.interval_stats(db, DAY, 7)


async def test_interval_stats_of_a_day_starting_off_midnight(db: Database) -> None:
    await _scripted_day(db)
    # a local day that starts at 08:45 UTC: 09:00-09:14 fall in its second quarter hour
    rows = await stats.interval_stats(db, day.at(8, 45), 15)
    assert {(r.queue, r.start.strftime("%H:%M")) for r in rows} >= {("sales", "09:00"), ("support", "09:45")}
    assert sum(r.offered for r in rows) == 11


async def test_agent_state_log_records_and_reads_back(db: Database) -> None:
    agent_ids = await _scripted_day(db)
    a1, a2 = agent_ids[1], agent_ids[2]
    for state in day.STATES:
        agent = agent_ids[state.agent_id]
        await stats.record_agent_state(db, agent, state.state, state.started_at)
    # agent 2's history begins offline at 08:00; nothing for it before
    rows = await stats.agent_state_rows(db, DAY, NOW)
    assert [(r.agent_id, r.state, r.started_at, r.ended_at) for r in rows] == [
        (agent_ids[s.agent_id], s.state, s.started_at, s.ended_at) for s in sorted(day.STATES, key=lambda s: (agent_ids[s.agent_id], s.started_at))
    ]
    # occupancy from the stored history and the stored contacts: the unit test's hand-computed values
    records = await stats.contact_records(db, DAY, DAY + timedelta(days=1))
    figures = agent_figures(rows, records, DAY, NOW)
    assert figures[a1].occupancy == pytest.approx(1185 / 3300)
    assert figures[a2].occupancy == pytest.approx(1495 / 3600)
    assert figures[a2].current_state == "available" and figures[a2].current_state_since == day.at(9, 42)
    # a window only returns the rows that overlap it
    window = await stats.agent_state_rows(db, day.at(9, 35), day.at(9, 41, 30), agent_id=a2)
    assert [r.state for r in window] == ["available", "wrap_up"]
    assert await stats.agent_state_rows(db, day.at(7, 0), day.at(8, 0)) == []


async def test_record_agent_state_closes_the_open_row_and_ignores_repeats(db: Database) -> None:
    agent_ids = await _scripted_day(db)
    agent = agent_ids[1]
    first = await stats.record_agent_state(db, agent, "available", day.at(9, 0))
    again = await stats.record_agent_state(db, agent, "available", day.at(9, 5))
    assert again == first  # same state: the open row stays as it was
    busy = await stats.record_agent_state(db, agent, "busy", day.at(9, 10))
    # a node whose clock runs behind: the open row closes with zero length, never a negative one
    skewed = await stats.record_agent_state(db, agent, "away", day.at(9, 9))
    rows = await stats.agent_state_rows(db, DAY, NOW)
    assert [(r.state, r.started_at, r.ended_at) for r in rows] == [
        ("available", day.at(9, 0), day.at(9, 10)),
        ("away", day.at(9, 9), None),
        ("busy", day.at(9, 10), day.at(9, 10)),
    ]
    assert busy.ended_at is None and skewed.state == "away"
    with pytest.raises(ValueError, match="state"):
        await stats.record_agent_state(db, agent, "lunch", day.at(9, 20))
    with pytest.raises(LookupError):
        await stats.record_agent_state(db, 999_999, "available", day.at(9, 20))
    # without a time: now
    current = await stats.record_agent_state(db, agent, "available")
    assert abs((current.started_at - datetime.now(timezone.utc)).total_seconds()) < 60


async def test_concurrent_state_changes_leave_one_open_row(db: Database) -> None:
    agent_ids = await _scripted_day(db)
    agent = agent_ids[2]
    states = ["available", "busy", "wrap_up", "away"] * 5
    await asyncio.gather(
        *(stats.record_agent_state(db, agent, st, day.at(9, 0) + timedelta(seconds=i)) for i, st in enumerate(states))
    )
    async with db.session() as s:
        open_rows = (
            await s.execute(
                select(func.count()).select_from(AgentStateLog).where(
                    AgentStateLog.agent_id == agent, AgentStateLog.ended_at.is_(None)  # type: ignore[union-attr]
                )
            )
        ).scalar_one()
    assert open_rows == 1
