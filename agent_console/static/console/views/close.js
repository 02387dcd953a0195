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

function closeConv(ev) {
  ev.preventDefault();
  const conv = activeConv();
  if (!conv || conv.closed) return;
  if (!socket.isConnected()) return chatError("Not connected: try again in a moment.");
  const disposition = $("close-disposition").value;
  const note = $("close-note").value.trim();
  const button = $("close-submit");
  button.disabled = true;
  socket.request("close", { conversation_id: conv.id, disposition, note }, 10000, (err, ack) => {
    button.disabled = false;
    if (err || !ack?.ok) {
      chatError(ack?.error?.message || "Could not close the conversation.");
      return;
    }
    stopTyping();
    $("close-note").value = "";
    $("close-disposition").value = "resolved";
    toast(`Closed ${convName(conv)} (${humanize(disposition)})`);
    removeConv(conv);
  });
}

export function wire() {
  $("close-form").addEventListener("submit", closeConv);
  // an order was placed for the open conversation's customer: that is most likely how it ends
  subscribe("orderFlash", (flash) => {
    const conv = activeConv();
    if (flash && conv && !conv.closed && key(conv.customerId) === key(flash.customerId)) $("close-disposition").value = "order_placed";
  });
}
