"""Agent session cookies: signed, expiring, refreshed without changing the session; revocation via the gate."""

from __future__ import annotations

import asyncio

from contact_center.sessions import ABSOLUTE_TIMEOUT_SECONDS, IDLE_TIMEOUT_SECONDS, AgentSession, SessionGate, SessionSigner

T0 = 1_800_000_000.0


def _session(now: float = T0) -> AgentSession:
    return AgentSession.start(7, "alice", "Alice", "agent", now)


def test_a_cookie_round_trips_and_a_new_login_gets_a_new_id() -> None:
    signer = SessionSigner("secret-" * 5)
    session = _session()
    assert signer.load(signer.dump(session), T0 + 1) == session
    assert _session().session_id != session.session_id and len(session.session_id) >= 20


def test_forged_malformed_and_foreign_cookies_are_refused() -> None:
    signer, other = SessionSigner("secret-" * 5), SessionSigner("another-secret")
    value = signer.dump(_session())
    body, sig = value.split(".")
    assert signer.load(other.dump(_session()), T0) is None  # signed with another secret
    assert signer.load(body + "x." + sig, T0) is None  # body changed
    assert signer.load(value + "a", T0) is None
    for bad in (None, "", "no-dot", "a.b.c", "!!!.???"):
        assert signer.load(bad, T0) is None


def test_idle_and_absolute_timeouts_and_a_refresh_keeps_the_session() -> None:
    signer = SessionSigner("secret-" * 5)
    session = _session()
    assert signer.load(signer.dump(session), T0 + IDLE_TIMEOUT_SECONDS + 1) is None
    later = session.seen(T0 + IDLE_TIMEOUT_SECONDS - 10)
    assert later.session_id == session.session_id and later.issued_at == session.issued_at
    assert signer.load(signer.dump(later), T0 + IDLE_TIMEOUT_SECONDS + 1) == later  # the idle timer restarted
    stale = session.seen(T0 + ABSOLUTE_TIMEOUT_SECONDS)
    assert signer.load(signer.dump(stale), T0 + ABSOLUTE_TIMEOUT_SECONDS + 1) is None  # too old whatever the use
    assert session.expires_at == T0 + ABSOLUTE_TIMEOUT_SECONDS


def test_the_gate_refuses_an_ended_session_and_only_that_one() -> None:
    revoked: dict[str, tuple[int, float]] = {}

    async def revoked_among(ids: object) -> set[str]:
        return {i for i in ids if i in revoked}  # type: ignore[attr-defined]

    async def revoke(session_id: str, agent_id: int, expires_at: float) -> None:
        revoked[session_id] = (agent_id, expires_at)

    async def scenario() -> None:
        gate = SessionGate(SessionSigner("secret-" * 5), revoked_among, revoke)
        mine, other = _session(), _session()
        cookie, other_cookie = gate.dump(mine), gate.dump(other)
        assert await gate.load(cookie, T0 + 5) == mine
        await gate.end(mine)
        assert revoked == {mine.session_id: (7, mine.expires_at)}
        assert await gate.load(cookie, T0 + 6) is None  # and any copy of it
        assert await gate.load(gate.dump(mine.seen(T0 + 7)), T0 + 8) is None  # refreshed copies too
        assert await gate.load(other_cookie, T0 + 6) == other  # another login of the same agent lives on

    asyncio.run(scenario())


def test_the_gate_finds_the_sockets_of_ended_sessions_only() -> None:
    revoked: set[str] = set()
    asked: list[set[str]] = []

    async def revoked_among(ids: object) -> set[str]:
        asked.append(set(ids))  # type: ignore[call-overload]
        return revoked & set(ids)  # type: ignore[call-overload]

    async def revoke(session_id: str, agent_id: int, expires_at: float) -> None:
        revoked.add(session_id)

    async def scenario(gate: SessionGate) -> None:
        revoked.clear()
        out, kept, old = _session(), _session(), _session(T0 - ABSOLUTE_TIMEOUT_SECONDS + 60)
        assert await gate.ended_sockets(T0) == []
        gate.attach("/agent", "s1", out)
        gate.attach("/supervisor", "s2", out)
        gate.attach("/agent", "s3", kept)
        gate.attach("/agent", "s4", old)
        assert await gate.ended_sockets(T0) == []  # idle on HTTP for longer than the idle timeout does not count
        await gate.end(out)
        assert sorted(await gate.ended_sockets(T0)) == [("/agent", "s1"), ("/supervisor", "s2")]
        assert sorted(await gate.ended_sockets(T0 + 61)) == [("/agent", "s1"), ("/agent", "s4"), ("/supervisor", "s2")]
        gate.detach("/agent", "s1")
        gate.detach("/supervisor", "s2")
        gate.detach("/agent", "nope")  # unknown: nothing happens
        assert await gate.ended_sockets(T0 + 30) == []

    signer = SessionSigner("secret-" * 5)
    asyncio.run(scenario(SessionGate(signer, revoked_among, revoke)))
    assert asked and all(len(ids) <= 3 for ids in asked)  # one read for all the sockets' sessions
