"""The email settings, read from the environment, checked once, with errors that name the variable.

See ``docs/subsystems/email.md`` (Settings). Passwords in ``SMTP_URL`` and ``IMAP_URL`` are never shown by
``repr`` and never logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_MAX_BYTES = 25 * 1024 * 1024
_QUEUE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_EMAIL_VARIABLES = ("EMAIL_ADDRESSES", "SMTP_LISTEN", "SMTP_URL", "IMAP_URL")


class EmailConfigError(ValueError):
    """An email setting that is missing or wrong; the message starts with the variable's name."""


@dataclass(frozen=True)
class SmtpRelay:
    """Where outbound mail goes (``SMTP_URL``): ``smtp://[user:pass@]host[:587][?starttls=1]`` or ``smtps://...``."""

    host: str
    port: int
    tls: bool = False  # implicit TLS (smtps)
    starttls: bool = False
    username: str = ""
    password: str = field(default="", repr=False)


@dataclass(frozen=True)
class ImapAccount:
    """One mailbox to poll (``IMAP_URL``): ``imap[s]://user:pass@host[:port]/FOLDER[?address=support@shop.example]``.

    :param address: the shop's address this mailbox receives (the dedup mailbox, and the queue's key).
    """

    host: str
    port: int
    tls: bool
    username: str
    password: str = field(repr=False)
    folder: str = "INBOX"
    address: str = ""

    @property
    def account(self) -> str:
        """``user@host``: the cursor's key and what logs may show."""
        return f"{self.username}@{self.host}"


@dataclass(frozen=True)
class EmailConfig:
    """Everything the email channel needs.

    :param addresses: the shop's addresses (lower-cased) -> the queue each one feeds.
    :param smtp_listen: where the hub's SMTP server listens, or None (no SMTP server).
    :param outbox_dir: where mail goes when there is no relay (read at ``/dev/mail``).
    """

    addresses: dict[str, str]
    smtp_listen: tuple[str, int] | None = None
    max_bytes: int = DEFAULT_MAX_BYTES
    relay: SmtpRelay | None = None
    imap: tuple[ImapAccount, ...] = ()
    ack: bool = False
    outbox_dir: str = "var/outbox"

    @property
    def enabled(self) -> bool:
        return bool(self.addresses)

    def queue_of(self, address: str) -> str | None:
        """The queue of one of our addresses (plus-addressing ignored), or None if it is not ours."""
        local, _, domain = address.strip().lower().partition("@")
        return self.addresses.get(f"{local.split('+', 1)[0]}@{domain}")

    def ours(self, address: str) -> bool:
        return self.queue_of(address) is not None


def email_configured(env: Mapping[str, str]) -> bool:
    """Whether any email setting is given (the channel is on)."""
    return any((env.get(k) or "").strip() for k in _EMAIL_VARIABLES)


def _addresses(raw: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        address, _, queue = part.partition("=")
        address, queue = address.strip().lower(), queue.strip()
        if not _ADDRESS.fullmatch(address) or "+" in address.split("@")[0]:
            raise EmailConfigError(f"EMAIL_ADDRESSES: {address!r} is not a plain email address")
        if not _QUEUE.fullmatch(queue):
            raise EmailConfigError(f"EMAIL_ADDRESSES: give each address a queue, as address=queue (got {part!r})")
        out[address] = queue
    if not out:
        raise EmailConfigError("EMAIL_ADDRESSES: give at least one address=queue pair (support@shop.example=support)")
    return out


def _host_port(name: str, raw: str) -> tuple[str, int]:
    host, _, port = raw.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise EmailConfigError(f"{name}: give host:port (127.0.0.1:8025), got {raw!r}")
    return host, int(port)


def _relay(raw: str) -> SmtpRelay:
    url = urlsplit(raw.strip())
    if url.scheme not in ("smtp", "smtps") or not url.hostname:
        raise EmailConfigError("SMTP_URL: give smtp://[user:pass@]host[:port][?starttls=1] or smtps://...")
    query = parse_qs(url.query)
    tls = url.scheme == "smtps"
    return SmtpRelay(
        host=url.hostname, port=url.port or (465 if tls else 587), tls=tls,
        starttls=not tls and query.get("starttls", ["1" if (url.port or 587) == 587 else "0"])[0] == "1",
        username=unquote(url.username or ""), password=unquote(url.password or ""),
    )


def _imap(raw: str, addresses: dict[str, str]) -> tuple[ImapAccount, ...]:
    out = []
    for part in (p.strip() for p in raw.split(",") if p.strip()):
        url = urlsplit(part)
        if url.scheme not in ("imap", "imaps") or not url.hostname or not url.username:
            raise EmailConfigError("IMAP_URL: give imap[s]://user:pass@host[:port]/FOLDER[?address=...] (several: comma-separated)")
        query = parse_qs(url.query)
        address = query.get("address", [""])[0].lower() or next(iter(addresses), "")
        if address not in addresses:
            raise EmailConfigError(f"IMAP_URL: the mailbox's address {address!r} is not in EMAIL_ADDRESSES")
        tls = url.scheme == "imaps"
        out.append(ImapAccount(
            host=url.hostname, port=url.port or (993 if tls else 143), tls=tls, username=unquote(url.username),
            password=unquote(url.password or ""), folder=unquote(url.path.lstrip("/")) or "INBOX", address=address,
        ))
    return tuple(out)


def load_email_config(env: Mapping[str, str], *, outbox_dir: str = "var/outbox") -> EmailConfig | None:
    """The email configuration, or None when no email setting is given; :class:`EmailConfigError` if one is wrong."""
    if not email_configured(env):
        return None
    addresses = _addresses(env.get("EMAIL_ADDRESSES", ""))
    listen = (env.get("SMTP_LISTEN") or "").strip()
    max_raw = (env.get("EMAIL_MAX_BYTES") or "").strip()
    if max_raw and (not max_raw.isdigit() or int(max_raw) < 1024):
        raise EmailConfigError("EMAIL_MAX_BYTES: give a number of bytes (at least 1024)")
    return EmailConfig(
        addresses=addresses,
        smtp_listen=_host_port("SMTP_LISTEN", listen) if listen else None,
        max_bytes=int(max_raw) if max_raw else DEFAULT_MAX_BYTES,
        relay=_relay(env["SMTP_URL"]) if (env.get("SMTP_URL") or "").strip() else None,
        imap=_imap(env.get("IMAP_URL", ""), addresses),
        ack=(env.get("EMAIL_ACK") or "").strip().lower() in ("1", "true", "yes", "on"),
        outbox_dir=outbox_dir,
    )
