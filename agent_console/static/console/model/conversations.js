// The agent's conversations and which one is open: the console's central model.
// Owner of two slices:
//   `conversations`: Map id -> conversation record (newConv); change {type, conv, ...}:
//       "upsert" | "message" (message, added, settled) | "status" (message) | "closed" | "removed" (reason)
//       | "reply_failed" (entry, error) | "read" | "reset"
//   `active`: the open conversation's id or null; change {previous}
// and of the replies' outbox (queued, in flight, settled by the stored message's client_msg_id).
// Views draw from these and call the commands below; none of them writes a record itself.

import { key, randomId } from "../core/dom.js";
import { epochMs } from "../core/format.js";
import * as socket from "../core/socket.js";
import { defineSlice, subscribe } from "../core/store.js";
import { isStatus, movesForward } from "../channels/delivery.js";

const conversations = defineSlice("conversations", new Map(), "model/conversations.js");
const active = defineSlice("active", null, "model/conversations.js");

const convs = () => conversations.get();

function present(v) {
  return v !== undefined && v !== null;
}

function newConv(data) {
  const id = data.id ?? data.conversation_id;
  return {
    id,
    customerId: data.customer_id ?? data.customer?.id ?? null,
    customerName: data.customer?.display_name ?? data.customer_name ?? data.display_name ?? null,
    channel: data.channel ?? "web",
    channelLabel: data.channel_label ?? null,
    queue: data.queue ?? null, // the queue's name
    status: data.status ?? "active",
    customerAddress: data.customer_address ?? null,
    addressVerified: data.address_verified ?? null,
    optedOut: data.opted_out === true,
    lastMessageAt: data.last_message_at ?? null,
    subject: typeof data.subject === "string" ? data.subject : null,
    threadKey: data.thread_key ?? null, // per-thread channels (email): the thread's key
    queuedAt: data.queued_at ?? null, // the first-response clock: since it entered an agent queue ...
    slTargetSeconds: Number.isFinite(data.sl_target_seconds) ? data.sl_target_seconds : null, // ... against its queue's target
    messages: new Map(), // seq -> message
    noteSeqs: new Set(),
    pendingStatus: new Map(), // seq -> {delivery_status, delivery_error} that came before the message
    outbox: [], // [{client_msg_id, text, media?, attachments?, cc?}] replies not yet acknowledged
    inflight: new Set(),
    unread: 0,
    lastSeq: 0,
    closed: false,
    fresh: false, // accepted while another conversation was open: highlighted in the list until opened
    acceptedAt: Date.now(),
  };
}

// ------------------------------------------------------------------ reading

export function getConv(id) {
  return id === null || id === undefined ? null : convs().get(key(id)) || null;
}

export function allConvs() {
  return [...convs().values()];
}

export function activeId() {
  return active.get();
}

export function activeConv() {
  return getConv(active.get());
}

export function isActive(conv) {
  return !!conv && active.get() !== null && key(conv.id) === key(active.get());
}

/** The hub's stand-in for a customer without a name ("Visitor 12", "Visitor"): not a name to show. */
export function isPlaceholderName(name) {
  return typeof name !== "string" || !name.trim() || /^visitor(?: #?\d+)?$/i.test(name.trim());
}

/** How the console names a conversation's customer: their name, else their address on the channel
 *  (+15551234567), else the hub's placeholder, else the customer's or conversation's number. */
export function convName(conv) {
  if (!isPlaceholderName(conv.customerName)) return conv.customerName;
  return conv.customerAddress || conv.customerName || (conv.customerId != null ? `Customer #${conv.customerId}` : `Conversation #${conv.id}`);
}

export function isNote(conv, m) {
  return (
    m.internal === true ||
    m.is_note === true ||
    m.note === true ||
    m.kind === "note" ||
    m.sender_kind === "note" ||
    m.visibility === "internal" ||
    conv.noteSeqs.has(m.seq)
  );
}

export function senderOf(m) {
  const k = m.sender_kind;
  if (k === "supervisor") return "note";
  return ["customer", "agent", "bot", "system", "note"].includes(k) ? k : "system";
}

export function lastMessage(conv) {
  let best = null;
  for (const m of conv.messages.values()) if (!best || m.seq > best.seq) best = m;
  return best;
}

/** The newest customer message's time (ms), or 0: WhatsApp's 24-hour window runs from it. */
export function lastCustomerMessageAt(conv) {
  let best = 0;
  for (const m of conv.messages.values()) if (senderOf(m) === "customer" && !isNote(conv, m)) best = Math.max(best, epochMs(m.created_at));
  return best;
}

/** When the conversation last had a message (ms): the hub's last_message_at or the newest loaded one. */
export function lastActivity(conv) {
  const last = lastMessage(conv);
  return Math.max(epochMs(conv.lastMessageAt), last ? epochMs(last.created_at) : 0);
}

// ------------------------------------------------------------------ writing

/** Create or refresh a conversation from a summary (hello, the accept ack, an offer). */
export function upsertConv(data) {
  const id = data?.id ?? data?.conversation_id;
  if (id === undefined || id === null) return null;
  let conv = convs().get(key(id));
  if (!conv) {
    conv = newConv(data);
    convs().set(key(id), conv);
  } else {
    const fresh = newConv(data);
    conv.customerId = fresh.customerId ?? conv.customerId;
    conv.customerName = fresh.customerName ?? conv.customerName;
    if (present(data.channel)) conv.channel = fresh.channel;
    if (present(data.channel_label)) conv.channelLabel = fresh.channelLabel;
    conv.queue = fresh.queue ?? conv.queue;
    if (present(data.status)) conv.status = fresh.status;
    if (present(data.customer_address)) conv.customerAddress = fresh.customerAddress;
    if (present(data.address_verified)) conv.addressVerified = fresh.addressVerified;
    if (typeof data.opted_out === "boolean") conv.optedOut = data.opted_out;
    if (present(data.last_message_at)) conv.lastMessageAt = fresh.lastMessageAt;
    if (present(data.subject)) conv.subject = fresh.subject;
    if (present(data.thread_key)) conv.threadKey = fresh.threadKey;
    if (present(data.queued_at)) conv.queuedAt = fresh.queuedAt;
    if (present(data.sl_target_seconds)) conv.slTargetSeconds = fresh.slTargetSeconds;
  }
  conversations.changed({ type: "upsert", conv });
  return conv;
}

/** Open again (an accepted offer of a conversation we had as closed). */
export function reopen(conv) {
  conv.closed = false;
  conversations.changed({ type: "upsert", conv });
}

function settleOutbox(conv, clientMsgId) {
  if (!clientMsgId) return false;
  const before = conv.outbox.length;
  conv.outbox = conv.outbox.filter((e) => e.client_msg_id !== clientMsgId);
  conv.inflight.delete(clientMsgId);
  return conv.outbox.length !== before;
}

function takeStatus(conv, m, status, error) {
  if (!movesForward(m.delivery_status ?? null, status)) return false;
  m.delivery_status = status;
  m.delivery_error = error ?? null;
  return true;
}

/** Add a stored message exactly once (by seq). Returns whether it was new. `history`: a transcript's first
 *  load (after a reload), which is not unread: only messages that arrive while another one is open are. */
export function addMessage(conv, m, { note = false, history = false } = {}) {
  if (!m || typeof m.seq !== "number") return false;
  if (note) conv.noteSeqs.add(m.seq);
  const settled = settleOutbox(conv, m.client_msg_id);
  const existing = conv.messages.get(m.seq);
  if (existing) {
    // the same message again (a resume, an ack after the emit): keep ours, take a newer delivery status
    const moved = isStatus(m.delivery_status) && takeStatus(conv, existing, m.delivery_status, m.delivery_error);
    conversations.changed({ type: "message", conv, message: existing, added: false, settled, statusChanged: moved });
    return false;
  }
  const pending = conv.pendingStatus.get(m.seq);
  if (pending) {
    conv.pendingStatus.delete(m.seq);
    takeStatus(conv, m, pending.delivery_status, pending.delivery_error);
  }
  conv.messages.set(m.seq, m);
  if (m.seq > conv.lastSeq) conv.lastSeq = m.seq;
  if (m.created_at && epochMs(m.created_at) > epochMs(conv.lastMessageAt)) conv.lastMessageAt = m.created_at;
  const fromCustomer = senderOf(m) === "customer";
  if (fromCustomer && !history && (!isActive(conv) || document.hidden)) conv.unread += 1;
  conversations.changed({ type: "message", conv, message: m, added: true, settled });
  return true;
}

/** `message_status` {conversation_id, seq, delivery_status, delivery_error}: forward only. */
export function applyDeliveryStatus(p) {
  if (!p || p.conversation_id == null || typeof p.seq !== "number" || !isStatus(p.delivery_status)) return;
  const conv = getConv(p.conversation_id);
  if (!conv) return;
  const m = conv.messages.get(p.seq);
  if (!m) {
    // not loaded yet: keep the newest and apply it when the message arrives
    const held = conv.pendingStatus.get(p.seq);
    if (!held || movesForward(held.delivery_status, p.delivery_status)) conv.pendingStatus.set(p.seq, { delivery_status: p.delivery_status, delivery_error: p.delivery_error ?? null });
    return;
  }
  if (takeStatus(conv, m, p.delivery_status, p.delivery_error)) conversations.changed({ type: "status", conv, message: m });
}

export function markClosed(conv) {
  conv.closed = true;
  conversations.changed({ type: "closed", conv });
}

/** The customer opted out (STOP): the composer closes for this conversation. */
export function markOptedOut(conv) {
  if (conv.optedOut) return;
  conv.optedOut = true;
  conversations.changed({ type: "upsert", conv });
}

/** Gone from this agent (closed by them, transferred, back to the bot). */
export function removeConv(conv, reason = null) {
  if (convs().get(key(conv.id)) !== conv) return;
  convs().delete(key(conv.id));
  conversations.changed({ type: "removed", conv, reason });
  if (isActive(conv)) active.set(null, { previous: conv.id });
}

/** Added while the agent works on another one: the list highlights it until it is opened. */
export function markFresh(conv) {
  conv.fresh = true;
  conversations.changed({ type: "upsert", conv });
}

/** Open a conversation in the centre (and mark it read). */
export function selectConv(id) {
  const conv = getConv(id);
  if (!conv) return;
  const previous = active.get();
  conv.unread = 0;
  conv.fresh = false;
  active.set(conv.id, { previous });
  conversations.changed({ type: "read", conv });
  if (!conv.messages.size) resume(conv);
}

// ------------------------------------------------------------------ talking to the hub

export function resume(conv) {
  const history = conv.messages.size === 0; // the first load of a transcript; later ones catch up on missed messages
  socket.request("resume", { conversation_id: conv.id, last_seq: conv.lastSeq }, 10000, (err, ack) => {
    if (err || !ack?.ok) return;
    for (const m of ack.messages || []) addMessage(conv, m, { history });
    flushOutbox(conv);
  });
}

/** Queue a reply and send it (kept, and resent with the same client_msg_id, until the hub acknowledges it).
 *  `files`: uploads to send with it, [{key, url, content_type, name, size}] (POST /console/media's answers).
 *  `cc`: addresses to copy (email), sent as the reply's `cc`. */
export function queueReply(conv, text, files = [], { cc = [] } = {}) {
  const entry = { client_msg_id: `a-${randomId()}`, text };
  if (files.length) {
    entry.media = files.map((f) => f.key);
    entry.attachments = files.map((f) => ({ type: "media", url: f.url, content_type: f.content_type, name: f.name, size: f.size }));
  }
  if (cc.length) entry.cc = [...cc];
  conv.outbox.push(entry);
  conversations.changed({ type: "outbox", conv, entry });
  flushOutbox(conv);
  return entry;
}

export function flushOutbox(conv) {
  if (!socket.isConnected() || conv.closed) return;
  for (const entry of [...conv.outbox]) {
    if (conv.inflight.has(entry.client_msg_id)) continue;
    conv.inflight.add(entry.client_msg_id);
    const payload = { conversation_id: conv.id, client_msg_id: entry.client_msg_id, text: entry.text };
    if (entry.media) payload.media = entry.media;
    if (entry.cc) payload.cc = entry.cc;
    socket.request("reply", payload, 15000, (err, ack) => {
      conv.inflight.delete(entry.client_msg_id);
      if (err) {
        if (socket.isConnected()) setTimeout(() => flushOutbox(conv), 2000); // same client_msg_id: the hub dedupes
        return;
      }
      if (ack?.ok) {
        if (ack.message) addMessage(conv, ack.message);
        else settleOutbox(conv, entry.client_msg_id);
        return;
      }
      settleOutbox(conv, entry.client_msg_id);
      const error = ack?.error && typeof ack.error === "object" ? ack.error : { code: "error", message: "" };
      if (error.code === "opted_out") markOptedOut(conv);
      conversations.changed({ type: "reply_failed", conv, entry, error });
    });
  }
}

/** hello.conversations: merge with what we hold (a reconnect keeps the transcripts). */
export function mergeHello(list) {
  if (!Array.isArray(list)) return;
  const live = new Set();
  for (const data of list) {
    const conv = upsertConv(data);
    if (!conv) continue;
    live.add(key(conv.id));
    for (const m of data.messages || []) addMessage(conv, m);
    if (!data.messages) resume(conv);
  }
  for (const conv of allConvs()) if (!live.has(key(conv.id)) && !conv.closed) markClosed(conv);
}

function onMessage(m) {
  if (!m || m.conversation_id == null) return;
  let conv = getConv(m.conversation_id);
  if (!conv) conv = upsertConv({ id: m.conversation_id }); // e.g. accepted in another tab
  addMessage(conv, m);
}

function reset() {
  convs().clear();
  conversations.changed({ type: "reset" });
  if (active.get() !== null) active.set(null, { previous: active.get() });
}

export function wire() {
  socket.on("message", onMessage);
  socket.on("message_status", applyDeliveryStatus);
  // the hub's shared state (Redis) was lost and is back: messages from other hub processes may have missed us
  socket.on("resync", () => {
    for (const conv of allConvs()) if (!conv.closed) resume(conv);
  });
  socket.on("conversation_closed", (p) => {
    const conv = p && getConv(p.conversation_id);
    if (!conv) return;
    if (p.reason === "to_bot" || p.reason === "transferred") removeConv(conv, p.reason);
    else markClosed(conv);
  });
  subscribe("connection", (c) => {
    if (c.state === "online" && c.reconnect) for (const conv of allConvs()) if (!conv.closed) resume(conv);
    if (c.state === "offline") for (const conv of allConvs()) conv.inflight.clear();
  });
  subscribe("session", (s, change) => {
    if (change.type === "signed_out") reset();
  });
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) return;
    const conv = activeConv();
    if (conv?.unread) {
      conv.unread = 0;
      conversations.changed({ type: "read", conv });
    }
  });
}
