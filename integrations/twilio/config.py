"""The Twilio settings, read from the environment, checked once, with errors that name the variable.

``TWILIO_NUMBERS`` lists the shop's Twilio senders and the queue each one feeds, e.g.
``+15005550006=support,whatsapp:+14155238886=support``; a number without ``whatsapp:`` is an SMS number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from crm_store.domain.identity import InvalidAddress, normalize_phone

TWILIO_API = "https://api.twilio.com"
WHATSAPP_PREFIX = "whatsapp:"
INBOUND_PATH = "/webhooks/twilio/messaging"
STATUS_PATH = "/webhooks/twilio/messaging/status"
DEFAULT_SEND_RATE = 1.0  # messages a second per sender: what a US/Canada SMS long code is allowed
DEFAULT_MEDIA_MAX_BYTES = 5 * 1024 * 1024  # Twilio's own limit for the media of one message
MAX_SEND_RATE = 1000.0

# Setting them (any of them) turns the Twilio channels on.
_TWILIO_VARIABLES = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_NUMBERS", "TWILIO_API_BASE_URL", "TWILIO_SEND_RATE")
_ACCOUNT_SID = re.compile(r"AC[0-9a-fA-F]{32}")
_QUEUE = re.compile(r"[A-Za-z0-9_-]{1,64}")


class TwilioConfigError(ValueError):
    """A Twilio setting that is missing or wrong; the message starts with the variable's name."""


def channel_for(address: str) -> str:
    """``whatsapp`` for a ``whatsapp:`` address, else ``sms``."""
    return "whatsapp" if address.strip().lower().startswith(WHATSAPP_PREFIX) else "sms"


@dataclass(frozen=True)
class TwilioNumber:
    """One of the shop's Twilio senders.

    :param address: as Twilio writes it in ``From``/``To``: ``+15005550006`` or ``whatsapp:+14155238886``.
    :param e164: the number alone.
    :param channel: ``sms`` or ``whatsapp``.
    :param queue: the queue its conversations join (None: the channel's default queue).
    """

    address: str
    e164: str
    channel: str
    queue: str | None = None


@dataclass(frozen=True)
class TwilioConfig:
    """Everything the Twilio adapter needs; the auth token is never shown by ``repr``."""

    account_sid: str
    auth_token: str = field(repr=False)
    public_base_url: str
    numbers: tuple[TwilioNumber, ...]
    api_base_url: str = TWILIO_API
    send_rate: float = DEFAULT_SEND_RATE
    media_max_bytes: int = DEFAULT_MEDIA_MAX_BYTES
    default_region: str = "US"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> TwilioConfig | None:
        """The settings from ``env``; None when no Twilio setting is given at all (raises TwilioConfigError)."""
        given = [name for name in _TWILIO_VARIABLES if env.get(name, "").strip()]
        if not given:
            return None
        region = (env.get("DEFAULT_PHONE_REGION", "") or "US").strip().upper()
        return cls(
            account_sid=_account_sid(_required(env, "TWILIO_ACCOUNT_SID", given[0])),
            auth_token=_required(env, "TWILIO_AUTH_TOKEN", given[0]),
            public_base_url=_base_url("PUBLIC_BASE_URL", _required(env, "PUBLIC_BASE_URL", given[0])),
            numbers=parse_numbers(_required(env, "TWILIO_NUMBERS", given[0]), region),
            api_base_url=_base_url("TWILIO_API_BASE_URL", env.get("TWILIO_API_BASE_URL", "").strip() or TWILIO_API),
            send_rate=_send_rate(env.get("TWILIO_SEND_RATE", "")),
            media_max_bytes=_media_max_bytes(env.get("MEDIA_MAX_BYTES", "")),
            default_region=region,
        )

    @property
    def inbound_url(self) -> str:
        """The URL to give Twilio for "A message comes in"."""
        return self.public_base_url + INBOUND_PATH

    @property
    def status_callback_url(self) -> str:
        """The ``StatusCallback`` the hub passes with every message it sends."""
        return self.public_base_url + STATUS_PATH

    def number(self, address: str) -> TwilioNumber | None:
        """The configured sender with this address (``+1...`` or ``whatsapp:+1...``), if it is one of ours."""
        for n in self.numbers:  # Twilio writes ``To`` as configured: no need to parse a phone number
            if n.address == address:
                return n
        channel = channel_for(address)
        try:
            e164 = normalize_phone(address, self.default_region)
        except InvalidAddress:
            return None
        return next((n for n in self.numbers if n.e164 == e164 and n.channel == channel), None)

    def queue_for(self, our_address: str) -> str | None:
        """The queue of the shop's number ``our_address`` (None: unknown number or the channel's default)."""
        number = self.number(our_address)
        return number.queue if number else None

    def channel_for(self, address: str) -> str:
        """``whatsapp`` or ``sms``, from the address's prefix."""
        return channel_for(address)

    def sender_for(self, channel: str) -> TwilioNumber | None:
        """The first configured sender of a channel (the default ``From`` when the core names none)."""
        return next((n for n in self.numbers if n.channel == channel), None)


def parse_numbers(raw: str, region: str = "US") -> tuple[TwilioNumber, ...]:
    """``TWILIO_NUMBERS`` as senders (raises TwilioConfigError naming the bad entry)."""
    numbers: list[TwilioNumber] = []
    for entry in (part.strip() for part in raw.split(",")):
        if not entry:
            continue
        number = _parse_number(entry, region)
        if any(n.e164 == number.e164 and n.channel == number.channel for n in numbers):
            raise TwilioConfigError(f"TWILIO_NUMBERS: {number.address} is listed twice")
        numbers.append(number)
    if not numbers:
        raise TwilioConfigError("TWILIO_NUMBERS: no number given (e.g. +15005550006=support)")
    return tuple(numbers)


def _parse_number(entry: str, region: str) -> TwilioNumber:
    address, _, queue = (part.strip() for part in entry.partition("="))
    channel = channel_for(address)
    try:
        e164 = normalize_phone(address, region)
    except InvalidAddress:
        raise TwilioConfigError(f"TWILIO_NUMBERS: {address!r} is not a valid phone number") from None
    if "=" in entry and not _QUEUE.fullmatch(queue):
        raise TwilioConfigError(f"TWILIO_NUMBERS: {queue!r} (for {address}) is not a queue name (letters, digits, '_' or '-')")
    prefix = WHATSAPP_PREFIX if channel == "whatsapp" else ""
    return TwilioNumber(address=prefix + e164, e164=e164, channel=channel, queue=queue or None)


def _required(env: Mapping[str, str], name: str, because: str) -> str:
    value = env.get(name, "").strip()
    if not value:
        reason = "" if because == name else f" when {because} is set"
        raise TwilioConfigError(f"{name} is required{reason}")
    return value


def _account_sid(value: str) -> str:
    if not _ACCOUNT_SID.fullmatch(value):
        raise TwilioConfigError(f"TWILIO_ACCOUNT_SID: {value[:40]!r} is not an account SID (AC and 32 hexadecimal digits)")
    return value


def _base_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise TwilioConfigError(f"{name}: {value!r} is not an http(s) URL without query (e.g. https://hub.example.com)")
    return value.rstrip("/")


def _send_rate(value: str) -> float:
    if not value.strip():
        return DEFAULT_SEND_RATE
    try:
        rate = float(value)
    except ValueError:
        raise TwilioConfigError(f"TWILIO_SEND_RATE: {value!r} is not a number of messages a second") from None
    if not 0 < rate <= MAX_SEND_RATE:
        raise TwilioConfigError(f"TWILIO_SEND_RATE: {value!r} must be above 0 and at most {MAX_SEND_RATE:g}")
    return rate


def _media_max_bytes(value: str) -> int:
    if not value.strip():
        return DEFAULT_MEDIA_MAX_BYTES
    try:
        size = int(value)
    except ValueError:
        raise TwilioConfigError(f"MEDIA_MAX_BYTES: {value!r} is not a whole number of bytes") from None
    if size <= 0:
        raise TwilioConfigError(f"MEDIA_MAX_BYTES: {value!r} must be above 0")
    return size
