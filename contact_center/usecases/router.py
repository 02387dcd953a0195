"""The router loop: expire stale offers, offer waiting contacts to the best agents (the pure routing core
decides, the shared state's atomic offer claims), and tell waiting customers their place in line."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Sequence

from contact_center.domain import presence as presence_rules
from contact_center.domain.routing import (
    AgentSnapshot,
    AgentStatus,
    QueueRule,
    WaitingContact,
    plan_assignments,
    queue_position,
    queue_positions,
    serving_order,
)
from contact_center.ports import AgentPresence, Notice, QueueEntry, StateUnavailable
from contact_center.usecases.context import Hub
from contact_center.usecases.views import queue_update

log = logging.getLogger("contact_center.hub")


def waiting_contacts(
    waiting: Sequence[QueueEntry], presences: Sequence[AgentPresence], now: float | None = None, decline_skip: float = 0.0,
    cache: dict[int, tuple[Any, bool, int | None, Any]] | None = None,
) -> list[WaitingContact]:
    """The routing core's view of the queue entries.

    The agents who declined a contact (or let its offer expire) are skipped for ``decline_skip`` seconds
    after the last decline, then may be offered it again (with ``now`` None: skipped for good). A transfer
    to a named agent falls back to its queue when that agent declined it or is not online; a strict pin
    (click-to-call: that agent's call only) never does.

    With ``cache`` (the router's, kept between passes), an entry seen last pass (the same object: the Redis
    store hands back the entries it decoded before for unchanged records) with the same decline skip and
    pin gets last pass's view back instead of a new one; the cache keeps only this pass's entries.
    """
    reachable = {p.agent_id for p in presences if p.status != AgentStatus.OFFLINE.value}
    out = []
    fresh: dict[int, tuple[Any, bool, int | None, Any]] = {}
    seen_before = (cache or {}).get
    for e in waiting:
        skipping = now is None or now - e.declined_at < decline_skip
        pin = e.pinned_agent
        pinned = None if pin is None else pin if e.pin_strict or (pin in reachable and pin not in e.declined_by) else None
        seen = seen_before(e.conversation_id)
        if seen is not None and seen[0] is e and seen[1] == skipping and seen[2] == pinned:
            out.append(seen[3])
            fresh[e.conversation_id] = seen
            continue
        contact = WaitingContact(
            conversation_id=e.conversation_id, queue=e.queue, channel=e.channel, enqueued_at=e.enqueued_at,
            priority=e.priority, declined_by=e.declined_by if skipping else frozenset[int](), pinned_agent=pinned,
        )
        out.append(contact)
        fresh[e.conversation_id] = (e, skipping, pinned, contact)
    if cache is not None:
        cache.clear()
        cache.update(fresh)
    return out


def serving_agents(presences: Sequence[AgentPresence]) -> int:
    """How many agents are taking contacts now (available or busy)."""
    return presence_rules.serving(p.status for p in presences)


async def queue_info(hub: Hub, conversation_id: int) -> dict[str, Any] | None:
    """A waiting conversation's place in its queue and estimated wait (None if not waiting)."""
    presences = await hub.store.all_presence()
    contacts = waiting_contacts(await hub.store.waiting(), presences)
    pos = queue_position(contacts, conversation_id, hub.clock())
    if pos is None:
        return None
    channel = next(c.channel for c in contacts if c.conversation_id == conversation_id)
    return queue_update(conversation_id, pos, serving_agents(presences), hub.concurrency(channel))


async def enqueue(hub: Hub, entry: QueueEntry) -> bool:
    """Put a conversation that SQL has just queued into the shared queue, and route. While the shared state is
    unavailable (Redis down) the conversation stays queued in SQL, which is the truth: the routing loop's
    rebuild puts it back in the shared queue when Redis is back. Returns whether it is in the shared queue."""
    try:
        await hub.store.enqueue(entry)
    except StateUnavailable:
        log.warning("the shared state is unavailable: the conversation waits in SQL until it is rebuilt",
                    extra={"conversation_id": entry.conversation_id})
        return False
    hub.kick()
    return True


async def availability(hub: Hub, queue: str, channel: str) -> dict[str, Any] | None:
    """What the customer's widget says before and while they wait (the ``session`` event's ``availability``):
    how many agents with the queue's skills take contacts now (available or busy), and the estimated wait of a
    contact joining the queue now (None while nobody serves: the widget then says no one is available).
    None while the shared state cannot be reached (the widget then shows a neutral line)."""
    try:
        presences = await hub.store.all_presence()
        entries = await hub.store.waiting()
    except StateUnavailable:
        return None
    rule = hub.rules.get(queue)
    required = rule.skills_required if rule is not None else frozenset()
    serving = [
        p for p in presences
        if p.status in (AgentStatus.AVAILABLE.value, AgentStatus.BUSY.value)
        and all(int(p.skills.get(s, 0) or 0) >= 1 for s in required)
    ]
    waiting = [e for e in entries if e.queue == queue]
    update = queue_update(0, len(waiting) + 1, len(serving), hub.concurrency(channel))
    return {"agents_available": len(serving), "estimated_wait_seconds": update["estimated_wait_seconds"]}


async def route_once(hub: Hub, *, publish: bool = True) -> int:
    """One routing pass: expire stale offers, offer waiting contacts to the best agents, update queue positions.

    With ``publish`` False the positions are left for :func:`publish_positions` (the routing loop's way: a pass
    runs on every kick, many a second under load, and telling 10,000 waiting customers their new place on each
    would cost more than the routing itself; once a second is what a customer can see change anyway)."""
    from contact_center.usecases.offers import offer_json, offer_missed, pin_refused

    async with hub.route_lock:
        hub.positions_pending = None  # an earlier pass's places are stale now, whatever this one ends with
        now = hub.clock()
        for offer in await hub.store.expired_offers(now):
            if (back := await hub.store.expire(offer.conversation_id, now)) is not None:
                await hub.tell_agent(offer.agent_id, "offer_revoked", {
                    "conversation_id": offer.conversation_id, "reason": "expired", "skip_seconds": hub.decline_skip,
                })
                await offer_missed(hub, offer.agent_id, offer.conversation_id)  # two in a row: Away
                if back.pin_strict:  # their own call (click-to-call), left to time out: withdrawn
                    await pin_refused(hub, back.conversation_id)
        waiting = await hub.store.waiting()
        if not waiting:
            return 0
        presences = await hub.store.all_presence()
        agents = [
            AgentSnapshot(
                agent_id=p.agent_id, status=AgentStatus(p.status), skills=p.skills, capacity=p.capacity,
                load=p.load, idle_since=p.idle_since,
            )
            for p in presences
        ]
        contacts = waiting_contacts(waiting, presences, now, hub.decline_skip, cache=hub.contact_views)
        rules = dict(hub.rules)
        for queue in {c.queue for c in contacts}.difference(rules):  # a queue SQL does not know: no skills needed
            rules[queue] = QueueRule(name=queue, skills_required=frozenset())
        contacts = serving_order(contacts, now)  # once, for the plan and the queue positions
        made = 0
        offered: set[int] = set()
        for a in plan_assignments(contacts, agents, rules, now, presorted=True):
            offer = await hub.store.offer(a.conversation_id, a.agent_id, now + hub.offer_timeout, check_capacity=True)
            if offer is None:
                continue  # another hub process offered it first
            made += 1
            offered.add(a.conversation_id)
            shown = await offer_json(hub, offer.conversation_id, offer.expires_at, offer.queue, offer.channel)
            await hub.tell_agent(a.agent_id, "offer", shown)
            # when it was told (after the pass began; the preview's SQL read is in between) and how long it has left
            told = hub.clock()
            log.info("offer told", extra={"agent_id": a.agent_id, "conversation_id": offer.conversation_id,
                                          "told_after_ms": round((told - now) * 1000, 1),
                                          "expires_in_s": round(offer.expires_at - told, 2)})
        remaining = [c for c in contacts if c.conversation_id not in offered]
        if publish:
            hub.positions_pending = None
            await _publish_queue_positions(hub, remaining, serving_agents(presences), now)
        else:
            hub.positions_pending = (remaining, serving_agents(presences), now)
        return made


async def publish_positions(hub: Hub, *, force: bool = False) -> bool:
    """Tell waiting customers their place from the last pass that left it (``route_once(publish=False)``), at most
    once per ``hub.queue_notice_interval`` unless ``force``. Whether it published."""
    pending = hub.positions_pending
    if pending is None:
        return False
    now = hub.clock()
    if not force and now - hub.positions_published_at < hub.queue_notice_interval:
        return False
    hub.positions_pending, hub.positions_published_at = None, now
    remaining, serving, at = pending
    await _publish_queue_positions(hub, remaining, serving, at)
    return True


async def _publish_queue_positions(hub: Hub, contacts: list[WaitingContact], serving: int, now: float) -> None:
    """Tell each waiting customer their place and estimated wait, when it changed (``contacts`` in serving order)."""
    positions = queue_positions(contacts, now, presorted=True)  # route_once hands them in serving order
    inputs = hub.queue_info_inputs
    live: dict[str, tuple[bool, float]] = {}  # channel -> (a live channel, its concurrency)
    notices: list[Notice] = []
    for c in contacts:
        channel = live.get(c.channel)
        if channel is None:
            spec = hub.channels.get(c.channel)
            channel = live[c.channel] = (hub.is_live(spec), hub.concurrency(c.channel))
        key = (positions[c.conversation_id], serving, channel[1])
        if inputs.get(c.conversation_id) == key and c.conversation_id in hub.last_queue_info:
            continue  # the same place, agents and channel as last told: the same update (queue_update is pure)
        inputs[c.conversation_id] = key
        update = queue_update(c.conversation_id, key[0], serving, key[2])
        seen = (update["position"], update["estimated_wait_seconds"])
        if hub.last_queue_info.get(c.conversation_id) != seen:
            hub.last_queue_info[c.conversation_id] = seen
            if channel[0]:  # only a live channel's customer is connected to be told (Hub.tell_customer)
                notices.append(Notice("customer", c.conversation_id, "queue", update))
    for i in range(0, len(notices), 500):  # one send (across processes one publish) per 500 updates
        await hub.tell(*notices[i:i + 500])
    if len(inputs) > 2 * len(contacts) + 1000:  # forget the conversations no longer waiting
        waiting_now = {c.conversation_id for c in contacts}
        for cid in [cid for cid in inputs if cid not in waiting_now]:
            del inputs[cid]


async def run(hub: Hub, interval: float = 1.0, reconcile_every: float = 15.0) -> None:
    """The routing loop: runs on every kick and at least every ``interval`` seconds (offer timeouts).

    Every ``reconcile_every`` seconds it also re-queues conversations that SQL says are waiting but the
    shared state has lost (a Redis restart loses no customer). Every few seconds it says which customers
    are connected to this process, and gives up the waiting conversations whose customer has been gone
    for the grace period, however they came back to the queue (at most ``reconcile_every`` late).
    """
    from contact_center.usecases.rebuild import rebuild_state
    from contact_center.usecases.transfer_close import customers_connected, give_up_absent

    last_reconcile = last_seen = last_sweep = hub.clock()
    state_lost = False
    while True:
        heartbeat = min(5.0, hub.abandon_grace / 3)  # well inside the grace: a connected customer is never "gone"
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for loses a cancellation that arrives as the
        # event is set, and the loop would then outlive the app's shutdown (a test teardown hung 600 s)
        try:
            async with asyncio.timeout(max(0.05, min(interval, heartbeat))):
                await hub.kick_event.wait()
        except TimeoutError:
            pass
        hub.kick_event.clear()
        try:
            now = hub.clock()
            if not state_lost and not await hub.store.sealed(hub.node):  # lost between two passes (restarted empty)
                log.warning("the shared state was lost (its marker is gone)")
                state_lost = True
            if state_lost:  # Redis is back (or this raises again): rebuild from SQL before routing anything
                await rebuild_state(hub)
                state_lost, last_reconcile = False, now
                log.warning("the shared state is back: rebuilt from SQL; consoles and widgets catch up")
                await hub.tell_everyone("resync", {})  # what they missed from other processes meanwhile
            if now - last_seen >= heartbeat:
                last_seen = now
                await customers_connected(hub)
            if now - last_reconcile >= reconcile_every:
                last_reconcile = now
                await rebuild_state(hub)
            if now - last_sweep >= min(reconcile_every, max(hub.abandon_grace / 4, 0.5)):
                last_sweep = now
                await give_up_absent(hub)
            await route_once(hub, publish=False)
            await publish_positions(hub)  # at most once per queue_notice_interval; a later pass's positions win
            hub.watched = await hub.store.watched()
        except StateUnavailable:
            if not state_lost:
                log.warning("the shared state is unavailable: routing waits; messages are still stored in SQL")
            state_lost = True
        except Exception:  # noqa: BLE001 - the loop must survive a bad pass; it is logged
            log.exception("routing pass failed")
