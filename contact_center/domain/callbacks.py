"""Web callback, the pure rules (docs/subsystems/callback.md): a callback's states and legal moves, the retry
policy, what a dialled call's outcome means, and which slots a customer may choose.

A callback is a durable contact: it lives in SQL from the moment it is asked for until it is completed, failed or
cancelled, and every attempt to reach the customer is a row of its own.

States::

    scheduled --(falls due)--> waiting --(an agent accepts: attempt n claimed)--> dialling --(answered)--> connected
        ^                        |                                                   |                       |
        |                        |                                                   | busy / no-answer /    | the call ends
        +-----(retry due later)--+---------------------------------------------------+ failed / machine       v
                                                                                     |                   completed
                                        (the last attempt)  -----------------------> failed
    any open state --(the customer or an agent cancels)--> cancelled

``requested`` is a "now" callback the moment it is written (it enters the queue at once: ``waiting``). No I/O here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from typing import Final

import phonenumbers  # type: ignore[import-untyped,unused-ignore]

REQUESTED: Final = "requested"
SCHEDULED: Final = "scheduled"
WAITING: Final = "waiting"
DIALLING: Final = "dialling"
CONNECTED: Final = "connected"
COMPLETED: Final = "completed"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"

STATES: Final = (REQUESTED, SCHEDULED, WAITING, DIALLING, CONNECTED, COMPLETED, FAILED, CANCELLED)
OPEN_STATES: Final = frozenset({REQUESTED, SCHEDULED, WAITING, DIALLING, CONNECTED})
FINAL_STATES: Final = frozenset({COMPLETED, FAILED, CANCELLED})

# the legal moves (from -> to): anything else is refused, so a late or repeated event never moves a callback back
MOVES: Final[dict[str, frozenset[str]]] = {
    REQUESTED: frozenset({WAITING, SCHEDULED, CANCELLED}),
    SCHEDULED: frozenset({WAITING, CANCELLED}),
    WAITING: frozenset({DIALLING, SCHEDULED, CANCELLED}),
    DIALLING: frozenset({CONNECTED, SCHEDULED, FAILED, CANCELLED}),
    CONNECTED: frozenset({COMPLETED}),
    COMPLETED: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
}

# sources of a callback
SOURCE_WEB: Final = "web"  # the widget's or the shop page's form
SOURCE_WAIT_OFFER: Final = "wait_offer"  # "press 1" in the phone queue's wait loop
SOURCE_FALLBACK: Final = "fallback"  # the phone number's fallback URL (the hub could not answer)
SOURCE_AGENT: Final = "agent"  # an agent booked it for the customer ("call them back tomorrow at 10")
SOURCE_AGENT_CALL: Final = "agent_call"  # click-to-call: the agent calls the customer now, on the agent's own line
SOURCE_ABANDONED: Final = "abandoned"  # the caller hung up while waiting in the phone queue (automatic)
SOURCES: Final = (SOURCE_WEB, SOURCE_WAIT_OFFER, SOURCE_FALLBACK, SOURCE_AGENT, SOURCE_AGENT_CALL, SOURCE_ABANDONED)

DEFAULT_ON_ABANDON_SECONDS: Final = 30
"""A caller who hung up after waiting at least this long in the phone queue is called back automatically
(``CALLBACK_ON_ABANDON_SECONDS``; 0: never)."""

# what a provider puts in ``From`` when the caller hid their number (Twilio: "anonymous", and the special numbers
# of withheld, restricted and unknown callers); nobody to call back
HIDDEN_NUMBERS: Final = frozenset({
    "anonymous", "restricted", "unknown", "private", "unavailable", "withheld", "blocked",
    "+266696687", "+7378742833", "+86282452253", "+8656696687", "266696687", "7378742833", "86282452253", "8656696687",
})

# the outcome of one attempt (a dialled call)
CONNECTED_OUTCOME: Final = "connected"
BUSY: Final = "busy"
NO_ANSWER: Final = "no-answer"
CALL_FAILED: Final = "failed"
MACHINE: Final = "machine"
CANCELED: Final = "canceled"  # we cancelled the ringing call ourselves (the agent's leg went)
RETRYABLE: Final = frozenset({BUSY, NO_ANSWER, CALL_FAILED, MACHINE})
ATTEMPT_OUTCOMES: Final = frozenset({CONNECTED_OUTCOME, *RETRYABLE, CANCELED})

# Twilio's AnsweredBy values (MachineDetection=Enable / DetectMessageEnd) that mean "not reached"
MACHINE_ANSWERS: Final = frozenset({
    "machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax",
})

DEFAULT_MAX_ATTEMPTS: Final = 3
DEFAULT_RETRY_SECONDS: Final = 300
DEFAULT_HORIZON_DAYS: Final = 14
SCHEDULED_PRIORITY: Final = 5
"""How much a callback that falls due at its chosen time is ahead of new contacts in its queue (a conversation's
``priority``; customer tiers add 0 to 2): the customer chose the time, we promised it."""


def is_hidden_number(raw: object) -> bool:
    """Whether the caller's address is no number we may call: empty, or a withheld / restricted / unknown marker."""
    if not isinstance(raw, str):
        return True
    text = raw.strip().lower()
    for prefix in ("tel:", "sip:", "client:"):
        if text.startswith(prefix):
            return prefix == "client:" or is_hidden_number(text[len(prefix):].partition("@")[0].partition(";")[0])
    return not text or text in HIDDEN_NUMBERS


def calls_back_abandoned(waited_seconds: float, threshold_seconds: float) -> bool:
    """Whether a caller who hung up after ``waited_seconds`` in the queue gets an automatic callback (threshold 0:
    the feature is off)."""
    return threshold_seconds > 0 and waited_seconds >= threshold_seconds


class CallbackRefused(ValueError):
    """A request the rules refuse; ``code`` is a short machine word, the message is for the customer."""

    def __init__(self, code: str, words: str) -> None:
        super().__init__(words)
        self.code = code
        self.words = words


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how far apart a callback is tried.

    :param max_attempts: attempts at most (the first one included).
    :param spacing_seconds: at least this long between the end of one attempt and the next.
    """

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    spacing_seconds: float = DEFAULT_RETRY_SECONDS

    def __post_init__(self) -> None:
        if not 1 <= self.max_attempts <= 10:
            raise ValueError("max_attempts must be from 1 to 10")
        if not 0 <= self.spacing_seconds <= 7 * 24 * 3600:
            raise ValueError("spacing_seconds must be from 0 to a week")


def can_move(current: str, new: str) -> bool:
    """Whether ``current -> new`` is a legal move."""
    return new in MOVES.get(current, frozenset())


def states_before(new: str) -> frozenset[str]:
    """The states from which ``new`` may be reached (for a conditional update: ``WHERE state IN ...``)."""
    return frozenset(s for s, targets in MOVES.items() if new in targets)


def attempt_outcome(call_status: str, answered_by: str | None = None) -> str | None:
    """What a dialled call's final news means for the attempt: ``connected``, a retryable failure, ``canceled``;
    None while it is not final (queued, ringing) or not understood.

    ``answered_by`` is Twilio's ``AnsweredBy`` (answering machine detection): a machine or fax is not the customer.
    """
    status = (call_status or "").strip().lower()
    if status in ("in-progress", "answered", "completed"):
        if (answered_by or "").strip().lower() in MACHINE_ANSWERS:
            return MACHINE
        return CONNECTED_OUTCOME if status != "completed" else None
    return {"busy": BUSY, "no-answer": NO_ANSWER, "failed": CALL_FAILED, "canceled": CANCELED}.get(status)


@dataclass(frozen=True)
class AfterAttempt:
    """What a finished attempt does to its callback: its next ``state`` and, when tried again, when (``due_at``)."""

    state: str
    due_at: datetime | None = None
    tell_customer: bool = False  # the last attempt failed: a text or email says we could not reach them


def after_attempt(policy: RetryPolicy, attempts_made: int, outcome: str, now: datetime,
                  hours: OpeningHours | None = None) -> AfterAttempt:
    """The callback after its ``attempts_made``-th attempt ended with ``outcome`` at ``now``. A retry that would fall
    outside the queue's ``hours`` is tried at their next opening instead (nobody is there to take it before)."""
    if outcome == CONNECTED_OUTCOME:
        return AfterAttempt(CONNECTED)
    if outcome == CANCELED:  # we stopped it ourselves (the agent's phone went): the callback waits for the next agent
        return AfterAttempt(SCHEDULED, now)
    if outcome not in RETRYABLE:
        raise ValueError(f"unknown attempt outcome {outcome!r}")
    if attempts_made >= policy.max_attempts:
        return AfterAttempt(FAILED, tell_customer=True)
    retry = now + timedelta(seconds=policy.spacing_seconds)
    return AfterAttempt(SCHEDULED, next_opening(retry, hours) or retry)


def after_agent_call(outcome: str) -> AfterAttempt:
    """A click-to-call after its one attempt: answered, connected; anything else (busy, no answer, a machine, the
    agent's own leg gone) ends it, failed, with no retry and no text (the agent saw it and calls again if they wish;
    the customer never asked)."""
    if outcome == CONNECTED_OUTCOME:
        return AfterAttempt(CONNECTED)
    if outcome not in ATTEMPT_OUTCOMES:
        raise ValueError(f"unknown attempt outcome {outcome!r}")
    return AfterAttempt(FAILED)


TAKING_CALLS: Final = frozenset({"available", "busy"})


def refuse_agent_call(status: str | None, takes_calls: bool, free: bool) -> tuple[str, str] | None:
    """Whether an agent may place a call now (click-to-call): ``(reason, words)`` when not, else None.

    ``status`` is the agent's presence (None: not connected), ``takes_calls`` whether they have call capacity,
    ``free`` whether a call fits beside what they hold now with other customers (a call takes the whole agent)."""
    if status is None or status == "offline":
        return "agent_offline", "you are offline: open the console and set yourself Available to place a call"
    if not takes_calls:
        return "no_phone_capacity", "you do not take calls (no phone capacity on your account)"
    if status not in TAKING_CALLS:
        return "agent_unavailable", f"you are {status.replace('_', ' ')}: set yourself Available to place a call"
    if not free:
        return "agent_busy", "you are on another contact (with another customer): a call takes all of you, finish or close it first"
    return None


@dataclass(frozen=True)
class OpeningHours:
    """A queue's opening hours in the shop's local time: ``days`` (0 = Monday) from ``opens`` to ``closes``.
    ``utc_offset_minutes`` is the shop's offset (a fixed offset: enough for a slot picker; the customer sees slots in
    their own zone in the browser)."""

    days: frozenset[int] = frozenset(range(0, 5))
    opens: time = time(9, 0)
    closes: time = time(17, 0)
    utc_offset_minutes: int = 0

    def is_open(self, when: datetime) -> bool:
        """Whether ``when`` (timezone-aware) lies within the hours."""
        local = when + timedelta(minutes=self.utc_offset_minutes)
        return local.weekday() in self.days and self.opens <= local.time().replace(tzinfo=None) < self.closes


def next_opening(now: datetime, hours: OpeningHours | None) -> datetime | None:
    """When a "now" callback asked at ``now`` (timezone-aware) can be honoured: None when the queue is open now (or
    has no hours: "always"), else the next moment it opens (UTC). Days without hours are skipped; none at all in the
    week (no days): None (nothing to wait for; the caller treats it as open)."""
    if hours is None or hours.is_open(now) or not hours.days:
        return None
    offset = timedelta(minutes=hours.utc_offset_minutes)
    local = (now.astimezone(timezone.utc) + offset).replace(tzinfo=None)
    for ahead in range(0, 8):
        day = (local + timedelta(days=ahead)).date()
        if day.weekday() not in hours.days:
            continue
        opens = datetime.combine(day, hours.opens.replace(tzinfo=None))
        if opens > local:
            return (opens - offset).replace(tzinfo=timezone.utc)
    return None


def closed_words(opens_at: datetime) -> str:
    """What a customer who asked for "now" while we are closed is told (UTC; the widget shows it in their zone)."""
    return f"We are closed now: we will call you back when we open, at {opens_at.strftime('%Y-%m-%d %H:%M')} UTC"


def parse_hours(raw: str) -> OpeningHours | None:
    """A queue's own opening hours for callback slots (``queues.callback_hours``): ``always`` (None: no hours), or
    ``<days> <opens>-<closes> [<UTC offset in minutes>]``, days as ``0,1,2`` or ``0-4`` (0 = Monday), e.g.
    ``0-4 09:00-17:00 +60``. :class:`ValueError` with the reason when it is not that."""
    if not isinstance(raw, str):
        raise ValueError("hours must be text: 'always' or like '0-4 09:00-17:00 +60'")
    text = " ".join(str(raw).split()).lower()
    if text == "always":
        return None
    parts = text.split(" ")
    if len(parts) not in (2, 3):
        raise ValueError("hours must be 'always' or '<days> <opens>-<closes> [<utc offset minutes>]', e.g. '0-4 09:00-17:00 +60'")
    days: set[int] = set()
    for item in parts[0].split(","):
        first, dash, last = item.partition("-")
        if not first.isdigit() or (dash and not last.isdigit()):
            raise ValueError(f"days must be weekday numbers (0 = Monday) like 0-4 or 0,2,4, not {parts[0]!r}")
        lo, hi = int(first), int(last) if dash else int(first)
        if not 0 <= lo <= hi <= 6:
            raise ValueError("days must be from 0 (Monday) to 6 (Sunday)")
        days.update(range(lo, hi + 1))
    opens_raw, dash, closes_raw = parts[1].partition("-")
    try:
        opens, closes = time.fromisoformat(opens_raw), time.fromisoformat(closes_raw)
    except ValueError:
        raise ValueError(f"the hours must be like 09:00-17:00, not {parts[1]!r}") from None
    if not dash or opens >= closes:
        raise ValueError("the hours must open before they close, like 09:00-17:00")
    offset = 0
    if len(parts) == 3:
        try:
            offset = int(parts[2])
        except ValueError:
            raise ValueError(f"the UTC offset must be minutes like +60 or -300, not {parts[2]!r}") from None
        if not -14 * 60 <= offset <= 14 * 60:
            raise ValueError("the UTC offset must be within 14 hours")
    return OpeningHours(frozenset(days), opens, closes, offset)


AGENT_FIRST: Final = "agent_first"  # the agent accepts, then the customer is dialled (the default)
CUSTOMER_FIRST: Final = "customer_first"  # the customer is dialled when due; once they answer, an agent is offered it
CALLBACK_MODES: Final = (AGENT_FIRST, CUSTOMER_FIRST)


QUEUE_SETTING_FIELDS: Final = ("callback_mode", "callback_voicemail", "callback_hours")
VOICEMAIL_LIMIT: Final = 500


def check_queue_settings(changes: object) -> dict[str, str]:
    """A queue's callback settings as an admin sends them (a partial update of ``callback_mode``,
    ``callback_voicemail``, ``callback_hours``): the clean values to write, or :class:`QueueSettingsRefused` with a
    reason per field (every bad field at once; nothing is written when one is bad).

    ``callback_hours``: ``""`` (the hub's ``CALLBACK_*`` hours), ``always``, or what :func:`parse_hours` reads; kept
    in its normal form (``"0-4 09:00-17:00 +60"``). ``callback_voicemail``: plain text (control characters out,
    spaces collapsed), at most 500 characters; ``""`` leaves none."""
    if not isinstance(changes, dict):
        raise QueueSettingsRefused({"body": "send a JSON object with callback_mode, callback_voicemail and/or callback_hours"})
    reasons: dict[str, str] = {}
    clean: dict[str, str] = {}
    for key in changes:
        if key not in QUEUE_SETTING_FIELDS:
            reasons[str(key)[:40]] = f"unknown setting: only {', '.join(QUEUE_SETTING_FIELDS)}"
    if "callback_mode" in changes:
        mode = changes["callback_mode"]
        if mode not in CALLBACK_MODES:
            reasons["callback_mode"] = f"must be one of {', '.join(CALLBACK_MODES)}"
        else:
            clean["callback_mode"] = str(mode)
    if "callback_voicemail" in changes:
        text = changes["callback_voicemail"]
        if not isinstance(text, str):
            reasons["callback_voicemail"] = "must be text (empty: no voicemail)"
        else:
            words = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
            if len(words) > VOICEMAIL_LIMIT:
                reasons["callback_voicemail"] = f"at most {VOICEMAIL_LIMIT} characters"
            else:
                clean["callback_voicemail"] = words
    if "callback_hours" in changes:
        raw = changes["callback_hours"]
        if not isinstance(raw, str):
            reasons["callback_hours"] = "must be text: '' (the hub's hours), 'always' or like '0-4 09:00-17:00 +60'"
        elif not raw.strip():
            clean["callback_hours"] = ""
        else:
            try:
                hours = parse_hours(raw)
            except ValueError as exc:
                reasons["callback_hours"] = str(exc)
            else:
                clean["callback_hours"] = format_hours(hours)
    if reasons:
        raise QueueSettingsRefused(reasons)
    return clean


def format_hours(hours: OpeningHours | None) -> str:
    """The normal form of opening hours, as :func:`parse_hours` reads them (``always`` for None)."""
    if hours is None:
        return "always"
    days = sorted(hours.days)
    runs: list[str] = []
    start = prev = days[0] if days else 0
    for d in days[1:] + [-2]:
        if d == prev + 1:
            prev = d
            continue
        runs.append(f"{start}-{prev}" if prev > start else str(start))
        start = prev = d
    offset = hours.utc_offset_minutes
    return (f"{','.join(runs)} {hours.opens.strftime('%H:%M')}-{hours.closes.strftime('%H:%M')}"
            + (f" {offset:+d}" if offset else ""))


class QueueSettingsRefused(ValueError):
    """Bad callback settings for a queue: ``reasons`` has one sentence per bad field."""

    def __init__(self, reasons: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in reasons.items()))
        self.reasons = reasons


def check_slot(when: datetime, now: datetime, hours: OpeningHours | None, horizon_days: int = DEFAULT_HORIZON_DAYS) -> None:
    """Refuse a chosen time that is past, too far ahead or outside the queue's hours (:class:`CallbackRefused`)."""
    if when.tzinfo is None:
        raise CallbackRefused("bad_time", "the time must carry its time zone (ISO 8601 with an offset)")
    if when < now - timedelta(minutes=1):
        raise CallbackRefused("past", "this time has already passed: choose a later one or 'now'")
    if when > now + timedelta(days=horizon_days):
        raise CallbackRefused("too_far", f"a callback can be booked at most {horizon_days} days ahead")
    if hours is not None and not hours.is_open(when):
        raise CallbackRefused("closed", "we are closed at that time: choose a time within our opening hours")


def slots(now: datetime, hours: OpeningHours | None, *, step_minutes: int = 30, horizon_days: int = DEFAULT_HORIZON_DAYS,
          limit: int = 200) -> list[datetime]:
    """The bookable start times from ``now`` on (every ``step_minutes`` within the hours; None: always open), at most
    ``limit``."""
    step = timedelta(minutes=step_minutes)
    first = now.replace(second=0, microsecond=0)
    first += timedelta(minutes=(-first.minute) % step_minutes)
    if first < now:
        first += step
    out: list[datetime] = []
    t = first
    end = now + timedelta(days=horizon_days)
    while t <= end and len(out) < limit:
        if hours is None or hours.is_open(t):
            out.append(t)
        t += step
    return out


def clean_topic(raw: object, limit: int = 300) -> str:
    """The customer's topic as plain text: control characters out, spaces collapsed, at most ``limit`` characters."""
    if raw is None:
        return ""
    if not isinstance(raw, str):
        raise CallbackRefused("bad_topic", "topic must be text")
    text = "".join(ch if ch.isprintable() else " " for ch in raw)
    return " ".join(text.split())[:limit]


@dataclass(frozen=True)
class CallbackLimits:
    """The abuse limits of the public form (each refusal has its own code and words).

    :param max_open_per_customer: open callbacks (not completed, failed or cancelled) one customer may have.
    :param per_number_per_hour: requests for one phone number in an hour.
    :param per_visitor_per_hour: requests from one widget visitor (or, without one, one IP address) in an hour.
    :param countries: the regions (ISO 3166 alpha-2) whose numbers we call; empty: the shop's own region only.
    """

    max_open_per_customer: int = 2
    per_number_per_hour: int = 3
    per_visitor_per_hour: int = 5
    countries: frozenset[str] = frozenset()


# number types we never dial: premium-rate and shared-cost lines cost the shop (and are a classic fraud)
_REFUSED_TYPES: Final = {
    phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium-rate numbers are not called back",
    phonenumbers.PhoneNumberType.SHARED_COST: "shared-cost numbers are not called back",
    phonenumbers.PhoneNumberType.UAN: "this kind of number cannot be called back",
}


def check_number(raw: object, region: str, countries: frozenset[str] = frozenset()) -> str:
    """The customer's number in E.164, checked with ``phonenumbers`` in the shop's ``region`` (a national number is
    read as one of the shop's country): valid, of an allowed country, not premium-rate. :class:`CallbackRefused`."""
    if not isinstance(raw, str) or not raw.strip():
        raise CallbackRefused("bad_number", "a phone number is required")
    if len(raw) > 40:
        raise CallbackRefused("bad_number", "this is not a phone number")
    try:
        parsed = phonenumbers.parse(raw.strip(), region.upper())
    except phonenumbers.NumberParseException:
        raise CallbackRefused("bad_number", "this is not a phone number") from None
    if not phonenumbers.is_valid_number(parsed):
        raise CallbackRefused("bad_number", "this phone number is not valid: check the country code and digits")
    allowed = countries or frozenset({region.upper()})
    country = phonenumbers.region_code_for_number(parsed)
    if country not in allowed:
        raise CallbackRefused("country", f"we only call back numbers in {', '.join(sorted(allowed))}")
    refused = _REFUSED_TYPES.get(phonenumbers.number_type(parsed))
    if refused is not None:
        raise CallbackRefused("premium", refused)
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
