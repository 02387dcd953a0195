"""The supervisor snapshot's pure core (contact_center/domain/supervision.py): figures, waiting contacts,
alerts and the agents' shown state, from inputs built by hand (no SQL, no hub)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from contact_center.domain.service_levels import AgentStateInterval, ContactRecord, QueueFigures
from contact_center.domain.supervision import (
    DEFAULT_SL_TARGET_RATIO,
    AgentInfo,
    OpenConversation,
    QueueInfo,
    _figures_json,
    _shown_state,
    build_alerts,
    compose_snapshot,
    local_day_start,
)
from contact_center.ports import AgentPresence

DAY = datetime(2026, 11, 23, tzinfo=timezone.utc)
NOW = DAY.replace(hour=10)
SALES = QueueInfo(name="sales", id=1, sl_target_seconds=20, sl_target_ratio=0.8, max_waiting=50)


@dataclass(frozen=True)
class Presence:
    """A presence of the domain's own shape (PresenceLike), not the port's dataclass."""

    agent_id: int
    status: str
    since: float
    load: dict[str, int] = field(default_factory=dict)
    capacity: dict[str, int] = field(default_factory=dict)
    skills: dict[str, int] = field(default_factory=dict)


def conv(cid: int, status: str, since: datetime, *, queue: str = "sales", agent_id: int | None = None,
         assigned_at: datetime | None = None, updated_at: datetime | None = None) -> OpenConversation:
    return OpenConversation(
        id=cid, status=status, channel="chat", queue=queue, customer_id=cid, customer_name=f"C{cid}", agent_id=agent_id,
        subject="", queued_at=since, assigned_at=assigned_at, created_at=since, updated_at=updated_at or since,
    )


def snapshot(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        now=NOW, day_start=DAY, records=[], states=[], queues=[SALES], agents=[], presences=[],
        open_conversations=[], overdue_orders=0,
    )
    args.update(kw)
    return compose_snapshot(**args)


def test_queue_and_total_figures_from_records() -> None:
    t = NOW - timedelta(hours=2)
    records = [
        ContactRecord("sales", "chat", t, answered_at=t + timedelta(seconds=10), ended_at=t + timedelta(seconds=110),
                      handle_seconds=100.0, agent_id=7),
        ContactRecord("sales", "chat", t, answered_at=t + timedelta(seconds=30), ended_at=t + timedelta(seconds=230),
                      handle_seconds=200.0, agent_id=7),
        ContactRecord("sales", "sms", t, ended_at=t + timedelta(seconds=40), abandoned=True),
        ContactRecord("sales", "chat", DAY - timedelta(minutes=5), answered_at=DAY),  # yesterday: not today's figure
    ]
    snap = snapshot(records=records)
    (sales,) = snap["queues"]
    assert (sales["offered"], sales["handled"], sales["abandoned"]) == (3, 2, 1)
    assert sales["service_level"] == 1 / 3  # 1 within 20 s / (2 answered + 1 abandoned after 20 s)
    assert (sales["asa_seconds"], sales["aht_seconds"], sales["abandonment_rate"]) == (20.0, 150.0, 1 / 3)
    assert snap["total"]["offered"] == 3 and {c["name"]: c["offered"] for c in snap["channels"]} == {"chat": 2, "sms": 1}
    assert _figures_json(QueueFigures())["service_level"] is None  # nothing counted yet: "–", not 0


def test_waiting_contacts_longest_first_and_over_target() -> None:
    back = conv(3, "queued", NOW - timedelta(minutes=10), assigned_at=NOW - timedelta(minutes=8),
                updated_at=NOW - timedelta(seconds=5))  # handed back to the queue 5 s ago
    snap = snapshot(open_conversations=[conv(1, "queued", NOW - timedelta(seconds=10)),
                                        conv(2, "queued", NOW - timedelta(seconds=30)), back])
    (sales,) = snap["queues"]
    assert (sales["waiting"], sales["longest_wait_seconds"], sales["waiting_over_target"]) == (3, 30.0, 1)
    assert [c["id"] for c in snap["conversations"]] == [2, 1, 3]
    assert snap["total"]["waiting_over_target"] == 1 and snap["channels"][0]["waiting_over_target"] == 1


def test_alerts_at_their_thresholds_most_severe_first() -> None:
    support = QueueInfo(name="support", max_waiting=1)
    rows = [
        {"name": "sales", "service_level": 0.7, "waiting": 5},  # 10 points below 0.8: warning; 5 is not over 5
        {"name": "support", "service_level": 0.5, "waiting": 2},  # below the default 0.8 by 30 points: critical
    ]
    waiting = [(conv(9, "queued", NOW), 121.0, NOW), (conv(8, "queued", NOW, queue="support"), 119.0, NOW)]
    alerts = build_alerts(rows, {"sales": SALES, "support": support}, waiting, 2)
    by_key = {a["key"]: a for a in alerts}
    assert set(by_key) == {"service_level:sales", "service_level:support", "queue_waiting:support", "long_wait:sales",
                           "overdue_orders"}
    assert by_key["service_level:support"]["threshold"] == DEFAULT_SL_TARGET_RATIO
    assert (by_key["queue_waiting:support"]["threshold"], by_key["queue_waiting:support"]["severity"]) == (1, "critical")
    assert by_key["long_wait:sales"]["conversation_ids"] == [9] and "longest 2:01" in by_key["long_wait:sales"]["message"]
    assert by_key["overdue_orders"]["message"].startswith("2 orders overdue")
    assert [a["severity"] for a in alerts] == sorted((a["severity"] for a in alerts), key=["critical", "warning"].index)
    assert build_alerts([{"name": "sales", "service_level": None, "waiting": 0}], {"sales": SALES}, [], 0) == []


def test_agents_shown_state_and_time_in_state() -> None:
    assert _shown_state(None, 0) == "offline"
    assert _shown_state(Presence(1, "available", 0.0), 1) == "busy"
    assert _shown_state(Presence(1, "away", 0.0), 2) == "away"  # away with chats stays away

    since = (NOW - timedelta(minutes=30)).timestamp()
    agents = [AgentInfo(1, "ann", "Ann", "agent"), AgentInfo(2, "bob", "Bob", "agent"), AgentInfo(3, "cy", "Cy", "agent")]
    presences = [
        AgentPresence(agent_id=1, status="available", since=since, node="n1", load={"chat": 1}),  # the port's own type
        Presence(2, "available", since),
        Presence(4, "away", since),  # not among the active agents: listed anyway
    ]
    answered = NOW - timedelta(minutes=4)
    states = [AgentStateInterval(2, "available", NOW - timedelta(hours=1))]
    snap = snapshot(agents=agents, presences=presences, states=states,
                    open_conversations=[conv(5, "assigned", NOW - timedelta(minutes=5), agent_id=1, assigned_at=answered)])
    rows = {r["id"]: r for r in snap["agents"]}
    assert [r["id"] for r in snap["agents"]] == [1, 2, 4, 3]  # busy, available, away, offline
    assert (rows[1]["state"], rows[1]["conversations"], rows[1]["load"]) == ("busy", [5], 1)
    assert rows[1]["seconds_in_state"] == 240.0  # busy since the answer (later than the presence change)
    assert rows[2]["seconds_in_state"] == 3600.0  # the state log agrees with the presence: its start wins
    assert (rows[3]["state"], rows[3]["state_since"]) == ("offline", None)
    assert rows[4]["display_name"] == "Agent 4"
    assert snap["conversations"][0]["agent_name"] == "Ann"


def test_agents_logged_in_need_the_queue_skills() -> None:
    billing = QueueInfo(name="billing", skills_required=("billing",))
    presences = [Presence(1, "available", 0.0, skills={"billing": 2}), Presence(2, "away", 0.0),
                 Presence(3, "offline", 0.0, skills={"billing": 5})]
    snap = snapshot(queues=[billing, SALES], presences=presences)
    logged = {q["name"]: q["agents_logged_in"] for q in snap["queues"]}
    assert logged == {"billing": 1, "sales": 2} and snap["total"]["agents_logged_in"] == 2
    assert {s["queue"]: s["agents_logged_in"] for s in snap["staffing"]} == logged


def test_intervals_carry_staffing_and_the_day_starts_at_local_midnight() -> None:
    t = NOW - timedelta(minutes=20)
    records = [ContactRecord("sales", "chat", t + timedelta(seconds=i), answered_at=t + timedelta(seconds=i + 5),
                             handle_seconds=180.0) for i in range(30)]
    snap = snapshot(records=records)
    total = snap["intervals"]["total"]
    assert len(total) == 21  # 00:00 .. 10:00, every half hour
    assert total[-2]["offered"] == 30 and total[-2]["agents_needed"] == snap["intervals"]["by_queue"]["sales"][-2]["agents_needed"] > 0
    assert local_day_start(datetime(2026, 11, 23, 3, tzinfo=timezone.utc), timezone(timedelta(hours=-5))) == \
        datetime(2026, 11, 22, 5, tzinfo=timezone.utc)
