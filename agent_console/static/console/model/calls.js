// The agent's calls: what the console knows of each live contact (the phone) it holds, beside the
// conversation record. Owner of the `calls` slice: Map conversation id -> call record (newCall), with
// changes {type: "upsert" | "removed" | "reset", call}.
//
// Where a call's state comes from (docs/subsystems/phone.md):
//   * the hub's `call_status` {conversation_id, status, detail}: the provider's word (ringing, in-progress,
//     on hold, completed...), the core's "ended" (the caller hung up: the agent wraps up) and "failed"
//     (the agent could not be connected, detail.message in words);
//   * the agent's own call actions (`call_action` {conversation_id, action, target?}: hold, unhold, mute,
//     unmute, hang_up, ...), acknowledged {ok} or refused with the reason in words;
//   * the softphone (softphone/phone.js): the agent's leg answered means the agent is on the call. A leg
//     that rings while the agent has a call waiting for it (they accepted the offer) is answered at once.
//   * a warm transfer (docs/subsystems/phone.md): the consulting agent's `consult` puts `call.consult`
//     {state: ringing|talking, targetName}; `consult_answered`, `consult_failed`, `consult_cancelled` move it;
//     `complete_transfer` ends with the hub's conversation_closed (transferred). The consulted colleague gets
//     `consult_request` (the `incoming_consult` slice: they answer their ringing leg by hand), then
//     `conversation_assigned` once the transfer is completed (the call is theirs, on the leg already up) or
//     `consult_ended`.
// An ended call stays ended: a late "in-progress" never reopens it.

import { key } from "../core/dom.js";
import * as socket from "../core/socket.js";
import { defineSlice, read, subscribe } from "../core/store.js";
import * as phone from "../softphone/phone.js";
import { addMessage, getConv, reopen, selectConv, upsertConv } from "./conversations.js";

const calls = defineSlice("calls", new Map(), "model/calls.js");
// a colleague consults us: {conversationId, fromName, customerName, customerAddress, leg} or null
const incoming = defineSlice("incoming_consult", null, "model/calls.js");
const early = new Map(); // conversation id -> [call_status] that came before the conversation did
const restoring = new Set(); // conversation ids of hello: calls already going when the page (re)loaded
const CALL_CHANNELS = new Set(["phone", "voice", "call"]);
let answering = null; // the callSid being answered

// The statuses -> the card's states. The voice adapter's words (integrations/twilio/voice.py): the caller's
// call ("ringing", "in-progress"; its end comes as the core's "ended"), the agent's leg ("agent_<Twilio status>":
// agent_ringing, agent_in_progress, agent_completed...) and the conference ("caller_on_hold", "agent_muted",
// "caller_left", "bridged"...); Twilio's own words and the core's ("ended", "failed" with detail.message) too.
const STATUS = {
  queued: "ringing",
  initiated: "ringing",
  ringing: "ringing",
  agent_queued: "ringing",
  agent_initiated: "ringing",
  agent_ringing: "ringing",
  "in-progress": "connected",
  in_progress: "connected",
  answered: "connected",
  connected: "connected",
  bridged: "connected",
  joined: "connected",
  agent_in_progress: "connected",
  agent_answered: "connected",
  agent_joined: "connected",
  "participant-join": "connected",
  unhold: "connected",
  caller_off_hold: "connected",
  "participant-unhold": "connected",
  hold: "on_hold",
  held: "on_hold",
  on_hold: "on_hold",
  "on-hold": "on_hold",
  caller_on_hold: "on_hold",
  "participant-hold": "on_hold",
  ended: "ended",
  completed: "ended",
  busy: "ended",
  "no-answer": "ended",
  no_answer: "ended",
  canceled: "ended",
  cancelled: "ended",
  caller_left: "ended",
  bridge_ended: "ended",
  failed: "failed",
  // web callback (docs/subsystems/callback.md): the hub dials the customer once the agent accepted
  customer_initiated: "ringing",
  customer_ringing: "ringing",
  customer_answered: "connected",
};
// a web callback's customer not reached: the attempt is over (the hub tries again later, or the callback failed)
const NOT_REACHED = {
  customer_busy: "The customer's line was busy.",
  customer_no_answer: "The customer did not answer.",
  customer_failed: "The customer could not be called.",
  customer_machine: "An answering machine took the call: the customer was not reached.",
  customer_canceled: "The call to the customer was cancelled.",
};
// the agent's own leg gone while the call is not over: said in words (the caller may still be waiting)
const LEG_LOST = {
  agent_busy: "Your line was busy.",
  agent_no_answer: "Your line did not answer.",
  agent_failed: "Your line could not be reached.",
  agent_canceled: "The call to your line was cancelled.",
  agent_completed: "Your line has left the call: the caller may still be waiting.",
  agent_left: "Your line has left the call: the caller may still be waiting.",
};
const MUTE = { mute: true, muted: true, agent_muted: true, "participant-mute": true, unmute: false, unmuted: false, agent_unmuted: false, "participant-unmute": false };

/** What each action is, in words, for a refusal: "Could not put the caller on hold: ...". */
export const ACTION_WORDS = {
  hold: "put the caller on hold",
  unhold: "take the caller off hold",
  mute: "mute your line",
  unmute: "unmute your line",
  hang_up: "hang up",
  transfer: "transfer the call",
  consult: "call the colleague",
  complete_transfer: "complete the transfer",
  cancel_consult: "cancel the consultation",
  pause_recording: "pause the recording",
  resume_recording: "resume the recording",
};
// a warm transfer's news for the consulting agent (the core's call_status words)
const CONSULT_NEWS = {
  consult_answered: "talking",
  consult_failed: "failed",
  consult_cancelled: "cancelled",
};

function newCall(id) {
  return {
    id: key(id),
    state: "connecting", // connecting | ringing | restored | connected | on_hold | failed | ended
    status: "", // the last status word the hub sent
    muted: false,
    startedAt: Date.now(),
    connectedAt: null,
    heldAt: null,
    endedAt: null,
    endedBy: null, // "caller" | "agent" | "closed"
    reason: "", // why it ended, or why it failed, in words
    pending: null, // an action in flight
    error: null, // {action, message}: the last refusal
    legSid: null, // the softphone's leg of this call, once answered
    consult: null, // a warm transfer under way: {state: "ringing" | "talking", targetName}
    consultNote: "", // how the last consultation ended, in words
    supervisor: null, // a supervisor heard on the call: {mode: "whisper" | "barge", name}
  };
}

// ------------------------------------------------------------------ reading

/** Whether a conversation is a call: its channel has call actions in hello, or is the phone. */
export function isCallConv(conv) {
  if (!conv) return false;
  const list = read("channels");
  const hub = Array.isArray(list) ? list.find((c) => c.name === conv.channel) : null;
  if (hub) return Array.isArray(hub.call_actions) && hub.call_actions.length > 0;
  return CALL_CHANNELS.has(conv.channel);
}

export function callOf(id) {
  return id === null || id === undefined ? null : calls.get().get(key(id)) || null;
}

export function liveCalls() {
  return [...calls.get().values()].filter((c) => c.state !== "ended");
}

/** How long the call has lasted (ms): since it connected (before that, since it was accepted); frozen at its end. */
export function elapsedMs(call, now = Date.now()) {
  const from = call.connectedAt || call.startedAt;
  return Math.max(0, (call.endedAt || now) - from);
}

/** "0:07", "12:34", "1:02:03". */
export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${ss}` : `${m}:${ss}`;
}

/** The card's words for the call's state: {label, detail}. */
export function stateWords(call) {
  switch (call.state) {
    case "connecting":
      return { label: "Connecting…", detail: "Connecting you to the caller." };
    case "ringing":
      return { label: "Ringing", detail: "The call is being put through to you." };
    case "restored":
      return { label: "On a call", detail: "The page was reloaded: the call's state shows when it next changes." };
    case "connected":
      return { label: "Connected", detail: call.muted ? "You are muted: the caller cannot hear you." : "You are talking to the caller." };
    case "on_hold":
      return { label: "On hold", detail: "The caller hears music." + (call.muted ? " You are muted." : "") };
    case "failed":
      return { label: "Not connected", detail: call.reason || "The call could not be connected." };
    case "ended":
      return {
        label: call.endedBy === "agent" ? "You hung up: wrap up" : call.endedBy === "closed" ? "Call ended" : "Caller hung up: wrap up",
        detail: call.endedBy === "closed" ? "" : "Choose a disposition and close the call.",
      };
    default:
      return { label: call.state, detail: "" };
  }
}

// ------------------------------------------------------------------ writing

function changed(call) {
  calls.changed({ type: "upsert", call });
}

function ensure(conv) {
  if (!isCallConv(conv)) return null;
  let call = calls.get().get(key(conv.id));
  if (call) return call;
  call = newCall(conv.id);
  if (restoring.delete(call.id)) call.state = "restored";
  calls.get().set(call.id, call);
  for (const p of early.get(call.id) || []) apply(call, p);
  early.delete(call.id);
  if (conv.closed) end(call, "closed");
  changed(call);
  phone.watch(liveCalls().length > 0);
  return call;
}

function end(call, by, reason = "") {
  if (call.state === "ended") return;
  call.state = "ended";
  call.endedAt = Date.now();
  call.endedBy = by;
  call.reason = reason;
  call.heldAt = null;
  call.pending = null;
  call.error = null; // a refusal during the call is moot now
  call.legSid = null;
  call.consult = null;
  call.supervisor = null;
  const live = liveCalls().length > 0;
  phone.watch(live);
  if (!live) dropLeg(); // the caller is gone: so is the agent's leg
}

/** Hang up the softphone's leg if it is up (the call it belonged to is over or no longer ours). */
function dropLeg() {
  const s = read("softphone");
  if (s.state === "connected" || s.state === "ringing") phone.hangup();
}

function connected(call) {
  if (call.state === "ended") return;
  if (!call.connectedAt) call.connectedAt = Date.now();
  call.state = "connected";
  call.heldAt = null;
  call.reason = "";
}

function apply(call, p) {
  const status = String(p.status || "").toLowerCase();
  const detail = p.detail && typeof p.detail === "object" ? p.detail : {};
  call.status = status;
  if (status in MUTE) {
    call.muted = MUTE[status];
    return;
  }
  if (call.state === "ended") return; // forward only
  if (status in CONSULT_NEWS) {
    const state = CONSULT_NEWS[status];
    const name = typeof detail.agent_name === "string" ? detail.agent_name : call.consult?.targetName || "Your colleague";
    if (state === "talking") call.consult = { ...(call.consult || {}), state, targetName: name };
    else {
      call.consult = null;
      call.consultNote = state === "failed" ? `${name} did not take the call: the caller is back with you.` : `The consultation with ${name} ended: the caller is back with you.`;
      if (call.state === "on_hold") connected(call);
    }
    return;
  }
  if (status === "supervisor_whisper" || status === "supervisor_barge") {
    call.supervisor = { mode: status.slice("supervisor_".length), name: typeof detail.supervisor_name === "string" ? detail.supervisor_name : "A supervisor" };
    return;
  }
  // an agent leg's news that is not about our own leg (a warm transfer's first agent, a colleague)
  if (status.startsWith("agent_") && typeof detail.call_sid === "string" && call.legSid && detail.call_sid !== call.legSid) return;
  if (status in NOT_REACHED) {
    call.state = "failed";
    call.reason = NOT_REACHED[status] + (detail.next === "failed" ? " That was the last attempt." : detail.next === "scheduled" ? " We will try again later." : "");
    call.heldAt = null;
    return;
  }
  if (status in LEG_LOST) {
    call.state = "failed";
    call.reason = LEG_LOST[status];
    call.heldAt = null;
    return;
  }
  const next = STATUS[status];
  if (next === "connected") connected(call);
  else if (next === "on_hold") {
    if (!call.connectedAt) call.connectedAt = Date.now();
    call.state = "on_hold";
    call.heldAt = call.heldAt || Date.now();
  } else if (next === "ringing") {
    if (call.state === "connecting") call.state = "ringing";
  } else if (next === "failed") {
    call.state = "failed";
    call.reason = typeof detail.message === "string" && detail.message ? detail.message : "The call could not be connected.";
  } else if (next === "ended") {
    end(call, "caller", typeof detail.reason === "string" ? detail.reason : status);
  }
  if (typeof detail.muted === "boolean") call.muted = detail.muted;
}

/** `call_status` {conversation_id, status, detail}. */
export function applyStatus(p) {
  if (!p || p.conversation_id === null || p.conversation_id === undefined) return;
  const conv = getConv(p.conversation_id);
  const call = conv ? ensure(conv) : null;
  if (!call) {
    // the accept's answer may still be on its way
    const list = early.get(key(p.conversation_id)) || [];
    list.push(p);
    early.set(key(p.conversation_id), list.slice(-10));
    return;
  }
  apply(call, p);
  changed(call);
  phone.watch(liveCalls().length > 0);
}

/**
 * Ask the hub to do `action` to the call (hold, unhold, mute, unmute, hang_up, transfer...).
 * Resolves {ok, message}: a refusal's message is the hub's, in words; it is also kept on the call (`error`).
 */
export function callAction(conv, action, target = null) {
  const call = ensure(conv);
  if (!call) return Promise.resolve({ ok: false, message: "This conversation has no call." });
  if (call.pending) return Promise.resolve({ ok: false, message: "Wait a moment: the last action is still on its way." });
  const words = ACTION_WORDS[action] || action;
  call.pending = action;
  call.error = null;
  changed(call);
  const payload = { conversation_id: conv.id, action };
  if (target) payload.target = target;
  return new Promise((resolve) => {
    const sent = socket.request("call_action", payload, 10000, async (err, ack) => {
      call.pending = null;
      if (err || !ack?.ok) {
        const message = err ? "No answer from the hub. Check the connection and try again." : ack?.error?.message || "The hub refused.";
        call.error = { action, message: `Could not ${words}: ${message}` };
        changed(call);
        return resolve({ ok: false, message: call.error.message });
      }
      if (action === "consult") {
        call.consult = { state: "ringing", targetName: ack.consult?.target_name || "your colleague" };
        call.consultNote = "";
        call.state = call.state === "ended" ? "ended" : "on_hold";
        call.heldAt = call.heldAt || Date.now();
      } else if (action === "cancel_consult") {
        call.consult = null;
        connected(call);
      } else if (action === "complete_transfer") {
        call.consult = null; // the hub's conversation_closed (transferred) takes the call away
      } else if (action === "hold") {
        call.state = call.state === "ended" ? "ended" : "on_hold";
        call.heldAt = call.heldAt || Date.now();
      } else if (action === "unhold") connected(call);
      else if (action === "mute" || action === "unmute") {
        call.muted = action === "mute";
        phone.mute(call.muted); // the microphone too (Twilio); the stand-in only notes it
      } else if (action === "hang_up") end(call, "agent"); // and the softphone's leg
      changed(call);
      resolve({ ok: true, message: "" });
    });
    if (!sent) {
      call.pending = null;
      call.error = { action, message: `Could not ${words}: not connected to the hub.` };
      changed(call);
      resolve({ ok: false, message: call.error.message });
    }
  });
}

/** The colleague who consults us: answer our ringing leg (we then talk with them; the caller is held). */
export async function answerConsult() {
  const r = await phone.answer();
  if (r.ok && incoming.get()) incoming.set({ ...incoming.get(), answered: true }, { type: "answered" });
  return r;
}

/** Decline (or leave) a consultation: our leg goes; the consulting agent is told by the hub. */
export async function declineConsult() {
  const r = await phone.hangup();
  incoming.set(null, { type: "declined" });
  return r;
}

function onConsultRequest(p) {
  if (!p || p.conversation_id == null) return;
  incoming.set({
    conversationId: p.conversation_id,
    fromName: typeof p.from_agent_name === "string" ? p.from_agent_name : "A colleague",
    customerName: typeof p.customer_name === "string" ? p.customer_name : "",
    customerAddress: typeof p.customer_address === "string" ? p.customer_address : "",
    leg: typeof p.leg === "string" ? p.leg : null,
    answered: false,
  }, { type: "request" });
  phone.watch(true); // the stand-in looks for the ringing leg every second
}

function onConsultEnded(p) {
  const now = incoming.get();
  if (now && key(now.conversationId) === key(p?.conversation_id)) {
    incoming.set(null, { type: "ended", reason: p?.reason || "" });
    if (!liveCalls().length) phone.watch(false);
  }
}

/** The consulting agent completed the transfer: the call is ours, on the leg we already answered. */
function onAssigned(p) {
  if (!p || (p.id == null && p.conversation_id == null)) return;
  const conv = upsertConv(p);
  if (!conv) return;
  reopen(conv);
  for (const m of p.messages || []) addMessage(conv, m);
  incoming.set(null, { type: "transferred" });
  const call = ensure(conv);
  if (call) {
    const s = read("softphone");
    call.legSid = typeof p.leg === "string" ? p.leg : s.callSid || null;
    connected(call);
    changed(call);
  }
  selectConv(conv.id);
}

/** Answer the softphone's ringing leg by hand (when it was not answered by itself). */
export async function answerLeg() {
  const r = await phone.answer();
  return r;
}

function forget(id) {
  const call = calls.get().get(key(id));
  if (!call) return;
  calls.get().delete(call.id);
  calls.changed({ type: "removed", call });
  // the call is no longer ours (closed, transferred): our leg goes
  if (!liveCalls().length) {
    phone.watch(false);
    dropLeg();
  }
}

/** The softphone's leg: answered at once when the agent has a call waiting for it; its answer connects the call. */
function onSoftphone(s, change) {
  const live = liveCalls();
  if (s.state === "ringing" && s.callSid && answering !== s.callSid && !incoming.get()) {
    const waiting = live.find((c) => !c.legSid);
    if (waiting) {
      answering = s.callSid;
      phone.answer().then((r) => {
        if (!r.ok) {
          waiting.error = { action: "answer", message: `Could not answer on the softphone: ${r.message}` };
          changed(waiting);
        }
      });
    }
  }
  if (s.state === "connected" && s.callSid) {
    const call = live.find((c) => c.legSid === s.callSid) || live.find((c) => !c.legSid);
    if (call && call.legSid !== s.callSid) {
      call.legSid = s.callSid;
      if (["connecting", "ringing", "restored", "failed"].includes(call.state)) connected(call);
      changed(call);
    }
  }
  if (change?.previous === "connected" && s.state !== "connected") {
    for (const call of live) if (call.legSid) {
      call.legSid = null;
      changed(call);
    }
  }
}

export function wire() {
  // registered before main.js's hello handler: the conversations it lists were accepted before this page
  socket.on("hello", (hello) => {
    restoring.clear();
    for (const c of Array.isArray(hello?.conversations) ? hello.conversations : []) {
      const id = c?.id ?? c?.conversation_id;
      if (id !== undefined && id !== null && !callOf(id)) restoring.add(key(id));
    }
  });
  socket.on("call_status", applyStatus);
  socket.on("consult_request", onConsultRequest);
  socket.on("consult_ended", onConsultEnded);
  socket.on("conversation_assigned", onAssigned);
  subscribe("conversations", (_, change) => {
    const conv = change.conv;
    if (change.type === "reset") {
      calls.get().clear();
      early.clear();
      calls.changed({ type: "reset" });
      phone.watch(false);
      return;
    }
    if (!conv) return;
    if (change.type === "removed") return forget(conv.id);
    if (change.type === "upsert") {
      const call = ensure(conv);
      if (call && !conv.closed && call.state === "ended" && call.endedBy === "closed") {
        // accepted again (reopened)
        calls.get().delete(call.id);
        ensure(conv);
      }
    }
    if (change.type === "closed") {
      const call = callOf(conv.id);
      if (call && call.state !== "ended") {
        end(call, "closed");
        changed(call);
      }
    }
  });
  subscribe("channels", () => {
    // hello's channels may come after the conversations' first upsert: look again
    for (const id of read("conversations").keys()) ensure(getConv(id));
  });
  subscribe("softphone", onSoftphone);
}
