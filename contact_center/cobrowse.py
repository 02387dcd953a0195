"""Co-browsing over Socket.IO: the consent request, the relay of the customer's page events, the end.

The handlers join the existing namespaces (``/customer``, ``/agent``) as ``cobrowse_*`` events
(:func:`install`), so a co-browsing session rides the chat's own authenticated connections:

- only the agent who holds a web chat may ask (``cobrowse_start``); the customer's widget shows a consent
  prompt and nothing is recorded before they accept (``cobrowse_consent``); 60 s without an answer is a no;
- page events (``cobrowse_events``) are relayed only while the session is live, only from a socket of that
  conversation's customer, only to the room of the agent who asked; the hub never parses, logs or stores
  them (they are JSON text cut in pieces of at most ``MAX_CHUNK_CHARS``);
- either side ends it (``cobrowse_end``); a closed or transferred conversation ends it; a customer whose
  pages are all gone for ``RECONNECT_GRACE_SECONDS`` has left;
- every step goes on the customer's timeline (interaction kind ``cobrowse``): who, when, the answer, who
  ended it and why. No page content is kept.

Protocol: ``docs/subsystems/cobrowse.md``. Sessions, codes and wrong-code counts live in the shared
:class:`~contact_center.ports.CobrowseStore` (Redis with several hub processes, memory in the embedded mode).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import re
import time
from typing import Any, Awaitable, Callable, Mapping, Sequence

import socketio

from contact_center.channels import CALLBACK, VOICE, WEB_CHAT
from contact_center.domain.cobrowse import (
    CODE_SECONDS, CONSENT_SECONDS, CONTROL_BURST, CONTROL_PER_SECOND, EVENT_BURST, EVENTS_PER_SECOND, POINTER_BURST, POINTERS_PER_SECOND, REASON_TEXT,
    RECONNECT_GRACE_SECONDS, CobrowseError, CobrowseSession, CobrowseState, ControlState, EndReason,
    control_action, event_piece, format_code, normalise_code, pointer, valid_session_id,
)
from contact_center.hub.service import AgentRef, HubError, HubService, room_agent, room_conv
from contact_center.keys import SETTINGS_KEY
from contact_center.ports import CobrowseStore, StateUnavailable
from contact_center.state.cobrowse_store import SESSION_TTL, MemoryCobrowseStore
from contact_center.realtime import TokenBucket

from aiohttp import web

log = logging.getLogger("contact_center.cobrowse")

CONTROL_REFUSALS = frozenset({"blocked", "masked", "not_found", "not_fillable", "not_granted", "failed"})
CALL_CHANNELS = frozenset({VOICE.name, CALLBACK.name})  # co-browsing on these joins with a code read out
ASSIGNMENT_RECHECK_SECONDS = 5.0  # while live, how often the relay checks the agent still holds the chat


def _ack_error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}


async def _acked(fn: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    try:
        return {"ok": True, **(await fn())}
    except (CobrowseError, HubError) as exc:
        return _ack_error(exc.code, exc.message if isinstance(exc, CobrowseError) else str(exc))
    except StateUnavailable:  # the shared store (Redis) is unreachable: co-browsing is ephemeral, nothing else is lost
        return {"ok": False, "error": {"code": "unavailable", "message": "co-browsing is unavailable right now: try again shortly",
                                       "retry_after": 5}}
    except Exception:  # noqa: BLE001 - the client gets an answer, the bug gets logged
        log.exception("co-browsing handler failed")
        return _ack_error("internal", "something went wrong on our side")


def _payload(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise CobrowseError("bad_request", "payload must be an object")
    return data


class CobrowseRelay:
    """The ``cobrowse_*`` handlers of both namespaces. The sessions, a call's codes and their wrong tries live in the
    shared :class:`~contact_center.ports.CobrowseStore` (Redis with several hub processes), so the customer's socket
    and the agent's may be on different processes; what stays in this process is only about its own sockets (their
    rate buckets, which of them record) and its timers, which re-read the shared session before they act."""

    def __init__(self, sio: socketio.AsyncServer, hub: HubService, clock: Callable[[], float] = time.time,
                 consent_seconds: float = CONSENT_SECONDS, grace_seconds: float = RECONNECT_GRACE_SECONDS,
                 code_seconds: float = CODE_SECONDS, store: CobrowseStore | None = None, secret: str | None = None) -> None:
        self.sio, self.hub, self.clock = sio, hub, clock
        self.consent_seconds, self.grace_seconds, self.code_seconds = consent_seconds, grace_seconds, code_seconds
        self.store: CobrowseStore = store if store is not None else MemoryCobrowseStore()
        self._secret = (secret or secrets.token_hex(32)).encode()  # the code's key in the store is an HMAC of it
        self._timers: dict[str, asyncio.Task[None]] = {}  # session id -> its consent or reconnect timer (this process)
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._checked: dict[str, float] = {}  # session id -> when the assignment was last checked (this process)
        self._recorders: dict[str, tuple[int, str]] = {}  # a recording socket of this process -> (conversation, session)

    # ------------------------------------------------------------------ the shared session
    def code_key(self, code: str) -> str:
        """The store's key of a code: an HMAC (the store never holds a code as its key)."""
        return hmac.new(self._secret, code.encode(), hashlib.sha256).hexdigest()

    async def session_of(self, conversation_id: int) -> CobrowseSession | None:
        """The conversation's current session. A pending one past its deadline ends here (lazily: whichever
        process sees it first; the end is a compare-and-set, so it ends once)."""
        rec = await self.store.get_session(int(conversation_id))
        if rec is None:
            return None
        session = CobrowseSession.from_record(rec)
        if session.state is CobrowseState.PENDING and self.clock() > session.consent_deadline:
            await self.end(session, EndReason.CODE_EXPIRED if session.via_code else EndReason.NO_ANSWER)
            return None
        return session

    async def _save(self, old: CobrowseSession, new: CobrowseSession) -> CobrowseSession:
        """Write a changed session, only if nobody changed it meanwhile (another process): else ``conflict``."""
        if not await self.store.swap_session(old.conversation_id, old.record(), new.record(), SESSION_TTL):
            raise CobrowseError("conflict", "the co-browsing session changed meanwhile: try again")
        return new

    # ------------------------------------------------------------------ the agent's side
    async def agent_start(self, agent: AgentRef, data: Any) -> dict[str, Any]:
        """``cobrowse_start {conversation_id}``: ask the customer. Ack ``{session}``."""
        conv = await self._held(agent, _payload(data).get("conversation_id"))
        current = await self.session_of(conv.id)
        if current is not None:
            return self._agent_view(current)  # already asked or live: the same session (and code)
        if conv.channel in CALL_CHANNELS:
            return await self._start_on_call(agent, conv)
        if conv.channel != WEB_CHAT.name:
            raise CobrowseError("bad_request", "co-browsing needs a web chat or a call")
        now = self.clock()
        session = CobrowseSession(
            id=secrets.token_urlsafe(18), conversation_id=conv.id, customer_id=conv.customer_id, agent_id=agent.id,
            agent_name=agent.display_name or agent.username, state=CobrowseState.PENDING, requested_at=now,
            consent_deadline=now + self.consent_seconds,
        )
        created, rec = await self.store.create_session(conv.id, session.record(), SESSION_TTL)
        if not created:  # asked at the same moment on another process: theirs
            return self._agent_view(CobrowseSession.from_record(rec))
        self._timer(session.id, self.consent_seconds, lambda: self._no_answer(session.id, conv.id))
        await self._record(session, "requested", f"Co-browsing requested by {session.agent_name}")
        await self.sio.emit("cobrowse_request", session.public(), to=room_conv(conv.id), namespace="/customer")
        return {"session": session.public()}

    async def _start_on_call(self, agent: AgentRef, conv: Any) -> dict[str, Any]:
        """On a call: a six-digit code for the agent to read out; the caller types it into the widget on our site
        (that is their consent). Nobody is asked before: the caller's browser is not known until then."""
        now = self.clock()
        session_id = secrets.token_urlsafe(18)
        expires_at = now + self.code_seconds
        for _ in range(20):  # unique among the codes waiting on every process (SET NX)
            code = format_code(secrets.randbelow(10**6))
            if await self.store.put_code(self.code_key(code), {"session_id": session_id, "conversation_id": conv.id,
                                                               "expires_at": expires_at}, self.code_seconds):
                break
        else:
            raise CobrowseError("conflict", "no free code right now: try again")
        session = CobrowseSession(
            id=session_id, conversation_id=conv.id, customer_id=conv.customer_id, agent_id=agent.id,
            agent_name=agent.display_name or agent.username, state=CobrowseState.PENDING, requested_at=now,
            consent_deadline=expires_at, via_code=True, code=code, code_expires_at=expires_at,
        )
        created, rec = await self.store.create_session(conv.id, session.record(), SESSION_TTL)
        if not created:
            await self.store.drop_code(self.code_key(code))
            return self._agent_view(CobrowseSession.from_record(rec))
        self._timer(session.id, self.code_seconds, lambda: self._no_answer(session.id, conv.id))
        await self._record(session, "requested", f"Co-browsing on the call: {session.agent_name} read out a code", via="code")
        return self._agent_view(session)

    def _agent_view(self, session: CobrowseSession) -> dict[str, Any]:
        """The agent's ack: the session, and while a call's session waits, its code (to read out again)."""
        out: dict[str, Any] = {"session": session.public()}
        if (session.via_code and session.state is CobrowseState.PENDING and session.code is not None
                and session.code_expires_at is not None and self.clock() <= session.code_expires_at):
            out["code"], out["code_expires_at"] = session.code, session.code_expires_at
        return out

    def _room(self, session: CobrowseSession) -> str:
        """The customer's side of a session: the chat's room, or (a call's) a room of the session alone, which only
        the browser that typed the code joins: it never hears anything of the call's conversation."""
        return f"cobrowse:{session.id}" if session.via_code else room_conv(session.conversation_id)

    async def agent_end(self, agent: AgentRef, data: Any) -> dict[str, Any]:
        """``cobrowse_end {conversation_id}``."""
        conv = await self._held(agent, _payload(data).get("conversation_id"))
        session = await self.session_of(conv.id)
        if session is None:
            raise CobrowseError("not_found", "no co-browsing session on this conversation")
        await self.end(session, EndReason.AGENT_ENDED)
        return {}

    async def agent_status(self, agent: AgentRef, data: Any) -> dict[str, Any]:
        """``cobrowse_status {conversation_id}``: the session now (a reloaded console); asks for a full snapshot."""
        conv = await self._held(agent, _payload(data).get("conversation_id"))
        session = await self.session_of(conv.id)
        return self._agent_view(session) if session else {"session": None}

    async def agent_checkout(self, agent: AgentRef, data: Any) -> dict[str, Any]:
        """``cobrowse_checkout {conversation_id}``: the recorder sends a new full snapshot (a late-joining view)."""
        session = await self._live_of_agent(agent, data)
        await self.sio.emit("cobrowse_checkout", {"session_id": session.id}, to=self._room(session), namespace="/customer")
        return {}

    async def agent_pointer(self, sid: str, agent: AgentRef, data: Any) -> None:
        """``cobrowse_pointer {conversation_id, x, y, highlight?, hide?}``: no ack; over the rate: dropped."""
        if self._wait(sid, "pointer", POINTER_BURST, POINTERS_PER_SECOND) > 0:
            return
        try:
            session = await self._live_of_agent(agent, data)
            point = pointer(_payload(data))
        except (CobrowseError, HubError, StateUnavailable):
            return
        await self.sio.emit("cobrowse_pointer", {"session_id": session.id, **point},
                            to=self._room(session), namespace="/customer")

    # ------------------------------------------------------------------ guided control (the second consent)
    async def agent_control_request(self, agent: AgentRef, data: Any) -> dict[str, Any]:
        """``cobrowse_control_request {conversation_id}``: ask the customer for control (a second prompt)."""
        session = await self._live_of_agent(agent, data)
        asked = session.ask_control()
        if asked is session:
            return {"session": session.public()}  # already granted
        await self._save(session, asked)
        await self.sio.emit("cobrowse_control_request", asked.for_customer(), to=self._room(asked), namespace="/customer")
        return {"session": asked.public()}

    async def agent_control_release(self, agent: AgentRef, data: Any) -> dict[str, Any]:
        """``cobrowse_control_release {conversation_id}``: the agent gives control back (or withdraws the request)."""
        session = await self._live_of_agent(agent, data)
        await self._control_off(session, "agent")
        return {}

    async def agent_control_action(self, sid: str, agent: AgentRef, data: Any) -> dict[str, Any]:
        """``cobrowse_control_action {conversation_id, action, target?, value?, x?, y?, id?}``: refused (``forbidden``)
        unless the customer granted control; relayed to the customer's page, which refuses masked and blocked
        elements itself (its answer: ``cobrowse_control_result`` to the agent)."""
        wait = self._wait(sid, "control", CONTROL_BURST, CONTROL_PER_SECOND)
        if wait > 0:
            raise CobrowseError("rate_limited", "too many control actions")
        session = await self._live_of_agent(agent, data)
        if session.control is not ControlState.GRANTED:
            raise CobrowseError("forbidden", "the customer has not given you control")
        action = control_action(_payload(data))
        if not await self._still_held(session):
            raise CobrowseError("conflict", "the co-browsing session has ended")
        await self.sio.emit("cobrowse_control_action", {"session_id": session.id, **action}, to=self._room(session), namespace="/customer")
        return {}

    async def customer_control(self, session_data: dict[str, Any], data: Any) -> dict[str, Any]:
        """``cobrowse_control {session_id, grant}``: the customer's answer to the control prompt."""
        p = _payload(data)
        session = await self._customer_session(session_data, p.get("session_id"))
        if not isinstance(p.get("grant"), bool):
            raise CobrowseError("bad_request", "grant must be true or false")
        answered = await self._save(session, session.answer_control(p["grant"]))
        if p["grant"]:
            await self._record(answered, "control_granted", f"The customer gave {answered.agent_name} control of the page")
        else:
            await self._record(answered, "control_refused", "The customer refused control of the page")
        await self.sio.emit("cobrowse_state", answered.public(), to=room_agent(answered.agent_id), namespace="/agent")
        await self.sio.emit("cobrowse_control_state", {"session_id": answered.id, "control": answered.control.value},
                            to=self._room(answered), namespace="/customer")
        return {"session": answered.for_customer()}

    async def customer_control_revoke(self, session_data: dict[str, Any], data: Any) -> dict[str, Any]:
        """``cobrowse_control_revoke {session_id}``: the customer takes control back (the banner's button)."""
        session = await self._customer_session(session_data, _payload(data).get("session_id"))
        await self._control_off(session, "customer")
        return {}

    async def customer_control_result(self, session_data: dict[str, Any], data: Any) -> dict[str, Any]:
        """``cobrowse_control_result {session_id, id, ok, reason}``: what the page did with an action (to the agent)."""
        p = _payload(data)
        session = await self._customer_session(session_data, p.get("session_id"))
        if self._wait(session.id, "result", CONTROL_BURST, CONTROL_PER_SECOND) > 0:
            raise CobrowseError("rate_limited", "too many control results")  # never more than the agent's actions
        reason = p.get("reason")
        body = {"conversation_id": session.conversation_id, "session_id": session.id, "ok": p.get("ok") is True,
                "id": p.get("id") if isinstance(p.get("id"), int) and not isinstance(p.get("id"), bool) else None,
                "reason": reason if isinstance(reason, str) and reason in CONTROL_REFUSALS else None}
        await self.sio.emit("cobrowse_control_result", body, to=room_agent(session.agent_id), namespace="/agent")
        return {}

    async def _control_off(self, session: CobrowseSession, by: str) -> None:
        if session.control is ControlState.OFF:
            return
        was = session.control
        off = await self._save(session, session.revoke_control())
        if was is ControlState.GRANTED:
            who = "the customer" if by == "customer" else off.agent_name
            await self._record(off, "control_revoked", f"Control of the page taken back ({who})", by=by)
        await self.sio.emit("cobrowse_state", off.public(), to=room_agent(off.agent_id), namespace="/agent")
        await self.sio.emit("cobrowse_control_state", {"session_id": off.id, "control": off.control.value},
                            to=self._room(off), namespace="/customer")

    # ------------------------------------------------------------------ the customer's side
    async def customer_status(self, sid: str, session_data: dict[str, Any]) -> dict[str, Any]:
        """``cobrowse_status {}``: the session of this socket's conversation (a new page resumes a live one)."""
        conv_id = session_data.get("room")
        session = await self.session_of(int(conv_id)) if conv_id is not None else None
        if session is None or session.customer_id != session_data.get("customer_id"):
            session = await self._linked_session(session_data)
            if session is None:
                return {"session": None}
            await self.sio.enter_room(sid, self._room(session), namespace="/customer")
        if session.state is CobrowseState.LIVE:
            await self._recording(session, sid)  # a new page of the customer: it records
        return {"session": session.for_customer()}

    async def customer_join(self, sid: str, session_data: dict[str, Any], data: Any, address: str) -> dict[str, Any]:
        """``cobrowse_join {code}``: the caller typed the code the agent read out. Wrong codes are counted per socket
        and per address (``rate_limited`` with ``retry_after`` after 5); a code works once, for 10 minutes, on any
        hub process (taken from the shared store in one atomic get-and-delete). The ack holds the session only:
        nothing of the call's conversation."""
        now = self.clock()
        keys = (f"sid:{sid}", f"addr:{address}")

        try:
            wait = await self.store.code_wait(keys, now)
        except StateUnavailable:
            return await _acked(self._unavailable)
        if wait > 0:
            return {"ok": False, "error": {"code": "rate_limited", "message": "too many wrong codes: try again later",
                                           "retry_after": round(wait + 0.5)}}

        async def run() -> dict[str, Any]:
            digits = normalise_code(_payload(data).get("code"))
            visitor = session_data.get("visitor")
            if not isinstance(visitor, str) or not visitor:
                raise CobrowseError("bad_request", "no visitor on this connection")
            code = await self.store.take_code(self.code_key(digits))  # single use, across processes
            session = await self.session_of(int(code["conversation_id"])) if code is not None else None
            if (code is None or session is None or session.id != code.get("session_id")
                    or session.state is not CobrowseState.PENDING or now > float(code.get("expires_at", 0))):
                await self.store.code_failed(keys, now)
                raise CobrowseError("not_found", "that code is not valid: ask the agent for a new one")
            await self.store.code_forget(keys[0])
            live = await self._save(session, session.join(now, visitor))
            await self.store.set_link(visitor, live.conversation_id, SESSION_TTL)
            self._cancel_timer(live.id)
            await self.sio.enter_room(sid, self._room(live), namespace="/customer")
            await self._recording(live, sid)
            await self._record(live, "consent_given", "The caller typed the code: co-browsing accepted", via="code")
            await self.sio.emit("cobrowse_state", live.public(), to=room_agent(live.agent_id), namespace="/agent")
            return {"session": live.for_customer()}

        return await _acked(run)

    @staticmethod
    async def _unavailable() -> dict[str, Any]:
        raise StateUnavailable("the shared co-browsing state cannot be reached")

    async def _linked_session(self, session_data: dict[str, Any]) -> CobrowseSession | None:
        """The call's session this browser joined with a code (any of its pages: the same visitor id)."""
        visitor = session_data.get("visitor")
        conv_id = await self.store.get_link(visitor) if isinstance(visitor, str) and visitor else None
        session = await self.session_of(conv_id) if conv_id is not None else None
        if session is None or session.linked_visitor != visitor:
            return None
        return session

    async def customer_consent(self, session_data: dict[str, Any], data: Any, sid: str | None = None) -> dict[str, Any]:
        """``cobrowse_consent {session_id, accept}`` (``sid``: the answering socket, which records from now on)."""
        p = _payload(data)
        session = await self._customer_session(session_data, p.get("session_id"))
        if not isinstance(p.get("accept"), bool):
            raise CobrowseError("bad_request", "accept must be true or false")
        if not p["accept"]:
            await self.end(session, EndReason.DECLINED)
            return {"session": None}
        live = await self._save(session, session.accept(self.clock()))
        self._cancel_timer(live.id)
        if sid is not None:
            await self._recording(live, sid)  # if this page goes and none comes back, the customer left
        await self._record(live, "consent_given", "The customer accepted co-browsing")
        await self.sio.emit("cobrowse_state", live.public(), to=room_agent(live.agent_id), namespace="/agent")
        return {"session": live.for_customer()}

    async def customer_events(self, sid: str, session_data: dict[str, Any], data: Any) -> dict[str, Any]:
        """``cobrowse_events {session_id, seq, part?, parts?, data}``: relayed to the agent's room as they are (the
        Socket.IO Redis manager carries the emit to the agent's process: only the session lookup is shared)."""
        wait = self._wait(sid, "events", EVENT_BURST, EVENTS_PER_SECOND)
        if wait > 0:
            return {"ok": False, "error": {"code": "rate_limited", "message": "too many co-browsing events", "retry_after": round(wait + 0.05, 1)}}

        async def run() -> dict[str, Any]:
            p = _payload(data)
            session = await self._customer_session(session_data, p.get("session_id"))
            if session.state is not CobrowseState.LIVE:
                raise CobrowseError("conflict", "the customer has not accepted co-browsing")
            piece = event_piece(p)
            await self._recording(session, sid)
            if not await self._still_held(session):
                raise CobrowseError("conflict", "the co-browsing session has ended")
            await self.sio.emit("cobrowse_events", {"conversation_id": session.conversation_id, "session_id": session.id, **piece.relayed()},
                                to=room_agent(session.agent_id), namespace="/agent")
            return {}

        return await _acked(run)

    async def customer_end(self, session_data: dict[str, Any], data: Any) -> dict[str, Any]:
        """``cobrowse_end {session_id}``."""
        session = await self._customer_session(session_data, _payload(data).get("session_id"))
        await self.end(session, EndReason.CUSTOMER_ENDED)
        return {}

    async def customer_gone(self, sid: str, session_data: dict[str, Any]) -> None:
        """A customer socket closed: when no page of theirs records any more (on any process), wait for a new page,
        then end. The timer runs here; when it fires it asks the shared store again (a page may have come back on
        another process), and the end is a compare-and-set: it ends once."""
        self._buckets.pop((sid, "events"), None)
        found = self._recorders.pop(sid, None)
        if found is None:
            return
        conv_id, session_id = found
        left = await self.store.recording_remove(session_id, sid)
        if left:
            return
        session = await self.session_of(conv_id)
        if session is None or session.id != session_id or session.state is not CobrowseState.LIVE:
            return
        self._timer(session.id, self.grace_seconds, lambda: self._left(session_id, conv_id))

    # ------------------------------------------------------------------ ending
    async def end(self, session: CobrowseSession, reason: EndReason) -> None:
        """End a session (once, across processes: the shared record is deleted by compare-and-set, and only the
        process that deleted it tells both sides and writes the timeline)."""
        for _ in range(10):
            rec = await self.store.get_session(session.conversation_id)
            if rec is None or rec.get("id") != session.id:
                return
            current = CobrowseSession.from_record(rec)
            if await self.store.swap_session(session.conversation_id, rec, None, 0):
                break
        else:
            log.warning("co-browsing: a session kept changing while it was being ended")
            return
        ended = current.end(self.clock(), reason)
        self._cancel_timer(session.id)
        self._checked.pop(session.id, None)
        for sid in [s for s, (_, sess) in self._recorders.items() if sess == session.id]:
            del self._recorders[sid]
        await self.store.recording_clear(session.id)
        if current.code is not None:
            await self.store.drop_code(self.code_key(current.code))
        if current.linked_visitor is not None:
            await self.store.drop_link(current.linked_visitor, session.conversation_id)
        await self.sio.emit("cobrowse_ended", ended.for_customer(), to=self._room(current), namespace="/customer")
        await self.sio.emit("cobrowse_ended", ended.public(), to=room_agent(session.agent_id), namespace="/agent")
        if current.via_code:
            await self.sio.close_room(self._room(current), namespace="/customer")
        what = "consent_refused" if reason in (EndReason.DECLINED, EndReason.NO_ANSWER, EndReason.CODE_EXPIRED) else "ended"
        seconds = None if current.started_at is None else round(ended.ended_at - current.started_at, 1)  # type: ignore[operator]
        summary = ("Co-browsing declined: " if what == "consent_refused" else "Co-browsing ended: ") + REASON_TEXT[reason]
        await self._record(ended, what, summary, reason=reason.value, duration_seconds=seconds)

    async def conversation_over(self, conversation_id: int) -> None:
        """The conversation was closed or transferred: its session (if any) ends."""
        rec = await self.store.get_session(conversation_id)
        if rec is not None:
            await self.end(CobrowseSession.from_record(rec), EndReason.CONVERSATION_ENDED)

    # ------------------------------------------------------------------ helpers
    async def _held(self, agent: AgentRef, raw_conversation_id: Any) -> Any:
        """The open conversation this agent holds (supervisors too only if it is theirs: nobody else watches)."""
        conv = await self.hub.assigned(agent, raw_conversation_id)
        if conv.assigned_agent_id != agent.id:
            raise CobrowseError("forbidden", "this conversation is not assigned to you")
        return conv

    async def _live_of_agent(self, agent: AgentRef, data: Any) -> CobrowseSession:
        conv = await self._held(agent, _payload(data).get("conversation_id"))
        session = await self.session_of(conv.id)
        if session is None or session.state is not CobrowseState.LIVE:
            raise CobrowseError("conflict", "no live co-browsing session on this conversation")
        return session

    async def _customer_session(self, session_data: dict[str, Any], raw_id: Any) -> CobrowseSession:
        """The session this customer socket may act on: its own conversation's, by its id."""
        sid = valid_session_id(raw_id)
        conv_id = session_data.get("room")
        session = await self.session_of(int(conv_id)) if conv_id is not None else None
        if session is None or session.id != sid or session.customer_id != session_data.get("customer_id"):
            session = await self._linked_session(session_data)
            if session is None or session.id != sid:
                raise CobrowseError("not_found", "no such co-browsing session")
        return session

    async def _still_held(self, session: CobrowseSession) -> bool:
        """While live, at most every few seconds: is the chat still open and the agent's? If not, it ends."""
        now = self.clock()
        if now - self._checked.get(session.id, 0.0) < ASSIGNMENT_RECHECK_SECONDS:
            return True
        self._checked[session.id] = now
        if len(self._checked) > 10_000:  # sessions ended on other processes leave entries here: forget the old ones
            self._checked = {k: t for k, t in self._checked.items() if now - t < 3600}
        conv = await self.hub.repo.conversation(session.conversation_id)
        if conv is not None and conv.status != "closed" and conv.assigned_agent_id == session.agent_id:
            return True
        await self.end(session, EndReason.CONVERSATION_ENDED)
        return False

    async def _recording(self, session: CobrowseSession, sid: str) -> None:
        """This socket records the session's page: counted in the shared set (once per socket and session)."""
        if self._recorders.get(sid) != (session.conversation_id, session.id):
            self._recorders[sid] = (session.conversation_id, session.id)
            await self.store.recording_add(session.id, sid, SESSION_TTL)
            self._cancel_timer(session.id)  # a new page came back within the grace period (on this process)

    def _wait(self, sid: str, kind: str, burst: int, rate: float) -> float:
        now = self.clock()
        bucket = self._buckets.get((sid, kind))
        if bucket is None:
            bucket = self._buckets[(sid, kind)] = TokenBucket(burst, rate, now)
        return bucket.take(now)

    def _timer(self, session_id: str, seconds: float, then: Callable[[], Awaitable[None]]) -> None:
        self._cancel_timer(session_id)

        async def later() -> None:
            await asyncio.sleep(seconds)
            self._timers.pop(session_id, None)
            try:
                await then()
            except Exception:  # noqa: BLE001 - e.g. the store unreachable: the session record expires by its TTL
                log.exception("co-browsing: a timer could not end its session")

        self._timers[session_id] = asyncio.get_running_loop().create_task(later())

    def _cancel_timer(self, session_id: str) -> None:
        task = self._timers.pop(session_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _no_answer(self, session_id: str, conversation_id: int) -> None:
        rec = await self.store.get_session(conversation_id)
        session = CobrowseSession.from_record(rec) if rec is not None else None
        if session is not None and session.id == session_id and session.state is CobrowseState.PENDING:
            await self.end(session, EndReason.CODE_EXPIRED if session.via_code else EndReason.NO_ANSWER)

    async def _left(self, session_id: str, conversation_id: int) -> None:
        if await self.store.recording_count(session_id):
            return  # a page came back (maybe on another process)
        rec = await self.store.get_session(conversation_id)
        if rec is not None and rec.get("id") == session_id and rec.get("state") == CobrowseState.LIVE.value:
            await self.end(CobrowseSession.from_record(rec), EndReason.CUSTOMER_LEFT)

    async def _record(self, session: CobrowseSession, event: str, summary: str, **extra: Any) -> None:
        """One line on the customer's timeline (who, when, what; never page content)."""
        from crm_store.domain.interactions import InteractionKind
        from crm_store.repositories.interactions import record_interaction

        payload = {"session_id": session.id, "event": event, "agent_name": session.agent_name,
                   **{k: v for k, v in extra.items() if v is not None}}
        try:
            async with self.hub.db.transaction() as s:
                await record_interaction(s, session.customer_id, InteractionKind.COBROWSE, "web", summary, payload,
                                         agent_id=session.agent_id, conversation_id=session.conversation_id)
        except Exception:  # noqa: BLE001 - the session goes on; the missing line is logged
            log.exception("could not record a co-browsing event on the timeline")

    async def stop(self) -> None:
        for task in list(self._timers.values()):
            task.cancel()
        self._timers.clear()


COBROWSE_KEY = web.AppKey("cobrowse", CobrowseRelay)  # the app's relay (tests shorten its timers)


def install(sio: socketio.AsyncServer, hub: HubService, customer_ns: Any, agent_ns: Any,
            relay: CobrowseRelay | None = None) -> CobrowseRelay:
    """Add the ``cobrowse_*`` events to the ``/customer`` and ``/agent`` namespaces (python-socketio dispatches
    ``on_<event>`` by name); a customer socket's close is passed on to the relay."""
    relay = relay or CobrowseRelay(sio, hub)

    async def agent_of(sid: str) -> AgentRef:
        agent: AgentRef = (await agent_ns.get_session(sid))["agent"]
        return agent

    def agent_handler(method: Callable[[AgentRef, Any], Awaitable[dict[str, Any]]]) -> Callable[[str, Any], Awaitable[dict[str, Any]]]:
        async def handle(sid: str, data: Any = None) -> dict[str, Any]:
            async def run() -> dict[str, Any]:
                return await method(await agent_of(sid), data)
            return await _acked(run)
        return handle

    agent_ns.on_cobrowse_start = agent_handler(relay.agent_start)
    agent_ns.on_cobrowse_end = agent_handler(relay.agent_end)
    agent_ns.on_cobrowse_status = agent_handler(relay.agent_status)
    agent_ns.on_cobrowse_checkout = agent_handler(relay.agent_checkout)
    agent_ns.on_cobrowse_control_request = agent_handler(relay.agent_control_request)
    agent_ns.on_cobrowse_control_release = agent_handler(relay.agent_control_release)

    async def on_agent_control_action(sid: str, data: Any = None) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            return await relay.agent_control_action(sid, await agent_of(sid), data)
        return await _acked(run)

    agent_ns.on_cobrowse_control_action = on_agent_control_action

    async def on_agent_pointer(sid: str, data: Any = None) -> None:
        try:
            await relay.agent_pointer(sid, await agent_of(sid), data)
        except Exception:  # noqa: BLE001 - a pointer is best effort
            log.exception("co-browsing pointer failed")

    agent_ns.on_cobrowse_pointer = on_agent_pointer

    async def customer_data(sid: str) -> dict[str, Any]:
        data: dict[str, Any] = await customer_ns.get_session(sid)
        return data

    async def on_customer_status(sid: str, data: Any = None) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            return await relay.customer_status(sid, await customer_data(sid))
        return await _acked(run)

    async def on_customer_consent(sid: str, data: Any = None) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            return await relay.customer_consent(await customer_data(sid), data, sid)
        return await _acked(run)

    async def on_customer_events(sid: str, data: Any = None) -> dict[str, Any]:
        return await relay.customer_events(sid, await customer_data(sid), data)

    async def on_customer_end(sid: str, data: Any = None) -> dict[str, Any]:
        async def run() -> dict[str, Any]:
            return await relay.customer_end(await customer_data(sid), data)
        return await _acked(run)

    async def on_customer_join(sid: str, data: Any = None) -> dict[str, Any]:
        from contact_center.realtime import _address_of

        try:
            address = _address_of(relay.sio.get_environ(sid, namespace="/customer") or {})
        except Exception:  # noqa: BLE001 - no handshake to read: one shared key
            address = "unknown"
        return await relay.customer_join(sid, await customer_data(sid), data, address)

    customer_ns.on_cobrowse_join = on_customer_join

    def customer_handler(method: Callable[[dict[str, Any], Any], Awaitable[dict[str, Any]]]) -> Callable[[str, Any], Awaitable[dict[str, Any]]]:
        async def handle(sid: str, data: Any = None) -> dict[str, Any]:
            async def run() -> dict[str, Any]:
                return await method(await customer_data(sid), data)
            return await _acked(run)
        return handle

    customer_ns.on_cobrowse_control = customer_handler(relay.customer_control)
    customer_ns.on_cobrowse_control_revoke = customer_handler(relay.customer_control_revoke)
    customer_ns.on_cobrowse_control_result = customer_handler(relay.customer_control_result)
    customer_ns.on_cobrowse_status = on_customer_status
    customer_ns.on_cobrowse_consent = on_customer_consent
    customer_ns.on_cobrowse_events = on_customer_events
    customer_ns.on_cobrowse_end = on_customer_end

    original_disconnect = customer_ns.on_disconnect

    async def on_disconnect(sid: str, *args: Any) -> None:
        try:
            data = await customer_data(sid)
        except KeyError:
            data = None
        await original_disconnect(sid, *args)
        if data is not None:
            try:
                await relay.customer_gone(sid, data)
            except Exception:  # noqa: BLE001
                log.exception("co-browsing: could not handle a closed customer socket")

    customer_ns.on_disconnect = on_disconnect

    # the agent closes, transfers or hands the chat back: its session ends at once
    for name in ("on_close", "on_transfer", "on_handback"):
        original = getattr(agent_ns, name, None)
        if original is not None:
            setattr(agent_ns, name, _ending_after(original, relay))
    return relay


def _ending_after(original: Callable[[str, Any], Awaitable[dict[str, Any]]], relay: CobrowseRelay) -> Callable[[str, Any], Awaitable[dict[str, Any]]]:
    async def handle(sid: str, data: Any = None) -> dict[str, Any]:
        ack = await original(sid, data)
        if isinstance(ack, dict) and ack.get("ok") and isinstance(data, dict):
            cid = data.get("conversation_id")
            if isinstance(cid, int) and not isinstance(cid, bool):
                try:
                    await relay.conversation_over(cid)
                except Exception:  # noqa: BLE001
                    log.exception("co-browsing: could not end the session of a closed conversation")
        return ack
    return handle


# ---------------------------------------------------------------------- the replay frame (HTTP)
FRAME_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Co-browsing view</title>
<style>
html,body{margin:0;height:100%;overflow:hidden;background:#f1f5f9;font:13px system-ui,sans-serif;color:#475569}
#status{padding:12px}#status:empty{display:none}
#stage{position:relative}
#replay{position:absolute;left:0;top:0;overflow:hidden;background:#fff}
#overlay{position:absolute;left:0;top:0;z-index:10;cursor:crosshair}
.replayer-wrapper{position:relative}
.replayer-wrapper>iframe{border:0;pointer-events:none;display:block}
.replayer-mouse{position:absolute;width:14px;height:14px;margin:-7px 0 0 -7px;border-radius:50%;background:rgba(37,99,235,.55);border:2px solid #fff;z-index:5;transition:left .05s linear,top .05s linear}
.replayer-mouse-tail{display:none}
</style>
</head>
<body>
<div id="status">Waiting for the customer's page&hellip;</div>
<div id="stage"><div id="replay"></div><div id="overlay"></div></div>
<script src="/static/console/dist/cobrowse-replay.js"></script>
</body>
</html>
"""


_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")


def asset_origins(allowed_origins: Sequence[str], extra: Mapping[str, str]) -> tuple[str, ...]:
    """Where the replayed page may load images and fonts from: the shops that embed the widget
    (``ALLOWED_ORIGINS``) and ``COBROWSE_ASSET_ORIGINS`` (a shop's CDN; comma- or space-separated
    ``https://host[:port]``). Anything else is not fetched by the agent's browser: a customer who edits their
    page cannot make it call a URL of theirs (a tracking pixel would learn the agent's address)."""
    raw = [*allowed_origins, *re.split(r"[\s,]+", extra.get("COBROWSE_ASSET_ORIGINS", ""))]
    return tuple(dict.fromkeys(o.rstrip("/") for o in raw if o and _ORIGIN.fullmatch(o.rstrip("/"))))


def frame_csp(origins: Sequence[str] = ()) -> str:
    """The replay frame's policy: our replay script only (no inline script, no eval), no connections, the customer
    page's images and fonts from this hub and the shop's own origins (:func:`asset_origins`), and inline styles
    (rrweb rebuilds stylesheets as ``<style>``). The customer's page itself is rebuilt in an inner iframe that rrweb
    sandboxes ``allow-same-origin`` only, so nothing in it ever runs, and it inherits this policy. Framed by the
    console only."""
    sources = " ".join(("'self'", *origins, "data:", "blob:"))
    return (
        f"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src {sources}; "
        f"font-src {sources}; connect-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
    )


async def replay_frame(request: web.Request) -> web.Response:
    """GET /console/cobrowse-frame: the page the console frames for the live view."""
    settings = request.app[SETTINGS_KEY]
    origins = asset_origins(settings.allowed_origins, settings.extra)
    return web.Response(text=FRAME_HTML, content_type="text/html", headers={
        "Content-Security-Policy": frame_csp(origins), "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
    })


def add_routes(app: web.Application) -> None:
    app.router.add_get("/console/cobrowse-frame", replay_frame)
