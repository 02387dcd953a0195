"""Agents (with hashed credentials, roles, skills, capacity) and queues."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Collection, Sequence

from sqlalchemy import delete

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.models import Agent, Queue, RevokedSession, utcnow
from crm_store.passwords import hash_password, needs_rehash, verify_password

ROLES = ("agent", "supervisor", "admin")
# A password check against this hash costs the same as a real one: no timing oracle for unknown users.
_DUMMY_HASH = hash_password("not-a-real-password")


async def create_agent(
    s: AsyncSession,
    username: str,
    password: str,
    *,
    display_name: str = "",
    role: str = "agent",
    skills: dict[str, int] | None = None,
    capacity: dict[str, int] | None = None,
) -> Agent:
    """Add an agent; the password is stored only as an Argon2id hash."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    if len(password) < 8:
        raise ValueError("password must be at least 8 characters")
    agent = Agent(
        username=username.strip().lower(),
        display_name=display_name or username,
        password_hash=await asyncio.to_thread(hash_password, password),
        role=role,
        skills=skills or {},
        capacity=capacity or {"chat": 3, "phone": 1, "email": 2, "sms": 4, "whatsapp": 4},
    )
    s.add(agent)
    await s.flush()
    return agent


async def get_agent_by_username(s: AsyncSession, username: str) -> Agent | None:
    """The agent with this login name."""
    return (await s.exec(select(Agent).where(Agent.username == username.strip().lower()))).first()


async def authenticate(s: AsyncSession, username: str, password: str) -> Agent | None:
    """The active agent whose credentials these are, or None (same cost either way).

    Argon2 is slow on purpose (~0.1-0.3 s of CPU): it runs in a worker thread, never on the event loop.
    """
    agent = await get_agent_by_username(s, username)
    if agent is None or not agent.active:
        await asyncio.to_thread(verify_password, _DUMMY_HASH, password)
        return None
    if not await asyncio.to_thread(verify_password, agent.password_hash, password):
        return None
    if needs_rehash(agent.password_hash):
        agent.password_hash = await asyncio.to_thread(hash_password, password)
        s.add(agent)
    return agent


async def list_agents(s: AsyncSession) -> Sequence[Agent]:
    """Every agent, by name."""
    return (await s.exec(select(Agent).order_by(col(Agent.username)))).all()


async def create_queue(
    s: AsyncSession,
    name: str,
    *,
    skills_required: list[str] | None = None,
    channels: list[str] | None = None,
    sl_target_seconds: int = 20,
    sl_target_ratio: float = 0.8,
    max_waiting: int = 50,
) -> Queue:
    """Add a queue with the skills it needs and its service-level target."""
    queue = Queue(
        name=name,
        skills_required=skills_required or [],
        channels=channels or ["chat", "phone", "email", "callback"],
        sl_target_seconds=sl_target_seconds,
        sl_target_ratio=sl_target_ratio,
        max_waiting=max_waiting,
    )
    s.add(queue)
    await s.flush()
    return queue


async def list_queues(s: AsyncSession) -> Sequence[Queue]:
    """Every queue, by name."""
    return (await s.exec(select(Queue).order_by(col(Queue.name)))).all()


async def revoke_session(s: AsyncSession, session_id: str, agent_id: int, expires_at: datetime) -> None:
    """Refuse this session from now on (until ``expires_at``, when its cookie dies anyway); forget expired ones."""
    now = utcnow()
    await s.execute(delete(RevokedSession).where(col(RevokedSession.expires_at) < now))
    if await s.get(RevokedSession, session_id) is None:
        s.add(RevokedSession(session_id=session_id, agent_id=agent_id, revoked_at=now, expires_at=expires_at))
        await s.flush()


async def sessions_revoked(s: AsyncSession, session_ids: Collection[str]) -> set[str]:
    """Which of these sessions were ended by logout (one read)."""
    if not session_ids:
        return set()
    rows = await s.exec(select(RevokedSession.session_id).where(col(RevokedSession.session_id).in_(list(session_ids))))
    return set(rows.all())
