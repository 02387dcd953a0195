"""What a file really is, from its first bytes (a declared content type is never trusted alone)."""

from __future__ import annotations

# What an agent may attach to a reply (SMS and WhatsApp carry these).
AGENT_UPLOAD_TYPES: frozenset[str] = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf"})


def _mp4_family(brand: bytes) -> str:
    if brand.startswith(b"3g"):
        return "video/3gpp"
    if brand in (b"M4A ", b"M4B "):
        return "audio/mp4"
    return "video/mp4"


def sniff(data: bytes) -> str | None:
    """The type the bytes start like, or None if they match none we know."""
    head = data[:16]
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head[4:8] == b"ftyp":
        return _mp4_family(head[8:12])
    if head.startswith(b"OggS"):
        return "audio/ogg"
    if head.startswith(b"#!AMR"):
        return "audio/amr"
    if head.startswith(b"ID3") or head[:2] in (b"\xff\xfb", b"\xff\xf3", b"\xff\xf2"):
        return "audio/mpeg"
    return None
