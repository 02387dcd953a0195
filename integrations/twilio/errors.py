"""Twilio's error codes in words an agent can act on (https://www.twilio.com/docs/api/errors).

The same table serves the REST API's refusals (a 400 on Messages.create) and the ``ErrorCode`` of a
status callback (a message Twilio accepted and then could not deliver).
"""

from __future__ import annotations

AGENT_WORDS: dict[str, str] = {
    "20003": "The hub's Twilio credentials are wrong (TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN): nothing can be sent.",
    "20429": "Twilio is refusing messages for now (too many requests); try again in a minute.",
    "21211": "The customer's number is not a valid phone number.",
    "21212": "The shop's sending number is not a valid phone number (check TWILIO_NUMBERS).",
    "21408": "Twilio is not allowed to send to this customer's country or region from this account.",
    "21602": "The message is empty: write some text or attach a file.",
    "21606": "The shop's sending number cannot send SMS from this Twilio account (check TWILIO_NUMBERS).",
    "21610": "The customer replied STOP: they are unsubscribed and get nothing until they text START.",
    "21612": "Twilio cannot reach this number from the shop's number (no route between them).",
    "21614": "The customer's number is not a mobile number: it cannot receive text messages.",
    "21617": "The message is too long for one text (1600 characters at most): shorten it.",
    "21620": "An attachment's address is not valid, so Twilio could not send it.",
    "21910": "The shop's number and the customer's are on different channels (SMS and WhatsApp).",
    "30003": "The customer's phone is unreachable (switched off or out of coverage).",
    "30005": "The customer's number does not exist or is no longer in service.",
    "30006": "The customer's number is a landline or its carrier cannot receive texts.",
    "30007": "The carrier filtered this message as spam.",
    "30008": "The carrier could not deliver it, for a reason it did not give.",
    "30019": "The attachment is too large for the customer's carrier.",
    "11200": "Twilio could not fetch an attachment from the hub (is PUBLIC_BASE_URL reachable?).",
    "12300": "Twilio could not use an attachment: its type is not one it accepts.",
    "63007": "The shop's WhatsApp number is not set up in this Twilio account (check TWILIO_NUMBERS).",
    "63016": "More than 24 hours since the customer's last WhatsApp message: WhatsApp only allows a "
    "template now, and templates are not supported yet. Ask them to write first, or use another channel.",
    "63024": "WhatsApp says this is not a valid recipient (no WhatsApp account on this number?).",
}


def agent_words(code: str | int | None, provider_message: str | None = None) -> str:
    """What an agent reads for a Twilio error (the provider's own text, or a generic line, for codes we do not know)."""
    key = str(code).strip() if code is not None else ""
    if key in AGENT_WORDS:
        return AGENT_WORDS[key]
    detail = f" (Twilio error {key})" if key else ""
    if provider_message:
        return f"Twilio refused the message{detail}: {provider_message.strip()}"
    return f"Twilio could not deliver the message{detail}."
