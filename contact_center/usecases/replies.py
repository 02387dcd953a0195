"""An agent's replies and internal notes, and their typing indicator."""

from __future__ import annotations

from typing import Any

from contact_center.ports import NewMessage, TimelineNote
from contact_center.usecases import outbound
from contact_center.usecases.context import Hub
from contact_center.usecases.errors import MAX_TEXT, HubError, clean_text, client_id
from contact_center.usecases.views import message_json
from crm_store.domain.interactions import InteractionKind


async def reply(
    hub: Hub, agent: Any, conversation_id: Any, raw_client_id: Any, raw_text: Any, *, internal: bool = False,
    raw_media: Any = None, raw_cc: Any = None,
) -> dict[str, Any]:
    """Store an agent's reply (or internal note) and publish it; a resend returns the first copy.

    On a channel with an adapter (SMS, WhatsApp) the reply is refused before it is stored when the
    channel cannot carry it: the customer opted out, or the channel's reply window has closed. It is then
    delivered in the background; its delivery status follows in ``message_status`` events.
    """
    conv = await hub.assigned(agent, conversation_id)
    assert conv.id is not None
    spec = hub.channels.get(conv.channel)
    media = await outbound.media_attachments(hub, raw_media)
    if media and (spec is None or not spec.media):
        label = spec.label if spec is not None else conv.channel
        raise HubError("bad_request", f"files cannot be sent on {label} (on web chat: push a document, coming with co-browsing)")
    text = clean_text(raw_text, spec.max_text if spec else MAX_TEXT, allow_empty=bool(media) and not internal)
    cc = _copies(raw_cc, spec) if not internal else []
    if cc:
        media = [*media, {"type": "channel", "cc": cc}]
    cid = client_id(raw_client_id) if raw_client_id is not None else None
    if not internal and hub.is_live(spec) and not media:
        # a live channel: one append through the message log
        logged = await hub.repo.append_fast(conv.id, "agent", text, sender_id=str(agent.id), client_msg_id=cid)
        if logged is None:
            raise HubError("conflict", "this conversation is closed")
        payload = message_json(logged.message, agent.display_name)
        if logged.created:
            await outbound.publish(hub, conv.id, logged.assigned_agent_id or agent.id, payload, to_customer=spec)
        return payload
    if not internal:
        await outbound.check_can_send(hub, conv, spec)
    note = TimelineNote(InteractionKind.NOTE.value, conv.channel, text[:300], {}, agent_id=agent.id) if internal else None
    msg, created = await hub.repo.append(  # a note also goes on the customer's timeline, atomically
        conv.id, NewMessage("agent", text, sender_id=str(agent.id), internal=internal, attachments=media or None),  # type: ignore[arg-type]
        client_msg_id=cid, delivery_status=None if internal else hub.initial_status(spec), note=note,
    )
    payload = message_json(msg, agent.display_name)
    if created:
        await outbound.publish(hub, conv.id, conv.assigned_agent_id or agent.id, payload, to_customer=None if internal else spec)
    return payload


MAX_COPIES = 10


def _copies(raw: Any, spec: Any) -> list[str]:
    """The addresses an agent copies a reply to (email's CC): at most 10 plain addresses."""
    if raw is None or raw == []:
        return []
    if spec is None or not spec.rich_text:
        raise HubError("bad_request", f"copies (cc) cannot be sent on {spec.label if spec else 'this channel'}")
    if not isinstance(raw, list) or len(raw) > MAX_COPIES:
        raise HubError("bad_request", f"cc must be a list of at most {MAX_COPIES} addresses")
    out: list[str] = []
    for item in raw:
        if not isinstance(item, str) or not 3 <= len(item) <= 254 or "@" not in item or any(c in item for c in "\r\n,;<>\"\x00 "):
            raise HubError("bad_request", f"not an email address: {str(item)[:80]!r}")
        if item.lower() not in out:
            out.append(item.lower())
    return out


async def agent_typing(hub: Hub, agent: Any, conversation_id: Any, typing: bool) -> None:
    """Tell the customer the agent is typing."""
    conv = await hub.assigned(agent, conversation_id)
    assert conv.id is not None
    await hub.tell_customer(conv.channel, conv.id, "typing", {"typing": bool(typing), "agent_name": agent.display_name})
