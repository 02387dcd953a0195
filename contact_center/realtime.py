"""Socket.IO namespaces of the hub: ``/customer`` (the widget) and ``/agent`` (the console).

Thin adapters: they authenticate, read the payload, call :class:`~contact_center.hub.service.HubService`
and acknowledge. The protocol is documented in ``docs/subsystems/realtime.md``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

import socketio
from socketio.async_pubsub_manager import AsyncPubSubManager

from contact_center import sio_websocket
from contact_center.channels import WEB_CHAT
from contact_center.hub.service import AgentRef, HubError, HubService, room_agent, room_conv
from contact_center.identity import IdentityError, IdentityVerifier
from contact_center.ports import StateUnavailable
from contact_center.rate_limits import RateLimiter, limiter_for, new_conversation_limit
from contact_center.sessions import SessionGate
from contact_center.settings import webchat_rate_limit
from contact_center.sio_managers import IndexedAsyncManager, IndexedAsyncRedisManager

log = logging.getLogger("contact_center.realtime")

_VISITOR = re.compile(r"[A-Za-z0-9_-]{8,128}")
AGENT_GRACE_SECONDS = 15.0
SESSION_SWEEP_SECONDS = 30.0  # how soon another process's logout closes this process's sockets of that session


async def _acked(fn: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    """Run a handler and turn its outcome into an acknowledgement (never an unhandled exception)."""
    try:
        return {"ok": True, **(await fn())}
    except HubError as exc:
        return exc.as_ack()
    except StateUnavailable:  # Redis is down: nothing half-done is lost (SQL first); the client may try again
        log.warning("socket handler: the shared state is unavailable")
        return {"ok": False, "error": {"code": "unavailable", "retry_after": 2.0,
                                       "message": "the service is degraded right now: try again in a moment"}}
    except Exception:  # noqa: BLE001 - a client must get an answer, the bug gets logged
        log.exception("socket handler failed")
        return {"ok": False, "error": {"code": "internal", "message": "something went wrong on our side"}}


def _dict(data: Any) -> dict[str, Any]:
    """A payload that must be an object."""
    if not isinstance(data, dict):
        raise HubError("bad_request", "payload must be an object")
    return data


class TokenBucket:
    """A rate limit: up to ``burst`` at once, refilled at ``per_second``; ``take`` spends one token."""

    __slots__ = ("burst", "per_second", "tokens", "at")

    def __init__(self, burst: int, per_second: float, now: float) -> None:
        self.burst, self.per_second = float(burst), per_second
        self.tokens, self.at = float(burst), now

    def take(self, now: float) -> float:
        """Spend a token: 0.0 when there was one, else the seconds until there is one (nothing spent)."""
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.per_second)
        self.at = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.per_second


class CustomerNamespace(socketio.AsyncNamespace):
    """The chat widget's connection: one web visitor, their open conversation.

    This is the web chat channel's adapter: its inbound face turns socket events into the hub's use
    cases, and it has no outbound adapter of its own (the registry marks web chat live: the hub
    publishes to the conversation's room, which this namespace's sockets joined).

    Each socket has two token buckets of ``message_burst`` refilled at ``messages_per_second`` (by
    default ``WEBCHAT_MESSAGE_BURST`` and ``WEBCHAT_MESSAGES_PER_SECOND`` from the environment): one for
    ``message`` (over it: ack ``rate_limited`` with ``retry_after``, nothing stored) and one for
    ``typing`` (over it: dropped). A burst or rate of 0 turns the limit off.

    Two more limits are shared by every socket and hub process (``rate_limits``: Redis when the shared state
    is, else this process): ``message`` per visitor (the customer, or the visitor id before their first
    message) with the same burst and rate, so more tabs do not mean more messages; and first messages that
    open a conversation per client address (``new_conversations_per_minute``, from
    ``WEBCHAT_NEW_CONVERSATIONS_PER_MINUTE``). Both answer ``rate_limited`` with ``retry_after``.

    A connection whose ``auth`` has an ``identity`` token (``contact_center.identity``) is the customer it
    names when the signature holds and it has not expired; it is refused with the token's code when not.
    Only such a verified connection may read the customer's orders (``orders``).
    """

    CHANNEL = WEB_CHAT.name
    ORDERS_SHOWN = 20

    def __init__(
        self, hub: HubService, message_burst: int | None = None, messages_per_second: float | None = None,
        clock: Callable[[], float] = time.time, *, identity: IdentityVerifier | None = None,
        limiter: RateLimiter | None = None, new_conversations_per_minute: int | None = None,
    ) -> None:
        super().__init__("/customer")
        self.hub = hub
        self._sockets: dict[int, set[str]] = {}  # customer id -> their connected widgets on this node
        self._left_tasks: dict[int, asyncio.Task[None]] = {}
        burst, rate = webchat_rate_limit()
        self.message_burst = burst if message_burst is None else message_burst
        self.messages_per_second = rate if messages_per_second is None else messages_per_second
        self.clock = clock
        self._buckets: dict[tuple[str, str], TokenBucket] = {}  # (sid, "message"|"typing") -> its bucket
        self.identity = identity if identity is not None else IdentityVerifier(None)
        self.limiter = limiter if limiter is not None else limiter_for(getattr(hub, "store", None))
        self.new_conversations_per_minute = (
            new_conversation_limit() if new_conversations_per_minute is None else new_conversations_per_minute
        )
        hub.connected_customers = lambda: [c for c, sids in self._sockets.items() if sids]

    def _wait_before(self, sid: str, kind: str) -> float:
        """0.0 when this socket may send one more ``kind`` event now (and it is counted), else the seconds to wait."""
        if self.message_burst <= 0 or self.messages_per_second <= 0:
            return 0.0
        now = self.clock()
        bucket = self._buckets.get((sid, kind))
        if bucket is None:
            bucket = self._buckets[(sid, kind)] = TokenBucket(self.message_burst, self.messages_per_second, now)
        return bucket.take(now)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Identify the visitor (or the verified customer), join their conversation's room, send the session."""
        auth = auth if isinstance(auth, dict) else {}
        visitor = auth.get("visitor_id")
        if not isinstance(visitor, str) or not _VISITOR.fullmatch(visitor):
            raise socketio.exceptions.ConnectionRefusedError("visitor_id must be 8 to 128 letters, digits, - or _")
        name = auth.get("name") if isinstance(auth.get("name"), str) else ""
        email = auth.get("email") if isinstance(auth.get("email"), str) else ""
        last_seq = auth.get("last_seq") if isinstance(auth.get("last_seq"), int) else 0
        token = auth.get("identity")
        if token is not None and token != "":
            session = await self._verified_session(token, last_seq)
            email = session.pop("email")
        else:
            session = await self.hub.customer_session(visitor, name=name, email=email, last_seq=last_seq, channel=self.CHANNEL)
            session["verified"] = False
        await self.save_session(sid, {
            "customer_id": session["customer_id"], "room": session["conversation_id"],
            "visitor": visitor, "name": name[:200], "email": email[:320],
            "verified": session["verified"], "address": _address_of(environ),
        })
        if session["customer_id"] is not None:
            await self._track(int(session["customer_id"]), sid)
        if session["conversation_id"]:
            await self.enter_room(sid, room_conv(session["conversation_id"]))
        await self.emit("session", session, to=sid)

    async def _verified_session(self, token: Any, last_seq: int) -> dict[str, Any]:
        """The session of the customer a signed identity names; the connection is refused with the token's code
        (``identity_invalid``, ``identity_expired``, ``identity_unavailable``) when it does not hold."""
        try:
            ident = self.identity.verify(token)
            customer = await self._customer_row(ident.customer_id)
        except IdentityError as exc:
            log.info("widget identity refused", extra={"code": exc.code})
            raise socketio.exceptions.ConnectionRefusedError(*exc.as_connect_error()) from None
        # the same session as an anonymous visitor's (one builder, so a field added there is here too), plus who it is
        data = await self.hub.session_of(customer, max(0, last_seq), channel=self.CHANNEL)
        return {**data, "verified": True, "display_name": customer.display_name or "", "email": ident.email}

    async def _customer_row(self, customer_id: int) -> Any:
        """The customer a verified token names (the one it was merged into, if it was), or ``identity_invalid``."""
        from crm_store.repositories import customers as customers_repo

        async with self.hub.db.session() as s:
            try:
                return await customers_repo.get_customer(s, customer_id)
            except customers_repo.CustomerNotFound:
                raise IdentityError("identity_invalid", "the shop login names no customer of this shop") from None

    async def _track(self, customer_id: int, sid: str) -> None:
        """One more widget of this customer on this node (a pending abandonment is called off; every hub
        process learns they are here from the shared state)."""
        first = not self._sockets.get(customer_id)
        self._sockets.setdefault(customer_id, set()).add(sid)
        task = self._left_tasks.pop(customer_id, None)
        if task is not None:
            task.cancel()
        if first:
            await self._seen(customer_id)

    async def _seen(self, customer_id: int) -> None:
        try:
            await self.hub.customer_seen(customer_id)
        except Exception:  # noqa: BLE001 - the shared state is down: the next heartbeat says it again
            log.warning("could not record a customer's presence", extra={"customer_id": customer_id})

    async def _customer_of(self, sid: str) -> tuple[int, dict[str, Any]]:
        """The socket's customer id, created at the visitor's first message (connects never write)."""
        session = await self.get_session(sid)
        if session.get("customer_id") is None:
            customer = await self.hub.identify_visitor(
                session["visitor"], session.get("name", ""), session.get("email", ""), channel=self.CHANNEL
            )
            assert customer.id is not None
            session = {**session, "customer_id": customer.id}
            await self.save_session(sid, session)
            await self._track(customer.id, sid)
        return int(session["customer_id"]), session

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        """When a customer's last widget goes, a chat still waiting is abandoned after a grace period."""
        self._buckets.pop((sid, "message"), None)
        self._buckets.pop((sid, "typing"), None)
        try:
            raw = (await self.get_session(sid)).get("customer_id")
        except KeyError:
            return
        if raw is None:
            return  # a visitor who never wrote
        customer_id = int(raw)
        sockets = self._sockets.get(customer_id, set())
        sockets.discard(sid)
        if not sockets:
            self._sockets.pop(customer_id, None)
            await self._seen(customer_id)  # gone from now on: every process counts the grace from here
            if not self._sockets.get(customer_id):
                self._left_tasks[customer_id] = asyncio.get_running_loop().create_task(self._left_later(customer_id))

    async def _left_later(self, customer_id: int) -> None:
        await asyncio.sleep(self.hub.abandon_grace)
        if self._left_tasks.get(customer_id) is asyncio.current_task():
            del self._left_tasks[customer_id]
        if customer_id in self._sockets:
            return
        try:
            await self.hub.customer_left(customer_id, channel=self.CHANNEL)
        except Exception:  # noqa: BLE001 - logged; the chat stays queued and an agent will see it
            log.exception("could not mark an abandoned chat")

    async def on_message(self, sid: str, data: Any) -> dict[str, Any]:
        """A chat message from the customer (over the socket's, the visitor's or the address's rate limit:
        refused with ``rate_limited``, nothing stored)."""
        wait = self._wait_before(sid, "message")
        if wait > 0:
            return _rate_limited(wait, "too many messages at once")
        saved = await self.get_session(sid)
        wait = await self._shared_wait(_visitor_key(saved), self.message_burst, self.messages_per_second)
        if wait > 0:
            return _rate_limited(wait, "too many messages at once (from all your chat windows)")
        if saved.get("room") is None and self.new_conversations_per_minute > 0:  # this message opens a conversation
            n = self.new_conversations_per_minute
            wait = await self._shared_wait(f"newconv:{saved.get('address') or 'unknown'}", n, n / 60.0)
            if wait > 0:
                return _rate_limited(wait, "too many new chats from your network")

        async def run() -> dict[str, Any]:
            payload = _dict(data)
            customer_id, session = await self._customer_of(sid)
            result = await self.hub.customer_message(
                customer_id, payload.get("client_msg_id"), payload.get("text"), origin_sid=sid,
                raw_payload=payload.get("payload"), channel=self.CHANNEL,
            )
            if session.get("room") != result["conversation_id"]:  # the first message of a conversation
                await self.enter_room(sid, room_conv(result["conversation_id"]))
                await self.save_session(sid, {**session, "room": result["conversation_id"]})
            return {"message": result["message"]}

        return await _acked(run)

    async def on_resume(self, sid: str, data: Any) -> dict[str, Any]:
        """Catch-up after a reconnect: every message after ``last_seq``."""
        async def run() -> dict[str, Any]:
            payload = _dict(data)
            last = payload.get("last_seq", 0)
            if isinstance(last, bool) or not isinstance(last, int) or last < 0:
                raise HubError("bad_request", "last_seq must be a whole number")
            saved = await self.get_session(sid)
            if saved.get("customer_id") is None:
                return {"conversation_id": None, "messages": []}
            session = await self.hub.customer_session_for(int(saved["customer_id"]), channel=self.CHANNEL)
            if session is None:
                return {"conversation_id": None, "messages": []}
            await self.enter_room(sid, room_conv(session))
            await self.save_session(sid, {**saved, "room": session})
            return {"conversation_id": session, "messages": await self.hub.history(session, last, for_customer=True)}

        return await _acked(run)

    async def on_typing(self, sid: str, data: Any) -> None:
        """The customer is typing (relayed to the agent; over the socket's rate limit: dropped)."""
        if self._wait_before(sid, "typing") > 0:
            return
        typing = bool(data.get("typing")) if isinstance(data, dict) else False
        customer_id = (await self.get_session(sid)).get("customer_id")
        if customer_id is not None:  # nobody to tell before their first message
            await self.hub.customer_typing(int(customer_id), typing, channel=self.CHANNEL)

    async def _shared_wait(self, key: str, burst: float, per_second: float) -> float:
        if burst <= 0 or per_second <= 0:
            return 0.0
        return await self.limiter.take(key, burst, per_second, self.clock())

    async def on_orders(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The verified customer's own orders, newest first (``forbidden`` for an unsigned visitor)."""
        async def run() -> dict[str, Any]:
            saved = await self.get_session(sid)
            if not saved.get("verified") or saved.get("customer_id") is None:
                raise HubError("forbidden", "log in to the shop to see your orders here")
            from contact_center.api.serialize import order_summary
            from crm_store.repositories import orders as orders_repo

            async with self.hub.db.session() as s:
                orders = await orders_repo.orders_of_customer(s, int(saved["customer_id"]), limit=self.ORDERS_SHOWN)
            today = datetime.fromtimestamp(self.hub.clock(), timezone.utc).date()
            return {"orders": [order_summary(o, today) for o in orders]}

        return await _acked(run)


def _rate_limited(wait: float, why: str) -> dict[str, Any]:
    """The ack of a message over a limit: ``rate_limited`` with ``retry_after`` (tenths of a second, rounded up)."""
    retry_after = math.ceil(wait * 10) / 10
    return {"ok": False, "error": {"code": "rate_limited", "retry_after": retry_after,
                                   "message": f"{why}: wait {retry_after:g} s and send again"}}


def _visitor_key(session: dict[str, Any]) -> str:
    """Whose messages count together (every tab and hub process): a verified customer (all their devices), else the
    visitor id (an anonymous customer is exactly one visitor id)."""
    if session.get("verified") and session.get("customer_id") is not None:
        return f"customer:{session['customer_id']}"
    return f"visitor:{session.get('visitor', '')}"


def _address_of(environ: dict[str, Any]) -> str:
    """The client's address of a Socket.IO handshake (behind a trusted proxy, the one it names)."""
    request = environ.get("aiohttp.request")
    if request is None:
        return str(environ.get("REMOTE_ADDR") or "unknown")
    try:
        from contact_center.security import client_address

        return client_address(request)
    except Exception:  # noqa: BLE001 - an app without the security config (unit tests): the peer
        return str(getattr(request, "remote", None) or "unknown")


class AgentNamespace(socketio.AsyncNamespace):
    """The agent console's connection, authenticated by the session cookie."""

    def __init__(self, hub: HubService, sessions: SessionGate, clock: Callable[[], float]) -> None:
        super().__init__("/agent")
        self.hub, self.sessions, self.clock = hub, sessions, clock
        self._sockets: dict[int, set[str]] = {}
        self._gone_tasks: dict[int, asyncio.Task[None]] = {}
        hub.connected_agents = lambda: [a for a, sids in self._sockets.items() if sids]

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Check the session cookie, join the agent's room, send hello."""
        session = await self.sessions.load_from_environ(environ, self.clock())
        if session is None:
            raise socketio.exceptions.ConnectionRefusedError("log in first")
        agent = AgentRef(session.agent_id, session.username, session.display_name, session.role)
        await self.save_session(sid, {"agent": agent})
        self.sessions.attach("/agent", sid, session)
        task = self._gone_tasks.pop(agent.id, None)
        if task is not None:
            task.cancel()
        self._sockets.setdefault(agent.id, set()).add(sid)
        await self.enter_room(sid, room_agent(agent.id))
        try:
            hello = await self.hub.agent_online(agent)
        except HubError as exc:
            raise socketio.exceptions.ConnectionRefusedError(str(exc)) from None
        await self.emit("hello", hello, to=sid)

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        """When an agent's last console tab goes, re-queue their work after a short grace period."""
        self.sessions.detach("/agent", sid)
        try:
            agent: AgentRef = (await self.get_session(sid))["agent"]
        except KeyError:
            return
        sockets = self._sockets.get(agent.id, set())
        sockets.discard(sid)
        if not sockets:
            self._gone_tasks[agent.id] = asyncio.get_running_loop().create_task(self._gone_later(agent.id))

    async def _gone_later(self, agent_id: int) -> None:
        """Re-queue an agent's offers and chats if they have not come back in time."""
        await asyncio.sleep(AGENT_GRACE_SECONDS)
        self._gone_tasks.pop(agent_id, None)
        if not self._sockets.get(agent_id):
            await self.hub.agent_gone(agent_id)

    async def _agent(self, sid: str) -> AgentRef:
        """The agent behind this socket."""
        agent: AgentRef = (await self.get_session(sid))["agent"]
        return agent

    async def on_set_status(self, sid: str, data: Any) -> dict[str, Any]:
        """available / away / offline."""
        async def run() -> dict[str, Any]:
            return {"status": await self.hub.set_status(await self._agent(sid), _dict(data).get("status"))}

        return await _acked(run)

    async def on_accept(self, sid: str, data: Any) -> dict[str, Any]:
        """Accept an offer."""
        async def run() -> dict[str, Any]:
            return {"conversation": await self.hub.accept(await self._agent(sid), _dict(data).get("conversation_id"))}

        return await _acked(run)

    async def on_decline(self, sid: str, data: Any) -> dict[str, Any]:
        """Decline an offer."""
        async def run() -> dict[str, Any]:
            return dict(await self.hub.decline(await self._agent(sid), _dict(data).get("conversation_id")))

        return await _acked(run)

    async def on_reply(self, sid: str, data: Any) -> dict[str, Any]:
        """A reply to the customer."""
        async def run() -> dict[str, Any]:
            p = _dict(data)
            return {"message": await self.hub.reply(
                await self._agent(sid), p.get("conversation_id"), p.get("client_msg_id"), p.get("text"), raw_media=p.get("media"),
                raw_cc=p.get("cc"),
            )}

        return await _acked(run)

    async def on_call_action(self, sid: str, data: Any) -> dict[str, Any]:
        """An action on the agent's live call (hold, mute, hang up, transfer...), as the channel allows."""
        async def run() -> dict[str, Any]:
            p = _dict(data)
            return await self.hub.call_action(await self._agent(sid), p.get("conversation_id"), p.get("action"), p.get("target"))

        return await _acked(run)

    async def on_note(self, sid: str, data: Any) -> dict[str, Any]:
        """An internal note (never sent to the customer)."""
        async def run() -> dict[str, Any]:
            p = _dict(data)
            return {"message": await self.hub.reply(await self._agent(sid), p.get("conversation_id"), p.get("client_msg_id"), p.get("text"), internal=True)}

        return await _acked(run)

    async def on_typing(self, sid: str, data: Any) -> None:
        """The agent is typing."""
        if isinstance(data, dict):
            try:
                await self.hub.agent_typing(await self._agent(sid), data.get("conversation_id"), bool(data.get("typing")))
            except HubError:
                pass

    async def on_resume(self, sid: str, data: Any) -> dict[str, Any]:
        """Catch-up of one conversation after a reconnect."""
        async def run() -> dict[str, Any]:
            p = _dict(data)
            agent = await self._agent(sid)
            conv = await self.hub._assigned(agent, p.get("conversation_id"))
            last = p.get("last_seq", 0)
            if isinstance(last, bool) or not isinstance(last, int) or last < 0:
                raise HubError("bad_request", "last_seq must be a whole number")
            return {"messages": await self.hub.history(conv.id, last, for_customer=False)}  # type: ignore[arg-type]

        return await _acked(run)

    async def on_transfer(self, sid: str, data: Any) -> dict[str, Any]:
        """Transfer a conversation to another queue or agent."""
        async def run() -> dict[str, Any]:
            p = _dict(data)
            return await self.hub.transfer(
                await self._agent(sid), p.get("conversation_id"), queue=p.get("queue"), to_agent=p.get("agent_id"), note=p.get("note", "")
            )

        return await _acked(run)

    async def on_handback(self, sid: str, data: Any) -> dict[str, Any]:
        """Give a conversation back to the bot, which resumes where it stopped."""
        async def run() -> dict[str, Any]:
            return await self.hub.hand_back(await self._agent(sid), _dict(data).get("conversation_id"))

        return await _acked(run)

    async def on_close(self, sid: str, data: Any) -> dict[str, Any]:
        """Wrap up a conversation with a disposition."""
        async def run() -> dict[str, Any]:
            p = _dict(data)
            await self.hub.close(await self._agent(sid), p.get("conversation_id"), p.get("disposition"), p.get("note", ""))
            return {}

        return await _acked(run)


class SioEmitter:
    """The hub's emitter: python-socketio's ``emit``, minus the emits that would reach nobody.

    python-socketio encodes a packet before it looks at who is in the room. A customer's message is
    echoed to their conversation's room for their *other* tabs; with the in-process manager (one hub
    process) this emitter sees when the sending socket is the room's only member and skips the
    encode altogether. Across processes (the Redis manager) another node may hold a tab, so it always
    emits.
    """

    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio
        manager = sio.manager
        self._local = isinstance(manager, socketio.AsyncManager) and not isinstance(manager, AsyncPubSubManager)

    async def emit(
        self, event: str, data: Any = None, *, to: str | None = None, namespace: str | None = None, skip_sid: str | None = None
    ) -> None:
        if skip_sid is not None and to is not None and self._local and self._only(namespace or "/", to, skip_sid):
            return
        await self.sio.emit(event, data, to=to, namespace=namespace, skip_sid=skip_sid)

    async def emit_many(self, items: list[dict[str, Any]]) -> None:
        """Several emits (``emit``'s keyword arguments each), in order (across nodes the Redis manager's one
        publisher joins consecutive emits into one pub/sub message)."""
        for item in items:
            await self.emit(**item)

    def _only(self, namespace: str, room: str, sid: str) -> bool:
        members = self.sio.manager.rooms.get(namespace, {}).get(room)
        return not members or (len(members) == 1 and sid in members)


async def close_ended_sessions(sio: socketio.AsyncServer, sessions: SessionGate, now: float) -> int:
    """Disconnect this process's console sockets whose session was logged out or is too old; how many.

    Each is told ``logged_out`` first (so a console can show its login page instead of reconnecting).
    """
    ended = await sessions.ended_sockets(now)
    for namespace, sid in ended:
        sessions.detach(namespace, sid)
        await sio.emit("logged_out", {"reason": "the session has ended; log in again"}, to=sid, namespace=namespace)
        await sio.disconnect(sid, namespace=namespace)
    return len(ended)


async def sweep_ended_sessions(sio: socketio.AsyncServer, sessions: SessionGate, every: float = SESSION_SWEEP_SECONDS) -> None:
    """Forever: close the sockets of sessions that ended on another process (a logout there, or the absolute timeout)."""
    while True:
        await asyncio.sleep(every)
        try:
            await close_ended_sessions(sio, sessions, time.time())
        except Exception:  # noqa: BLE001 - logged; the next sweep tries again
            log.exception("could not check the console sockets' sessions")


def origin_checker(allowed_origins: list[str]) -> Callable[[str | None, dict[str, Any]], bool]:
    """Accept the hub's own origin (as the browser or the reverse proxy names it) plus the listed shops."""
    listed = {o.rstrip("/") for o in allowed_origins}

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None:
            return True  # not a browser (no Origin header): nothing for CORS to protect
        host = environ.get("HTTP_X_FORWARDED_HOST", environ.get("HTTP_HOST", "")).split(",")[0].strip()
        scheme = environ.get("HTTP_X_FORWARDED_PROTO", environ.get("wsgi.url_scheme", "http")).split(",")[0].strip()
        own = {f"{scheme}://{host}", f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}"}
        return origin.rstrip("/") in own or origin.rstrip("/") in listed

    return allowed


FRAME_LIMIT = 64 * 1024  # the largest Socket.IO packet the hub reads (characters of the encoded packet)
HARD_FRAME_LIMIT = 1024 * 1024  # beyond this, Engine.IO drops the connection without reading the frame


class HubSocketServer(socketio.AsyncServer):
    """python-socketio's server, answering an oversized packet instead of dropping the connection.

    A packet over :data:`FRAME_LIMIT` (up to :data:`HARD_FRAME_LIMIT`, Engine.IO's own cut-off) is not
    dispatched: an event that asked for an ack gets ``{"ok": false, "error": {"code": "too_large"}}``,
    one that did not is dropped, and the connection stays up.
    """

    async def _handle_eio_message(self, eio_sid: str, data: Any) -> None:
        if isinstance(data, (str, bytes)) and len(data) > FRAME_LIMIT and eio_sid not in self._binary_packet:
            await self._refuse_oversized(eio_sid, data)
            return
        await super()._handle_eio_message(eio_sid, data)

    async def _refuse_oversized(self, eio_sid: str, data: str | bytes) -> None:
        try:
            pkt = self.packet_class(encoded_packet=data)
        except Exception:  # noqa: BLE001 - not even a packet: nothing to answer
            log.info("dropped an oversized frame that is not a packet", extra={"bytes": len(data)})
            return
        log.info("refused an oversized packet", extra={"bytes": len(data), "namespace": pkt.namespace})
        if pkt.packet_type in (socketio.packet.EVENT, socketio.packet.BINARY_EVENT) and pkt.id is not None:
            error = {"ok": False, "error": {"code": "too_large", "message": f"a packet may be at most {FRAME_LIMIT} characters"}}
            await self._send_packet(eio_sid, self.packet_class(socketio.packet.ACK, namespace=pkt.namespace, id=pkt.id, data=[error]))


def create_sio(redis_url: str, allowed_origins: list[str] | None, channel: str = "socketio") -> socketio.AsyncServer:
    """The Socket.IO server: in-process fan-out, or python-socketio's Redis manager across hub processes."""
    manager = IndexedAsyncRedisManager(redis_url, channel=channel) if redis_url else IndexedAsyncManager()
    sio = HubSocketServer(
        async_mode="aiohttp",
        client_manager=manager,
        cors_allowed_origins=origin_checker(allowed_origins or []),
        max_http_buffer_size=HARD_FRAME_LIMIT,
        ping_interval=20,
        ping_timeout=20,
    )
    sio_websocket.install(sio)  # closed sockets are freed at once (no reference cycle)
    return sio
