// Incoming offers: a card per offered conversation with its countdown, Accept and Decline.
// Owner of the `offers` slice: Map conversation id -> {data, node, timer, bar, receivedAt}.

import { $, h, key } from "../core/dom.js";
import { humanize } from "../core/format.js";
import * as socket from "../core/socket.js";
import { defineSlice, subscribe } from "../core/store.js";
import { getConv, isPlaceholderName, reopen, upsertConv, addMessage, selectConv } from "../model/conversations.js";
import { channelTag } from "../model/channels.js";
import { toast } from "./toasts.js";

const offers = defineSlice("offers", new Map(), "views/offers.js");

function renderCount() {
  const n = offers.get().size;
  const count = $("offer-count");
  count.textContent = String(n);
  count.hidden = n === 0;
  $("offers-empty").hidden = n > 0;
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
  const given = offer.customer?.display_name;
  const name = !isPlaceholderName(given) ? given : offer.customer_address || given || `Customer #${offer.customer?.id ?? "?"}`;
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

function tickOffers() {
  const now = Date.now() / 1000;
  for (const [id, entry] of offers.get()) {
    const expires = Number(entry.data.expires_at) || 0;
    const left = Math.max(0, Math.round(expires - now));
    const total = Math.max(1, expires - entry.receivedAt);
    entry.timer.textContent = `${left}s`;
    entry.timer.classList.toggle("urgent", left <= 5);
    entry.bar.style.width = `${Math.max(0, Math.min(100, ((expires - now) / total) * 100))}%`;
    if (expires && now > expires + 1) removeOffer(id); // it has gone to someone else
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
    const data = ack.conversation || { id: offer.conversation_id };
    const conv = upsertConv({
      customer_address: offer.customer_address,
      channel_label: offer.channel_label,
      ...data,
      id: data.id ?? offer.conversation_id,
      customer: offer.customer,
      customer_id: data.customer_id ?? offer.customer?.id,
      channel: data.channel ?? offer.channel,
      queue: data.queue ?? offer.queue,
    });
    reopen(conv);
    for (const m of data.messages || []) addMessage(conv, m);
    selectConv(conv.id);
  });
}

function declineOffer(entry, ...buttons) {
  const offer = entry.data;
  buttons.forEach((b) => (b.disabled = true));
  if (!socket.request("decline", { conversation_id: offer.conversation_id }, 10000, () => removeOffer(offer.conversation_id))) removeOffer(offer.conversation_id);
}

/** hello.offers: the hub's list is the truth. */
export function syncFromHello(list) {
  const offered = new Set();
  for (const offer of list || []) {
    offered.add(key(offer.conversation_id));
    addOffer(offer);
  }
  for (const id of [...offers.get().keys()]) if (!offered.has(id)) removeOffer(id);
}

export function offerCount() {
  return offers.get().size;
}

export function wire() {
  socket.on("offer", addOffer);
  socket.on("offer_revoked", (p) => removeOffer(p?.conversation_id));
  subscribe("offers", renderCount);
  subscribe("session", (s, change) => {
    if (change.type !== "signed_out") return;
    offers.get().clear();
    $("offers").replaceChildren();
    offers.changed({ type: "reset" });
  });
  setInterval(tickOffers, 1000);
  renderCount();
}
