"""The kinds of touch the contact repository records, and the channels they arrive on."""

from __future__ import annotations

from enum import StrEnum


class InteractionKind(StrEnum):
    """What happened with the customer."""

    CALL = "call"
    CHAT = "chat"
    EMAIL = "email"
    WEB_CALLBACK = "web_callback"
    PAGE_VIEW = "page_view"
    DOCUMENT_PUSH = "document_push"
    COBROWSE = "cobrowse"
    NOTE = "note"
    ORDER_EVENT = "order_event"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    IDENTITY = "identity"


class Channel(StrEnum):
    """Where a contact reached the shop."""

    PHONE = "phone"
    WEB = "web"
    CHAT = "chat"
    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    CALLBACK = "callback"
    BACKOFFICE = "backoffice"
