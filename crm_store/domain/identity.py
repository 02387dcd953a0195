"""Who a customer is on each channel: contact kinds and the canonical form of phone numbers, emails and web visitor ids."""

from __future__ import annotations

import functools

import re
from enum import StrEnum

import phonenumbers  # type: ignore[import-untyped,unused-ignore]


class ContactKind(StrEnum):
    """The kinds of address a customer can reach us from."""

    PHONE = "phone"
    EMAIL = "email"
    WEB = "web"  # a web visitor id
    SMS = "sms"
    WHATSAPP = "whatsapp"


PHONE_KINDS: frozenset[ContactKind] = frozenset({ContactKind.PHONE, ContactKind.SMS, ContactKind.WHATSAPP})


class InvalidAddress(ValueError):
    """A contact address that cannot be turned into its canonical form, and why."""

    def __init__(self, kind: ContactKind | str, reason: str) -> None:
        self.kind = ContactKind(kind)
        self.reason = reason
        super().__init__(f"invalid {self.kind.value}: {reason}")

    def __reduce__(self) -> tuple[type[InvalidAddress], tuple[ContactKind, str]]:
        return (type(self), (self.kind, self.reason))


_PHONE_SCHEMES = ("tel:", "whatsapp:", "sms:")
_MAX_PHONE_INPUT = 64


def normalize_phone(raw: str, default_region: str = "US") -> str:
    """The E.164 form of a phone number as a customer or carrier wrote it (raises InvalidAddress)."""
    kind = ContactKind.PHONE
    if not isinstance(raw, str):
        raise InvalidAddress(kind, "not text")
    text = raw.strip()
    lowered = text.lower()
    for scheme in _PHONE_SCHEMES:
        if lowered.startswith(scheme):
            text = text[len(scheme):].strip()
            break
    if not text:
        raise InvalidAddress(kind, "empty")
    if len(text) > _MAX_PHONE_INPUT:
        raise InvalidAddress(kind, "too long to be a phone number")
    region = (default_region or "").strip().upper()
    e164 = _e164(text, region)
    if e164 is None:
        raise InvalidAddress(kind, f"not a valid phone number for region {region}" if region else "not a valid phone number")
    return e164


@functools.lru_cache(maxsize=8192)
def _e164(text: str, region: str) -> str | None:
    """The E.164 form of a number in a region, or None if it is not a valid one (the same few thousand
    numbers write to a shop again and again: parsing each once is a tenth of an inbound SMS's CPU)."""
    try:
        number = phonenumbers.parse(text, region or None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    formatted: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return formatted


_MAX_EMAIL = 254
_MAX_LOCAL = 64
_MAX_LABEL = 63
# RFC 5322 dot-atom characters for the part before the "@".
_LOCAL_ATOM = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~-]+", re.ASCII)
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?", re.ASCII)
_TLD = re.compile(r"[a-z]{2,}", re.ASCII)


def _email_problem(address: str) -> str | None:
    if not address:
        return "empty"
    if any(ch.isspace() for ch in address):
        return "must not contain spaces"
    if len(address) > _MAX_EMAIL:
        return f"longer than {_MAX_EMAIL} characters"
    if address.count("@") != 1:
        return "must contain exactly one @"
    local, domain = address.split("@")
    if not local:
        return "nothing before the @"
    if len(local) > _MAX_LOCAL:
        return f"the part before the @ is longer than {_MAX_LOCAL} characters"
    if not all(_LOCAL_ATOM.fullmatch(atom) for atom in local.split(".")):
        return "the part before the @ has characters or dots that are not allowed"
    if not domain:
        return "nothing after the @"
    labels = domain.split(".")
    if len(labels) < 2:
        return f"the domain {domain} has no dot"
    for label in labels:
        if not label:
            return f"the domain {domain} has an empty part"
        if len(label) > _MAX_LABEL:
            return f"the domain {domain} has a part longer than {_MAX_LABEL} characters"
        if not _LABEL.fullmatch(label):
            return f"the domain {domain} may only have letters, digits and inner hyphens"
    if not _TLD.fullmatch(labels[-1]):
        return f"the domain {domain} must end in at least two letters"
    return None


def normalize_email(raw: str) -> str:
    """The canonical (trimmed, case-folded) form of a well-formed email address (raises InvalidAddress)."""
    if not isinstance(raw, str):
        raise InvalidAddress(ContactKind.EMAIL, "not text")
    address = raw.strip().casefold()
    problem = _email_problem(address)
    if problem is not None:
        raise InvalidAddress(ContactKind.EMAIL, problem)
    return address


_WEB_ID = re.compile(r"[A-Za-z0-9_-]{8,128}", re.ASCII)


def normalize_web_id(raw: str) -> str:
    """The web visitor id as given, once checked to be 8 to 128 letters, digits, '_' or '-' (raises InvalidAddress)."""
    if not isinstance(raw, str):
        raise InvalidAddress(ContactKind.WEB, "not text")
    text = raw.strip()
    if not text:
        raise InvalidAddress(ContactKind.WEB, "empty")
    if not _WEB_ID.fullmatch(text):
        raise InvalidAddress(
            ContactKind.WEB, "must be 8 to 128 characters of letters, digits, '_' or '-'"
        )
    return text


def normalize_address(kind: ContactKind, raw: str, default_region: str = "US") -> str:
    """The canonical form of an address of the given kind, so one customer is found under one key."""
    contact_kind = ContactKind(kind)
    if contact_kind in PHONE_KINDS:
        try:
            return normalize_phone(raw, default_region)
        except InvalidAddress as exc:
            raise InvalidAddress(contact_kind, exc.reason) from None
    if contact_kind is ContactKind.EMAIL:
        return normalize_email(raw)
    return normalize_web_id(raw)
