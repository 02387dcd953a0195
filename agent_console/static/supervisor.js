// Supervisor dashboard: one page, plain ES module, no build step, no external libraries.
// Protocol: Socket.IO namespace /supervisor (docs/subsystems/supervision.md, "The live dashboard").
// Every piece of customer or agent data goes into the page as text (textContent / text nodes), never as HTML.

import { $, h } from "./supervisor-dom.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/** An SVG element with attributes (never any markup from data). */
function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined) continue;
    node.setAttribute(key, String(value));
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

// ------------------------------------------------------------------ formatting

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
const hmFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });

function dur(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(Number(seconds))) return "–";
  let t = Math.max(0, Math.round(Number(seconds)));
  const hours = Math.floor(t / 3600);
  t -= hours * 3600;
  const m = Math.floor(t / 60);
  const sec = String(t % 60).padStart(2, "0");
  return hours ? `${hours}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}
function pct(x) {
  return x === null || x === undefined ? "–" : `${Math.round(Number(x) * 100)}%`;
}
function num(x, digits = 0) {
  return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
}
function humanize(v) {
  return String(v ?? "").replace(/_/g, " ");
}

// ------------------------------------------------------------------ state

const state = {
  socket: null,
  snap: null,
  offset: 0, // Date.now() - server time at the last snapshot
  watching: null, // {id, seqs: Set}
  chartKey: "",
  me: null,
};

function serverNow() {
  return Date.now() - state.offset;
}

function toast(text, kind = "info") {
  const t = $("toast");
  t.textContent = text;
  t.dataset.kind = kind;
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (t.hidden = true), 4000);
}

function setConn(stateName, label) {
  const c = $("conn");
  c.dataset.state = stateName;
  c.querySelector(".conn-label").textContent = label;
}

function call(event, payload) {
  return new Promise((resolve) => {
    if (!state.socket || !state.socket.connected) {
      resolve({ ok: false, error: { code: "unavailable", message: "not connected" } });
      return;
    }
    state.socket.timeout(10000).emit(event, payload, (err, ack) => {
      if (err) resolve({ ok: false, error: { code: "unavailable", message: "no answer from the hub" } });
      else resolve(ack || { ok: false, error: { code: "internal", message: "empty answer" } });
    });
  });
}

// ------------------------------------------------------------------ keyed rows

/** Keep a container's children in step with items, by key: rows are updated in place, so a control in use keeps its state. */
function syncRows(container, items, key, create, update) {
  const existing = new Map();
  for (const el of Array.from(container.children)) existing.set(el.dataset.key, el);
  const wanted = new Set();
  items.forEach((item, i) => {
    const k = String(key(item));
    wanted.add(k);
    let el = existing.get(k);
    if (!el) {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    if (container.children[i] !== el) container.insertBefore(el, container.children[i] || null);
  });
  for (const [k, el] of existing) if (!wanted.has(k)) el.remove();
}

/** Set a cell's text only when it changed (keeps the DOM quiet). */
function setText(el, text) {
  const t = String(text);
  if (el.textContent !== t) el.textContent = t;
}

function cell(row, field) {
  return row.querySelector(`[data-field="${field}"]`);
}

// ------------------------------------------------------------------ rendering

function render(snap) {
  queueMicrotask(renderCallBox);
  if (!snap) return;
  state.snap = snap;
  const generated = Date.parse(snap.generated_at);
  if (Number.isFinite(generated)) state.offset = Date.now() - generated;
  setText($("updated-at"), Number.isFinite(generated) ? timeFmt.format(new Date(generated)) : "–");
  $("updated-at").setAttribute("datetime", snap.generated_at || "");
  renderAlerts(snap.alerts || []);
  renderKpis(snap);
  renderQueues(snap);
  renderStaffing(snap.staffing || []);
  renderAgents(snap);
  renderConversations(snap);
  renderChartKeys(snap);
  renderChart();
  document.dispatchEvent(new CustomEvent("supervisor:snapshot", { detail: snap })); // supervisor-evaluation.js
}

function renderAlerts(alerts) {
  const section = $("alerts");
  section.dataset.count = String(alerts.length);
  section.dataset.severity = alerts.some((a) => a.severity === "critical") ? "critical" : alerts.length ? "warning" : "ok";
  $("alerts-ok").hidden = alerts.length > 0;
  syncRows(
    $("alert-list"),
    alerts,
    (a) => a.key,
    () => h("li", { class: "alert", "data-testid": "alert" }, h("span", { class: "alert-sev" }), h("span", { class: "alert-text" })),
    (el, a) => {
      el.dataset.kind = a.kind;
      el.dataset.severity = a.severity;
      if (a.queue) el.dataset.queue = a.queue;
      setText(el.querySelector(".alert-sev"), a.severity === "critical" ? "Critical" : "Warning");
      setText(el.querySelector(".alert-text"), a.message);
    },
  );
}

function renderKpis(snap) {
  const t = snap.total || {};
  setText($("kpi-waiting"), t.waiting ?? 0);
  $("kpi-waiting").dataset.level = t.waiting_over_target > 0 ? "bad" : "";
  setText($("kpi-longest"), t.waiting ? dur(t.longest_wait_seconds) : "–");
  setText($("kpi-sl"), pct(t.service_level));
  setText($("kpi-asa"), t.asa_seconds === null || t.asa_seconds === undefined ? "–" : dur(t.asa_seconds));
  setText($("kpi-abandonment"), pct(t.abandonment_rate));
  setText($("kpi-abandoned"), `${t.abandoned ?? 0} abandoned`);
  setText($("kpi-aht"), t.aht_seconds === null || t.aht_seconds === undefined ? "–" : dur(t.aht_seconds));
  setText($("kpi-handled"), t.handled ?? 0);
  setText($("kpi-offered"), `of ${t.offered ?? 0} offered`);
  setText($("kpi-agents"), t.agents_logged_in ?? 0);
  setText($("kpi-overdue"), snap.overdue_orders ?? 0);
  $("kpi-overdue").dataset.level = snap.overdue_orders > 0 ? "warn" : "";
  // web callback (docs/subsystems/callback.md): waiting · scheduled · being attempted; today's outcomes and service level
  const cb = snap.callbacks || {};
  setText($("kpi-callbacks"), `${cb.waiting ?? 0} · ${cb.scheduled ?? 0} · ${cb.attempting ?? 0}`);
  const median = cb.median_seconds_to_connect;
  setText($("kpi-callbacks-sub"), `${cb.completed ?? 0} completed, ${cb.failed ?? 0} failed` +
    (median === null || median === undefined ? "" : `, reached in ${dur(median)} (median)`));
  $("kpi-callbacks").dataset.level = cb.failed > 0 ? "warn" : "";
}

const QUEUE_FIELDS = ["name", "waiting", "longest", "service_level", "target", "asa", "abandonment", "aht", "handled", "offered", "agents", "needed"];

function queueRow(testid) {
  return () =>
    h(
      "tr",
      { "data-testid": testid },
      QUEUE_FIELDS.map((f) => (f === "name" ? h("th", { scope: "row", "data-field": f }) : h("td", { class: "num", "data-field": f }))),
    );
}

function fillQueueRow(el, q, staffing) {
  el.dataset.queue = q.name;
  setText(cell(el, "name"), q.label || q.name || "(no queue)");
  setText(cell(el, "waiting"), q.waiting ?? 0);
  cell(el, "waiting").dataset.level = q.waiting_over_target > 0 ? "bad" : "";
  setText(cell(el, "longest"), q.waiting ? dur(q.longest_wait_seconds) : "–");
  setText(cell(el, "service_level"), pct(q.service_level));
  const below = q.service_level !== null && q.service_level !== undefined && q.sl_target_ratio && q.service_level < q.sl_target_ratio;
  cell(el, "service_level").dataset.level = below ? "bad" : "";
  setText(cell(el, "target"), q.sl_target_ratio ? `${pct(q.sl_target_ratio)} in ${num(q.sl_target_seconds)}s` : "");
  setText(cell(el, "asa"), q.asa_seconds === null || q.asa_seconds === undefined ? "–" : dur(q.asa_seconds));
  setText(cell(el, "abandonment"), q.abandoned ? `${pct(q.abandonment_rate)} (${q.abandoned})` : pct(q.abandonment_rate));
  setText(cell(el, "aht"), q.aht_seconds === null || q.aht_seconds === undefined ? "–" : dur(q.aht_seconds));
  setText(cell(el, "handled"), q.handled ?? 0);
  setText(cell(el, "offered"), q.offered ?? 0);
  setText(cell(el, "agents"), q.agents_logged_in ?? "");
  setText(cell(el, "needed"), staffing && staffing.agents_needed !== undefined ? staffing.agents_needed : "");
  const short = staffing && staffing.agents_needed > (q.agents_logged_in ?? 0);
  cell(el, "needed").dataset.level = short ? "bad" : "";
}

function renderQueues(snap) {
  const staffing = new Map((snap.staffing || []).map((r) => [r.queue, r]));
  syncRows($("queue-rows"), snap.queues || [], (q) => q.name, queueRow("queue-row"), (el, q) => fillQueueRow(el, q, staffing.get(q.name)));
  syncRows(
    $("channel-rows"),
    (snap.channels || []).map((c) => ({ ...c, label: `channel: ${c.name}` })),
    (c) => c.name,
    queueRow("channel-row"),
    (el, c) => {
      fillQueueRow(el, c, null);
      el.dataset.channel = c.name;
    },
  );
  syncRows($("total-row"), snap.total ? [{ ...snap.total, label: "Total" }] : [], () => "total", queueRow("total-row"), (el, t) => fillQueueRow(el, t, null));
}

function renderStaffing(rows) {
  syncRows(
    $("staffing-rows"),
    rows,
    (r) => r.queue,
    () =>
      h(
        "tr",
        { "data-testid": "staffing-row" },
        h("th", { scope: "row", "data-field": "queue" }),
        ["contacts", "aht", "erlangs", "needed", "logged_in", "sl", "occupancy"].map((f) => h("td", { class: "num", "data-field": f })),
      ),
    (el, r) => {
      el.dataset.queue = r.queue;
      setText(cell(el, "queue"), r.queue || "(no queue)");
      if (r.error) {
        setText(cell(el, "contacts"), r.error);
        return;
      }
      setText(cell(el, "contacts"), num(r.contacts_per_interval, 1));
      setText(cell(el, "aht"), r.aht_observed ? dur(r.aht_seconds) : `${dur(r.aht_seconds)}*`);
      cell(el, "aht").title = r.aht_observed ? "observed over the last hour" : "assumed: no handled contact in the last hour";
      setText(cell(el, "erlangs"), num(r.traffic_erlangs, 2));
      setText(cell(el, "needed"), r.agents_needed);
      setText(cell(el, "logged_in"), r.agents_logged_in);
      cell(el, "logged_in").dataset.level = r.agents_needed > r.agents_logged_in ? "bad" : "";
      setText(cell(el, "sl"), pct(r.service_level));
      setText(cell(el, "occupancy"), pct(r.occupancy));
    },
  );
  if (state.snap) {
    const th = state.snap.thresholds || {};
    setText($("staffing-note"), `Erlang C on the last ${th.staffing_window_minutes ?? 60} min · * AHT assumed ${dur(th.fallback_aht_seconds ?? 180)}`);
  }
}

const AGENT_STATES = ["available", "away", "offline"];

function renderAgents(snap) {
  syncRows(
    $("agent-rows"),
    snap.agents || [],
    (a) => a.id,
    (a) => {
      const select = h("select", { class: "select-sm", "data-testid": "agent-state-select", "aria-label": "New state" },
        AGENT_STATES.map((st) => h("option", { value: st, text: humanize(st) })));
      const button = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "agent-state-set", text: "Set" });
      button.addEventListener("click", () => setAgentState(a.id, select.value, button));
      return h(
        "tr",
        { "data-testid": "agent-row" },
        h("th", { scope: "row", "data-field": "name" }, h("span", { class: "agent-name" }), h("span", { class: "muted small role" })),
        h("td", { "data-field": "state" }, h("span", { class: "badge" })),
        h("td", { class: "num", "data-field": "in_state" }),
        h("td", { class: "num", "data-field": "conversations" }),
        h("td", { class: "num", "data-field": "occupancy" }),
        h("td", { class: "num", "data-field": "handled" }),
        h("td", { class: "actions" }, select, button),
      );
    },
    (el, a) => {
      el.dataset.agentId = String(a.id);
      el.dataset.state = a.state;
      setText(el.querySelector(".agent-name"), a.display_name);
      setText(el.querySelector(".role"), a.role === "agent" ? "" : ` ${a.role}`);
      const badge = el.querySelector(".badge");
      badge.dataset.state = a.state;
      setText(badge, humanize(a.state));
      const inState = cell(el, "in_state");
      if (a.state_since) inState.dataset.since = a.state_since;
      else delete inState.dataset.since;
      setText(inState, a.seconds_in_state === null || a.seconds_in_state === undefined ? "–" : dur(a.seconds_in_state));
      const convs = a.conversations || [];
      setText(cell(el, "conversations"), convs.length || a.load ? `${convs.length || a.load}${convs.length ? ` (#${convs.join(", #")})` : ""}` : "0");
      setText(cell(el, "occupancy"), pct(a.occupancy));
      setText(cell(el, "handled"), a.handled ?? 0);
    },
  );
}

function targetOptions(snap) {
  const agents = (snap.agents || []).map((a) => ({ value: `agent:${a.id}`, label: `${a.display_name} (${humanize(a.state)})` }));
  const queues = (snap.queue_names || []).map((q) => ({ value: `queue:${q}`, label: q }));
  return { agents, queues, sig: JSON.stringify([agents, queues]) };
}

function fillTargets(select, options) {
  if (select.dataset.sig === options.sig) return;
  const keep = select.value;
  select.replaceChildren(
    h("option", { value: "", text: "Move to…" }),
    h("optgroup", { label: "Agents" }, options.agents.map((o) => h("option", { value: o.value, text: o.label }))),
    h("optgroup", { label: "Queues" }, options.queues.map((o) => h("option", { value: o.value, text: o.label }))),
  );
  select.value = Array.from(select.options).some((o) => o.value === keep) ? keep : "";
  select.dataset.sig = options.sig;
}

function renderConversations(snap) {
  const convs = snap.conversations || [];
  $("conversations-empty").hidden = convs.length > 0;
  const options = targetOptions(snap);
  syncRows(
    $("conversation-rows"),
    convs,
    (c) => c.id,
    (c) => {
      const watch = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "conversation-watch", text: "Watch" });
      watch.addEventListener("click", () => startWatch(c.id));
      const whisper = h("button", { type: "button", class: "btn btn-note btn-sm", "data-testid": "conversation-whisper", text: "Whisper" });
      whisper.addEventListener("click", async () => {
        if (await startWatch(c.id)) $("whisper-input").focus();
      });
      const target = h("select", { class: "select-sm", "data-testid": "reassign-target", "aria-label": "Reassign to" });
      const move = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "reassign-submit", text: "Reassign" });
      move.addEventListener("click", () => reassign(c.id, target, move));
      return h(
        "tr",
        { "data-testid": "conversation-row" },
        h("td", { class: "num", "data-field": "id" }),
        h("td", { "data-field": "customer" }, h("span", { class: "cust" }), h("div", { class: "muted small subject" })),
        h("td", { "data-field": "channel" }),
        h("td", { "data-field": "queue" }),
        h("td", { "data-field": "status" }, h("span", { class: "badge" })),
        h("td", { "data-field": "agent" }),
        h("td", { class: "num", "data-field": "for" }),
        h("td", { class: "actions" }, watch, whisper, target, move),
      );
    },
    (el, c) => {
      el.dataset.conversationId = String(c.id);
      el.dataset.status = c.status;
      setText(cell(el, "id"), c.id);
      setText(el.querySelector(".cust"), c.customer_name);
      setText(el.querySelector(".subject"), c.subject || "");
      setText(cell(el, "channel"), c.channel);
      setText(cell(el, "queue"), c.queue || "–");
      const badge = el.querySelector(".badge");
      badge.dataset.state = c.status === "queued" ? "waiting" : "busy";
      setText(badge, c.status === "queued" ? "waiting" : "with agent");
      setText(cell(el, "agent"), c.agent_name || "–");
      const forCell = cell(el, "for");
      forCell.dataset.since = c.since;
      setText(forCell, dur(c.seconds));
      el.querySelector('[data-testid="conversation-whisper"]').disabled = c.status !== "assigned";
      fillTargets(el.querySelector('[data-testid="reassign-target"]'), options);
      el.classList.toggle("is-watched", !!state.watching && state.watching.id === c.id);
    },
  );
}

// ------------------------------------------------------------------ chart (SVG, drawn here)

function renderChartKeys(snap) {
  const select = $("chart-key");
  const keys = Object.keys((snap.intervals || {}).by_queue || {});
  const sig = JSON.stringify(keys);
  if (select.dataset.sig === sig) return;
  select.replaceChildren(h("option", { value: "", text: "All queues" }), keys.map((k) => h("option", { value: k, text: k })));
  select.value = keys.includes(state.chartKey) ? state.chartKey : "";
  select.dataset.sig = sig;
}

function renderChart() {
  const snap = state.snap;
  const box = $("chart");
  if (!snap) return;
  const intervals = snap.intervals || {};
  let rows = state.chartKey ? (intervals.by_queue || {})[state.chartKey] || [] : intervals.total || [];
  // from the first busy interval (less one), but always the last eight
  const first = rows.findIndex((r) => r.offered > 0);
  const from = Math.max(0, Math.min(first < 0 ? rows.length : first - 1, rows.length - 8));
  rows = rows.slice(from);
  const W = 560, H = 220, L = 30, R = 34, T = 10, B = 36;
  const plotW = W - L - R, plotH = H - T - B;
  const maxCount = Math.max(1, ...rows.map((r) => Math.max(r.offered, r.handled, r.abandoned)));
  const top = maxCount <= 2 ? 2 : maxCount <= 4 ? 4 : Math.ceil(maxCount / 4) * 4; // whole numbers at 0, half and top
  const y = (v) => T + plotH - (v / top) * plotH;
  const ySl = (v) => T + plotH - v * plotH;
  const n = Math.max(rows.length, 1);
  const slot = plotW / n;
  const bar = Math.max(2, Math.min(14, (slot - 4) / 3));
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", "data-testid": "interval-chart-svg", "data-intervals": rows.length });
  for (const frac of [0, 0.5, 1]) {
    const yy = T + plotH - frac * plotH;
    svg.append(s("line", { x1: L, x2: W - R, y1: yy, y2: yy, class: "grid" }));
    const left = s("text", { x: L - 5, y: yy + 3, class: "axis", "text-anchor": "end" });
    left.textContent = String(Math.round(top * frac));
    const right = s("text", { x: W - R + 5, y: yy + 3, class: "axis" });
    right.textContent = `${Math.round(frac * 100)}%`;
    svg.append(left, right);
  }
  const labelEvery = Math.max(1, Math.ceil(rows.length / 8));
  const slPoints = [];
  rows.forEach((r, i) => {
    const x0 = L + i * slot + (slot - bar * 3) / 2;
    const start = new Date(r.start);
    const label = Number.isNaN(start.getTime()) ? "" : hmFmt.format(start);
    const need = r.agents_needed ?? 0;
    const group = s("g", { "data-testid": "interval-bar", "data-start": r.start, "data-offered": r.offered, "data-handled": r.handled, "data-abandoned": r.abandoned, "data-agents-needed": need });
    const title = s("title");
    title.textContent = `${label}: ${r.offered} offered, ${r.handled} handled, ${r.abandoned} abandoned, service level ${pct(r.service_level)}, agents needed (Erlang C) ${need}`;
    group.append(title);
    if (need > 0) {
      const t = s("text", { x: L + i * slot + slot / 2, y: H - 21, class: "need", "text-anchor": "middle", "data-testid": "interval-need" });
      t.textContent = String(need);
      group.append(t);
    }
    [["offered", r.offered], ["handled", r.handled], ["abandoned", r.abandoned]].forEach(([kind, v], k) => {
      const yy = y(v);
      group.append(s("rect", { x: x0 + k * bar, y: yy, width: Math.max(1, bar - 1), height: Math.max(0, T + plotH - yy), class: `bar bar-${kind}` }));
    });
    svg.append(group);
    if (i % labelEvery === 0) {
      const t = s("text", { x: L + i * slot + slot / 2, y: H - 6, class: "axis", "text-anchor": "middle" });
      t.textContent = label;
      svg.append(t);
    }
    if (r.service_level !== null && r.service_level !== undefined) slPoints.push([L + i * slot + slot / 2, ySl(r.service_level)]);
  });
  if (slPoints.length > 1) svg.append(s("polyline", { points: slPoints.map((p) => p.join(",")).join(" "), class: "sl-line" }));
  for (const [px, py] of slPoints) svg.append(s("circle", { cx: px, cy: py, r: 3, class: "sl-dot" }));
  box.replaceChildren(svg);
}

// ------------------------------------------------------------------ actions

async function setAgentState(agentId, status, button) {
  button.disabled = true;
  const ack = await call("set_agent_status", { agent_id: agentId, status });
  button.disabled = false;
  if (ack.ok) toast(`State set to ${humanize(ack.status)}`);
  else toast(ack.error?.message || "Could not set the state", "error");
}

async function reassign(conversationId, select, button) {
  const value = select.value;
  if (!value) {
    toast("Choose an agent or a queue first", "error");
    select.focus();
    return;
  }
  const [kind, rest] = [value.slice(0, value.indexOf(":")), value.slice(value.indexOf(":") + 1)];
  const payload = { conversation_id: conversationId };
  if (kind === "agent") payload.agent_id = Number(rest);
  else payload.queue = rest;
  button.disabled = true;
  const ack = await call("reassign", payload);
  button.disabled = false;
  if (ack.ok) {
    toast(`Conversation #${conversationId} reassigned`);
    select.value = "";
  } else toast(ack.error?.message || "Could not reassign", "error");
}

function messageItem(m) {
  const customer = m.sender_kind === "customer" && state.watching ? state.watching.customerName : "";
  const who = m.sender_name || customer || humanize(m.sender_kind);
  const when = m.created_at ? new Date(m.created_at) : null;
  return h(
    "li",
    { class: "msg", "data-testid": "watch-message", "data-sender": m.sender_kind, "data-seq": m.seq, "data-internal": m.internal ? "true" : "false" },
    h("div", { class: "msg-head" },
      h("span", { class: "msg-who", text: who }),
      m.internal ? h("span", { class: "msg-tag", text: m.sender_kind === "supervisor" ? "whisper" : "note" }) : null,
      h("time", { class: "muted small", text: when && !Number.isNaN(when.getTime()) ? hmFmt.format(when) : "" })),
    h("div", { class: "msg-body", text: m.text }),
  );
}

function addMessage(m) {
  const w = state.watching;
  if (!w || !m || Number(m.conversation_id) !== w.id) return;
  if (m.seq !== undefined && m.seq !== null) {
    if (w.seqs.has(m.seq)) return;
    w.seqs.add(m.seq);
  }
  const list = $("watch-transcript");
  const item = messageItem(m);
  // keep sequence order even if a live message overtakes the transcript
  const after = Array.from(list.children).find((el) => Number(el.dataset.seq) > Number(m.seq));
  list.insertBefore(item, after || null);
  list.scrollTop = list.scrollHeight;
}

async function startWatch(id) {
  if (state.watching && state.watching.id === id) return true;
  await stopWatch();
  const conv = (state.snap?.conversations || []).find((c) => c.id === id);
  state.watching = { id, seqs: new Set(), customerName: conv ? conv.customer_name : "" };
  $("watch-transcript").replaceChildren();
  $("watch-error").hidden = true;
  setText($("watch-title"), conv ? `#${id} · ${conv.customer_name}` : `#${id}`);
  setText($("watch-sub"), conv ? `${conv.channel} · ${conv.queue || "no queue"} · ${conv.agent_name || "waiting"}` : "");
  $("watch").hidden = false;
  document.body.classList.add("watching");
  const ack = await call("watch", { conversation_id: id });
  if (!state.watching || state.watching.id !== id) return false;
  if (!ack.ok) {
    $("watch-error").textContent = ack.error?.message || "Could not watch this conversation";
    $("watch-error").hidden = false;
    return false;
  }
  $("watch").dataset.conversationId = String(id);
  for (const m of ack.conversation?.messages || []) addMessage({ ...m, conversation_id: id });
  if (state.snap) renderConversations(state.snap);
  renderCallBox();
  return true;
}

async function stopWatch() {
  const w = state.watching;
  state.watching = null;
  $("watch").hidden = true;
  delete $("watch").dataset.conversationId;
  document.body.classList.remove("watching");
  if (w) await call("unwatch", { conversation_id: w.id });
  if (state.snap) renderConversations(state.snap);
  if (w && callBox.onCall === w.id) await monitorCall("leave", w.id);
  renderCallBox();
}

async function sendWhisper(ev) {
  ev.preventDefault();
  const w = state.watching;
  const input = $("whisper-input");
  const text = input.value.trim();
  if (!w || !text) return;
  input.disabled = true;
  const ack = await call("whisper", { conversation_id: w.id, text });
  input.disabled = false;
  if (ack.ok) {
    input.value = "";
    $("watch-error").hidden = true;
    if (ack.message) addMessage({ ...ack.message, conversation_id: w.id });
  } else {
    $("watch-error").textContent = ack.error?.message || "Could not whisper";
    $("watch-error").hidden = false;
  }
  input.focus();
}

// ------------------------------------------------------------------ clock: times in state and waits tick between snapshots

setInterval(() => {
  const now = serverNow();
  for (const el of document.querySelectorAll("[data-since]")) {
    const since = Date.parse(el.dataset.since);
    if (Number.isFinite(since)) setText(el, dur((now - since) / 1000));
  }
}, 1000);

// ------------------------------------------------------------------ connection

function loadIo() {
  if (typeof window.io === "function") return Promise.resolve(window.io);
  return new Promise((resolve, reject) => {
    const el = h("script", { src: "/static/vendor/socket.io.min.js" });
    el.onload = () => resolve(window.io);
    el.onerror = () => reject(new Error("could not load socket.io"));
    document.head.append(el);
  });
}

function toLogin() {
  window.location.assign("/console?next=/supervisor");
}

async function connect() {
  const io = await loadIo();
  const socket = io("/supervisor", { withCredentials: true });
  state.socket = socket;
  socket.on("connect", async () => {
    setConn("online", "Live");
    if (state.watching) {
      const id = state.watching.id;
      state.watching = null;
      await startWatch(id); // the room is per socket: join it again after a reconnect
    }
  });
  socket.on("logged_out", () => toLogin()); // the session was ended elsewhere, or reached its 12-hour limit
  socket.on("disconnect", (reason) => {
    if (reason !== "io client disconnect") setConn("offline", "Reconnecting…");
  });
  socket.on("connect_error", async (err) => {
    if (socket.active) {
      setConn("offline", "Reconnecting…");
      return;
    }
    let authed = false;
    try {
      authed = (await fetch("/auth/me", { credentials: "same-origin" })).ok;
    } catch {
      /* hub unreachable */
    }
    if (!authed) toLogin();
    else {
      setConn("offline", `Refused: ${err?.message || "error"}`);
      setTimeout(() => !socket.connected && socket.connect(), 5000);
    }
  });
  socket.on("snapshot", render);
  socket.on("message", addMessage);
}

// A dashboard is watched more than clicked: renew the session (30-minute idle timeout) while the page is visible.
setInterval(async () => {
  if (document.visibilityState !== "visible") return;
  try {
    const res = await fetch("/auth/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.status === 401) toLogin();
  } catch {
    /* offline: the socket reports it */
  }
}, 5 * 60 * 1000);

async function logout() {
  try {
    await fetch("/auth/logout", { method: "POST", credentials: "same-origin" });
  } finally {
    window.location.assign("/console");
  }
}

async function init() {
  $("logout").addEventListener("click", logout);
  $("watch-close").addEventListener("click", stopWatch);
  $("whisper-form").addEventListener("submit", sendWhisper);
  $("chart-key").addEventListener("change", (ev) => {
    state.chartKey = ev.target.value;
    renderChart();
  });
  let me = null;
  try {
    const res = await fetch("/auth/me", { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (res.status === 401) return toLogin();
    if (res.ok) me = (await res.json()).agent;
  } catch {
    /* the socket's errors say the rest */
  }
  if (me) {
    state.me = me;
    setText($("me"), `${me.display_name} · ${me.role}`);
  }
  await connect();
}

// ------------------------------------------------------------------ on a live call: listen, whisper, barge
// A watched phone conversation with an agent gets "On the call": Listen (muted: nobody hears you), Whisper
// (coaching: only the agent hears you), Barge (everyone hears you) and Leave, each the `call_monitor` event
// ({conversation_id, mode}); the hub rings this supervisor's softphone (client:agent_<id>) into the call's
// conference. With the local Twilio stand-in that leg is answered here through its dev API (no audio), as the
// console's stand-in softphone does; with real Twilio the console's Voice SDK softphone takes it.

const callBox = { el: null, status: null, buttons: {}, onCall: null, mode: null, phone: null, poll: null };
const MODE_WORDS = { listen: "Listening: nobody hears you.", whisper: "Whispering: only the agent hears you.", barge: "Barged in: the caller and the agent hear you." };

function ensureCallBox() {
  if (callBox.el) return callBox.el;
  callBox.status = h("span", { class: "muted small", "data-testid": "call-monitor-status" });
  const box = h("div", { class: "call-monitor", "data-testid": "call-monitor", role: "group", "aria-label": "On the call", hidden: true },
    h("strong", { text: "On the call " }));
  for (const [mode, text] of [["listen", "Listen"], ["whisper", "Whisper"], ["barge", "Barge"], ["leave", "Leave"]]) {
    const b = h("button", { type: "button", class: `btn btn-sm ${mode === "barge" ? "btn-note" : "btn-ghost"}`, "data-testid": `call-${mode}`, text, "aria-pressed": "false" });
    b.addEventListener("click", () => monitorCall(mode));
    callBox.buttons[mode] = b;
    box.append(b);
  }
  box.append(callBox.status);
  $("watch-error").before(box);
  callBox.el = box;
  return box;
}

function renderCallBox() {
  const box = ensureCallBox();
  const w = state.watching;
  const conv = w ? (state.snap?.conversations || []).find((c) => c.id === w.id) : null;
  const isCall = !!conv && conv.channel === "phone";
  box.hidden = !isCall;
  if (!isCall) return;
  const live = conv.status === "assigned";
  const here = callBox.onCall === w.id;
  for (const [mode, b] of Object.entries(callBox.buttons)) {
    b.disabled = !live || (mode === "leave" && !here);
    b.setAttribute("aria-pressed", here && callBox.mode === mode ? "true" : "false");
  }
  if (!live && here) {
    callBox.onCall = callBox.mode = null;
  }
  if (!callBox.status.dataset.error) setText(callBox.status, !live ? "The call has no agent on it now." : here ? MODE_WORDS[callBox.mode] || "" : "You are not on the call.");
}

async function supervisorPhone() {
  if (callBox.phone) return callBox.phone;
  try {
    const res = await fetch("/console/voice/token", { credentials: "same-origin", headers: { Accept: "application/json" } });
    callBox.phone = res.ok ? await res.json() : { mode: "none" };
  } catch {
    callBox.phone = { mode: "none" };
  }
  return callBox.phone;
}

/** The stand-in's leg for this supervisor: answered when it rings (we asked for it), for up to 20 s. */
async function answerStandinLeg() {
  const phone = await supervisorPhone();
  if (phone.mode !== "standin" || !phone.identity) return;
  clearTimeout(callBox.poll);
  const legs = `${String(phone.base || "/standin/twilio").replace(/\/+$/, "")}/dev/clients/${encodeURIComponent(phone.identity)}`;
  const until = Date.now() + 20000;
  const tick = async () => {
    try {
      const list = await (await fetch(legs, { credentials: "same-origin" })).json();
      const ringing = (Array.isArray(list) ? list : []).find((l) => l && l.status === "ringing");
      if (ringing) {
        await fetch(`${legs}/calls/${encodeURIComponent(ringing.call_sid)}/answer`, { method: "POST", credentials: "same-origin" });
        return;
      }
      if ((Array.isArray(list) ? list : []).some((l) => l && l.status === "in-progress")) return;
    } catch {
      /* try again */
    }
    if (Date.now() < until) callBox.poll = setTimeout(tick, 500);
  };
  await tick();
}

async function monitorCall(mode, id = state.watching?.id) {
  if (id === undefined || id === null) return;
  for (const b of Object.values(callBox.buttons)) b.disabled = true;
  delete callBox.status.dataset.error;
  const ack = await call("call_monitor", { conversation_id: id, mode });
  if (!ack.ok) {
    callBox.status.dataset.error = "true";
    setText(callBox.status, ack.error?.message || "The hub refused.");
    setTimeout(() => {
      delete callBox.status.dataset.error;
      renderCallBox();
    }, 6000);
  } else if (mode === "leave") {
    callBox.onCall = callBox.mode = null;
    clearTimeout(callBox.poll);
  } else {
    callBox.onCall = id;
    callBox.mode = mode;
    answerStandinLeg();
  }
  renderCallBox();
}

init();
