// The agent's own typing indicator towards the customer (debounced: true when it starts, false 2 s after
// the last key, false when the agent sends, switches conversation or closes). Owns no slice: a little
// private state with one writer, this module.

import { key } from "../core/dom.js";
import * as socket from "../core/socket.js";
import { getConv } from "./conversations.js";

let meTyping = false;
let meTypingConv = null;
let meTypingTimer = null;

function emitTyping(conv, on) {
  if (!conv || (meTyping === on && key(meTypingConv) === key(conv.id))) return;
  meTyping = on;
  meTypingConv = conv.id;
  if (!conv.closed) socket.send("typing", { conversation_id: conv.id, typing: on });
}

export function stopTyping() {
  clearTimeout(meTypingTimer);
  if (meTyping && meTypingConv !== null) {
    const conv = getConv(meTypingConv);
    if (conv) emitTyping(conv, false);
  }
  meTyping = false;
}

/** The reply box changed: typing while there is text (a "/" canned search is not typing). */
export function replyEdited(conv, value) {
  if (!conv) return;
  if (!value.trim() || value.startsWith("/")) {
    stopTyping();
    return;
  }
  emitTyping(conv, true);
  clearTimeout(meTypingTimer);
  meTypingTimer = setTimeout(() => emitTyping(conv, false), 2000);
}
