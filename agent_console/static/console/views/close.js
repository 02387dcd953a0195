// Close / wrap-up: the disposition and note in the conversation header.
// Owns no slice (the form's fields are its DOM); it follows `orderFlash` to suggest "Order placed".

import { $, key } from "../core/dom.js";
import { humanize } from "../core/format.js";
import * as socket from "../core/socket.js";
import { subscribe } from "../core/store.js";
import { activeConv, convName, removeConv } from "../model/conversations.js";
import { stopTyping } from "../model/typing.js";
import { toast } from "./toasts.js";

function chatError(message) {
  const el = $("chat-error");
  el.textContent = message || "";
  el.hidden = !message;
  delete el.dataset.code;
}

/** The dispositions the close form offers: [{value, label}] (a call card's wrap-up offers the same). */
export function dispositions() {
  return [...$("close-disposition").options].map((o) => ({ value: o.value, label: o.textContent }));
}

/**
 * Close (wrap up) a conversation with a disposition and a note: the `close` socket event. Resolves
 * {ok, message}; on success the conversation goes from the list. The header's form and a call card's
 * wrap-up both use it.
 */
export function closeConversation(conv, disposition, note = "") {
  if (!conv || conv.closed) return Promise.resolve({ ok: false, message: "This conversation is already closed." });
  return new Promise((resolve) => {
    const sent = socket.request("close", { conversation_id: conv.id, disposition, note }, 10000, (err, ack) => {
      if (err || !ack?.ok) return resolve({ ok: false, message: err ? "No answer from the hub. Check the connection and try again." : ack?.error?.message || "Could not close the conversation." });
      stopTyping();
      $("close-note").value = "";
      $("close-disposition").value = "resolved";
      toast(`Closed ${convName(conv)} (${humanize(disposition)})`);
      removeConv(conv);
      resolve({ ok: true, message: "" });
    });
    if (!sent) resolve({ ok: false, message: "Not connected: try again in a moment." });
  });
}

async function closeConv(ev) {
  ev.preventDefault();
  const conv = activeConv();
  if (!conv || conv.closed) return;
  if (!socket.isConnected()) return chatError("Not connected: try again in a moment.");
  const button = $("close-submit");
  button.disabled = true;
  const r = await closeConversation(conv, $("close-disposition").value, $("close-note").value.trim());
  button.disabled = false;
  if (!r.ok) chatError(r.message);
}

export function wire() {
  $("close-form").addEventListener("submit", closeConv);
  // an order was placed for the open conversation's customer: that is most likely how it ends
  subscribe("orderFlash", (flash) => {
    const conv = activeConv();
    if (flash && conv && !conv.closed && key(conv.customerId) === key(flash.customerId)) $("close-disposition").value = "order_placed";
  });
}
