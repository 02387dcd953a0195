// What the console knows of each channel: its label, icon and composer limits.
// Owner of the `channels` slice: the hub's list from `hello.channels` ([{name, label, max_text, segments,
// buttons_as_text, reply_window_seconds, media}]), or null while the hub does not send one (then the built-in defaults below apply).

import { h } from "../core/dom.js";
import { defineSlice, subscribe } from "../core/store.js";
import { channelIcon } from "../channels/icons.js";

const channels = defineSlice("channels", null, "model/channels.js");

// The console's own defaults, used for what the hub does not say. Unknown channels get the generic icon
// and their own name as the label.
const BUILTIN = {
  chat: { label: "Web chat", short: "Chat", icon: "chat" },
  sms: { label: "SMS", short: "SMS", icon: "sms", segments: true, media: true },
  whatsapp: { label: "WhatsApp", short: "WhatsApp", icon: "whatsapp", replyWindowSeconds: 24 * 3600, media: true },
  voice: { label: "Phone call", short: "Phone", icon: "voice" },
  email: { label: "Email", short: "Email", icon: "email", media: true },
};
const ALIASES = { web: "chat", phone: "voice", call: "voice" };
const DEFAULT_LIST = ["chat", "sms", "whatsapp"]; // the filter's choices until the hub lists its channels
const DEFAULT_MAX_TEXT = 4000;

/** Take the hub's list (ignored when absent or malformed: the defaults stay). */
export function setFromHello(list) {
  if (!Array.isArray(list)) return;
  const clean = list.filter((c) => c && typeof c.name === "string" && c.name);
  channels.set(clean, { type: "hello" });
}

function fromHub(name) {
  return (channels.get() || []).find((c) => c.name === name) || null;
}

/**
 * Everything the views need about a channel: {name, label, short, icon, known, maxText, segments, buttonsAsText,
 * replyWindowSeconds, media}. `media`: an agent may attach files (the hub's `media` when it says, else SMS, WhatsApp and
 * email: the hub refuses files on web chat).
 * `label` precedence: the conversation's channel_label, the hub's list, the built-in default, the name itself.
 */
export function channelInfo(name, labelHint = null) {
  const raw = String(name || "chat");
  const builtin = BUILTIN[ALIASES[raw] || raw] || null;
  const hub = fromHub(raw);
  const label = labelHint || hub?.label || builtin?.label || raw;
  return {
    name: raw,
    label,
    short: builtin?.short || label,
    icon: builtin?.icon || "generic",
    known: !!(builtin || hub),
    maxText: Number.isInteger(hub?.max_text) && hub.max_text > 0 ? hub.max_text : DEFAULT_MAX_TEXT,
    segments: typeof hub?.segments === "boolean" ? hub.segments : !!builtin?.segments,
    buttonsAsText: !!hub?.buttons_as_text,
    replyWindowSeconds: Number.isFinite(hub?.reply_window_seconds) && hub.reply_window_seconds > 0 ? hub.reply_window_seconds : builtin?.replyWindowSeconds || null,
    media: typeof hub?.media === "boolean" ? hub.media : !!builtin?.media,
    // the bot answers on it, so a conversation can go back to the bot (the hub's `bot`; unknown: chat only)
    bot: typeof hub?.bot === "boolean" ? hub.bot : raw === "chat",
  };
}

/** Whether the hub has this channel now (its hello's list): the console offers what it can do, e.g. a call. */
export function hubHas(name) {
  return !!fromHub(name);
}

/** Channel names for the list's filter: the hub's, or the defaults. */
export function knownChannelNames() {
  const list = channels.get();
  return list ? list.map((c) => c.name) : [...DEFAULT_LIST];
}

/** A small tag: the channel's icon and its (short) label; data-channel for styling and tests. */
export function channelTag(name, labelHint = null, { full = false } = {}) {
  const info = channelInfo(name, labelHint);
  return h(
    "span",
    { class: `ch-tag${info.known ? "" : " ch-unknown"}`, "data-channel": info.name, "data-icon": info.icon, "data-testid": "channel-tag", title: info.label },
    channelIcon(info.icon),
    h("span", { class: "ch-label", text: full ? info.label : info.short }),
  );
}

export function wire() {
  subscribe("session", (s, change) => {
    if (change.type === "signed_out") channels.set(null, { type: "reset" });
  });
}
