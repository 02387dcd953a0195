// Incoming offers: a card per offered conversation with its countdown, Accept and Decline; and, in its place
// once it is gone, a notice when the agent declined it or let it time out (what happens to it, and for how long
// it is not offered to them again when the hub says: `skip_seconds` of the decline's ack and of `offer_revoked`).
// Owner of the `offers` slice: Map conversation id -> {data, node, timer, bar, receivedAt}. The notices are no
// state anyone reads: plain DOM under #offer-notices.

import { $, h, key } from "../core/dom.js";
import { humanize, timeFmt } from "../core/format.js";
import * as socket from "../core/socket.js";
import { defineSlice, subscribe } from "../core/store.js";
import { activeId, getConv, isPlaceholderName, markFresh, reopen, upsertConv, addMessage, selectConv } from "../model/conversations.js";
import { channelTag } from "../model/channels.js";
import { toast } from "./toasts.js";
import { noticeText } from "./offer-notice-text.js";

const offers = defineSlice("offers", new Map(), "views/offers.js");

function renderCount() {
  const n = offers.get().size;
  const count = $("offer-count");
  count.textContent = String(n);
  count.hidden = n === 0;
  $("offers-empty").hidden = n > 0;
}

/** Who an offer is from: the customer's name, else their address, else the hub's placeholder. */
export function offerName(offer) {
  const given = offer.customer?.display_name;
  return !isPlaceholderName(given) ? given : offer.customer_address || given || `Customer #${offer.customer?.id ?? "?"}`;
}

// ---------- notices: "You declined ...", "Missed ..." (one per conversation, newest first, at most MAX_NOTICES)

const MAX_NOTICES = 4;
const notices = new Map(); // conversation id -> {node, timer, kind, name}

function dropNotice(id) {
  const n = notices.get(id);
  if (!n) return;
  clearTimeout(n.timer);
  n.node.remove();
  notices.delete(id);
}

function showNotice(id, kind, name, skipSeconds, at = null) {
  dropNotice(id);
  // when it happened ("14:02"), beside the words: "Missed: Maria Lopez ... · 14:02"
  const stamp = at ? h("time", { class: "offer-notice-at", "data-testid": "offer-notice-at", datetime: new Date(at).toISOString(), text: timeFmt.format(new Date(at)) }) : null;
  const dismiss = h("button", { type: "button", class: "offer-notice-close", "data-testid": "offer-notice-dismiss", "aria-label": "Dismiss", title: "Dismiss", text: "×" });
  const node = h(
    "div",
    { class: "offer-notice", "data-testid": "offer-notice", "data-kind": kind, "data-conversation-id": id },
    h("div", { class: "offer-notice-body" }, h("p", { class: "offer-notice-text", "data-testid": "offer-notice-text", text: noticeText(kind, name, skipSeconds) }), stamp),
    dismiss,
  );
  dismiss.addEventListener("click", () => dropNotice(id));
  // it stays while it is news: as long as the skip it names (at least 10 s), else half a minute; at most five
  const skip = skipSeconds === null || skipSeconds === undefined ? NaN : Number(skipSeconds);
  const keepMs = 1000 * Math.min(300, Number.isFinite(skip) && skip > 0 ? Math.max(10, skip) : 30);
  notices.set(id, { node, kind, name, timer: setTimeout(() => dropNotice(id), keepMs) });
  $("offer-notices").prepend(node);
  for (const old of [...notices.keys()].slice(0, -MAX_NOTICES)) dropNotice(old);
}

/** The offer of `id` is gone because the agent let it time out (the hub's `offer_revoked` reason, or our clock). */
function missed(id, entry, skipSeconds = null) {
  const expires = Number(entry.data.expires_at) || 0;
  showNotice(id, "missed", offerName(entry.data), skipSeconds, expires ? Math.min(Date.now(), expires * 1000) : Date.now());
}

/** A conversation that was the agent's ended (went back to the queue, or was closed) while they were away. */
export function showEndedNotice(id, name) {
  showNotice(key(id), "ended", name, null, Date.now());
}

/** Accept the offer that runs out first (the Alt+A shortcut); false when there is none. */
export function acceptNext() {
  const first = [...offers.get().values()].sort((a, b) => (Number(a.data.expires_at) || 0) - (Number(b.data.expires_at) || 0))[0];
  if (!first) return false;
  const [accept, decline] = first.node.querySelectorAll(".offer-actions button");
  acceptOffer(first, accept, decline);
  return true;
}

export function addOffer(offer) {
  if (!offer || offer.conversation_id == null) return;
  const id = key(offer.conversation_id);
  const mine = getConv(id);
  if (mine && !mine.closed) return; // already mine
  const existing = offers.get().get(id);
  if (existing) {
    existing.data = offer;
    return;
  }
  dropNotice(id); // offered again: the old notice is history
  const name = offerName(offer);
  const timer = h("span", { class: "offer-timer", "data-testid": "offer-countdown" });
  const bar = h("span");
  const accept = h("button", { type: "button", class: "btn btn-primary btn-sm", "data-testid": "offer-accept", text: "Accept", "aria-label": `Accept ${name}` });
  const decline = h("button", { type: "button", class: "btn btn-ghost btn-sm", "data-testid": "offer-decline", text: "Decline", "aria-label": `Decline ${name}` });
  const meta = [offer.queue ? humanize(offer.queue) : null, offer.customer_address !== name ? offer.customer_address : null].filter(Boolean).join(" · ");
  const node = h(
    "div",
    { class: "offer", "data-testid": "offer", "data-conversation-id": id, "data-channel": offer.channel || "web" },
    h("div", { class: "offer-top" }, h("span", { class: "offer-name", text: name }), timer),
    h("div", { class: "offer-meta" }, channelTag(offer.channel || "web", offer.channel_label), meta ? h("span", { text: meta }) : null),
    offer.preview ? h("div", { class: "offer-preview", text: offer.preview }) : null,
    h("div", { class: "offer-bar" }, bar),
    h("div", { class: "offer-actions" }, accept, decline),
  );
  const entry = { data: offer, node, timer, bar, receivedAt: Date.now() / 1000 };
  accept.addEventListener("click", () => acceptOffer(entry, accept, decline));
  decline.addEventListener("click", () => declineOffer(entry, accept, decline));
  offers.get().set(id, entry);
  $("offers").prepend(node);
  tickOffers();
  offers.changed({ type: "added", id });
}

export function removeOffer(conversationId) {
  if (conversationId === undefined || conversationId === null) return;
  const entry = offers.get().get(key(conversationId));
  if (!entry) return;
  entry.node.remove();
  offers.get().delete(key(conversationId));
  offers.changed({ type: "removed", id: key(conversationId) });
}

const LOCAL_EXPIRY_GRACE = 3; // seconds past expires_at before the console gives up on the hub's word

function tickOffers() {
  const now = Date.now() / 1000;
  for (const [id, entry] of offers.get()) {
    const expires = Number(entry.data.expires_at) || 0;
    const left = Math.max(0, Math.round(expires - now));
    const total = Math.max(1, expires - entry.receivedAt);
    entry.timer.textContent = `${left}s`;
    entry.timer.classList.toggle("urgent", left <= 5);
    entry.bar.style.width = `${Math.max(0, Math.min(100, ((expires - now) / total) * 100))}%`;
    if (expires && now > expires + LOCAL_EXPIRY_GRACE) {
      // the hub's offer_revoked (with the skip) normally came first; without it, say so from our own clock
      removeOffer(id);
      missed(id, entry);
    }
  }
}

function acceptOffer(entry, ...buttons) {
  if (!socket.isConnected()) return toast("Not connected", "error");
  buttons.forEach((b) => (b.disabled = true));
  const offer = entry.data;
  socket.request("accept", { conversation_id: offer.conversation_id }, 10000, (err, ack) => {
    buttons.forEach((b) => (b.disabled = false));
    if (err || !ack?.ok) {
      toast(ack?.error?.message || "Could not accept: it may have gone to someone else", "error");
      if (ack?.error?.code === "conflict" || ack?.error?.code === "not_found") removeOffer(offer.conversation_id);
      return;
    }
    removeOffer(offer.conversation_id);
    openAssigned(ack.conversation || { id: offer.conversation_id }, offer);
  });
}

/**
 * A conversation now assigned to this agent (an accepted offer's ack, or a call they placed from a customer's record:
 * `POST /api/customers/{id}/calls`'s `conversation`), with what the offer knew (`hint`: customer, address, channel...).
 * Focus stays where the agent is: it opens only when none was open; otherwise it is added to the list, highlighted as
 * new, and the agent goes to it when they choose. `focus`: open it whatever is open (the agent asked for it).
 */
export function openAssigned(data, hint, { focus = false } = {}) {
  const conv = upsertConv({
    customer_address: hint.customer_address,
    channel_label: hint.channel_label,
    ...data,
    id: data.id ?? hint.conversation_id,
    customer: hint.customer,
    customer_id: data.customer_id ?? hint.customer?.id,
    channel: data.channel ?? hint.channel,
    queue: data.queue ?? hint.queue,
  });
  reopen(conv);
  for (const m of data.messages || []) addMessage(conv, m);
  if (focus || activeId() === null || !getConv(activeId()) || getConv(activeId()).closed) selectConv(conv.id);
  else {
    markFresh(conv);
    toast(`${offerName(hint)} was added to your conversations`);
  }
  return conv;
}

function declineOffer(entry, ...buttons) {
  const offer = entry.data;
  const id = key(offer.conversation_id);
  buttons.forEach((b) => (b.disabled = true));
  const sent = socket.request("decline", { conversation_id: offer.conversation_id }, 10000, (err, ack) => {
    removeOffer(id);
    // refused (it had timed out or been withdrawn meanwhile): offer_revoked or the clock says what happened
    if (!err && ack?.ok) showNotice(id, "declined", offerName(offer), ack.skip_seconds ?? null);
  });
  if (!sent) removeOffer(id);
}

/** offer_revoked {conversation_id, reason?, skip_seconds?}: timed out (a notice), or withdrawn (the customer
 *  left, it was closed or moved: it just goes). An older hub sends no reason: a revoke at the offer's expiry
 *  is a timeout. */
function onRevoked(p) {
  const id = p?.conversation_id;
  if (id === undefined || id === null) return;
  const entry = offers.get().get(key(id));
  const expired = p.reason ? p.reason === "expired" : entry ? Date.now() / 1000 >= (Number(entry.data.expires_at) || Infinity) - 1 : false;
  if (entry) {
    removeOffer(id);
    if (expired) missed(key(id), entry, p.skip_seconds ?? null);
    else if (p.reason === "customer_left") showNotice(key(id), "left", offerName(entry.data), null);
  } else if (expired && notices.get(key(id))?.kind === "missed" && p.skip_seconds != null) {
    showNotice(key(id), "missed", notices.get(key(id)).name, p.skip_seconds); // our clock said so first; now the skip
  }
}

/** hello.offers: the hub's list is the truth. */
export function syncFromHello(list) {
  const offered = new Set();
  for (const offer of list || []) {
    offered.add(key(offer.conversation_id));
    addOffer(offer);
  }
  const now = Date.now() / 1000;
  for (const [id, entry] of [...offers.get()]) {
    if (offered.has(id)) continue;
    removeOffer(id);
    if (now >= (Number(entry.data.expires_at) || Infinity)) missed(id, entry); // timed out while we were away
  }
}

export function offerCount() {
  return offers.get().size;
}

export function wire() {
  socket.on("offer", addOffer);
  socket.on("offer_revoked", onRevoked);
  subscribe("offers", renderCount);
  subscribe("session", (s, change) => {
    if (change.type !== "signed_out") return;
    offers.get().clear();
    $("offers").replaceChildren();
    for (const id of [...notices.keys()]) dropNotice(id);
    offers.changed({ type: "reset" });
  });
  setInterval(tickOffers, 1000);
  renderCount();
}
