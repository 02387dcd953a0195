"""Settings read from the environment (12-factor), with working defaults for the embedded mode."""

from __future__ import annotations

import os
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping


def _bool(value: str | None, default: bool) -> bool:
    """Read a yes/no environment value."""
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


WEBCHAT_MESSAGE_BURST = 10
WEBCHAT_MESSAGES_PER_SECOND = 2.0


def webchat_rate_limit(env: Mapping[str, str] | None = None) -> tuple[int, float]:
    """A web chat socket's message limit, ``(burst, per_second)``: ``WEBCHAT_MESSAGE_BURST`` (10) and
    ``WEBCHAT_MESSAGES_PER_SECOND`` (2). A burst or a rate of 0 turns the limit off."""
    env = os.environ if env is None else env
    burst = int(env.get("WEBCHAT_MESSAGE_BURST") or WEBCHAT_MESSAGE_BURST)
    rate = float(env.get("WEBCHAT_MESSAGES_PER_SECOND") or WEBCHAT_MESSAGES_PER_SECOND)
    return burst, rate


def _milliseconds(raw: str | None) -> float | None:
    """A duration given in milliseconds, in seconds (None when unset or empty)."""
    if raw is None or not raw.strip():
        return None
    value = float(raw)
    if not value >= 0:
        raise ValueError(f"a duration in milliseconds must be 0 or more, not {raw!r}")
    return value / 1000.0


@dataclass(frozen=True)
class Settings:
    """Everything the composition root needs to wire the hub.

    :param database_url: SQLAlchemy async URL; SQLite file by default, PostgreSQL via ``postgresql+asyncpg://``.
    :param redis_url: when set, shared state lives in Redis; empty means in-process state (one node).
    :param service_tokens: bearer tokens accepted from machine callers (the bot's actions).
    :param default_phone_region: region used to read phone numbers written without a country code.
    :param demo_data: load the demo shop into an empty database at start.
    """

    database_url: str = "sqlite+aiosqlite:///var/contact-center.db"
    redis_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    service_tokens: tuple[str, ...] = ()
    session_secret: str = ""
    default_phone_region: str = "US"
    currency: str = "EUR"
    demo_data: bool = True
    demo_seed: int = 42
    log_level: str = "INFO"
    sql_echo: bool = False
    auto_migrate: bool = True
    allowed_origins: tuple[str, ...] = ()
    node_name: str = ""
    offer_timeout_seconds: float = 20.0
    gc_freeze: bool = True  # freeze start-up objects out of the garbage collector's passes
    message_commit_interval: float | None = None  # seconds between two group commits of messages (None: the log's default)
    abandon_grace_seconds: float = 60.0  # a waiting customer gone this long has abandoned the chat
    decline_skip_seconds: float = 20.0  # an agent who declined (or missed) an offer is skipped this long
    wrap_up_seconds: float = 10.0
    callback_interval_seconds: float = 1.0  # how often each hub moves due callbacks into their queues
    rasa_url: str = ""  # the ordering bot (Rasa's REST channel); empty: every chat goes to agents
    rasa_token: str = ""
    bot_timeout_seconds: float = 5.0  # a bot turn slower than this hands the chat to a person
    bot_channels: tuple[str, ...] = ("chat",)  # channels whose new conversations go to the bot first
    redis_prefix: str = "cc:{hub}:"
    public_base_url: str = ""  # how providers (Twilio) reach this hub: the base of webhook URLs and media links
    media_dir: str = "var/media"  # where attachments' bytes are kept
    media_max_bytes: int = 5 * 1024 * 1024  # the largest attachment taken in or uploaded
    twilio_standin: bool = False  # run the local Twilio stand-in (and /dev/phone) inside the hub
    webchat_message_burst: int = WEBCHAT_MESSAGE_BURST  # a widget socket's token bucket: messages at once (0: no limit)
    webchat_messages_per_second: float = WEBCHAT_MESSAGES_PER_SECOND  # ... and refilled at this rate
    trusted_proxies: tuple[str, ...] = ()  # proxies (IPs, CIDR blocks) whose X-Forwarded-Proto/-For are believed
    login_max_failures: int = 5  # an account's failed logins before each further one waits (growing delays)
    login_lockout_failures: int = 20  # ... and before the account is locked (0: never)
    login_address_max_failures: int = 20  # the same per client address (an office behind one NAT shares it)
    login_address_lockout_failures: int = 100
    login_lockout_seconds: int = 3600  # how long a lockout lasts unless an admin lifts it (0: until lifted)
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        """Build settings from environment variables, filling in embedded-mode defaults."""
        env = os.environ if env is None else env
        tokens = tuple(t.strip() for t in env.get("SERVICE_TOKEN", "").split(",") if t.strip())
        return cls(
            database_url=env.get("DATABASE_URL") or cls.database_url,
            redis_url=env.get("REDIS_URL", ""),
            host=env.get("HOST", cls.host),
            port=int(env.get("PORT", cls.port)),
            service_tokens=tokens,
            session_secret=env.get("SESSION_SECRET", ""),
            default_phone_region=env.get("DEFAULT_PHONE_REGION", cls.default_phone_region).upper(),
            currency=env.get("CURRENCY", cls.currency),
            demo_data=_bool(env.get("DEMO_DATA"), cls.demo_data),
            demo_seed=int(env.get("DEMO_SEED", cls.demo_seed)),
            log_level=env.get("LOG_LEVEL", cls.log_level),
            sql_echo=_bool(env.get("SQL_ECHO"), False),
            auto_migrate=_bool(env.get("AUTO_MIGRATE"), True),
            allowed_origins=tuple(o.strip() for o in env.get("ALLOWED_ORIGINS", "").split(",") if o.strip()),
            node_name=env.get("NODE_NAME", ""),
            offer_timeout_seconds=float(env.get("OFFER_TIMEOUT_SECONDS", 20.0)),
            abandon_grace_seconds=float(env.get("ABANDON_GRACE_SECONDS", 60.0)),
            decline_skip_seconds=float(env.get("DECLINE_SKIP_SECONDS", 20.0)),
            gc_freeze=env.get("GC_FREEZE", "true").strip().lower() not in ("0", "false", "no", "off"),
            message_commit_interval=_milliseconds(env.get("MESSAGE_COMMIT_INTERVAL_MS")),
            wrap_up_seconds=float(env.get("WRAP_UP_SECONDS", 10.0)),
            callback_interval_seconds=float(env.get("CALLBACK_INTERVAL_SECONDS", 1.0)),
            rasa_url=env.get("RASA_URL", "").strip(),
            rasa_token=env.get("RASA_TOKEN", "").strip(),
            bot_timeout_seconds=float(env.get("BOT_TIMEOUT_SECONDS", 5.0)),
            bot_channels=tuple(c.strip() for c in env.get("BOT_CHANNELS", "chat").split(",") if c.strip()),
            redis_prefix=env.get("REDIS_PREFIX", cls.redis_prefix),
            public_base_url=env.get("PUBLIC_BASE_URL", "").strip().rstrip("/"),
            media_dir=env.get("MEDIA_DIR", cls.media_dir),
            media_max_bytes=int(env.get("MEDIA_MAX_BYTES", cls.media_max_bytes)),
            twilio_standin=_bool(env.get("TWILIO_STANDIN"), False),
            webchat_message_burst=webchat_rate_limit(env)[0],
            webchat_messages_per_second=webchat_rate_limit(env)[1],
            trusted_proxies=tuple(p.strip() for p in env.get("TRUSTED_PROXIES", "").split(",") if p.strip()),
            login_max_failures=int(env.get("LOGIN_MAX_FAILURES") or cls.login_max_failures),
            login_lockout_failures=int(env.get("LOGIN_LOCKOUT_FAILURES") or cls.login_lockout_failures),
            login_address_max_failures=int(env.get("LOGIN_ADDRESS_MAX_FAILURES") or cls.login_address_max_failures),
            login_address_lockout_failures=int(env.get("LOGIN_ADDRESS_LOCKOUT_FAILURES") or cls.login_address_lockout_failures),
            login_lockout_seconds=int(env.get("LOGIN_LOCKOUT_SECONDS") or cls.login_lockout_seconds),
            extra={k: v for k, v in env.items() if k.startswith(("TWILIO_", "VOICE_", "EMAIL_", "SMTP_", "IMAP_", "CALLBACK_", "COBROWSE_")) or k in ("MEDIA_MAX_BYTES",)},
        )

    def with_generated_secrets(self) -> "Settings":
        """Return settings where missing secrets are replaced by fresh random ones (embedded mode)."""
        from dataclasses import replace

        tokens = self.service_tokens or (secrets.token_urlsafe(32),)
        secret = self.session_secret or secrets.token_urlsafe(48)
        node = self.node_name or f"{socket.gethostname()}-{os.getpid()}"
        return replace(self, service_tokens=tokens, session_secret=secret, node_name=node)

    def sqlite_path(self) -> Path | None:
        """The SQLite file this configuration writes to, if any."""
        prefix = "sqlite+aiosqlite:///"
        if self.database_url.startswith(prefix):
            rest = self.database_url[len(prefix):]
            return None if rest in ("", ":memory:") else Path(rest)
        return None
