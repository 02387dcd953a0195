// A channel's customer-service window (WhatsApp: 24 hours, `reply_window_seconds` in hello.channels), as a
// note above the composer: free-form replies are accepted for that long after the customer's last message,
// refused after (`outside_window`), and message templates are not supported yet.

import { dateTimeFmt, fmt, timeFmt } from "../core/format.js";
import { channelInfo } from "../model/channels.js";
import { lastCustomerMessageAt } from "../model/conversations.js";

const DEFAULT_WINDOW_SECONDS = 24 * 60 * 60;

/** 86400 -> "24 hours" (or "24-hour" before a noun). */
function span(seconds, adjective = false) {
  const hours = Math.round(seconds / 3600);
  const [n, unit] = hours >= 1 ? [hours, "hour"] : [Math.round(seconds / 60), "minute"];
  return adjective ? `${n}-${unit}` : `${n} ${unit}${n === 1 ? "" : "s"}`;
}

export function replyWindowNotice(conv) {
  const info = channelInfo(conv.channel, conv.channelLabel);
  const seconds = info.replyWindowSeconds || DEFAULT_WINDOW_SECONDS;
  const last = lastCustomerMessageAt(conv);
  if (!last) {
    return { kind: "info", text: `${info.label} accepts free-form replies for ${span(seconds)} after the customer's last message and refuses them after that. Templates are not supported yet.` };
  }
  const closes = last + seconds * 1000;
  if (Date.now() < closes) {
    const d = new Date(closes);
    const at = d.toDateString() === new Date().toDateString() ? fmt(d.toISOString(), timeFmt) : fmt(d.toISOString(), dateTimeFmt);
    return { kind: "info", text: `${info.label} window open until ${at}: after ${span(seconds)} without a message from the customer, ${info.label} refuses free-form replies, and templates are not supported yet.` };
  }
  return { kind: "warn", text: `The ${span(seconds, true)} ${info.label} window has closed: ${info.label} refuses free-form replies until the customer writes again, and templates are not supported yet.` };
}
