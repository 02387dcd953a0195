"""Channels as data: what the core knows of a channel, and the delivery status of what it sends.

The core never branches on a channel's name. Everything that differs between web chat, SMS,
WhatsApp, the phone and email is a field of :class:`ChannelSpec`, built by the composition root
(``contact_center.channels.build_registry``) and looked up by name.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ConversationPolicy(StrEnum):
    """How inbound contacts of a channel are grouped into conversations."""

    PER_CUSTOMER = "per_customer"  # one open conversation per customer and channel (chat, SMS, WhatsApp)
    PER_THREAD = "per_thread"  # one per thread key (email: the thread's root Message-ID)
    PER_CALL = "per_call"  # one per call (voice: the CallSid)


class DeliveryStatus(StrEnum):
    """Where an outbound message is on its way to the customer (Twilio's words, fewer of them)."""

    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"  # never left (refused by the provider, opted out, invalid number)
    UNDELIVERED = "undelivered"  # left, and the carrier could not deliver it


_RANK: dict[DeliveryStatus, int] = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.UNDELIVERED: 2,
    DeliveryStatus.FAILED: 2,
    DeliveryStatus.READ: 3,
}
FINAL_STATUSES: frozenset[DeliveryStatus] = frozenset({DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED})

# Twilio's MessageStatus values, as the status callback sends them, in the core's words.
PROVIDER_STATUS: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "queued": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "failed": DeliveryStatus.FAILED,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "canceled": DeliveryStatus.FAILED,
}


def delivery_status(raw: str) -> DeliveryStatus | None:
    """The core's status for a provider's status word (None if it is not one we know)."""
    if not isinstance(raw, str):
        return None
    word = raw.strip().lower()
    try:
        return DeliveryStatus(word)
    except ValueError:
        return PROVIDER_STATUS.get(word)


def moves_forward(current: DeliveryStatus | str | None, new: DeliveryStatus | str) -> bool:
    """Whether ``new`` may replace ``current``: statuses only move forward, and failures are final.

    A late "sent" never overwrites "delivered"; "read" may follow "delivered" (or jump over it,
    callbacks arrive in any order); nothing follows "failed" or "undelivered".
    """
    target = DeliveryStatus(new)
    if current is None:
        return True
    now = DeliveryStatus(current)
    if now in FINAL_STATUSES:
        return False
    if target in FINAL_STATUSES:
        return _RANK[now] < _RANK[DeliveryStatus.DELIVERED]
    return _RANK[target] > _RANK[now]


@dataclass(frozen=True)
class ChannelSpec:
    """Everything the core needs to know about one channel.

    :param name: the channel's name in SQL and on the wire (``chat``, ``sms``, ``whatsapp``, ...).
    :param label: what people read ("Web chat", "SMS").
    :param contact_kind: the kind of contact point the customer's address on it is
        (``crm_store.domain.identity.ContactKind``'s values: web, phone, sms, whatsapp, email).
    :param interaction_kind: the kind of interaction the contact repository records for it.
    :param policy: how contacts become conversations.
    :param default_queue: the queue a new conversation joins when the adapter names none.
    :param bot_first: new conversations talk to the bot first (``BOT_CHANNELS``), while it is ready.
    :param weight: units of an agent's capacity one conversation of this channel takes.
    :param concurrency: conversations an agent works at once on this channel (for wait estimates).
    :param max_text: the longest text a message may have on this channel.
    :param buttons_as_text: the bot's buttons are written as numbered choices ("reply 1, 2 or 3"),
        and a customer's bare number selects one.
    :param tracks_presence: the customer is connected while they wait (web chat); a waiting
        conversation is abandoned when they leave. Channels without it never abandon by absence.
    :param reply_window_seconds: free-form replies are allowed only this long after the customer's
        last message (WhatsApp's 24-hour service window); None: always.
    :param counts_segments: the composer counts SMS segments.
    :param noun: what the people in the contact repository's summaries call a conversation on it
        ("joined the chat", "joined the SMS conversation").
    :param reopen_window_seconds: per-thread channels: a new message in a thread closed less than this
        long ago reopens it; later, it opens a new conversation linked to the closed one. None: always reopen.
    :param media: agents may attach files (images, PDF) to replies on it.
    :param rich_text: messages may carry formatted text (email's sanitised HTML beside the plain text).
    :param self_service_first: the adapter runs its own self-service first (the phone's IVR): a new
        conversation starts with automation (``bot``) whether or not the bot is up, and reaches the
        queue when the adapter asks for a person.
    :param connects_agent: an agent who accepts must be connected by the adapter (a call is bridged):
        the core asks it with a ``connect_agent`` call action.
    :param call_actions: what an agent may do to the live contact through the adapter (hold, mute,
        hang up, transfer...).
    :param bot_when_sure: the bot answers a new conversation on its own only when its NLU is at least this
        sure of one of ``bot_sure_intents`` (email: "where is my order 10234"); otherwise, and for anything
        after, a person does. None: off (the channel's ``bot_first`` decides as usual).
    :param bot_sure_intents: the intents the bot may answer alone on such a channel.
    """

    name: str
    label: str
    contact_kind: str
    interaction_kind: str
    policy: ConversationPolicy = ConversationPolicy.PER_CUSTOMER
    default_queue: str = "general"
    bot_first: bool = False
    weight: int = 1
    concurrency: float = 1.0
    max_text: int = 4000
    buttons_as_text: bool = False
    tracks_presence: bool = False
    reply_window_seconds: int | None = None
    counts_segments: bool = False
    noun: str = "conversation"
    reopen_window_seconds: int | None = None
    media: bool = False
    rich_text: bool = False
    self_service_first: bool = False
    connects_agent: bool = False
    call_actions: tuple[str, ...] = ()
    bot_when_sure: float | None = None
    bot_sure_intents: tuple[str, ...] = ("track_order",)


class UnknownChannel(LookupError):
    """A channel nobody registered."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no channel named {name!r}")
        self.name = name


def numbered_choices(text: str, titles: list[str]) -> str:
    """A bot message with its buttons written out for a channel without buttons.

    ``"Which size?" + ["S", "M", "L"]`` -> ``"Which size?\\n1. S\\n2. M\\n3. L\\nReply 1, 2 or 3."``
    """
    if not titles:
        return text
    lines = [text.rstrip()] if text.strip() else []
    lines += [f"{i}. {title}" for i, title in enumerate(titles, 1)]
    numbers = [str(i) for i in range(1, len(titles) + 1)]
    spoken = numbers[0] if len(numbers) == 1 else ", ".join(numbers[:-1]) + " or " + numbers[-1]
    lines.append(f"Reply {spoken}.")
    return "\n".join(lines)


def pick_choice(reply: str, count: int) -> int | None:
    """The 0-based choice a customer's bare-number reply selects among ``count`` offered (None if it is not one)."""
    word = reply.strip().rstrip(".").strip()
    if not word.isdigit() or len(word) > 3:
        return None
    n = int(word)
    return n - 1 if 1 <= n <= count else None


# SMS segments: GSM 03.38 text is 160 characters in one segment and 153 per segment when split;
# anything outside it (an emoji, most non-Latin scripts) makes the whole message UCS-2: 70 and 67.
_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")


def sms_segments(text: str) -> tuple[int, str]:
    """How many SMS segments ``text`` takes, and its encoding (``GSM-7`` or ``UCS-2``)."""
    if all(ch in _GSM_BASIC or ch in _GSM_EXTENDED for ch in text):
        units = sum(2 if ch in _GSM_EXTENDED else 1 for ch in text)
        return (1 if units <= 160 else -(-units // 153)), "GSM-7"
    units = sum(2 if ord(ch) > 0xFFFF else 1 for ch in text)  # UTF-16 code units
    return (1 if units <= 70 else -(-units // 67)), "UCS-2"
