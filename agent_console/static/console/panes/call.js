// The call card: a phone conversation in the centre column (docs/subsystems/console.md, "Calls").
//
// From top to bottom: what happened before the agent (the IVR's note, what the caller said or pressed, the
// bot's replies and its handover with the order draft), then the card: the caller, the call's state
// ("Connecting…", "Ringing", "Connected", "On hold" while the caller hears music, "Caller hung up: wrap up")
// and its timer; Mute, Hold, Transfer (the existing dialog: to a queue or a colleague, cold, or "Consult first":
// warm, the caller held while the colleague's phone rings; then the card's Complete transfer / Cancel) and Hang up,
// each a `call_action` whose refusal is said on the card in words; the softphone's line (Twilio's SDK or
// the stand-in's leg, or why calls cannot be taken on this browser) with Answer when a leg rings by itself;
// the recording indicator when the call's queue records calls ("● Recording", from the hub's recording messages,
// `extra.recording`), with "Pause for digits" / "Resume recording" (the caller's keypad entry is skipped, not kept);
// then the agent's notes (saved as internal notes) and, once the call has ended, the wrap-up: a disposition
// and a note, which closes the conversation (the existing close).
// State: the call's is model/calls.js's, the softphone's softphone/phone.js's; this pane keeps the notes'
// drafts per conversation and what it draws.

import { h, key } from "../core/dom.js";
import { fmt, humanize } from "../core/format.js";
import * as socket from "../core/socket.js";
import { read, subscribe } from "../core/store.js";
import { channelIcon } from "../channels/icons.js";
import { addMessage, convName } from "../model/conversations.js";
import { answerLeg, callAction, callOf, clock, elapsedMs, stateWords } from "../model/calls.js";
import { describe as softphoneWords } from "../softphone/phone.js";
import { currentAgent } from "../session.js";
import { closeConversation, dispositions } from "../views/close.js";
import { messageNode } from "./transcript.js";

let root = null;
let els = null;
let shown = null; // the conversation on screen
let ticker = null;
const drafts = new Map(); // conversation id -> {notes, wrapNote, disposition}

function draftOf(conv) {
  let d = drafts.get(key(conv.id));
  if (!d) {
    d = { notes: "", wrapNote: "", disposition: "" };
    drafts.set(key(conv.id), d);
  }
  return d;
}

function button(testid, text, props = {}) {
  return h("button", { type: "button", class: "btn btn-ghost call-btn", "data-testid": testid, text, ...props });
}

function build(host) {
  const e = {};
  e.transcriptHead = h("div", { class: "call-transcript-head small muted", "data-testid": "call-transcript-head" });
  e.transcript = h("div", { class: "transcript call-transcript", "data-testid": "call-transcript", "aria-live": "polite" });
  e.caller = h("h3", { class: "call-caller", "data-testid": "call-caller" });
  e.callerSub = h("div", { class: "call-caller-sub muted small" });
  e.timer = h("span", { class: "call-timer", "data-testid": "call-timer", role: "timer", "aria-label": "Call duration" });
  e.stateLabel = h("strong", { class: "call-state-label", "data-testid": "call-state-label" });
  e.stateDetail = h("span", { class: "call-state-detail muted" });
  e.state = h("p", { class: "call-state", "data-testid": "call-state", role: "status" }, e.stateLabel, e.stateDetail);
  e.mute = button("call-mute", "Mute", { "aria-pressed": "false" });
  e.hold = button("call-hold", "Hold", { "aria-pressed": "false", title: "The caller hears music while on hold" });
  e.transfer = button("call-transfer", "Transfer", { "aria-haspopup": "dialog", title: "To a queue or a colleague (cold: you leave the call)" });
  e.hangup = h("button", { type: "button", class: "btn btn-danger call-btn call-hangup", "data-testid": "call-hangup", text: "Hang up" });
  e.error = h("p", { class: "form-error small call-error", "data-testid": "call-error", role: "alert", hidden: true });
  e.consultText = h("span", { class: "call-consult-text", "data-testid": "call-consult-text" });
  e.consultComplete = h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "call-consult-complete", text: "Complete transfer", title: "You leave the call; your colleague has it" });
  e.consultCancel = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "call-consult-cancel", text: "Cancel", title: "Your colleague's line goes; the caller is back with you" });
  e.consult = h("div", { class: "call-consult", "data-testid": "call-consult", role: "status", hidden: true }, e.consultText, e.consultComplete, e.consultCancel);
  e.supervisor = h("p", { class: "call-supervisor small", "data-testid": "call-supervisor", role: "status", hidden: true });
  e.recText = h("span", { class: "call-recording-text", "data-testid": "call-recording-text" });
  e.recToggle = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "call-recording-toggle", text: "Pause for digits", title: "While the caller types a card number or a code: those seconds are left out of the recording" });
  e.recording = h("p", { class: "call-recording small", "data-testid": "call-recording", role: "status", hidden: true }, h("span", { class: "call-recording-dot", "aria-hidden": "true", text: "●" }), e.recText, e.recToggle);
  e.lineText = h("span", { class: "softphone-text" });
  e.answer = h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "softphone-answer", text: "Answer", hidden: true });
  e.line = h("p", { class: "softphone-line small", "data-testid": "softphone-line" }, channelIcon("voice"), e.lineText, e.answer);

  e.disposition = h("select", { "data-testid": "call-disposition", "aria-label": "Disposition" });
  e.wrapNote = h("input", { type: "text", "data-testid": "call-wrapup-note", placeholder: "Wrap-up note", "aria-label": "Wrap-up note", maxlength: "1000" });
  e.wrapSubmit = h("button", { type: "submit", class: "btn btn-primary", "data-testid": "call-wrapup-submit", text: "Close call" });
  e.wrapError = h("p", { class: "form-error small", "data-testid": "call-wrapup-error", role: "alert", hidden: true });
  e.wrapTitle = h("strong", { "data-testid": "call-wrapup-title" });
  e.wrapup = h(
    "form",
    { class: "call-wrapup", "data-testid": "call-wrapup", hidden: true, "aria-label": "Wrap-up" },
    h("div", { class: "call-wrapup-title" }, e.wrapTitle),
    h("div", { class: "call-wrapup-row" }, e.disposition, e.wrapNote, e.wrapSubmit),
    e.wrapError,
  );

  e.notes = h("textarea", { class: "call-notes-input", "data-testid": "call-notes", rows: "2", maxlength: "4000", placeholder: "Notes during the call (internal: the caller never sees them)", "aria-label": "Call notes" });
  e.noteSave = h("button", { type: "button", class: "btn btn-note", "data-testid": "call-note-save", text: "Add note" });
  e.noteError = h("p", { class: "form-error small", "data-testid": "call-note-error", role: "alert", hidden: true });

  e.card = h(
    "section",
    { class: "call-card", "data-testid": "call-card", "data-state": "connecting", "aria-label": "Call" },
    h(
      "div",
      { class: "call-top" },
      h("span", { class: "call-avatar", "aria-hidden": "true" }, channelIcon("voice")),
      h("div", { class: "call-who" }, e.caller, e.callerSub),
      e.timer,
    ),
    e.state,
    h("div", { class: "call-controls", role: "group", "aria-label": "Call controls" }, e.mute, e.hold, e.transfer, e.hangup),
    e.consult,
    e.recording,
    e.supervisor,
    e.error,
    e.line,
    e.wrapup,
    h("div", { class: "call-notes" }, e.notes, e.noteSave),
    e.noteError,
  );
  root = h(
    "section",
    { class: "pane-call", "data-pane": "call", "data-testid": "call-pane", "aria-label": "Call", hidden: true },
    e.transcriptHead,
    e.transcript,
    e.card,
  );
  host.append(root);
  return e;
}

// ------------------------------------------------------------------ drawing

function renderTranscript(conv) {
  const nodes = [...conv.messages.values()].sort((a, b) => a.seq - b.seq).map((m) => messageNode(conv, m));
  if (!nodes.length) nodes.push(h("p", { class: "muted small call-transcript-empty", text: "Nothing before you: the call came straight to an agent." }));
  els.transcript.replaceChildren(...nodes);
  els.transcript.scrollTop = els.transcript.scrollHeight;
}

function insertMessage(conv, m) {
  els.transcript.querySelector(".call-transcript-empty")?.remove();
  if (els.transcript.querySelector(`[data-testid="message"][data-seq="${CSS.escape(String(m.seq))}"]`)) return;
  const node = messageNode(conv, m);
  let before = null;
  for (const other of els.transcript.querySelectorAll('[data-testid="message"][data-seq]')) {
    if (Number(other.getAttribute("data-seq")) > m.seq) {
      before = other;
      break;
    }
  }
  els.transcript.insertBefore(node, before);
  if (!before) els.transcript.scrollTop = els.transcript.scrollHeight;
}

function renderTimer(call) {
  els.timer.textContent = call ? clock(elapsedMs(call)) : "";
  els.timer.dataset.running = call && call.state !== "ended" ? "true" : "false";
}

function renderSoftphone() {
  const s = read("softphone");
  const words = softphoneWords(s);
  els.line.hidden = !words;
  els.lineText.textContent = words;
  els.line.dataset.mode = s.mode || "";
  els.line.dataset.state = s.state;
  const call = shown ? callOf(shown.id) : null;
  els.answer.hidden = !(s.state === "ringing" && call && call.state !== "ended");
}

/** The call's recording as the hub last recorded it ({sid, state, url?}), or null: the latest message with `extra.recording`. */
function recordingOf(conv) {
  let found = null;
  let seq = -1;
  for (const m of conv.messages.values()) {
    const r = m && m.extra && typeof m.extra === "object" ? m.extra.recording : null;
    if (r && typeof r === "object" && typeof r.state === "string" && m.seq > seq) {
      found = r;
      seq = m.seq;
    }
  }
  return found;
}

function renderRecording(conv, ended, busy) {
  const rec = recordingOf(conv);
  const live = !!rec && (rec.state === "in-progress" || rec.state === "paused") && !ended;
  els.recording.hidden = !live;
  els.recording.dataset.state = rec ? rec.state : "";
  if (!live) return;
  const paused = rec.state === "paused";
  els.recText.textContent = paused ? "Recording paused while the caller types digits. " : "Recording: the caller was told. ";
  const call = callOf(conv.id);
  els.recToggle.textContent = call?.pending === "pause_recording" ? "Pausing…" : call?.pending === "resume_recording" ? "Resuming…" : paused ? "Resume recording" : "Pause for digits";
  els.recToggle.setAttribute("aria-pressed", paused ? "true" : "false");
  els.recToggle.disabled = busy;
}

function renderCard(conv) {
  const call = callOf(conv.id);
  els.caller.textContent = convName(conv);
  els.callerSub.textContent = [conv.customerAddress !== convName(conv) ? conv.customerAddress : null, conv.queue ? `${humanize(conv.queue)} queue` : null].filter(Boolean).join(" · ");
  const state = call ? call.state : conv.closed ? "ended" : "connecting";
  const words = call ? stateWords(call) : { label: conv.closed ? "Call ended" : "Connecting…", detail: "" };
  els.card.dataset.state = state;
  els.stateLabel.textContent = words.label;
  els.stateDetail.textContent = words.detail ? ` ${words.detail}` : "";
  renderTimer(call);

  const ended = state === "ended" || conv.closed;
  const busy = !!call?.pending;
  const consulting = !!call?.consult && !ended;
  for (const b of [els.mute, els.hold, els.transfer, els.hangup]) b.disabled = ended || busy;
  els.hold.disabled = els.hold.disabled || consulting; // the caller stays held until the consultation ends
  els.transfer.disabled = els.transfer.disabled || consulting;
  els.consult.hidden = !consulting && !(call?.consultNote && !ended);
  els.consult.dataset.state = consulting ? call.consult.state : "over";
  if (consulting) {
    const who = call.consult.targetName || "your colleague";
    els.consultText.textContent = call.consult.state === "talking"
      ? `Talking with ${who}; the caller is on hold. `
      : `Calling ${who}… the caller is on hold. `;
    els.consultComplete.hidden = els.consultCancel.hidden = false;
    els.consultComplete.disabled = busy || call.consult.state !== "talking";
    els.consultCancel.disabled = busy;
    els.consultComplete.textContent = call.pending === "complete_transfer" ? "Transferring…" : "Complete transfer";
  } else {
    els.consultText.textContent = call?.consultNote || "";
    els.consultComplete.hidden = els.consultCancel.hidden = true;
  }
  renderRecording(conv, ended, busy);
  els.supervisor.hidden = !call?.supervisor || ended;
  els.supervisor.textContent = call?.supervisor
    ? call.supervisor.mode === "whisper" ? `${call.supervisor.name} is whispering to you (the caller does not hear them).` : `${call.supervisor.name} has joined the call: the caller hears them.`
    : "";
  const muted = !!call?.muted;
  els.mute.textContent = call?.pending === "mute" ? "Muting…" : call?.pending === "unmute" ? "Unmuting…" : muted ? "Unmute" : "Mute";
  els.mute.setAttribute("aria-pressed", muted ? "true" : "false");
  const held = state === "on_hold";
  els.hold.textContent = call?.pending === "hold" ? "Holding…" : call?.pending === "unhold" ? "Resuming…" : held ? "Resume" : "Hold";
  els.hold.setAttribute("aria-pressed", held ? "true" : "false");
  els.hangup.textContent = call?.pending === "hang_up" ? "Hanging up…" : "Hang up";

  els.error.hidden = !call?.error;
  els.error.textContent = call?.error?.message || "";
  if (call?.error) els.error.dataset.action = call.error.action;
  else delete els.error.dataset.action;

  // the wrap-up, once the call is over
  const wasHidden = els.wrapup.hidden;
  els.wrapup.hidden = !ended || conv.closed;
  els.wrapTitle.textContent = "Wrap-up: the disposition and a note close the call";
  if (!els.wrapup.hidden && wasHidden) {
    const d = draftOf(conv);
    if (!els.wrapNote.value && !d.wrapNote && d.notes.trim()) els.wrapNote.value = d.notes.trim().slice(0, 1000);
  }
  els.noteSave.disabled = conv.closed;
  els.notes.disabled = conv.closed;
  renderSoftphone();
}

function fillDispositions(conv) {
  const d = draftOf(conv);
  els.disposition.replaceChildren(...dispositions().map((o) => h("option", { value: o.value, text: o.label })));
  els.disposition.value = d.disposition || "resolved";
  els.wrapNote.value = d.wrapNote;
  els.wrapError.hidden = true;
}

// ------------------------------------------------------------------ actions

async function act(action) {
  const conv = shown;
  if (!conv) return;
  await callAction(conv, action);
  // model/calls.js announces the result: the card redraws from the `calls` slice
}

function onMute() {
  const call = shown && callOf(shown.id);
  act(call?.muted ? "unmute" : "mute");
}

function onHold() {
  const call = shown && callOf(shown.id);
  act(call?.state === "on_hold" ? "unhold" : "hold");
}

function onTransfer() {
  // the header's transfer dialog (views/transfer.js): a queue or a colleague; the caller waits again
  document.getElementById("transfer-open")?.click();
}

async function onAnswer() {
  els.answer.disabled = true;
  const r = await answerLeg();
  els.answer.disabled = false;
  if (!r.ok && shown) {
    els.error.hidden = false;
    els.error.textContent = `Could not answer on the softphone: ${r.message}`;
  }
}

async function onWrapUp(ev) {
  ev.preventDefault();
  const conv = shown;
  if (!conv || conv.closed) return;
  els.wrapSubmit.disabled = true;
  els.wrapError.hidden = true;
  const r = await closeConversation(conv, els.disposition.value, els.wrapNote.value.trim());
  els.wrapSubmit.disabled = false;
  if (!r.ok) {
    els.wrapError.hidden = false;
    els.wrapError.textContent = r.message;
    return;
  }
  drafts.delete(key(conv.id));
}

function saveNote() {
  const conv = shown;
  const text = els.notes.value.trim();
  if (!conv || conv.closed || !text) return;
  if (!socket.isConnected()) {
    els.noteError.hidden = false;
    els.noteError.textContent = "Not connected: the note was not saved.";
    return;
  }
  els.noteError.hidden = true;
  const pending = messageNode(conv, { sender_kind: "agent", text }, { pending: true });
  pending.classList.add("note", "pending");
  pending.prepend(h("div", { class: "note-label", text: "internal note — the caller does not hear this" }));
  els.transcript.append(pending);
  els.transcript.scrollTop = els.transcript.scrollHeight;
  els.notes.value = "";
  draftOf(conv).notes = "";
  socket.request("note", { conversation_id: conv.id, text }, 10000, (err, ack) => {
    if (err || !ack?.ok) {
      pending.classList.add("failed");
      pending.querySelector(".msg-meta").textContent = `Not saved: ${ack?.error?.message || "no answer"}`;
      return;
    }
    pending.remove();
    if (ack.message) addMessage(conv, ack.message, { note: true });
    else {
      pending.classList.remove("pending");
      pending.querySelector(".msg-meta").textContent = `${currentAgent()?.display_name || "You"} · ${fmt(new Date().toISOString())}`;
      els.transcript.append(pending);
    }
  });
}

function wireCard() {
  els.mute.addEventListener("click", onMute);
  els.hold.addEventListener("click", onHold);
  els.transfer.addEventListener("click", onTransfer);
  els.hangup.addEventListener("click", () => act("hang_up"));
  els.consultComplete.addEventListener("click", () => act("complete_transfer"));
  els.consultCancel.addEventListener("click", () => act("cancel_consult"));
  els.recToggle.addEventListener("click", () => {
    const rec = shown && recordingOf(shown);
    if (rec) act(rec.state === "paused" ? "resume_recording" : "pause_recording");
  });
  els.answer.addEventListener("click", onAnswer);
  els.wrapup.addEventListener("submit", onWrapUp);
  els.noteSave.addEventListener("click", saveNote);
  els.notes.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && !ev.isComposing) {
      ev.preventDefault();
      saveNote();
    }
  });
  els.notes.addEventListener("input", () => shown && (draftOf(shown).notes = els.notes.value));
  els.wrapNote.addEventListener("input", () => shown && (draftOf(shown).wrapNote = els.wrapNote.value));
  els.disposition.addEventListener("change", () => shown && (draftOf(shown).disposition = els.disposition.value));
  subscribe("calls", (_, change) => {
    if (shown && change.call && key(change.call.id) === key(shown.id)) renderCard(shown);
  });
  subscribe("softphone", () => shown && renderSoftphone());
  subscribe("conversations", (_, change) => {
    if (change.type === "removed" && change.conv) drafts.delete(key(change.conv.id));
    if (change.type === "reset") drafts.clear();
  });
}

// ------------------------------------------------------------------ the pane

export const callPane = {
  name: "call",

  mount(host) {
    if (root) return;
    els = build(host);
    wireCard();
  },

  show(conv) {
    shown = conv;
    root.hidden = false;
    const d = draftOf(conv);
    els.notes.value = d.notes;
    els.noteError.hidden = true;
    fillDispositions(conv);
    els.transcriptHead.textContent = conv.channel === "callback"
      ? "Before you: the callback request and its attempts"
      : "Before you: the caller with the phone menu and the bot";
    renderTranscript(conv);
    renderCard(conv);
    clearInterval(ticker);
    ticker = setInterval(() => shown && renderTimer(callOf(shown.id)), 1000);
  },

  update(conv, change) {
    switch (change.type) {
      case "message":
        if (change.added) insertMessage(conv, change.message);
        else if (change.settled) renderTranscript(conv);
        if (change.message?.extra?.recording) renderCard(conv); // the recording indicator
        break;
      case "closed":
      case "upsert":
        renderCard(conv);
        break;
      default:
        break;
    }
  },

  hide() {
    clearInterval(ticker);
    ticker = null;
    shown = null;
    if (root) root.hidden = true;
  },
};

