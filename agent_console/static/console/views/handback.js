// "Back to bot": the bot resumes the chat where it stopped.

import { $ } from "../core/dom.js";
import * as socket from "../core/socket.js";
import { activeConv, convName, removeConv } from "../model/conversations.js";
import { toast } from "./toasts.js";

function handBack() {
  const conv = activeConv();
  if (!conv || conv.closed) return;
  if (!socket.isConnected()) return toast("Not connected: try again in a moment.", "error");
  $("handback").disabled = true;
  socket.request("handback", { conversation_id: conv.id }, 10000, (err, ack) => {
    $("handback").disabled = false;
    if (err || !ack || !ack.ok) {
      toast((ack && ack.error && ack.error.message) || "could not hand the chat back to the bot", "error");
      return;
    }
    toast(`${convName(conv)} is back with the bot`);
    removeConv(conv, "to_bot");
  });
}

export function wire() {
  $("handback").addEventListener("click", handBack);
}
