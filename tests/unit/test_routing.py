"""Unit and property tests of the routing policy: capacity, skills, fairness, overflow, priority, the agent pool."""

from __future__ import annotations

import math
import random
import time
from dataclasses import replace
from fractions import Fraction
from typing import Mapping, Sequence

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from contact_center.domain.routing import (
    CHANNEL_WEIGHT,
    PRIORITY_AGING_CAP,
    PRIORITY_AGING_SECONDS,
    AgentPool,
    AgentSnapshot,
    AgentStatus,
    Assignment,
    QueueRule,
    WaitingContact,
    agent_order_key,
    can_take,
    channel_weight,
    contact_order_key,
    effective_priority,
    eligible_queues,
    estimate_wait_seconds,
    has_skills,
    pick_agent,
    plan_assignments,
    queue_position,
    serving_order,
    used_weight,
)

A = AgentStatus


def agent(
    agent_id: int = 1,
    *,
    status: AgentStatus = A.AVAILABLE,
    skills: Mapping[str, int] | None = None,
    capacity: Mapping[str, int] | None = None,
    load: Mapping[str, int] | None = None,
    idle_since: float = 0.0,
) -> AgentSnapshot:
    """An agent who by default takes anything (3 chats, 2 emails, 4 SMS/WhatsApp, 1 call) and has no contacts."""
    return AgentSnapshot(
        agent_id=agent_id,
        status=status,
        skills={} if skills is None else skills,
        capacity=(
            {"phone": 1, "callback": 1, "chat": 3, "email": 2, "sms": 4, "whatsapp": 4}
            if capacity is None
            else capacity
        ),
        load={} if load is None else load,
        idle_since=idle_since,
    )


def contact(
    conversation_id: int = 100,
    *,
    queue: str = "general",
    channel: str = "chat",
    enqueued_at: float = 0.0,
    priority: int = 0,
    declined_by: frozenset[int] = frozenset(),
    pinned_agent: int | None = None,
) -> WaitingContact:
    """A contact waiting in the general chat queue since t=0 unless told otherwise."""
    return WaitingContact(
        conversation_id=conversation_id,
        queue=queue,
        channel=channel,
        enqueued_at=enqueued_at,
        priority=priority,
        declined_by=declined_by,
        pinned_agent=pinned_agent,
    )


RULES: dict[str, QueueRule] = {
    "general": QueueRule("general", frozenset()),
    "billing": QueueRule("billing", frozenset({"billing"}), overflow_to="general", overflow_after_seconds=60),
    "french": QueueRule("french", frozenset({"french", "tech"}), overflow_to="billing", overflow_after_seconds=45),
    "tech": QueueRule("tech", frozenset({"tech"}), overflow_to="vip", overflow_after_seconds=30),
    "vip": QueueRule("vip", frozenset({"sales", "billing"}), overflow_to="tech", overflow_after_seconds=90),
    "sales": QueueRule("sales", frozenset({"sales"}), overflow_to="nowhere", overflow_after_seconds=10),
    "never": QueueRule("never", frozenset({"tech"}), overflow_to="general"),
}


# --------------------------------------------------------------------------------------------------
# Capacity
# --------------------------------------------------------------------------------------------------


def test_channel_weights_are_exact_fractions() -> None:
    assert CHANNEL_WEIGHT["phone"] == CHANNEL_WEIGHT["callback"] == 1
    assert CHANNEL_WEIGHT["chat"] == Fraction(1, 3)
    assert CHANNEL_WEIGHT["email"] == Fraction(1, 2)
    assert CHANNEL_WEIGHT["sms"] == CHANNEL_WEIGHT["whatsapp"] == Fraction(1, 4)
    assert channel_weight("fax") == 1  # an unknown channel takes all of an agent's attention
    with pytest.raises(TypeError):
        CHANNEL_WEIGHT["chat"] = Fraction(1, 2)  # type: ignore[index]


@pytest.mark.parametrize(
    ("load", "weight"),
    [
        ({}, Fraction(0)),
        ({"chat": 3}, Fraction(1)),
        ({"phone": 1}, Fraction(1)),
        ({"callback": 1}, Fraction(1)),
        ({"email": 1, "chat": 1}, Fraction(5, 6)),
        ({"email": 1, "chat": 2}, Fraction(7, 6)),
        ({"email": 2}, Fraction(1)),
        ({"email": 1, "sms": 2}, Fraction(1)),
        ({"sms": 1, "whatsapp": 1, "chat": 1}, Fraction(5, 6)),
        ({"chat": 0, "phone": 0}, Fraction(0)),
        ({"fax": 1}, Fraction(1)),
    ],
)
def test_used_weight(load: dict[str, int], weight: Fraction) -> None:
    assert used_weight(load) == weight


def test_three_chats_fill_an_agent_exactly() -> None:
    assert used_weight({"chat": 3}) == 1  # exact: 3 * 1/3 is 1, not 0.999...
    two = agent(load={"chat": 2})
    assert can_take(two, "chat")
    three = agent(load={"chat": 3}, capacity={"chat": 5})
    assert not can_take(three, "chat")  # the per-channel limit (5) allows it, the weight does not
    assert not can_take(three, "sms")


def test_one_call_fills_an_agent() -> None:
    on_call = agent(load={"phone": 1})
    for channel in ("phone", "callback", "chat", "email", "sms", "whatsapp"):
        assert not can_take(on_call, channel)


def test_one_email_and_one_chat_leave_room_for_nothing_but_small_ones() -> None:
    a = agent(load={"email": 1, "chat": 1})  # 5/6 used
    assert not can_take(a, "chat")  # 5/6 + 1/3 = 7/6 > 1
    assert not can_take(a, "sms")  # 5/6 + 1/4 = 13/12 > 1
    assert not can_take(a, "email")
    assert not can_take(a, "phone")
    email_only = agent(load={"email": 1})  # 1/2 used
    assert can_take(email_only, "chat")  # 1/2 + 1/3 = 5/6
    assert can_take(email_only, "email")  # 1/2 + 1/2 = 1 exactly, and capacity 2
    assert can_take(email_only, "sms")
    assert not can_take(email_only, "phone")
    email_sms = agent(load={"email": 1, "sms": 1})  # 3/4 used
    assert can_take(email_sms, "sms")  # exactly 1
    assert not can_take(email_sms, "chat")  # 3/4 + 1/3 = 13/12
    two_chats = agent(load={"chat": 2})  # 2/3 used
    assert not can_take(two_chats, "email")  # 2/3 + 1/2 = 7/6
    assert can_take(two_chats, "whatsapp")  # 2/3 + 1/4 = 11/12


def test_per_channel_limit_and_missing_channel() -> None:
    assert not can_take(agent(capacity={"chat": 1}, load={"chat": 1}), "chat")
    assert can_take(agent(capacity={"chat": 2}, load={"chat": 1}), "chat")
    assert not can_take(agent(capacity={"chat": 3}), "email")  # email not in capacity: cannot take it
    assert not can_take(agent(capacity={"email": 0}), "email")
    assert not can_take(agent(capacity={"chat": 3}), "fax")
    assert can_take(agent(capacity={"fax": 1}), "fax")
    assert not can_take(agent(capacity={"fax": 1, "chat": 3}, load={"chat": 1}), "fax")  # fax weighs 1


@pytest.mark.parametrize("status", [A.WRAP_UP, A.AWAY, A.OFFLINE])
def test_agents_not_ready_never_take(status: AgentStatus) -> None:
    assert not can_take(agent(status=status), "chat")
    assert pick_agent(contact(), [agent(status=status)], RULES, now=0) is None
    assert AgentPool([agent(status=status)]).best_for(contact(), RULES, now=0) is None


def test_busy_is_available_with_contacts_open() -> None:
    assert can_take(agent(status=A.BUSY, load={"chat": 1}), "chat")
    assert not can_take(agent(status=A.BUSY, load={"chat": 3}), "chat")
    assert can_take(agent(status="available", load={}), "chat")  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Skills and agent order
# --------------------------------------------------------------------------------------------------


def test_has_skills() -> None:
    a = agent(skills={"billing": 3, "tech": 0, "french": 1})
    assert has_skills(a, frozenset())
    assert has_skills(a, frozenset({"billing"}))
    assert has_skills(a, frozenset({"billing", "french"}))
    assert not has_skills(a, frozenset({"tech"}))  # level 0 is no skill
    assert not has_skills(a, frozenset({"billing", "sales"}))


def test_only_skilled_agents_get_the_queue() -> None:
    unskilled = agent(1, idle_since=0)
    skilled = agent(2, skills={"billing": 1}, idle_since=50)
    assert pick_agent(contact(queue="billing"), [unskilled, skilled], RULES, now=10) == 2
    assert pick_agent(contact(queue="billing"), [unskilled], RULES, now=10) is None
    assert pick_agent(contact(queue="general"), [unskilled, skilled], RULES, now=10) == 1


def test_longest_idle_first() -> None:
    agents = [agent(1, idle_since=30), agent(2, idle_since=10), agent(3, idle_since=20)]
    assert pick_agent(contact(), agents, RULES, now=100) == 2
    assert AgentPool(agents).best_for(contact(), RULES, now=100) == 2


def test_agent_tie_breaks_skill_then_room_then_id() -> None:
    required = frozenset({"billing"})
    low = agent(1, skills={"billing": 2}, idle_since=5)
    high = agent(2, skills={"billing": 4}, idle_since=5)
    assert agent_order_key(high, required) < agent_order_key(low, required)
    assert pick_agent(contact(queue="billing"), [low, high], RULES, now=10) == 2

    busier = agent(3, skills={"billing": 4}, load={"chat": 1}, idle_since=5)
    freer = agent(4, skills={"billing": 4}, load={"sms": 1}, idle_since=5)
    assert pick_agent(contact(queue="billing"), [busier, freer], RULES, now=10) == 4

    twin_a = agent(7, idle_since=5)
    twin_b = agent(6, idle_since=5)
    assert pick_agent(contact(), [twin_a, twin_b], RULES, now=10) == 6
    # Idle time outranks everything else.
    veteran = agent(9, skills={"billing": 1}, load={"chat": 2}, idle_since=4)
    assert pick_agent(contact(queue="billing"), [low, high, freer, veteran], RULES, now=10) == 9
    # The pool breaks ties the same way, even when the lower id comes first in its index.
    assert AgentPool([low, high]).best_for(contact(queue="billing"), RULES, now=10) == 2
    assert AgentPool([busier, freer]).best_for(contact(queue="billing"), RULES, now=10) == 4
    assert AgentPool([twin_a, twin_b]).best_for(contact(), RULES, now=10) == 6
    assert AgentPool([low, high, freer, veteran]).best_for(contact(queue="billing"), RULES, now=10) == 9


def test_declined_agents_are_not_offered_again() -> None:
    agents = [agent(1, idle_since=0), agent(2, idle_since=5), agent(3, idle_since=9)]
    c = contact(declined_by=frozenset({1}))
    assert pick_agent(c, agents, RULES, now=10) == 2
    assert AgentPool(agents).best_for(c, RULES, now=10) == 2
    everyone = contact(declined_by=frozenset({1, 2, 3}))
    assert pick_agent(everyone, agents, RULES, now=10) is None
    assert AgentPool(agents).best_for(everyone, RULES, now=10) is None


def test_pinned_contact_waits_for_its_agent() -> None:
    agents = [agent(1, idle_since=0), agent(2, idle_since=5)]
    c = contact(pinned_agent=2)
    assert pick_agent(c, agents, RULES, now=10) == 2
    assert AgentPool(agents).best_for(c, RULES, now=10) == 2
    full = [agent(1, idle_since=0), agent(2, load={"phone": 1}, idle_since=5)]
    assert pick_agent(c, full, RULES, now=10) is None  # agent 1 is free but may not take it
    assert AgentPool(full).best_for(c, RULES, now=10) is None
    assert pick_agent(contact(pinned_agent=42), agents, RULES, now=10) is None  # not logged in
    declined = contact(pinned_agent=2, declined_by=frozenset({2}))
    assert pick_agent(declined, agents, RULES, now=10) is None
    unskilled = contact(queue="billing", pinned_agent=2)
    assert pick_agent(unskilled, agents, RULES, now=10) is None  # still needs the queue's skills


# --------------------------------------------------------------------------------------------------
# Queues and overflow
# --------------------------------------------------------------------------------------------------


def names(rules: Sequence[QueueRule]) -> list[str]:
    return [r.name for r in rules]


def test_overflow_after_the_wait_and_not_before() -> None:
    c = contact(queue="billing", enqueued_at=100)
    assert names(eligible_queues(c, RULES, now=159.9)) == ["billing"]
    assert names(eligible_queues(c, RULES, now=160)) == ["billing", "general"]
    generalist = agent(1)
    assert pick_agent(c, [generalist], RULES, now=159.9) is None
    assert pick_agent(c, [generalist], RULES, now=160) == 1
    assert plan_assignments([c], [generalist], RULES, now=159.9) == []
    assert plan_assignments([c], [generalist], RULES, now=160) == [Assignment(100, 1, "general")]


def test_overflow_is_transitive_each_hop_on_total_wait() -> None:
    c = contact(queue="french", enqueued_at=0)
    assert names(eligible_queues(c, RULES, now=44)) == ["french"]
    assert names(eligible_queues(c, RULES, now=45)) == ["french", "billing"]
    assert names(eligible_queues(c, RULES, now=59)) == ["french", "billing"]
    assert names(eligible_queues(c, RULES, now=60)) == ["french", "billing", "general"]


def test_overflow_stops_at_cycles_missing_queues_and_unset_delays() -> None:
    assert names(eligible_queues(contact(queue="tech"), RULES, now=1000)) == ["tech", "vip"]
    assert names(eligible_queues(contact(queue="vip"), RULES, now=1000)) == ["vip", "tech"]
    assert names(eligible_queues(contact(queue="sales"), RULES, now=1000)) == ["sales"]
    assert names(eligible_queues(contact(queue="never"), RULES, now=10**9)) == ["never"]
    assert eligible_queues(contact(queue="ghost"), RULES, now=0) == ()
    assert pick_agent(contact(queue="ghost"), [agent()], RULES, now=0) is None


def test_own_queue_preferred_over_overflow() -> None:
    generalist = agent(1, idle_since=0)  # idle longest, but only fit for the overflow queue
    biller = agent(2, skills={"billing": 1}, capacity={"chat": 1}, idle_since=50)
    c = contact(queue="billing", enqueued_at=0)
    assert pick_agent(c, [generalist, biller], RULES, now=100) == 2
    assert AgentPool([generalist, biller]).best_for_with_queue(c, RULES, now=100) == (2, "billing")
    plan = plan_assignments([c, contact(101, queue="billing")], [generalist, biller], RULES, now=100)
    assert plan == [Assignment(100, 2, "billing"), Assignment(101, 1, "general")]


# --------------------------------------------------------------------------------------------------
# Contact order
# --------------------------------------------------------------------------------------------------


def test_priority_then_fifo() -> None:
    now = 50.0
    std_old = contact(1, enqueued_at=10, priority=0)
    std_new = contact(2, enqueued_at=20, priority=0)
    gold_new = contact(3, enqueued_at=40, priority=2)
    silver = contact(4, enqueued_at=30, priority=1)
    std_same_time = contact(0, enqueued_at=20, priority=0)
    ordered = sorted([std_new, std_old, gold_new, silver, std_same_time], key=lambda c: contact_order_key(c, now))
    assert [c.conversation_id for c in ordered] == [3, 4, 1, 0, 2]
    one_agent = [agent(1, capacity={"chat": 1})]
    plan = plan_assignments([std_old, std_new, gold_new], one_agent, RULES, now)
    assert plan == [Assignment(3, 1, "general")]
    plan = plan_assignments([std_new, std_old], one_agent, RULES, now)
    assert plan == [Assignment(1, 1, "general")]


def test_priority_aging() -> None:
    assert PRIORITY_AGING_SECONDS == 120 and PRIORITY_AGING_CAP == 2
    c = contact(enqueued_at=0, priority=0)
    assert effective_priority(c, now=119.9) == 0
    assert effective_priority(c, now=120) == 1
    assert effective_priority(c, now=240) == 2
    assert effective_priority(c, now=10_000) == 2  # capped
    assert effective_priority(contact(enqueued_at=50), now=0) == 0  # clock skew: no negative wait
    # A standard contact that waited 4 minutes ties with gold, and is served first because it waited longer.
    now = 250.0
    old_standard = contact(1, enqueued_at=0, priority=0)
    new_gold = contact(2, enqueued_at=249, priority=2)
    new_silver = contact(3, enqueued_at=248, priority=1)
    order = sorted([new_gold, new_silver, old_standard], key=lambda c: contact_order_key(c, now))
    assert [c.conversation_id for c in order] == [1, 2, 3]


def test_fifo_within_equal_effective_priority_with_aging() -> None:
    # Among contacts of one tier, the one that waited longer is never behind, whatever the aging.
    now = 1000.0
    tier = [contact(i, enqueued_at=t, priority=1) for i, t in enumerate([999, 0, 880, 881, 760, 500, 1000])]
    ordered = sorted(tier, key=lambda c: contact_order_key(c, now))
    assert [c.enqueued_at for c in ordered] == sorted(c.enqueued_at for c in tier)
    # Equal effective priority from different tiers: FIFO again.
    aged_std = contact(10, enqueued_at=700, priority=0)  # waited 300 s: effective 2
    fresh_gold = contact(11, enqueued_at=990, priority=2)  # effective 2
    aged_silver = contact(12, enqueued_at=800, priority=1)  # waited 200 s: effective 2
    ordered = sorted([fresh_gold, aged_silver, aged_std], key=lambda c: contact_order_key(c, now))
    assert [c.conversation_id for c in ordered] == [10, 12, 11]


def test_queue_position_counts_only_its_queue() -> None:
    now = 60.0
    waiting = [
        contact(1, queue="billing", enqueued_at=10),
        contact(2, queue="general", enqueued_at=5),
        contact(3, queue="billing", enqueued_at=20),
        contact(4, queue="billing", enqueued_at=30, priority=2),
        contact(5, queue="billing", enqueued_at=20, channel="email"),
    ]
    assert queue_position(waiting, 4, now) == 1
    assert queue_position(waiting, 1, now) == 2
    assert queue_position(waiting, 3, now) == 3
    assert queue_position(waiting, 5, now) == 4
    assert queue_position(waiting, 2, now) == 1
    assert queue_position(waiting, 99, now) is None
    assert queue_position([], 1, now) is None


def test_estimate_wait_seconds() -> None:
    assert estimate_wait_seconds(1, 1, 300) == 300.0
    assert estimate_wait_seconds(4, 2, 300) == 600.0
    assert estimate_wait_seconds(6, 2, 300, channel_concurrency=3) == 300.0
    assert estimate_wait_seconds(3, 1, 90, channel_concurrency=0.5) == 270.0  # never divide by less than one
    assert estimate_wait_seconds(0, 5, 300) == 0.0
    assert estimate_wait_seconds(2, 0, 300) == math.inf
    assert isinstance(estimate_wait_seconds(1, 3, 100), float)
    with pytest.raises(ValueError):
        estimate_wait_seconds(-1, 1, 100)


# --------------------------------------------------------------------------------------------------
# Plans
# --------------------------------------------------------------------------------------------------


def test_plan_fills_agents_up_to_capacity_and_no_further() -> None:
    a = agent(1, capacity={"chat": 3, "email": 2})
    waiting = [contact(i, channel="chat", enqueued_at=i) for i in range(1, 6)]
    plan = plan_assignments(waiting, [a], RULES, now=100)
    assert [p.conversation_id for p in plan] == [1, 2, 3]
    assert all(p.agent_id == 1 for p in plan)
    mixed = [contact(1, channel="email", enqueued_at=1), contact(2, channel="chat", enqueued_at=2),
             contact(3, channel="chat", enqueued_at=3), contact(4, channel="sms", enqueued_at=4)]
    plan = plan_assignments(mixed, [agent(1)], RULES, now=100)
    assert [p.conversation_id for p in plan] == [1, 2]  # 1/2 + 1/3; a second chat or an SMS would overflow
    plan = plan_assignments(mixed, [agent(1, load={"phone": 1})], RULES, now=100)
    assert plan == []


def test_plan_spreads_by_idle_time_and_room() -> None:
    agents = [agent(1, idle_since=0), agent(2, idle_since=10)]
    waiting = [contact(i, enqueued_at=i) for i in range(1, 5)]
    plan = plan_assignments(waiting, agents, RULES, now=100)
    # Agent 1 has been idle longest, so gets chats until full; then agent 2.
    assert [(p.conversation_id, p.agent_id) for p in plan] == [(1, 1), (2, 1), (3, 1), (4, 2)]
    twins = [agent(1, idle_since=0), agent(2, idle_since=0)]
    plan = plan_assignments(waiting, twins, RULES, now=100)
    # Equal idle time: the one with more room next, so chats alternate.
    assert [(p.conversation_id, p.agent_id) for p in plan] == [(1, 1), (2, 2), (3, 1), (4, 2)]


def test_plan_assigns_a_conversation_once_and_respects_declines() -> None:
    dup = [contact(7, enqueued_at=1), contact(7, enqueued_at=2)]
    assert len(plan_assignments(dup, [agent(1), agent(2)], RULES, now=10)) == 1
    waiting = [contact(1, declined_by=frozenset({1})), contact(2, enqueued_at=1)]
    plan = plan_assignments(waiting, [agent(1, capacity={"chat": 1}), agent(2, capacity={"chat": 1}, idle_since=9)],
                            RULES, now=10)
    assert plan == [Assignment(1, 2, "general"), Assignment(2, 1, "general")]


def test_plan_remembers_dead_ends_only_for_the_same_chain_and_plain_contacts() -> None:
    generalist = agent(1)
    # Gold just arrived in billing: no biller, so nobody. The standard one has waited into overflow: served.
    gold_new = contact(1, queue="billing", enqueued_at=95, priority=2)
    std_old = contact(2, queue="billing", enqueued_at=0, priority=0)
    assert plan_assignments([gold_new, std_old], [generalist], RULES, now=100) == [Assignment(2, 1, "general")]
    # A contact the only agent declined finds nobody; the next one in the queue still gets that agent.
    declined = contact(3, enqueued_at=0, declined_by=frozenset({1}))
    plain = contact(4, enqueued_at=1)
    assert plan_assignments([declined, plain], [generalist], RULES, now=10) == [Assignment(4, 1, "general")]
    # A transfer to an absent agent finds nobody; the next one in the queue still gets served.
    pinned = contact(5, enqueued_at=0, pinned_agent=9)
    assert plan_assignments([pinned, plain], [generalist], RULES, now=10) == [Assignment(4, 1, "general")]


def test_plan_never_gives_to_agents_already_over_capacity() -> None:
    over = agent(1, capacity={"chat": 1}, load={"chat": 2})  # capacity was lowered while chats were open
    assert plan_assignments([contact(1)], [over], RULES, now=10) == []


def test_plan_with_nothing() -> None:
    assert plan_assignments([], [agent()], RULES, now=0) == []
    assert plan_assignments([contact()], [], RULES, now=0) == []


# --------------------------------------------------------------------------------------------------
# The agent pool
# --------------------------------------------------------------------------------------------------


def test_pool_assign_and_release() -> None:
    pool = AgentPool([agent(1, capacity={"chat": 3}, idle_since=0), agent(2, capacity={"chat": 3}, idle_since=5)])
    c = contact()
    assert pool.best_for(c, RULES, now=10) == 1
    for _ in range(3):
        pool.assign(1, "chat")
    assert pool.best_for(c, RULES, now=10) == 2
    with pytest.raises(ValueError):
        pool.assign(1, "chat")
    pool.release(1, "chat", now=20)
    snap = pool.get(1)
    assert snap is not None and snap.load == {"chat": 2} and snap.idle_since == 0  # not yet fully free
    assert pool.best_for(c, RULES, now=20) == 1  # has room again and still idle since 0
    pool.release(1, "chat", now=30)
    pool.release(1, "chat", now=40)
    snap = pool.get(1)
    assert snap is not None and snap.load == {} and snap.idle_since == 40  # fully free from now
    pool.release(1, "chat", now=50)  # a repeated release changes nothing
    snap = pool.get(1)
    assert snap is not None and snap.idle_since == 40
    assert pool.best_for(c, RULES, now=50) == 2


def test_pool_upsert_and_remove() -> None:
    pool = AgentPool()
    assert pool.best_for(contact(), RULES, now=0) is None
    pool.upsert(agent(1, idle_since=5))
    pool.upsert(agent(2, idle_since=3))
    assert len(pool) == 2 and 1 in pool
    assert pool.best_for(contact(), RULES, now=10) == 2
    pool.upsert(agent(2, status=A.AWAY, idle_since=3))
    assert pool.best_for(contact(), RULES, now=10) == 1
    pool.remove(1)
    pool.remove(1)  # twice is fine
    assert pool.best_for(contact(), RULES, now=10) is None
    pool.upsert(agent(2, skills={"billing": 2}, idle_since=3))
    assert pool.best_for(contact(queue="billing"), RULES, now=10) == 2
    assert [a.agent_id for a in pool.agents()] == [2]


# --------------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------------

SKILLS = ("billing", "sales", "tech", "french")
CHANNELS = ("phone", "callback", "chat", "email", "sms", "whatsapp", "fax")
QUEUES = (*RULES, "ghost")


@st.composite
def agent_snapshots(draw: st.DrawFn, agent_id: int) -> AgentSnapshot:
    # Fixed-length lists are much cheaper for hypothesis to generate than dictionaries; negative: absent.
    caps = draw(st.lists(st.integers(-3, 4), min_size=len(CHANNELS), max_size=len(CHANNELS)))
    capacity = {ch: cap for ch, cap in zip(CHANNELS, caps) if cap >= 0}
    loads = draw(st.lists(st.integers(0, 4), min_size=len(CHANNELS), max_size=len(CHANNELS)))
    load = {ch: min(n, capacity[ch]) for ch, n in zip(CHANNELS, loads) if ch in capacity}
    while used_weight(load) > 1:  # start from a legal state: trim the biggest load
        biggest = max(load, key=lambda ch: (load[ch] * channel_weight(ch), ch))
        load[biggest] -= 1
    load = {ch: n for ch, n in load.items() if n}
    return AgentSnapshot(
        agent_id=agent_id,
        status=draw(st.sampled_from([A.AVAILABLE, A.AVAILABLE, A.AVAILABLE, A.BUSY, A.WRAP_UP, A.AWAY, A.OFFLINE])),
        skills={
            sk: level
            for sk, level in zip(SKILLS, draw(st.lists(st.integers(-2, 5), min_size=len(SKILLS), max_size=len(SKILLS))))
            if level >= 0
        },
        capacity=capacity,
        load=load,
        idle_since=float(draw(st.integers(0, 4))),  # few values: plenty of ties
    )


@st.composite
def agent_lists(draw: st.DrawFn, max_agents: int = 10) -> list[AgentSnapshot]:
    n = draw(st.integers(0, max_agents))
    return [draw(agent_snapshots(i)) for i in range(1, n + 1)]


@st.composite
def waiting_contacts(draw: st.DrawFn, n_agents: int, max_contacts: int = 25) -> list[WaitingContact]:
    ids = draw(st.lists(st.integers(1, 10_000), unique=True, max_size=max_contacts))
    agent_ids = st.integers(1, n_agents + 1)
    out = []
    for cid in ids:
        special = draw(st.integers(0, 5))
        out.append(
            WaitingContact(
                conversation_id=cid,
                queue=draw(st.sampled_from(QUEUES)),
                channel=draw(st.sampled_from(CHANNELS)),
                enqueued_at=float(draw(st.integers(0, 400))),
                priority=draw(st.integers(0, 2)),
                declined_by=draw(st.frozensets(agent_ids, max_size=3)) if special == 1 else frozenset(),
                pinned_agent=draw(agent_ids) if special == 2 else None,
            )
        )
    return out


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[AgentSnapshot], list[WaitingContact], float]:
    agents = draw(agent_lists())
    waiting = draw(waiting_contacts(len(agents)))
    now = float(draw(st.integers(0, 500)))
    return agents, waiting, now


def reference_plan(
    waiting: Sequence[WaitingContact], agents: Sequence[AgentSnapshot], rules: Mapping[str, QueueRule], now: float
) -> list[Assignment]:
    """The plan spelled out slowly: one pick_agent per contact in serving order, loads updated as we go."""
    current = {a.agent_id: a for a in agents}
    plan: list[Assignment] = []
    done: set[int] = set()
    for c in sorted(waiting, key=lambda c: contact_order_key(c, now)):
        if c.conversation_id in done:
            continue
        chosen = pick_agent(c, list(current.values()), rules, now)
        if chosen is None:
            continue
        queue = next(r.name for r in eligible_queues(c, rules, now) if has_skills(current[chosen], r.skills_required))
        a = current[chosen]
        current[chosen] = replace(a, load={**a.load, c.channel: a.load.get(c.channel, 0) + 1})
        done.add(c.conversation_id)
        plan.append(Assignment(c.conversation_id, chosen, queue))
    return plan


PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check_plan(agents: list[AgentSnapshot], waiting: list[WaitingContact], now: float) -> None:
    """Properties (1) to (4) of a plan, and its equality with the slow reference plan."""
    plan = plan_assignments(waiting, agents, RULES, now)
    by_id = {a.agent_id: a for a in agents}
    contacts = {c.conversation_id: c for c in waiting}

    # (1) No conversation is assigned twice.
    assert len({p.conversation_id for p in plan}) == len(plan)

    # (2) Applying the plan exceeds nobody's per-channel capacity or total weight.
    loads = {a.agent_id: dict(a.load) for a in agents}
    for p in plan:
        ch = contacts[p.conversation_id].channel
        loads[p.agent_id][ch] = loads[p.agent_id].get(ch, 0) + 1
    for aid in {p.agent_id for p in plan}:
        a = by_id[aid]
        assert a.status in (A.AVAILABLE, A.BUSY)
        assert used_weight(loads[aid]) <= 1
        for ch, n in loads[aid].items():
            assert n <= a.capacity.get(ch, 0)

    # (3) FIFO within equal priority: an earlier plain contact of the same queue and channel is never skipped.
    got = {p.conversation_id for p in plan}
    for late in waiting:
        if late.conversation_id not in got:
            continue
        for early in waiting:
            if (
                early.queue == late.queue
                and early.channel == late.channel
                and early.priority == late.priority
                and not early.declined_by
                and early.pinned_agent is None
                and (early.enqueued_at, early.conversation_id) < (late.enqueued_at, late.conversation_id)
            ):
                assert early.conversation_id in got, (early, late)

    # (4) Every assignment respects skills, declines, pins and the queue chain.
    for p in plan:
        c = contacts[p.conversation_id]
        a = by_id[p.agent_id]
        queues = {r.name: r for r in eligible_queues(c, RULES, now)}
        assert p.queue in queues
        assert has_skills(a, queues[p.queue].skills_required)
        assert p.agent_id not in c.declined_by
        assert c.pinned_agent is None or c.pinned_agent == p.agent_id

    # And the fast plan is exactly the slow, obvious one.
    assert plan == reference_plan(waiting, agents, RULES, now)


def spec_pick(c: WaitingContact, agents: Sequence[AgentSnapshot], now: float) -> int | None:
    """The policy read straight from its statement, with the public helpers: a third, independent answer."""
    for rule in eligible_queues(c, RULES, now):
        fit = [
            a
            for a in agents
            if can_take(a, c.channel)
            and has_skills(a, rule.skills_required)
            and a.agent_id not in c.declined_by
            and c.pinned_agent in (None, a.agent_id)
        ]
        if fit:
            return min(fit, key=lambda a: agent_order_key(a, rule.skills_required)).agent_id
    return None


def check_pool(agents: list[AgentSnapshot], waiting: list[WaitingContact], now: float) -> None:
    """(5) The indexed pool gives the same answer as the plain scan, and both follow the stated policy."""
    pool = AgentPool(agents)
    for c in waiting:
        expected = spec_pick(c, agents, now)
        assert pick_agent(c, agents, RULES, now) == expected, c
        assert pool.best_for(c, RULES, now) == expected, c


@settings(PROPERTY, max_examples=150)
@given(scenarios())
def test_plan_properties(scenario: tuple[list[AgentSnapshot], list[WaitingContact], float]) -> None:
    check_plan(*scenario)


@PROPERTY
@given(agent_snapshots(1), st.dictionaries(st.sampled_from(CHANNELS), st.integers(0, 5)), st.sampled_from(CHANNELS))
def test_can_take_is_the_exact_fraction_rule(base: AgentSnapshot, load: dict[str, int], channel: str) -> None:
    a = replace(base, load=load)
    expected = (
        a.status in (A.AVAILABLE, A.BUSY)
        and load.get(channel, 0) < a.capacity.get(channel, 0)
        and used_weight(load) + channel_weight(channel) <= 1
    )
    assert can_take(a, channel) == expected


@PROPERTY
@given(scenarios())
def test_pool_best_for_equals_pick_agent(scenario: tuple[list[AgentSnapshot], list[WaitingContact], float]) -> None:
    check_pool(*scenario)


def random_scenario(rnd: random.Random) -> tuple[list[AgentSnapshot], list[WaitingContact], float]:
    """A scenario like the hypothesis ones, from a plain seeded generator: cheap, so many can run."""
    agents = []
    for aid in range(1, rnd.randint(0, 12) + 1):
        capacity = {ch: rnd.randint(0, 4) for ch in rnd.sample(CHANNELS, rnd.randint(0, 5))}
        load = {ch: rnd.randint(0, cap) for ch, cap in capacity.items()}
        while used_weight(load) > 1:
            load[max(load, key=lambda ch: (load[ch] * channel_weight(ch), ch))] -= 1
        agents.append(
            AgentSnapshot(
                agent_id=aid,
                status=rnd.choice([A.AVAILABLE, A.AVAILABLE, A.AVAILABLE, A.BUSY, A.WRAP_UP, A.AWAY, A.OFFLINE]),
                skills={sk: rnd.randint(0, 5) for sk in rnd.sample(SKILLS, rnd.randint(0, 4))},
                capacity=capacity,
                load={ch: n for ch, n in load.items() if n},
                idle_since=float(rnd.randint(0, 4)),
            )
        )
    waiting = []
    for cid in rnd.sample(range(1, 10_000), rnd.randint(0, 30)):
        special = rnd.randint(0, 5)
        waiting.append(
            WaitingContact(
                conversation_id=cid,
                queue=rnd.choice(QUEUES),
                channel=rnd.choice(CHANNELS),
                enqueued_at=float(rnd.randint(0, 400)),
                priority=rnd.randint(0, 2),
                declined_by=frozenset(rnd.sample(range(1, len(agents) + 2), rnd.randint(1, min(3, len(agents) + 1))))
                if special == 1
                else frozenset(),
                pinned_agent=rnd.randint(1, len(agents) + 1) if special == 2 else None,
            )
        )
    return agents, waiting, float(rnd.randint(0, 500))


@pytest.mark.parametrize("seed", range(4))
def test_plan_and_pool_on_many_seeded_scenarios(seed: int) -> None:
    rnd = random.Random(seed)
    for _ in range(250):
        scenario = random_scenario(rnd)
        check_plan(*scenario)
        check_pool(*scenario)


@st.composite
def pool_histories(draw: st.DrawFn) -> tuple[list[AgentSnapshot], list[tuple[str, int, str, float]], list[WaitingContact]]:
    agents = draw(agent_lists(max_agents=8))
    n = len(agents) + 1
    ops = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["assign", "release", "upsert", "remove"]),
                st.integers(1, n),
                st.sampled_from(CHANNELS),
                st.floats(0, 10, allow_nan=False),
            ),
            max_size=30,
        )
    )
    return agents, ops, draw(waiting_contacts(n, max_contacts=8))


@PROPERTY
@given(pool_histories(), st.data())
def test_pool_stays_equal_to_pick_agent_through_changes(
    history: tuple[list[AgentSnapshot], list[tuple[str, int, str, float]], list[WaitingContact]], data: st.DataObject
) -> None:
    agents, ops, waiting = history
    pool = AgentPool(agents)
    for op, aid, channel, t in ops:
        current = pool.get(aid)
        if op == "assign" and current is not None and can_take(current, channel):
            pool.assign(aid, channel)
        elif op == "release" and current is not None:
            pool.release(aid, channel, now=t)
        elif op == "upsert":
            pool.upsert(data.draw(agent_snapshots(aid)))
        elif op == "remove":
            pool.remove(aid)
        for c in waiting:
            assert pool.best_for(c, RULES, now=300) == pick_agent(c, pool.agents(), RULES, now=300)


# --------------------------------------------------------------------------------------------------
# Speed
# --------------------------------------------------------------------------------------------------


def big_scenario(seed: int = 7) -> tuple[list[WaitingContact], list[AgentSnapshot], dict[str, QueueRule]]:
    """10,000 waiting contacts and 1,000 agents, the same every time."""
    rnd = random.Random(seed)
    skills = ["billing", "sales", "tech", "french", "returns", "vip"]
    rules = {
        "general": QueueRule("general", frozenset()),
        **{s: QueueRule(s, frozenset({s}), overflow_to="general", overflow_after_seconds=90) for s in skills},
        "tech_fr": QueueRule("tech_fr", frozenset({"tech", "french"}), overflow_to="tech", overflow_after_seconds=60),
    }
    channels = ["phone", "chat", "chat", "email", "sms", "whatsapp", "callback"]
    agents = []
    for i in range(1, 1001):
        caps = {ch: rnd.randint(1, 3) for ch in rnd.sample(channels, 4)}
        agents.append(
            AgentSnapshot(
                agent_id=i,
                status=rnd.choice([A.AVAILABLE] * 6 + [A.BUSY, A.WRAP_UP, A.AWAY, A.OFFLINE]),
                skills={s: rnd.randint(1, 5) for s in rnd.sample(skills, rnd.randint(1, 3))},
                capacity=caps,
                load={},
                idle_since=rnd.uniform(0, 1000),
            )
        )
    queues = list(rules)
    waiting = [
        WaitingContact(
            conversation_id=i,
            queue=rnd.choice(queues),
            channel=rnd.choice(channels),
            enqueued_at=rnd.uniform(0, 1000),
            priority=rnd.choice([0, 0, 0, 1, 2]),
            declined_by=frozenset(rnd.sample(range(1, 1001), 2)) if rnd.random() < 0.05 else frozenset(),
        )
        for i in range(1, 10_001)
    ]
    return waiting, agents, rules


def test_plan_for_ten_thousand_contacts_is_fast() -> None:
    waiting, agents, rules = big_scenario()
    start = time.perf_counter()
    plan = plan_assignments(waiting, agents, rules, now=1000)
    elapsed = time.perf_counter() - start
    assert plan, "someone must have been served"
    assert len({p.conversation_id for p in plan}) == len(plan)
    assert elapsed < 1.0, f"plan took {elapsed:.3f} s"


def test_queue_positions_match_queue_position_for_every_contact() -> None:
    """The one-sort positions used by the hub's router agree with the per-contact definition."""
    import random

    from contact_center.domain.routing import queue_position, queue_positions

    rng = random.Random(7)
    now = 10_000.0
    waiting = [
        WaitingContact(
            conversation_id=i, queue=rng.choice(["sales", "support"]), channel="chat",
            enqueued_at=now - rng.uniform(0, 900), priority=rng.choice([0, 0, 1, 2]),
        )
        for i in range(1, 300)
    ]
    positions = queue_positions(waiting, now)
    assert positions == {c.conversation_id: queue_position(waiting, c.conversation_id, now) for c in waiting}
    assert sorted(p for c, p in positions.items() if waiting[c - 1].queue == "sales") == list(
        range(1, sum(1 for c in waiting if c.queue == "sales") + 1)
    )


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=30),  # conversation id (repeats allowed: ties keep their order)
            st.integers(min_value=0, max_value=3),  # tier
            st.one_of(st.floats(min_value=0, max_value=2000, allow_nan=False), st.just(1000.0)),  # enqueued at
        ),
        max_size=40,
    ),
    st.floats(min_value=0, max_value=2000, allow_nan=False),
)
def test_serving_order_is_the_contact_order_key_order(raw: list[tuple[int, int, float]], now: float) -> None:
    """serving_order computes contact_order_key inline: the same order, ties included (both stable)."""
    contacts = [WaitingContact(cid, "general", "chat", at, tier) for cid, tier, at in raw]
    got = serving_order(contacts, now)
    assert [id(c) for c in got] == [id(c) for c in sorted(contacts, key=lambda c: contact_order_key(c, now))]
