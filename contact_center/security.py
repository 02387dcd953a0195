"""The pages' and the HTTP API's defences: security headers, the same-origin rule for state-changing requests,
whether a request came over https, and the client's address behind a trusted proxy.

Two middlewares, installed by ``create_app`` (docs/security.md says why each rule is there):

* :func:`security_headers_middleware` puts the security headers on every answer: a Content-Security-Policy per
  kind of page (the console, the supervisor view, the demo shop, the dev pages, everything else), ``nosniff``,
  ``Referrer-Policy``, ``X-Frame-Options: DENY`` on the agents' pages, and HSTS when ``PUBLIC_BASE_URL`` is https.
  A header the handler set itself (the sandboxed email HTML, media downloads) is kept.
* :func:`same_origin_middleware` refuses a cross-site POST, PUT, PATCH or DELETE with 403 ``cross_origin``: the
  ``Origin`` must be this site (else, without ``Origin``, ``Sec-Fetch-Site`` must say same-origin, else the
  ``Referer`` must be this site). Provider webhooks, the Twilio stand-in, the dev pages, Socket.IO's transport and
  bearer-token callers are exempt (they are signed, local, checked by Socket.IO or carry no cookie).
"""

from __future__ import annotations

import base64
import hashlib
import html
import ipaddress
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Awaitable, Callable, Iterable
from urllib.parse import urlsplit

from aiohttp import web

from contact_center.api.errors import error_response
from contact_center.settings import Settings

log = logging.getLogger("contact_center.security")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Routes a browser session never uses, or that are authenticated otherwise (see same_origin_middleware).
CROSS_SITE_EXEMPT = ("/webhooks/", "/standin/", "/dev/", "/socket.io/")

# What Twilio's Voice JavaScript SDK (the console's softphone, softphone/twilio.js) reaches: its signalling
# (wss://voice-js.<edge>.twilio.com/signal), its insights (https://eventgw[.<edge>].twilio.com) and its sounds
# (https://sdk.twilio.com/js/client/sounds/..., played as <audio> or fetched).
TWILIO_CONNECT = ("https://*.twilio.com", "wss://*.twilio.com")
TWILIO_MEDIA = ("https://sdk.twilio.com",)

HSTS = "max-age=31536000"
REFERRER_POLICY = "strict-origin-when-cross-origin"

STATIC = Path(__file__).resolve().parent.parent / "agent_console" / "static"
_HANDLER_ATTR = re.compile(r"""\son[a-z]+\s*=\s*(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE)
_HOST = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of a URL, lower case, without the scheme's default port; None if it has none."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def inline_handler_hashes(page: Path) -> tuple[str, ...]:
    """CSP hash sources of the inline event-handler attributes of a page (``onerror="..."``), for ``'unsafe-hashes'``.

    The console's page has one (it shows "the console's script is missing" when the bundle is not built). Hashing
    the exact attribute text allows that handler and nothing else, unlike ``'unsafe-inline'``.
    """
    try:
        text = page.read_text(encoding="utf-8")
    except OSError:
        return ()
    out = []
    for match in _HANDLER_ATTR.finditer(text):
        code = html.unescape(match.group(1) if match.group(1) is not None else match.group(2))
        out.append("'sha256-" + base64.b64encode(hashlib.sha256(code.encode()).digest()).decode() + "'")
    return tuple(dict.fromkeys(out))


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """``TRUSTED_PROXIES``: addresses or CIDR blocks; raises ValueError naming a bad one."""
    nets: list[Network] = []
    for value in values:
        value = value.strip()
        if not value:
            continue
        try:
            nets.append(ipaddress.ip_network(value, strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {value!r} is not an IP address or a CIDR block") from None
    return tuple(nets)


@dataclass(frozen=True)
class SecurityConfig:
    """What the defences need from the settings.

    :param public_origin: the origin of ``PUBLIC_BASE_URL`` (a same-origin request may come from it).
    :param public_https: ``PUBLIC_BASE_URL`` is https: HSTS is sent and the session cookie is ``Secure``.
    :param trusted_proxies: peers whose ``X-Forwarded-Proto`` and ``X-Forwarded-For`` are believed.
    :param console_handler_hashes: the console page's inline handlers, allowed by hash.
    """

    public_origin: str | None = None
    public_https: bool = False
    trusted_proxies: tuple[Network, ...] = ()
    console_handler_hashes: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, static: Path = STATIC) -> "SecurityConfig":
        origin = origin_of(settings.public_base_url)
        return cls(
            public_origin=origin,
            public_https=bool(origin and origin.startswith("https://")),
            trusted_proxies=parse_networks(settings.trusted_proxies),
            console_handler_hashes=inline_handler_hashes(static / "console.html"),
        )

    def trusts(self, address: str | None) -> bool:
        """Whether ``address`` is one of the trusted proxies."""
        if not address or not self.trusted_proxies:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in net for net in self.trusted_proxies)


SECURITY_KEY = web.AppKey("security", SecurityConfig)


def _config(request: web.Request) -> SecurityConfig:
    config = request.app.get(SECURITY_KEY)
    return config if config is not None else SecurityConfig()


def _forwarded(request: web.Request, name: str) -> list[str]:
    """The comma-separated values of a forwarding header, all of its lines, in order."""
    return [v.strip() for line in request.headers.getall(name, []) for v in line.split(",") if v.strip()]


def is_https(request: web.Request) -> bool:
    """Whether the browser reached us over https: ``PUBLIC_BASE_URL`` is https, the connection is TLS, or a
    trusted proxy says so (``X-Forwarded-Proto: https``; the first value is the one the client used)."""
    config = _config(request)
    if config.public_https or request.secure:
        return True
    if config.trusts(request.remote):
        protos = _forwarded(request, "X-Forwarded-Proto")
        return bool(protos) and protos[0].lower() == "https"
    return False


def client_address(request: web.Request) -> str:
    """The client's IP address: the peer, or behind trusted proxies the nearest untrusted ``X-Forwarded-For`` entry.

    ``X-Forwarded-For`` is read from the right (nginx's ``$proxy_add_x_forwarded_for`` appends the peer it saw),
    skipping our own proxies; whatever the client wrote itself, further left, is never believed.
    """
    config = _config(request)
    peer = request.remote or "unknown"
    if not config.trusts(peer):
        return peer
    for hop in reversed(_forwarded(request, "X-Forwarded-For")):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer  # garbage in the chain: fall back to what we know
        if not config.trusts(hop):
            return hop
    return peer


def our_origins(request: web.Request) -> set[str]:
    """The origins a same-origin request of this hub comes from: this request's host (over the connection's
    scheme, and https when the browser used https: :func:`is_https`) and ``PUBLIC_BASE_URL``'s."""
    config = _config(request)
    schemes = {request.scheme} | ({"https"} if is_https(request) else set())
    out = set()
    host = request.host
    if host and _HOST.match(host):
        for scheme in schemes:
            mine = origin_of(f"{scheme}://{host}")
            if mine:
                out.add(mine)
    if config.public_origin:
        out.add(config.public_origin)
    return out


def cross_site_reason(request: web.Request) -> str | None:
    """Why a browser request is cross-site (a sentence), or None when it is same-origin or not from a browser.

    ``Origin`` decides when present (``null`` is never ours). Without it, ``Sec-Fetch-Site`` (``same-origin``,
    or ``none`` for what the user typed); without that, the ``Referer``'s origin. A request with none of the
    three is not a browser's (curl, a service, the tests) and carries no ambient authority to abuse.
    """
    origin = request.headers.get("Origin")
    if origin is not None:
        if origin_of(origin) in our_origins(request):
            return None
        return f"the request comes from another site (Origin: {origin[:100]})"
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        if site.strip().lower() in ("same-origin", "none"):
            return None
        return f"the request comes from another site (Sec-Fetch-Site: {site[:40]})"
    referer = request.headers.get("Referer")
    if referer:
        if origin_of(referer) in our_origins(request):
            return None
        return "the request comes from another site (Referer)"
    return None


def cross_origin_response(reason: str) -> web.Response:
    """403 ``cross_origin``."""
    return error_response(403, "cross_origin", f"refused: {reason}; state-changing requests must come from this site")


def same_origin_middleware(on_refusal: Callable[[], None] | None = None) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Refuse cross-site state-changing requests (POST, PUT, PATCH, DELETE) with 403 ``cross_origin``.

    Exempt: ``/webhooks/`` (providers, signature-verified), ``/standin/`` and ``/dev/`` (the local Twilio stand-in
    and dev pages, never behind the production proxy), ``/socket.io/`` (Socket.IO checks its own origins against
    ``ALLOWED_ORIGINS``; the widget is meant to be used from other sites), and requests with an
    ``Authorization: Bearer`` header (service callers: a browser cannot add that header to a cross-site request
    without a CORS preflight, which this hub never grants). ``on_refusal`` is called for each refusal (a counter).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in UNSAFE_METHODS and not request.path.startswith(CROSS_SITE_EXEMPT):
            auth = request.headers.get("Authorization", "")
            if not auth.lower().startswith("bearer "):
                reason = cross_site_reason(request)
                if reason is not None:
                    log.warning("refused a cross-site %s %s: %s", request.method, request.path, reason)
                    if on_refusal is not None:
                        on_refusal()
                    return cross_origin_response(reason)
        return await handler(request)

    return middleware


# ------------------------------------------------------------------------------------------- headers


def _ws_sources(request: web.Request) -> str:
    """``ws://host wss://host`` for this request's host (CSP 3 lets 'self' match them; older browsers need them)."""
    host = request.host
    if not host or not _HOST.match(host):
        return ""
    return f" ws://{host} wss://{host}"


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def console_csp(request: web.Request, config: SecurityConfig) -> str:
    """The agent console's policy: its own scripts and styles only, no inline script (its one inline handler is
    allowed by hash), no eval; Socket.IO to this host; Twilio's Voice SDK for the softphone; the sandboxed email
    frame from this host; never framed."""
    script = "script-src 'self'"
    if config.console_handler_hashes:
        script += " 'unsafe-hashes' " + " ".join(config.console_handler_hashes)
    return _join(
        "default-src 'self'",
        script,
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob: " + " ".join(TWILIO_MEDIA),
        "connect-src 'self'" + _ws_sources(request) + " " + " ".join(TWILIO_CONNECT + TWILIO_MEDIA),
        "frame-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )


def supervisor_csp(request: web.Request, config: SecurityConfig) -> str:
    """The supervisor view's policy: its own scripts and styles, Socket.IO to this host, never framed."""
    return _join(
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'" + _ws_sources(request),
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )


def shop_csp(request: web.Request, config: SecurityConfig) -> str:
    """The demo shop's policy: scripts from this host only (shop.js, the widget, Socket.IO's client); inline
    styles allowed, because the chat widget puts its stylesheet in a ``<style>`` element of the host page (so any
    shop embedding it needs the same, or the widget's hash)."""
    return _join(
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "connect-src 'self'" + _ws_sources(request),
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    )


def dev_csp(request: web.Request, config: SecurityConfig) -> str:
    """The local dev pages (``/dev/phone``, ``/dev/mail``): scripts from this host; their markup has inline styles."""
    return _join(
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'" + _ws_sources(request),
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )


# Everything that is not one of the pages: JSON, static files, media, Socket.IO. Nothing in them may run or load
# anything if a browser is ever tricked into rendering one as a document.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"


def page_kind(path: str) -> str:
    """Which policy a path gets: ``console``, ``supervisor``, ``shop``, ``dev`` or ``other``."""
    if path in ("/console", "/console/"):
        return "console"
    if path in ("/supervisor", "/supervisor/"):
        return "supervisor"
    if path in ("/", "/shop", "/shop/"):
        return "shop"
    if path.startswith("/dev/"):
        return "dev"
    return "other"


POLICIES: dict[str, Callable[[web.Request, SecurityConfig], str]] = {
    "console": console_csp,
    "supervisor": supervisor_csp,
    "shop": shop_csp,
    "dev": dev_csp,
}
NEVER_FRAMED = frozenset({"console", "supervisor", "dev"})


def apply_security_headers(request: web.Request, headers: "web.StreamResponse | web.HTTPException") -> None:
    """Add the security headers for ``request`` to a response (or an HTTP exception), keeping any it already has."""
    config = _config(request)
    h = headers.headers
    kind = page_kind(request.path)
    policy = POLICIES.get(kind)
    h.setdefault("Content-Security-Policy", policy(request, config) if policy else DEFAULT_CSP)
    if kind in NEVER_FRAMED:
        h.setdefault("X-Frame-Options", "DENY")
    h.setdefault("X-Content-Type-Options", "nosniff")
    h.setdefault("Referrer-Policy", REFERRER_POLICY)
    if config.public_https:
        h.setdefault("Strict-Transport-Security", HSTS)


def security_headers_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    """The one middleware that puts the security headers on every answer (see :func:`apply_security_headers`).

    Install it outermost, so the error middleware's JSON answers and 404s get them too. A response the handler
    already sent (a WebSocket) cannot take headers any more and is left alone.
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            apply_security_headers(request, exc)
            raise
        if not response.prepared:
            apply_security_headers(request, response)
        return response

    return middleware


__all__ = [
    "SECURITY_KEY", "SecurityConfig", "apply_security_headers", "client_address", "cross_origin_response",
    "cross_site_reason", "is_https", "origin_of", "our_origins", "page_kind", "same_origin_middleware",
    "security_headers_middleware",
]
