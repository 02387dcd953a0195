"""Speed of the routing policy: one decision (AgentPool.best_for vs pick_agent) and one whole plan.

What it builds (deterministic, seed 20240601 unless ``--seed``): 1,000 agents (60 % available, 10 %
each busy / wrap-up / away / offline; 1-3 of 6 skills at level 1-5; 4 of 6 channels with a
per-channel maximum of 1-3; idle since a random second in the last 1,000) already carrying about 60 %
of the work they could take, and 10,000 waiting contacts spread over 8 queues (6 single-skill queues
and a two-skill one overflowing to general or to a single-skill queue after 60-90 s), 7 channels
(chat twice as often), tiers 0/0/0/1/2, 5 % having declined two agents, 1 % transferred to a
named agent.

What it times (``time.perf_counter_ns``, garbage collector left on; for the pass through Redis, set as the
hub sets it at start, ``contact_center.app.tune_collector``, unless ``--gc default``):

* ``AgentPool.best_for``: 10,000 decisions, one per waiting contact. The pool lives on between them:
  when an agent is found the contact is assigned to them and, to keep the pool in a steady state
  rather than draining it, one random open contact somewhere is released (the agent becomes idle
  from "now" when fully free). Only the ``best_for`` call is timed.
* ``pick_agent``: 1,000 decisions over a snapshot of the same pool (a plain scan of every agent),
  for comparison; each answer is checked against ``best_for`` on the same snapshot.
* ``plan_assignments``: one plan of all 10,000 contacts over the 1,000 agents as first built.

Targets: a decision p99 under 1 ms (best_for), a whole plan well under 1 s. It prints a table,
PASS/MISS per target and a final JSON line with every figure; it exits 0 whatever the figures.

    .venv/bin/python bench/routing.py
    .venv/bin/python bench/routing.py --seed 7 --decisions 20000

Notes on the figures: best_for is fast because the pool keeps, per channel and per (channel, skill),
only the agents who can take one more contact right now, sorted by idle time (bisect); a decision
walks the shortest list of the queue's skills until the first fitting agent and stops once idle
time grows past it (ties broken on the full agent order). pick_agent scans every agent for every
eligible queue and computes exact fractional loads, so it costs about a millisecond at 1,000
agents. plan_assignments keeps one lazily-updated heap per (channel, skill set) and remembers
(channel, queue chain) pairs that found nobody, so the 10,000-contact plan is dominated by sorting
the contacts and building the heaps.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from contact_center.domain.routing import (  # noqa: E402
    AgentPool,
    AgentSnapshot,
    AgentStatus,
    QueueRule,
    WaitingContact,
    can_take,
    pick_agent,
    plan_assignments,
)

SKILLS = ["billing", "sales", "tech", "french", "returns", "vip"]
CHANNELS = ["phone", "chat", "chat", "email", "sms", "whatsapp", "callback"]
NOW = 1000.0
DECISION_TARGET_US = 1000.0
PLAN_TARGET_MS = 1000.0


def build_rules() -> dict[str, QueueRule]:
    """Eight queues: general, one per skill overflowing to general, and French tech overflowing to tech."""
    rules = {"general": QueueRule("general", frozenset(), sl_target_seconds=30)}
    for skill in SKILLS:
        rules[skill] = QueueRule(skill, frozenset({skill}), overflow_to="general", overflow_after_seconds=90)
    rules["tech_fr"] = QueueRule(
        "tech_fr", frozenset({"tech", "french"}), overflow_to="tech", overflow_after_seconds=60
    )
    return rules


def build_agents(rnd: random.Random, n: int) -> list[AgentSnapshot]:
    """Agents with random skills, capacities and idle times, each carrying part of the work they could take."""
    statuses = [AgentStatus.AVAILABLE] * 6 + [AgentStatus.BUSY, AgentStatus.WRAP_UP, AgentStatus.AWAY, AgentStatus.OFFLINE]
    agents = []
    for agent_id in range(1, n + 1):
        channels = rnd.sample(sorted(set(CHANNELS)), 4)
        snap = AgentSnapshot(
            agent_id=agent_id,
            status=rnd.choice(statuses),
            skills={s: rnd.randint(1, 5) for s in rnd.sample(SKILLS, rnd.randint(1, 3))},
            capacity={ch: rnd.randint(1, 3) for ch in channels},
            load={},
            idle_since=rnd.uniform(0, NOW),
        )
        # Hand out contacts until roughly 60 % of agents' attention is in use.
        for _ in range(6):
            if rnd.random() < 0.6:
                ch = rnd.choice(channels)
                if can_take(replace(snap, status=AgentStatus.AVAILABLE), ch):
                    snap = replace(snap, load={**snap.load, ch: snap.load.get(ch, 0) + 1})
        agents.append(snap)
    return agents


def build_waiting(rnd: random.Random, n: int, n_agents: int, queues: Sequence[str]) -> list[WaitingContact]:
    """Contacts waiting over the last 1,000 seconds in every queue and on every channel."""
    waiting = []
    for conversation_id in range(1, n + 1):
        roll = rnd.random()
        waiting.append(
            WaitingContact(
                conversation_id=conversation_id,
                queue=rnd.choice(queues),
                channel=rnd.choice(CHANNELS),
                enqueued_at=rnd.uniform(0, NOW),
                priority=rnd.choice([0, 0, 0, 1, 2]),
                declined_by=frozenset(rnd.sample(range(1, n_agents + 1), 2)) if roll < 0.05 else frozenset(),
                pinned_agent=rnd.randint(1, n_agents) if 0.05 <= roll < 0.06 else None,
            )
        )
    return waiting


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return float("nan")
    rank = max(1, min(len(sorted_values), round(q / 100 * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


def summary(name: str, samples_ns: list[int]) -> dict[str, float | int | str]:
    """p50 / p99 / max / mean of a list of durations, in microseconds."""
    us = sorted(s / 1000 for s in samples_ns)
    return {
        "name": name,
        "samples": len(us),
        "p50_us": round(percentile(us, 50), 2),
        "p99_us": round(percentile(us, 99), 2),
        "max_us": round(us[-1], 2) if us else float("nan"),
        "mean_us": round(sum(us) / len(us), 2) if us else float("nan"),
    }


def bench_best_for(
    rnd: random.Random, agents: list[AgentSnapshot], waiting: list[WaitingContact], rules: dict[str, QueueRule], n: int
) -> tuple[list[dict[str, float | int | str]], int]:
    """Time best_for on a living pool: assign when found, release a random open contact to keep it steady."""
    pool = AgentPool(agents)
    open_contacts = [(a.agent_id, ch) for a in agents for ch, k in a.load.items() for _ in range(k)]
    samples: list[int] = []
    hit: list[int] = []
    miss: list[int] = []
    found = 0
    clock = NOW
    for i in range(n):
        contact = waiting[i % len(waiting)]
        clock += 0.01
        t0 = time.perf_counter_ns()
        agent_id = pool.best_for(contact, rules, clock)
        elapsed = time.perf_counter_ns() - t0
        samples.append(elapsed)
        (miss if agent_id is None else hit).append(elapsed)
        if agent_id is None:
            continue
        found += 1
        pool.assign(agent_id, contact.channel)
        open_contacts.append((agent_id, contact.channel))
        j = rnd.randrange(len(open_contacts))
        open_contacts[j], open_contacts[-1] = open_contacts[-1], open_contacts[j]
        done_agent, done_channel = open_contacts.pop()
        pool.release(done_agent, done_channel, clock)
    rows = [
        summary("AgentPool.best_for", samples),
        summary("best_for, found", hit),
        summary("best_for, nobody", miss),
    ]
    return rows, found


def bench_pick_agent(
    agents: list[AgentSnapshot], waiting: list[WaitingContact], rules: dict[str, QueueRule], n: int
) -> tuple[dict[str, float | int | str], int, int]:
    """Time pick_agent on a fixed snapshot, and count how often best_for gives the same answer."""
    pool = AgentPool(agents)
    samples: list[int] = []
    agree = found = 0
    for contact in waiting[:n]:
        t0 = time.perf_counter_ns()
        agent_id = pick_agent(contact, agents, rules, NOW)
        samples.append(time.perf_counter_ns() - t0)
        found += agent_id is not None
        agree += pool.best_for(contact, rules, NOW) == agent_id
    return summary("pick_agent", samples), agree, found


# --- a routing pass end to end through Redis (the real RedisStateStore and route_once) ------------------------------


class _NoSql:
    """The conversation repository, for the offers' console preview only (a pass reads nothing else from SQL):
    answers at once, so that the pass's own cost (Redis, decoding, planning, offers) is what is timed."""

    async def with_customer(self, conversation_id: int) -> None:
        return None

    async def messages(self, *args: object, **kwargs: object) -> list[object]:
        return []

    async def record_agent_state(self, *args: object) -> None:
        return None


class _CountingNotifier:
    """The notifier port: counts what a pass would send (the Socket.IO emits are not this bench's subject)."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, notices: Sequence[object]) -> None:
        self.sent += len(notices)


async def bench_redis_pass(
    agents: list[AgentSnapshot], waiting: list[WaitingContact], rules: dict[str, QueueRule], passes: int, redis_url: str,
) -> dict[str, object]:
    """Fill a RedisStateStore (own prefix) with the agents and contacts, then time ``usecases.router.route_once``.

    Pass 1 offers whatever the agents' free capacity takes (one atomic offer script per offer); the passes after
    it are the steady state of a long queue with every free slot offered: they read and decode every waiting
    entry and presence, plan, offer nothing, and publish queue positions that changed. Before each steady pass
    ``--free-per-pass`` offers are declined, so there is a little to route each time (as in a live queue).
    """
    import asyncio
    import os
    import uuid

    import redis.asyncio as aioredis

    from contact_center.channels import KNOWN, ChannelRegistry
    from contact_center.ports import AgentPresence, QueueEntry
    from contact_center.state.redis_store import RedisStateStore
    from contact_center.usecases import router
    from contact_center.usecases.context import Hub

    client = aioredis.Redis(connection_pool=aioredis.BlockingConnectionPool.from_url(redis_url, max_connections=32, timeout=10))
    prefix = f"ccbench:{uuid.uuid4().hex[:8]}:{{hub}}:"
    store = RedisStateStore(client, prefix=prefix)
    channels = ChannelRegistry()
    for spec in KNOWN:
        channels.register(spec)
    notifier = _CountingNotifier()
    clock = [NOW]
    # offers last longer than the bench (a pass per simulated second): none expires between passes
    hub = Hub(_NoSql(), store, notifier, channels=channels, clock=lambda: clock[0], offer_timeout=3600.0)  # type: ignore[arg-type]
    hub.rules = dict(rules)
    sem = asyncio.Semaphore(32)

    async def limited(coro: object) -> object:
        async with sem:
            return await coro  # type: ignore[misc]

    try:
        t0 = time.perf_counter()
        await asyncio.gather(*(limited(store.set_presence(AgentPresence(
            agent_id=a.agent_id, status=a.status.value, since=0.0, node="bench", load=dict(a.load), capacity=dict(a.capacity),
            skills=dict(a.skills), idle_since=a.idle_since))) for a in agents))
        await asyncio.gather(*(limited(store.enqueue(QueueEntry(
            conversation_id=c.conversation_id, queue=c.queue, channel=c.channel, priority=c.priority, enqueued_at=c.enqueued_at,
            declined_by=c.declined_by, pinned_agent=c.pinned_agent, declined_at=NOW if c.declined_by else 0.0))) for c in waiting))
        fill_s = time.perf_counter() - t0

        cpu0, t0 = os.times(), time.perf_counter()
        first_offers = await router.route_once(hub)
        first_ms = (time.perf_counter() - t0) * 1000
        first_cpu_ms = (sum(os.times()[:2]) - sum(cpu0[:2])) * 1000
        offered = [o for a in agents for o in await store.offers_of(a.agent_id)]
        rnd = random.Random(7)
        samples: list[float] = []
        cpu_samples: list[float] = []
        publish_samples: list[float] = []
        publish_cpu: list[float] = []
        parts: dict[str, list[float]] = {"waiting": [], "all_presence": []}
        made_total = 0
        for i in range(passes):
            clock[0] += 1.0
            for o in rnd.sample(offered, min(FREE_PER_PASS, len(offered))):  # a few slots free up between passes
                if await store.decline(o.conversation_id, o.agent_id, clock[0]) is not None:
                    offered.remove(o)
            cpu0, t0 = os.times(), time.perf_counter()
            made = await router.route_once(hub, publish=False)  # as the routing loop runs it
            samples.append((time.perf_counter() - t0) * 1000)
            cpu_samples.append((sum(os.times()[:2]) - sum(cpu0[:2])) * 1000)
            # then the queue positions, as the loop tells them: at most once a second (a pass per simulated
            # second here, so every pass's positions are told)
            cpu0, t0 = os.times(), time.perf_counter()
            assert await router.publish_positions(hub)
            publish_samples.append((time.perf_counter() - t0) * 1000)
            publish_cpu.append((sum(os.times()[:2]) - sum(cpu0[:2])) * 1000)
            made_total += made
            if made:  # the new offers may be declined in later passes too
                known = {o.conversation_id for o in offered}
                for a in agents:
                    offered.extend(o for o in await store.offers_of(a.agent_id) if o.conversation_id not in known)
            t1 = time.perf_counter()
            await store.waiting()
            t2 = time.perf_counter()
            await store.all_presence()
            t3 = time.perf_counter()
            parts["waiting"].append((t2 - t1) * 1000)
            parts["all_presence"].append((t3 - t2) * 1000)
        samples.sort()
        waiting_left = len(await store.waiting())
    finally:
        await store.clear()
        await client.aclose()
    return {
        "fill_s": round(fill_s, 2), "first_pass_ms": round(first_ms, 1), "first_pass_cpu_ms": round(first_cpu_ms, 1),
        "first_pass_offers": first_offers, "passes": passes, "pass_p50_ms": round(percentile(samples, 50), 1),
        "pass_p99_ms": round(percentile(samples, 99), 1), "pass_max_ms": round(samples[-1], 1),
        "pass_cpu_ms_mean": round(sum(cpu_samples) / len(cpu_samples), 1),
        "positions_p50_ms": round(percentile(sorted(publish_samples), 50), 1),
        "positions_p99_ms": round(percentile(sorted(publish_samples), 99), 1),
        "positions_cpu_ms_mean": round(sum(publish_cpu) / len(publish_cpu), 1),
        "offers_in_steady_passes": made_total, "waiting_left": waiting_left,
        "waiting_read_p50_ms": round(percentile(sorted(parts["waiting"]), 50), 1),
        "all_presence_read_p50_ms": round(percentile(sorted(parts["all_presence"]), 50), 1),
        "notices_sent": notifier.sent,
    }


FREE_PER_PASS = 10
PASS_TARGET_MS = 50.0


def main(argv: Sequence[str] | None = None) -> int:
    """Build the scenario, time the three operations, print the table, the verdicts and a JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seed", type=int, default=20240601)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--pick-decisions", type=int, default=1000)
    parser.add_argument("--passes", type=int, default=20, help="routing passes through Redis (0: skip)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--gc", choices=("hub", "default"), default="hub",
                        help="the garbage collector during the pass through Redis: as the hub sets it (GC_FREEZE) or Python's default")
    args = parser.parse_args(argv)

    rnd = random.Random(args.seed)
    rules = build_rules()
    agents = build_agents(rnd, args.agents)
    waiting = build_waiting(rnd, args.waiting, args.agents, list(rules))
    print(
        f"Routing bench: {len(agents):,} agents, {len(waiting):,} waiting contacts, {len(rules)} queues, "
        f"seed {args.seed}, Python {platform.python_version()} on {platform.machine()}"
    )

    best_rows, best_found = bench_best_for(random.Random(args.seed + 1), agents, waiting, rules, args.decisions)
    best = best_rows[0]
    pick, agree, pick_found = bench_pick_agent(agents, waiting, rules, args.pick_decisions)

    t0 = time.perf_counter_ns()
    plan = plan_assignments(waiting, agents, rules, NOW)
    plan_ms = (time.perf_counter_ns() - t0) / 1e6

    print()
    header = f"  {'operation':<22} {'samples':>8} {'p50 us':>9} {'p99 us':>9} {'max us':>9} {'mean us':>9}  found"
    print(header)
    print("  " + "-" * (len(header) - 2))
    rows = [(best, str(best_found)), (best_rows[1], ""), (best_rows[2], ""), (pick, str(pick_found))]
    for row, hits in rows:
        label = str(row["name"]).replace("best_for, ", "  of which ")
        print(
            f"  {label:<22} {row['samples']:>8} {row['p50_us']:>9.1f} {row['p99_us']:>9.1f} "
            f"{row['max_us']:>9.1f} {row['mean_us']:>9.1f}  {hits}"
        )
    print(f"  {'plan_assignments':<22} {1:>8} {'':>9} {'':>9} {plan_ms * 1000:>9.0f} {'':>9}  {len(plan)} assigned")
    print()
    best_ok = float(best["p99_us"]) < DECISION_TARGET_US
    plan_ok = plan_ms < PLAN_TARGET_MS
    print(f"  best_for p99 {best['p99_us']} us < {DECISION_TARGET_US:.0f} us: {'PASS' if best_ok else 'MISS'}")
    print(f"  plan of {len(waiting):,} contacts {plan_ms:.1f} ms < {PLAN_TARGET_MS:.0f} ms: {'PASS' if plan_ok else 'MISS'}")
    print(f"  best_for agrees with pick_agent on {agree}/{pick['samples']} decisions")
    redis_pass: dict[str, object] | None = None
    if args.passes > 0:
        import asyncio
        import os

        load_before = os.getloadavg()[0]
        if args.gc == "hub":  # as the hub's start-up does: what was built so far frozen, a young generation of 10,000
            from contact_center.app import tune_collector

            tune_collector()
        redis_pass = asyncio.run(bench_redis_pass(agents, waiting, rules, args.passes, args.redis_url))
        redis_pass["gc"] = args.gc
        redis_pass["load_before"], redis_pass["load_after"] = round(load_before, 2), round(os.getloadavg()[0], 2)
        ok = float(redis_pass["pass_p99_ms"]) <= PASS_TARGET_MS  # type: ignore[arg-type]
        redis_pass["verdict"] = "PASS" if ok else "MISS"
        print(f"\n  routing pass through Redis (RedisStateStore + usecases.router.route_once), {len(waiting):,} waiting, "
              f"{len(agents):,} agents, load average {load_before:.2f} -> {redis_pass['load_after']}:")
        print(f"    filled in {redis_pass['fill_s']} s; first pass {redis_pass['first_pass_ms']} ms "
              f"({redis_pass['first_pass_cpu_ms']} ms CPU) making {redis_pass['first_pass_offers']} offers")
        print(f"    steady passes ({args.passes}, {FREE_PER_PASS} offers declined before each): p50 {redis_pass['pass_p50_ms']} ms, "
              f"p99 {redis_pass['pass_p99_ms']} ms, max {redis_pass['pass_max_ms']} ms, CPU {redis_pass['pass_cpu_ms_mean']} ms a pass, "
              f"{redis_pass['offers_in_steady_passes']} offers made")
        print(f"    of which reading the waiting entries p50 {redis_pass['waiting_read_p50_ms']} ms, the presences "
              f"{redis_pass['all_presence_read_p50_ms']} ms")
        print(f"    then the queue positions (router.publish_positions, at most once a second, outside the pass): "
              f"p50 {redis_pass['positions_p50_ms']} ms, p99 {redis_pass['positions_p99_ms']} ms, "
              f"CPU {redis_pass['positions_cpu_ms_mean']} ms each")
        print(f"  pass p99 {redis_pass['pass_p99_ms']} ms <= {PASS_TARGET_MS:.0f} ms: {redis_pass['verdict']}")
    speedup = float(pick["p50_us"]) / float(best["p50_us"]) if float(best["p50_us"]) else float("nan")
    print(f"  best_for p50 is {speedup:.0f}x faster than pick_agent p50")
    print(
        json.dumps(
            {
                "bench": "routing",
                "seed": args.seed,
                "agents": len(agents),
                "waiting": len(waiting),
                "best_for": best,
                "best_for_found_only": best_rows[1],
                "best_for_nobody_only": best_rows[2],
                "best_for_found": best_found,
                "pick_agent": pick,
                "pick_agent_found": pick_found,
                "agree": agree,
                "plan_ms": round(plan_ms, 2),
                "plan_assigned": len(plan),
                "decision_target_us": DECISION_TARGET_US,
                "plan_target_ms": PLAN_TARGET_MS,
                "best_for_verdict": "PASS" if best_ok else "MISS",
                "plan_verdict": "PASS" if plan_ok else "MISS",
                "redis_pass": redis_pass,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
