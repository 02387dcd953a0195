"""The supervisor view: a live snapshot of queues, agents, service levels and staffing, pushed over Socket.IO.

Three parts (issue 4; figures defined in ``docs/subsystems/supervision.md``):

* :func:`compose_snapshot` (pure, in ``contact_center.domain.supervision``, re-exported here with its
  dataclasses and constants): turns what SQL and the shared state say into one JSON-ready dict: figures
  per queue, per channel and in total, agents, today's intervals, staffing (Erlang C), alerts.
* :class:`SnapshotBuilder`: reads those inputs with a fixed, small number of queries per build (one
  ``contact_records`` query for today, the agent state log of today, the open conversations; queues,
  agents and the overdue-order count are cached for :data:`REFERENCE_TTL_SECONDS`) through
  ``crm_store.repositories.stats`` and ``crm_store.repositories.supervision``, and caches the result,
  so every viewer of one hub process shares one build.
* :class:`SupervisorNamespace` (Socket.IO ``/supervisor``, supervisor and admin sessions only) and the HTTP
  routes ``GET /supervisor`` (the page) and ``GET /api/supervisor/snapshot`` (JSON), mounted by
  :func:`register`, which also starts the push loop (every :data:`PUSH_INTERVAL_SECONDS` to the room
  :data:`SUPERVISOR_ROOM`, only while a supervisor is connected to this process).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, AsyncIterator, Callable, Mapping

import socketio
from aiohttp import web

from contact_center.api.auth import PRINCIPAL_KEY
from contact_center.api.errors import error_response
from contact_center.domain.supervision import (  # the pure part, re-exported: tests and callers import it from here
    DEFAULT_SL_TARGET_RATIO as DEFAULT_SL_TARGET_RATIO,
    DEFAULT_SL_TARGET_SECONDS as DEFAULT_SL_TARGET_SECONDS,
    FALLBACK_AHT_SECONDS as FALLBACK_AHT_SECONDS,
    INTERVAL_MINUTES as INTERVAL_MINUTES,
    LONG_WAIT_ALERT_SECONDS as LONG_WAIT_ALERT_SECONDS,
    STAFFING_WINDOW_INTERVALS as STAFFING_WINDOW_INTERVALS,
    WAITING_ALERT_LIMIT as WAITING_ALERT_LIMIT,
    AgentInfo as AgentInfo,
    OpenConversation as OpenConversation,
    PresenceLike as PresenceLike,
    QueueInfo as QueueInfo,
    build_alerts as build_alerts,
    compose_snapshot as compose_snapshot,
    local_day_start as local_day_start,
)
from contact_center.hub.service import AgentRef, HubError, HubService
from contact_center.keys import HUB_KEY, SESSIONS_KEY
from contact_center.sessions import SessionGate
from contact_center.tasks import stop_tasks
from contact_center.web import STATIC, current_agent
from crm_store.repositories import alerts as alerts_repo
from crm_store.repositories import callbacks as callbacks_repo
from crm_store.repositories import stats as stats_repo
from crm_store.repositories import supervision as supervision_repo

try:  # the hub names the room it publishes watched conversations to
    from contact_center.hub.service import room_monitor
except ImportError:  # pragma: no cover - older hub

    def room_monitor(conversation_id: int) -> str:
        """The /supervisor room of the supervisors watching a conversation."""
        return f"monitor:{conversation_id}"


log = logging.getLogger("contact_center.supervisor")

NAMESPACE = "/supervisor"
"""The Socket.IO namespace of the supervisor dashboard."""

SUPERVISOR_ROOM = "supervisors"
"""Every dashboard socket joins this room; snapshots are pushed to it."""

SUPERVISOR_ROLES = frozenset({"supervisor", "admin"})
"""Roles allowed to see the dashboard and act on other agents' conversations."""

PUSH_INTERVAL_SECONDS = 2.0
"""How often a fresh snapshot is pushed while at least one supervisor is connected to this process."""

REFERENCE_TTL_SECONDS = 30.0
"""How long queues, agents and the overdue-order count are cached between snapshot builds."""

OPEN_CONVERSATIONS_LIMIT = 1000
"""At most this many open conversations are listed (the oldest first)."""


# -- reading the inputs -------------------------------------------------------------------------------


def _queue_info(r: supervision_repo.QueueRow) -> QueueInfo:
    """A stored queue as the snapshot reads it (empty settings take the defaults)."""
    return QueueInfo(
        name=r.name,
        id=r.id,
        sl_target_seconds=float(r.sl_target_seconds if r.sl_target_seconds is not None else DEFAULT_SL_TARGET_SECONDS),
        sl_target_ratio=float(r.sl_target_ratio) if r.sl_target_ratio else DEFAULT_SL_TARGET_RATIO,
        max_waiting=int(r.max_waiting) if r.max_waiting else None,
        skills_required=r.skills_required,
        channels=r.channels,
    )


def _agent_info(r: supervision_repo.AgentRow) -> AgentInfo:
    return AgentInfo(r.id, r.username, r.display_name, r.role, r.skills)


def _open_conversation(r: supervision_repo.OpenConversationRow, queue_names: Mapping[int, str]) -> OpenConversation:
    """An open conversation as the snapshot reads it: its queue by name, a customer without one as "Visitor <id>"."""
    return OpenConversation(
        id=r.id, status=r.status, channel=r.channel, queue=queue_names.get(r.queue_id, "") if r.queue_id else "",
        customer_id=r.customer_id, customer_name=r.customer_display_name or f"Visitor {r.customer_id}",
        agent_id=r.agent_id, subject=r.subject or "", queued_at=r.queued_at, assigned_at=r.assigned_at,
        created_at=r.created_at, updated_at=r.updated_at,
    )


class SnapshotBuilder:
    """Builds snapshots from SQL and the shared state, and caches them so all viewers share one build.

    :param hub: the hub (its ``db``, ``store`` and ``clock``).
    :param tz: the time zone whose midnight starts "today" (default: the server's local time zone).
    :param clock: epoch seconds now (default: the hub's clock).
    """

    def __init__(self, hub: HubService, *, tz: tzinfo | None = None, clock: Callable[[], float] | None = None) -> None:
        self.hub = hub
        self.tz = tz
        self.clock = clock or hub.clock
        self._lock = asyncio.Lock()
        self._cached: dict[str, Any] | None = None
        self._cached_at = -math.inf
        self._reference: tuple[list[QueueInfo], list[AgentInfo]] | None = None
        self._reference_at = -math.inf
        self._overdue: tuple[date, int] | None = None
        self._overdue_at = -math.inf

    def invalidate(self) -> None:
        """Forget the cached snapshot (after an action, the next one is built fresh)."""
        self._cached_at = -math.inf

    async def snapshot(self, max_age: float = 1.0) -> dict[str, Any]:
        """The cached snapshot if it is younger than ``max_age`` seconds, else a fresh one."""
        async with self._lock:
            if self._cached is not None and time.monotonic() - self._cached_at < max_age:
                return self._cached
            snap = await self._build()
            self._cached, self._cached_at = snap, time.monotonic()
            return snap

    async def build(self) -> dict[str, Any]:
        """A fresh snapshot (also cached)."""
        return await self.snapshot(max_age=0.0)

    async def _references(self) -> tuple[list[QueueInfo], list[AgentInfo]]:
        """Queues and active agents, cached for :data:`REFERENCE_TTL_SECONDS`."""
        if self._reference is None or time.monotonic() - self._reference_at >= REFERENCE_TTL_SECONDS:
            queues, agents = await supervision_repo.queues_and_active_agents(self.hub.db)
            self._reference = ([_queue_info(r) for r in queues], [_agent_info(r) for r in agents])
            self._reference_at = time.monotonic()
        return self._reference

    async def _overdue_count(self, today: date) -> int:
        if self._overdue is None or self._overdue[0] != today or time.monotonic() - self._overdue_at >= REFERENCE_TTL_SECONDS:
            count = await supervision_repo.overdue_order_count(self.hub.db, today)
            self._overdue, self._overdue_at = (today, count), time.monotonic()
        return self._overdue[1]

    async def _open_conversations(self, queue_names: Mapping[int, str]) -> list[OpenConversation]:
        rows = await supervision_repo.open_conversations(self.hub.db, OPEN_CONVERSATIONS_LIMIT)
        return [_open_conversation(r, queue_names) for r in rows]

    async def _build(self) -> dict[str, Any]:
        now = datetime.fromtimestamp(self.clock(), timezone.utc)
        day_start = local_day_start(now, self.tz)
        queues, agents = await self._references()
        ids = {q.id: q.name for q in queues if q.id is not None}
        since = min(day_start, now - timedelta(minutes=INTERVAL_MINUTES * STAFFING_WINDOW_INTERVALS))
        records = await stats_repo.contact_records(self.hub.db, since, now + timedelta(minutes=1))
        states = await stats_repo.agent_state_rows(self.hub.db, day_start, now + timedelta(seconds=1))
        open_convs = await self._open_conversations(ids)
        presences = await self.hub.store.all_presence()
        local_today = (now.astimezone(self.tz) if self.tz is not None else now.astimezone()).date()
        overdue = await self._overdue_count(local_today)
        snap = compose_snapshot(
            now=now, day_start=day_start, records=records, states=states, queues=queues, agents=agents,
            presences=presences, open_conversations=open_convs, overdue_orders=overdue,
            agent_reasons=await self.hub.store.status_reasons(),  # why the hub set a state (usecases/offers.py)
        )
        # Issue 18: order and stock alerts (raised once by the evaluation timer) and the fulfilment queue's
        # stamp, for supervisor-evaluation.js (docs/subsystems/order-evaluation.md, "Alerts").
        async with self.hub.db.session() as s:
            snap.update(await alerts_repo.supervisor_extras(s))
        snap["callbacks"] = await self._callbacks(day_start)
        return snap

    async def _callbacks(self, day_start: datetime) -> dict[str, Any]:
        """Web callback's figures (docs/subsystems/callback.md): open ones by state, today's completed, failed and
        cancelled, and the service level (seconds from the requested moment to a connected call)."""
        try:
            by_state = await callbacks_repo.counts(self.hub.db, day_start)
            delays = sorted(await callbacks_repo.connect_delays(self.hub.db, day_start))
        except Exception:  # noqa: BLE001 - the rest of the snapshot still shows
            log.warning("callback figures not read", exc_info=True)
            return {}
        return {
            "waiting": by_state.get("requested", 0) + by_state.get("waiting", 0), "scheduled": by_state.get("scheduled", 0),
            "attempting": by_state.get("dialling", 0) + by_state.get("connected", 0), "completed": by_state.get("completed", 0),
            "failed": by_state.get("failed", 0), "cancelled": by_state.get("cancelled", 0), "connected_today": len(delays),
            "median_seconds_to_connect": delays[len(delays) // 2] if delays else None,
            "max_seconds_to_connect": delays[-1] if delays else None,
        }


# -- Socket.IO ------------------------------------------------------------------------------------------


def _payload(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise HubError("bad_request", "payload must be an object")
    return data


async def _acked(fn: Callable[[], Any]) -> dict[str, Any]:
    """Run a handler and turn its outcome into an acknowledgement (never an unhandled exception)."""
    try:
        return {"ok": True, **(await fn())}
    except HubError as exc:
        return exc.as_ack()
    except Exception:  # noqa: BLE001 - a client must get an answer, the bug gets logged
        log.exception("supervisor socket handler failed")
        return {"ok": False, "error": {"code": "internal", "message": "something went wrong on our side"}}


class SupervisorNamespace(socketio.AsyncNamespace):
    """The supervisor dashboard's connection (``/supervisor``), for supervisor and admin sessions only.

    S->C ``snapshot`` (on connect, then every :data:`PUSH_INTERVAL_SECONDS`), ``message`` (the live
    messages of the conversations this socket watches). C->S, each acknowledged ``{ok, ...}``:
    ``snapshot``, ``watch`` / ``unwatch`` ``{conversation_id}``, ``whisper`` ``{conversation_id, text}``,
    ``reassign`` ``{conversation_id, agent_id? | queue?}``, ``set_agent_status`` ``{agent_id, status}``,
    ``call_monitor`` ``{conversation_id, mode}`` (a live call: listen, whisper, barge, leave).
    """

    def __init__(self, hub: HubService, sessions: SessionGate, builder: SnapshotBuilder, clock: Callable[[], float] = time.time) -> None:
        super().__init__(NAMESPACE)
        self.hub, self.sessions, self.builder, self.clock = hub, sessions, builder, clock
        self.viewers: set[str] = set()
        self._watching: dict[str, set[int]] = {}
        self.refresh = asyncio.Event()

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        """Check the session cookie (supervisor or admin), join the supervisors' room, send a snapshot."""
        session = await self.sessions.load_from_environ(environ, self.clock())
        if session is None:
            raise socketio.exceptions.ConnectionRefusedError("log in first")
        if session.role not in SUPERVISOR_ROLES:
            raise socketio.exceptions.ConnectionRefusedError("supervisors only")
        actor = AgentRef(session.agent_id, session.username, session.display_name, session.role)
        await self.save_session(sid, {"actor": actor})
        self.sessions.attach(NAMESPACE, sid, session)
        await self.enter_room(sid, SUPERVISOR_ROOM)
        self.viewers.add(sid)
        try:
            snap = await self.builder.snapshot(max_age=PUSH_INTERVAL_SECONDS)
        except Exception:  # noqa: BLE001 - the push loop tries again; the connection stays
            log.exception("could not build the supervisor snapshot")
            return
        await self.emit("snapshot", snap, to=sid)

    async def on_disconnect(self, sid: str, *args: Any) -> None:
        """Stop the socket's watches."""
        self.sessions.detach(NAMESPACE, sid)
        self.viewers.discard(sid)
        for cid in self._watching.pop(sid, set()):
            await self._unmonitor(cid, sid)

    async def _actor(self, sid: str) -> AgentRef:
        actor: AgentRef = (await self.get_session(sid))["actor"]
        return actor

    async def _unmonitor(self, cid: int, sid: str) -> None:
        unmonitor = getattr(self.hub, "unmonitor", None)
        if unmonitor is None:
            return
        try:
            await unmonitor(cid, sid)
        except Exception:  # noqa: BLE001 - leaving a watch must not fail a disconnect
            log.exception("could not stop watching", extra={"conversation_id": cid})

    def _changed(self) -> None:
        """An action changed something: the next snapshot is built fresh and pushed soon."""
        self.builder.invalidate()
        self.refresh.set()

    async def on_snapshot(self, sid: str, data: Any = None) -> dict[str, Any]:
        """The latest snapshot, now."""
        async def run() -> dict[str, Any]:
            return {"snapshot": await self.builder.snapshot(max_age=1.0)}

        return await _acked(run)

    async def on_watch(self, sid: str, data: Any) -> dict[str, Any]:
        """Watch a conversation silently: its transcript now, its messages live after (``message``)."""
        async def run() -> dict[str, Any]:
            actor = await self._actor(sid)
            raw = _payload(data).get("conversation_id")
            if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
                raise HubError("bad_request", "conversation_id must be a positive integer")
            room = room_monitor(raw)
            await self.enter_room(sid, room)  # before the transcript is read: nothing falls in between
            try:
                params = inspect.signature(self.hub.monitor).parameters
                if "watcher" in params:
                    result = await self.hub.monitor(actor, raw, watcher=sid)
                else:
                    result = await self.hub.monitor(actor, raw)  # type: ignore[call-arg]  # a hub without watchers
            except BaseException:
                await self.leave_room(sid, room)
                raise
            self._watching.setdefault(sid, set()).add(raw)
            return {"conversation": result}

        return await _acked(run)

    async def on_unwatch(self, sid: str, data: Any) -> dict[str, Any]:
        """Stop watching a conversation."""
        async def run() -> dict[str, Any]:
            raw = _payload(data).get("conversation_id")
            if isinstance(raw, bool) or not isinstance(raw, int) or raw <= 0:
                raise HubError("bad_request", "conversation_id must be a positive integer")
            await self.leave_room(sid, room_monitor(raw))
            if raw in self._watching.get(sid, set()):
                self._watching[sid].discard(raw)
                await self._unmonitor(raw, sid)
            return {"conversation_id": raw}

        return await _acked(run)

    async def on_whisper(self, sid: str, data: Any) -> dict[str, Any]:
        """A note to the agent of a conversation that the customer never sees."""
        async def run() -> dict[str, Any]:
            p = _payload(data)
            return {"message": await self.hub.whisper(await self._actor(sid), p.get("conversation_id"), p.get("text"))}

        return await _acked(run)

    async def on_reassign(self, sid: str, data: Any) -> dict[str, Any]:
        """Move a conversation to another agent or queue."""
        async def run() -> dict[str, Any]:
            p = _payload(data)
            result = await self.hub.reassign(
                await self._actor(sid), p.get("conversation_id"), to_agent=p.get("agent_id"), to_queue=p.get("queue")
            )
            self._changed()
            return {"result": result}

        return await _acked(run)

    async def on_call_monitor(self, sid: str, data: Any) -> dict[str, Any]:
        """Be on a live call: ``{conversation_id, mode: listen | whisper | barge | leave}`` (the phone's
        conference: muted, coaching the agent, or heard by all); the supervisor's softphone leg rings in."""
        async def run() -> dict[str, Any]:
            p = _payload(data)
            result = await self.hub.supervise_call(await self._actor(sid), p.get("conversation_id"), p.get("mode"))
            return {"result": result}

        return await _acked(run)

    async def on_set_agent_status(self, sid: str, data: Any) -> dict[str, Any]:
        """Change an agent's state (available / away / offline)."""
        async def run() -> dict[str, Any]:
            p = _payload(data)
            status = await self.hub.supervisor_set_status(await self._actor(sid), p.get("agent_id"), p.get("status"))
            self._changed()
            return {"agent_id": p.get("agent_id"), "status": status}

        return await _acked(run)


async def push_loop(sio: socketio.AsyncServer, namespace: SupervisorNamespace, interval: float = PUSH_INTERVAL_SECONDS) -> None:
    """Push a snapshot to this process's supervisors every ``interval`` seconds (sooner after an action).

    Nothing is built while no supervisor is connected here. With several hub processes each pushes only
    to its own sockets (``ignore_queue``), so a supervisor gets one snapshot per tick, not one per process.
    """
    while True:
        with contextlib.suppress(TimeoutError):  # asyncio.timeout keeps a shutdown's cancellation (wait_for may not)
            async with asyncio.timeout(interval):
                await namespace.refresh.wait()
        namespace.refresh.clear()
        if not namespace.viewers:
            continue
        try:
            snap = await namespace.builder.build()
            await sio.emit("snapshot", snap, to=SUPERVISOR_ROOM, namespace=NAMESPACE, ignore_queue=True)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the loop must survive a bad pass; it is logged
            log.exception("supervisor push failed")


# -- HTTP -----------------------------------------------------------------------------------------------


@dataclass
class Supervision:
    """The supervisor parts of a running app (set once the hub is up)."""

    builder: SnapshotBuilder | None = None
    namespace: SupervisorNamespace | None = None
    task: asyncio.Task[None] | None = None


SUPERVISION_KEY = web.AppKey("supervision", Supervision)


async def supervisor_page(request: web.Request) -> web.StreamResponse:
    """GET /supervisor: the dashboard for supervisors and admins; others go to the console's login or get 403."""
    session = await current_agent(request)
    if session is None:
        raise web.HTTPFound("/console?next=/supervisor")
    if session.role not in SUPERVISOR_ROLES:
        return web.Response(
            status=403,
            content_type="text/html",
            text=(
                "<!doctype html><meta charset=utf-8><title>Supervisors only</title>"
                "<p>The supervisor view is for supervisors. <a href=\"/console\">Back to the console</a></p>"
            ),
        )
    return web.FileResponse(STATIC / "supervisor.html", headers={"Cache-Control": "no-cache"})


async def snapshot_api(request: web.Request) -> web.Response:
    """GET /api/supervisor/snapshot: the dashboard's snapshot as JSON (service token, or a supervisor's session)."""
    principal = request.get(PRINCIPAL_KEY)
    if principal is None or (principal.kind != "service" and principal.role not in SUPERVISOR_ROLES):
        return error_response(403, "forbidden", "supervisors only")
    sup = request.app[SUPERVISION_KEY]
    if sup.builder is None:
        return error_response(503, "unavailable", "the hub is starting")
    return web.json_response(await sup.builder.snapshot(max_age=1.0))


def register(app: web.Application, sio: socketio.AsyncServer, hub: HubService | None = None) -> None:
    """Mount the supervisor view on the app: routes now, the namespace and push loop when the app starts.

    Call it in ``create_app`` (before the app starts; after ``app.cleanup_ctx.append(_hub)``, since it
    reads ``app[HUB_KEY]`` at start when ``hub`` is not given). Calling it twice changes nothing.
    """
    if SUPERVISION_KEY in app:
        return
    sup = Supervision()
    app[SUPERVISION_KEY] = sup
    app.router.add_get("/supervisor", supervisor_page)
    # GET /api/supervisor/snapshot is in the API's route table (contact_center/api/routes.py), so the
    # OpenAPI document lists it; it calls snapshot_api.

    async def supervision(app_: web.Application) -> AsyncIterator[None]:
        the_hub = hub if hub is not None else app_[HUB_KEY]
        sup.builder = SnapshotBuilder(the_hub)
        sup.namespace = SupervisorNamespace(the_hub, app_[SESSIONS_KEY], sup.builder)
        sio.register_namespace(sup.namespace)
        sup.task = asyncio.get_running_loop().create_task(push_loop(sio, sup.namespace))
        yield
        await stop_tasks([sup.task])

    app.cleanup_ctx.append(supervision)
