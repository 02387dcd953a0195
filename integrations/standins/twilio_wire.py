"""What Twilio's messaging puts on the wire, for the stand-in: SIDs, webhook forms, JSON and errors.

The field sets follow payloads recorded from Twilio (kept in tests/fixtures/twilio/ with their
sources) and Twilio's documentation of the Message resource and of status callbacks. This module is
deliberately independent of the hub's adapter (integrations/twilio), so that the stand-in checks it
rather than repeating it.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from email.utils import format_datetime

import phonenumbers  # type: ignore[import-untyped,unused-ignore]

from contact_center.domain.channels import sms_segments

API_VERSION = "2010-04-01"
WHATSAPP = "whatsapp:"
MAX_BODY = 1600
MAX_MEDIA = 10

# Twilio's API error answers: HTTP status and message (``{to}``/``{from_}``/``{path}``/``{detail}`` filled in).
API_ERRORS: dict[int, tuple[int, str]] = {
    20001: (400, "{detail}"),  # the stand-in's answer to a parameter value it cannot take (see twilio-standin.md)
    20003: (401, "Authenticate"),
    20004: (405, "Method not allowed"),
    20404: (404, "The requested resource {path} was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21201: (400, "No 'To' number is specified"),
    21205: (400, "{detail}"),
    21210: (400, "The source phone number provided, {from_}, is not yet verified for your account. You may only make calls from phone numbers that you've verified or purchased from Twilio."),
    21211: (400, "The 'To' number {to} is not a valid phone number."),
    21212: (400, "The 'From' number {from_} is not a valid phone number, shortcode, or alphanumeric sender ID."),
    21408: (400, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number: {to}."),
    21213: (400, "No 'From' number is specified"),
    21220: (400, "Call is not in-progress. Cannot redirect."),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (400, "The From phone number {from_} is not a valid, SMS-capable inbound phone number or short code for your account."),
    21610: (400, "The message From/To pair violates a blacklist rule."),
    21612: (400, "The 'To' phone number: {to}, is not currently reachable using the 'From' phone number: {from_} via SMS."),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
    21620: (400, "Invalid media URL(s)"),
    21910: (400, "Invalid From and To pair. From and To should be of the same channel"),
    63007: (400, "Twilio could not find a Channel with the specified From address"),
}
# The error codes that HTTP statuses injected by tests answer with.
STATUS_CODES: dict[int, int] = {429: 20429, 500: 20500, 503: 20503}

# Twilio's test-credential "magic" To numbers and the error each one gets.
MAGIC_TO: dict[str, int] = {
    "+15005550001": 21211,
    "+15005550002": 21612,
    "+15005550003": 21408,
    "+15005550004": 21610,
    "+15005550009": 21614,
}
# Messages Twilio accepts and then fails: the ErrorCode of the status callback, and the channel's words.
LATER_ERRORS: dict[str, str] = {
    "63016": "Failed to send freeform message because you are outside the allowed window. "
    "If you are using WhatsApp, please use a Message Template.",
    "30003": "Unreachable destination handset",
    "11200": "HTTP retrieval failure",
    "12300": "Invalid Content-Type",
    "30019": "Content size exceeds carrier limit",
}


def new_sid(prefix: str) -> str:
    """A Twilio SID: two letters and 32 hexadecimal digits (``SM...``, ``MM...``, ``ME...``)."""
    return prefix + secrets.token_hex(16)


def error_body(code: int, **fill: str) -> tuple[int, dict[str, object]]:
    """Twilio's JSON error answer for ``code``, with its HTTP status."""
    status, message = API_ERRORS[code]
    return status, {
        "code": code,
        "message": message.format(**{"to": "", "from_": "", "path": "", "detail": "", **fill}),
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def bare(address: str) -> str:
    """The number of ``whatsapp:+1...`` (or of ``+1...``)."""
    return address[len(WHATSAPP):] if address.lower().startswith(WHATSAPP) else address


def is_whatsapp(address: str) -> bool:
    """Whether the address is a WhatsApp one."""
    return address.lower().startswith(WHATSAPP)


def valid_number(address: str) -> bool:
    """Whether the address is an E.164 number a phone could have."""
    number = bare(address)
    if not number.startswith("+"):
        return False
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(number, None)))
    except phonenumbers.NumberParseException:
        return False


def country_of(address: str) -> str:
    """The ISO country of a number (``US``), or empty."""
    try:
        return str(phonenumbers.region_code_for_number(phonenumbers.parse(bare(address), None)) or "")
    except phonenumbers.NumberParseException:
        return ""


def segments(body: str) -> int:
    """SMS segments of ``body`` (GSM-7 or UCS-2, as carriers count them)."""
    return sms_segments(body)[0]


def rfc2822(when: datetime) -> str:
    """Twilio's date format: ``Thu, 24 Aug 2023 05:01:45 +0000``."""
    return format_datetime(when)


def media_fields(media: list[tuple[str, str]]) -> dict[str, str]:
    """``MediaContentType{N}`` and ``MediaUrl{N}`` for (url, content type) pairs."""
    fields: dict[str, str] = {}
    for index, (url, content_type) in enumerate(media):
        fields[f"MediaContentType{index}"] = content_type
        fields[f"MediaUrl{index}"] = url
    return fields


def inbound_sms_form(*, account_sid: str, sid: str, from_: str, to: str, body: str, media: list[tuple[str, str]]) -> dict[str, str]:
    """The form of Twilio's "A message comes in" webhook for an SMS (or MMS)."""
    return {
        "ToCountry": country_of(to), "ToState": "", "SmsMessageSid": sid, "NumMedia": str(len(media)),
        "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "", "SmsStatus": "received",
        "FromCity": "", "Body": body, "FromCountry": country_of(from_), "To": to, "ToZip": "",
        "NumSegments": str(segments(body)), "MessageSid": sid, "AccountSid": account_sid, "From": from_,
        "ApiVersion": API_VERSION, **media_fields(media),
    }


def inbound_whatsapp_form(
    *, account_sid: str, sid: str, from_: str, to: str, body: str, media: list[tuple[str, str]], profile_name: str
) -> dict[str, str]:
    """The form of Twilio's "A message comes in" webhook for a WhatsApp message."""
    return {
        "SmsMessageSid": sid, "NumMedia": str(len(media)), "ProfileName": profile_name, "SmsSid": sid,
        "WaId": bare(from_).lstrip("+"), "SmsStatus": "received", "Body": body, "To": to, "NumSegments": "1",
        "ReferralNumMedia": "0", "MessageSid": sid, "AccountSid": account_sid, "From": from_,
        "ApiVersion": API_VERSION, **media_fields(media),
    }


def status_form(
    *, account_sid: str, sid: str, from_: str, to: str, status: str, error_code: str | None, now: datetime
) -> dict[str, str]:
    """The form of a status callback, as Twilio sends it for SMS or for WhatsApp."""
    form = {"AccountSid": account_sid, "ApiVersion": API_VERSION, "From": from_, "MessageSid": sid,
            "MessageStatus": status, "SmsSid": sid, "SmsStatus": status, "To": to}
    if is_whatsapp(to):
        form.update({"ChannelInstallSid": "XE" + sid[2:], "ChannelPrefix": "whatsapp",
                     "ChannelToAddress": bare(to), "StructuredMessage": "false"})
        if status == "read":
            form["EventType"] = "READ"
        if error_code:
            form["ChannelStatusMessage"] = LATER_ERRORS.get(error_code, "")
    elif status in ("delivered", "undelivered"):
        form["RawDlrDoneDate"] = now.strftime("%y%m%d%H%M")
    if error_code:
        form["ErrorCode"] = error_code
    return form


def message_resource(
    *, account_sid: str, sid: str, from_: str, to: str, body: str, num_media: int, status: str, now: datetime,
    direction: str = "outbound-api",
) -> dict[str, object]:
    """A Message resource as Twilio's JSON answer to Messages.create (and to a fetch) has it."""
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}"
    return {
        "account_sid": account_sid, "api_version": API_VERSION, "body": body,
        "date_created": rfc2822(now), "date_sent": None, "date_updated": rfc2822(now),
        "direction": direction, "error_code": None, "error_message": None, "from": from_,
        "messaging_service_sid": None, "num_media": str(num_media),
        "num_segments": "1" if is_whatsapp(to) else str(segments(body)),
        "price": None, "price_unit": "USD", "sid": sid, "status": status,
        "subresource_uris": {"media": f"{uri}/Media.json"}, "to": to, "uri": f"{uri}.json",
    }
