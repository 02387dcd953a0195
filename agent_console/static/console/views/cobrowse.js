// Co-browsing in the console (docs/subsystems/cobrowse.md): the "Co-browse" button of a web chat, the
// live view of the customer's page, End.
// The customer's page is rebuilt by rrweb's Replayer inside the replay frame (/console/cobrowse-frame, a page
// with its own strict CSP: our replay script only, no connections), in an inner iframe sandboxed
// `allow-same-origin` only: the customer's HTML never runs. (A frame sandboxed `allow-scripts` without an
// origin cannot work: the inner iframe would inherit the sandbox, get an origin of its own, and rrweb could
// not build the page in it.) The console only reassembles the relayed pieces and posts the events in. The agent's pointer over the view comes
// back from the frame and goes to the customer's page (cobrowse_pointer).

import { $ } from "../core/dom.js";
import * as socket from "../core/socket.js";
import { subscribe } from "../core/store.js";
import { activeConv } from "../model/conversations.js";
import { toast } from "./toasts.js";

const sessions = new Map(); // conversation id -> {session_id, state}
let shownFor = null; // the conversation whose view the frame holds
let frameReady = false;
let backlog = []; // events for the frame before it said ready (from the last Meta on)
let backlogSentAt = 0;
let pieces = new Map(); // seq -> {parts, got, data[]}
let buffered = 0; // characters held in incomplete batches
const MAX_BUFFERED = 8 * 1024 * 1024;
const stats = { batches: 0, lastAppliedAt: 0, transit: [] }; // transit: ms from the customer's send to here (last 200)

function frame() {
  return $("cobrowse-frame");
}

function isChat(conv) {
  return !!conv && !conv.closed && (conv.channel === "chat" || conv.channel === "web" || isCall(conv));
}

/** On a call the customer joins with a six-digit code the agent reads out (typed into the widget on our site). */
function isCall(conv) {
  return !!conv && (conv.channel === "phone" || conv.channel === "callback");
}

/** "123 456": easier to read out. */
function spaced(code) {
  return typeof code === "string" && code.length === 6 ? `${code.slice(0, 3)} ${code.slice(3)}` : "";
}

function showStatus(s) {
  const el = $("cobrowse-status");
  if (s.state === "pending" && s.via_code) {
    const code = document.createElement("strong");
    code.className = "cobrowse-code";
    code.dataset.testid = "cobrowse-code";
    code.textContent = spaced(s.code);
    el.replaceChildren(
      document.createTextNode("Read this code to the caller: "), code,
      document.createTextNode(". They type it into the chat window on our site (\u201cHave a code from our agent?\u201d). It works once, for 10 minutes."),
    );
    return;
  }
  el.textContent = s.state === "pending" ? "Waiting for the customer to accept (60 s)…" : "Live: you see the customer's page. Click on it to highlight a spot for them.";
}

function toFrame(msg) {
  const w = frame()?.contentWindow;
  if (w) w.postMessage(msg, location.origin);
}

function render() {
  const conv = activeConv();
  const button = $("cobrowse-open");
  const view = $("cobrowse-view");
  button.hidden = !isChat(conv);
  const s = conv ? sessions.get(conv.id) : null;
  button.disabled = !!s;
  button.textContent = s?.state === "pending" ? (s.via_code ? "Co-browse: code given…" : "Co-browse: asking…") : "Co-browse";
  const visible = !!s && isChat(conv);
  view.hidden = !visible;
  if (!visible) {
    toFrame({ type: "control", on: false });
    if (shownFor !== null) resetFrame("");
    shownFor = null;
    return;
  }
  view.dataset.state = s.state;
  showStatus(s);
  renderControl(s);
  if (shownFor !== conv.id) {
    shownFor = conv.id;
    resetFrame(s.state === "pending" ? (s.via_code ? "Waiting for the caller to type the code…" : "Waiting for the customer to accept…") : "Loading the customer's page…");
    if (s.state === "live") checkout(conv.id);
  }
}

// Guided control (the customer's second consent): ask, release; with it, clicks on the view act on the customer's
// page (the frame names the element by its id in the recording), the wheel scrolls it, and the fill box types into
// the chosen field. The hub refuses actions without the customer's grant; their browser refuses private fields.
let control = { target: null, label: "", nextId: 1, sentAt: 0 };

function renderControl(s) {
  const button = $("cobrowse-control");
  const live = s.state === "live";
  button.hidden = !live;
  button.disabled = s.control === "requested";
  button.textContent = s.control === "granted" ? "Release control" : s.control === "requested" ? "Asking for control…" : "Ask for control";
  const granted = live && s.control === "granted";
  $("cobrowse-fill").hidden = !granted;
  if (!granted) control.target = null;
  $("cobrowse-target").textContent = control.target ? `Chosen: ${control.label}` : "Click a field on the page to choose it.";
  toFrame({ type: "control", on: granted });
  if (granted) $("cobrowse-status").textContent = "You have control: click, scroll and fill on the customer's page (never their private fields).";
}

function toggleControl() {
  const conv = activeConv();
  const s = conv ? sessions.get(conv.id) : null;
  if (!s || s.state !== "live") return;
  const event = s.control === "granted" ? "cobrowse_control_release" : "cobrowse_control_request";
  control.releasing = event === "cobrowse_control_release";
  socket.request(event, { conversation_id: conv.id }, 10000, (err, ack) => {
    if (err || !ack?.ok) {
      toast(`Co-browse: ${ack?.error?.message || "no answer from the hub"}`, "error");
      return;
    }
    if (ack.session) sessions.set(conv.id, ack.session);
    render();
  });
}

function act(action) {
  if (shownFor === null) return;
  const id = control.nextId++;
  showResult(true, "…"); // the customer's page answers (cobrowse_control_result)
  socket.request("cobrowse_control_action", { conversation_id: shownFor, id, ...action }, 10000, (err, ack) => {
    if (err || !ack?.ok) showResult(false, ack?.error?.message || "no answer from the hub");
  });
}

const REFUSED = {
  blocked: "a private field (card, password, code or marked private): the customer's page refused",
  masked: "a private text area: the customer's page refused",
  not_fillable: "this is not a field you can fill",
  not_found: "that element is no longer on the page",
  not_granted: "the customer has not given you control",
  failed: "the customer's page could not do it",
};

function showResult(ok, text) {
  const el = $("cobrowse-control-result");
  el.dataset.ok = String(ok);
  el.textContent = text;
}

function onControlResult(p) {
  if (!p || p.conversation_id !== shownFor) return;
  if (p.ok) showResult(true, "Done on the customer's page.");
  else showResult(false, `Refused: ${REFUSED[p.reason] || REFUSED.failed}.`);
}

function fill(ev) {
  ev.preventDefault();
  if (!control.target) {
    showResult(false, "Click a field on the page first.");
    return;
  }
  act({ action: "fill", target: control.target, value: $("cobrowse-fill-input").value });
}

function resetFrame(text) {
  pieces = new Map();
  buffered = 0;
  backlog = [];
  toFrame({ type: "reset", text });
}

function checkout(conversationId) {
  socket.request("cobrowse_checkout", { conversation_id: conversationId }, 10000, () => {});
}

function start() {
  const conv = activeConv();
  if (!isChat(conv)) return;
  socket.request("cobrowse_start", { conversation_id: conv.id }, 10000, (err, ack) => {
    if (err || !ack?.ok) {
      toast(`Co-browse: ${ack?.error?.message || "no answer from the hub"}`, "error");
      return;
    }
    sessions.set(conv.id, { ...ack.session, code: ack.code });
    render();
  });
}

function end() {
  const conv = activeConv();
  if (!conv) return;
  socket.request("cobrowse_end", { conversation_id: conv.id }, 10000, (err, ack) => {
    if (err || !ack?.ok) toast(`Co-browse: ${ack?.error?.message || "no answer from the hub"}`, "error");
  });
  sessions.delete(conv.id);
  render();
}

/** A piece of a batch of page events: when the batch is whole, into the frame. */
function onEvents(p) {
  if (!p || p.conversation_id !== shownFor) return; // another conversation's view is not open: it re-syncs at a checkout
  const s = sessions.get(p.conversation_id);
  if (!s || s.session_id !== p.session_id) return;
  if (typeof p.data !== "string" || !(p.parts >= 1) || !(p.part >= 0 && p.part < p.parts)) return;
  buffered += p.data.length;
  if (buffered > MAX_BUFFERED) {
    // batches that never complete (a lost piece, or a page sending too much): start again from a full snapshot
    pieces = new Map();
    buffered = 0;
    checkout(p.conversation_id);
    return;
  }
  let entry = pieces.get(p.seq);
  if (!entry) {
    entry = { parts: p.parts, got: 0, data: new Array(p.parts) };
    pieces.set(p.seq, entry);
  }
  if (entry.data[p.part] === undefined) {
    entry.data[p.part] = p.data;
    entry.got += 1;
  }
  if (entry.got < entry.parts) return;
  pieces.delete(p.seq);
  buffered = 0;
  for (const [old, e] of pieces) {
    if (old < p.seq - 50) pieces.delete(old); // a batch that never completed
    else buffered += e.data.reduce((n, d) => n + (d ? d.length : 0), 0);
  }
  let batch;
  try {
    batch = JSON.parse(entry.data.join("")); // {t: sent at (the customer's clock), e: [rrweb events]}
  } catch {
    return;
  }
  const events = batch?.e;
  if (!Array.isArray(events)) return;
  const sentAt = Number(batch.t) || 0;
  if (sentAt) stats.transit.push(Date.now() - sentAt);
  if (stats.transit.length > 200) stats.transit.shift();
  stats.batches += 1;
  if (!frameReady) {
    const meta = events.findIndex((e) => e && e.type === 4);
    if (meta >= 0) backlog = events.slice(meta);
    else backlog.push(...events);
    backlogSentAt = sentAt;
    return;
  }
  toFrame({ type: "events", events, sentAt, at: performance.now() });
}

function onFrameMessage(ev) {
  if (ev.source !== frame()?.contentWindow || ev.origin !== location.origin) return;
  const msg = ev.data;
  if (!msg || typeof msg !== "object") return;
  if (msg.type === "ready") {
    frameReady = true;
    if (backlog.length) toFrame({ type: "events", events: backlog, sentAt: backlogSentAt });
    backlog = [];
  } else if (msg.type === "applied") {
    stats.lastAppliedAt = performance.now();
  } else if (msg.type === "control-click" && shownFor !== null && sessions.get(shownFor)?.control === "granted") {
    const target = Number(msg.target);
    if (!Number.isInteger(target) || target < 1) return;
    control.target = target;
    control.label = typeof msg.label === "string" ? msg.label.slice(0, 60) : "element";
    $("cobrowse-target").textContent = `Chosen: ${control.label}`;
    act({ action: "click", target });
  } else if (msg.type === "control-scroll" && shownFor !== null && sessions.get(shownFor)?.control === "granted") {
    const x = Number(msg.x), y = Number(msg.y);
    if (Number.isFinite(x) && Number.isFinite(y) && x >= 0 && y >= 0) act({ action: "scroll", x, y });
  } else if (msg.type === "pointer" && shownFor !== null && sessions.get(shownFor)?.state === "live") {
    const x = Number(msg.x), y = Number(msg.y);
    if (!Number.isFinite(x) || !Number.isFinite(y)) return;
    const payload = { conversation_id: shownFor, x, y, highlight: msg.highlight === true, hide: msg.hide === true };
    if (payload.highlight) socket.request("cobrowse_pointer", payload, 5000, () => {});
    else socket.send("cobrowse_pointer", payload);
  }
}

function onState(s) {
  if (!s || typeof s.conversation_id !== "number") return;
  const before = sessions.get(s.conversation_id);
  sessions.set(s.conversation_id, s); // pending -> live: the recorder's first full snapshot is on its way
  if (before?.control === "granted" && s.control === "off" && control.releasing) control.releasing = false;
  else if (before?.control === "granted" && s.control === "off") toast("The customer took back control of their page", "info");
  else if (before?.control === "requested" && s.control === "off") toast("The customer did not give you control", "info");
  else if (before?.control === "requested" && s.control === "granted") toast("The customer gave you control of their page", "info");
  render();
}

function onEnded(s) {
  if (!s || typeof s.conversation_id !== "number") return;
  const had = sessions.get(s.conversation_id);
  sessions.delete(s.conversation_id);
  if (had) {
    const why = { declined: "the customer declined", no_answer: "the customer did not answer", customer_ended: "the customer ended it",
      agent_ended: "you ended it", customer_left: "the customer left the page", conversation_ended: "the conversation ended",
      code_expired: "the code was not typed in within 10 minutes" }[s.end_reason] || "ended";
    toast(`Co-browsing ended: ${why}`, s.end_reason === "agent_ended" ? "info" : "warn");
  }
  render();
}

/** The open conversation changed (or the console reloaded): ask the hub whether it has a session. */
function syncActive() {
  const conv = activeConv();
  if (isChat(conv)) {
    socket.request("cobrowse_status", { conversation_id: conv.id }, 10000, (err, ack) => {
      if (err || !ack?.ok) return;
      if (ack.session) sessions.set(conv.id, { ...ack.session, code: ack.code });
      else sessions.delete(conv.id);
      render();
    });
  }
  render();
}

export function wire() {
  $("cobrowse-open").addEventListener("click", start);
  $("cobrowse-end").addEventListener("click", end);
  $("cobrowse-control").addEventListener("click", toggleControl);
  $("cobrowse-fill").addEventListener("submit", fill);
  socket.on("cobrowse_control_result", onControlResult);
  window.addEventListener("message", onFrameMessage);
  // the frame may have said "ready" before this listener existed: ask again (and whenever it loads)
  frame().addEventListener("load", () => toFrame({ type: "ping" }));
  toFrame({ type: "ping" });
  socket.on("cobrowse_state", onState);
  socket.on("cobrowse_ended", onEnded);
  socket.on("cobrowse_events", onEvents);
  socket.on("hello", () => {
    shownFor = null;
    setTimeout(syncActive, 0);
  });
  subscribe("active", syncActive);
  window.ccCobrowseStats = stats; // for the benchmark
}
