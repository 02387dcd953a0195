// The transcript + composer pane: web chat, SMS and WhatsApp (and any channel without a pane of its own).
// Per channel (panes/index.js and model/channels.js): the SMS composer counts characters and segments,
// WhatsApp shows its 24-hour window, an opted-out customer (STOP) closes the composer with the reason,
// and a refused reply (opted_out, outside_window, ...) is explained next to the composer. On channels that
// carry files (SMS, WhatsApp) the composer attaches images and PDFs (panes/attach.js).
// State: the conversation records are the model's (model/conversations.js); this pane only keeps what
// it draws (the customer's typing line, the pending notes on screen).

import { $, h, key } from "../core/dom.js";
import { fmt } from "../core/format.js";
import * as socket from "../core/socket.js";
import { channelInfo } from "../model/channels.js";
import { activeConv, addMessage, convName, isActive, isNote, queueReply, senderOf } from "../model/conversations.js";
import { replyEdited, stopTyping } from "../model/typing.js";
import { currentAgent } from "../session.js";
import { smsMeter } from "../channels/sms.js";
import { replyWindowNotice } from "../channels/reply-window.js";
import { cannedKeydown, closeCanned, updateCanned } from "../views/canned.js";
import { messageNode, updateTicks } from "./transcript.js";
import { attachState, clearAttachments, mountAttach, showAttach } from "./attach.js";

const DEFAULT_PLACEHOLDER = "Reply to the customer — Enter to send, Shift+Enter for a new line, / for canned responses";

let root = null;
let shown = null; // the conversation on screen
let config = {};

// why a reply was refused, in words, when the hub's message does not say it
const REFUSALS = {
  opted_out: "The customer has opted out (texted STOP): nothing more can be sent to them on this channel.",
  outside_window: "Outside WhatsApp's 24-hour window: free-form replies are refused until the customer writes again (templates are not supported yet).",
  forbidden: "This conversation is no longer yours.",
  conflict: "The conversation changed meanwhile (closed or transferred).",
};

function box() {
  return $("transcript");
}

function chatError(message, code = null) {
  const el = $("chat-error");
  el.textContent = message || "";
  el.hidden = !message;
  if (code && message) el.dataset.code = code;
  else delete el.dataset.code;
}

// ------------------------------------------------------------------ the customer's typing line

let typingTimer = null;
function setTyping(on) {
  clearTimeout(typingTimer);
  const conv = activeConv();
  $("typing").textContent = on && conv ? `${convName(conv)} is typing…` : "";
  if (on) typingTimer = setTimeout(() => ($("typing").textContent = ""), 10000);
}

// ------------------------------------------------------------------ transcript

export function renderTranscript(conv) {
  const b = box();
  const nodes = [...conv.messages.values()].sort((a, b2) => a.seq - b2.seq).map((m) => messageNode(conv, m));
  for (const entry of conv.outbox) nodes.push(pendingNode(conv, entry));
  b.replaceChildren(...nodes);
  b.scrollTop = b.scrollHeight;
}

function insertMessage(conv, m) {
  const b = box();
  const stick = b.scrollHeight - b.scrollTop - b.clientHeight < 120;
  const pendingNode = m.client_msg_id ? b.querySelector(`[data-client-msg-id="${CSS.escape(m.client_msg_id)}"]:not([data-seq])`) : null;
  pendingNode?.remove();
  if (isNote(conv, m)) b.querySelector(".msg.note.pending")?.remove();
  const node = messageNode(conv, m);
  let before = null;
  for (const other of b.querySelectorAll('[data-testid="message"]')) {
    const seq = other.getAttribute("data-seq");
    if (seq === null || Number(seq) > m.seq) {
      before = other;
      break;
    }
  }
  b.insertBefore(node, before);
  if (stick || senderOf(m) !== "customer") b.scrollTop = b.scrollHeight;
}

function pendingNode(conv, entry) {
  return messageNode(conv, { sender_kind: "agent", text: entry.text, client_msg_id: entry.client_msg_id, attachments: entry.attachments }, { pending: true });
}

function appendPending(conv, entry) {
  const b = box();
  b.append(pendingNode(conv, entry));
  b.scrollTop = b.scrollHeight;
}

function replyFailed(conv, entry, error) {
  const node = box().querySelector(`[data-client-msg-id="${CSS.escape(entry.client_msg_id)}"]:not([data-seq])`);
  const words = error?.message || REFUSALS[error?.code] || "error";
  if (node) {
    node.classList.add("failed");
    node.querySelector(".msg-meta").textContent = `Not sent: ${words}`;
  }
  const known = REFUSALS[error?.code];
  const text = known ? `Not sent: ${error?.message || known}` : error?.message || "The reply was not sent.";
  chatError(text, error?.code || null);
}

// ------------------------------------------------------------------ composer

function renderComposer(conv) {
  const info = channelInfo(conv.channel, conv.channelLabel);
  const input = $("reply-input");
  const replyOff = conv.closed || conv.optedOut;
  input.disabled = replyOff;
  $("note-input").disabled = conv.closed;
  $("note-send").disabled = conv.closed;
  input.maxLength = info.maxText;
  input.placeholder = conv.optedOut ? "Replies are off: the customer opted out (STOP). Internal notes still work." : DEFAULT_PLACEHOLDER;
  input.setAttribute("aria-label", `Reply by ${info.label}`);

  const banner = $("channel-banner");
  const notice = conv.optedOut
    ? { kind: "opted_out", text: `${convName(conv)} texted STOP and has opted out of messages on this channel: replies are disabled. Internal notes still work.` }
    : typeof config.notice === "function"
      ? config.notice(conv)
      : info.replyWindowSeconds
        ? replyWindowNotice(conv)
        : null;
  banner.hidden = !notice;
  banner.textContent = notice ? notice.text : "";
  banner.dataset.kind = notice ? notice.kind : "";
  banner.setAttribute("role", notice && notice.kind !== "info" ? "alert" : "note");
  renderMeter(conv);
  showAttach(conv); // its redraw calls renderSend
}

/** Send: off when replies are off, and while a file is still uploading (the reply waits for it). */
function renderSend() {
  const conv = shown;
  const send = $("reply-send");
  const uploading = !!conv && attachState(conv).uploading;
  send.disabled = !conv || conv.closed || conv.optedOut || uploading;
  send.textContent = uploading ? "Uploading…" : "Send";
  send.setAttribute("aria-busy", uploading ? "true" : "false");
}

function renderMeter(conv = shown) {
  const meter = $("composer-meter");
  const info = conv ? channelInfo(conv.channel, conv.channelLabel) : null;
  const counter = info && (typeof config.meter === "function" ? config.meter : info.segments ? smsMeter : null);
  if (!counter || conv.closed || conv.optedOut) {
    meter.hidden = true;
    meter.textContent = "";
    return;
  }
  const m = counter($("reply-input").value);
  meter.hidden = false;
  meter.textContent = m.text;
  meter.title = m.title || "";
  meter.classList.toggle("warn", !!m.warn);
  for (const [k, v] of Object.entries(m.data || {})) meter.dataset[k] = v;
}

function sendReply() {
  const conv = activeConv();
  const input = $("reply-input");
  const text = input.value.replace(/\s+$/, "");
  if (!conv || conv.closed || conv.optedOut) return;
  const files = attachState(conv);
  if (files.uploading) return chatError("A file is still uploading: send once it says “Ready to send” (or remove it).");
  if (!text.trim() && !files.ready.length) return;
  chatError("");
  input.value = "";
  closeCanned();
  stopTyping();
  queueReply(conv, text.trim() ? text : "", files.ready); // the pending bubble comes with the model's "outbox" change
  if (files.count) clearAttachments(conv);
  renderMeter(conv);
}

function sendNote() {
  const conv = activeConv();
  const input = $("note-input");
  const text = input.value.trim();
  if (!conv || conv.closed || !text) return;
  if (!socket.isConnected()) return chatError("Not connected: the note was not saved.");
  chatError("");
  const b = box();
  const pending = messageNode(conv, { sender_kind: "agent", text }, { pending: true });
  pending.classList.add("note", "pending");
  pending.prepend(h("div", { class: "note-label", text: "internal note — the customer does not see this" }));
  b.append(pending);
  b.scrollTop = b.scrollHeight;
  input.value = "";
  socket.request("note", { conversation_id: conv.id, text }, 10000, (err, ack) => {
    if (err || !ack?.ok) {
      pending.classList.add("failed");
      pending.querySelector(".msg-meta").textContent = `Not saved: ${ack?.error?.message || "no answer"}`;
      return;
    }
    if (ack.message) {
      pending.remove();
      if (!addMessage(conv, ack.message, { note: true }) && isActive(conv)) renderTranscript(conv);
    } else {
      pending.classList.remove("pending");
      pending.querySelector(".msg-meta").textContent = `${currentAgent()?.display_name || "You"} · ${fmt(new Date().toISOString())}`;
    }
  });
}

function onReplyKeydown(ev) {
  if (cannedKeydown(ev)) return;
  if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
    ev.preventDefault();
    sendReply();
  }
}

function onReplyInput() {
  const value = $("reply-input").value;
  updateCanned(value);
  renderMeter();
  replyEdited(activeConv(), value);
}

// ------------------------------------------------------------------ the pane

let wired = false;

export const messagingPane = {
  name: "messaging",

  mount(host) {
    root = host.querySelector('[data-pane="messaging"]');
    if (wired) return;
    wired = true;
    mountAttach(renderSend);
    $("reply-send").addEventListener("click", sendReply);
    $("reply-input").addEventListener("keydown", onReplyKeydown);
    $("reply-input").addEventListener("input", onReplyInput);
    $("reply-input").addEventListener("composer:refresh", () => renderMeter());
    $("reply-input").addEventListener("blur", () => setTimeout(closeCanned, 150));
    $("note-send").addEventListener("click", sendNote);
    $("note-input").addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.isComposing) {
        ev.preventDefault();
        sendNote();
      }
    });
    socket.on("typing", (p) => {
      if (p && shown && key(p.conversation_id) === key(shown.id)) setTyping(!!p.typing);
    });
  },

  show(conv, cfg) {
    if (shown && key(shown.id) !== key(conv.id)) stopTyping();
    shown = conv;
    config = cfg || {};
    root.hidden = false;
    chatError("");
    setTyping(false);
    renderComposer(conv);
    renderTranscript(conv);
    $("reply-input").focus();
  },

  update(conv, change) {
    switch (change.type) {
      case "message":
        if (change.added) {
          if (senderOf(change.message) === "customer") setTyping(false);
          insertMessage(conv, change.message);
          if (senderOf(change.message) === "customer") renderComposer(conv); // WhatsApp's window moved
        } else if (change.settled) {
          renderTranscript(conv);
        } else if (change.statusChanged) {
          updateTicks(box(), conv, change.message);
        }
        break;
      case "status":
        updateTicks(box(), conv, change.message);
        break;
      case "outbox":
        appendPending(conv, change.entry);
        break;
      case "reply_failed":
        replyFailed(conv, change.entry, change.error);
        renderComposer(conv);
        break;
      case "closed":
        chatError("");
        setTyping(false);
        renderComposer(conv);
        break;
      case "upsert":
        renderComposer(conv);
        break;
      default:
        break;
    }
  },

  hide() {
    stopTyping();
    closeCanned();
    setTyping(false);
    chatError("");
    shown = null;
    showAttach(null);
    if (root) root.hidden = true;
  },
};
