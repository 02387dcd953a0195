"""What an attachment really is: the type is read from the bytes (magic numbers), never taken on trust.

Twilio says what a customer sent (``MediaContentType0``) and its CDN sends a ``Content-Type``; both
come from the customer's phone. The hub keeps a file only if its first bytes are one of the types in
:data:`ALLOWED_TYPES` and, when a type was declared, the bytes agree with it.
"""

from __future__ import annotations

from typing import Iterable

from contact_center.domain.media import sniff

ALLOWED_TYPES: frozenset[str] = frozenset({
    "image/jpeg", "image/png", "image/gif", "image/webp",
    "application/pdf",
    "video/mp4", "video/3gpp", "audio/mp4",
    "audio/ogg", "audio/amr", "audio/mpeg",
})

# Declared names that mean the same bytes as the sniffed type.
_ALIASES: dict[str, frozenset[str]] = {
    "image/jpeg": frozenset({"image/jpg", "image/pjpeg"}),
    "audio/ogg": frozenset({"audio/opus", "application/ogg", "video/ogg"}),
    "audio/mpeg": frozenset({"audio/mp3"}),
    "audio/mp4": frozenset({"audio/m4a", "audio/x-m4a", "audio/aac", "video/mp4"}),
    "video/mp4": frozenset({"video/quicktime"}),
    "video/3gpp": frozenset({"audio/3gpp", "video/mp4"}),
}
# Declared types that say nothing about the bytes.
_UNINFORMATIVE = frozenset({"", "application/octet-stream", "binary/octet-stream"})


class MediaRefused(Exception):
    """An attachment the hub will not keep, and why (for the message's metadata and the logs)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def base_type(content_type: str | None) -> str:
    """``image/jpeg`` for ``Image/JPEG; charset=binary``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def _agrees(declared: str, sniffed: str) -> bool:
    return declared in _UNINFORMATIVE or declared == sniffed or declared in _ALIASES.get(sniffed, frozenset())


def checked_type(data: bytes, declared: Iterable[str | None] = (), allowed: frozenset[str] = ALLOWED_TYPES) -> str:
    """The sniffed type of ``data`` if it is allowed and agrees with every declared type (raises MediaRefused)."""
    if not data:
        raise MediaRefused("the file is empty")
    sniffed = sniff(data)
    if sniffed is None or sniffed not in allowed:
        raise MediaRefused(f"the file is not of a type the hub keeps ({sniffed or 'unrecognised bytes'})")
    for claim in (base_type(d) for d in declared):
        if not _agrees(claim, sniffed):
            raise MediaRefused(f"the file says it is {claim} but its bytes are {sniffed}")
    return sniffed


def extension_for(content_type: str) -> str:
    """A file extension for a stored attachment's name."""
    return {
        "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "image/webp": "webp",
        "application/pdf": "pdf", "video/mp4": "mp4", "video/3gpp": "3gp", "audio/mp4": "m4a",
        "audio/ogg": "ogg", "audio/amr": "amr", "audio/mpeg": "mp3",
    }.get(content_type, "bin")
