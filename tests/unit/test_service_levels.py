"""Service-level figures from a scripted day of contacts, checked against values worked out by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from contact_center.domain.service_levels import (
    AgentStateInterval,
    ContactRecord,
    QueueFigures,
    agent_figures,
    interval_figures,
    summarize,
)

DAY = datetime(2026, 11, 23, tzinfo=timezone.utc)  # the day starts at 00:00 UTC
NOW = DAY.replace(hour=10)  # the figures are taken at 10:00:00
TARGETS = {"sales": 20.0, "support": 30.0}  # seconds


def at(hh: int, mm: int, ss: int = 0) -> datetime:
    return DAY.replace(hour=hh, minute=mm, second=ss)


def answered(queue: str, channel: str, queued: datetime, wait: int, handle: int | None, agent: int) -> ContactRecord:
    """A contact answered after ``wait`` seconds and closed ``handle`` seconds later (None: still open)."""
    answer = queued + timedelta(seconds=wait)
    end = None if handle is None else answer + timedelta(seconds=handle)
    return ContactRecord(queue, channel, queued, answer, end, False, None if handle is None else float(handle), agent)


def abandoned(queue: str, channel: str, queued: datetime, after: int) -> ContactRecord:
    return ContactRecord(queue, channel, queued, None, queued + timedelta(seconds=after), True, None, None)


def waiting(queue: str, channel: str, queued: datetime) -> ContactRecord:
    return ContactRecord(queue, channel, queued)


# The scripted day (agents 1 and 2). Waits are queued -> answered (or -> abandoned, or -> now).
#   sales (target 20 s)
S1 = answered("sales", "chat", at(9, 0), 10, 300, 1)  # within; handle 300
S2 = answered("sales", "phone", at(9, 5), 20, 240, 2)  # exactly 20 s: within; handle 240
S3 = answered("sales", "chat", at(9, 10), 45, 600, 1)  # late; handle 600
S4 = abandoned("sales", "phone", at(9, 20), 5)  # short abandon (5 s <= 20): not in the service level
S5 = abandoned("sales", "chat", at(9, 40), 60)  # abandoned after the target: counts against it
S6 = answered("sales", "phone", at(9, 50), 5, None, 2)  # within; still open at 10:00 (no handle time)
S7 = waiting("sales", "chat", at(9, 58))  # waiting 120 s at 10:00 (over target)
#   support (target 30 s)
P1 = answered("support", "chat", at(9, 15), 30, 600, 1)  # exactly 30 s: within; handle 600
P2 = answered("support", "phone", at(9, 30), 60, 600, 2)  # queued exactly at 09:30:00; late; handle 600
P3 = abandoned("support", "phone", at(9, 45), 40)  # abandoned after the target
P4 = waiting("support", "chat", at(9, 59, 30))  # waiting exactly 30 s at 10:00 (not over target)
DAY_CONTACTS = [S1, S2, S3, S4, S5, S6, S7, P1, P2, P3, P4]
YESTERDAY = answered("sales", "chat", DAY - timedelta(minutes=10), 5, 60, 1)  # outside the day's intervals


def test_per_queue_figures_match_the_hand_computed_values() -> None:
    report = summarize(DAY_CONTACTS, NOW, TARGETS)
    sales = report.by_queue["sales"]
    # offered 7; handled S1 S2 S3 S6 = 4; abandoned S4 S5 = 2; waiting S7 = 1
    assert (sales.offered, sales.handled, sales.abandoned, sales.waiting) == (7, 4, 2, 1)
    # within 20 s: S1 (10), S2 (20), S6 (5) = 3; short abandons: S4 = 1
    assert (sales.answered_within_target, sales.abandoned_within_target) == (3, 1)
    # SL = 3 / (4 answered + 2 abandoned - 1 short abandon) = 3/5
    assert sales.service_level == pytest.approx(0.6)
    # ASA = (10 + 20 + 45 + 5) / 4 = 20 s; abandonment = 2 / (4 + 2) = 1/3; AHT = (300 + 240 + 600) / 3 = 380 s
    assert sales.asa_seconds == pytest.approx(20.0)
    assert sales.abandonment_rate == pytest.approx(1 / 3)
    assert sales.aht_seconds == pytest.approx(380.0)
    # longest wait now: S7, 09:58 -> 10:00 = 120 s, over the 20 s target
    assert sales.longest_wait_seconds == pytest.approx(120.0) and sales.waiting_over_target == 1

    support = report.by_queue["support"]
    # offered 4; handled P1 P2 = 2; abandoned P3 = 1; waiting P4 = 1; within 30 s: P1 = 1; no short abandon
    assert (support.offered, support.handled, support.abandoned, support.waiting) == (4, 2, 1, 1)
    # SL = 1 / (2 + 1 - 0) = 1/3; ASA = (30 + 60) / 2 = 45 s; abandonment 1/3; AHT = (600 + 600) / 2 = 600 s
    assert support.service_level == pytest.approx(1 / 3)
    assert support.asa_seconds == pytest.approx(45.0)
    assert support.abandonment_rate == pytest.approx(1 / 3)
    assert support.aht_seconds == pytest.approx(600.0)
    # P4 has waited exactly 30 s: the longest wait, but not over the target
    assert support.longest_wait_seconds == pytest.approx(30.0) and support.waiting_over_target == 0


def test_total_and_per_channel_judge_each_contact_against_its_own_queue() -> None:
    report = summarize(DAY_CONTACTS, NOW, TARGETS)
    total = report.total
    # offered 11; handled 6; abandoned 3; waiting 2; within 3 (sales) + 1 (support) = 4; short abandons 1
    assert (total.offered, total.handled, total.abandoned, total.waiting) == (11, 6, 3, 2)
    # SL = 4 / (6 + 3 - 1) = 0.5; ASA = (80 + 90) / 6; abandonment = 3 / 9; AHT = (1140 + 1200) / 5 = 468 s
    assert total.service_level == pytest.approx(0.5)
    assert total.asa_seconds == pytest.approx(170 / 6)
    assert total.abandonment_rate == pytest.approx(1 / 3)
    assert total.aht_seconds == pytest.approx(468.0)
    assert total.longest_wait_seconds == pytest.approx(120.0)

    chat, phone = report.by_channel["chat"], report.by_channel["phone"]
    # chat: S1 S3 S5 S7 P1 P4. handled S1 S3 P1; abandoned S5 (60 s, late); waiting S7 P4;
    # within: S1 (10 <= 20), P1 (30 <= 30: support's target, not sales') = 2 -> SL 2 / (3 + 1) = 0.5
    assert (chat.offered, chat.handled, chat.abandoned, chat.waiting) == (6, 3, 1, 2)
    assert chat.service_level == pytest.approx(0.5)
    assert chat.asa_seconds == pytest.approx((10 + 45 + 30) / 3)
    assert chat.aht_seconds == pytest.approx((300 + 600 + 600) / 3)
    assert chat.abandonment_rate == pytest.approx(1 / 4)
    # phone: S2 S4 S6 P2 P3. handled S2 S6 P2; abandoned S4 (short) P3 (late); within S2 (20) S6 (5)
    # SL = 2 / (3 + 2 - 1) = 0.5; ASA = (20 + 5 + 60) / 3; AHT = (240 + 600) / 2 = 420; abandonment 2/5
    assert (phone.offered, phone.handled, phone.abandoned, phone.waiting) == (5, 3, 2, 0)
    assert phone.service_level == pytest.approx(0.5)
    assert phone.asa_seconds == pytest.approx(85 / 3)
    assert phone.aht_seconds == pytest.approx(420.0)
    assert phone.abandonment_rate == pytest.approx(2 / 5)
    assert phone.longest_wait_seconds == 0.0


def test_targets_default_when_a_queue_has_none() -> None:
    # no targets: every queue at 20 s, so P1 (30 s) is late: support SL = 0 / (2 + 1) = 0
    support = summarize(DAY_CONTACTS, NOW).by_queue["support"]
    assert support.service_level == pytest.approx(0.0)
    # a 60 s default makes P1 and P2 within, and P3 (40 s) a short abandon: SL = 2 / (2 + 1 - 1) = 1
    support = summarize(DAY_CONTACTS, NOW, default_target_seconds=60).by_queue["support"]
    assert support.service_level == pytest.approx(1.0)


def test_no_contacts_give_no_ratios() -> None:
    report = summarize([], NOW, TARGETS)
    assert report.by_queue == {} and report.by_channel == {}
    assert report.total == QueueFigures()
    assert report.total.service_level is None and report.total.asa_seconds is None
    assert report.total.abandonment_rate is None and report.total.aht_seconds is None
    # only short abandons: nothing counts for the service level
    only_short = summarize([S4], NOW, TARGETS).total
    assert only_short.service_level is None and only_short.abandonment_rate == 1.0


def test_half_hour_intervals_match_the_hand_computed_values() -> None:
    rows = interval_figures([*DAY_CONTACTS, YESTERDAY], DAY, 30, TARGETS)
    got = {(r.key, r.start.strftime("%H:%M")): r for r in rows}
    assert list(got) == [("sales", "09:00"), ("sales", "09:30"), ("support", "09:00"), ("support", "09:30")]
    # sales 09:00-09:30: S1 S2 S3 S4 -> handled 3, abandoned 1 (short), within S1 S2 -> SL 2 / (3 + 1 - 1)
    s0 = got[("sales", "09:00")]
    assert (s0.offered, s0.handled, s0.abandoned, s0.answered_within_target, s0.abandoned_within_target) == (4, 3, 1, 2, 1)
    assert s0.service_level == pytest.approx(2 / 3)
    assert s0.asa_seconds == pytest.approx((10 + 20 + 45) / 3)
    assert s0.aht_seconds == pytest.approx((300 + 240 + 600) / 3)
    # sales 09:30-10:00: S5 (late abandon) S6 (within, open) S7 (waiting) -> SL 1 / (1 + 1)
    s1 = got[("sales", "09:30")]
    assert (s1.offered, s1.handled, s1.abandoned, s1.answered_within_target) == (3, 1, 1, 1)
    assert s1.service_level == pytest.approx(0.5) and s1.aht_seconds is None
    # support 09:00: P1 within -> 1.0; support 09:30: P2 (exactly 09:30:00, late), P3 (late abandon), P4 waiting
    assert got[("support", "09:00")].service_level == pytest.approx(1.0)
    p1 = got[("support", "09:30")]
    assert (p1.offered, p1.handled, p1.abandoned, p1.answered_within_target) == (3, 1, 1, 0)
    assert p1.service_level == pytest.approx(0.0)


def test_quarter_hour_intervals_and_other_groupings() -> None:
    rows = interval_figures(DAY_CONTACTS, DAY, 15, TARGETS)
    offered = {(r.key, r.start.strftime("%H:%M")): r.offered for r in rows}
    # sales: S1 S2 S3 | S4 | S5 (09:40) | S6 S7; support: P1 (09:15) | P2 (09:30) | P3 P4 (09:45)
    assert offered == {
        ("sales", "09:00"): 3, ("sales", "09:15"): 1, ("sales", "09:30"): 1, ("sales", "09:45"): 2,
        ("support", "09:15"): 1, ("support", "09:30"): 1, ("support", "09:45"): 2,
    }
    by_channel = {(r.key, r.start.hour, r.start.minute): r.offered for r in interval_figures(DAY_CONTACTS, DAY, 30, TARGETS, group_by="channel")}
    assert by_channel == {("chat", 9, 0): 3, ("chat", 9, 30): 3, ("phone", 9, 0): 2, ("phone", 9, 30): 3}
    total = interval_figures(DAY_CONTACTS, DAY, 60, TARGETS, group_by="total")
    assert [(r.key, r.offered, r.handled, r.abandoned) for r in total] == [("total", 11, 6, 3)]
    assert total[0].service_level == pytest.approx(0.5)  # the same as the day's total above


@pytest.mark.parametrize("minutes", [0, -15, 7, 1441])
def test_interval_length_must_divide_a_day(minutes: int) -> None:
    with pytest.raises(ValueError, match="interval_minutes"):
        interval_figures(DAY_CONTACTS, DAY, minutes)


# Agent states for the same day (now 10:00).
#   agent 1: available 08:55-09:30, away 09:30-09:40, available 09:40-now
#   agent 2: offline 08:00-09:00, available 09:00-09:41, wrap_up 09:41-09:42, available 09:42-now
STATES = [
    AgentStateInterval(1, "available", at(8, 55), at(9, 30)),
    AgentStateInterval(1, "away", at(9, 30), at(9, 40)),
    AgentStateInterval(1, "available", at(9, 40), None),
    AgentStateInterval(2, "offline", at(8, 0), at(9, 0)),
    AgentStateInterval(2, "available", at(9, 0), at(9, 41)),
    AgentStateInterval(2, "wrap_up", at(9, 41), at(9, 42)),
    AgentStateInterval(2, "available", at(9, 42), None),
]


def test_agent_occupancy_and_time_in_state() -> None:
    figures = agent_figures(STATES, DAY_CONTACTS, DAY, NOW)
    a1, a2 = figures[1], figures[2]
    # agent 1 answered S1, S3, P1. Staffed: 08:55-09:30 (2100 s) + 09:40-10:00 (1200 s) = 3300 s;
    # logged in adds the 600 s away = 3900 s. Busy: S1 09:00:10-09:05:10 (300 s) and S3 + P1 overlapping
    # 09:10:45-09:25:30 (885 s) = 1185 s -> occupancy 1185 / 3300
    assert a1.handled == 3
    assert a1.staffed_seconds == pytest.approx(3300) and a1.logged_in_seconds == pytest.approx(3900)
    assert a1.busy_seconds == pytest.approx(1185)
    assert a1.occupancy == pytest.approx(1185 / 3300)
    assert a1.seconds_in_state == {"available": pytest.approx(3300), "away": pytest.approx(600)}
    assert (a1.current_state, a1.current_state_since) == ("available", at(9, 40))
    # agent 2 answered S2, P2, S6. Staffed 09:00-10:00 = 3600 s (offline is not logged in).
    # Busy: S2 09:05:20-09:09:20 (240), P2 09:31-09:41 plus wrap-up 09:41-09:42 (660),
    # S6 09:50:05-now (595) = 1495 s -> occupancy 1495 / 3600
    assert a2.handled == 3
    assert a2.staffed_seconds == pytest.approx(3600) and a2.logged_in_seconds == pytest.approx(3600)
    assert a2.busy_seconds == pytest.approx(1495)
    assert a2.occupancy == pytest.approx(1495 / 3600)
    assert a2.seconds_in_state == {"available": pytest.approx(3540), "offline": pytest.approx(3600), "wrap_up": pytest.approx(60)}
    assert (a2.current_state, a2.current_state_since) == ("available", at(9, 42))


def test_agent_figures_clip_to_the_window() -> None:
    # from 09:30 only: agent 1 away 600 s, available 1200 s, busy nothing (P1 ended 09:25:30)
    a1 = agent_figures(STATES, DAY_CONTACTS, at(9, 30), NOW)[1]
    assert a1.handled == 0 and a1.staffed_seconds == pytest.approx(1200) and a1.busy_seconds == 0
    assert a1.occupancy == 0.0
    # an agent never staffed in the window has no occupancy
    away_only = agent_figures([AgentStateInterval(3, "away", at(9, 0), None)], [], DAY, NOW)[3]
    assert away_only.occupancy is None and away_only.logged_in_seconds == pytest.approx(3600)
    with pytest.raises(ValueError):
        agent_figures(STATES, DAY_CONTACTS, NOW, DAY)
