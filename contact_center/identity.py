"""Signed identity of a logged-in shop customer on the chat widget (``docs/security.md``, "Who the customer is").

The shop's server, which knows who is logged in, signs the customer's id (and email) with a secret it shares
with the hub, ``WIDGET_IDENTITY_SECRET``; the widget passes the token in its Socket.IO connect ``auth`` as
``identity``; the hub believes the customer id only when the signature holds and the token has not expired.

The token is compact and URL-safe::

    base64url(payload JSON) "." base64url(HMAC-SHA256(secret, base64url(payload JSON)))

(base64url without ``=`` padding). The payload is a JSON object: ``customer_id`` (a positive integer, the hub's
customer id), ``email`` (optional, text), ``exp`` (Unix seconds, required: the token is refused at and after
it) and optionally ``iat``. The MAC is over the *encoded* payload exactly as sent, so no JSON
canonicalisation is needed on either side. Refusals carry a code:

* ``identity_invalid``: not a token, a bad signature, a payload that is not as above, or a customer the hub
  does not know;
* ``identity_expired``: the signature holds but ``exp`` has passed (the shop signs a fresh one);
* ``identity_unavailable``: the hub has no ``WIDGET_IDENTITY_SECRET`` (nothing can be verified).

The dev route ``/dev/widget-identity`` signs tokens for the demo shop's "log in as a demo customer" switch. It
exists only with the demo data on (``DEMO_DATA``) and *no* ``WIDGET_IDENTITY_SECRET``: the hub then verifies
with a key derived from its session secret, which no real shop knows, so the route can never sign for a
real shop's key (the compose stack has ``DEMO_DATA=false`` and its proxy answers 404 under ``/dev/``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from aiohttp import web

log = logging.getLogger("contact_center.identity")

MAX_TOKEN_CHARS = 2048
MAX_LIFETIME_SECONDS = 7 * 24 * 3600  # a token whose exp is further away than this is refused (a signing bug)
DEV_TOKEN_SECONDS = 3600
DEV_PATH = "/dev/widget-identity"


class IdentityError(Exception):
    """A token the hub refuses: ``code`` for programs, the message for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message

    def as_connect_error(self) -> tuple[str, dict[str, str]]:
        """The arguments of the connect refusal: the client sees ``err.message`` and ``err.data = {code, message}``."""
        return self.message, {"code": self.code, "message": self.message}


@dataclass(frozen=True)
class Identity:
    """A verified customer: the hub's customer id, the email the shop vouched for, and when the token ends."""

    customer_id: int
    email: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or any(c not in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_" for c in text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, encoded_payload: str) -> bytes:
    return hmac.new(secret, encoded_payload.encode("ascii"), hashlib.sha256).digest()


def sign(secret: str | bytes, customer_id: int, email: str = "", *, expires_in: float = 3600, now: float | None = None) -> str:
    """A token for ``customer_id`` (and ``email``), valid ``expires_in`` seconds: what a shop's server does."""
    key = secret.encode() if isinstance(secret, str) else secret
    issued = int(time.time() if now is None else now)
    payload: dict[str, Any] = {"customer_id": int(customer_id), "exp": issued + int(math.ceil(expires_in)), "iat": issued}
    if email:
        payload["email"] = email
    encoded = _b64(json.dumps(payload, separators=(",", ":")).encode())
    return f"{encoded}.{_b64(_mac(key, encoded))}"


@dataclass(frozen=True)
class IdentityVerifier:
    """Checks widget identity tokens with the shared secret (None: the hub verifies nothing and refuses tokens)."""

    secret: bytes | None = field(default=None, repr=False)
    dev: bool = False  # the secret is the hub's own dev key (the /dev/widget-identity route signs with it)
    clock: Callable[[], float] = time.time

    @property
    def enabled(self) -> bool:
        return bool(self.secret)

    def sign(self, customer_id: int, email: str = "", expires_in: float = DEV_TOKEN_SECONDS) -> str:
        if not self.secret:
            raise IdentityError("identity_unavailable", "this hub has no WIDGET_IDENTITY_SECRET")
        return sign(self.secret, customer_id, email, expires_in=expires_in, now=self.clock())

    def verify(self, token: Any) -> Identity:
        """The identity a token vouches for, or :class:`IdentityError` (the MAC is compared in constant time,
        and checked before anything in the payload is believed)."""
        if not self.secret:
            raise IdentityError("identity_unavailable", "this chat cannot verify shop logins (no WIDGET_IDENTITY_SECRET)")
        invalid = IdentityError("identity_invalid", "the shop login could not be verified: log in to the shop again")
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise invalid
        encoded, _, sig = token.partition(".")
        try:
            given = _unb64(sig)
            _unb64(encoded)
        except (ValueError, binascii.Error):
            raise invalid from None
        if not hmac.compare_digest(given, _mac(self.secret, encoded)):
            raise invalid
        try:
            payload = json.loads(_unb64(encoded))
        except (ValueError, binascii.Error, UnicodeDecodeError):
            raise invalid from None
        if not isinstance(payload, dict):
            raise invalid
        customer_id, exp, email = payload.get("customer_id"), payload.get("exp"), payload.get("email", "")
        if isinstance(customer_id, bool) or not isinstance(customer_id, int) or not 0 < customer_id < 2**62:
            raise invalid
        if isinstance(exp, bool) or not isinstance(exp, (int, float)) or not math.isfinite(exp):
            raise invalid
        if not isinstance(email, str) or len(email) > 320:
            raise invalid
        now = self.clock()
        if exp <= now:
            raise IdentityError("identity_expired", "the shop login has expired: reload the page to sign in to the chat again")
        if exp > now + MAX_LIFETIME_SECONDS:
            raise invalid
        return Identity(customer_id, email.strip(), int(exp))


def secret_from(settings: Any, env: Mapping[str, str] | None = None) -> str:
    """``WIDGET_IDENTITY_SECRET`` from the settings' ``extra`` first, then the environment."""
    env = os.environ if env is None else env
    extra = getattr(settings, "extra", {}) or {}
    return (extra.get("WIDGET_IDENTITY_SECRET") or env.get("WIDGET_IDENTITY_SECRET") or "").strip()


def verifier_for(settings: Any, env: Mapping[str, str] | None = None) -> IdentityVerifier:
    """The hub's verifier: the shop's secret when set; else, with the demo data on, a dev key derived from the
    session secret (only the dev route knows it); else none (every token is refused ``identity_unavailable``)."""
    secret = secret_from(settings, env)
    if secret:
        return IdentityVerifier(secret.encode())
    if getattr(settings, "demo_data", False) and getattr(settings, "session_secret", ""):
        derived = hmac.new(settings.session_secret.encode(), b"widget-identity-dev", hashlib.sha256).digest()
        return IdentityVerifier(derived, dev=True)
    return IdentityVerifier(None)


IDENTITY_KEY = web.AppKey("widget_identity", IdentityVerifier)


def add_identity_routes(app: web.Application, verifier: IdentityVerifier) -> None:
    """Keep the verifier at ``app[IDENTITY_KEY]``; mount the dev route only when the verifier is the dev key."""
    app[IDENTITY_KEY] = verifier
    if not verifier.dev:
        return

    async def demo_customers(request: web.Request) -> list[dict[str, Any]]:
        from sqlalchemy import func
        from sqlmodel import col, select

        from contact_center.keys import DB_KEY
        from crm_store.models import ContactPoint, Customer, Order

        async with request.app[DB_KEY].session() as s:
            with_orders = (
                select(Customer.id, Customer.display_name, func.count(col(Order.id)))
                .join(Order, col(Order.customer_id) == col(Customer.id))
                .where(col(Customer.merged_into_id).is_(None))
                .group_by(col(Customer.id), col(Customer.display_name))
                .order_by(col(Customer.id))
                .limit(5)
            )
            rows = (await s.exec(with_orders)).all()  # type: ignore[call-overload]
            out = []
            for cid, name, count in rows:
                email = (await s.exec(
                    select(ContactPoint.value).where(ContactPoint.customer_id == cid, ContactPoint.kind == "email").limit(1)
                )).first()
                out.append({"customer_id": cid, "display_name": name or f"Customer {cid}", "email": email or "", "orders": count})
            return out

    async def dev_identity(request: web.Request) -> web.Response:
        """GET: the demo customers one may log in as; POST {customer_id?}: a token for one (the first by default)."""
        customers = await demo_customers(request)
        if request.method == "GET":
            return web.json_response({"customers": customers}, headers={"Cache-Control": "no-store"})
        body: Any = {}
        if request.can_read_body:
            try:
                body = await request.json()
            except (ValueError, UnicodeDecodeError):
                body = None
        if not isinstance(body, dict):
            return web.json_response({"error": "bad_request", "message": "send a JSON object"}, status=400)
        wanted = body.get("customer_id")
        chosen = next((c for c in customers if wanted is None or c["customer_id"] == wanted), None)
        if chosen is None:
            return web.json_response({"error": "not_found", "message": "not one of the demo customers"}, status=404)
        token = verifier.sign(chosen["customer_id"], chosen["email"])
        log.info("dev identity token signed", extra={"customer_id": chosen["customer_id"]})
        return web.json_response({**chosen, "token": token, "expires_in": DEV_TOKEN_SECONDS}, headers={"Cache-Control": "no-store"})

    app.router.add_get(DEV_PATH, dev_identity)
    app.router.add_post(DEV_PATH, dev_identity)
