"""The hub's conversation use cases behind one object, wired to SQL and Socket.IO.

:class:`HubService` is what the adapters (the Socket.IO namespaces, the Twilio webhooks, the supervisor
view) hold. It is the use cases' context (:class:`contact_center.usecases.context.Hub`) built on the SQL
repository (:mod:`contact_center.hub.sql`) and the Socket.IO notifier (:mod:`contact_center.sio_notifier`),
and each of its methods is one use case from ``contact_center/usecases/``: this module holds no rule.

Every write goes to SQL before anything is emitted, so a client that misses an emit gets the message
back from ``history`` (catch-up by sequence number). Routing state (queues, offers, presence) lives in
the :class:`~contact_center.ports.StateStore`; it is derived and can be rebuilt from SQL.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, Callable

from contact_center.channels import ChannelRegistry
from contact_center.ports import InboundEvent, InboundResult, StateStore
from contact_center.sio_notifier import Emitter, SocketIONotifier, room_agent, room_conv, room_monitor
from contact_center.usecases import (
    bot_turns,
    callbacks,
    calls,
    inbound,
    offers,
    outbound,
    rebuild,
    replies,
    router,
    supervision,
    transfer_close,
)
from contact_center.usecases.bot_turns import BOT_UNAVAILABLE_TEXT, Bot, BotDown, bot_payload, handoff_summary
from contact_center.usecases.context import OFFER_TIMEOUT_SECONDS, TIER_PRIORITY, Hub
from contact_center.usecases.errors import MAX_TEXT, HubError, clean_text, client_id
from contact_center.usecases.router import serving_agents, waiting_contacts
from contact_center.usecases.views import DEFAULT_AHT_SECONDS, message_json, queue_update
from contact_center.domain.conversations import DISPOSITIONS
from contact_center.hub.callbacks_sql import SqlCallbacks
from contact_center.hub.sql import SqlConversations
from crm_store.db import Database
from crm_store.message_log import MessageLog
from crm_store.point_reads import PointReads

__all__ = [
    "AgentRef", "BOT_UNAVAILABLE_TEXT", "Bot", "BotDown", "DEFAULT_AHT_SECONDS", "DISPOSITIONS", "Emitter", "HubError",
    "HubService", "MAX_TEXT", "OFFER_TIMEOUT_SECONDS", "TIER_PRIORITY", "bot_payload", "clean_text", "client_id",
    "handoff_summary", "message_json", "queue_update", "room_agent", "room_conv", "room_monitor", "serving_agents",
    "waiting_contacts",
]


@dataclass(frozen=True)
class AgentRef:
    """The logged-in agent performing an action."""

    id: int
    username: str
    display_name: str
    role: str


class HubService(Hub):
    """The hub's conversation use cases, shared by every channel adapter.

    :param db: the contact repository (truth).
    :param store: shared routing state (memory or Redis).
    :param emitter: the Socket.IO server (or anything with its ``emit`` and ``emit_many``).
    :param node: this process's name (for presence).
    :param messages: the message log of open conversations' hot path (default: the ORM's).
    :param reads: point reads of a returning customer's address.
    """

    def __init__(
        self,
        db: Database,
        store: StateStore,
        emitter: Emitter,
        *,
        node: str = "node-1",
        clock: Callable[[], float] = time.time,
        offer_timeout: float = OFFER_TIMEOUT_SECONDS,
        wrap_up_seconds: float = 10.0,
        messages: MessageLog | None = None,
        reads: PointReads | None = None,
        channels: ChannelRegistry | None = None,
        default_region: str = "US",
        public_base_url: str = "",
    ) -> None:
        self.db = db
        self.emitter = emitter
        super().__init__(
            SqlConversations(db, messages, reads), store, SocketIONotifier(emitter), channels=channels, node=node,
            clock=clock, offer_timeout=offer_timeout, wrap_up_seconds=wrap_up_seconds, default_region=default_region,
            public_base_url=public_base_url,
        )
        self.callbacks = SqlCallbacks(db)

    @property
    def reads(self) -> PointReads:
        """Cheap indexed reads for hot paths (a returning customer, a caller's latest open order)."""
        reads: PointReads = self.repo.reads  # type: ignore[attr-defined]
        return reads

    # the background tasks (the composition root cancels them at shutdown; tests wait for them)
    @property
    def _bot_tasks(self) -> set[asyncio.Task[None]]:
        return self.bot_tasks

    @property
    def _delivery_tasks(self) -> set[asyncio.Task[None]]:
        return self.delivery_tasks

    # --- set-up and rebuild --------------------------------------------------------------------
    async def load_queues(self) -> None:
        await rebuild.load_queues(self)

    def queue_names(self) -> list[str]:
        """The names of the queues a conversation can be transferred to."""
        return sorted(self.rules)

    async def rebuild_state(self) -> int:
        return await rebuild.rebuild_state(self)

    # --- inbound -------------------------------------------------------------------------------
    async def customer_session(self, visitor_id: str, name: str = "", email: str = "", last_seq: int = 0, *, channel: str | None = None) -> dict[str, Any]:
        return await inbound.customer_session(self, visitor_id, name, email, last_seq, channel=channel)

    async def session_of(self, customer: Any, last_seq: int = 0, *, channel: str | None = None) -> dict[str, Any]:
        """The ``session`` of a customer already identified (a signed widget identity names them)."""
        return await inbound.session_payload(self, customer, last_seq, self.live_channel(channel))

    async def identify_visitor(self, visitor_id: str, name: str = "", email: str = "", *, channel: str | None = None) -> Any:
        return await inbound.identify_visitor(self, visitor_id, name, email, channel=channel)

    async def customer_session_for(self, customer_id: int, *, channel: str | None = None) -> int | None:
        return await inbound.customer_session_for(self, customer_id, channel=channel)

    async def history(self, conversation_id: int, after_seq: int, *, for_customer: bool) -> list[dict[str, Any]]:
        return await inbound.history(self, conversation_id, after_seq, for_customer=for_customer)

    async def customer_message(
        self, customer_id: int, raw_client_id: Any, raw_text: Any, *, origin_sid: str | None = None, raw_payload: Any = None,
        channel: str | None = None,
    ) -> dict[str, Any]:
        return await inbound.customer_message(
            self, customer_id, raw_client_id, raw_text, origin_sid=origin_sid, raw_payload=raw_payload, channel=channel
        )

    async def receive_inbound(self, event: InboundEvent) -> InboundResult:
        return await inbound.receive_inbound(self, event)

    async def customer_typing(self, customer_id: int, typing: bool, *, channel: str | None = None) -> None:
        await inbound.customer_typing(self, customer_id, typing, channel=channel)

    async def opt_out(self, channel: str, customer_address: str, opted_out: bool) -> None:
        await inbound.opt_out(self, channel, customer_address, opted_out)

    async def address_undeliverable(self, channel: str, customer_address: str, reason: str) -> bool:
        return await inbound.address_undeliverable(self, channel, customer_address, reason)

    async def queue_info(self, conversation_id: int) -> dict[str, Any] | None:
        return await router.queue_info(self, conversation_id)

    # --- outbound ------------------------------------------------------------------------------
    async def delivery_update(
        self, channel: str, provider_id: str, status: str, error_code: str | None = None, error_message: str | None = None,
    ) -> bool:
        return await outbound.delivery_update(self, channel, provider_id, status, error_code, error_message)

    # --- the bot -------------------------------------------------------------------------------
    async def bot_turn(self, conversation_id: int, customer_id: int, text: str) -> None:
        await bot_turns.turn(self, conversation_id, customer_id, text)

    async def hand_over(self, conversation_id: int, reason: str, context: dict[str, Any]) -> bool:
        return await bot_turns.hand_over(self, conversation_id, reason, context)

    async def hand_back(self, agent: AgentRef, conversation_id: Any) -> dict[str, Any]:
        return await bot_turns.hand_back(self, agent, conversation_id)

    async def watch_bot(self, interval: float = 5.0) -> None:
        await bot_turns.watch_bot(self, interval)

    # --- agents and offers ---------------------------------------------------------------------
    async def agent_online(self, agent: AgentRef) -> dict[str, Any]:
        return await offers.agent_online(self, agent)

    async def agent_conversations(self, agent_id: int) -> list[dict[str, Any]]:
        return await offers.agent_conversations(self, agent_id)

    async def set_status(self, agent: AgentRef, status: Any) -> str:
        return await offers.set_status(self, agent, status)

    async def accept(self, agent: AgentRef, conversation_id: Any) -> dict[str, Any]:
        return await offers.accept(self, agent, conversation_id)

    async def decline(self, agent: AgentRef, conversation_id: Any) -> dict[str, Any]:
        return await offers.decline(self, agent, conversation_id)

    async def agent_gone(self, agent_id: int) -> int:
        return await offers.agent_gone(self, agent_id)

    async def _assigned(self, agent: AgentRef, conversation_id: Any) -> Any:
        return await self.assigned(agent, conversation_id)

    # --- replies, transfer, close ----------------------------------------------------------------
    async def reply(
        self, agent: AgentRef, conversation_id: Any, raw_client_id: Any, raw_text: Any, *, internal: bool = False,
        raw_media: Any = None, raw_cc: Any = None,
    ) -> dict[str, Any]:
        return await replies.reply(
            self, agent, conversation_id, raw_client_id, raw_text, internal=internal, raw_media=raw_media, raw_cc=raw_cc
        )

    async def agent_typing(self, agent: AgentRef, conversation_id: Any, typing: bool) -> None:
        await replies.agent_typing(self, agent, conversation_id, typing)

    async def close(self, agent: AgentRef, conversation_id: Any, disposition: Any, note: Any = "") -> None:
        await transfer_close.close(self, agent, conversation_id, disposition, note)

    async def transfer(self, agent: AgentRef, conversation_id: Any, *, queue: Any = None, to_agent: Any = None, note: Any = "") -> dict[str, Any]:
        return await transfer_close.transfer(self, agent, conversation_id, queue=queue, to_agent=to_agent, note=note)

    async def customer_left(self, customer_id: int, *, channel: str | None = None) -> bool:
        return await transfer_close.customer_left(self, customer_id, channel=channel)

    async def give_up_absent(self) -> int:
        return await transfer_close.give_up_absent(self)

    async def customer_seen(self, customer_id: int) -> None:
        await transfer_close.customer_seen(self, customer_id)

    async def customers_connected(self) -> None:
        await transfer_close.customers_connected(self)

    # --- supervisors ---------------------------------------------------------------------------
    async def supervisor_set_status(self, actor: AgentRef, agent_id: Any, status: Any) -> str:
        return await supervision.set_agent_status(self, actor, agent_id, status)

    async def reassign(self, actor: AgentRef, conversation_id: Any, *, to_agent: Any = None, to_queue: Any = None) -> dict[str, Any]:
        return await supervision.reassign(self, actor, conversation_id, to_agent=to_agent, to_queue=to_queue)

    async def whisper(self, actor: AgentRef, conversation_id: Any, raw_text: Any) -> dict[str, Any]:
        return await supervision.whisper(self, actor, conversation_id, raw_text)

    async def monitor(self, actor: AgentRef, conversation_id: Any, watcher: str) -> dict[str, Any]:
        return await supervision.monitor(self, actor, conversation_id, watcher)

    async def unmonitor(self, conversation_id: int, watcher: str) -> None:
        await supervision.unmonitor(self, conversation_id, watcher)

    # --- live contacts (the phone) ---------------------------------------------------------------
    async def contact_state(self, channel: str, thread_key: str) -> dict[str, Any] | None:
        return await calls.contact_state(self, channel, thread_key)

    async def request_agent(self, channel: str, thread_key: str, reason: str, context: dict[str, Any] | None = None) -> bool:
        return await calls.request_agent(self, channel, thread_key, reason, context)

    async def contact_ended(self, channel: str, thread_key: str, reason: str) -> bool:
        return await calls.contact_ended(self, channel, thread_key, reason)

    async def call_status(self, channel: str, thread_key: str, status: str, detail: dict[str, Any] | None = None) -> None:
        await calls.call_status(self, channel, thread_key, status, detail)

    async def call_action(self, agent: AgentRef, conversation_id: Any, action: Any, target: Any = None) -> dict[str, Any]:
        return await calls.call_action(self, agent, conversation_id, action, target)

    async def consult_leg(self, channel: str, thread_key: str, leg: str, status: str) -> None:
        await calls.consult_leg(self, channel, thread_key, leg, status)

    async def supervise_call(self, actor: AgentRef, conversation_id: Any, mode: Any) -> dict[str, Any]:
        return await calls.supervise(self, actor, conversation_id, mode)

    async def call_recording(self, channel: str, thread_key: str, recording_id: str, state: str,
                             detail: dict[str, Any] | None = None) -> bool:
        return await calls.call_recording(self, channel, thread_key, recording_id, state, detail)

    async def callback_requested(self, channel: str, thread_key: str, source: str, number: str) -> None:
        await calls.callback_requested(self, channel, thread_key, source, number)

    # --- web callback (docs/subsystems/callback.md) ------------------------------------------------
    async def request_callback(self, **fields: Any) -> dict[str, Any]:
        return await callbacks.request_callback(self, **fields)

    async def call_customer(self, agent: AgentRef, customer_id: int, number: Any) -> dict[str, Any]:
        return await callbacks.call_customer(self, agent, customer_id, number)

    async def cancel_callback(self, callback_id: Any, token: Any) -> dict[str, Any]:
        return await callbacks.cancel_callback(self, callback_id, token)

    async def callback_tick(self) -> int:
        return await callbacks.tick(self)

    async def callback_attempt_news(self, callback_id: int, n: int, status: str, answered_by: str | None,
                                    detail: dict[str, Any] | None = None) -> str | None:
        return await callbacks.attempt_news(self, callback_id, n, status, answered_by, detail)

    async def callback_leg_news(self, callback_id: int, n: int, status: str, detail: dict[str, Any] | None = None) -> None:
        await callbacks.leg_news(self, callback_id, n, status, detail)

    async def callback_voicemail(self, callback_id: int) -> str:
        return await callbacks.voicemail_text(self, callback_id)

    async def callback_whisper(self, callback_id: int) -> str:
        return await callbacks.whisper_text(self, callback_id)

    async def callback_counts(self) -> dict[str, int]:
        return await callbacks.counts(self)

    # --- routing -------------------------------------------------------------------------------
    async def route_once(self) -> int:
        return await router.route_once(self)

    async def run_router(self, interval: float = 1.0, reconcile_every: float = 15.0) -> None:
        await router.run(self, interval, reconcile_every)
