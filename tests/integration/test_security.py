"""The pages' and the API's defences (``contact_center/security.py``, the login in ``contact_center/web.py``,
``contact_center/login_throttle.py``), through a real app on SQLite.

Security headers per path, HSTS only when ``PUBLIC_BASE_URL`` is https, the session cookie ``Secure`` over https
(also from a trusted proxy's ``X-Forwarded-Proto``, never from anyone else's), JSON-only login (415), the
same-origin rule on state-changing routes (403 ``cross_origin``) and its exemptions, the login throttle (429 with
Retry-After, a lockout an admin lifts), an unknown user checked against the dummy hash, and the counters.
"""

from __future__ import annotations

import logging
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from contact_center.app import create_app
from contact_center.keys import DB_KEY
from contact_center.login_throttle import THROTTLE_KEY
from contact_center.settings import Settings
from crm_store.repositories import agents as agents_repo

PASSWORD = "pw-for-security-tests"
_RUNNING: dict[str, Any] = {}  # base URL -> the running app (to reach its throttle's clock)
Start = Callable[..., Awaitable[str]]


@pytest.fixture
async def start(tmp_path) -> AsyncIterator[Start]:  # type: ignore[no-untyped-def]
    """start(**settings) -> base URL of a running hub with agents ann (agent) and root (admin)."""
    servers: list[TestServer] = []

    async def run(**kw: Any) -> str:
        settings = Settings(**{
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/s{len(servers)}.db", "service_tokens": ("svc-token",),
            "demo_data": False, "session_secret": "s" * 32, "media_dir": str(tmp_path / "media"), **kw,
        })
        app = create_app(settings)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        base = str(server.make_url("")).rstrip("/")
        _RUNNING[base] = app
        async with app[DB_KEY].transaction() as s:
            await agents_repo.create_agent(s, "ann", PASSWORD, display_name="Ann")
            await agents_repo.create_agent(s, "root", PASSWORD, display_name="Root", role="admin")
        return base

    yield run
    for server in servers:
        await server.close()
    _RUNNING.clear()


async def _login(http: aiohttp.ClientSession, base: str, username: str = "ann", password: str = PASSWORD,
                 **headers: str) -> aiohttp.ClientResponse:
    return await http.post(f"{base}/auth/login", json={"username": username, "password": password}, headers=headers)


# ------------------------------------------------------------------------------------------- headers


async def test_every_answer_carries_the_security_headers_and_each_page_its_own_policy(start: Start) -> None:
    base = await start()
    async with _session() as http:
        assert (await _login(http, base, username="root")).status == 200  # an admin sees /supervisor
        seen: dict[str, Any] = {}
        for path in ("/console", "/supervisor", "/shop", "/", "/static/widget.js", "/api/products", "/healthz",
                     "/no/such/page", "/auth/me"):
            r = await http.get(base + path, allow_redirects=False)
            assert r.status < 300 or path == "/no/such/page", (path, r.status)
            seen[path] = r.headers
            assert r.headers["X-Content-Type-Options"] == "nosniff", path
            assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin", path
            assert "Content-Security-Policy" in r.headers, path
            assert "Strict-Transport-Security" not in r.headers, path  # PUBLIC_BASE_URL is not https

    for page in ("/console", "/supervisor"):
        csp = _csp(seen[page]["Content-Security-Policy"])
        assert seen[page]["X-Frame-Options"] == "DENY"
        assert csp["frame-ancestors"] == ["'none'"]
        assert csp["default-src"] == ["'self'"]
        assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
        assert csp["style-src"] == ["'self'"]  # no inline styles on the agents' pages
        assert csp["object-src"] == ["'none'"] and csp["base-uri"] == ["'none'"]
        host = base.removeprefix("http://")
        assert f"ws://{host}" in csp["connect-src"] and f"wss://{host}" in csp["connect-src"]
    console = _csp(seen["/console"]["Content-Security-Policy"])
    # the softphone: Twilio's Voice SDK signalling, insights and sounds
    assert {"wss://*.twilio.com", "https://*.twilio.com"} <= set(console["connect-src"])
    assert "https://sdk.twilio.com" in console["media-src"]
    # the one inline handler of console.html (the "bundle missing" notice) is allowed by its hash, nothing else
    assert "'unsafe-hashes'" in console["script-src"]
    assert all(s == "'self'" or s == "'unsafe-hashes'" or s.startswith("'sha256-") for s in console["script-src"])
    assert "twilio" not in seen["/supervisor"]["Content-Security-Policy"]

    shop = _csp(seen["/shop"]["Content-Security-Policy"])
    assert shop["script-src"] == ["'self'"]  # the shop's script is /static/shop.js now
    assert "'unsafe-inline'" in shop["style-src"]  # the widget puts its stylesheet in a <style> of the host page
    assert seen["/"]["Content-Security-Policy"] == seen["/shop"]["Content-Security-Policy"]
    assert "X-Frame-Options" not in seen["/shop"]

    for other in ("/static/widget.js", "/api/products", "/healthz", "/no/such/page", "/auth/me"):
        assert _csp(seen[other]["Content-Security-Policy"])["default-src"] == ["'none'"], other
    assert seen["/static/widget.js"]["Content-Type"].startswith(("application/javascript", "text/javascript"))


async def test_a_handlers_own_policy_is_kept(start: Start, tmp_path) -> None:  # type: ignore[no-untyped-def]
    base = await start()
    async with _session() as http:
        assert (await _login(http, base)).status == 200
        form = aiohttp.FormData()
        form.add_field("file", b"%PDF-1.4\n%%EOF\n", filename="a.pdf", content_type="application/pdf")
        up = await http.post(f"{base}/console/media", data=form)
        assert up.status == 201, await up.text()
        r = await http.get(base + (await up.json())["url"])
        assert r.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"
        assert r.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"


async def test_hsts_only_when_the_public_url_is_https(start: Start) -> None:
    plain = await start(public_base_url="http://hub.example")
    tls = await start(public_base_url="https://hub.example")
    async with _session() as http:
        assert "Strict-Transport-Security" not in (await http.get(plain + "/console")).headers
        for path in ("/console", "/api/products", "/shop"):
            r = await http.get(tls + path)
            assert r.headers["Strict-Transport-Security"] == "max-age=31536000", path


# ------------------------------------------------------------------------------------------- the cookie


def _cookie_flags(resp: aiohttp.ClientResponse) -> str:
    raw = [v for v in resp.headers.getall("Set-Cookie", []) if v.startswith("cc_session=")]
    assert raw, resp.headers
    return raw[0].lower()


async def test_the_session_cookie_is_secure_only_over_https(start: Start) -> None:
    plain = await start()
    tls = await start(public_base_url="https://hub.example")
    proxied = await start(trusted_proxies=("127.0.0.1",))
    async with _session() as http:
        flags = _cookie_flags(await _login(http, plain))
        assert "httponly" in flags and "samesite=strict" in flags and "; secure" not in flags
        # anyone can write X-Forwarded-Proto: believed only from a trusted proxy
        assert "; secure" not in _cookie_flags(await _login(http, plain, **{"X-Forwarded-Proto": "https"}))
        assert "; secure" in _cookie_flags(await _login(http, tls))
        assert "; secure" in _cookie_flags(await _login(http, proxied, **{"X-Forwarded-Proto": "https"}))
        assert "; secure" not in _cookie_flags(await _login(http, proxied, **{"X-Forwarded-Proto": "http"}))
        # /auth/me refreshes the cookie with the same flags
        me = await http.get(f"{proxied}/auth/me", headers={"X-Forwarded-Proto": "https"})
        assert "; secure" in _cookie_flags(me)


# ------------------------------------------------------------------------------------------- login: JSON, origin


async def test_login_takes_json_only(start: Start) -> None:
    base = await start()
    async with _session() as http:
        body = f'{{"username": "ann", "password": "{PASSWORD}"}}'
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
            r = await http.post(f"{base}/auth/login", data=body, headers={"Content-Type": content_type})
            assert r.status == 415, content_type
            answer = await r.json()
            assert answer["error"] == "unsupported_media_type" and "JSON" in answer["message"]
            assert "cc_session" not in r.cookies
        r = await http.post(f"{base}/auth/login", data=body, headers={"Content-Type": "application/json; charset=utf-8"})
        assert r.status == 200


async def test_login_from_another_origin_is_refused(start: Start) -> None:
    base = await start(public_base_url="https://hub.example")
    async with _session() as http:
        r = await _login(http, base, Origin="https://evil.example")
        assert r.status == 403 and (await r.json())["error"] == "cross_origin"
        assert "cc_session" not in r.cookies
        r = await _login(http, base, Origin="null")
        assert r.status == 403
        # a form from another site (text/plain, foreign Origin): refused before anything else
        r = await http.post(f"{base}/auth/login", data="x", headers={"Content-Type": "text/plain", "Origin": "https://evil.example"})
        assert r.status == 403
        # same origin: the request's host, or PUBLIC_BASE_URL's origin
        assert (await _login(http, base, Origin=base)).status == 200
        assert (await _login(http, base, Origin="https://hub.example")).status == 200
        assert (await _login(http, base, Origin="https://hub.example:443")).status == 200
        # another port or scheme of the same host is another origin
        assert (await _login(http, base, Origin=base.rsplit(":", 1)[0] + ":1")).status == 403
        assert (await _login(http, base, Origin="http://hub.example")).status == 403


# ------------------------------------------------------------------------------------------- CSRF on every route


async def test_state_changing_routes_refuse_cross_site_requests(start: Start) -> None:
    base = await start()
    evil = {"Origin": "https://evil.example"}
    async with _session() as http:
        assert (await _login(http, base)).status == 200
        for method, path, kw in (
            ("POST", "/auth/logout", {}),
            ("POST", "/console/customers/1/contact-points", {"json": {"kind": "phone", "address": "+15551230000"}}),
            ("POST", "/console/media", {"data": b"x"}),
            ("POST", "/api/orders", {"json": {}}),
            ("POST", "/auth/lockouts/clear", {"json": {"username": "ann"}}),
        ):
            r = await http.request(method, base + path, headers=evil, **kw)
            assert r.status == 403, (path, await r.text())
            assert (await r.json())["error"] == "cross_origin"
            # without Origin: Sec-Fetch-Site decides, then the Referer
            r = await http.request(method, base + path, headers={"Sec-Fetch-Site": "cross-site"}, **kw)
            assert r.status == 403, path
            r = await http.request(method, base + path, headers={"Sec-Fetch-Site": "same-site"}, **kw)
            assert r.status == 403, path  # a sibling subdomain is same-site but not same-origin
            r = await http.request(method, base + path, headers={"Referer": "https://evil.example/page"}, **kw)
            assert r.status == 403, path
        # still logged in: the refused logout did nothing
        assert (await http.get(f"{base}/auth/me")).status == 200
        # same-origin requests go through
        assert (await http.post(f"{base}/auth/logout", headers={"Origin": base, "Sec-Fetch-Site": "same-origin"})).status == 200
        assert (await _login(http, base, **{"Sec-Fetch-Site": "same-origin"})).status == 200
        assert (await _login(http, base, Referer=base + "/console")).status == 200
        # GET is never refused (nothing changes)
        assert (await http.get(f"{base}/auth/me", headers=evil)).status == 200


async def test_webhooks_bearer_callers_and_socketio_are_exempt(start: Start) -> None:
    base = await start()
    evil = {"Origin": "https://evil.example"}
    async with _session() as http:
        # a service caller with its token (no cookie): the API answers, whatever Origin says
        r = await http.post(f"{base}/api/orders/quote", json={}, headers={**evil, "Authorization": "Bearer svc-token"})
        assert r.status != 403, await r.text()
        # provider webhooks are signature-checked by their adapter, not refused as cross-site (no route here: 404)
        r = await http.post(f"{base}/webhooks/twilio/messaging", data={"Body": "x"}, headers=evil)
        assert r.status == 404
        r = await http.post(f"{base}/socket.io/?EIO=4&transport=polling", data="x", headers=evil)
        assert "cross_origin" not in await r.text()


# ------------------------------------------------------------------------------------------- the throttle


async def test_failed_logins_are_throttled_then_locked_and_an_admin_lifts_the_lock(start: Start, caplog: pytest.LogCaptureFixture) -> None:
    base = await start(login_max_failures=3, login_lockout_failures=5)
    caplog.set_level(logging.WARNING, logger="contact_center.web")
    async with _session() as http:
        for _ in range(3):
            assert (await _login(http, base, password="wrong-guess")).status == 401
        r = await _login(http, base)  # the right password, but the account must wait now
        assert r.status == 429
        answer = await r.json()
        assert answer["error"] == "login_throttled" and answer["scope"] == "account"
        assert 1 <= int(r.headers["Retry-After"]) <= 15 and answer["retry_after"] == int(r.headers["Retry-After"])
        assert "cc_session" not in r.cookies

        # the wait is over (the test moves the throttle's clock): failures 4 and 5; the 5th locks the account
        throttle = _throttle_of(base)
        clock = _Clock()
        throttle.clock = clock
        clock.now += 20
        assert (await _login(http, base, password="wrong-again")).status == 401
        clock.now += 40
        assert (await _login(http, base, password="wrong-again")).status == 401
        clock.now += 100
        r = await _login(http, base)
        assert r.status == 429 and (await r.json())["error"] == "login_locked"
        assert 3400 <= int(r.headers["Retry-After"]) <= 3600  # LOGIN_LOCKOUT_SECONDS, unless lifted earlier
        assert "an administrator can unlock it" in (await r.json())["message"]

        # only an admin may see and lift the lock
        assert (await http.get(f"{base}/auth/lockouts")).status == 401
        async with _session() as admin:
            assert (await _login(admin, base, username="root")).status == 200
            listed = await (await admin.get(f"{base}/auth/lockouts")).json()
            assert {"scope": "account", "value": "ann"} == {k: listed["lockouts"][0][k] for k in ("scope", "value")}
            r = await admin.post(f"{base}/auth/lockouts/clear", json={"username": "Ann"})
            assert r.status == 200 and (await r.json())["cleared"] == ["account:ann"]
        r = await _login(http, base)
        assert r.status == 200
        # an agent is not an admin
        assert (await http.post(f"{base}/auth/lockouts/clear", json={"username": "ann"})).status == 403
        assert (await http.get(f"{base}/auth/lockouts")).status == 403

        text = await (await http.get(f"{base}/metrics")).text()
    assert 'cc_login_failures_total{reason="credentials"} 5.0' in text
    assert 'cc_login_failures_total{reason="throttled"} 1.0' in text
    assert 'cc_login_failures_total{reason="locked"} 1.0' in text
    assert 'cc_login_lockouts_total{scope="account"} 1.0' in text
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "login failed: user 'ann'" in logged and "locked: account" in logged
    assert "wrong-guess" not in logged and "wrong-again" not in logged and PASSWORD not in logged


async def test_failures_from_one_address_throttle_every_account_it_tries(start: Start) -> None:
    base = await start(login_address_max_failures=4)
    async with _session() as http:
        for i in range(4):  # password spraying: one guess per account
            assert (await _login(http, base, username=f"user{i}", password="Summer2024!")).status == 401
        r = await _login(http, base)
        assert r.status == 429 and (await r.json())["scope"] == "address"
        assert "Retry-After" in r.headers


async def test_a_trusted_proxys_client_address_is_the_one_throttled(start: Start) -> None:
    base = await start(login_address_max_failures=2, trusted_proxies=("127.0.0.0/8",))
    async with _session() as http:
        for _ in range(2):
            r = await _login(http, base, username="nobody", password="x", **{"X-Forwarded-For": "198.51.100.7"})
            assert r.status == 401
        r = await _login(http, base, **{"X-Forwarded-For": "198.51.100.7"})
        assert r.status == 429 and (await r.json())["scope"] == "address"
        # another client behind the same proxy is not held up (a spoofed left-most entry changes nothing)
        r = await _login(http, base, **{"X-Forwarded-For": "198.51.100.7, 203.0.113.9"})
        assert r.status == 200


async def test_an_unknown_user_gets_the_same_answer_after_the_same_password_check(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    base = await start()
    checked: list[str] = []
    real = agents_repo.verify_password

    def spy(password_hash: str, password: str) -> bool:
        checked.append(password_hash)
        return real(password_hash, password)

    monkeypatch.setattr(agents_repo, "verify_password", spy)
    async with _session() as http:
        wrong = await _login(http, base, password="not-it")
        unknown = await _login(http, base, username="nobody-here", password="not-it")
        assert wrong.status == unknown.status == 401
        assert await wrong.json() == await unknown.json() == {"error": "unauthorized", "message": "wrong username or password"}
    assert len(checked) == 2
    assert checked[0] != agents_repo._DUMMY_HASH  # ann's own hash
    assert checked[1] == agents_repo._DUMMY_HASH  # an Argon2 check of the same cost for the unknown user


# ------------------------------------------------------------------------------------------- helpers


def _session() -> aiohttp.ClientSession:
    """A client that keeps cookies of an IP-address host (the test server's 127.0.0.1)."""
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


class _Clock:
    def __init__(self) -> None:
        import time

        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _throttle_of(base: str) -> Any:
    return _RUNNING[base][THROTTLE_KEY]


def _csp(value: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in value.split(";"):
        words = part.split()
        if words:
            out[words[0]] = words[1:]
    return out
