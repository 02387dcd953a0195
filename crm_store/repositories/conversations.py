"""Conversations and their messages: idempotent append with a strictly increasing sequence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from crm_store.db import conflict_insert
from crm_store.models import Conversation, Message, utcnow


class ConversationNotFound(LookupError):
    """No conversation has this id."""


@dataclass(frozen=True)
class Appended:
    """A stored message and whether this call stored it (False: a resend of an earlier one)."""

    message: Message
    created: bool


async def open_conversation(
    s: AsyncSession, customer_id: int, channel: str, *, subject: str = "", queue_id: int | None = None,
    thread_key: str | None = None, customer_address: str = "", our_address: str = "",
) -> Conversation:
    """Start a conversation with a customer on a channel (a thread key for per-thread and per-call channels)."""
    conv = Conversation(
        customer_id=customer_id, channel=channel, subject=subject[:300], queue_id=queue_id, thread_key=thread_key,
        customer_address=customer_address[:254], our_address=our_address[:254],
    )
    s.add(conv)
    await s.flush()
    return conv


async def find_thread(s: AsyncSession, channel: str, thread_key: str) -> Conversation | None:
    """The conversation of a thread (an email thread, a call) on a channel, open or closed."""
    stmt = select(Conversation).where(Conversation.channel == channel, Conversation.thread_key == thread_key)
    return (await s.exec(stmt)).first()


async def message_by_provider_id(s: AsyncSession, provider_id: str) -> Message | None:
    """The message a provider knows by this id (an inbound MessageSid, or the SID of one we sent)."""
    return (await s.exec(select(Message).where(Message.provider_id == provider_id))).first()


async def message_at(s: AsyncSession, conversation_id: int, seq: int) -> Message | None:
    """The message with this sequence number in a conversation, if any."""
    stmt = select(Message).where(Message.conversation_id == conversation_id, Message.seq == seq)
    return (await s.exec(stmt)).first()


async def last_customer_message_at(s: AsyncSession, conversation_id: int) -> Any:
    """When the customer last wrote in this conversation (None if never)."""
    stmt = (
        select(Message.created_at)
        .where(Message.conversation_id == conversation_id, Message.sender_kind == "customer")
        .order_by(col(Message.seq).desc())
        .limit(1)
    )
    return (await s.exec(stmt)).first()


async def find_open_conversation(s: AsyncSession, customer_id: int, channel: str) -> Conversation | None:
    """The customer's newest conversation on this channel that is not closed."""
    stmt = (
        select(Conversation)
        .where(
            Conversation.customer_id == customer_id,
            Conversation.channel == channel,
            Conversation.status != "closed",
        )
        .order_by(col(Conversation.id).desc())
    )
    return (await s.exec(stmt)).first()


async def find_message(s: AsyncSession, conversation_id: int, client_msg_id: str) -> Message | None:
    """The message stored in this conversation under this client message id, if any."""
    stmt = select(Message).where(Message.conversation_id == conversation_id, Message.client_msg_id == client_msg_id)
    return (await s.exec(stmt)).first()


async def append_message(
    s: AsyncSession,
    conversation_id: int,
    sender_kind: str,
    body: str,
    *,
    sender_id: str | None = None,
    client_msg_id: str | None = None,
    provider_id: str | None = None,
    attachments: list[dict[str, Any]] | None = None,
    internal: bool = False,
    delivery_status: str | None = None,
) -> Appended:
    """Store a message with the conversation's next sequence number; a resend returns the first copy.

    The sequence comes from an atomic ``UPDATE ... SET last_seq = last_seq + 1`` on the conversation
    row, so two writers never get the same number and the sequence has no gaps.

    A provider id already stored answers first (only that column's index can serve the lookup). A client
    id is checked by its unique index itself, in the insert, never by a lookup: on PostgreSQL a lookup by
    (conversation, client id) is a prepared statement whose generic plan, chosen while ``messages`` is small
    and without statistics, took the ``(conversation_id, seq)`` index and read the conversation's every
    message (20,000 index entries an append in a 20,000-message conversation, ~20 ms). On a conflict the
    insert rewrites the first copy unchanged (``ON CONFLICT ... DO UPDATE``) so that RETURNING gives it, and
    the number taken is given back.
    """
    if provider_id:
        earlier = (await s.exec(select(Message).where(Message.provider_id == provider_id))).first()
        if earlier is not None:
            return Appended(earlier, created=False)
    result = await s.execute(
        update(Conversation)
        .where(col(Conversation.id) == conversation_id)
        .values(last_seq=Conversation.last_seq + 1, updated_at=utcnow())
        .returning(Conversation.last_seq)
    )
    seq = result.scalar_one_or_none()
    if seq is None:
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    fields: dict[str, Any] = dict(
        conversation_id=conversation_id,
        seq=seq,
        sender_kind=sender_kind,
        sender_id=sender_id,
        body=body,
        client_msg_id=client_msg_id,
        provider_id=provider_id,
        attachments=attachments or [],
        internal=internal,
        delivery_status=delivery_status,
    )
    if client_msg_id is None:
        msg = Message(**fields)
        s.add(msg)
        await s.flush()
        return Appended(msg, created=True)
    insert = conflict_insert(s.get_bind().dialect.name)(Message).values(**fields, created_at=utcnow())
    stmt = insert.on_conflict_do_update(  # the first copy, rewritten unchanged, is what RETURNING gives on a resend
        index_elements=["conversation_id", "client_msg_id"], set_={"client_msg_id": insert.excluded.client_msg_id},
    ).returning(Message)
    stored = (await s.execute(stmt)).scalars().one()
    if stored.seq == seq:  # a first copy has a smaller number than the one just taken
        return Appended(stored, created=True)
    await s.execute(  # a resend: its number goes back (this transaction holds the conversation's row since the bump)
        update(Conversation)
        .where(col(Conversation.id) == conversation_id)
        .values(last_seq=Conversation.last_seq - 1)
    )
    return Appended(stored, created=False)


async def messages_after(
    s: AsyncSession, conversation_id: int, after_seq: int = 0, limit: int = 500, include_internal: bool = True
) -> Sequence[Message]:
    """Messages with a sequence number above ``after_seq``, in order (a reconnecting client's catch-up)."""
    stmt = select(Message).where(Message.conversation_id == conversation_id, col(Message.seq) > after_seq)
    if not include_internal:
        stmt = stmt.where(col(Message.internal).is_(False))
    return (await s.exec(stmt.order_by(col(Message.seq)).limit(max(1, min(limit, 1000))))).all()


@dataclass(frozen=True)
class Handoff:
    """A chat the bot handed to a person: the handoff note (with the bot's context) and the transcript."""

    conversation: Conversation
    note: Message  # the bot's internal note
    handoff: dict[str, Any]  # the note's attachment ``{"type": "handoff", "reason", "context"}``
    transcript: Sequence[Message]  # what the customer saw, in order (internal notes left out)


async def handoffs(s: AsyncSession, after_id: int = 0, limit: int = 100) -> list[Handoff]:
    """The bot's handoffs in the order they happened, after the handoff note ``after_id`` (a cursor)."""
    limit = max(1, min(limit, 500))
    out: list[Handoff] = []
    cursor = after_id
    while len(out) < limit:
        notes = (await s.exec(
            select(Message)
            .where(col(Message.id) > cursor, Message.sender_kind == "bot", col(Message.internal).is_(True))
            .order_by(col(Message.id)).limit(limit * 2)
        )).all()
        if not notes:
            break
        for note in notes:
            assert note.id is not None
            cursor = note.id
            handoff = next((a for a in note.attachments or () if isinstance(a, dict) and a.get("type") == "handoff"), None)
            if handoff is None:
                continue
            conv = await s.get(Conversation, note.conversation_id)
            if conv is None:
                continue
            transcript = await messages_after(s, note.conversation_id, 0, limit=1000, include_internal=False)
            out.append(Handoff(conv, note, handoff, transcript))
            if len(out) == limit:
                break
    return out
