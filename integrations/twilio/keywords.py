"""Twilio's standard opt-out keywords for messaging (case-insensitive, the whole message and nothing else).

Real Twilio numbers act on them before the hub hears of it: after STOP, Twilio refuses to send to the
customer (error 21610) until they text START, and with Advanced Opt-Out it answers the keywords
itself. The hub records the choice on the customer's contact point and still stores the message.
"""

from __future__ import annotations

from enum import StrEnum


class Keyword(StrEnum):
    """What a keyword message asks for."""

    STOP = "stop"
    START = "start"
    HELP = "help"


KEYWORDS: dict[str, Keyword] = {
    **{word: Keyword.STOP for word in ("STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT")},
    **{word: Keyword.START for word in ("START", "YES", "UNSTOP")},
    **{word: Keyword.HELP for word in ("HELP", "INFO")},
}


def keyword_of(body: str | None) -> Keyword | None:
    """The keyword the whole message is (``" stop "`` is STOP, ``"stop it"`` is nothing)."""
    return KEYWORDS.get((body or "").strip().upper())
