"""Raw email bytes -> :class:`ParsedEmail`: headers, text, sanitised HTML, quotes, attachments, classification.

The standard library's ``email`` with ``policy.default`` parses the message. Every header is read on its
own with a fallback (``compat32`` and our own RFC 2047 / charset decoding), so a malformed header costs
that header, never the message. Legacy charsets (windows-125x, ISO-8859-x, GB2312, Big5, ...) are read
through their supersets (GB18030, Big5-HKSCS); undecodable bytes become U+FFFD, never an exception.

What the rest of the channel reads (docs/subsystems/email.md):

* ``text``: the text part (or a text rendering of the sanitised HTML), the whole body, quotes included;
  ``quote_at``: the offset in ``text`` where the quoted history starts (Gmail's and Apple Mail's
  "On ... wrote:", Outlook's "From: ... Sent: ..." block, "-----Original Message-----", their German,
  French and Spanish forms, and a trailing ``>`` block); ``new_text``: what the sender wrote now (quotes
  and signature removed), for the bot.
* ``html_sanitised``: the HTML through nh3 (no script, no ``on*`` handler, no ``javascript:`` URL, no
  iframe, no SVG; tables and styles kept), or None.
* ``attachments`` with their type sniffed from the bytes (the declared type is never trusted alone);
  ``omitted``: every part that was not kept, with the reason (nothing is dropped silently).
* ``auto`` / ``no_auto_answer`` / ``wake``: automatic mail, lists, loops and bounces; ``bounce``: a
  delivery-status report's original Message-ID, status and recipient; ``auth``: the
  ``Authentication-Results`` of our own authserv-id (DMARC or DKIM failing without a DKIM pass: spoofed).
"""

from __future__ import annotations

import base64
import binascii
import codecs
import hashlib
import html as html_lib
import logging
import quopri
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.policy import EmailPolicy
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from typing import Any, Collection, Iterable

import nh3

from contact_center.domain.media import sniff as sniff_media

log = logging.getLogger(__name__)

MAX_ATTACHMENTS = 200
MAX_NAME = 200

# --- the result ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attachment:
    """A file of the message. ``content_type`` is sniffed from the bytes; ``declared_type`` is what the
    sender said. ``cid``: its Content-ID (without brackets), which the HTML may show as ``cid:<cid>``."""

    name: str
    content_type: str
    data: bytes
    cid: str | None = None
    declared_type: str = ""
    inline: bool = False


@dataclass(frozen=True)
class Omitted:
    """A part that was not kept, and why (shown to the agent)."""

    name: str
    reason: str


@dataclass(frozen=True)
class Bounce:
    """A delivery-status report: which message of ours bounced, for whom, and how badly.

    :param original_message_id: the bounced message's Message-ID, without brackets (None if not found).
    :param status: the enhanced status code (``5.1.1``), or "".
    :param permanent: a 5.x.x status (the address does not take mail).
    :param action: the DSN's Action (``failed``, ``delayed``, ...), or "".
    """

    original_message_id: str | None
    status: str
    recipient: str
    permanent: bool
    action: str = ""
    diagnostic: str = ""


@dataclass(frozen=True)
class AuthResult:
    """What our own authserv-id said of the message (``Authentication-Results``).

    :param result: ``pass`` (DMARC or DKIM passed), ``fail`` (spoofed) or ``none`` (no trusted result).
    """

    result: str = "none"
    spoofed: bool = False
    dkim: tuple[str, ...] = ()
    dmarc: str | None = None
    spf: str | None = None


@dataclass
class ParsedEmail:
    """One email, as the channel needs it. Addresses are lower-cased; Message-IDs have no brackets."""

    message_id: str | None
    in_reply_to: str | None
    references: list[str]
    from_address: str
    from_name: str
    reply_to: str | None
    to: list[str]
    cc: list[str]
    subject: str
    date: datetime | None
    text: str
    html_sanitised: str | None
    quote_at: int | None
    new_text: str
    attachments: list[Attachment] = field(default_factory=list)
    omitted: list[Omitted] = field(default_factory=list)
    auto: str | None = None  # out_of_office | auto_reply | list | bounce | loop
    auto_reasons: list[str] = field(default_factory=list)
    no_auto_answer: bool = False  # never send anything automatic back
    wake: bool = True  # False: filed with its conversation, reopens and queues nothing
    bounce: Bounce | None = None
    auth: AuthResult = field(default_factory=AuthResult)
    return_path: str | None = None  # None: no Return-Path header; "": the null sender (<>)
    header_fallbacks: list[str] = field(default_factory=list)  # headers read by the fallback
    thread_index: str | None = None  # Outlook's Thread-Index, kept for display

    @property
    def spoofed(self) -> bool:
        return self.auth.spoofed


@dataclass(frozen=True)
class Headers:
    """The headers ``take`` needs before the SMTP 250 (a cheap parse of the header block only)."""

    message_id: str | None
    from_address: str
    subject: str
    in_reply_to: str | None
    references: list[str]


# --- charsets and RFC 2047 ----------------------------------------------------------------------------

_CHARSET_ALIASES = {
    "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "euc-cn": "gb18030", "cp936": "gb18030",
    "chinese": "gb18030", "csgb2312": "gb18030", "gb_2312-80": "gb18030",
    "big5": "big5hkscs", "x-big5": "big5hkscs", "big-5": "big5hkscs", "cn-big5": "big5hkscs", "csbig5": "big5hkscs",
    "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "euc-kr": "cp949", "iso-8859-8-i": "iso-8859-8",
    "windows-874": "cp874", "x-mac-roman": "mac_roman", "macintosh": "mac_roman", "utf8": "utf-8",
    "iso-8859-1": "cp1252", "latin1": "cp1252", "us-ascii": "utf-8", "ascii": "utf-8", "ansi_x3.4-1968": "utf-8",
    "x-user-defined": "cp1252", "shift-jis": "cp932", "shift_jis": "cp932", "x-sjis": "cp932",
}
_UNKNOWN_CHARSETS = {"", "unknown-8bit", "x-unknown", "unknown", "default", "8bit", "x-binaryenc"}


def _codec(charset: str | None) -> str | None:
    """The Python codec for a MIME charset name (supersets for GB2312, Big5, Latin-1), or None if unknown."""
    name = (charset or "").strip().strip("\"'").lower().split("*", 1)[0]
    if name in _UNKNOWN_CHARSETS:
        return None
    name = _CHARSET_ALIASES.get(name, name)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Bytes in a declared charset as text: the charset (or its superset), else UTF-8, else Windows-1252;
    never raises (what cannot be read becomes U+FFFD)."""
    codec = _codec(charset)
    for name in ([codec] if codec else []) + ["utf-8"]:
        try:
            return data.decode(name)
        except (UnicodeDecodeError, LookupError):
            continue
    # mislabelled: a declared UTF-8 (or no charset) is most often Windows-1252 in disguise
    return data.decode("cp1252" if codec in (None, "utf-8") else codec, errors="replace")


def _unsurrogate(value: str) -> str:
    """Raw 8-bit header bytes (kept by the parser as surrogate escapes) read as UTF-8, else Windows-1252."""
    if not any("\udc80" <= ch <= "\udcff" for ch in value):
        return value
    data = value.encode("utf-8", errors="surrogateescape")
    return decode_bytes(data, None)


_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")


def _word_bytes(encoding: str, payload: str) -> bytes | None:
    try:
        if encoding.lower() == "b":
            cleaned = re.sub(r"[^A-Za-z0-9+/]", "", payload)
            return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4))
        return quopri.decodestring(payload.replace("_", " ").encode("ascii", errors="replace"), header=False)
    except (binascii.Error, ValueError):
        return None


def decode_words(value: str) -> str:
    """An unstructured header's text: RFC 2047 words decoded, adjacent words of one charset joined before
    decoding (so a character split across two words, or two folded lines, survives), raw 8-bit read."""
    value = _unsurrogate(value)
    value = re.sub(r"\r?\n[ \t]*", " ", value)
    out: list[str] = []
    pending = bytearray()
    pending_charset: str | None = None
    last_was_word = False
    pos = 0

    def flush() -> None:
        nonlocal pending, pending_charset
        if pending:
            out.append(decode_bytes(bytes(pending), pending_charset))
        pending, pending_charset = bytearray(), None

    for m in _ENCODED_WORD.finditer(value):
        between = value[pos:m.start()]
        data = _word_bytes(m.group(2), m.group(3))
        pos = m.end()
        if data is None:  # a broken word is kept as written
            flush()
            out.append(between + m.group(0))
            last_was_word = False
            continue
        charset = m.group(1).split("*", 1)[0].lower()
        if last_was_word and not between.strip():  # white space between two encoded words is not text
            if charset != pending_charset:
                flush()
        else:
            flush()
            out.append(between)
        if not pending:
            pending_charset = charset
        pending += data
        last_was_word = True
    flush()
    out.append(value[pos:])
    return "".join(out)


def _clean_line(value: str, limit: int = 998) -> str:
    value = "".join(" " if unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") and ch != "\u200d" else ch for ch in value)
    return unicodedata.normalize("NFC", re.sub(r"\s+", " ", value).strip())[:limit]


# --- header access with a per-header fallback ---------------------------------------------------------


class _HeaderReader:
    """Reads each header with ``policy.default`` and, when that fails or gives something broken, again
    from the ``compat32`` parse with our own decoding. ``fallbacks`` lists the headers that needed it."""

    def __init__(self, msg: Message, raw_headers: bytes) -> None:
        self.msg = msg
        self._raw_headers = raw_headers
        self._compat: Message | None = None
        self.fallbacks: list[str] = []

    @property
    def compat(self) -> Message:
        if self._compat is None:
            self._compat = BytesParser(policy=policy.compat32).parsebytes(self._raw_headers, headersonly=True)
        return self._compat

    def raw_all(self, name: str) -> list[str]:
        """Every value of a header as written (unfolded, undecoded; 8-bit read as text)."""
        wanted = name.lower()
        try:  # raw_items: the values exactly as parsed (compat32's get() would blur 8-bit bytes into U+FFFD)
            values = [v for k, v in self.compat.raw_items() if k.lower() == wanted]
        except Exception:  # noqa: BLE001 - a header the compat parser also chokes on
            return []
        return [_unsurrogate(str(v)) for v in values]

    def raw(self, name: str) -> str | None:
        values = self.raw_all(name)
        return values[0] if values else None

    def text(self, name: str) -> str:
        """An unstructured header (Subject) as text."""
        try:
            value = self.msg.get(name)
            text = "" if value is None else str(value)
            broken = "\ufffd" in text or _ENCODED_WORD.search(text) is not None or any("\udc80" <= c <= "\udcff" for c in text)
            if not broken:
                return _clean_line(text)
        except Exception:  # noqa: BLE001 - policy.default raised on this header: read it ourselves
            pass
        raw = self.raw(name)
        if raw is None:
            return ""
        self.fallbacks.append(name)
        return _clean_line(decode_words(raw))

    def addresses(self, name: str) -> list[tuple[str, str]]:
        """(name, lower-cased address) of an address header (From, To, Cc, Reply-To), all its instances."""
        try:
            found: list[tuple[str, str]] = []
            for header in self.msg.get_all(name) or []:
                for a in getattr(header, "addresses", ()):
                    addr = (a.addr_spec or "").strip()
                    if not addr or "@" not in addr or a.addr_spec.count("@") != 1:
                        raise ValueError("unparsed address")
                    display = str(a.display_name or "")
                    if _ENCODED_WORD.search(display) or "\ufffd" in display:
                        display = decode_words(display)
                    found.append((_clean_line(display, 200), addr.lower()))
            defects = [d for h in (self.msg.get_all(name) or []) for d in getattr(h, "defects", ())]
            if found or not self.raw_all(name):
                if not defects:
                    return found
        except Exception:  # noqa: BLE001
            pass
        values = self.raw_all(name)
        if not values:
            return []
        self.fallbacks.append(name)
        out: list[tuple[str, str]] = []
        for display, addr in getaddresses([re.sub(r"\r?\n[ \t]*", " ", v) for v in values]):
            addr = addr.strip().strip("<>").strip()
            if addr.count("@") != 1 or re.search(r"[\s<>\"]", addr):
                found_addr = re.findall(r"[^\s<>\"',;:()]+@[^\s<>\"',;:()]+", addr or display)
                if not found_addr:
                    continue
                display, addr = re.sub(r"[<\"].*$", "", display or addr).strip(), found_addr[-1]
            out.append((_clean_line(decode_words(display), 200), addr.lower()))
        if not out:  # nothing getaddresses could read: any address in the text
            for value in values:
                for addr in re.findall(r"[^\s<>\"',;:()]+@[^\s<>\"',;:()]+", value)[:1]:
                    out.append(("", addr.lower()))
        return out

    def ids(self, name: str) -> list[str]:
        """The Message-IDs in a header (``<...>`` tokens; a bare id without brackets when there is none)."""
        out: list[str] = []
        for raw in self.raw_all(name):
            found = re.findall(r"<([^<>\s]+)>", raw)
            if not found:
                bare = raw.strip()
                found = [bare] if bare and " " not in bare and "@" in bare else []
            out.extend(f[:300] for f in found)
        return out


# --- the body ------------------------------------------------------------------------------------------

_EXECUTABLE_EXT = {
    "exe", "dll", "scr", "bat", "cmd", "com", "pif", "vbs", "vbe", "js", "jse", "wsf", "wsh", "msi", "msp", "ps1",
    "jar", "lnk", "hta", "cpl", "reg", "sys", "app", "apk", "elf", "bin", "iso", "img", "vhd",
}
_ZIP_FAMILY = {
    "application/zip", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "application/vnd.oasis.opendocument.text", "application/vnd.oasis.opendocument.spreadsheet",
    "application/epub+zip",
}
_OLE_FAMILY = {"application/msword", "application/vnd.ms-excel", "application/vnd.ms-powerpoint", "application/vnd.ms-outlook"}
_EXT_TYPES = {
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "odt": "application/vnd.oasis.opendocument.text", "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "doc": "application/msword", "xls": "application/vnd.ms-excel", "ppt": "application/vnd.ms-powerpoint",
    "msg": "application/vnd.ms-outlook", "csv": "text/csv", "ics": "text/calendar", "vcf": "text/vcard",
}


def sniff(data: bytes, declared: str = "", name: str = "") -> str:
    """What a file is, from its bytes; the declared type or the name only pick within a family the bytes
    prove (a ZIP that says it is a .docx). Unknown bytes are ``application/octet-stream``."""
    found = sniff_media(data)
    if found:
        return found
    head = data[:512]
    lower = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    declared = declared.lower()
    if head.startswith(b"MZ"):
        return "application/x-msdownload"
    if head.startswith(b"\x7fELF"):
        return "application/x-executable"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        if declared in _ZIP_FAMILY:
            return declared
        return _EXT_TYPES.get(ext, "application/zip") if _EXT_TYPES.get(ext) in _ZIP_FAMILY else "application/zip"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        if declared in _OLE_FAMILY:
            return declared
        return _EXT_TYPES.get(ext, "application/x-ole-storage") if _EXT_TYPES.get(ext) in _OLE_FAMILY else "application/x-ole-storage"
    if head.startswith(b"{\\rtf"):
        return "application/rtf"
    if head.startswith(b"\x1f\x8b"):
        return "application/gzip"
    if head.startswith(b"Rar!"):
        return "application/vnd.rar"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "application/x-7z-compressed"
    if head.startswith(b"II*\x00") or head.startswith(b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"BM") and len(data) > 26:
        return "image/bmp"
    if b"<svg" in lower[:512] and (lower.startswith(b"<svg") or lower.startswith(b"<?xml") or lower.startswith(b"<!doctype svg") or lower.startswith(b"<!--")):
        return "image/svg+xml"
    if re.match(rb"\s*(<!doctype html|<html|<head|<body|<script|<iframe|<div|<p[ >]|<table|<meta)", lower):
        return "text/html"
    if lower.startswith(b"<?xml"):
        return "application/xml"
    if lower.startswith(b"begin:vcalendar"):
        return "text/calendar"
    if lower.startswith(b"begin:vcard"):
        return "text/vcard"
    if b"\x00" not in data[:4096]:
        try:
            data[:65536].decode("utf-8")
            textual = True
        except UnicodeDecodeError as exc:
            textual = exc.start > 65530  # cut in the middle of a character
        if textual:
            return "text/csv" if ext == "csv" or declared == "text/csv" else "text/plain"
    return "application/octet-stream"


def _executable(name: str, content_type: str) -> bool:
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return content_type in ("application/x-msdownload", "application/x-executable") or ext in _EXECUTABLE_EXT


def _safe_name(raw: str | None, index: int, content_type: str) -> str:
    name = _clean_line(raw or "", MAX_NAME)
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip(" .") or ""
    name = re.sub(r"[\x00-\x1f\x7f\"<>|:*?]", "_", name)
    if not name:
        ext = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png", "image/gif": "gif", "text/plain": "txt",
               "message/rfc822": "eml", "text/calendar": "ics", "text/html": "html", "image/svg+xml": "svg"}.get(content_type, "bin")
        name = f"attachment-{index}.{ext}"
    return name[:MAX_NAME]


class _Body:
    """The leaves of a message, sorted into text, HTML, attachments, omissions and the DSN parts."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.htmls: list[str] = []
        self.attachments: list[Attachment] = []
        self.omitted: list[Omitted] = []
        self.delivery_status: list[str] = []
        self.original_headers: list[bytes] = []
        self.count = 0

    def walk(self, part: Message, depth: int = 0, report: bool = False) -> None:
        if depth > 30:
            self.omitted.append(Omitted("(nested parts)", "the message nests parts more than 30 deep; the rest is in the original email"))
            return
        ctype = part.get_content_type()
        if ctype.startswith("multipart/") and part.is_multipart():
            payload = part.get_payload()
            is_report = ctype == "multipart/report"
            for sub in payload if isinstance(payload, list) else []:
                if isinstance(sub, Message):
                    self.walk(sub, depth + 1, report=report or is_report)
            return
        if ctype == "message/delivery-status" or ctype == "message/global-delivery-status":
            self.delivery_status.append(_part_text(part, raw=True))
            return
        if report and ctype in ("text/rfc822-headers", "message/rfc822-headers", "text/global-headers"):
            self.original_headers.append(_part_bytes(part))
            return
        if report and ctype in ("message/rfc822", "message/global"):
            self.original_headers.append(_embedded_bytes(part))
            return
        disposition = (part.get_content_disposition() or "").lower()
        filename = _filename(part)
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            text = _part_text(part)
            (self.texts if ctype == "text/plain" else self.htmls).append(text)
            return
        self._attachment(part, ctype, disposition, filename)

    def _attachment(self, part: Message, ctype: str, disposition: str, filename: str | None) -> None:
        self.count += 1
        data = _embedded_bytes(part) if ctype in ("message/rfc822", "message/global") else _part_bytes(part)
        true_type = "message/rfc822" if ctype in ("message/rfc822", "message/global") else sniff(data, ctype, filename or "")
        if ctype in ("message/rfc822", "message/global") and not filename:
            inner = BytesParser(policy=policy.compat32).parsebytes(data, headersonly=True)
            filename = (decode_words(str(inner.get("Subject", ""))) or "message")[:150] + ".eml"
        name = _safe_name(filename, self.count, true_type)
        if not data:
            self.omitted.append(Omitted(name, "the file is empty"))
            return
        if _executable(name, true_type):
            self.omitted.append(Omitted(name, "executable files are not kept (a risk to the agent's computer); it is in the original email"))
            return
        if len(self.attachments) >= MAX_ATTACHMENTS:
            self.omitted.append(Omitted(name, f"more than {MAX_ATTACHMENTS} attachments; it is in the original email"))
            return
        for defect in getattr(part, "defects", ()):
            if "Base64" in type(defect).__name__ or "base64" in str(defect).lower():
                self.omitted.append(Omitted(name, "part of the file could not be decoded (broken base64); what could be read is kept"))
                break
        cid = (part.get("Content-ID") or "").strip().strip("<>").strip() or None
        self.attachments.append(Attachment(
            name=name, content_type=true_type, data=data, cid=cid[:200] if cid else None, declared_type=ctype,
            inline=disposition == "inline" or (disposition == "" and cid is not None),
        ))


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    if name:
        return decode_words(str(name)) if _ENCODED_WORD.search(str(name)) else str(name)
    ctype_raw = str(part.get("Content-Type", ""))
    m = re.search(r'name\s*=\s*"?([^";]+)"?', ctype_raw)
    return decode_words(m.group(1)) if m else None


def _part_bytes(part: Message) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        data = None
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    if isinstance(payload, str):
        return payload.encode("utf-8", errors="surrogateescape")
    return b""


def _embedded_bytes(part: Message) -> bytes:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        inner = payload[0]
        try:
            return bytes(inner.as_bytes(policy=policy.compat32))
        except Exception:  # noqa: BLE001
            return str(inner).encode("utf-8", errors="replace")
    return _part_bytes(part)


def _part_text(part: Message, raw: bool = False) -> str:
    if raw:
        payload = part.get_payload()
        if isinstance(payload, list):
            return "\n\n".join(str(p) for p in payload)
        return decode_bytes(_part_bytes(part), "utf-8")
    return decode_bytes(_part_bytes(part), part.get_content_charset())


# --- HTML: sanitising and a text rendering ---------------------------------------------------------------

_TAGS = set(nh3.ALLOWED_TAGS) | {"style", "font", "center", "tfoot", "span", "div", "img", "u", "s", "big", "small", "hr", "br"}
_ATTRIBUTES: dict[str, set[str]] = {
    "*": {"style", "class", "id", "align", "valign", "width", "height", "bgcolor", "color", "dir", "lang", "title", "border"},
    "a": {"href", "name", "hreflang"},
    "img": {"src", "alt", "width", "height", "border", "align"},
    "td": {"colspan", "rowspan", "nowrap", "headers", "scope"},
    "th": {"colspan", "rowspan", "nowrap", "headers", "scope"},
    "table": {"cellpadding", "cellspacing", "summary", "frame", "rules"},
    "col": {"span"}, "colgroup": {"span"},
    "font": {"face", "size", "color"},
    "ol": {"start", "type", "reversed"}, "ul": {"type"}, "li": {"value"},
    "blockquote": {"cite", "type"}, "q": {"cite"}, "time": {"datetime"},
}
_CLEAN_CONTENT = {"script", "noscript", "iframe", "frame", "frameset", "object", "embed", "applet", "svg", "math",
                  "template", "title", "xml", "head", "textarea", "select", "button", "canvas", "audio", "video"}
_URL_SCHEMES = {"http", "https", "mailto", "tel", "cid"}
_DANGEROUS_CSS = re.compile(r"javascript|vbscript|expression\s*\(|behaviou?r\s*:|-moz-binding|@import|data\s*:", re.IGNORECASE)


def _css_is_dangerous(css: str) -> bool:
    flat = html_lib.unescape(css)
    flat = re.sub(r"\\([0-9a-fA-F]{1,6})\s?", lambda m: chr(int(m.group(1), 16)) if int(m.group(1), 16) < 0x110000 else "", flat)
    flat = re.sub(r"/\*.*?\*/|\\|\s", "", flat, flags=re.DOTALL)
    return _DANGEROUS_CSS.search(flat) is not None


def sanitise_html(raw_html: str) -> str:
    """HTML safe to show in a sandboxed frame: nh3 with the email tag set (tables, inline styles and
    ``<style>`` kept; no script, handler, iframe, SVG, form, ``javascript:`` URL), then CSS that could run
    code (``expression()``, ``javascript:``, ``@import``, bindings) removed."""
    cleaned = nh3.clean(
        raw_html, tags=_TAGS, clean_content_tags=_CLEAN_CONTENT, attributes=_ATTRIBUTES, url_schemes=_URL_SCHEMES,
        strip_comments=True, link_rel="noopener noreferrer nofollow",
    )
    cleaned = re.sub(
        r'\sstyle="([^"]*)"', lambda m: "" if _css_is_dangerous(m.group(1)) else m.group(0), cleaned,
    )
    cleaned = re.sub(
        r"<style>(.*?)</style>", lambda m: "" if _css_is_dangerous(m.group(1)) else m.group(0), cleaned, flags=re.DOTALL | re.IGNORECASE,
    )
    return cleaned.strip()


_BLOCKS = {"p", "div", "tr", "table", "ul", "ol", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "hr", "section",
           "article", "header", "footer", "center", "address", "figure", "blockquote", "dt", "dd", "li", "caption"}
_SKIP = {"style", "script", "head", "title", "xml"}


class _TextRenderer(HTMLParser):
    """A plain-text rendering of (sanitised) HTML: paragraphs and line breaks, list bullets, table cells
    separated by tabs, link targets after their text, ``>`` before quoted (blockquote) lines."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self.current = ""
        self.depth = 0  # blockquote depth
        self.skip = 0
        self.pre = 0
        self.links: list[str | None] = []
        self.link_text = ""

    def _newline(self) -> None:
        line = self.current.rstrip()
        self.lines.append(("> " * self.depth + line) if (line or self.depth) else "")
        self.current = ""

    def _block(self) -> None:
        if self.current.strip():
            self._newline()
        elif self.lines and self.lines[-1] != "":
            self.lines.append("")
            self.current = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
            return
        if tag == "br":
            self._newline()
        elif tag in ("td", "th"):
            if self.current.strip():
                self.current += "\t"
        elif tag == "li":
            self._block()
            self.current = "- "
        elif tag in _BLOCKS:
            self._block()
            if tag == "blockquote":
                self.depth += 1
            if tag == "pre":
                self.pre += 1
            if tag == "hr":
                self.current = "----"
                self._newline()
        elif tag == "a":
            self.links.append(dict(attrs).get("href"))
            self.link_text = ""
        elif tag == "img":
            alt = (dict(attrs).get("alt") or "").strip()
            if alt:
                self.current += f"[{alt}]"

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "a" and self.links:
            href = self.links.pop()
            if href and href.startswith(("http://", "https://")) and href.rstrip("/") != self.link_text.strip().rstrip("/"):
                self.current += f" <{href}>"
        elif tag in _BLOCKS:
            self._block()
            if tag == "blockquote":
                self.depth = max(0, self.depth - 1)
            if tag == "pre":
                self.pre = max(0, self.pre - 1)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            parts = data.split("\n")
            for i, part in enumerate(parts):
                if i:
                    self._newline()
                self.current += part
            return
        text = re.sub(r"\s+", " ", data)
        if not self.current.strip() or self.current.endswith((" ", "\t")):
            text = text.lstrip()
        self.current += text
        if self.links:
            self.link_text += text

    def render(self) -> str:
        if self.current.strip():
            self._newline()
        text = "\n".join(line.rstrip() for line in self.lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip()


def html_to_text(value: str) -> str:
    """The text of an HTML body (for the bot, search, and the plain view)."""
    renderer = _TextRenderer()
    try:
        renderer.feed(value)
        renderer.close()
    except Exception:  # noqa: BLE001 - html.parser is lenient; never lose the message over it
        return re.sub(r"<[^>]*>", " ", value)
    return renderer.render()


# --- quotes --------------------------------------------------------------------------------------------

_ATTRIBUTION_START = re.compile(r"^\s*(?:On|Am|Le|El|Op|Il|Em)\s", re.IGNORECASE)
_ATTRIBUTION_VERB = re.compile(
    r"(?:\bwrote|\bschrieb|\ba\s+[ée]crit|\bescribi[óo]|\bschreef|\bha\s+scritto|\bescreveu)\b[^\n]{0,160}?:\s*$"
    r"|(?:\bwrote|\bschrieb|\ba\s+[ée]crit|\bescribi[óo])\s*:?\s*$",
    re.IGNORECASE,
)
_FROM_LABEL = re.compile(r"^\s*\*?(?:From|Von|De|Da|Van)\s*\*?\s*:\s*\*?\s*\S", re.IGNORECASE)
_SENT_LABEL = re.compile(
    r"^\s*\*?(?:Sent|Date|Gesendet|Datum|Envoy[ée]|Date|Enviado|Fecha|Inviato|Verzonden)\s*\*?\s*:", re.IGNORECASE,
)
_SEPARATOR = re.compile(
    r"^\s*-{2,}\s*(?:Original Message|Ursprüngliche Nachricht|Originalnachricht|Message d'origine|Message original|"
    r"Mensaje original|Forwarded message|Weitergeleitete Nachricht|Message transféré|Mensaje reenviado|"
    r"Messaggio originale)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_SIGNATURE_TAIL = re.compile(
    r"^\s*(?:Sent from my|Get Outlook for|Von meinem|Gesendet von meinem|Envoyé de mon|Enviado desde mi|Sent from Mail for)\b",
    re.IGNORECASE,
)


def _line_offsets(text: str) -> list[tuple[int, str]]:
    out, pos = [], 0
    for line in text.split("\n"):
        out.append((pos, line))
        pos += len(line) + 1
    return out


def find_quote_start(text: str) -> int | None:
    """The offset where the quoted history of a reply starts, or None (nothing quoted, or nothing before it)."""
    lines = _line_offsets(text)
    candidates: list[int] = []
    for i, (offset, line) in enumerate(lines):
        if _ATTRIBUTION_START.match(line):
            joined = line
            for k in range(0, 3):
                if k:
                    if i + k >= len(lines):
                        break
                    joined += " " + lines[i + k][1].strip()
                if len(joined) > 400:
                    break
                if _ATTRIBUTION_VERB.search(joined):
                    candidates.append(offset)
                    break
            if candidates:
                break
    for i, (offset, line) in enumerate(lines):
        if _SEPARATOR.match(line):
            candidates.append(offset)
            break
        if _FROM_LABEL.match(line) and any(_SENT_LABEL.match(lines[j][1]) for j in range(i + 1, min(i + 4, len(lines)))):
            start = offset
            j = i - 1
            while j >= 0 and not lines[j][1].strip():
                j -= 1
            if j >= 0 and (_UNDERSCORES.match(lines[j][1]) or _SEPARATOR.match(lines[j][1]) or lines[j][1].strip() == "----"):
                start = lines[j][0]
            candidates.append(start)
            break
    # a trailing block of '>' lines (interleaved answers are not collapsed)
    trailing: int | None = None
    for offset, line in reversed(lines):
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith(">"):
            trailing = offset
            continue
        if _ATTRIBUTION_VERB.search(stripped) and trailing is not None:
            trailing = offset
        break
    if trailing is not None:
        candidates.append(trailing)
    for start in sorted(candidates):
        if text[:start].strip():
            return start
    return None


def strip_quotes(text: str, quote_at: int | None) -> str:
    """What the sender wrote now: before the quoted history, without '>' lines and the signature."""
    head = text[:quote_at] if quote_at is not None else text
    kept: list[str] = []
    for line in head.split("\n"):
        if line.rstrip() in ("-- ", "--") or line == "-- ":
            break
        if line.lstrip().startswith(">"):
            continue
        kept.append(line)
    while kept and (not kept[-1].strip() or _SIGNATURE_TAIL.match(kept[-1])):
        kept.pop()
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()


# --- automatic mail, lists, loops, bounces --------------------------------------------------------------

_OOO_SUBJECT_STRONG = re.compile(
    r"^\s*(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response)\s*:|out of (?:the )?office|abwesenheitsnotiz|"
    r"automatische antwort|r[ée]ponse automatique|respuesta autom[áa]tica|fuera de la oficina)",
    re.IGNORECASE,
)
_OOO_SUBJECT_WEAK = re.compile(r"^\s*(?:ooo\b|abwesend|absence|absent|vacation|on vacation|away from|urlaub|vacances|vacaciones)", re.IGNORECASE)
_OOO_BODY = re.compile(
    r"out of (?:the )?office|on (?:vacation|holiday|leave)|away from (?:the office|my desk)|limited access to (?:my )?e-?mail|"
    r"nicht im b[üu]ro|abwesend|im urlaub|absent(?:e)? du bureau|en cong[ée]|en vacances|fuera de la oficina|de vacaciones|"
    r"ausente",
    re.IGNORECASE,
)
_MAILER_DAEMON = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon)@", re.IGNORECASE)


def _classify(h: _HeaderReader, from_address: str, subject: str, text: str, our: Collection[str]) -> tuple[str | None, list[str], bool]:
    """(auto kind, reasons, never auto-answer) from the headers (and, for out-of-office, the words)."""
    reasons: list[str] = []
    kind: str | None = None
    auto_submitted = (h.raw("Auto-Submitted") or "").strip().lower()
    if auto_submitted and not auto_submitted.startswith("no"):
        reasons.append(f"Auto-Submitted: {auto_submitted[:40]}")
    precedence = (h.raw("Precedence") or "").strip().lower()
    if precedence in ("bulk", "list", "junk"):
        reasons.append(f"Precedence: {precedence}")
        kind = "list"
    elif precedence == "auto_reply":
        reasons.append("Precedence: auto_reply")
    for name in ("X-Autoreply", "X-Autorespond", "X-Autoresponse", "X-Autoreply-From"):
        if h.raw(name) is not None:
            reasons.append(name)
    if (h.raw("X-Auto-Response-Suppress") or "").strip() and auto_submitted:
        pass  # Exchange sets it on its own automatic mail, already counted by Auto-Submitted
    for name in ("List-Id", "List-Unsubscribe", "List-Post"):
        if h.raw(name) is not None:
            reasons.append(name)
            kind = "list"
    loops = " ".join(h.raw_all("X-Loop")).lower()
    if loops and any(addr in loops for addr in our):
        reasons.append("X-Loop: ours")
        kind = "loop"
    return_path = h.raw("Return-Path")
    if return_path is not None and return_path.strip().strip("<>").strip() == "":
        reasons.append("Return-Path: <>")
    if _MAILER_DAEMON.match(from_address):
        reasons.append("mailer-daemon sender")
    if kind == "loop":
        return kind, reasons, True
    automatic = bool(reasons) and kind != "list"
    strong = bool(_OOO_SUBJECT_STRONG.match(subject))
    if strong or (automatic and (_OOO_SUBJECT_WEAK.match(subject) or _OOO_BODY.search(text[:2000]))):
        return "out_of_office", reasons or ["subject: an automatic reply"], True
    if kind == "list":
        return kind, reasons, True
    if reasons:
        return "auto_reply", reasons, True
    return None, reasons, False


def _dsn_fields(text: str) -> list[dict[str, str]]:
    """The field blocks of a message/delivery-status part (per-message first, then one per recipient)."""
    blocks: list[dict[str, str]] = []
    for block in re.split(r"\r?\n\s*\r?\n", text.strip()):
        fields: dict[str, str] = {}
        current = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and current:
                fields[current] += " " + line.strip()
                continue
            name, sep, value = line.partition(":")
            if sep:
                current = name.strip().lower()
                fields[current] = value.strip()
        if fields:
            blocks.append(fields)
    return blocks


def _bounce(body: _Body, h: _HeaderReader, from_address: str, text: str) -> Bounce | None:
    """The DSN of a delivery-status report (or, from a mailer daemon, what its text says)."""
    original: str | None = None
    for headers in body.original_headers:
        inner = BytesParser(policy=policy.compat32).parsebytes(headers, headersonly=True)
        mid = re.findall(r"<([^<>\s]+)>", str(inner.get("Message-ID", "")))
        if mid:
            original = mid[0]
            break
    status = recipient = action = diagnostic = ""
    for ds in body.delivery_status:
        for fields in _dsn_fields(ds):
            if "final-recipient" in fields or "original-recipient" in fields or "action" in fields and "status" in fields:
                recipient = (fields.get("final-recipient") or fields.get("original-recipient") or "").split(";", 1)[-1].strip().strip("<>")
                status = fields.get("status", "").split()[0] if fields.get("status") else ""
                action = fields.get("action", "").lower()
                diagnostic = fields.get("diagnostic-code", "").split(";", 1)[-1].strip()
                if action == "failed":
                    break
        if status:
            break
    report = body.delivery_status or body.original_headers
    if not report and not _MAILER_DAEMON.match(from_address):
        return None
    if original is None:  # a plain-text bounce: the Message-ID quoted in its text
        m = re.search(r"^\s*Message-ID:\s*<([^<>\s]+)>", text, re.IGNORECASE | re.MULTILINE)
        original = m.group(1) if m else None
    if not status:
        m = re.search(r"\b([245]\.\d{1,3}\.\d{1,3})\b", text)
        status = m.group(1) if m else ""
    if not recipient:
        m = re.search(r"<([^<>\s]+@[^<>\s]+)>", text)
        recipient = m.group(1) if m else ""
    if not report and original is None:
        return None
    if not action:
        action = "failed" if status.startswith(("4", "5")) else ""
    return Bounce(
        original_message_id=original, status=status[:20], recipient=recipient.lower()[:254],
        permanent=status.startswith("5"), action=action[:20], diagnostic=_clean_line(diagnostic, 500),
    )


# --- Authentication-Results -------------------------------------------------------------------------------


def _strip_comments(value: str) -> str:
    out, depth = [], 0
    for ch in value:
        if ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
        elif not depth:
            out.append(ch)
    return "".join(out)


def read_auth(values: Iterable[str], authserv_id: str | None) -> AuthResult:
    """DKIM/DMARC/SPF from the topmost ``Authentication-Results`` of our own authserv-id (others are ignored:
    anyone can write that header). DMARC failing, or DKIM failing with no DKIM pass: spoofed."""
    if not authserv_id:
        return AuthResult()
    ours = authserv_id.strip().lower()
    for raw in values:
        value = _strip_comments(re.sub(r"\s+", " ", raw))
        parts = [p.strip() for p in value.split(";")]
        if not parts or not parts[0] or parts[0].split()[0].lower() != ours:
            continue
        dkim: list[str] = []
        dmarc = spf = None
        for p in parts[1:]:
            m = re.match(r"(dkim|dmarc|spf)\s*=\s*([a-z]+)", p, re.IGNORECASE)
            if not m:
                continue
            method, result = m.group(1).lower(), m.group(2).lower()
            if method == "dkim":
                dkim.append(result)
            elif method == "dmarc":
                dmarc = result
            else:
                spf = result
        spoofed = dmarc == "fail" or ("fail" in dkim and "pass" not in dkim)
        passed = dmarc == "pass" or "pass" in dkim
        return AuthResult(result="fail" if spoofed else ("pass" if passed else "none"), spoofed=spoofed,
                          dkim=tuple(dkim), dmarc=dmarc, spf=spf)
    return AuthResult()


# --- the whole message ------------------------------------------------------------------------------------


class _CachedPolicy(EmailPolicy):
    """``policy.default`` whose parsed headers are remembered: the standard library parses a header again at
    every ``get`` (a part's Content-Type four or five times while its body is read, the same few values in
    every message), and that parsing was a fifth of the email ingest's CPU. A parsed header is a pure function
    of its name and raw value and is never changed by its readers."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        if hasattr(value, "name"):
            return value
        key = (name, value)
        found = _PARSED_HEADERS.get(key)
        if found is None:
            found = super().header_fetch_parse(name, value)
            if len(_PARSED_HEADERS) >= 4096:
                _PARSED_HEADERS.clear()
            _PARSED_HEADERS[key] = found
        return found


_PARSED_HEADERS: dict[tuple[str, str], Any] = {}
_POLICY = _CachedPolicy()


def _split_head(raw: bytes) -> bytes:
    m = re.search(rb"\r?\n\r?\n", raw)
    return raw[: m.end()] if m else raw


def _first_id(ids: list[str]) -> str | None:
    return ids[0] if ids else None


def parse_headers(raw: bytes) -> Headers:
    """The few headers ``take`` records, from the header block alone (never raises)."""
    head = _split_head(raw)
    msg = BytesParser(policy=_POLICY).parsebytes(head, headersonly=True)
    h = _HeaderReader(msg, head)
    froms = h.addresses("From")
    return Headers(
        message_id=_first_id(h.ids("Message-ID")), from_address=froms[0][1] if froms else "", subject=h.text("Subject"),
        in_reply_to=_first_id(h.ids("In-Reply-To")), references=h.ids("References"),
    )


def fingerprint(raw: bytes) -> str:
    """What makes two copies the same message whatever the trace headers each hop added: From, To, Date,
    Subject and the body (line endings normalised). Tells a repeat from a reused Message-ID."""
    head = _split_head(raw)
    body = raw[len(head):].replace(b"\r\n", b"\n").rstrip()
    msg = BytesParser(policy=policy.compat32).parsebytes(head, headersonly=True)
    digest = hashlib.sha256()
    for name in ("From", "To", "Date", "Subject"):
        digest.update(re.sub(r"\s+", " ", str(msg.get(name, ""))).strip().encode("utf-8", errors="surrogateescape") + b"\n")
    digest.update(body)
    return digest.hexdigest()


def parse_email(raw: bytes, *, our_addresses: Collection[str] = (), authserv_id: str | None = None) -> ParsedEmail:
    """Parse one raw message. Never raises for a malformed message: what cannot be read is reported in
    ``omitted`` or ``header_fallbacks``, and the rest is kept."""
    our = {a.lower() for a in our_addresses}
    head = _split_head(raw)
    msg = BytesParser(policy=_POLICY).parsebytes(raw)
    h = _HeaderReader(msg, head)
    froms = h.addresses("From")
    from_name, from_address = froms[0] if froms else ("", "")
    if not from_address:  # no From: the envelope sender is all we have
        rp = (h.raw("Return-Path") or "").strip().strip("<>").strip().lower()
        from_address = rp if "@" in rp else ""
    reply_to = h.addresses("Reply-To")
    subject = h.text("Subject")
    try:
        date = parsedate_to_datetime(h.raw("Date") or "") if h.raw("Date") else None
    except (TypeError, ValueError, IndexError):
        date = None
        h.fallbacks.append("Date")
    body = _Body()
    try:
        body.walk(msg)
    except Exception as exc:  # noqa: BLE001 - a body the parser cannot walk: keep what its bytes say
        log.warning("email body could not be walked", extra={"error": repr(exc)})
        body.omitted.append(Omitted("(body)", "the message's structure could not be read; the full body is in the original email"))
        body.texts.append(decode_bytes(raw[len(head):], None))
    html_raw = "\n".join(body.htmls).strip()
    html_sanitised = sanitise_html(html_raw) if html_raw else None
    if body.texts and any(t.strip() for t in body.texts):
        text = "\n\n".join(t.strip("\r\n") for t in body.texts if t.strip())
    elif html_sanitised:
        text = html_to_text(html_sanitised)
    else:
        text = ""
    text = unicodedata.normalize("NFC", text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")).strip()
    quote_at = find_quote_start(text)
    new_text = strip_quotes(text, quote_at)
    auto, reasons, no_answer = _classify(h, from_address, subject, text, our)
    bounce = _bounce(body, h, from_address, text) if (body.delivery_status or body.original_headers or _MAILER_DAEMON.match(from_address) or "Return-Path: <>" in reasons) else None
    if bounce is not None:
        auto, no_answer = "bounce", True
        reasons.append("delivery-status report")
    return_path_raw = h.raw("Return-Path")
    return ParsedEmail(
        message_id=_first_id(h.ids("Message-ID")),
        in_reply_to=_first_id(h.ids("In-Reply-To")),
        references=h.ids("References")[-50:],
        from_address=from_address,
        from_name=from_name,
        reply_to=reply_to[0][1] if reply_to else None,
        to=[a for _, a in h.addresses("To")],
        cc=[a for _, a in h.addresses("Cc")],
        subject=subject,
        date=date,
        text=text,
        html_sanitised=html_sanitised,
        quote_at=quote_at,
        new_text=new_text,
        attachments=body.attachments,
        omitted=body.omitted,
        auto=auto,
        auto_reasons=reasons,
        no_auto_answer=no_answer,
        wake=auto not in ("out_of_office", "auto_reply", "bounce", "loop", "list"),
        bounce=bounce,
        auth=read_auth(h.raw_all("Authentication-Results"), authserv_id),
        return_path=None if return_path_raw is None else return_path_raw.strip().strip("<>").strip().lower(),
        header_fallbacks=h.fallbacks,
        thread_index=(h.raw("Thread-Index") or "").strip()[:200] or None,
    )


def summary(p: ParsedEmail) -> dict[str, Any]:
    """The classification kept in ``email_messages.detail`` (no body text)."""
    return {
        "auto": p.auto, "auto_reasons": p.auto_reasons[:10], "spoofed": p.spoofed, "auth": p.auth.result,
        "attachments": len(p.attachments), "omitted": [{"name": o.name, "reason": o.reason} for o in p.omitted][:50],
        "header_fallbacks": p.header_fallbacks[:20],
        "bounce": None if p.bounce is None else {
            "original_message_id": p.bounce.original_message_id, "status": p.bounce.status, "recipient": p.bounce.recipient,
            "permanent": p.bounce.permanent, "action": p.bounce.action, "diagnostic": p.bounce.diagnostic,
        },
    }
