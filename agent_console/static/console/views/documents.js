// Document push (docs/subsystems/cobrowse.md): in a conversation's header, the shop's library (GET
// /console/documents) and "Push document", or "Push my file…" (a file of the agent's own: POST
// /console/documents/own, then pushed the same way). On web chat the file shows on the customer's page; on SMS,
// WhatsApp and email it goes as a 15-minute link in a reply, and on a call as a text to the caller's number.
// Supervisors and admins can take the chosen document out of the library ("Remove"). The customer's own orders are
// in the same list ("Order #12 summary (PDF)"): the hub renders the order as a PDF and pushes it the same way.

import { $, h } from "../core/dom.js";
import { api } from "../core/http.js";
import * as socket from "../core/socket.js";
import { subscribe } from "../core/store.js";
import { activeConv } from "../model/conversations.js";
import { isSupervisor } from "../session.js";
import { toast } from "./toasts.js";

let library = null; // [{id, name, content_type, size, sha256}] once loaded
let orders = { customerId: null, list: [] }; // the active conversation's customer's orders (newest first)
const CHANNELS = new Set(["chat", "web", "sms", "whatsapp", "email", "phone", "callback"]);
const ACCEPT = "application/pdf,image/png,image/jpeg,image/webp,.pdf,.png,.jpg,.jpeg,.webp";

function canPush(conv) {
  return !!conv && !conv.closed && CHANNELS.has(conv.channel);
}

function onWeb(conv) {
  return conv.channel === "chat" || conv.channel === "web";
}

async function load() {
  try {
    const r = await fetch("/console/documents", { credentials: "same-origin" });
    if (!r.ok) return;
    library = (await r.json()).documents || [];
  } catch {
    return;
  }
  fill();
}

function fill() {
  const select = $("doc-select");
  const docs = (library || []).map((d) => h("option", { value: String(d.id), text: d.name }));
  const mine = orders.list.slice(0, 20).map((o) => h("option", { value: `order:${o.id}`, text: `Order #${o.id} summary (PDF)` }));
  select.replaceChildren(
    ...(docs.length ? [h("optgroup", { label: "Library" }, docs)] : []),
    ...(mine.length ? [h("optgroup", { label: "This customer's orders" }, mine)] : []),
  );
  render();
}

async function loadOrders(conv) {
  const id = conv?.customerId;
  if (id == null || orders.customerId === id) return;
  orders = { customerId: id, list: [] };
  const r = await api(`/api/customers/${encodeURIComponent(id)}`);
  if (orders.customerId !== id || !r.ok) return;
  orders.list = (r.data?.orders || []).filter((o) => Number.isInteger(o.id));
  fill();
}

function render() {
  const conv = activeConv();
  const can = canPush(conv);
  const some = can && ((!!library && library.length > 0) || (orders.customerId === conv.customerId && orders.list.length > 0));
  $("doc-select").hidden = !some;
  $("doc-push").hidden = !some;
  $("doc-remove").hidden = !some || !isSupervisor() || String($("doc-select").value).startsWith("order:");
  $("doc-own").hidden = !can;
  if (can) {
    const how = onWeb(conv) ? "on the customer's page" : conv.channel === "phone" || conv.channel === "callback" ? "as a text with a link to the caller's number" : "as a link in a reply";
    $("doc-push").title = `Show the chosen document ${how}`;
    $("doc-own").title = `Push a PDF or picture of your own (up to 10 MB) ${how}`;
  }
}

function pushed(err, ack) {
  if (err || !ack?.ok) toast(`Push: ${ack?.error?.message || "no answer from the hub"}`, "error");
  else toast(ack.push.via === "web" ? `Pushed ${ack.push.name}` : `Sent ${ack.push.name} as a link by ${ack.push.via}`);
}

function push() {
  const conv = activeConv();
  const value = String($("doc-select").value);
  if (!canPush(conv) || !value) return;
  if (value.startsWith("order:")) {
    socket.request("document_push", { conversation_id: conv.id, order_id: Number(value.slice(6)) }, 10000, pushed);
    return;
  }
  const id = Number(value);
  if (!id) return;
  socket.request("document_push", { conversation_id: conv.id, document_id: id }, 10000, pushed);
}

async function pushOwn() {
  const conv = activeConv();
  const input = $("doc-own-file");
  const file = input.files?.[0];
  input.value = "";
  if (!canPush(conv) || !file) return;
  if (file.size > 10 * 1024 * 1024) {
    toast("Push: a file may be at most 10 MB", "error");
    return;
  }
  const form = new FormData();
  form.append("file", file, file.name);
  let body;
  try {
    const r = await fetch("/console/documents/own", { method: "POST", body: form, credentials: "same-origin" });
    body = await r.json().catch(() => ({}));
    if (!r.ok) {
      toast(`Push: ${body?.message || body?.error?.message || (r.status === 415 ? "only PDF, PNG, JPEG and WebP files" : "the upload failed")}`, "error");
      return;
    }
  } catch {
    toast("Push: the upload failed", "error");
    return;
  }
  socket.request("document_push", { conversation_id: conv.id, upload_id: body.upload_id }, 10000, pushed);
}

async function remove() {
  const id = Number($("doc-select").value);
  const doc = library?.find((d) => d.id === id);
  if (!doc || !isSupervisor()) return;
  if (!window.confirm(`Remove "${doc.name}" from the library? Links already pushed keep working until they expire (15 minutes).`)) return;
  const r = await fetch(`/console/documents/${id}`, { method: "DELETE", credentials: "same-origin" });
  if (!r.ok) {
    toast("Remove: the hub refused", "error");
    return;
  }
  toast(`Removed ${doc.name} from the library`);
  await load();
}

export function wire() {
  $("doc-push").addEventListener("click", push);
  $("doc-remove").addEventListener("click", remove);
  $("doc-own").addEventListener("click", () => $("doc-own-file").click());
  $("doc-own-file").setAttribute("accept", ACCEPT);
  $("doc-own-file").addEventListener("change", pushOwn);
  $("doc-select").addEventListener("focus", () => {
    load();
    orders.customerId = null; // an order placed since: in the list
    loadOrders(activeConv());
  });
  $("doc-select").addEventListener("change", render);
  subscribe("active", () => {
    const conv = activeConv();
    if (library === null && canPush(conv)) load();
    if (canPush(conv)) loadOrders(conv);
    render();
  });
}
