"""Signed thread tokens: in the reply address (``support+c<token>@...``) and in the subject (``[#<token>]``).

A token is ``<conversation id>-<first 10 hex of HMAC-SHA256(secret, str(conversation id))>``: a customer
can read it but cannot make one for another conversation. Inbound, a token found in a recipient address
wins over ``In-Reply-To``/``References``, which win over a token in the subject (docs/subsystems/email.md,
Threading). Never thread on the subject's words alone.
"""

from __future__ import annotations

import hashlib
import hmac
import re

SIG_LEN = 10
_TOKEN = re.compile(r"([0-9]{1,18})-([0-9a-f]{%d})" % SIG_LEN)
_ADDRESS_TOKEN = re.compile(r"\+[cC]([0-9]{1,18}-[0-9a-fA-F]{%d})@" % SIG_LEN)
_SUBJECT_TOKEN = re.compile(r"\[#([0-9]{1,18}-[0-9a-fA-F]{%d})\]" % SIG_LEN)
_REPLY_PREFIX = re.compile(
    r"^\s*((re|aw|antw|sv|vs|rif|res)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE
)


def _signature(conversation_id: int, secret: bytes) -> str:
    return hmac.new(secret, str(conversation_id).encode(), hashlib.sha256).hexdigest()[:SIG_LEN]


def sign_token(conversation_id: int, secret: bytes) -> str:
    """``<id>-<signature>``: the token of a conversation."""
    if conversation_id < 0:
        raise ValueError("conversation_id must not be negative")
    return f"{conversation_id}-{_signature(conversation_id, secret)}"


def read_token(token: str, secret: bytes) -> int | None:
    """The conversation id of a token signed with ``secret``, or None (malformed or a wrong signature)."""
    m = _TOKEN.fullmatch((token or "").strip().lower())
    if m is None:
        return None
    conversation_id = int(m.group(1))
    if not hmac.compare_digest(m.group(2), _signature(conversation_id, secret)):
        return None
    return conversation_id


def token_address(address: str, token: str) -> str:
    """``support@shop.example`` -> ``support+c<token>@shop.example`` (a plus-tag already there is replaced)."""
    local, at, domain = address.strip().rpartition("@")
    if not at or not local:
        raise ValueError(f"not an email address: {address!r}")
    return f"{local.split('+', 1)[0]}+c{token}@{domain}"


def token_in_address(address: str) -> str | None:
    """The (unverified) token of a ``local+c<token>@domain`` address, lower-cased, or None."""
    m = _ADDRESS_TOKEN.search(address or "")
    return m.group(1).lower() if m else None


def token_in_subject(subject: str) -> str | None:
    """The (unverified) token of a subject's ``[#<token>]`` tag (the last one), or None."""
    found = _SUBJECT_TOKEN.findall(subject or "")
    return found[-1].lower() if found else None


def subject_with_token(subject: str, token: str) -> str:
    """The subject of our reply: ``Re: `` once (other reply prefixes folded into it) and ``[#<token>]`` once."""
    base = _SUBJECT_TOKEN.sub("", subject or "")
    base = _REPLY_PREFIX.sub("", base)
    base = re.sub(r"\s{2,}", " ", base).strip()
    tag = f"[#{token}]"
    return f"Re: {base} {tag}" if base else f"Re: {tag}"
