// Toasts: short notices at the bottom of the screen (no state).

import { $, h } from "../core/dom.js";

export function toast(message, kind = "info") {
  const node = h("div", { class: `toast ${kind === "error" ? "error" : ""}`, role: "status", text: message });
  $("toasts").append(node);
  setTimeout(() => node.remove(), 4500);
}
