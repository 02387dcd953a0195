"""What every use case works with: the ports, the channel registry, the clock, and this process's caches.

:class:`Hub` is built once by the composition root (through :class:`contact_center.hub.service.HubService`).
The use case modules are functions of it: ``inbound``, ``outbound``, ``offers``, ``replies``,
``transfer_close``, ``bot_turns``, ``supervision``, ``router`` and ``rebuild``. None of them opens a
database session, names a Socket.IO room or knows a channel by name.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, Coroutine, Iterable

from contact_center.channels import WEB_CHAT, ChannelRegistry
from contact_center.domain.channels import ChannelSpec, DeliveryStatus, UnknownChannel
from contact_center.domain.routing import QueueRule
from contact_center.ports import (
    ConversationRepository,
    ConversationRow,
    CustomerRow,
    MediaStore,
    Notice,
    Notifier,
    QueueEntry,
    StateStore,
)
from contact_center.usecases.errors import HubError, conv_id
from crm_store.domain.interactions import InteractionKind

log = logging.getLogger("contact_center.hub")

OFFER_TIMEOUT_SECONDS = 20.0
TIER_PRIORITY = {"gold": 2, "silver": 1}
SUPERVISOR_ROLES = ("supervisor", "admin")


class Hub:
    """The use cases' shared context.

    :param repo: the contact repository (SQL is the truth).
    :param store: shared routing state (memory or Redis), derived from SQL.
    :param notify: tells browsers (Socket.IO).
    :param channels: the channel registry the composition root built.
    :param node: this process's name (for presence).
    """

    def __init__(
        self,
        repo: ConversationRepository,
        store: StateStore,
        notify: Notifier,
        *,
        channels: ChannelRegistry | None = None,
        node: str = "node-1",
        clock: Callable[[], float] = time.time,
        offer_timeout: float = OFFER_TIMEOUT_SECONDS,
        wrap_up_seconds: float = 10.0,
        default_region: str = "US",
        public_base_url: str = "",
    ) -> None:
        self.repo, self.store, self.notify, self.node, self.clock = repo, store, notify, node, clock
        if channels is None:  # web chat only: a provider's channel comes with its adapter
            channels = ChannelRegistry()
            channels.register(WEB_CHAT)
        self.channels = channels
        self.default_region = default_region
        self.public_base_url = public_base_url.rstrip("/")
        self.media: MediaStore | None = None  # where attachments live (set by the composition root)
        # ``/media/<key>`` -> the absolute link a provider fetches it from (signed by the composition root)
        self.media_link: Callable[[str], str] = lambda path: f"{self.public_base_url}{path}"
        self.offer_timeout = offer_timeout
        self.wrap_up_seconds = wrap_up_seconds
        self.abandon_grace = 60.0
        # a declined (or missed) offer is not made to the same agent again for this long
        self.decline_skip = 20.0
        # the customers whose widget is connected to this process (the /customer namespace sets it), and
        # since when the shared state's "last seen" records can be trusted (start, or a rebuild after a loss)
        self.connected_customers: Callable[[], Iterable[int]] = lambda: ()
        self.presence_known_since = clock()
        # the ordering bot: new conversations go to it first while it is ready (docs/subsystems/bot.md)
        self.bot: Any = None
        self.bot_ready = False
        # web callback (docs/subsystems/callback.md): the SQL store and the settings (None: no callbacks)
        self.callbacks: Any = None
        self.callback_config: Any = None
        # queues, from SQL (rebuild.load_queues)
        self.rules: dict[str, QueueRule] = {}
        self.queue_ids: dict[str, int] = {}
        self.default_queue = "general"
        # (customer id, channel) -> (open conversation id, display name, our address): a message into an
        # open one goes straight to the message log. The log checks the conversation is still open, so a
        # stale entry costs one retry through the full path.
        self.open_chats: dict[tuple[int, str], tuple[int, str, str]] = {}
        # conversations some supervisor watches (any node): refreshed every router tick
        self.watched: set[int] = set()
        self.last_queue_info: dict[int, tuple[int, int]] = {}
        # the router's caches between passes (usecases/router.py): what each waiting customer's last queue
        # update was computed from, and each queue entry as the routing core sees it
        self.queue_info_inputs: dict[int, tuple[int, int, float]] = {}
        self.contact_views: dict[int, tuple[Any, bool, int | None, Any]] = {}
        # the routing loop's queue positions: the last pass's, told at most once per interval (router.publish_positions)
        self.positions_pending: tuple[list[Any], int, float] | None = None
        self.positions_published_at = float("-inf")
        self.queue_notice_interval = 1.0
        self.customer_locks: dict[tuple[int, str], asyncio.Lock] = {}
        self.bot_locks: dict[int, tuple[asyncio.Lock, int]] = {}
        self.delivery_locks: dict[int, asyncio.Lock] = {}
        self.bot_tasks: set[asyncio.Task[None]] = set()
        self.delivery_tasks: set[asyncio.Task[None]] = set()
        self.wrap_up_tasks: dict[int, asyncio.Task[None]] = {}
        # background work per conversation on this process (bot turns, deliveries), for ``settled``
        self.pending: dict[int, int] = {}
        self.settle_waiters: dict[int, list[asyncio.Future[None]]] = {}
        self.route_lock = asyncio.Lock()
        # an agent's presence is created and changed one step at a time on this process (a console that picks a
        # status while its connect is still registering it must not be overwritten by the registration)
        self.presence_locks: dict[int, asyncio.Lock] = {}
        self.kick_event = asyncio.Event()
        # the agents whose console is connected to this process (the /agent namespace sets it)
        self.connected_agents: Callable[[], Iterable[int]] = lambda: ()

    # --- small shared helpers --------------------------------------------------------------------

    def presence_lock(self, agent_id: int) -> asyncio.Lock:
        """The lock of one agent's presence on this process."""
        lock = self.presence_locks.get(agent_id)
        if lock is None:
            lock = self.presence_locks[agent_id] = asyncio.Lock()
        return lock

    def kick(self) -> None:
        """Ask the router to run soon."""
        self.kick_event.set()

    def spawn(
        self, tasks: set[asyncio.Task[None]], coro: Coroutine[Any, Any, None], conversation_id: int | None = None
    ) -> asyncio.Task[None]:
        """Run ``coro`` in the background, kept in ``tasks`` until it ends (and counted as the conversation's
        pending work until then: see :meth:`settled`)."""
        task = asyncio.get_running_loop().create_task(coro)
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        if conversation_id is not None:
            self.pending[conversation_id] = self.pending.get(conversation_id, 0) + 1

            def done(_: asyncio.Task[None], cid: int = conversation_id) -> None:
                left = self.pending.get(cid, 1) - 1
                if left > 0:
                    self.pending[cid] = left
                else:
                    self.pending.pop(cid, None)
                    for waiter in self.settle_waiters.pop(cid, []):
                        if not waiter.done():
                            waiter.set_result(None)

            task.add_done_callback(done)
        return task

    async def settled(self, conversation_id: int, timeout: float) -> bool:
        """Wait until this process has no background work left for a conversation (the bot's turn and the
        deliveries it started: what a caller will hear next), at most ``timeout`` seconds; True if settled."""
        if not self.pending.get(conversation_id):
            return True
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.settle_waiters.setdefault(conversation_id, []).append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), timeout)
            return True
        except asyncio.TimeoutError:
            return False

    def spec(self, channel: str) -> ChannelSpec:
        """A registered channel's spec; an unknown one is the caller's error."""
        try:
            return self.channels.spec(channel)
        except UnknownChannel as exc:
            raise HubError("bad_request", str(exc)) from None

    def live_channel(self, channel: str | None) -> ChannelSpec:
        """The channel of a connected customer (web chat's socket), by name or the first live one."""
        if channel is not None:
            return self.spec(channel)
        live = self.channels.live()
        if not live:
            raise HubError("bad_request", "no live channel is registered")
        return live[0]

    def is_live(self, spec: ChannelSpec | None) -> bool:
        """A live channel has no adapter: its customer is connected and gets events directly."""
        return spec is not None and self.channels.adapter(spec.name) is None

    def noun(self, channel: str) -> str:
        """What a conversation on this channel is called in the contact repository's summaries."""
        spec = self.channels.get(channel)
        return spec.noun if spec is not None else "conversation"

    def kind(self, channel: str) -> str:
        """The interaction kind the contact repository records for a channel's conversations."""
        spec = self.channels.get(channel)
        return spec.interaction_kind if spec is not None else InteractionKind.NOTE.value

    def concurrency(self, channel: str) -> float:
        """How many conversations of a channel an agent works at once (for wait estimates)."""
        spec = self.channels.get(channel)
        return spec.concurrency if spec is not None else 1.0

    def initial_status(self, spec: ChannelSpec | None) -> str | None:
        """The delivery status an outbound message starts with: ``queued`` where an adapter delivers it."""
        if spec is None or self.channels.adapter(spec.name) is None:
            return None
        return DeliveryStatus.QUEUED.value

    def queue_name(self, conv: ConversationRow) -> str:
        """The name of the queue a conversation is in (its channel's default when it has none)."""
        found = next((n for n, i in self.queue_ids.items() if i == conv.queue_id), None)
        if found is not None:
            return found
        spec = self.channels.get(conv.channel)
        return spec.default_queue if spec is not None else self.default_queue

    def entry(self, conv: ConversationRow, customer: CustomerRow) -> QueueEntry:
        """The queue entry of a waiting conversation."""
        assert conv.id is not None
        pinned = getattr(conv, "pinned_agent_id", None) if getattr(conv, "assigned_at", None) is None else None
        return QueueEntry(
            conversation_id=conv.id,
            queue=self.queue_name(conv),
            channel=conv.channel,
            priority=TIER_PRIORITY.get(customer.tier, 0) + conv.priority,
            # its place: its creation, or the place it keeps (a callback: the call it replaces, virtual hold)
            enqueued_at=(getattr(conv, "queue_since", None) or conv.created_at).timestamp(),  # type: ignore[attr-defined]
            declined_by=frozenset(),
            # the agent it waits for (click-to-call), kept in SQL so a rebuild keeps it: until first answered
            pinned_agent=pinned,
            pin_strict=pinned is not None,
        )

    def remember_open(self, customer_id: int, channel: str, conversation_id: int, name: str, our_address: str = "") -> None:
        """Cache the customer's open conversation for the fast path (bounded: the oldest entries go first)."""
        if len(self.open_chats) >= 50_000:
            for key in list(self.open_chats)[:5_000]:
                del self.open_chats[key]
        self.open_chats[(customer_id, channel)] = (conversation_id, name, our_address)

    async def tell(self, *notices: Notice) -> None:
        """Send notices (in order, one batch)."""
        if notices:
            await self.notify.send(list(notices))

    async def tell_customer(self, channel: str, conversation_id: int, event: str, data: dict[str, Any]) -> None:
        """An event for the customer's widgets, on a live channel only (others have no connection to tell)."""
        spec = self.channels.get(channel)
        if spec is not None and self.is_live(spec):
            await self.tell(Notice("customer", conversation_id, event, data))

    async def tell_agent(self, agent_id: int, event: str, data: dict[str, Any]) -> None:
        """An event for all of one agent's console tabs."""
        await self.tell(Notice("agent", agent_id, event, data))

    async def tell_everyone(self, event: str, data: dict[str, Any]) -> None:
        """An event for every console and every widget (``resync`` after the shared state came back)."""
        await self.tell(Notice("all_agents", 0, event, data))
        await self.tell(Notice("all_customers", 0, event, data))

    async def log_state(self, agent_id: int, state: str) -> None:
        """Record an agent's state change in SQL (time in state, occupancy); never fails the caller."""
        try:
            await self.repo.record_agent_state(agent_id, state)
        except Exception:  # noqa: BLE001 - a lost statistic must not lose the action
            log.exception("could not record the agent state", extra={"agent_id": agent_id, "state": state})

    async def agent_name(self, agent_id: int | None) -> str | None:
        """An agent's display name."""
        if agent_id is None:
            return None
        agent = await self.repo.agent(agent_id)
        return agent.display_name if agent else None

    async def assigned(self, agent: Any, conversation_id: Any) -> ConversationRow:
        """The open conversation, if this agent holds it (supervisors may act on any)."""
        cid = conv_id(conversation_id)
        conv = await self.repo.conversation(cid)
        if conv is None:
            raise HubError("not_found", "conversation not found")
        # whose it is first: another agent learns nothing of it (not even that it is closed)
        if conv.assigned_agent_id != agent.id and agent.role not in SUPERVISOR_ROLES:
            raise HubError("forbidden", "this conversation is not assigned to you")
        if conv.status == "closed":
            raise HubError("conflict", "this conversation is closed")
        return conv

