// The centre column: the open conversation's header (who, channel, queue, address; Transfer, Back to
// bot and Close live in it) and, under it, the pane of the conversation's channel (panes/registry.js).
// Owns no slice: it draws `active` and the open conversation's changes, and hands them to the pane.

import { $, h } from "../core/dom.js";
import { humanize } from "../core/format.js";
import { subscribe } from "../core/store.js";
import { channelInfo, channelTag } from "../model/channels.js";
import { activeConv, convName, isActive } from "../model/conversations.js";
import { paneFor } from "../panes/registry.js";
import { toast } from "./toasts.js";

const mounted = new Set();
let current = null; // {pane, config}

function renderHeader(conv) {
  $("chat-title").textContent = convName(conv);
  const address = conv.customerAddress
    ? h(
        "span",
        { class: "chat-address", "data-testid": "customer-address" },
        conv.customerAddress,
        conv.addressVerified === true ? h("span", { class: "verified", text: " ✓ verified" }) : conv.addressVerified === false ? h("span", { class: "unverified", text: " (not verified)" }) : null,
      )
    : null;
  const rest = [conv.queue ? humanize(conv.queue) : null, `#${conv.id}`, conv.closed ? "closed" : null].filter(Boolean).join(" · ");
  $("chat-sub").replaceChildren(...[channelTag(conv.channel, conv.channelLabel, { full: true }), address, h("span", { text: rest })].filter(Boolean));
  $("chat-active").dataset.channel = conv.channel;
  for (const id of ["close-disposition", "close-note", "close-submit", "transfer-open", "handback"]) $(id).disabled = conv.closed;
  $("handback").hidden = !channelInfo(conv.channel, conv.channelLabel).bot; // only where the bot answers
}

function show(conv) {
  $("chat-empty").hidden = !!conv;
  $("chat-active").hidden = !conv;
  if (!conv) {
    current?.pane.hide();
    current = null;
    return;
  }
  renderHeader(conv);
  const next = paneFor(conv.channel);
  if (current && current.pane !== next.pane) current.pane.hide();
  if (!mounted.has(next.pane)) {
    next.pane.mount($("pane-host"));
    mounted.add(next.pane);
  }
  current = next;
  next.pane.show(conv, next.config);
}

function onChange(_, change) {
  const conv = change.conv;
  if (!conv) return;
  if (!isActive(conv)) {
    if (change.type === "reply_failed") toast(`Reply to ${convName(conv)} not sent: ${change.error?.message || "error"}`, "error");
    return;
  }
  if (change.type === "upsert" && paneFor(conv.channel).pane !== current?.pane) return show(conv); // its channel changed
  if (change.type === "closed" || change.type === "upsert") renderHeader(conv);
  current?.pane.update(conv, change, current.config);
}

export function wire() {
  subscribe("active", () => show(activeConv()));
  subscribe("conversations", onChange);
}
