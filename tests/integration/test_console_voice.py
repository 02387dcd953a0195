"""The console's softphone settings: ``GET /console/voice/token`` (``contact_center/console_voice.py``).

A real app (SQLite) per case. With real Twilio Voice settings the hub mints a Twilio access token (checked
by decoding it with PyJWT and the API key's secret: issuer, subject, identity, VoiceGrant, at most an hour);
with the stand-in on it sends the stand-in's mode; with neither, "none" (with why, in words). An agent session
is required.
"""

from __future__ import annotations

import time
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import jwt
import pytest
from aiohttp.test_utils import TestServer

from contact_center.app import create_app
from contact_center.console_voice import IDENTITY, MAX_TTL, mint_token, voice_settings
from contact_center.keys import DB_KEY
from contact_center.settings import Settings
from crm_store.repositories import agents as agents_repo

PASSWORD = "pw-for-tests-123"
ACCOUNT = "AC" + "a1" * 16
KEY_SID = "SK" + "b2" * 16
SECRET = "api-key-secret-for-tests-0123456789"
APP_SID = "AP" + "c3" * 16
VOICE = {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_API_KEY_SID": KEY_SID, "TWILIO_API_KEY_SECRET": SECRET, "TWILIO_TWIML_APP_SID": APP_SID}
# what a real account's hub has beside them (the SMS channel's settings: nothing is sent in these tests)
MESSAGING = {"TWILIO_AUTH_TOKEN": "auth-token-for-tests", "TWILIO_NUMBERS": "+15005550006=support"}

Start = Callable[..., Awaitable[tuple[str, int]]]


@pytest.fixture(autouse=True)
def _no_voice_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's shell must not decide the mode: only the settings each case gives."""
    for name in (*VOICE, "TWILIO_VOICE_TOKEN_TTL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def start(tmp_path) -> AsyncIterator[Start]:  # type: ignore[no-untyped-def]
    """start(**settings) -> (base URL, agent id of "ann")."""
    servers: list[TestServer] = []

    async def run(**kw: object) -> tuple[str, int]:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path}/v{len(servers)}.db", service_tokens=("t",),
                            demo_data=False, session_secret="s" * 32, media_dir=str(tmp_path / "media"),
                            public_base_url="https://hub.example", **kw)  # type: ignore[arg-type]
        app = create_app(settings)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        async with app[DB_KEY].transaction() as s:
            ann = await agents_repo.create_agent(s, "ann", PASSWORD, display_name="Ann")
        assert ann.id is not None
        return str(server.make_url("")).rstrip("/"), ann.id

    yield run
    for server in servers:
        await server.close()


async def _token(base: str, *, login: bool = True) -> tuple[int, dict[str, Any], Any]:
    # PUBLIC_BASE_URL is https here, so the session cookie is Secure; the test reaches the hub over plain http on
    # loopback, as the TLS proxy in front of it would: the jar treats that origin as secure and sends the cookie
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        if login:
            r = await http.post(f"{base}/auth/login", json={"username": "ann", "password": PASSWORD})
            assert r.status == 200, await r.text()
        r = await http.get(f"{base}/console/voice/token")
        return r.status, await r.json(), r.headers


async def test_real_twilio_settings_mint_a_voice_access_token(start: Start) -> None:
    base, ann = await start(extra={**VOICE, **MESSAGING})
    before = int(time.time())
    status, body, headers = await _token(base)
    assert status == 200, body
    assert headers["Cache-Control"] == "no-store"
    assert body["mode"] == "twilio"
    assert body["identity"] == f"agent_{ann}"
    assert IDENTITY.fullmatch(str(body["identity"]))
    token = str(body["token"])

    # signed with the API key's secret (HS256), by the API key, for the account
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "HS256" and header["cty"] == "twilio-fpa;v=1"
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["iss"] == KEY_SID and claims["sub"] == ACCOUNT
    assert claims["jti"].startswith(f"{KEY_SID}-")
    assert claims["grants"]["identity"] == f"agent_{ann}"
    assert claims["grants"]["voice"] == {"incoming": {"allow": True}, "outgoing": {"application_sid": APP_SID}}
    # valid for an hour at most, from now; the console is told when it expires
    assert before <= claims["nbf"] <= int(time.time())
    assert claims["exp"] - claims["nbf"] == MAX_TTL == body["ttl"]
    assert body["expires_at"] == claims["exp"]
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another secret of thirty-two bytes!", algorithms=["HS256"])
    assert jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp", "nbf", "iss", "sub", "jti"]})


async def test_a_shorter_ttl_is_taken_and_a_longer_one_is_capped_at_an_hour(start: Start) -> None:
    base, _ = await start(extra={**VOICE, **MESSAGING, "TWILIO_VOICE_TOKEN_TTL": "900"})
    _, body, _ = await _token(base)
    claims = jwt.decode(str(body["token"]), SECRET, algorithms=["HS256"])
    assert claims["exp"] - claims["nbf"] == 900 == body["ttl"]

    voice, _ = voice_settings({**VOICE, "TWILIO_VOICE_TOKEN_TTL": "86400"}, {})
    assert voice is not None and voice.ttl == MAX_TTL
    voice, _ = voice_settings({**VOICE, "TWILIO_VOICE_TOKEN_TTL": "5"}, {})
    assert voice is not None and voice.ttl == 300
    token, expires_at = mint_token(voice, "agent_7", now=1_000_000)
    assert expires_at == 1_000_300
    assert SECRET not in repr(voice)


async def test_the_settings_may_come_from_the_environment(start: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in VOICE.items():
        monkeypatch.setenv(name, value)
    base, ann = await start()
    status, body, _ = await _token(base)
    assert status == 200 and body["mode"] == "twilio" and body["identity"] == f"agent_{ann}"


async def test_the_standin_gives_its_own_mode(start: Start) -> None:
    base, ann = await start(twilio_standin=True)
    status, body, headers = await _token(base)
    assert status == 200, body
    assert body == {"mode": "standin", "identity": f"agent_{ann}", "base": "/standin/twilio"}
    assert headers["Cache-Control"] == "no-store"
    # the stand-in's dev API for that client lives under that base
    async with aiohttp.ClientSession() as http:
        r = await http.get(f"{base}/standin/twilio/dev/clients/agent_{ann}")
        assert r.status in (200, 404)  # 404 until the stand-in serves the agents' legs (docs/subsystems/phone.md)


async def test_neither_twilio_nor_the_standin_means_no_softphone(start: Start) -> None:
    base, _ = await start()
    status, body, _ = await _token(base)
    assert status == 200
    assert body == {"mode": "none", "reason": "the hub has no Twilio Voice settings and no stand-in"}


async def test_incomplete_or_wrong_settings_say_what_is_missing(start: Start) -> None:
    partial = {k: v for k, v in VOICE.items() if k != "TWILIO_TWIML_APP_SID"}
    base, _ = await start(extra={**partial, **MESSAGING})
    _, body, _ = await _token(base)
    assert body["mode"] == "none"
    assert body["reason"] == "the hub's Twilio Voice settings are incomplete (TWILIO_TWIML_APP_SID not set)"
    assert "token" not in body

    voice, reason = voice_settings({**VOICE, "TWILIO_API_KEY_SID": "not-a-sid"}, {})
    assert voice is None and "TWILIO_API_KEY_SID" in reason


async def test_an_agent_session_is_required(start: Start) -> None:
    base, _ = await start(extra={**VOICE, **MESSAGING})
    status, body, _ = await _token(base, login=False)
    assert status == 401
    assert body["error"] == "unauthorized"
    assert "token" not in body


async def test_an_agent_may_take_calls_on_their_own_phone(start: Start) -> None:
    """Issue 14: the agent sets their own number (checked, kept in E.164) and the softphone's answer says "phone";
    a bad number is a 422 that says why; null gives the softphone back; a session is required."""
    base, ann = await start(twilio_standin=True)
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=[base])
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        r = await http.put(f"{base}/console/voice/phone", json={"phone_number": "+1 500 555 0123"})
        assert r.status == 401  # not logged in
        assert (await http.post(f"{base}/auth/login", json={"username": "ann", "password": PASSWORD})).status == 200
        headers = {"Origin": base}  # a browser's same-origin PUT
        for bad, why in (({"phone_number": "12"}, "phone_number: "), ({"phone_number": 5}, "must be text"),
                         ({"number": "+15005550123"}, "phone_number")):
            r = await http.put(f"{base}/console/voice/phone", json=bad, headers=headers)
            body = await r.json()
            assert r.status in (400, 422) and why in body["message"], body
        r = await http.put(f"{base}/console/voice/phone", json={"phone_number": "+1 500 555 0123"}, headers=headers)
        assert r.status == 200 and await r.json() == {"phone_number": "+15005550123"}
        r = await http.get(f"{base}/console/voice/token")
        assert await r.json() == {"mode": "phone", "identity": f"agent_{ann}", "number": "+15005550123"}
        r = await http.put(f"{base}/console/voice/phone", json={"phone_number": None}, headers=headers)
        assert r.status == 200 and await r.json() == {"phone_number": None}
        r = await http.get(f"{base}/console/voice/token")
        assert (await r.json())["mode"] == "standin"


def test_identities_are_what_twilio_accepts() -> None:
    voice, _ = voice_settings(VOICE, {})
    assert voice is not None
    for bad in ("agent 1", "agent-1", "", "a" * 122, "agent_1\n"):
        with pytest.raises(ValueError):
            mint_token(voice, bad)
    token, _ = mint_token(voice, "a" * 121)
    assert jwt.decode(token, SECRET, algorithms=["HS256"])["grants"]["identity"] == "a" * 121
