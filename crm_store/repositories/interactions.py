"""Interactions (every touch on every channel) and the customer's timeline, newest first."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

from sqlalchemy import and_, or_
from sqlalchemy import select as sa_select

from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.domain.interactions import InteractionKind
from crm_store.models import Interaction, utcnow
from crm_store.repositories.pg import Reader


class BadCursor(ValueError):
    """A timeline page cursor that was not made by :func:`timeline`."""


@dataclass(frozen=True)
class TimelinePage:
    """One page of a customer's timeline and the cursor for the next (older) page."""

    items: Sequence[Any]  # read-only rows with the columns of Interaction
    next_cursor: str | None


def encode_cursor(item: Any) -> str:
    """An opaque cursor that points just after ``item``."""
    raw = f"{item.occurred_at.astimezone(timezone.utc).isoformat()}|{item.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, int]:
    """Read a cursor back into (time, id)."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        when, _, ident = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        return datetime.fromisoformat(when), int(ident)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadCursor("invalid timeline cursor") from exc


async def record_interaction(
    s: AsyncSession,
    customer_id: int,
    kind: InteractionKind | str,
    channel: str,
    summary: str = "",
    payload: dict[str, Any] | None = None,
    *,
    agent_id: int | None = None,
    conversation_id: int | None = None,
    order_id: int | None = None,
    occurred_at: datetime | None = None,
) -> Interaction:
    """Write one touch into the customer's record (in the caller's transaction)."""
    item = Interaction(
        customer_id=customer_id,
        kind=InteractionKind(kind),
        channel=channel,
        summary=summary[:500],
        payload=payload or {},
        agent_id=agent_id,
        conversation_id=conversation_id,
        order_id=order_id,
        occurred_at=occurred_at or utcnow(),
    )
    s.add(item)
    await s.flush()
    return item


async def timeline(
    s: Reader,
    customer_id: int,
    limit: int = 50,
    cursor: str | None = None,
    kinds: Sequence[str] | None = None,
) -> TimelinePage:
    """A page of the customer's interactions across all channels, newest first (keyset paginated)."""
    limit = max(1, min(limit, 200))
    t = Interaction.__table__  # type: ignore[attr-defined]
    query = sa_select(t).where(t.c.customer_id == customer_id)  # Core rows: a read view, no ORM hydration
    if kinds:
        query = query.where(t.c.kind.in_(list(kinds)))
    if cursor:
        when, ident = _decode_cursor(cursor)
        query = query.where(or_(t.c.occurred_at < when, and_(t.c.occurred_at == when, t.c.id < ident)))
    query = query.order_by(t.c.occurred_at.desc(), t.c.id.desc()).limit(limit + 1)
    rows = list((await s.execute(query)).all())
    more = len(rows) > limit
    rows = rows[:limit]
    return TimelinePage(rows, encode_cursor(rows[-1]) if more and rows else None)
