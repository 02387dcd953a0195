"""The pure rules of web callback: states and moves, outcomes, retries, slots."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from contact_center.domain import callbacks as cb
from crm_store.repositories import callbacks as repo

NOW = datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc)  # a Monday


def test_the_repository_speaks_the_domains_states() -> None:
    assert (repo.REQUESTED, repo.SCHEDULED, repo.WAITING, repo.DIALLING, repo.CONNECTED, repo.COMPLETED, repo.FAILED,
            repo.CANCELLED) == cb.STATES
    assert set(repo.OPEN) == cb.OPEN_STATES


def test_moves_only_go_forward() -> None:
    assert cb.can_move(cb.SCHEDULED, cb.WAITING) and cb.can_move(cb.WAITING, cb.DIALLING)
    assert cb.can_move(cb.DIALLING, cb.SCHEDULED)  # a retry
    for final in cb.FINAL_STATES:
        assert not any(cb.can_move(final, s) for s in cb.STATES)
    assert not cb.can_move(cb.CONNECTED, cb.DIALLING)
    assert cb.states_before(cb.DIALLING) == {cb.WAITING}


@pytest.mark.parametrize(("status", "answered_by", "outcome"), [
    ("in-progress", "human", cb.CONNECTED_OUTCOME), ("in-progress", None, cb.CONNECTED_OUTCOME),
    ("in-progress", "machine_start", cb.MACHINE), ("completed", "fax", cb.MACHINE), ("busy", None, cb.BUSY),
    ("no-answer", None, cb.NO_ANSWER), ("failed", None, cb.CALL_FAILED), ("canceled", None, cb.CANCELED),
    ("ringing", None, None), ("completed", "human", None), ("nonsense", None, None),
])
def test_attempt_outcome(status: str, answered_by: str | None, outcome: str | None) -> None:
    assert cb.attempt_outcome(status, answered_by) == outcome


def test_retries_up_to_the_policy_then_fail_and_tell_the_customer() -> None:
    policy = cb.RetryPolicy(max_attempts=3, spacing_seconds=300)
    first = cb.after_attempt(policy, 1, cb.BUSY, NOW)
    assert first.state == cb.SCHEDULED and first.due_at == NOW + timedelta(minutes=5) and not first.tell_customer
    assert cb.after_attempt(policy, 2, cb.MACHINE, NOW).state == cb.SCHEDULED
    last = cb.after_attempt(policy, 3, cb.NO_ANSWER, NOW)
    assert last.state == cb.FAILED and last.tell_customer
    assert cb.after_attempt(policy, 3, cb.CONNECTED_OUTCOME, NOW).state == cb.CONNECTED
    with pytest.raises(ValueError):
        cb.RetryPolicy(max_attempts=0)


def test_slots_lie_within_hours_and_horizon() -> None:
    hours = cb.OpeningHours(days=frozenset(range(5)), opens=time(9), closes=time(17))
    cb.check_slot(NOW + timedelta(hours=2), NOW, hours)
    for when, code in [(NOW - timedelta(hours=1), "past"), (NOW + timedelta(days=15), "too_far"),
                       (NOW + timedelta(hours=12), "closed"), (NOW + timedelta(days=5), "closed")]:  # 22:00; Saturday
        with pytest.raises(cb.CallbackRefused) as refused:
            cb.check_slot(when, NOW, hours)
        assert refused.value.code == code
    with pytest.raises(cb.CallbackRefused):
        cb.check_slot(NOW.replace(tzinfo=None), NOW, hours)
    slots = cb.slots(NOW, hours)
    assert slots[0] == NOW and all(hours.is_open(s) for s in slots) and slots[-1] <= NOW + timedelta(days=14)


def test_topic_is_plain_text() -> None:
    assert cb.clean_topic("  my\x00 order\n 42 ") == "my order 42"
    assert cb.clean_topic(None) == ""
    with pytest.raises(cb.CallbackRefused):
        cb.clean_topic(5)


# --- click-to-call ----------------------------------------------------------------------------------------------

def test_a_click_to_call_has_one_attempt_and_never_texts() -> None:
    assert cb.after_agent_call(cb.CONNECTED_OUTCOME) == cb.AfterAttempt(cb.CONNECTED)
    for outcome in (cb.BUSY, cb.NO_ANSWER, cb.CALL_FAILED, cb.MACHINE, cb.CANCELED):
        after = cb.after_agent_call(outcome)
        assert (after.state, after.due_at, after.tell_customer) == (cb.FAILED, None, False), outcome
    with pytest.raises(ValueError):
        cb.after_agent_call("exploded")
    assert cb.SOURCE_AGENT_CALL in cb.SOURCES and len(cb.SOURCE_AGENT_CALL) <= 16  # callbacks.source is 16 wide


@pytest.mark.parametrize(("status", "takes_calls", "free", "reason"), [
    (None, True, False, "agent_offline"),
    ("offline", True, False, "agent_offline"),
    ("available", False, False, "no_phone_capacity"),
    ("away", True, False, "agent_unavailable"),
    ("wrap_up", True, False, "agent_unavailable"),
    ("available", True, False, "agent_busy"),
    ("busy", True, False, "agent_busy"),
    ("available", True, True, None),
    ("busy", True, True, None),  # "busy" is available with contacts open: free for a call when they fit
])
def test_who_may_place_a_call(status: str | None, takes_calls: bool, free: bool, reason: str | None) -> None:
    refused = cb.refuse_agent_call(status, takes_calls, free)
    assert (refused[0] if refused else None) == reason
    if refused:
        assert refused[1] and "_" not in refused[1].split(":")[0]  # words for the agent, not codes


def test_an_abandoned_call_is_called_back_only_past_the_threshold_and_from_a_real_number() -> None:
    assert cb.calls_back_abandoned(30, 30) and cb.calls_back_abandoned(95.5, 30)
    assert not cb.calls_back_abandoned(29.9, 30)
    assert not cb.calls_back_abandoned(600, 0)  # 0: off
    for hidden in ("anonymous", "Anonymous", "+266696687", "+7378742833", "+86282452253", "+8656696687", "restricted",
                   "Unknown", "", "  ", None, "client:agent_3", "sip:anonymous@example.com"):
        assert cb.is_hidden_number(hidden), hidden
    assert not cb.is_hidden_number("+14155550142")
    assert cb.SOURCE_ABANDONED in cb.SOURCES


def test_a_queue_s_own_hours_are_parsed_or_refused_with_the_reason() -> None:
    assert cb.parse_hours("always") is None
    hours = cb.parse_hours(" 0-4  09:00-17:30 +60")
    assert hours == cb.OpeningHours(frozenset(range(5)), time(9), time(17, 30), 60)
    assert cb.parse_hours("5,6 10:00-14:00") == cb.OpeningHours(frozenset({5, 6}), time(10), time(14), 0)
    for bad in ("weekdays", "0-4", "0-9 09:00-17:00", "4-0 09:00-17:00", "0-4 17:00-09:00", "0-4 9h-17h",
                "0-4 09:00-17:00 +2000", "0-4 09:00-17:00 east"):
        with pytest.raises(ValueError):
            cb.parse_hours(bad)
    assert cb.CALLBACK_MODES == ("agent_first", "customer_first")


# --- "now" outside the opening hours: the next opening (issue 15) -----------------------------------------------

WEEKDAYS = cb.OpeningHours(days=frozenset(range(5)), opens=time(9), closes=time(17))


@pytest.mark.parametrize(("now", "expected"), [
    (datetime(2026, 12, 7, 10, 0, tzinfo=timezone.utc), None),  # Monday 10:00: open
    (datetime(2026, 12, 7, 17, 0, tzinfo=timezone.utc), datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)),  # closing time
    (datetime(2026, 12, 7, 22, 30, tzinfo=timezone.utc), datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)),  # after closing
    (datetime(2026, 12, 8, 6, 15, tzinfo=timezone.utc), datetime(2026, 12, 8, 9, 0, tzinfo=timezone.utc)),  # before opening
    (datetime(2026, 12, 11, 18, 0, tzinfo=timezone.utc), datetime(2026, 12, 14, 9, 0, tzinfo=timezone.utc)),  # Friday evening
    (datetime(2026, 12, 12, 12, 0, tzinfo=timezone.utc), datetime(2026, 12, 14, 9, 0, tzinfo=timezone.utc)),  # Saturday
    (datetime(2026, 12, 13, 23, 59, tzinfo=timezone.utc), datetime(2026, 12, 14, 9, 0, tzinfo=timezone.utc)),  # Sunday night
])
def test_next_opening_for_a_now_callback(now: datetime, expected: datetime | None) -> None:
    assert cb.next_opening(now, WEEKDAYS) == expected


def test_next_opening_with_a_utc_offset_and_always() -> None:
    paris = cb.parse_hours("0-4 09:00-17:00 +60")
    assert paris is not None
    # Monday 08:30 UTC is 09:30 in Paris: open
    assert cb.next_opening(datetime(2026, 12, 7, 8, 30, tzinfo=timezone.utc), paris) is None
    # Monday 07:30 UTC is 08:30 in Paris: opens at 09:00 Paris = 08:00 UTC
    assert cb.next_opening(datetime(2026, 12, 7, 7, 30, tzinfo=timezone.utc), paris) == datetime(2026, 12, 7, 8, 0, tzinfo=timezone.utc)
    # Friday 23:30 UTC is already Saturday 00:30 in Paris: Monday 09:00 Paris
    assert cb.next_opening(datetime(2026, 12, 11, 23, 30, tzinfo=timezone.utc), paris) == datetime(2026, 12, 14, 8, 0, tzinfo=timezone.utc)
    new_york = cb.parse_hours("0-4 09:00-17:00 -300")
    assert new_york is not None
    # Monday 23:00 UTC is 18:00 in New York: Tuesday 09:00 New York = 14:00 UTC; a non-UTC "now" reads the same
    monday_late = datetime(2026, 12, 7, 23, 0, tzinfo=timezone.utc)
    assert cb.next_opening(monday_late, new_york) == datetime(2026, 12, 8, 14, 0, tzinfo=timezone.utc)
    assert cb.next_opening(monday_late.astimezone(timezone(timedelta(hours=9))), new_york) == datetime(2026, 12, 8, 14, 0, tzinfo=timezone.utc)
    assert cb.next_opening(datetime(2026, 12, 12, 3, 0, tzinfo=timezone.utc), None) is None  # always open
    assert cb.next_opening(datetime(2026, 12, 12, 3, 0, tzinfo=timezone.utc), cb.parse_hours("always")) is None
    opening = cb.next_opening(datetime(2026, 12, 12, 3, 0, tzinfo=timezone.utc), WEEKDAYS)
    assert opening is not None and WEEKDAYS.is_open(opening)
    assert "2026-12-14 09:00 UTC" in cb.closed_words(opening)
    with pytest.raises(ValueError):
        cb.parse_hours(None)  # type: ignore[arg-type]


# --- a queue's callback settings (the admin's API) ----------------------------------------------------------------

def test_queue_settings_are_checked_field_by_field() -> None:
    assert cb.check_queue_settings({"callback_mode": "customer_first", "callback_voicemail": "  Hello\n\tthere ",
                                    "callback_hours": " 0-4  09:00-17:00 +60 "}) == {
        "callback_mode": "customer_first", "callback_voicemail": "Hello there", "callback_hours": "0-4 09:00-17:00 +60"}
    assert cb.check_queue_settings({"callback_hours": ""}) == {"callback_hours": ""}
    assert cb.check_queue_settings({"callback_hours": "ALWAYS"}) == {"callback_hours": "always"}
    assert cb.check_queue_settings({"callback_hours": "0,1,2,4,6 08:00-12:30"}) == {"callback_hours": "0-2,4,6 08:00-12:30"}
    assert cb.check_queue_settings({}) == {}
    with pytest.raises(cb.QueueSettingsRefused) as refused:
        cb.check_queue_settings({"callback_mode": "robot", "callback_voicemail": "x" * 501, "callback_hours": "7 09:00-17:00",
                                 "colour": "red"})
    assert set(refused.value.reasons) == {"callback_mode", "callback_voicemail", "callback_hours", "colour"}
    assert "0 (Monday) to 6" in refused.value.reasons["callback_hours"]
    for bad in ({"callback_hours": "0-4 17:00-09:00"}, {"callback_hours": 5}, {"callback_voicemail": None},
                {"callback_hours": "0-4 09:00-17:00 +900"}, {"callback_hours": "weekdays"}):
        with pytest.raises(cb.QueueSettingsRefused):
            cb.check_queue_settings(bad)
    with pytest.raises(cb.QueueSettingsRefused):
        cb.check_queue_settings(["callback_mode"])
    for raw in ("0-4 09:00-17:00 +60", "5-6 10:00-14:00 -300", "0-6 00:00-23:59", "3 09:00-10:00", "always"):
        assert cb.format_hours(cb.parse_hours(raw)) == raw


def test_a_retry_that_would_fall_after_closing_waits_for_the_next_opening() -> None:
    policy = cb.RetryPolicy(max_attempts=3, spacing_seconds=600)
    friday_late = datetime(2026, 12, 11, 16, 55, tzinfo=timezone.utc)
    after = cb.after_attempt(policy, 1, cb.BUSY, friday_late, WEEKDAYS)
    assert after.state == cb.SCHEDULED and after.due_at == datetime(2026, 12, 14, 9, 0, tzinfo=timezone.utc)
    assert cb.after_attempt(policy, 1, cb.BUSY, NOW, WEEKDAYS).due_at == NOW + timedelta(minutes=10)  # still open then
    assert cb.after_attempt(policy, 1, cb.BUSY, friday_late, None).due_at == friday_late + timedelta(minutes=10)  # always
