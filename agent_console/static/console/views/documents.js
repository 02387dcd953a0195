// Document push (docs/subsystems/cobrowse.md): in a web chat's header, the shop's library (GET
// /console/documents) and "Push document", which shows the chosen file on the customer's page (document_push).

import { $, h } from "../core/dom.js";
import * as socket from "../core/socket.js";
import { subscribe } from "../core/store.js";
import { activeConv } from "../model/conversations.js";
import { toast } from "./toasts.js";

let library = null; // [{id, name, content_type, size, sha256}] once loaded

function isChat(conv) {
  return !!conv && !conv.closed && (conv.channel === "chat" || conv.channel === "web");
}

async function load() {
  try {
    const r = await fetch("/console/documents", { credentials: "same-origin" });
    if (!r.ok) return;
    library = (await r.json()).documents || [];
  } catch {
    return;
  }
  const select = $("doc-select");
  select.replaceChildren(...library.map((d) => h("option", { value: String(d.id), text: d.name })));
  render();
}

function render() {
  const show = isChat(activeConv()) && !!library && library.length > 0;
  $("doc-select").hidden = !show;
  $("doc-push").hidden = !show;
}

function push() {
  const conv = activeConv();
  const id = Number($("doc-select").value);
  if (!isChat(conv) || !id) return;
  socket.request("document_push", { conversation_id: conv.id, document_id: id }, 10000, (err, ack) => {
    if (err || !ack?.ok) toast(`Push: ${ack?.error?.message || "no answer from the hub"}`, "error");
    else toast(`Pushed ${ack.push.name}`);
  });
}

export function wire() {
  $("doc-push").addEventListener("click", push);
  $("doc-select").addEventListener("focus", load);
  subscribe("active", () => {
    if (library === null && isChat(activeConv())) load();
    render();
  });
}
